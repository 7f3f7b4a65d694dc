//! In-process state that need not survive a restart: long-poll wake-ups, presence (when each
//! peer last polled, how many polls it holds open), acknowledged cursors awaiting deletion, and
//! each peer's relay rate budget.
//!
//! None of it needs durability: after a restart every stored peer gets a full timeout to poll
//! again, and a message is never redelivered because polls read only `seq > since`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::rate::TokenBucket;

#[derive(Default)]
struct PeerLive {
    /// Latest seq enqueued for the peer; long-polls wait for it to change.
    wake: Option<watch::Sender<u64>>,
    polls: u32,
    bucket: Option<TokenBucket>,
    /// When the peer last polled (unix ms); `None` until it does.
    last_seen: Option<i64>,
    /// Highest cursor the peer has acknowledged, and how far deletion has caught up.
    acked: u64,
    deleted: u64,
    /// True once the peer has polled in this process (so `acked` means something).
    polled: bool,
    /// `peer-reset`s this peer sent, per recipient (at most `callroom_rules::rate::MAX_RESET_TARGETS`).
    resets: Vec<(String, TokenBucket)>,
}

use callroom_rules::rate::try_reset;

/// The network a client address stands for: IPv4 as is, IPv6 by its /64 (one subscriber
/// holds a whole /64, so one address each would be a budget per address it picks).
fn network_of(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            std::net::IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// Most addresses, and most rooms, whose join budget is remembered at once.
const MAX_JOIN_BUCKETS: usize = 100_000;

/// Join budgets by client address and by room.
#[derive(Default)]
struct Joins {
    by_address: HashMap<std::net::IpAddr, TokenBucket>,
    by_room: HashMap<String, TokenBucket>,
}

/// The rates and bursts joins are held to.
#[derive(Debug, Clone, Copy)]
pub struct JoinLimits {
    /// Per client address, per second.
    pub address_rate: f64,
    /// Per client address, at once.
    pub address_burst: f64,
    /// Per room, per second.
    pub room_rate: f64,
    /// Per room, at once.
    pub room_burst: f64,
}

/// Shared by every request.
#[derive(Clone)]
pub struct Live {
    peers: Arc<Mutex<HashMap<String, PeerLive>>>,
    joins: Arc<Mutex<Joins>>,
    /// Peers never seen polling since this process started count as seen at start.
    started_ms: i64,
}

/// A held long-poll slot; dropping it (also when the client goes away) frees the slot.
pub struct PollSlot {
    live: Live,
    peer_id: String,
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut peers = self.live.lock();
        if let Some(peer) = peers.get_mut(&self.peer_id) {
            peer.polls = peer.polls.saturating_sub(1);
        }
    }
}

impl Live {
    /// Presence bookkeeping for a process that started at `started_ms`.
    pub fn new(started_ms: i64) -> Self {
        Self {
            peers: Arc::default(),
            joins: Arc::default(),
            started_ms,
        }
    }

    /// Records a heartbeat.
    pub fn touch(&self, peer_id: &str, now_ms: i64) {
        let mut peers = self.lock();
        let peer = peers.entry(peer_id.to_owned()).or_default();
        peer.last_seen = Some(peer.last_seen.map_or(now_ms, |t| t.max(now_ms)));
    }

    /// True when the peer holds no poll and has not polled since `now - timeout`.
    pub fn is_silent(&self, peer_id: &str, now_ms: i64, timeout_ms: i64) -> bool {
        let peers = self.lock();
        let peer = peers.get(peer_id);
        let polling = peer.is_some_and(|p| p.polls > 0);
        let last_seen = peer.and_then(|p| p.last_seen).unwrap_or(self.started_ms);
        !polling && last_seen < now_ms - timeout_ms
    }

    /// Records that the peer has processed everything up to `since`.
    pub fn acknowledge(&self, peer_id: &str, since: u64) {
        let mut peers = self.lock();
        let peer = peers.entry(peer_id.to_owned()).or_default();
        peer.acked = peer.acked.max(since);
        peer.polled = true;
    }

    /// The cursor the peer last acknowledged in this process, if it has polled since start.
    pub fn acknowledged(&self, peer_id: &str) -> Option<u64> {
        self.lock()
            .get(peer_id)
            .filter(|p| p.polled)
            .map(|p| p.acked)
    }

    /// Acknowledged cursors not yet deleted; each is reported once.
    pub fn take_acks(&self) -> Vec<(String, u64)> {
        let mut peers = self.lock();
        peers
            .iter_mut()
            .filter(|(_, p)| p.acked > p.deleted)
            .map(|(id, p)| {
                p.deleted = p.acked;
                (id.clone(), p.acked)
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, PeerLive>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one of the peer's `max` poll slots, or `None` when all are in use.
    pub fn take_poll_slot(&self, peer_id: &str, max: u32) -> Option<PollSlot> {
        let mut peers = self.lock();
        let peer = peers.entry(peer_id.to_owned()).or_default();
        if peer.polls >= max {
            return None;
        }
        peer.polls += 1;
        Some(PollSlot {
            live: self.clone(),
            peer_id: peer_id.to_owned(),
        })
    }

    /// True while the peer holds a long-poll open.
    pub fn is_polling(&self, peer_id: &str) -> bool {
        self.lock().get(peer_id).is_some_and(|p| p.polls > 0)
    }

    /// A receiver that changes whenever a message is enqueued for the peer. Subscribe
    /// *before* reading the queue so a message stored in between is not missed.
    pub fn subscribe(&self, peer_id: &str) -> watch::Receiver<u64> {
        let mut peers = self.lock();
        let peer = peers.entry(peer_id.to_owned()).or_default();
        peer.wake
            .get_or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the long-polls of each recipient.
    pub fn wake(&self, wakes: &[(String, u64)]) {
        let peers = self.lock();
        for (peer_id, seq) in wakes {
            if let Some(sender) = peers.get(peer_id).and_then(|p| p.wake.as_ref()) {
                sender.send_replace(*seq);
            }
        }
    }

    /// Forgets a removed peer; its pending long-polls wake (their sender is dropped).
    pub fn forget(&self, peer_id: &str) {
        self.lock().remove(peer_id);
    }

    /// Spends one relay from the peer's budget; `Err(seconds)` says when to retry.
    pub fn try_relay(&self, peer_id: &str, now_ms: i64, rate: f64, burst: f64) -> Result<(), u64> {
        let mut peers = self.lock();
        let peer = peers.entry(peer_id.to_owned()).or_default();
        peer.bucket
            .get_or_insert_with(|| TokenBucket::full(burst, now_ms))
            .try_take(now_ms, rate, burst)
    }

    /// Takes one join out of the budgets of `address` (when known) and `room`, or says in how
    /// many seconds one is available. Neither is charged when either refuses.
    pub fn try_join(
        &self,
        address: Option<std::net::IpAddr>,
        room: &str,
        limits: JoinLimits,
        now_ms: i64,
    ) -> Result<(), u64> {
        let mut joins = self.joins.lock().unwrap_or_else(|p| p.into_inner());
        let Joins {
            by_address,
            by_room,
        } = &mut *joins;
        // Between sweeps, a flood of new addresses or room names waits rather than growing
        // the maps without end.
        let address = address.map(network_of);
        if by_address.len() >= MAX_JOIN_BUCKETS || by_room.len() >= MAX_JOIN_BUCKETS {
            by_address.retain(|_, b| !b.is_full(now_ms, limits.address_rate, limits.address_burst));
            by_room.retain(|_, b| !b.is_full(now_ms, limits.room_rate, limits.room_burst));
        }
        let unknown_address = address.is_some_and(|a| !by_address.contains_key(&a));
        if (unknown_address && by_address.len() >= MAX_JOIN_BUCKETS)
            || (!by_room.contains_key(room) && by_room.len() >= MAX_JOIN_BUCKETS)
        {
            return Err(1);
        }
        let mut room_bucket = by_room
            .get(room)
            .cloned()
            .unwrap_or_else(|| TokenBucket::full(limits.room_burst, now_ms));
        let mut address_bucket = address.map(|a| {
            by_address
                .get(&a)
                .cloned()
                .unwrap_or_else(|| TokenBucket::full(limits.address_burst, now_ms))
        });
        if let Some(bucket) = &mut address_bucket {
            bucket.try_take(now_ms, limits.address_rate, limits.address_burst)?;
        }
        room_bucket.try_take(now_ms, limits.room_rate, limits.room_burst)?;
        by_room.insert(room.to_owned(), room_bucket);
        if let (Some(address), Some(bucket)) = (address, address_bucket) {
            by_address.insert(address, bucket);
        }
        Ok(())
    }

    /// Gives back the room's join token a join that was refused after all took.
    pub fn refund_room_join(&self, room: &str, limits: JoinLimits, now_ms: i64) {
        let mut joins = self.joins.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = joins.by_room.get_mut(room) {
            bucket.refund(now_ms, limits.room_rate, limits.room_burst);
        }
    }

    /// Forgets join budgets that have refilled (run by the sweeper, so the maps hold only
    /// addresses and rooms that joined lately).
    pub fn prune_joins(&self, limits: JoinLimits, now_ms: i64) {
        let mut joins = self.joins.lock().unwrap_or_else(|p| p.into_inner());
        joins
            .by_address
            .retain(|_, b| !b.is_full(now_ms, limits.address_rate, limits.address_burst));
        joins
            .by_room
            .retain(|_, b| !b.is_full(now_ms, limits.room_rate, limits.room_burst));
    }

    /// Takes one `peer-reset` from `peer_id` to `to` out of that pair's budget
    /// (`RESET_RATE`, `RESET_BURST` in `callroom_rules::rate`), or says in how many seconds one is available.
    pub fn try_reset(&self, peer_id: &str, to: &str, now_ms: i64) -> Result<(), u64> {
        let mut peers = self.lock();
        let resets = &mut peers.entry(peer_id.to_owned()).or_default().resets;
        try_reset(resets, to, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callroom_rules::rate::MAX_RESET_TARGETS;

    #[test]
    fn peer_resets_are_limited_per_pair() {
        let live = Live::new(0);
        for _ in 0..3 {
            assert_eq!(live.try_reset("a", "b", 0), Ok(()));
        }
        assert_eq!(live.try_reset("a", "b", 100), Err(3), "one more in 3 s");
        assert_eq!(live.try_reset("a", "c", 100), Ok(()), "another recipient");
        assert_eq!(live.try_reset("b", "a", 100), Ok(()), "another sender");
        assert_eq!(live.try_reset("a", "b", 3_100), Ok(()));
    }

    #[test]
    fn resets_to_made_up_ids_do_not_free_a_real_targets_budget() {
        let live = Live::new(0);
        for _ in 0..3 {
            live.try_reset("a", "victim", 0).unwrap();
        }
        for i in 0..MAX_RESET_TARGETS {
            let _ = live.try_reset("a", &format!("fake{i}"), 10);
        }
        assert!(live.try_reset("a", "victim", 20).is_err(), "still spent");
    }

    #[test]
    fn poll_slots_are_limited_and_freed_on_drop() {
        let live = Live::new(0);
        let a = live.take_poll_slot("p", 2).expect("first");
        let _b = live.take_poll_slot("p", 2).expect("second");
        assert!(live.take_poll_slot("p", 2).is_none(), "third is refused");
        assert!(live.is_polling("p"));
        drop(a);
        assert!(
            live.take_poll_slot("p", 2).is_some(),
            "a dropped slot is free again"
        );
        assert!(!live.is_polling("q"));
    }

    #[test]
    fn presence_counts_polls_and_heartbeats_and_starts_at_process_start() {
        let live = Live::new(1_000);
        assert!(
            !live.is_silent("new", 1_500, 1_000),
            "unseen peers count from start"
        );
        assert!(live.is_silent("new", 2_500, 1_000));
        live.touch("p", 2_000);
        assert!(!live.is_silent("p", 2_500, 1_000));
        assert!(live.is_silent("p", 3_500, 1_000));
        let _slot = live.take_poll_slot("p", 1).unwrap();
        assert!(
            !live.is_silent("p", 9_999, 1_000),
            "a held poll is presence"
        );
    }

    #[test]
    fn acknowledgements_are_reported_once_and_only_forward() {
        let live = Live::new(0);
        live.acknowledge("p", 5);
        live.acknowledge("p", 3);
        assert_eq!(live.take_acks(), vec![("p".to_owned(), 5)]);
        assert!(live.take_acks().is_empty());
        live.acknowledge("p", 7);
        assert_eq!(live.take_acks(), vec![("p".to_owned(), 7)]);
    }

    #[tokio::test]
    async fn wake_reaches_a_subscriber_even_if_it_arrives_before_the_wait() {
        let live = Live::new(0);
        let mut rx = live.subscribe("p");
        live.wake(&[("p".into(), 5)]);
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow(), 5);
    }

    #[tokio::test]
    async fn forgetting_a_peer_ends_its_waits() {
        let live = Live::new(0);
        let mut rx = live.subscribe("p");
        live.forget("p");
        assert!(
            rx.changed().await.is_err(),
            "the wait ends instead of hanging"
        );
    }
}

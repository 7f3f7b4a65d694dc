//! In-process state that need not survive a restart: long-poll wake-ups, how many polls each
//! peer holds open, and each peer's relay rate budget.

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
}

/// Shared by every request.
#[derive(Default, Clone)]
pub struct Live {
    peers: Arc<Mutex<HashMap<String, PeerLive>>>,
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

    /// True while the peer holds a long-poll open (so it is present even if silent).
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_slots_are_limited_and_freed_on_drop() {
        let live = Live::default();
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

    #[tokio::test]
    async fn wake_reaches_a_subscriber_even_if_it_arrives_before_the_wait() {
        let live = Live::default();
        let mut rx = live.subscribe("p");
        live.wake(&[("p".into(), 5)]);
        rx.changed().await.expect("sender alive");
        assert_eq!(*rx.borrow(), 5);
    }

    #[tokio::test]
    async fn forgetting_a_peer_ends_its_waits() {
        let live = Live::default();
        let mut rx = live.subscribe("p");
        live.forget("p");
        assert!(
            rx.changed().await.is_err(),
            "the wait ends instead of hanging"
        );
    }
}

//! Limits on what a remote peer can make this page do: buffer candidates without end, or
//! force connection rebuilds again and again. Pure, with time passed in.

/// Candidates kept while their remote description has not arrived.
pub const MAX_PENDING_CANDIDATES: usize = 64;
/// Bytes of candidate text kept while waiting.
pub const MAX_PENDING_BYTES: usize = 32 * 1024;

/// Candidates that arrived before the description they belong to, within a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCandidates<T> {
    items: Vec<T>,
    bytes: usize,
}

impl<T> Default for PendingCandidates<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            bytes: 0,
        }
    }
}

impl<T> PendingCandidates<T> {
    /// Keeps `item` of `size` bytes; past the budget it is refused (and dropped).
    pub fn push(&mut self, item: T, size: usize) -> Result<(), T> {
        if self.items.len() >= MAX_PENDING_CANDIDATES
            || self.bytes.saturating_add(size) > MAX_PENDING_BYTES
        {
            return Err(item);
        }
        self.bytes += size;
        self.items.push(item);
        Ok(())
    }

    /// Everything kept, to apply now; the budget starts afresh.
    pub fn take(&mut self) -> Vec<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

/// Most peer connections one room opens, whatever its server says: far below the few
/// hundred a browser allows a page.
pub const MAX_LINKS: usize = 64;

/// How many peer connections a room of `capacity` peers may hold open (everyone else at
/// most; [`MAX_LINKS`] when the server did not say).
pub fn max_links(capacity: u32) -> usize {
    match capacity {
        0 => MAX_LINKS,
        n => (n as usize).saturating_sub(1).clamp(1, MAX_LINKS),
    }
}

/// The shortest time between two rebuilds a peer's `peer-reset` may cause, ms.
pub const RESET_INTERVAL_MS: f64 = 3_000.0;
/// Resets within [`RESET_WINDOW_MS`] after which a peer is ignored until it rejoins.
pub const MAX_RESETS: u32 = 5;
/// The window [`MAX_RESETS`] counts in, ms.
pub const RESET_WINDOW_MS: f64 = 60_000.0;

/// What to do with a `peer-reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetAction {
    /// Rebuild the connection to that peer.
    Rebuild,
    /// Too soon after the last rebuild: keep the connection (the peer's next offer still
    /// reaches it; perfect negotiation sorts it out).
    Wait,
    /// The peer resets without end: ignore its resets until it rejoins.
    Ignore,
}

/// `peer-reset`s between us and one peer: how many of theirs to honour, and which of their
/// messages still belong to a connection we replaced.
///
/// Each reset carries a number (1, 2, … per sender). Descriptions and candidates carry the
/// number of the newest reset their sender had seen from the recipient. After an outage, the
/// peer's answers to our old connection arrive after we rebuilt it: their number is older
/// than our last reset, so they are dropped instead of breaking the new connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ResetThrottle {
    last_rebuild: Option<f64>,
    window_start: f64,
    in_window: u32,
    /// Past [`MAX_RESETS`] in a window: ignored for good (a rejoin is a new peer).
    ignored: bool,
    /// Resets we sent them.
    sent: u32,
    /// The newest of their resets we saw.
    seen: u32,
}

impl ResetThrottle {
    /// A peer first seen at `now`.
    pub fn new(now: f64) -> Self {
        Self {
            last_rebuild: None,
            window_start: now,
            in_window: 0,
            ignored: false,
            sent: 0,
            seen: 0,
        }
    }

    /// We rebuilt our connection to them: the number our reset carries.
    pub fn on_sent(&mut self) -> u32 {
        self.sent = self.sent.saturating_add(1);
        self.sent
    }

    /// Their reset number `n` arrived (whatever [`on_reset`](Self::on_reset) decides).
    pub fn on_seen(&mut self, n: u32) {
        self.seen = self.seen.max(n);
    }

    /// The number our descriptions and candidates to them carry.
    pub fn stamp(&self) -> u32 {
        self.seen
    }

    /// True for a description or candidate of theirs, stamped `stamp`, sent before they saw
    /// our last reset. Unstamped messages (from an older client) are never stale.
    pub fn is_stale(&self, stamp: Option<u32>) -> bool {
        stamp.is_some_and(|s| s < self.sent)
    }

    /// A `peer-reset` arrived at `now`.
    pub fn on_reset(&mut self, now: f64) -> ResetAction {
        if now - self.window_start >= RESET_WINDOW_MS {
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window = self.in_window.saturating_add(1);
        if self.ignored || self.in_window > MAX_RESETS {
            self.ignored = true;
            return ResetAction::Ignore;
        }
        if self
            .last_rebuild
            .is_some_and(|last| now - last < RESET_INTERVAL_MS)
        {
            return ResetAction::Wait;
        }
        self.last_rebuild = Some(now);
        ResetAction::Rebuild
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_candidates_stop_at_the_count_and_byte_budgets() {
        let mut pending = PendingCandidates::default();
        for i in 0..MAX_PENDING_CANDIDATES {
            assert_eq!(pending.push(i, 100), Ok(()));
        }
        assert_eq!(pending.push(999, 1), Err(999), "count budget");
        assert_eq!(pending.take().len(), MAX_PENDING_CANDIDATES);
        assert_eq!(
            pending.push(1, MAX_PENDING_BYTES),
            Ok(()),
            "budget afresh after take"
        );
        assert_eq!(pending.push(2, 1), Err(2), "byte budget");
    }

    #[test]
    fn a_reset_storm_rebuilds_at_most_once_per_interval_then_is_ignored() {
        let mut throttle = ResetThrottle::new(0.0);
        // 600 resets, ten a second, as a hostile member within the relay budget could send.
        let actions: Vec<ResetAction> = (0..600)
            .map(|i| throttle.on_reset(f64::from(i) * 100.0))
            .collect();
        let rebuilds = actions
            .iter()
            .filter(|a| **a == ResetAction::Rebuild)
            .count();
        assert!(rebuilds <= MAX_RESETS as usize, "{rebuilds} rebuilds");
        assert_eq!(actions[0], ResetAction::Rebuild);
        assert_eq!(actions[1], ResetAction::Wait, "100 ms later");
        assert_eq!(*actions.last().unwrap(), ResetAction::Ignore);
        assert!(
            actions[60..].iter().all(|a| *a == ResetAction::Ignore),
            "ignored from then on, past the window too (until it rejoins as a new peer)"
        );
        assert_eq!(throttle.on_reset(3_600_000.0), ResetAction::Ignore);
    }

    #[test]
    fn connections_are_capped_at_everyone_else_in_the_room_and_never_past_the_hard_cap() {
        assert_eq!(max_links(16), 15);
        assert_eq!(max_links(2), 1);
        assert_eq!(max_links(1), 1);
        assert_eq!(max_links(0), MAX_LINKS, "not said");
        assert_eq!(max_links(u32::MAX), MAX_LINKS);
    }

    #[test]
    fn answers_to_a_connection_replaced_meanwhile_are_stale() {
        // We and they, after an outage: we rebuilt; their answer to our old offer comes next.
        let (mut us, mut them) = (ResetThrottle::new(0.0), ResetThrottle::new(0.0));
        assert!(!us.is_stale(Some(them.stamp())), "nothing replaced yet");
        let n = us.on_sent();
        let old_answer = them.stamp();
        assert!(
            us.is_stale(Some(old_answer)),
            "sent before they saw the reset"
        );
        them.on_seen(n);
        assert!(
            !us.is_stale(Some(them.stamp())),
            "their answer to the new offer"
        );
        assert!(!us.is_stale(None), "an older client stamps nothing");
        // A second rebuild makes the first one's answers stale too.
        us.on_sent();
        assert!(us.is_stale(Some(them.stamp())));
        them.on_seen(1);
        assert_eq!(
            them.stamp(),
            1,
            "a late, older reset never lowers the stamp"
        );
    }

    #[test]
    fn occasional_resets_keep_rebuilding() {
        let mut throttle = ResetThrottle::new(0.0);
        for i in 0..20 {
            assert_eq!(
                throttle.on_reset(f64::from(i) * 30_000.0),
                ResetAction::Rebuild,
                "a reset every 30 s is a real network problem, always honoured"
            );
        }
    }
}

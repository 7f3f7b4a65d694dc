//! The signaling session's decisions, sans-IO: what a poll's result means, whether a failed
//! relay is retried, which messages are fresh, and how long each poll waits. The browser glue
//! (`room/signaling.rs`) carries the actions out; time and randomness come in as arguments,
//! so outages and restarts are tested here natively, as inputs.

use callroom_protocol::ErrorCode;

use super::backoff::Backoff;
use crate::Error;

/// What to do after a poll answered (or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollAction {
    /// Poll again after `after_ms` (0: at once).
    Poll {
        /// Pause before the next poll.
        after_ms: u32,
    },
    /// The server no longer knows our peer (it timed us out, or lost its state): join anew,
    /// keeping local media.
    Rejoin,
    /// Stop for good and tell the app: another host of this hub took over. Rejoining would
    /// take it back and start a tug of war; the app decides (`reconnect()` takes over).
    Stop,
}

/// What to do with a relay the server refused or that never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayAction {
    /// Keep it at the head of the outbox and send it again after a backoff delay.
    Retry,
    /// Drop it silently: its recipient left meanwhile (`peer_not_found`).
    Drop,
    /// Drop it, and every queued message to the same recipient, and tell the app once: the
    /// recipient is so far behind (`recipient_backlog`) that it has stopped polling and will
    /// time out. Retrying would hold up messages to everyone else behind it.
    DropRecipient,
    /// Drop it and tell the app: the request itself was refused, so sending it again cannot
    /// help.
    Report,
}

/// Why a failed request failed, as far as the policy cares.
fn server_code(error: &Error) -> Option<Result<ErrorCode, &str>> {
    match error {
        Error::Server { code, .. } => Some(ErrorCode::parse(code).ok_or(code.as_str())),
        _ => None,
    }
}

/// True for failures that say nothing about the request: the network, a busy or failing
/// server, or a proxy's 5xx page (`http_5xx`).
pub fn is_transient(error: &Error) -> bool {
    match (error, server_code(error)) {
        (Error::Network(_), _) => true,
        (_, Some(Ok(code))) => code.retryable(),
        (_, Some(Err(unknown))) => unknown.starts_with("http_5"),
        _ => false,
    }
}

/// The decision for a relay that failed with `error`.
pub fn on_relay_error(error: &Error) -> RelayAction {
    match server_code(error) {
        Some(Ok(ErrorCode::PeerNotFound)) => RelayAction::Drop,
        Some(Ok(ErrorCode::RecipientBacklog)) => RelayAction::DropRecipient,
        _ if is_transient(error) => RelayAction::Retry,
        _ => RelayAction::Report,
    }
}

/// The decision for a join (or rejoin) that failed with `error`: `Some(delay)` to try again
/// after it, `None` to give up (the server refused this join for good).
pub fn on_join_error(error: &Error, backoff: &mut Backoff, random: f64) -> Option<u32> {
    (!error.is_fatal_for_join()).then(|| backoff.next_delay_ms(random))
}

/// How long a poll may be held before a probe checks that the connection under it still
/// carries anything. A path that fails upstream gives the browser no sign: a held poll on it
/// would wait out TCP's retransmission timers, long after the poll's own wait.
pub const PROBE_EVERY_MS: f64 = 5_000.0;

/// How long past its wait a poll, and how long a probe, may take before its connection counts
/// as dead.
pub const DEAD_AFTER_MS: u32 = 3_000;

/// The long-poll loop of one session: its cursor, its backoff, whether the server is
/// answering, and whether the connection under a held poll is alive.
#[derive(Debug, Clone, PartialEq)]
pub struct PollPolicy {
    cursor: u64,
    backoff: Backoff,
    wait_ms: u32,
    interval_ms: u32,
    reconnecting: bool,
    /// When the poll in flight was sent.
    held_since: Option<f64>,
    /// When the last probe was sent, and whether it is still out.
    probed_at: f64,
    probing: bool,
}

impl PollPolicy {
    /// A session that starts polling from `cursor`, asking the server to hold each poll for
    /// `wait_ms` and pausing `interval_ms` between polls; failures are retried with
    /// `backoff`.
    pub fn new(cursor: u64, wait_ms: u32, interval_ms: u32, backoff: Backoff) -> Self {
        Self {
            cursor,
            backoff,
            wait_ms,
            interval_ms,
            reconnecting: false,
            held_since: None,
            probed_at: f64::NEG_INFINITY,
            probing: false,
        }
    }

    /// A poll was sent at `now`. Returns how long it may take before it is given up as
    /// dead: its wait plus [`DEAD_AFTER_MS`].
    pub fn on_sent(&mut self, now: f64) -> u32 {
        self.held_since = Some(now);
        self.wait_ms().saturating_add(DEAD_AFTER_MS)
    }

    /// Called about once a second: true when a probe should go out now (a poll has been held
    /// for [`PROBE_EVERY_MS`] since it was sent or since the last probe, and no probe is out).
    pub fn probe_due(&mut self, now: f64) -> bool {
        let Some(since) = self.held_since else {
            return false;
        };
        if self.probing || now - since.max(self.probed_at) < PROBE_EVERY_MS {
            return false;
        }
        self.probing = true;
        self.probed_at = now;
        true
    }

    /// The probe sent at the last [`probe_due`](Self::probe_due) came back (`alive`: the
    /// server answered, whatever it said) or failed. True when the poll held since before
    /// that probe must be given up: the connection under it is dead.
    pub fn on_probe(&mut self, alive: bool) -> bool {
        self.probing = false;
        !alive && self.held_since.is_some_and(|since| since <= self.probed_at)
    }

    /// The cursor: every message up to it was accepted (handled, or being handled in order
    /// while the next poll is out).
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// True while polls fail and are being retried.
    pub fn reconnecting(&self) -> bool {
        self.reconnecting
    }

    /// How long the next poll asks the server to wait. While reconnecting it asks for no
    /// wait, so the first answer shows at once that the server is back.
    pub fn wait_ms(&self) -> u32 {
        if self.reconnecting {
            0
        } else {
            self.wait_ms
        }
    }

    /// Message `seq` arrived: true if it is fresh and must be handled. Anything at or below
    /// the cursor was handled already: the server never repeats, but a client must not trust
    /// that with its peer connections.
    pub fn accept(&mut self, seq: u64) -> bool {
        let fresh = seq > self.cursor;
        self.cursor = self.cursor.max(seq);
        fresh
    }

    /// A poll answered with `cursor` (after its messages were accepted one by one).
    pub fn on_answer(&mut self, cursor: u64) -> PollAction {
        self.held_since = None;
        self.cursor = self.cursor.max(cursor);
        self.backoff.reset();
        self.reconnecting = false;
        PollAction::Poll {
            after_ms: self.interval_ms,
        }
    }

    /// A poll failed with `error`; `random` is uniform in `[0, 1)` (for jitter).
    pub fn on_error(&mut self, error: &Error, random: f64) -> PollAction {
        self.held_since = None;
        match server_code(error) {
            Some(Ok(ErrorCode::Replaced)) => PollAction::Stop,
            // Messages we never read expired: connections may miss a description or
            // candidates, so start clean.
            Some(Ok(ErrorCode::Unauthorized | ErrorCode::CursorExpired)) => PollAction::Rejoin,
            _ => {
                // Anything else (the network, a restarting server, a malformed answer) is
                // retried with the same cursor: nothing is lost, the server keeps what we
                // did not acknowledge.
                self.reconnecting = true;
                PollAction::Poll {
                    after_ms: self.backoff.next_delay_ms(random),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: &str) -> Error {
        Error::Server {
            code: code.into(),
            message: String::new(),
        }
    }

    fn policy() -> PollPolicy {
        PollPolicy::new(0, 25_000, 0, Backoff::new(250.0, 5_000.0))
    }

    #[test]
    fn relays_retry_outages_and_busy_servers_and_drop_refusals() {
        for retry in [
            Error::Network("offline".into()),
            server("rate_limited"),
            server("internal"),
            server("too_many_polls"),
            server("http_502"),
            server("http_503"),
        ] {
            assert_eq!(on_relay_error(&retry), RelayAction::Retry, "{retry:?}");
        }
        assert_eq!(on_relay_error(&server("peer_not_found")), RelayAction::Drop);
        assert_eq!(
            on_relay_error(&server("recipient_backlog")),
            RelayAction::DropRecipient
        );
        for report in [
            server("forbidden"),
            server("invalid_input"),
            server("body_too_large"),
            server("http_404"),
            server("from_a_newer_server"),
            Error::Protocol("bad".into()),
        ] {
            assert_eq!(on_relay_error(&report), RelayAction::Report, "{report:?}");
        }
    }

    #[test]
    fn a_join_refused_for_good_is_not_retried_and_an_outage_is() {
        let mut backoff = Backoff::new(250.0, 5_000.0);
        assert_eq!(on_join_error(&server("room_full"), &mut backoff, 0.5), None);
        assert_eq!(
            on_join_error(&server("invalid_ticket"), &mut backoff, 0.5),
            None
        );
        assert_eq!(
            on_join_error(&Error::Network("down".into()), &mut backoff, 1.0),
            Some(250)
        );
        assert_eq!(
            on_join_error(&server("http_502"), &mut backoff, 1.0),
            Some(500)
        );
    }

    #[test]
    fn only_messages_above_the_cursor_are_fresh() {
        let mut p = policy();
        assert!(p.accept(1));
        assert!(
            p.accept(3),
            "a gap is accepted (the server never makes one)"
        );
        assert!(!p.accept(3), "a repeat is not");
        assert!(!p.accept(2), "nor anything older");
        assert_eq!(p.cursor(), 3);
        p.on_answer(2);
        assert_eq!(p.cursor(), 3, "an answer never moves the cursor back");
        p.on_answer(5);
        assert_eq!(p.cursor(), 5);
        assert!(!p.accept(4));
    }

    #[test]
    fn a_replaced_host_stops_and_an_unknown_peer_rejoins() {
        let mut p = policy();
        assert_eq!(p.on_error(&server("replaced"), 0.5), PollAction::Stop);
        assert_eq!(p.on_error(&server("unauthorized"), 0.5), PollAction::Rejoin);
        assert_eq!(
            p.on_error(&server("cursor_expired"), 0.5),
            PollAction::Rejoin
        );
        assert!(
            !p.reconnecting(),
            "neither is an outage to wait out with wait=0 polls"
        );
    }

    /// A server that is down from `down.0` to `down.1` (ms) and answers polls otherwise.
    struct Simulated {
        down: (u64, u64),
        next_seq: u64,
    }

    impl Simulated {
        fn poll(&mut self, now: u64) -> Result<(Vec<u64>, u64), Error> {
            if (self.down.0..self.down.1).contains(&now) {
                return Err(Error::Network("connection refused".into()));
            }
            // One new message per answer, and the previous one repeated (a client must
            // tolerate it).
            self.next_seq += 1;
            Ok((vec![self.next_seq - 1, self.next_seq], self.next_seq))
        }
    }

    #[test]
    fn an_outage_is_retried_with_growing_delays_and_no_wait_then_resumes_from_the_cursor() {
        let mut p = PollPolicy::new(0, 25_000, 0, Backoff::new(250.0, 5_000.0));
        let mut server = Simulated {
            down: (10_000, 40_000),
            next_seq: 0,
        };
        let mut now = 0u64;
        let mut handled = Vec::new();
        let mut delays = Vec::new();
        let mut waits_while_down = Vec::new();
        let mut back_at = None;
        while now < 60_000 {
            let asked_wait = p.wait_ms();
            let action = match server.poll(now) {
                Ok((seqs, cursor)) => {
                    handled.extend(seqs.into_iter().filter(|&s| p.accept(s)));
                    if back_at.is_none() && now >= 40_000 {
                        back_at = Some(now);
                    }
                    // An answer takes 1 s here (a long-poll that found a message).
                    now += 1_000;
                    p.on_answer(cursor)
                }
                Err(error) => {
                    if now > 10_000 {
                        waits_while_down.push(asked_wait);
                    }
                    p.on_error(&error, 0.99)
                }
            };
            match action {
                PollAction::Poll { after_ms } => {
                    if p.reconnecting() {
                        delays.push(after_ms);
                    }
                    now += u64::from(after_ms);
                }
                other => panic!("an outage never rejoins or stops: {other:?}"),
            }
        }
        assert!(
            waits_while_down.iter().all(|&w| w == 0),
            "while the server is away, polls ask it not to wait: {waits_while_down:?}"
        );
        assert!(
            delays.windows(2).all(|w| w[0] <= w[1]),
            "delays grow: {delays:?}"
        );
        assert_eq!(*delays.first().unwrap(), 249, "first retry near the base");
        assert!(
            delays.iter().all(|&d| d <= 5_000),
            "delays are capped: {delays:?}"
        );
        let back_at = back_at.expect("the server came back");
        assert!(
            back_at < 40_000 + 5_000,
            "back within one capped delay of the restart ({back_at} ms)"
        );
        assert!(!p.reconnecting(), "connected again");
        assert_eq!(
            p.wait_ms(),
            25_000,
            "long-polls again once the server answers"
        );
        let expected: Vec<u64> = (1..=*handled.last().unwrap()).collect();
        assert_eq!(handled, expected, "every message once, in order, none lost");
    }

    #[test]
    fn a_restart_that_lost_the_servers_state_rejoins_after_the_outage() {
        let mut p = policy();
        assert!(matches!(
            p.on_error(&Error::Network("down".into()), 0.0),
            PollAction::Poll { .. }
        ));
        assert!(p.reconnecting());
        // The server is back, but without our peer (an in-memory database, or a sweep).
        assert_eq!(p.on_error(&server("unauthorized"), 0.0), PollAction::Rejoin);
    }

    #[test]
    fn a_held_poll_is_probed_every_few_seconds_and_given_up_when_a_probe_fails() {
        let mut p = policy();
        assert!(!p.probe_due(60_000.0), "no poll held, nothing to probe");
        assert_eq!(p.on_sent(1_000.0), 25_000 + DEAD_AFTER_MS);
        assert!(!p.probe_due(5_999.0));
        assert!(p.probe_due(6_000.0), "held for 5 s");
        assert!(!p.probe_due(7_000.0), "one probe out at a time");
        assert!(!p.on_probe(true), "the server answered: the poll stays");
        assert!(
            !p.probe_due(10_999.0),
            "5 s after the last probe, not after the poll"
        );
        assert!(p.probe_due(11_000.0));
        assert!(
            p.on_probe(false),
            "the probe got nothing back: give the poll up"
        );
        // The aborted poll fails; the next one asks for no wait and dies sooner.
        assert!(matches!(
            p.on_error(&Error::Network("AbortError".into()), 0.5),
            PollAction::Poll { .. }
        ));
        assert!(!p.probe_due(20_000.0), "nothing held between polls");
        assert_eq!(p.on_sent(20_000.0), DEAD_AFTER_MS);
    }

    #[test]
    fn a_failed_probe_leaves_alone_a_poll_sent_after_it() {
        let mut p = policy();
        p.on_sent(0.0);
        assert!(p.probe_due(5_000.0));
        p.on_answer(3);
        p.on_sent(5_500.0);
        assert!(
            !p.on_probe(false),
            "the poll sent after the probe has its own deadline and probe"
        );
        assert!(p.probe_due(10_500.0), "and is probed in its turn");
    }

    #[test]
    fn a_short_polling_session_pauses_between_answers() {
        let mut p = PollPolicy::new(0, 0, 1_000, Backoff::new(250.0, 5_000.0));
        assert_eq!(p.wait_ms(), 0);
        assert_eq!(p.on_answer(0), PollAction::Poll { after_ms: 1_000 });
    }
}

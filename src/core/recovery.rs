//! Keeping one peer link alive: ICE `disconnected` gets a grace period, then an ICE restart;
//! `failed` restarts ICE at once; a restart that does not reconnect in time, or a link that
//! never connects, is rebuilt from scratch. Time is passed in; nothing sleeps.

/// Timings, in milliseconds. Defaults are in line with mature WebRTC stacks: browsers
/// themselves move from `disconnected` to `failed` after several seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// How long `disconnected` may last before an ICE restart (it often heals by itself).
    pub disconnected_grace_ms: u32,
    /// How long an ICE restart may take before the connection is rebuilt.
    pub restart_timeout_ms: u32,
    /// How long a new connection may take to connect before it is rebuilt.
    pub connect_timeout_ms: u32,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        Self {
            disconnected_grace_ms: 3_000,
            restart_timeout_ms: 10_000,
            connect_timeout_ms: 20_000,
        }
    }
}

/// ICE connection state, as the browser reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceState {
    /// `new` or `checking`.
    Connecting,
    /// `connected` or `completed`.
    Connected,
    /// `disconnected`.
    Disconnected,
    /// `failed`.
    Failed,
    /// `closed`.
    Closed,
}

impl IceState {
    /// Reads the browser's `iceConnectionState` string.
    pub fn parse(state: &str) -> Self {
        match state {
            "connected" | "completed" => IceState::Connected,
            "disconnected" => IceState::Disconnected,
            "failed" => IceState::Failed,
            "closed" => IceState::Closed,
            _ => IceState::Connecting,
        }
    }
}

/// What the link should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryAction {
    /// Nothing.
    Wait,
    /// Call `restartIce()` (which renegotiates with fresh ICE credentials).
    RestartIce,
    /// Close the peer connection and build a new one.
    Rebuild,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Connecting { since: f64 },
    Connected,
    Grace { since: f64 },
    Restarting { since: f64 },
    Closed,
}

/// The recovery state of one link.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    options: RecoveryOptions,
    phase: Phase,
    restarts: u32,
    rebuilds: u32,
}

impl Recovery {
    /// A link created at `now`.
    pub fn new(options: RecoveryOptions, now: f64) -> Self {
        Self {
            options,
            phase: Phase::Connecting { since: now },
            restarts: 0,
            rebuilds: 0,
        }
    }

    /// The browser reported a new ICE state.
    pub fn on_ice_state(&mut self, state: IceState, now: f64) -> RecoveryAction {
        match (state, self.phase) {
            (IceState::Closed, _) => {
                self.phase = Phase::Closed;
                RecoveryAction::Wait
            }
            (_, Phase::Closed) => RecoveryAction::Wait,
            (IceState::Connected, _) => {
                self.phase = Phase::Connected;
                RecoveryAction::Wait
            }
            (IceState::Disconnected, Phase::Connected) => {
                self.phase = Phase::Grace { since: now };
                RecoveryAction::Wait
            }
            (IceState::Failed, Phase::Restarting { .. }) => RecoveryAction::Wait,
            (IceState::Failed, _) => self.restart(now),
            _ => RecoveryAction::Wait,
        }
    }

    /// Time passed; call every second or so.
    pub fn on_tick(&mut self, now: f64) -> RecoveryAction {
        let o = self.options;
        match self.phase {
            Phase::Grace { since } if now - since >= f64::from(o.disconnected_grace_ms) => {
                self.restart(now)
            }
            Phase::Restarting { since } if now - since >= f64::from(o.restart_timeout_ms) => {
                self.rebuild(now)
            }
            Phase::Connecting { since } if now - since >= f64::from(o.connect_timeout_ms) => {
                self.rebuild(now)
            }
            _ => RecoveryAction::Wait,
        }
    }

    /// Signaling is back after an outage. Whatever the link was waiting for (the answer to an
    /// ICE restart, a new connection's first answer) could not arrive meanwhile, so its
    /// timeout starts again now instead of expiring just as the answer comes.
    pub fn on_signaling_resumed(&mut self, now: f64) {
        match &mut self.phase {
            Phase::Restarting { since } | Phase::Connecting { since } => *since = now,
            _ => {}
        }
    }

    /// True between a problem and its resolution.
    pub fn is_recovering(&self) -> bool {
        matches!(self.phase, Phase::Grace { .. } | Phase::Restarting { .. })
    }

    /// ICE restarts and rebuilds so far.
    pub fn attempts(&self) -> (u32, u32) {
        (self.restarts, self.rebuilds)
    }

    fn restart(&mut self, now: f64) -> RecoveryAction {
        self.phase = Phase::Restarting { since: now };
        self.restarts += 1;
        RecoveryAction::RestartIce
    }

    fn rebuild(&mut self, now: f64) -> RecoveryAction {
        self.phase = Phase::Connecting { since: now };
        self.rebuilds += 1;
        RecoveryAction::Rebuild
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connected() -> Recovery {
        let mut r = Recovery::new(RecoveryOptions::default(), 0.0);
        r.on_ice_state(IceState::Connected, 100.0);
        r
    }

    #[test]
    fn an_outage_of_signaling_does_not_use_up_the_time_a_rebuilt_link_has_to_connect() {
        let mut r = connected();
        r.on_ice_state(IceState::Failed, 1_000.0);
        assert_eq!(r.on_tick(11_000.0), RecoveryAction::Rebuild);
        // The new link's offer waits for signaling, back at 30 s.
        r.on_signaling_resumed(30_000.0);
        assert_eq!(
            r.on_tick(40_000.0),
            RecoveryAction::Wait,
            "20 s from the resume"
        );
        assert_eq!(r.on_tick(50_000.0), RecoveryAction::Rebuild);
        // A restart waiting for its answer gets its full time too.
        let mut r = connected();
        r.on_ice_state(IceState::Failed, 1_000.0);
        r.on_signaling_resumed(9_000.0);
        assert_eq!(r.on_tick(18_999.0), RecoveryAction::Wait);
        assert_eq!(r.on_tick(19_000.0), RecoveryAction::Rebuild);
        // A healthy link is not touched.
        let mut r = connected();
        r.on_signaling_resumed(9_000.0);
        assert!(!r.is_recovering());
    }

    #[test]
    fn a_short_disconnection_heals_without_a_restart() {
        let mut r = connected();
        assert_eq!(
            r.on_ice_state(IceState::Disconnected, 1_000.0),
            RecoveryAction::Wait
        );
        assert!(r.is_recovering());
        assert_eq!(r.on_tick(2_000.0), RecoveryAction::Wait);
        assert_eq!(
            r.on_ice_state(IceState::Connected, 2_500.0),
            RecoveryAction::Wait
        );
        assert_eq!(r.on_tick(10_000.0), RecoveryAction::Wait);
        assert_eq!(r.attempts(), (0, 0));
    }

    #[test]
    fn a_long_disconnection_restarts_ice_after_the_grace_period() {
        let mut r = connected();
        r.on_ice_state(IceState::Disconnected, 1_000.0);
        assert_eq!(r.on_tick(3_999.0), RecoveryAction::Wait);
        assert_eq!(r.on_tick(4_000.0), RecoveryAction::RestartIce);
        assert_eq!(
            r.on_tick(4_500.0),
            RecoveryAction::Wait,
            "one restart, not one per tick"
        );
    }

    #[test]
    fn failed_restarts_ice_at_once() {
        let mut r = connected();
        assert_eq!(
            r.on_ice_state(IceState::Failed, 500.0),
            RecoveryAction::RestartIce
        );
        assert_eq!(
            r.on_ice_state(IceState::Failed, 600.0),
            RecoveryAction::Wait,
            "already restarting"
        );
    }

    #[test]
    fn a_restart_that_does_not_reconnect_in_time_rebuilds_the_connection() {
        let mut r = connected();
        r.on_ice_state(IceState::Failed, 1_000.0);
        r.on_ice_state(IceState::Connecting, 1_100.0);
        assert_eq!(r.on_tick(10_999.0), RecoveryAction::Wait);
        assert_eq!(r.on_tick(11_000.0), RecoveryAction::Rebuild);
        assert_eq!(r.attempts(), (1, 1));
        // The rebuilt link connects and all is well.
        assert_eq!(
            r.on_ice_state(IceState::Connected, 12_000.0),
            RecoveryAction::Wait
        );
        assert!(!r.is_recovering());
    }

    #[test]
    fn a_link_that_never_connects_is_rebuilt_after_the_connect_timeout() {
        let mut r = Recovery::new(RecoveryOptions::default(), 0.0);
        r.on_ice_state(IceState::Connecting, 10.0);
        assert_eq!(r.on_tick(19_999.0), RecoveryAction::Wait);
        assert_eq!(r.on_tick(20_000.0), RecoveryAction::Rebuild);
        assert_eq!(r.on_tick(39_999.0), RecoveryAction::Wait);
        assert_eq!(
            r.on_tick(40_000.0),
            RecoveryAction::Rebuild,
            "and again, until it connects"
        );
    }

    #[test]
    fn a_closed_link_does_nothing_more() {
        let mut r = connected();
        r.on_ice_state(IceState::Closed, 0.0);
        assert_eq!(r.on_ice_state(IceState::Failed, 1.0), RecoveryAction::Wait);
        assert_eq!(r.on_tick(1e9), RecoveryAction::Wait);
    }

    #[test]
    fn browser_state_names_parse() {
        assert_eq!(IceState::parse("completed"), IceState::Connected);
        assert_eq!(IceState::parse("checking"), IceState::Connecting);
        assert_eq!(IceState::parse("new"), IceState::Connecting);
        assert_eq!(IceState::parse("failed"), IceState::Failed);
        assert_eq!(IceState::parse("bogus"), IceState::Connecting);
    }
}

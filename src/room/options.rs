//! What an app passes to `Room::join`, with defaults in line with mature WebRTC libraries.

use callroom_protocol::{is_valid_room_id, IceServer, Role, Topology, NAME_MAX_LEN};

use crate::core::recovery::RecoveryOptions;
use crate::media::MediaRequest;
use crate::Error;

/// Options for joining a room.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinOptions {
    /// Signaling server base URL; empty means the page's own origin.
    pub server: String,
    /// Room id, `[A-Za-z0-9_-]{1,64}`.
    pub room: String,
    /// `peer` for a mesh room; `host` or `guest` for a hub.
    pub role: Role,
    /// The room's topology: the first joiner fixes it, and a later join must ask for the same
    /// (`topology_mismatch` otherwise). `None`: the role's ([`Role::topology`]).
    pub topology: Option<Topology>,
    /// Display name.
    pub name: String,
    /// Join ticket from the app's backend, when the server requires one.
    pub ticket: Option<String>,
    /// What to capture and publish on join; `None` joins without publishing.
    pub media: Option<MediaRequest>,
    /// ICE servers to use instead of the server's.
    pub ice_servers: Option<Vec<IceServer>>,
    /// ICE recovery timings.
    pub recovery: RecoveryOptions,
    /// How long each long-poll waits for a message, ms.
    pub poll_wait_ms: u32,
    /// Pause between polls, ms. 0 (the default) polls again at once; with `poll_wait_ms: 0`
    /// and 1000 here, the client short-polls once a second (for comparisons).
    pub poll_interval_ms: u32,
    /// First retry delay after a failed signaling request, ms.
    pub retry_base_ms: u32,
    /// Longest retry delay, ms.
    pub retry_max_ms: u32,
    /// How often quality is measured, ms.
    pub stats_interval_ms: u32,
}

impl JoinOptions {
    /// Defaults for `room`: same-origin server, role `peer`, camera and microphone.
    pub fn new(room: &str) -> Self {
        Self {
            server: String::new(),
            room: room.to_owned(),
            role: Role::Peer,
            topology: None,
            name: String::new(),
            ticket: None,
            media: Some(MediaRequest::camera_and_microphone()),
            ice_servers: None,
            recovery: RecoveryOptions::default(),
            poll_wait_ms: 25_000,
            poll_interval_ms: 0,
            retry_base_ms: 250,
            retry_max_ms: 2_000,
            stats_interval_ms: 2_000,
        }
    }

    /// Checks what the server would refuse anyway, before any network traffic.
    pub fn validate(&self) -> Result<(), Error> {
        if !is_valid_room_id(&self.room) {
            return Err(Error::InvalidArgument(
                "room must match [A-Za-z0-9_-]{1,64}".into(),
            ));
        }
        if let Some(topology) = self.topology.filter(|t| !t.admits(self.role)) {
            return Err(Error::InvalidArgument(format!(
                "role `{}` cannot join a {} room",
                self.role.as_str(),
                topology.as_str()
            )));
        }
        if self.name.chars().count() > NAME_MAX_LEN {
            return Err(Error::InvalidArgument(format!(
                "name must be at most {NAME_MAX_LEN} characters"
            )));
        }
        if self.poll_wait_ms > callroom_protocol::MAX_WAIT_MS as u32 {
            return Err(Error::InvalidArgument(
                "pollWaitMs must be at most 30000".into(),
            ));
        }
        if self.poll_interval_ms > 60_000 {
            return Err(Error::InvalidArgument(
                "pollIntervalMs must be at most 60000".into(),
            ));
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            return Err(Error::InvalidArgument(
                "retry delays must be positive and retryMaxMs >= retryBaseMs".into(),
            ));
        }
        if self.stats_interval_ms < 500 {
            return Err(Error::InvalidArgument(
                "statsIntervalMs must be at least 500".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_publish_camera_and_microphone_to_the_same_origin() {
        let o = JoinOptions::new("standup");
        assert_eq!(o.server, "");
        assert_eq!(o.role, Role::Peer);
        assert!(o.media.is_some());
        assert_eq!(o.poll_wait_ms, 25_000);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn bad_options_are_invalid_argument_errors_that_name_the_rule() {
        type Break = fn(&mut JoinOptions);
        let cases: [(&str, Break); 7] = [
            ("room must match", |o| o.room = "no spaces allowed".into()),
            ("pollWaitMs must be at most 30000", |o| {
                o.poll_wait_ms = 60_000
            }),
            ("retryMaxMs >= retryBaseMs", |o| o.retry_max_ms = 10),
            ("retry delays must be positive", |o| o.retry_base_ms = 0),
            ("name must be at most 64", |o| o.name = "x".repeat(65)),
            ("statsIntervalMs must be at least 500", |o| {
                o.stats_interval_ms = 10
            }),
            ("role `guest` cannot join a mesh room", |o| {
                o.role = Role::Guest;
                o.topology = Some(Topology::Mesh);
            }),
        ];
        for (rule, break_it) in cases {
            let mut o = JoinOptions::new("ok");
            break_it(&mut o);
            let error = o.validate().unwrap_err();
            assert_eq!(error.code(), "invalid_argument", "{rule}");
            assert!(
                error.to_string().contains(rule),
                "expected the rule `{rule}` to fire, got `{error}`"
            );
        }
        let mut hub = JoinOptions::new("ok");
        hub.role = Role::Host;
        hub.topology = Some(Topology::Hub);
        assert_eq!(hub.validate(), Ok(()));
    }
}

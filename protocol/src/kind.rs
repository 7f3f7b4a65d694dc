//! Message types: what a delivered message is, by its `type`.

/// The type of a message delivered by `GET /messages`: a relay between peers, or an event
/// from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// An SDP offer (relay).
    Offer,
    /// An SDP answer (relay).
    Answer,
    /// A trickled ICE candidate (relay).
    Candidate,
    /// The sender rebuilt its connection to the recipient, which should rebuild its own
    /// (relay; always followed by the new connection's offer).
    PeerReset,
    /// Someone joined the recipient's room (server event).
    PeerJoined,
    /// Someone left the recipient's room (server event).
    PeerLeft,
    /// The hub's host rejoined as a new peer (server event).
    HostReset,
    /// A peer of an SFU room changed what it publishes (server event).
    SfuTracks,
}

const ALL: [MessageKind; 8] = [
    MessageKind::Offer,
    MessageKind::Answer,
    MessageKind::Candidate,
    MessageKind::PeerReset,
    MessageKind::PeerJoined,
    MessageKind::PeerLeft,
    MessageKind::HostReset,
    MessageKind::SfuTracks,
];

impl MessageKind {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Offer => "offer",
            MessageKind::Answer => "answer",
            MessageKind::Candidate => "candidate",
            MessageKind::PeerReset => "peer-reset",
            MessageKind::PeerJoined => "peer-joined",
            MessageKind::PeerLeft => "peer-left",
            MessageKind::HostReset => "host-reset",
            MessageKind::SfuTracks => "sfu-tracks",
        }
    }

    /// The kind with this spelling; `None` for types this version does not know, which a
    /// client ignores (a newer peer or server may send them).
    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// True for the events only the server emits (`from` is `null`).
    pub const fn is_server_event(self) -> bool {
        matches!(
            self,
            MessageKind::PeerJoined
                | MessageKind::PeerLeft
                | MessageKind::HostReset
                | MessageKind::SfuTracks
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_and_unknown_ones_are_none() {
        for kind in ALL {
            assert_eq!(MessageKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MessageKind::parse("from-the-future"), None);
    }

    #[test]
    fn server_events_are_reserved_and_relays_are_valid_relay_types() {
        for kind in ALL {
            assert_eq!(
                crate::RESERVED_TYPES.contains(&kind.as_str()),
                kind.is_server_event(),
                "{kind:?}"
            );
            assert_eq!(
                crate::is_valid_relay_type(kind.as_str()),
                !kind.is_server_event(),
                "{kind:?}"
            );
        }
    }
}

//! Every JSON shape that crosses the network between the callroom library and
//! `callroom-server`, defined once.
//!
//! Payloads of relayed messages are generic: the server keeps them opaque
//! (`serde_json::Value`), the browser side decodes them into typed
//! [`SessionDescription`] / [`IceCandidate`] values without pulling in serde_json.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use serde::{Deserialize, Serialize};

#[cfg(feature = "calls")]
pub mod calls;
mod code;
mod kind;
pub use code::ErrorCode;
pub use kind::MessageKind;

/// Longest accepted room id.
pub const ROOM_ID_MAX_LEN: usize = 64;
/// Longest accepted display name, in characters.
pub const NAME_MAX_LEN: usize = 64;
/// Longest accepted relay message type.
pub const MESSAGE_TYPE_MAX_LEN: usize = 32;
/// Longest long-poll wait a client may ask for, in milliseconds.
pub const MAX_WAIT_MS: u64 = 30_000;

/// True when `id` matches `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_room_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ROOM_ID_MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// True when `kind` is an acceptable relay message type: `[a-z0-9-]{1,32}`
/// and not one of the types the server reserves for itself.
pub fn is_valid_relay_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MESSAGE_TYPE_MAX_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !RESERVED_TYPES.contains(&kind)
}

/// Message types that only the server emits, or that mean something else in a request.
pub const RESERVED_TYPES: &[&str] = &[
    "join",
    "leave",
    MessageKind::PeerJoined.as_str(),
    MessageKind::PeerLeft.as_str(),
    MessageKind::HostReset.as_str(),
    MessageKind::SfuTracks.as_str(),
];

/// How the peers of a room connect, fixed by the room's first joiner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Everyone connects to everyone.
    Mesh,
    /// One host, many guests; guests connect only to the host.
    Hub,
    /// Everyone connects once to a selective forwarding unit, through the server's Calls
    /// proxy; peers never message each other.
    Sfu,
}

/// A participant's role in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A member of a mesh room.
    Peer,
    /// The centre of a hub room.
    Host,
    /// A spoke of a hub room.
    Guest,
}

impl Role {
    /// The topology a room gets when a peer with this role creates it without naming one.
    pub fn topology(self) -> Topology {
        match self {
            Role::Peer => Topology::Mesh,
            Role::Host | Role::Guest => Topology::Hub,
        }
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Peer => "peer",
            Role::Host => "host",
            Role::Guest => "guest",
        }
    }

    /// The role with this wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Role::Peer, Role::Host, Role::Guest]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

impl Topology {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Topology::Mesh => "mesh",
            Topology::Hub => "hub",
            Topology::Sfu => "sfu",
        }
    }

    /// The topology with this wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Topology::Mesh, Topology::Hub, Topology::Sfu]
            .into_iter()
            .find(|t| t.as_str() == text)
    }

    /// True when a peer with `role` may be a member of a room of this topology: `peer`s in
    /// a mesh or an SFU room, `host` and `guest`s in a hub.
    pub fn admits(self, role: Role) -> bool {
        match self {
            Topology::Mesh | Topology::Sfu => role == Role::Peer,
            Topology::Hub => matches!(role, Role::Host | Role::Guest),
        }
    }

    /// True when members with roles `a` and `b` connect to (and so may message) each other:
    /// everyone in a mesh; in a hub, the host and each guest, never two guests; nobody in an
    /// SFU room, where everyone connects to the SFU instead.
    pub fn links(self, a: Role, b: Role) -> bool {
        match self {
            Topology::Mesh => true,
            Topology::Sfu => false,
            Topology::Hub => matches!(
                (a, b),
                (Role::Host, Role::Guest) | (Role::Guest, Role::Host)
            ),
        }
    }
}

/// One participant as the server describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerInfo {
    /// Server-minted id, unique within the server.
    pub peer_id: String,
    /// The participant's role.
    pub role: Role,
    /// Display name chosen by the participant.
    pub name: String,
}

/// An ICE server entry as `RTCPeerConnection` expects it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// One or more `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username, when the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential, when the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `POST /signaling` with `"type":"join"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    /// Room to join or create.
    pub room: String,
    /// Role to join as.
    pub role: Role,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// A join ticket signed by the embedding app's backend, when the server requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// The topology to create the room with; ignored when the room exists, where the role
    /// must fit the room's topology. `None` means the role's default ([`Role::topology`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<Topology>,
    /// A hub host's reclaim key (from an earlier join's answer): proof to take the host seat
    /// while another host holds it (a reload, a second tab of the same host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<String>,
}

/// The answer to a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    /// Our id in the room.
    pub peer_id: String,
    /// Bearer token for every later call; the server keeps only its hash.
    pub token: String,
    /// The room joined.
    pub room: String,
    /// The room's topology.
    pub topology: Topology,
    /// Our role.
    pub role: Role,
    /// Everyone else already in the room.
    pub peers: Vec<PeerInfo>,
    /// Cursor to start polling from.
    pub cursor: u64,
    /// ICE servers to use.
    pub ice_servers: Vec<IceServer>,
    /// A hub host's key to reclaim its seat on a later join (`JoinRequest::reclaim`); each
    /// host join gets a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim_key: Option<String>,
    /// Most peers the room holds (0: not said), so a client can cap its connections.
    #[serde(default)]
    pub capacity: u32,
}

/// `POST /signaling` with any relay type: a message for one other peer of the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayRequest<P> {
    /// Message type (`offer`, `answer`, `candidate`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Recipient peer id, in the sender's room.
    pub to: String,
    /// Opaque to the server.
    pub payload: P,
}

/// Why a peer left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaveReason {
    /// It said `leave`.
    Left,
    /// It stopped polling for longer than the server's peer timeout.
    Timeout,
    /// A hub host rejoined and reset the room.
    Reset,
}

impl LeaveReason {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Left => "left",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Reset => "reset",
        }
    }

    /// The reason with this wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [LeaveReason::Left, LeaveReason::Timeout, LeaveReason::Reset]
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

/// Payload of a `peer-left` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerLeft {
    /// Who left.
    pub peer_id: String,
    /// Why.
    pub reason: LeaveReason,
}

/// Payload of a `host-reset` event: the hub's host rejoined as a new peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostReset {
    /// The new host.
    pub host: PeerInfo,
    /// The host it replaced, now gone from the room.
    pub previous_peer_id: String,
}

/// One track a peer publishes through the SFU, as its room hears of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuTrack {
    /// The Calls track name to pull it by (the server names pushed tracks).
    pub track_name: String,
    /// `audio` or `video`.
    pub kind: String,
    /// Simulcast layers (`rid`s) it is sent in; empty when it is not simulcast.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rids: Vec<String>,
}

/// Payload of an `sfu-tracks` event: everything a peer of an SFU room publishes now (an empty
/// list when it stopped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfuTracks {
    /// The publisher.
    pub peer_id: String,
    /// Its Calls session, to pull from.
    pub session_id: String,
    /// Its tracks.
    pub tracks: Vec<SfuTrack>,
}

/// One message delivered to a recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message<P> {
    /// Per-recipient sequence number: strictly increasing, no gaps.
    pub seq: u64,
    /// Relay type, or a server event (`peer-joined`, `peer-left`, `host-reset`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Sender peer id; `null` for server events.
    #[serde(default)]
    pub from: Option<String>,
    /// The relayed payload or the event's body.
    pub payload: P,
}

/// The answer to `GET /messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse<P> {
    /// Messages after `since`, in order.
    pub messages: Vec<Message<P>>,
    /// Cursor for the next poll.
    pub cursor: u64,
}

/// The answer to `POST /turn-credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnCredentials {
    /// ICE servers valid for `ttl` seconds.
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServer>,
    /// Lifetime of the credentials, in seconds.
    pub ttl: u64,
}

/// An SDP offer or answer as carried in an `offer` / `answer` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer`, `answer`, `pranswer` or `rollback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The SDP text.
    #[serde(default)]
    pub sdp: String,
}

/// A trickled ICE candidate as carried in a `candidate` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:` line; empty for end-of-candidates.
    pub candidate: String,
    /// Media id the candidate belongs to.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Media line index the candidate belongs to.
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
    /// ICE ufrag, which tells candidates of an old ICE generation from new ones.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// The body of every error response: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// A stable error code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable, machine-readable code (`room_full`, `unauthorized`, ...).
    pub code: String,
    /// Human-readable explanation; never contains internals.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn round_trip<T>(value: &T, expected: Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let encoded = serde_json::to_value(value).unwrap();
        assert_eq!(encoded, expected);
        let decoded: T = serde_json::from_value(encoded).unwrap();
        assert_eq!(&decoded, value);
    }

    #[test]
    fn room_ids_accept_only_the_documented_alphabet_and_length() {
        assert!(is_valid_room_id("standup_2-B"));
        assert!(is_valid_room_id(&"a".repeat(64)));
        assert!(!is_valid_room_id(""));
        assert!(!is_valid_room_id(&"a".repeat(65)));
        assert!(!is_valid_room_id("a b"));
        assert!(!is_valid_room_id("../etc"));
        assert!(!is_valid_room_id("café"));
    }

    #[test]
    fn relay_types_are_open_but_server_types_are_reserved() {
        for ok in [
            "offer",
            "answer",
            "candidate",
            "ice-restart",
            "renegotiate2",
        ] {
            assert!(is_valid_relay_type(ok), "{ok}");
        }
        for bad in [
            "",
            "join",
            "leave",
            "peer-left",
            "host-reset",
            "Offer",
            "a b",
        ] {
            assert!(!is_valid_relay_type(bad), "{bad}");
        }
        assert!(!is_valid_relay_type(&"x".repeat(33)));
    }

    #[test]
    fn wire_names_parse_back_and_unknown_ones_are_none() {
        for role in [Role::Peer, Role::Host, Role::Guest] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            assert_eq!(serde_json::to_value(role).unwrap(), json!(role.as_str()));
        }
        for topology in [Topology::Mesh, Topology::Hub, Topology::Sfu] {
            assert_eq!(Topology::parse(topology.as_str()), Some(topology));
            assert_eq!(
                serde_json::to_value(topology).unwrap(),
                json!(topology.as_str())
            );
        }
        for reason in [LeaveReason::Left, LeaveReason::Timeout, LeaveReason::Reset] {
            assert_eq!(LeaveReason::parse(reason.as_str()), Some(reason));
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                json!(reason.as_str())
            );
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Topology::parse("star"), None);
        assert_eq!(LeaveReason::parse("kicked"), None);
    }

    #[test]
    fn a_mesh_links_everyone_and_a_hub_links_host_and_guests_only() {
        use Role::*;
        assert!(Topology::Mesh.links(Peer, Peer));
        assert!(Topology::Hub.links(Host, Guest));
        assert!(Topology::Hub.links(Guest, Host));
        assert!(!Topology::Hub.links(Guest, Guest));
        assert!(!Topology::Hub.links(Host, Host));
        assert!(Topology::Mesh.admits(Peer) && !Topology::Mesh.admits(Host));
        assert!(Topology::Hub.admits(Guest) && !Topology::Hub.admits(Peer));
        assert!(
            !Topology::Sfu.links(Peer, Peer),
            "SFU peers talk to the SFU only"
        );
        assert!(Topology::Sfu.admits(Peer) && !Topology::Sfu.admits(Host));
    }

    #[test]
    fn roles_decide_the_topology_of_a_new_room() {
        assert_eq!(Role::Peer.topology(), Topology::Mesh);
        assert_eq!(Role::Host.topology(), Topology::Hub);
        assert_eq!(Role::Guest.topology(), Topology::Hub);
    }

    #[test]
    fn join_response_uses_camel_case_on_the_wire() {
        round_trip(
            &JoinResponse {
                peer_id: "p1".into(),
                token: "t".into(),
                room: "r".into(),
                topology: Topology::Hub,
                role: Role::Host,
                peers: vec![PeerInfo {
                    peer_id: "p0".into(),
                    role: Role::Guest,
                    name: "Ann".into(),
                }],
                cursor: 7,
                ice_servers: vec![IceServer {
                    urls: vec!["stun:stun.example.org".into()],
                    username: None,
                    credential: None,
                }],
                reclaim_key: Some("k".into()),
                capacity: 16,
            },
            json!({
                "peerId": "p1", "token": "t", "room": "r", "topology": "hub", "role": "host",
                "peers": [{"peerId": "p0", "role": "guest", "name": "Ann"}],
                "cursor": 7,
                "iceServers": [{"urls": ["stun:stun.example.org"]}],
                "reclaimKey": "k",
                "capacity": 16
            }),
        );
    }

    #[test]
    fn join_request_name_and_ticket_are_optional() {
        let req: JoinRequest =
            serde_json::from_value(json!({"room": "r", "role": "peer"})).unwrap();
        assert_eq!(req.name, "");
        assert_eq!(req.ticket, None);
        assert_eq!(req.topology, None);
        round_trip(
            &JoinRequest {
                room: "r".into(),
                role: Role::Guest,
                name: "Bo".into(),
                ticket: Some("jwt".into()),
                topology: Some(Topology::Hub),
                reclaim: Some("k".into()),
            },
            json!({"room": "r", "role": "guest", "name": "Bo", "ticket": "jwt", "topology": "hub", "reclaim": "k"}),
        );
    }

    #[test]
    fn unknown_roles_are_rejected() {
        assert!(
            serde_json::from_value::<JoinRequest>(json!({"room": "r", "role": "admin"})).is_err()
        );
    }

    #[test]
    fn messages_carry_seq_type_from_and_payload() {
        round_trip(
            &MessagesResponse {
                messages: vec![Message {
                    seq: 3,
                    kind: "offer".into(),
                    from: Some("p2".into()),
                    payload: SessionDescription {
                        kind: "offer".into(),
                        sdp: "v=0".into(),
                    },
                }],
                cursor: 3,
            },
            json!({"messages": [{"seq": 3, "type": "offer", "from": "p2",
                                 "payload": {"type": "offer", "sdp": "v=0"}}],
                   "cursor": 3}),
        );
    }

    #[test]
    fn server_events_have_a_null_sender() {
        round_trip(
            &Message {
                seq: 1,
                kind: "peer-left".into(),
                from: None,
                payload: PeerLeft {
                    peer_id: "p9".into(),
                    reason: LeaveReason::Timeout,
                },
            },
            json!({"seq": 1, "type": "peer-left", "from": null,
                   "payload": {"peerId": "p9", "reason": "timeout"}}),
        );
    }

    #[test]
    fn sfu_tracks_events_name_the_session_and_each_tracks_kind_and_layers() {
        round_trip(
            &SfuTracks {
                peer_id: "p1".into(),
                session_id: "s1".into(),
                tracks: vec![
                    SfuTrack {
                        track_name: "p1-cam".into(),
                        kind: "video".into(),
                        rids: vec!["f".into(), "h".into()],
                    },
                    SfuTrack {
                        track_name: "p1-mic".into(),
                        kind: "audio".into(),
                        rids: vec![],
                    },
                ],
            },
            json!({"peerId": "p1", "sessionId": "s1", "tracks": [
                {"trackName": "p1-cam", "kind": "video", "rids": ["f", "h"]},
                {"trackName": "p1-mic", "kind": "audio"}]}),
        );
    }

    #[test]
    fn relay_request_keeps_its_payload_opaque() {
        round_trip(
            &RelayRequest {
                kind: "candidate".into(),
                to: "p3".into(),
                payload: json!({"anything": [1, 2]}),
            },
            json!({"type": "candidate", "to": "p3", "payload": {"anything": [1, 2]}}),
        );
    }

    #[test]
    fn ice_candidates_match_the_browser_init_dictionary() {
        round_trip(
            &IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
                username_fragment: Some("abcd".into()),
            },
            json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host",
                   "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"}),
        );
    }

    #[test]
    fn errors_have_the_documented_envelope() {
        round_trip(
            &ErrorResponse {
                error: ErrorBody {
                    code: "room_full".into(),
                    message: "room is full".into(),
                },
            },
            json!({"error": {"code": "room_full", "message": "room is full"}}),
        );
    }

    #[test]
    fn turn_credentials_use_ice_servers_and_ttl() {
        round_trip(
            &TurnCredentials {
                ice_servers: vec![IceServer {
                    urls: vec!["turn:turn.example.org:3478".into()],
                    username: Some("1700000000:p1".into()),
                    credential: Some("c2VjcmV0".into()),
                }],
                ttl: 86_400,
            },
            json!({"iceServers": [{"urls": ["turn:turn.example.org:3478"],
                                   "username": "1700000000:p1", "credential": "c2VjcmV0"}],
                   "ttl": 86400}),
        );
    }
}

//! The protocol's types to and from plain JavaScript objects (what `JSON.parse` gives and
//! `JSON.stringify` takes). The shapes are the `callroom-protocol` serde definitions; this
//! mapping exists because a serde runtime costs the browser bundle tens of kilobytes, and a
//! browser test round-trips every type through those serde definitions to keep the two equal.

use callroom_protocol::{
    HostReset, IceCandidate, IceServer, JoinRequest, JoinResponse, LeaveReason, PeerInfo, PeerLeft,
    Role, SessionDescription, SfuTrack, SfuTracks, Topology,
};
use std::cell::Cell;

use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::web::js::{get, set};
use crate::Error;

fn malformed(what: &str) -> Error {
    Error::Protocol(String::from("malformed ") + what)
}

/// Reads one object's fields. A wrong field gives an empty value and marks the read
/// malformed, which `done` reports once: no early return per field, each of which would drop
/// every field read before it (in wasm, cleanup code for every field of every decoder).
struct Reader<'a> {
    v: &'a JsValue,
    ok: Cell<bool>,
}

impl<'a> Reader<'a> {
    fn new(v: &'a JsValue) -> Self {
        Self {
            v,
            ok: Cell::new(true),
        }
    }

    fn fail(&self) {
        self.ok.set(false);
    }

    fn string(&self, key: &str) -> String {
        get(self.v, key).as_string().unwrap_or_else(|| {
            self.fail();
            String::new()
        })
    }

    fn optional_string(&self, key: &str) -> Option<String> {
        let value = get(self.v, key);
        if value.is_undefined() || value.is_null() {
            return None;
        }
        let text = value.as_string();
        if text.is_none() {
            self.fail();
        }
        text
    }

    /// A non-negative integer that JSON numbers represent exactly.
    fn count(&self, key: &str) -> u64 {
        match get(self.v, key).as_f64() {
            Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 => n as u64,
            _ => {
                self.fail();
                0
            }
        }
    }

    /// A field parsed from text (`Role::parse`, ...); `fallback` marks the read malformed.
    fn parsed<T>(&self, key: &str, parse: fn(&str) -> Option<T>, fallback: T) -> T {
        parse(&self.string(key)).unwrap_or_else(|| {
            self.fail();
            fallback
        })
    }

    /// An array field, each element decoded by `item` (which fails on its own terms).
    fn list<T>(&self, key: &str, item: fn(&JsValue) -> Result<T, Error>) -> Vec<T> {
        let Some(array) = get(self.v, key).dyn_into::<Array>().ok() else {
            self.fail();
            return Vec::new();
        };
        let mut out = Vec::new();
        for value in array.iter() {
            match item(&value) {
                Ok(value) => out.push(value),
                Err(_) => self.fail(),
            }
        }
        out
    }

    fn done<T>(self, value: T, what: &str) -> Result<T, Error> {
        if self.ok.get() {
            Ok(value)
        } else {
            Err(malformed(what))
        }
    }
}

/// `PeerInfo`.
pub(crate) fn peer_info(v: &JsValue) -> Result<PeerInfo, Error> {
    let r = Reader::new(v);
    let peer = PeerInfo {
        peer_id: r.string("peerId"),
        role: r.parsed("role", Role::parse, Role::Peer),
        name: r.string("name"),
    };
    r.done(peer, "peer")
}

/// `PeerLeft`.
pub(crate) fn peer_left(v: &JsValue) -> Result<PeerLeft, Error> {
    let r = Reader::new(v);
    let left = PeerLeft {
        peer_id: r.string("peerId"),
        reason: r.parsed("reason", LeaveReason::parse, LeaveReason::Left),
    };
    r.done(left, "peer-left")
}

/// `HostReset`.
pub(crate) fn host_reset(v: &JsValue) -> Result<HostReset, Error> {
    let r = Reader::new(v);
    let host = peer_info(&get(v, "host"));
    if host.is_err() {
        r.fail();
    }
    let previous_peer_id = r.string("previousPeerId");
    let host = r.done(host, "host-reset")?;
    Ok(HostReset {
        host: host?,
        previous_peer_id,
    })
}

fn sfu_track(t: &JsValue) -> Result<SfuTrack, Error> {
    let r = Reader::new(t);
    let rids = match get(t, "rids").dyn_ref::<Array>() {
        Some(list) => list.iter().filter_map(|r| r.as_string()).take(8).collect(),
        None => Vec::new(),
    };
    let track = SfuTrack {
        track_name: r.string("trackName"),
        kind: r.string("kind"),
        rids,
    };
    r.done(track, "sfu-tracks")
}

/// `SfuTracks`.
pub(crate) fn sfu_tracks(v: &JsValue) -> Result<SfuTracks, Error> {
    let r = Reader::new(v);
    let tracks = SfuTracks {
        peer_id: r.string("peerId"),
        session_id: r.string("sessionId"),
        tracks: r.list("tracks", sfu_track),
    };
    r.done(tracks, "sfu-tracks")
}

fn url(u: &JsValue) -> Result<String, Error> {
    u.as_string().ok_or_else(|| malformed("ICE server"))
}

/// `IceServer`.
pub(crate) fn ice_server(v: &JsValue) -> Result<IceServer, Error> {
    let r = Reader::new(v);
    let server = IceServer {
        // The browser accepts one URL as a string too.
        urls: match get(v, "urls").as_string() {
            Some(url) => vec![url],
            None => r.list("urls", url),
        },
        username: r.optional_string("username"),
        credential: r.optional_string("credential"),
    };
    r.done(server, "ICE server")
}

/// A list of `IceServer`s.
pub(crate) fn ice_servers(v: &JsValue) -> Result<Vec<IceServer>, Error> {
    let list = v
        .dyn_ref::<Array>()
        .ok_or_else(|| malformed("ICE server list"))?;
    list.iter().map(|s| ice_server(&s)).collect()
}

/// `JoinResponse`.
pub(crate) fn join_response(v: &JsValue) -> Result<JoinResponse, Error> {
    let r = Reader::new(v);
    let ice_servers = ice_servers(&get(v, "iceServers"));
    if ice_servers.is_err() {
        r.fail();
    }
    let joined = JoinResponse {
        peer_id: r.string("peerId"),
        token: r.string("token"),
        room: r.string("room"),
        topology: r.parsed("topology", Topology::parse, Topology::Mesh),
        role: r.parsed("role", Role::parse, Role::Peer),
        peers: r.list("peers", peer_info),
        cursor: r.count("cursor"),
        ice_servers: ice_servers.unwrap_or_default(),
        reclaim_key: r.optional_string("reclaimKey"),
        capacity: match get(v, "capacity").as_f64() {
            Some(n) if (0.0..=f64::from(u32::MAX)).contains(&n) => n as u32,
            _ => 0,
        },
    };
    r.done(joined, "join answer")
}

/// One message of a poll answer, its payload left as JS for decoding by type.
pub(crate) struct Inbound {
    pub(crate) seq: u64,
    pub(crate) kind: String,
    pub(crate) from: Option<String>,
    pub(crate) payload: JsValue,
}

fn inbound(m: &JsValue) -> Result<Inbound, Error> {
    let r = Reader::new(m);
    let message = Inbound {
        seq: r.count("seq"),
        kind: r.string("type"),
        from: r.optional_string("from"),
        payload: get(m, "payload"),
    };
    r.done(message, "message")
}

/// A `MessagesResponse`: the messages and the next cursor.
pub(crate) fn messages(v: &JsValue) -> Result<(Vec<Inbound>, u64), Error> {
    let r = Reader::new(v);
    let answer = (r.list("messages", inbound), r.count("cursor"));
    r.done(answer, "poll answer")
}

/// `SessionDescription`.
pub(crate) fn session_description(v: &JsValue) -> Result<SessionDescription, Error> {
    let r = Reader::new(v);
    let description = SessionDescription {
        kind: r.string("type"),
        sdp: r.optional_string("sdp").unwrap_or_default(),
    };
    r.done(description, "session description")
}

/// `IceCandidate`.
pub(crate) fn ice_candidate(v: &JsValue) -> Result<IceCandidate, Error> {
    let r = Reader::new(v);
    let index = get(v, "sdpMLineIndex");
    let sdp_m_line_index = if index.is_undefined() || index.is_null() {
        None
    } else {
        match index.as_f64() {
            Some(n) if (0.0..=65_535.0).contains(&n) && n.fract() == 0.0 => Some(n as u16),
            _ => {
                r.fail();
                None
            }
        }
    };
    let candidate = IceCandidate {
        candidate: r.string("candidate"),
        sdp_mid: r.optional_string("sdpMid"),
        sdp_m_line_index,
        username_fragment: r.optional_string("usernameFragment"),
    };
    r.done(candidate, "ICE candidate")
}

/// A `peer-reset` payload carrying its number (`{"n": n}`).
pub(crate) fn peer_reset(n: u32) -> JsValue {
    let o = Object::new();
    set(&o, "n", n);
    o.into()
}

/// Stamps a description or candidate payload with the newest reset number its sender saw
/// from the recipient (`"reset"`).
pub(crate) fn stamp(payload: &JsValue, reset: u32) {
    if let Some(o) = payload.dyn_ref::<Object>() {
        set(o, "reset", reset);
    }
}

/// A `peer-reset` number in a payload (`None` when absent or not one).
pub(crate) fn reset_number(v: &JsValue, key: &str) -> Option<u32> {
    let r = Reader::new(v);
    let n = r.count(key);
    r.done(n, "reset number")
        .ok()
        .and_then(|n| u32::try_from(n).ok())
}

fn set_optional(o: &Object, key: &str, value: &Option<String>) {
    if let Some(value) = value {
        set(o, key, value.as_str());
    }
}

/// `{"type":"join", ...JoinRequest}`.
pub(crate) fn join_request(r: &JoinRequest) -> JsValue {
    let o = Object::new();
    set(&o, "type", "join");
    set(&o, "room", r.room.as_str());
    set(&o, "role", r.role.as_str());
    set(&o, "name", r.name.as_str());
    set_optional(&o, "ticket", &r.ticket);
    set_optional(&o, "reclaim", &r.reclaim);
    if let Some(topology) = r.topology {
        set(&o, "topology", topology.as_str());
    }
    o.into()
}

/// `{"type":"leave"}`.
pub(crate) fn leave() -> JsValue {
    let o = Object::new();
    set(&o, "type", "leave");
    o.into()
}

/// A `RelayRequest`.
pub(crate) fn relay(kind: &str, to: &str, payload: &JsValue) -> JsValue {
    let o = Object::new();
    set(&o, "type", kind);
    set(&o, "to", to);
    set(&o, "payload", payload.clone());
    o.into()
}

/// `SessionDescription` as a payload.
pub(crate) fn session_description_js(d: &SessionDescription) -> JsValue {
    let o = Object::new();
    set(&o, "type", d.kind.as_str());
    set(&o, "sdp", d.sdp.as_str());
    o.into()
}

/// `IceCandidate` as a payload.
pub(crate) fn ice_candidate_js(c: &IceCandidate) -> JsValue {
    let o = Object::new();
    set(&o, "candidate", c.candidate.as_str());
    set(
        &o,
        "sdpMid",
        c.sdp_mid
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str),
    );
    set(
        &o,
        "sdpMLineIndex",
        c.sdp_m_line_index.map_or(JsValue::NULL, JsValue::from),
    );
    set(
        &o,
        "usernameFragment",
        c.username_fragment
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str),
    );
    o.into()
}

/// ICE servers as `RTCConfiguration.iceServers` takes them.
pub(crate) fn ice_servers_js(servers: &[IceServer]) -> JsValue {
    servers
        .iter()
        .map(|s| {
            let o = Object::new();
            set(
                &o,
                "urls",
                s.urls
                    .iter()
                    .map(|u| JsValue::from_str(u))
                    .collect::<Array>(),
            );
            set_optional(&o, "username", &s.username);
            set_optional(&o, "credential", &s.credential);
            JsValue::from(o)
        })
        .collect::<Array>()
        .into()
}

#[cfg(test)]
mod tests {
    //! Runs in the browser (`wasm-pack test`): each mapping against the serde definitions.
    use super::*;
    use callroom_protocol::{JoinRequest, Message, MessagesResponse, RelayRequest};
    use js_sys::JSON;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    /// What a serde-encoded value looks like after `JSON.parse`.
    fn parsed<T: serde::Serialize>(value: &T) -> JsValue {
        JSON::parse(&serde_json::to_string(value).unwrap()).unwrap()
    }

    /// What serde makes of a JS object after `JSON.stringify`.
    fn reparsed<T: serde::de::DeserializeOwned>(value: &JsValue) -> T {
        serde_json::from_str(&JSON::stringify(value).unwrap().as_string().unwrap()).unwrap()
    }

    fn peer(id: &str, role: Role) -> PeerInfo {
        PeerInfo {
            peer_id: id.into(),
            role,
            name: format!("name of {id}"),
        }
    }

    fn servers() -> Vec<IceServer> {
        vec![
            IceServer {
                urls: vec!["stun:s.example.org".into()],
                username: None,
                credential: None,
            },
            IceServer {
                urls: vec![
                    "turn:t.example.org:3478".into(),
                    "turns:t.example.org:443".into(),
                ],
                username: Some("1700000000:p1".into()),
                credential: Some("c2VjcmV0".into()),
            },
        ]
    }

    #[wasm_bindgen_test]
    fn join_answers_decode_as_serde_encodes_them() {
        let answer = JoinResponse {
            peer_id: "p0123456789abcdef".into(),
            token: "t".repeat(32),
            room: "r".into(),
            topology: Topology::Hub,
            role: Role::Guest,
            peers: vec![peer("p1", Role::Host), peer("p2", Role::Guest)],
            cursor: 42,
            ice_servers: servers(),
            reclaim_key: None,
            capacity: 16,
        };
        assert_eq!(join_response(&parsed(&answer)).unwrap(), answer);
        let host = JoinResponse {
            reclaim_key: Some("k".repeat(32)),
            ..answer
        };
        assert_eq!(join_response(&parsed(&host)).unwrap(), host);
    }

    #[wasm_bindgen_test]
    fn room_events_decode_as_serde_encodes_them() {
        for reason in [LeaveReason::Left, LeaveReason::Timeout, LeaveReason::Reset] {
            let left = PeerLeft {
                peer_id: "p9".into(),
                reason,
            };
            assert_eq!(peer_left(&parsed(&left)).unwrap(), left);
        }
        let reset = HostReset {
            host: peer("p3", Role::Host),
            previous_peer_id: "p2".into(),
        };
        assert_eq!(host_reset(&parsed(&reset)).unwrap(), reset);
        assert_eq!(
            peer_info(&parsed(&peer("p4", Role::Peer))).unwrap(),
            peer("p4", Role::Peer)
        );
    }

    #[wasm_bindgen_test]
    fn poll_answers_decode_with_payloads_left_as_js() {
        let answer = MessagesResponse {
            messages: vec![
                Message {
                    seq: 7,
                    kind: "offer".into(),
                    from: Some("p1".into()),
                    payload: SessionDescription {
                        kind: "offer".into(),
                        sdp: "v=0".into(),
                    },
                },
                Message {
                    seq: 8,
                    kind: "peer-left".into(),
                    from: None,
                    payload: SessionDescription {
                        kind: "x".into(),
                        sdp: String::new(),
                    },
                },
            ],
            cursor: 8,
        };
        let (messages, cursor) = messages(&parsed(&answer)).unwrap();
        assert_eq!(cursor, 8);
        assert_eq!(messages.len(), 2);
        assert_eq!(
            (
                messages[0].seq,
                messages[0].kind.as_str(),
                messages[0].from.as_deref()
            ),
            (7, "offer", Some("p1"))
        );
        assert_eq!(messages[1].from, None);
        assert_eq!(
            session_description(&messages[0].payload).unwrap(),
            answer.messages[0].payload
        );
    }

    #[wasm_bindgen_test]
    fn payloads_round_trip_both_ways() {
        let full = IceCandidate {
            candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: Some("abcd".into()),
        };
        let bare = IceCandidate {
            candidate: String::new(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        };
        for c in [full, bare] {
            assert_eq!(ice_candidate(&parsed(&c)).unwrap(), c);
            assert_eq!(reparsed::<IceCandidate>(&ice_candidate_js(&c)), c);
        }
        let d = SessionDescription {
            kind: "answer".into(),
            sdp: "v=0\r\n".into(),
        };
        assert_eq!(session_description(&parsed(&d)).unwrap(), d);
        assert_eq!(
            reparsed::<SessionDescription>(&session_description_js(&d)),
            d
        );
        assert_eq!(
            reparsed::<Vec<IceServer>>(&ice_servers_js(&servers())),
            servers()
        );
        assert_eq!(ice_servers(&parsed(&servers())).unwrap(), servers());
    }

    #[wasm_bindgen_test]
    fn requests_encode_as_the_server_decodes_them() {
        let join = JoinRequest {
            room: "r".into(),
            role: Role::Host,
            name: "Ann".into(),
            ticket: Some("jwt".into()),
            topology: Some(Topology::Hub),
            reclaim: Some("k".into()),
        };
        let encoded = join_request(&join);
        assert_eq!(reparsed::<JoinRequest>(&encoded), join);
        assert_eq!(get(&encoded, "type").as_string().as_deref(), Some("join"));
        let no_ticket = JoinRequest {
            ticket: None,
            topology: None,
            reclaim: None,
            ..join
        };
        assert_eq!(
            reparsed::<JoinRequest>(&join_request(&no_ticket)),
            no_ticket
        );

        let payload = ice_candidate_js(&IceCandidate {
            candidate: "c".into(),
            sdp_mid: None,
            sdp_m_line_index: Some(1),
            username_fragment: None,
        });
        let relay_request: RelayRequest<serde_json::Value> =
            reparsed(&relay("candidate", "p2", &payload));
        assert_eq!(relay_request.kind, "candidate");
        assert_eq!(relay_request.to, "p2");
        assert_eq!(relay_request.payload["sdpMLineIndex"], 1);
        assert_eq!(get(&leave(), "type").as_string().as_deref(), Some("leave"));
    }

    #[wasm_bindgen_test]
    fn malformed_input_is_a_protocol_error_never_a_panic() {
        let bad = [
            "null",
            "42",
            "\"text\"",
            "[]",
            "{}",
            r#"{"messages": "no", "cursor": 1}"#,
            r#"{"messages": [{"seq": -1, "type": "offer", "payload": {}}], "cursor": 1}"#,
            r#"{"messages": [{"seq": 1.5, "type": "offer", "payload": {}}], "cursor": 1}"#,
            r#"{"messages": [{"seq": 1e300, "type": "offer", "payload": {}}], "cursor": 1}"#,
            r#"{"messages": [{"seq": 1, "type": 5, "payload": {}}], "cursor": 1}"#,
            r#"{"messages": [], "cursor": "1"}"#,
        ];
        for text in bad {
            let value = JSON::parse(text).unwrap();
            assert_eq!(
                messages(&value)
                    .err()
                    .map(|e| e.code().to_owned())
                    .as_deref(),
                Some("protocol_error"),
                "{text}"
            );
            assert!(join_response(&value).is_err(), "{text}");
            assert!(ice_candidate(&value).is_err(), "{text}");
        }
        for text in [
            r#"{"candidate": "c", "sdpMLineIndex": -1}"#,
            r#"{"candidate": "c", "sdpMLineIndex": 70000}"#,
            r#"{"candidate": 1}"#,
        ] {
            assert!(
                ice_candidate(&JSON::parse(text).unwrap()).is_err(),
                "{text}"
            );
        }
        assert!(
            peer_info(&JSON::parse(r#"{"peerId":"p","role":"admin","name":""}"#).unwrap()).is_err()
        );
        assert!(peer_left(&JSON::parse(r#"{"peerId":"p","reason":"bored"}"#).unwrap()).is_err());
        assert!(ice_servers(&JSON::parse(r#"[{"urls": [1]}]"#).unwrap()).is_err());
        assert_eq!(
            ice_servers(&JSON::parse(r#"[{"urls": "stun:one"}]"#).unwrap()).unwrap()[0].urls,
            ["stun:one"]
        );
    }
}

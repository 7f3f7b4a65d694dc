//! Request and response bodies of the Cloudflare Calls (Realtime SFU) HTTP API, named exactly as
//! Cloudflare names them on the wire (camelCase). Unknown fields are ignored when decoding, and
//! absent optional fields are left out when encoding.

use serde::{Deserialize, Serialize};

/// An SDP offer or answer: `{"type": "offer"|"answer", "sdp": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// `offer` or `answer`.
    #[serde(rename = "type")]
    pub kind: SdpType,
    /// The SDP text.
    pub sdp: String,
}

impl SessionDescription {
    /// An offer carrying `sdp`.
    pub fn offer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            kind: SdpType::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer carrying `sdp`.
    pub fn answer(sdp: impl Into<String>) -> Self {
        SessionDescription {
            kind: SdpType::Answer,
            sdp: sdp.into(),
        }
    }
}

/// The `type` of a [`SessionDescription`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// An SDP offer.
    Offer,
    /// An SDP answer.
    Answer,
}

/// Whether a track is pushed by this session (`local`) or pulled from another one (`remote`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// A track this session sends to the SFU.
    Local,
    /// A track another session published, which this session receives.
    Remote,
}

/// What to do when the preferred layer cannot be carried (`priorityOrdering`) or is not being
/// sent (`ridNotAvailable`, older docs: `fallbackStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOrdering {
    /// Keep the current layer.
    None,
    /// Order layers a to z, `a` most desirable, and take the next one available.
    Asciibetical,
}

/// Simulcast preferences of a pulled track.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulcastPreference {
    /// The layer (RTP stream id) this subscriber wants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_rid: Option<String>,
    /// What to do when the subscriber's bandwidth cannot carry the preferred layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_ordering: Option<LayerOrdering>,
    /// What to do when the preferred or current layer stops arriving.
    #[serde(
        default,
        alias = "fallbackStrategy",
        skip_serializing_if = "Option::is_none"
    )]
    pub rid_not_available: Option<LayerOrdering>,
}

/// One track in `tracks/new`, `tracks/update`, their responses and the session state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackObject {
    /// `local` (push) or `remote` (pull). Responses may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The transceiver's mid, or `#trackName` for the transceiver carrying that track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    /// For remote tracks: the publisher's session id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The track's name, unique among the publisher's tracks.
    #[serde(default)]
    pub track_name: String,
    /// `audio` or `video`; required when the SFU makes the offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Make the transceiver bidirectional (only when the SFU makes the offer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidirectional_media_stream: Option<bool>,
    /// Simulcast preferences of a pulled track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulcast: Option<SimulcastPreference>,
    /// Per-track failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Per-track failure description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// Session state only: `active`, `inactive` or `initializing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TrackStatus>,
}

/// A track's status in the session state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackStatus {
    /// Media flows (or may flow) on the track.
    Active,
    /// The track is closed or its source is gone.
    Inactive,
    /// The track waits for negotiation or for its first packets.
    Initializing,
}

/// `POST /sessions/new` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSessionResponse {
    /// The new session's id.
    pub session_id: String,
}

/// `POST /sessions/{id}/tracks/new` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracksRequest {
    /// The client's offer, when it pushes tracks it already added to its connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// The tracks to push or pull; all local or all remote.
    #[serde(default)]
    pub tracks: Vec<TrackObject>,
    /// Give every new track in the offer a random name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_discover: Option<bool>,
}

/// Answer to `tracks/new` and `tracks/update`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracksResponse {
    /// True when `sessionDescription` is the SFU's offer that the client must answer through
    /// `renegotiate` before anything else on this session.
    pub requires_immediate_renegotiation: bool,
    /// The SFU's answer (push) or offer (pull).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// One entry per requested track, in request order; failures carry `errorCode`.
    #[serde(default)]
    pub tracks: Vec<TrackObject>,
}

/// `PUT /sessions/{id}/renegotiate` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenegotiateRequest {
    /// The client's answer to the SFU's last offer.
    pub session_description: SessionDescription,
}

/// Answer to `renegotiate`: an empty object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenegotiateResponse {}

/// One track in a `tracks/close` body or answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTrackObject {
    /// The transceiver's mid on the session being modified.
    pub mid: String,
    /// Per-track failure code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Per-track failure description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `PUT /sessions/{id}/tracks/close` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTracksRequest {
    /// The client's offer with the transceivers stopped; required unless `force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// The tracks to close.
    #[serde(default)]
    pub tracks: Vec<CloseTrackObject>,
    /// Stop forwarding without an SDP exchange.
    #[serde(default)]
    pub force: bool,
}

/// Answer to `tracks/close`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTracksResponse {
    /// The SFU's answer to a negotiated close; absent for a forced one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<SessionDescription>,
    /// Always false for a close.
    pub requires_immediate_renegotiation: bool,
    /// One entry per requested mid.
    #[serde(default)]
    pub tracks: Vec<CloseTrackObject>,
}

/// `PUT /sessions/{id}/tracks/update` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTracksRequest {
    /// The pulled tracks to update, each with its mid on this session.
    #[serde(default)]
    pub tracks: Vec<TrackObject>,
}

/// `GET /sessions/{id}` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStateResponse {
    /// Every track this session pushes or pulls, with its status.
    #[serde(default)]
    pub tracks: Vec<TrackObject>,
    /// Data channels (not supported yet: always empty).
    #[serde(default)]
    pub data_channels: Vec<serde_json::Value>,
}

/// A request-level failure body: `{"errorCode", "errorDescription"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// Cloudflare's stable error code.
    pub error_code: String,
    /// Human-readable explanation.
    pub error_description: String,
}

/// Cloudflare's error codes, as they appear on the wire.
pub mod codes {
    /// The JSON body or its field types could not be decoded.
    pub const DECODING_ERROR: &str = "decoding_error";
    /// Invalid or missing parameters, or overlapping mutations.
    pub const INVALID_PARAMS: &str = "invalid_params";
    /// The session is unknown, closed or not ready.
    pub const SESSION_ERROR: &str = "session_error";
    /// The track to pull does not exist.
    pub const NOT_FOUND_TRACK_ERROR: &str = "not_found_track_error";
    /// A track entry lacks what it needs (name, mid, kind).
    pub const EMPTY_TRACK_ERROR: &str = "empty_track_error";
    /// A local track name is already used in this session.
    pub const REPEATED_LOCAL_TRACK_ERROR: &str = "repeated_local_track_error";
    /// A track could not be updated.
    pub const UPDATE_TRACK_ERROR: &str = "update_track_error";
    /// A track could not be closed (unknown or already closed).
    pub const CLOSE_TRACK_ERROR: &str = "close_track_error";
    /// The SDP could not be parsed or applied.
    pub const INVALID_SESSION_DESCRIPTION: &str = "invalid_session_description";
    /// Temporary failure; retry.
    pub const RETRYABLE_TRANSIENT_ERROR: &str = "retryable_transient_error";
    /// Unexpected failure inside the SFU.
    pub const INTERNAL_ERROR: &str = "internal_error";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn round_trip<T>(value: &T, expected: Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug,
    {
        let encoded = serde_json::to_value(value).expect("encodes");
        assert_eq!(encoded, expected);
        let decoded: T = serde_json::from_value(encoded).expect("decodes");
        assert_eq!(&decoded, value);
    }

    #[test]
    fn push_request_decodes_cloudflare_field_names_and_ignores_unknown_ones() {
        let req: TracksRequest = serde_json::from_value(json!({
            "sessionDescription": {"type": "offer", "sdp": "v=0"},
            "tracks": [{"location": "local", "mid": "4", "trackName": "cam", "somethingNew": 1}],
            "autoDiscover": false,
            "future": {"x": 1}
        }))
        .expect("decodes");
        assert_eq!(
            req.session_description,
            Some(SessionDescription::offer("v=0"))
        );
        assert_eq!(req.tracks[0].location, Some(Location::Local));
        assert_eq!(req.tracks[0].mid.as_deref(), Some("4"));
        assert_eq!(req.tracks[0].track_name, "cam");
        assert_eq!(req.auto_discover, Some(false));
    }

    #[test]
    fn pull_request_round_trips_with_simulcast_preferences() {
        round_trip(
            &TracksRequest {
                session_description: None,
                tracks: vec![TrackObject {
                    location: Some(Location::Remote),
                    session_id: Some("abc".into()),
                    track_name: "cam".into(),
                    kind: Some("video".into()),
                    bidirectional_media_stream: Some(false),
                    simulcast: Some(SimulcastPreference {
                        preferred_rid: Some("h".into()),
                        priority_ordering: Some(LayerOrdering::Asciibetical),
                        rid_not_available: Some(LayerOrdering::None),
                    }),
                    ..Default::default()
                }],
                auto_discover: None,
            },
            json!({"tracks": [{"location": "remote", "sessionId": "abc", "trackName": "cam",
                   "kind": "video", "bidirectionalMediaStream": false,
                   "simulcast": {"preferredRid": "h", "priorityOrdering": "asciibetical",
                                 "ridNotAvailable": "none"}}]}),
        );
    }

    #[test]
    fn the_older_fallback_strategy_spelling_means_rid_not_available() {
        let pref: SimulcastPreference = serde_json::from_value(
            json!({"preferredRid": "m", "fallbackStrategy": "asciibetical"}),
        )
        .expect("decodes");
        assert_eq!(pref.rid_not_available, Some(LayerOrdering::Asciibetical));
    }

    #[test]
    fn tracks_response_carries_per_track_errors_inside_a_success() {
        round_trip(
            &TracksResponse {
                requires_immediate_renegotiation: true,
                session_description: Some(SessionDescription::offer("v=0")),
                tracks: vec![
                    TrackObject {
                        mid: Some("1".into()),
                        session_id: Some("abc".into()),
                        track_name: "cam".into(),
                        ..Default::default()
                    },
                    TrackObject {
                        mid: Some(String::new()),
                        session_id: Some("abc".into()),
                        track_name: "nope".into(),
                        error_code: Some("not_found_track_error".into()),
                        error_description: Some("no such track".into()),
                        ..Default::default()
                    },
                ],
            },
            json!({"requiresImmediateRenegotiation": true,
                   "sessionDescription": {"type": "offer", "sdp": "v=0"},
                   "tracks": [{"mid": "1", "sessionId": "abc", "trackName": "cam"},
                              {"mid": "", "sessionId": "abc", "trackName": "nope",
                               "errorCode": "not_found_track_error",
                               "errorDescription": "no such track"}]}),
        );
    }

    #[test]
    fn close_request_and_response_round_trip() {
        round_trip(
            &CloseTracksRequest {
                session_description: Some(SessionDescription::offer("v=0")),
                tracks: vec![CloseTrackObject {
                    mid: "2".into(),
                    ..Default::default()
                }],
                force: false,
            },
            json!({"sessionDescription": {"type": "offer", "sdp": "v=0"},
                   "tracks": [{"mid": "2"}], "force": false}),
        );
        round_trip(
            &CloseTracksResponse {
                session_description: None,
                requires_immediate_renegotiation: false,
                tracks: vec![CloseTrackObject {
                    mid: "9".into(),
                    error_code: Some("close_track_error".into()),
                    error_description: Some("unknown mid".into()),
                }],
            },
            json!({"requiresImmediateRenegotiation": false,
                   "tracks": [{"mid": "9", "errorCode": "close_track_error",
                               "errorDescription": "unknown mid"}]}),
        );
    }

    #[test]
    fn session_state_lists_tracks_with_status_and_data_channels() {
        round_trip(
            &SessionStateResponse {
                tracks: vec![TrackObject {
                    location: Some(Location::Local),
                    mid: Some("2".into()),
                    track_name: "cam".into(),
                    status: Some(TrackStatus::Active),
                    ..Default::default()
                }],
                data_channels: vec![],
            },
            json!({"tracks": [{"location": "local", "mid": "2", "trackName": "cam",
                               "status": "active"}],
                   "dataChannels": []}),
        );
    }

    #[test]
    fn renegotiate_new_session_and_error_bodies_round_trip() {
        round_trip(
            &RenegotiateRequest {
                session_description: SessionDescription::answer("v=0"),
            },
            json!({"sessionDescription": {"type": "answer", "sdp": "v=0"}}),
        );
        round_trip(&RenegotiateResponse {}, json!({}));
        round_trip(
            &NewSessionResponse {
                session_id: "e017a2629c754fedc1f7d8587e06d126".into(),
            },
            json!({"sessionId": "e017a2629c754fedc1f7d8587e06d126"}),
        );
        round_trip(
            &ErrorResponse {
                error_code: "session_error".into(),
                error_description: "no such session".into(),
            },
            json!({"errorCode": "session_error", "errorDescription": "no such session"}),
        );
    }

    #[test]
    fn unknown_enum_values_are_rejected_not_guessed() {
        assert!(serde_json::from_value::<TrackObject>(json!({"location": "elsewhere"})).is_err());
        assert!(serde_json::from_value::<SessionDescription>(
            json!({"type": "pranswer", "sdp": ""})
        )
        .is_err());
    }
}

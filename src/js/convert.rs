//! Rust values to and from the plain JavaScript objects of the public API.

use callroom_protocol::{PeerInfo, Role, Topology};
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::quality::QualityReport;
use crate::media::{Device, MediaRequest, TrackRequest};
use crate::room::{JoinOptions, RemoteStream, RoomEvent, Snapshot};
use crate::web::js::{get, set};
use crate::Error;

/// An `Error` named `CallroomError` with the stable `code`.
pub(super) fn error_to_js(error: &Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("CallroomError");
    set(js.unchecked_ref(), "code", error.code());
    js.into()
}

/// `{code, message}`, for snapshots and events.
fn error_info(error: &Error) -> JsValue {
    let o = Object::new();
    set(&o, "code", error.code());
    set(&o, "message", error.to_string());
    Object::freeze(&o).into()
}

fn invalid(message: &str) -> Error {
    Error::InvalidArgument(message.to_owned())
}

fn optional_string(options: &JsValue, key: &str) -> Result<Option<String>, Error> {
    let value = get(options, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| invalid(&format!("`{key}` must be a string")))
}

fn optional_ms(options: &JsValue, key: &str, target: &mut u32) -> Result<(), Error> {
    let value = get(options, key);
    if value.is_undefined() {
        return Ok(());
    }
    match value.as_f64() {
        Some(n) if n.is_finite() && (0.0..=f64::from(u32::MAX)).contains(&n) => {
            *target = n as u32;
            Ok(())
        }
        _ => Err(invalid(&format!(
            "`{key}` must be a non-negative number of milliseconds"
        ))),
    }
}

fn track_request(value: &JsValue, key: &str) -> Result<TrackRequest, Error> {
    if value.is_undefined() || value.as_bool() == Some(true) {
        return Ok(TrackRequest::Any);
    }
    if value.as_bool() == Some(false) || value.is_null() {
        return Ok(TrackRequest::Off);
    }
    if let Some(id) = value.as_string() {
        return Ok(TrackRequest::Device(id));
    }
    if let Some(id) = get(value, "deviceId").as_string() {
        return Ok(TrackRequest::Device(id));
    }
    Err(invalid(&format!(
        "`media.{key}` must be a boolean, a deviceId or {{deviceId}}"
    )))
}

/// Reads `Room.join` options.
pub(super) fn options_from_js(options: &JsValue) -> Result<JoinOptions, Error> {
    if !options.is_object() {
        return Err(invalid(
            "join options must be an object like { room: \"standup\" }",
        ));
    }
    let room = optional_string(options, "room")?.ok_or_else(|| invalid("`room` is required"))?;
    let mut o = JoinOptions::new(&room);
    if let Some(server) = optional_string(options, "server")? {
        o.server = server;
    }
    if let Some(role) = optional_string(options, "role")? {
        o.role = Role::parse(&role)
            .ok_or_else(|| invalid("`role` must be \"peer\", \"host\" or \"guest\""))?;
    }
    if let Some(topology) = optional_string(options, "topology")? {
        o.topology = Some(
            Topology::parse(&topology)
                .ok_or_else(|| invalid("`topology` must be \"mesh\", \"hub\" or \"sfu\""))?,
        );
    }
    if let Some(name) = optional_string(options, "name")? {
        o.name = name;
    }
    o.ticket = optional_string(options, "ticket")?;
    let media = get(options, "media");
    o.media = if media.is_undefined() || media.as_bool() == Some(true) {
        Some(MediaRequest::camera_and_microphone())
    } else if media.as_bool() == Some(false) || media.is_null() {
        None
    } else if media.is_object() {
        Some(MediaRequest {
            audio: track_request(&get(&media, "audio"), "audio")?,
            video: track_request(&get(&media, "video"), "video")?,
        })
    } else {
        return Err(invalid("`media` must be false, true or { audio, video }"));
    };
    let ice = get(options, "iceServers");
    if !ice.is_undefined() && !ice.is_null() {
        o.ice_servers = Some(
            crate::web::wire::ice_servers(&ice)
                .map_err(|_| invalid("`iceServers` must be [{ urls, username?, credential? }]"))?,
        );
    }
    optional_ms(options, "pollWaitMs", &mut o.poll_wait_ms)?;
    optional_ms(options, "pollIntervalMs", &mut o.poll_interval_ms)?;
    optional_ms(options, "retryBaseMs", &mut o.retry_base_ms)?;
    optional_ms(options, "retryMaxMs", &mut o.retry_max_ms)?;
    optional_ms(options, "statsIntervalMs", &mut o.stats_interval_ms)?;
    optional_ms(
        options,
        "disconnectedGraceMs",
        &mut o.recovery.disconnected_grace_ms,
    )?;
    optional_ms(
        options,
        "iceRestartTimeoutMs",
        &mut o.recovery.restart_timeout_ms,
    )?;
    optional_ms(
        options,
        "connectTimeoutMs",
        &mut o.recovery.connect_timeout_ms,
    )?;
    Ok(o)
}

fn frozen(o: Object) -> JsValue {
    Object::freeze(&o).into()
}

fn frozen_array(items: impl Iterator<Item = JsValue>) -> JsValue {
    let array: Array = items.collect();
    Object::freeze(&array).into()
}

fn or_null<T: Into<JsValue>>(value: Option<T>) -> JsValue {
    value.map_or(JsValue::NULL, Into::into)
}

fn participant(p: &PeerInfo) -> JsValue {
    let o = Object::new();
    set(&o, "peerId", p.peer_id.as_str());
    set(&o, "role", p.role.as_str());
    set(&o, "name", p.name.as_str());
    frozen(o)
}

fn stats(report: &QualityReport) -> JsValue {
    let o = Object::new();
    set(&o, "quality", report.quality.as_str());
    set(&o, "lossPercent", report.loss_percent);
    set(&o, "rttMs", or_null(report.rtt_ms));
    set(&o, "jitterMs", or_null(report.jitter_ms));
    set(&o, "receiveKbps", report.receive_kbps);
    set(&o, "sendKbps", report.send_kbps);
    set(&o, "availableSendKbps", or_null(report.available_send_kbps));
    frozen(o)
}

/// A level in hundredths, as a JavaScript number (an `f32` would read 0.33000001311…).
fn level(value: f32) -> f64 {
    (f64::from(value) * 100.0).round() / 100.0
}

fn remote(r: &RemoteStream) -> JsValue {
    let o = Object::new();
    set(&o, "peerId", r.peer_id.as_str());
    set(&o, "name", r.name.as_str());
    set(&o, "role", r.role.as_str());
    set(&o, "stream", Clone::clone(&r.stream));
    set(&o, "connectionState", r.connection_state.as_str());
    set(&o, "screenStream", or_null(r.screen.clone()));
    set(
        &o,
        "quality",
        or_null(r.quality.map(|q| q.quality.as_str())),
    );
    set(&o, "stats", r.quality.as_ref().map_or(JsValue::NULL, stats));
    set(&o, "framesDecoded", r.frames_decoded);
    set(&o, "videoLayer", or_null(r.video_layer.map(|h| h.as_str())));
    set(&o, "audioLevel", level(r.audio_level));
    set(&o, "speaking", r.speaking);
    frozen(o)
}

/// The snapshot as a deeply frozen plain object.
pub(super) fn snapshot_to_js(s: &Snapshot) -> JsValue {
    let o = Object::new();
    set(&o, "version", s.version as f64);
    set(&o, "connectionState", s.connection_state.as_str());
    set(&o, "sessionId", or_null(s.session_id.clone()));
    set(&o, "room", s.room.as_str());
    set(&o, "role", s.role.as_str());
    set(&o, "topology", or_null(s.topology.map(|t| t.as_str())));
    set(&o, "localStream", or_null(s.local_stream.clone()));
    set(
        &o,
        "remoteStreams",
        frozen_array(s.remote_streams.iter().map(remote)),
    );
    set(
        &o,
        "participants",
        frozen_array(s.participants.iter().map(participant)),
    );
    set(&o, "micEnabled", s.mic_enabled);
    set(&o, "cameraEnabled", s.camera_enabled);
    set(&o, "screenSharing", s.screen_sharing);
    set(&o, "localScreenStream", or_null(s.local_screen.clone()));
    set(&o, "devices", devices_to_js(&s.devices));
    set(
        &o,
        "error",
        s.error.as_ref().map_or(JsValue::NULL, error_info),
    );
    set(&o, "localAudioLevel", level(s.local_audio_level));
    set(&o, "localSpeaking", s.local_speaking);
    set(&o, "activeSpeaker", or_null(s.active_speaker.clone()));
    let recording = s.recording.map_or(JsValue::NULL, |r| {
        let o = Object::new();
        set(&o, "durationMs", r.duration_ms);
        set(&o, "bytes", r.bytes);
        frozen(o)
    });
    set(&o, "recording", recording);
    frozen(o)
}

/// Devices as frozen `{deviceId, kind, label}` objects.
pub(super) fn devices_to_js(devices: &[Device]) -> JsValue {
    frozen_array(devices.iter().map(|d| {
        let o = Object::new();
        set(&o, "deviceId", d.device_id.as_str());
        set(&o, "kind", d.kind.as_str());
        set(&o, "label", d.label.as_str());
        frozen(o)
    }))
}

/// An event's name and its JS payload.
pub(super) fn event_to_js(event: &RoomEvent) -> (&'static str, JsValue) {
    match event {
        RoomEvent::ParticipantJoined(p) => ("participant-joined", participant(p)),
        RoomEvent::ParticipantLeft { peer_id, reason } => {
            let o = Object::new();
            set(&o, "peerId", peer_id.as_str());
            set(&o, "reason", reason.as_str());
            ("participant-left", frozen(o))
        }
        RoomEvent::Track { peer_id, stream } => {
            let o = Object::new();
            set(&o, "peerId", peer_id.as_str());
            set(&o, "stream", Clone::clone(stream));
            ("track", frozen(o))
        }
        RoomEvent::Error(error) => ("error", error_info(error)),
        RoomEvent::Quality { peer_id, report } => {
            let o = Object::new();
            set(&o, "peerId", peer_id.as_str());
            set(&o, "quality", report.quality.as_str());
            set(&o, "stats", stats(report));
            ("quality", frozen(o))
        }
        RoomEvent::State(state) => ("state", JsValue::from_str(state.as_str())),
        RoomEvent::ActiveSpeaker(peer_id) => {
            let o = Object::new();
            set(&o, "peerId", or_null(peer_id.clone()));
            ("active-speaker", frozen(o))
        }
    }
}

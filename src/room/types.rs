//! What a room tells its app: events, the snapshot and its remote streams.

use callroom_protocol::{LeaveReason, PeerInfo, Role, Topology};
use web_sys::MediaStream;

use crate::core::quality::QualityReport;
use crate::core::roster::ConnectionState;
use crate::media::Device;
use crate::Error;

/// Something that happened in the room, for apps that prefer events to snapshots.
#[derive(Debug, Clone)]
pub enum RoomEvent {
    /// Someone joined.
    ParticipantJoined(PeerInfo),
    /// Someone left (or timed out, or was replaced as host).
    ParticipantLeft {
        /// Who.
        peer_id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// A participant's stream arrived or gained a track.
    Track {
        /// Whose.
        peer_id: String,
        /// The stream.
        stream: MediaStream,
    },
    /// Something failed; the room carries on where it can.
    Error(Error),
    /// A new quality measurement for a link.
    Quality {
        /// Which link.
        peer_id: String,
        /// The measurement.
        report: QualityReport,
    },
    /// The room's connection state changed.
    State(ConnectionState),
    /// The active speaker changed: a peer id (ours when it is us), or `None` when they left
    /// and nobody else speaks.
    ActiveSpeaker(Option<String>),
}

/// One remote participant whose media we receive (or expect), and that media.
#[derive(Debug, Clone)]
pub struct RemoteStream {
    /// Their peer id.
    pub peer_id: String,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Their media: one stream for the whole call, which gains their tracks as they
    /// arrive (empty until then), so `srcObject` can be set once.
    pub stream: MediaStream,
    /// `RTCPeerConnection.connectionState` of the link.
    pub connection_state: String,
    /// The screen they share, when it comes as a stream of its own (in an SFU room; in a mesh
    /// a shared screen replaces the camera in `stream`).
    pub screen: Option<MediaStream>,
    /// The last quality measurement.
    pub quality: Option<QualityReport>,
    /// Video frames decoded from them so far (as of the last measurement).
    pub frames_decoded: f64,
    /// In an SFU room, the layer of their camera we receive (`High`, `Medium` or `Low`), or
    /// `Off` while it is paused; `None` in a mesh or hub, when they send no camera, or for a
    /// moment after a layer change failed (until it is asked again).
    pub video_layer: Option<crate::core::layers::Hint>,
    /// How loud they are now: RMS of the last ~0.2 s, 0–1 (linear, like
    /// `RTCAudioSourceStats.audioLevel`).
    pub audio_level: f32,
    /// Speaking now ([`crate::core::speaking`] has the rules).
    pub speaking: bool,
}

/// A recording in progress, as the snapshot shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordingStatus {
    /// Recorded so far, ms.
    pub duration_ms: f64,
    /// Bytes recorded so far.
    pub bytes: f64,
}

/// The whole room state at one moment. `version` changes whenever anything changes.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Bumped on every change.
    pub version: u64,
    /// The room's connection to the service.
    pub connection_state: ConnectionState,
    /// Our peer id while joined.
    pub session_id: Option<String>,
    /// Room id.
    pub room: String,
    /// Our role.
    pub role: Role,
    /// The room's topology, once joined.
    pub topology: Option<Topology>,
    /// What we publish.
    pub local_stream: Option<MediaStream>,
    /// Everyone whose media we receive or expect: in a mesh everyone else, in a hub the
    /// host (for a guest) or every guest (for the host).
    pub remote_streams: Vec<RemoteStream>,
    /// Everyone else in the room.
    pub participants: Vec<PeerInfo>,
    /// Microphone on.
    pub mic_enabled: bool,
    /// Camera on.
    pub camera_enabled: bool,
    /// Sharing a screen.
    pub screen_sharing: bool,
    /// The screen we share, as a stream of its own.
    pub local_screen: Option<MediaStream>,
    /// Known devices.
    pub devices: Vec<Device>,
    /// The last error, if any.
    pub error: Option<Error>,
    /// How loud we are (0 while muted).
    pub local_audio_level: f32,
    /// We are speaking (never while muted).
    pub local_speaking: bool,
    /// Who speaks, or spoke last: a peer id (our `session_id` when it is us).
    pub active_speaker: Option<String>,
    /// The recording in progress (the npm package's `room.startRecording()`), if any.
    pub recording: Option<RecordingStatus>,
}

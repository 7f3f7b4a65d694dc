#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
/// The Calls API bodies, defined once in the protocol crate.
pub use callroom_protocol::calls;
mod error;
mod forward;
mod session;
mod sfu;
pub mod simulcast;
mod stun;

pub use error::{codes, CallsError, TrackError};
pub use sfu::{Sfu, SfuConfig, SfuStats, Transmit};

use std::time::Duration;

/// Most tracks one `tracks/new` call may carry.
pub const MAX_TRACKS_PER_CALL: usize = 64;

/// A published track without packets for this long is removed.
pub const TRACK_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A session without ICE connectivity for this long is closed.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Minimum time between two keyframe requests to the same published track.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// Something the server may want to act on, from [`Sfu::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// ICE and DTLS are up for the first time.
    SessionConnected {
        /// The session.
        session_id: String,
    },
    /// The session is gone; its id is no longer valid.
    SessionClosed {
        /// The session.
        session_id: String,
        /// Why.
        reason: CloseReason,
    },
    /// A pushed track was negotiated and can be pulled.
    TrackPublished {
        /// The publisher's session.
        session_id: String,
        /// The track's name.
        track_name: String,
        /// `audio` or `video`.
        kind: &'static str,
    },
    /// The first media of a pushed track arrived.
    TrackActive {
        /// The publisher's session.
        session_id: String,
        /// The track's name.
        track_name: String,
    },
    /// A pushed track is gone; its subscribers stop receiving it.
    TrackRemoved {
        /// The publisher's session.
        session_id: String,
        /// The track's name.
        track_name: String,
        /// Why.
        reason: TrackRemovedReason,
    },
}

/// Why a session was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The server closed it, or the client closed DTLS.
    Closed,
    /// No ICE connectivity for [`SESSION_IDLE_TIMEOUT`].
    Idle,
    /// Its `Rtc` returned an error.
    Failed,
    /// Its `Rtc` panicked; the panic was contained.
    Panicked,
}

/// Why a published track was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackRemovedReason {
    /// Closed through `tracks/close`.
    Closed,
    /// No packets for [`TRACK_IDLE_TIMEOUT`].
    NoPackets,
    /// Its session closed.
    SessionClosed,
}

//! `callroom-sfu`: a sans-IO selective forwarding unit that speaks the Cloudflare Calls API,
//! built on [str0m](https://docs.rs/str0m).
//!
//! [`Sfu`] holds one str0m `Rtc` per Calls session, all behind one UDP socket. It does no IO and
//! reads no clock: the server passes the time in (`now`), hands it every datagram
//! ([`Sfu::handle_receive`]), sends what [`Sfu::poll_transmit`] returns, calls
//! [`Sfu::handle_timeout`] at [`Sfu::poll_timeout`], and maps the Calls HTTP routes onto
//! [`Sfu::new_session`], [`Sfu::tracks_new`], [`Sfu::renegotiate`], [`Sfu::tracks_close`],
//! [`Sfu::tracks_update`] and [`Sfu::session_state`], whose bodies are the serde types in
//! [`calls`]. Failures are [`CallsError`]s carrying Cloudflare's status and error code.
//!
//! # Behaviour
//!
//! * The SFU is ICE-lite and learns clients' addresses as peer-reflexive candidates; its host
//!   candidates are the configured public addresses.
//! * Push: the client's offer in, the SFU's answer out. Pull: the SFU's offer out with
//!   `requiresImmediateRenegotiation: true`; the client answers through `renegotiate`. A push
//!   without an offer (with `kind`) also gets an SFU offer.
//! * Pulling a track that was pushed but has no media yet **succeeds**: forwarding starts with
//!   the first keyframe (Cloudflare answers `not_found_track_error` there; clients that retry on
//!   that error work unchanged). Pulling a track name that was never pushed is
//!   `not_found_track_error`.
//! * Forwarding is frame level (str0m's `MediaData` in, `Writer` out), so every subscriber has
//!   its own sequence numbers, NACK/RTX and RTCP, and payload types are mapped per subscriber.
//!   Codecs: Opus, VP8, H.264.
//! * A subscriber starts, and switches simulcast layer, at a keyframe of the new layer; the SFU
//!   asks the publisher for one (PLI, else FIR), at most once per published track per 500 ms.
//!   The subscriber's own keyframe requests are passed on the same way.
//! * Simulcast: each subscriber gets `preferredRid` (default: the layer with the highest
//!   measured bitrate); when it stops for 1 s, `ridNotAvailable` decides (see
//!   [`simulcast::Layers::choose`]). With [`SfuConfig::bandwidth_estimation`], the subscriber's
//!   TWCC estimate also steps layers down and back up.
//! * Limits: 64 tracks per call, [`SfuConfig::max_sessions`], [`SfuConfig::max_tracks_per_session`];
//!   a track without packets for 30 s is removed, a session without connectivity for 30 s is
//!   closed. Every collection a remote party can grow is capped.
//! * Data channels are not supported yet.
//!
//! # Isolation and the panic profile
//!
//! str0m panics on broken invariants. Every call into a session's `Rtc` runs under
//! `catch_unwind`; a session whose `Rtc` panicked (or returned an error from its input) is closed
//! and reported as [`SfuEvent::SessionClosed`], and the other sessions go on. This only works
//! when panics unwind: the workspace's release profile sets `panic = "abort"` for the wasm
//! library, so the server binary must be built with a profile that unwinds (for example a
//! `[profile.server]` inheriting from release with `panic = "unwind"`), or a panicking session
//! ends the process.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
pub mod calls;
mod error;
mod forward;
mod session;
mod sfu;
pub mod simulcast;

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

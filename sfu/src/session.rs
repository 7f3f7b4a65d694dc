//! One Calls session: its str0m `Rtc`, the tracks it pushes and pulls, and the panic guard that
//! keeps a failing `Rtc` from taking other sessions down.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use str0m::change::SdpPendingOffer;
use str0m::media::{MediaKind, Mid, Rid};
use str0m::Rtc;

use crate::calls::{SimulcastPreference, TrackStatus};
use crate::simulcast::Layers;
use crate::CloseReason;

/// Internal handle of a session; the public id is a random hex string.
pub(crate) type SessionKey = u64;

/// Most source addresses remembered per session for fast datagram routing.
pub(crate) const MAX_ADDRS_PER_SESSION: usize = 8;

pub(crate) struct Session {
    pub id: String,
    pub rtc: Rtc,
    /// When the last datagram from the client arrived (or the session's creation): clients
    /// send STUN consent checks and RTCP every few seconds, so silence means no connectivity.
    pub last_receive: Instant,
    pub connected: bool,
    /// When the `Rtc` wants its next timeout.
    pub timeout: Instant,
    /// The SFU's offer waiting for the client's answer, and what it adds.
    pub pending: Option<SdpPendingOffer>,
    pub published: Vec<Published>,
    pub pulled: Vec<Pulled>,
    /// Source addresses this session accepted datagrams from.
    pub addrs: Vec<SocketAddr>,
    /// Set once the `Rtc` panicked or failed: the session is closed at the next sweep.
    pub failed: Option<CloseReason>,
    /// Latest egress bandwidth estimate, bits/s.
    pub bandwidth: Option<u64>,
    /// The (minimum, desired) bitrates last handed to str0m's estimator: it pads up to the
    /// minimum and probes towards the desired rate.
    pub bwe_targets: (u64, u64),
    /// Queued for polling because something was written into it.
    pub dirty: bool,
}

/// A track this session pushes.
pub(crate) struct Published {
    pub name: String,
    pub mid: Mid,
    pub kind: MediaKind,
    /// False while the SFU's offer for it waits for the client's answer.
    pub negotiated: bool,
    pub created: Instant,
    pub last_packet: Option<Instant>,
    pub layers: Layers,
    pub last_keyframe_request: Option<Instant>,
}

/// A track this session pulls from a publisher.
pub(crate) struct Pulled {
    pub mid: Mid,
    pub name: String,
    pub publisher: SessionKey,
    pub publisher_id: String,
    pub kind: MediaKind,
    pub preference: Option<SimulcastPreference>,
    /// False while the SFU's offer for it waits for the client's answer.
    pub negotiated: bool,
    /// The publisher's track is gone.
    pub source_gone: bool,
    /// The layer being forwarded; `None` until the first frame goes out.
    pub current: Option<Option<Rid>>,
    /// The layer to switch to at its next keyframe.
    pub target: Option<Option<Rid>>,
    /// Added to incoming RTP times so a layer switch keeps the outgoing clock continuous.
    pub time_offset: i64,
    pub last_out_time: Option<u64>,
    pub last_forwarded: Option<Instant>,
}

impl Session {
    pub fn new(id: String, rtc: Rtc, now: Instant) -> Self {
        Session {
            id,
            rtc,
            last_receive: now,
            connected: false,
            timeout: now,
            pending: None,
            published: Vec::new(),
            pulled: Vec::new(),
            addrs: Vec::new(),
            failed: None,
            bandwidth: None,
            bwe_targets: (0, 0),
            dirty: true,
        }
    }

    /// Run `f` on the `Rtc` unless the session already failed; a panic marks the session failed
    /// (closed at the next sweep) and returns `None`.
    pub fn guard<R>(&mut self, f: impl FnOnce(&mut Rtc) -> R) -> Option<R> {
        if self.failed.is_some() {
            return None;
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.rtc))) {
            Ok(r) => Some(r),
            Err(_) => {
                self.failed = Some(CloseReason::Panicked);
                None
            }
        }
    }

    pub fn track_count(&self) -> usize {
        self.published.len() + self.pulled.len()
    }

    pub fn published_by_name(&self, name: &str) -> Option<&Published> {
        self.published.iter().find(|p| p.name == name)
    }

    pub fn remember_addr(&mut self, addr: SocketAddr) -> bool {
        if self.addrs.contains(&addr) {
            return false;
        }
        if self.addrs.len() >= MAX_ADDRS_PER_SESSION {
            self.addrs.remove(0);
        }
        self.addrs.push(addr);
        true
    }
}

impl Published {
    pub fn status(&self, now: Instant) -> TrackStatus {
        match self.last_packet {
            _ if !self.negotiated => TrackStatus::Initializing,
            None => TrackStatus::Initializing,
            Some(t) if now.saturating_duration_since(t) < crate::TRACK_IDLE_TIMEOUT => {
                TrackStatus::Active
            }
            Some(_) => TrackStatus::Inactive,
        }
    }
}

impl Pulled {
    pub fn status(&self) -> TrackStatus {
        if self.source_gone {
            TrackStatus::Inactive
        } else if !self.negotiated || self.current.is_none() {
            TrackStatus::Initializing
        } else {
            TrackStatus::Active
        }
    }
}

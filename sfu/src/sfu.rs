//! The [`Sfu`]: sessions behind one socket, datagram routing, timeouts, forwarding between
//! sessions and the periodic sweep (layer choice, idle tracks, idle sessions). The Calls
//! operations themselves live in `api.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::forward::{decide, outgoing_time, Decision};
use crate::session::{Session, SessionKey};
use crate::{
    CallsError, CloseReason, SfuEvent, TrackRemovedReason, KEYFRAME_REQUEST_INTERVAL,
    SESSION_IDLE_TIMEOUT, TRACK_IDLE_TIMEOUT,
};

/// How often layers are re-chosen and idle tracks and sessions swept.
const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// Most events kept for the server; older ones are dropped (and counted) beyond this.
const MAX_QUEUED_EVENTS: usize = 65_536;

/// Configuration of an [`Sfu`].
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The address the UDP socket is bound to (what the server passes as `destination`).
    pub local_addr: SocketAddr,
    /// Addresses clients reach the socket at, written into host candidates. Empty: `local_addr`.
    pub public_addrs: Vec<SocketAddr>,
    /// Most concurrent sessions; `new_session` beyond it is a retryable error.
    pub max_sessions: usize,
    /// Most tracks (pushed plus pulled) one session may hold.
    pub max_tracks_per_session: usize,
    /// Run TWCC bandwidth estimation towards subscribers and let it step simulcast layers.
    pub bandwidth_estimation: bool,
}

impl SfuConfig {
    /// Defaults for a socket bound to `local_addr` and reachable at the same address.
    pub fn new(local_addr: SocketAddr) -> Self {
        SfuConfig {
            local_addr,
            public_addrs: Vec::new(),
            max_sessions: 4096,
            max_tracks_per_session: 256,
            bandwidth_estimation: false,
        }
    }

    fn candidate_addrs(&self) -> Vec<SocketAddr> {
        if self.public_addrs.is_empty() {
            vec![self.local_addr]
        } else {
            self.public_addrs.clone()
        }
    }
}

/// A datagram to send from the SFU's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The SFU's local socket address.
    pub source: SocketAddr,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Counters for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Frames received from publishers.
    pub frames_in: u64,
    /// Frames written to subscribers (one frame to three subscribers counts three).
    pub frames_forwarded: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Datagrams no session accepted.
    pub unrouted_datagrams: u64,
    /// Events dropped because the server did not drain [`Sfu::poll_event`].
    pub dropped_events: u64,
    /// Sessions closed because their `Rtc` panicked.
    pub panicked_sessions: u64,
}

/// A selective forwarding unit speaking the Cloudflare Calls API. See the crate docs.
pub struct Sfu {
    pub(crate) config: SfuConfig,
    pub(crate) sessions: HashMap<SessionKey, Session>,
    pub(crate) ids: HashMap<String, SessionKey>,
    next_key: SessionKey,
    by_addr: HashMap<SocketAddr, SessionKey>,
    /// Each session's local ICE ufrag, to route STUN from addresses not seen yet.
    by_ufrag: HashMap<String, SessionKey>,
    /// Publisher track -> subscriber tracks.
    pub(crate) routes: HashMap<(SessionKey, Mid), Vec<(SessionKey, Mid)>>,
    dirty: Vec<SessionKey>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    next_sweep: Instant,
    pub(crate) stats: SfuStats,
}

impl Sfu {
    /// An SFU with no sessions.
    pub fn new(config: SfuConfig, now: Instant) -> Self {
        Sfu {
            config,
            sessions: HashMap::new(),
            ids: HashMap::new(),
            next_key: 1,
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            routes: HashMap::new(),
            dirty: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_sweep: now + SWEEP_INTERVAL,
            stats: SfuStats::default(),
        }
    }

    /// `POST /sessions/new`: a new session with a random, unguessable hex id.
    pub fn new_session(&mut self, now: Instant) -> Result<String, CallsError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(CallsError::retryable("the SFU is at its session limit"));
        }
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| CallsError::internal("no randomness"))?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();

        let mut builder = Rtc::builder()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true);
        if self.config.bandwidth_estimation {
            builder = builder.enable_bwe(Some(Bitrate::kbps(1_000)));
        }
        let mut rtc = builder.build(now);
        for addr in self.config.candidate_addrs() {
            if let Ok(c) = Candidate::host(addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let key = self.next_key;
        self.next_key += 1;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        self.by_ufrag.insert(ufrag, key);
        self.sessions
            .insert(key, Session::new(id.clone(), rtc, now));
        self.ids.insert(id.clone(), key);
        self.mark_dirty(key);
        self.drive(now);
        Ok(id)
    }

    /// Close a session now (the server's own decision, e.g. its room member left).
    pub fn close_session(&mut self, now: Instant, session_id: &str) -> Result<(), CallsError> {
        let key = self.key(session_id)?;
        self.close(key, CloseReason::Closed, now);
        Ok(())
    }

    /// A datagram arrived on the socket from `source`, addressed to `destination`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let destination = self.candidate_for(destination, source);
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, contents) else {
            self.stats.unrouted_datagrams += 1;
            return;
        };
        let input = Input::Receive(now, receive);

        let mut target = None;
        if let Some(&key) = self.by_addr.get(&source) {
            if let Some(s) = self.sessions.get_mut(&key) {
                if s.guard(|rtc| rtc.accepts(&input)) == Some(true) {
                    target = Some(key);
                }
            }
        }
        // Only STUN may come from an address no session knows: it names its session by
        // ufrag. Anything else from a stranger is dropped.
        if target.is_none() {
            let named = crate::stun::local_ufrag(contents).and_then(|u| self.by_ufrag.get(u));
            if let Some(&key) = named {
                if let Some(s) = self.sessions.get_mut(&key) {
                    if s.guard(|rtc| rtc.accepts(&input)) == Some(true) {
                        target = Some(key);
                    }
                }
            }
        }
        let Some(key) = target else {
            self.stats.unrouted_datagrams += 1;
            self.sweep_failed(now);
            return;
        };
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        if s.remember_addr(source) {
            if s.addrs.len() == crate::session::MAX_ADDRS_PER_SESSION {
                // remember_addr dropped the oldest; forget its route too.
                self.by_addr.retain(|a, k| *k != key || s.addrs.contains(a));
            }
            self.by_addr.insert(source, key);
        }
        s.last_receive = now;
        if let Some(Err(_)) = s.guard(|rtc| rtc.handle_input(input)) {
            s.failed = Some(CloseReason::Failed);
        }
        self.mark_dirty(key);
        self.drive(now);
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the server, if any.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    /// When [`Sfu::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Instant {
        self.sessions
            .values()
            .map(|s| s.timeout)
            .fold(self.next_sweep, Instant::min)
    }

    /// Drive time forward: str0m timers, then (every 250 ms) layer choice and idle sweeps.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<SessionKey> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.timeout <= now)
            .map(|(&k, _)| k)
            .collect();
        for key in due {
            if let Some(s) = self.sessions.get_mut(&key) {
                if let Some(Err(_)) = s.guard(|rtc| rtc.handle_input(Input::Timeout(now))) {
                    s.failed = Some(CloseReason::Failed);
                }
                self.mark_dirty(key);
            }
        }
        self.drive(now);
        if now >= self.next_sweep {
            self.next_sweep = now + SWEEP_INTERVAL;
            self.sweep(now);
            self.drive(now);
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> SfuStats {
        self.stats
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn key(&self, session_id: &str) -> Result<SessionKey, CallsError> {
        self.ids
            .get(session_id)
            .copied()
            .filter(|k| self.sessions.get(k).is_some_and(|s| s.failed.is_none()))
            .ok_or_else(|| CallsError::session_gone("no such session, or it is closed"))
    }

    pub(crate) fn emit(&mut self, event: SfuEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.stats.dropped_events += 1;
        }
        self.events.push_back(event);
    }

    /// Feed a timeout after a change made through the API (SDP, a written frame, a keyframe
    /// request): str0m acts on such changes at its next timeout input.
    pub(crate) fn kick(&mut self, key: SessionKey, now: Instant) {
        if let Some(s) = self.sessions.get_mut(&key) {
            if let Some(Err(_)) = s.guard(|rtc| rtc.handle_input(Input::Timeout(now))) {
                s.failed = Some(CloseReason::Failed);
            }
        }
        self.mark_dirty(key);
    }

    pub(crate) fn mark_dirty(&mut self, key: SessionKey) {
        if let Some(s) = self.sessions.get_mut(&key) {
            if !s.dirty {
                s.dirty = true;
            }
            if !self.dirty.contains(&key) {
                self.dirty.push(key);
            }
        }
    }

    /// Which of our candidate addresses a datagram to `destination` was meant for: the socket
    /// sees its bound address, str0m needs the candidate the client used.
    fn candidate_for(&self, destination: SocketAddr, source: SocketAddr) -> SocketAddr {
        let publics = &self.config.public_addrs;
        if publics.is_empty() || publics.contains(&destination) {
            return destination;
        }
        publics
            .iter()
            .find(|a| a.is_ipv4() == source.is_ipv4())
            .copied()
            .unwrap_or(destination)
    }

    /// Poll every session that has something to say until all are quiet, forwarding media
    /// between them, then close the ones that failed.
    pub(crate) fn drive(&mut self, now: Instant) {
        let mut events = Vec::new();
        while let Some(key) = self.dirty.pop() {
            let local = self.config.local_addr;
            let Some(s) = self.sessions.get_mut(&key) else {
                continue;
            };
            s.dirty = false;
            loop {
                match s.guard(|rtc| rtc.poll_output()) {
                    None => break,
                    Some(Err(_)) => {
                        s.failed = Some(CloseReason::Failed);
                        break;
                    }
                    Some(Ok(Output::Timeout(t))) => {
                        s.timeout = t;
                        break;
                    }
                    Some(Ok(Output::Transmit(t))) => self.transmits.push_back(Transmit {
                        source: local,
                        destination: t.destination,
                        contents: t.contents.into(),
                    }),
                    Some(Ok(Output::Event(e))) => events.push(e),
                }
            }
            for e in events.drain(..) {
                self.handle_event(key, e, now);
            }
        }
        self.sweep_failed(now);
    }

    fn handle_event(&mut self, key: SessionKey, event: Event, now: Instant) {
        match event {
            Event::MediaData(data) => self.forward(key, data, now),
            Event::Connected => {
                let Some(s) = self.sessions.get_mut(&key) else {
                    return;
                };
                if !s.connected {
                    s.connected = true;
                    let session_id = s.id.clone();
                    self.emit(SfuEvent::SessionConnected { session_id });
                }
            }
            Event::KeyframeRequest(req) => {
                // A subscriber lost a picture: ask the publisher of that track.
                let Some(s) = self.sessions.get(&key) else {
                    return;
                };
                let Some(p) = s.pulled.iter().find(|p| p.mid == req.mid) else {
                    return;
                };
                let (publisher, name, rid) = (p.publisher, p.name.clone(), p.current.flatten());
                self.request_keyframe(publisher, &name, rid, now);
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Some(s) = self.sessions.get_mut(&key) {
                    s.bandwidth = Some(estimate.as_u64());
                }
            }
            Event::Closed => {
                if let Some(s) = self.sessions.get_mut(&key) {
                    s.failed.get_or_insert(CloseReason::Closed);
                }
            }
            _ => {}
        }
    }

    /// Send one incoming frame to every subscriber of its track.
    fn forward(&mut self, publisher: SessionKey, data: MediaData, now: Instant) {
        self.stats.frames_in += 1;
        let Some(p) = self.sessions.get_mut(&publisher) else {
            return;
        };
        let Some(track) = p.published.iter_mut().find(|t| t.mid == data.mid) else {
            return;
        };
        let first = track.last_packet.is_none();
        track.last_packet = Some(now);
        track.layers.record(data.rid, data.data.len(), now);
        let kind = track.kind;
        let name = track.name.clone();
        if first {
            let session_id = p.id.clone();
            self.emit(SfuEvent::TrackActive {
                session_id,
                track_name: name.clone(),
            });
        }
        let keyframe = data.is_keyframe();
        if !data.contiguous && kind == MediaKind::Video {
            // Loss the publisher's NACK could not repair: subscribers need a fresh picture.
            self.request_keyframe(publisher, &name, data.rid, now);
        }

        let Some(subscribers) = self.routes.get(&(publisher, data.mid)) else {
            return;
        };
        // Borrowed out of the publisher for the loop over subscriber sessions.
        let layers = self
            .sessions
            .get_mut(&publisher)
            .and_then(|p| p.published.iter_mut().find(|t| t.mid == data.mid))
            .map(|t| std::mem::take(&mut t.layers))
            .unwrap_or_default();
        let mut need_keyframe = None;
        let mut written = Vec::with_capacity(subscribers.len());
        for &(sub_key, sub_mid) in subscribers {
            let Some(sub) = self.sessions.get_mut(&sub_key) else {
                continue;
            };
            if !sub.connected {
                // str0m drops media written before the connection is up; a keyframe lost that
                // way would leave the subscriber waiting for the next one.
                continue;
            }
            let Some(pulled) = sub.pulled.iter_mut().find(|p| p.mid == sub_mid) else {
                continue;
            };
            if pulled.target.is_none() && kind == MediaKind::Video {
                pulled.target = layers.choose(
                    pulled.preference.as_ref(),
                    pulled.current.as_ref(),
                    None,
                    now,
                );
            }
            let before = pulled.current;
            match decide(pulled, kind, data.rid, keyframe) {
                Decision::Drop => continue,
                Decision::NeedKeyframe => {
                    need_keyframe = Some(data.rid);
                    continue;
                }
                Decision::Forward => {}
            }
            let switched = before != pulled.current;
            let time = outgoing_time(pulled, switched, data.time);
            pulled.last_forwarded = Some(now);
            let payload = data.data.clone();
            let ok = sub.guard(|rtc| {
                let Some(writer) = rtc.writer(sub_mid) else {
                    return false;
                };
                let Some(pt) = writer.match_params(data.params) else {
                    return false;
                };
                writer.write(pt, data.network_time, time, payload).is_ok()
            });
            if ok == Some(true) {
                self.stats.frames_forwarded += 1;
            }
            written.push(sub_key);
        }
        if let Some(t) = self
            .sessions
            .get_mut(&publisher)
            .and_then(|p| p.published.iter_mut().find(|t| t.mid == data.mid))
        {
            t.layers = layers;
        }
        // str0m turns written frames into packets on its next timeout input.
        for key in written {
            self.kick(key, now);
        }
        if let Some(rid) = need_keyframe {
            self.request_keyframe(publisher, &name, rid, now);
        }
    }

    /// Ask a publisher for a keyframe of `rid`, at most once per track per 500 ms.
    pub(crate) fn request_keyframe(
        &mut self,
        publisher: SessionKey,
        track_name: &str,
        rid: Option<Rid>,
        now: Instant,
    ) {
        let Some(p) = self.sessions.get_mut(&publisher) else {
            return;
        };
        let Some(track) = p.published.iter_mut().find(|t| t.name == track_name) else {
            return;
        };
        if track.kind != MediaKind::Video {
            return;
        }
        if track
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        track.last_keyframe_request = Some(now);
        let mid = track.mid;
        let sent = p.guard(|rtc| {
            let Some(mut writer) = rtc.writer(mid) else {
                return false;
            };
            let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                KeyframeRequestKind::Pli
            } else {
                KeyframeRequestKind::Fir
            };
            writer.request_keyframe(rid, kind).is_ok()
        });
        if sent == Some(true) {
            self.stats.keyframe_requests += 1;
        }
        // The request becomes RTCP on the next timeout input.
        self.kick(publisher, now);
    }

    /// Re-choose layers, remove silent tracks, close sessions without connectivity.
    fn sweep(&mut self, now: Instant) {
        // Sessions.
        let mut to_close = Vec::new();
        for (&key, s) in self.sessions.iter_mut() {
            if s.failed.is_some() {
                continue;
            }
            if !s.connected {
                // Keep the handshake's clock fresh: str0m's DTLS timers run on the last time an
                // Rtc was given, and a stale clock makes a new flight retransmit at once.
                if let Some(Err(_)) = s.guard(|rtc| rtc.handle_input(Input::Timeout(now))) {
                    s.failed = Some(CloseReason::Failed);
                }
                s.dirty = true;
                if !self.dirty.contains(&key) {
                    self.dirty.push(key);
                }
            }
            if s.guard(|rtc| rtc.is_alive()) == Some(false) {
                to_close.push((key, CloseReason::Closed));
            } else if now.saturating_duration_since(s.last_receive) >= SESSION_IDLE_TIMEOUT {
                to_close.push((key, CloseReason::Idle));
            }
        }
        for (key, reason) in to_close {
            self.close(key, reason, now);
        }

        // Tracks without packets.
        let mut silent = Vec::new();
        for (&key, s) in &self.sessions {
            for t in &s.published {
                let since = t.last_packet.unwrap_or(t.created);
                if now.saturating_duration_since(since) >= TRACK_IDLE_TIMEOUT {
                    silent.push((key, t.mid));
                }
            }
        }
        for (key, mid) in silent {
            self.remove_published(key, mid, TrackRemovedReason::NoPackets);
        }

        // Layer choice for every pulled video track, and what each subscriber would like to
        // receive (the sum of its tracks' top layers), which its estimator probes towards.
        let mut choices = Vec::new();
        let mut desired = Vec::new();
        for (&key, s) in &self.sessions {
            let mut wanted = 0u64;
            let mut next_up = 0u64;
            let video_pulls = s
                .pulled
                .iter()
                .filter(|p| p.kind == MediaKind::Video && !p.source_gone)
                .count()
                .max(1) as u64;
            let budget = s.bandwidth.map(|b| b / video_pulls);
            for (i, p) in s.pulled.iter().enumerate() {
                if p.kind != MediaKind::Video || p.source_gone {
                    continue;
                }
                let Some(track) = self
                    .sessions
                    .get(&p.publisher)
                    .and_then(|ps| ps.published_by_name(&p.name))
                else {
                    continue;
                };
                wanted += track
                    .layers
                    .all()
                    .iter()
                    .map(|l| l.bitrate)
                    .max()
                    .unwrap_or(0);
                next_up += track.layers.next_up_bitrate(p.current.as_ref(), now);
                let choice =
                    track
                        .layers
                        .choose(p.preference.as_ref(), p.current.as_ref(), budget, now);
                if choice.is_some() && choice != p.target {
                    choices.push((key, i, choice));
                }
            }
            // Padding up to the next layer's rate lets the estimate grow past it when the link
            // allows (str0m caps padding at the estimate); probing aims at the top layers.
            let wanted = (wanted + wanted / 5).max(100_000);
            let minimum = (next_up + next_up / 5).min(wanted);
            let (old_min, old_wanted) = s.bwe_targets;
            let moved = |new: u64, old: u64| new.abs_diff(old) > new / 10;
            if self.config.bandwidth_estimation
                && (moved(wanted, old_wanted) || moved(minimum, old_min))
            {
                desired.push((key, minimum, wanted));
            }
        }
        for (key, minimum, wanted) in desired {
            if let Some(s) = self.sessions.get_mut(&key) {
                s.bwe_targets = (minimum, wanted);
                s.guard(|rtc| {
                    rtc.bwe()
                        .set_bitrate(Bitrate::bps(minimum), Bitrate::bps(wanted))
                });
                self.mark_dirty(key);
            }
        }
        for (key, i, choice) in choices {
            if let Some(p) = self
                .sessions
                .get_mut(&key)
                .and_then(|s| s.pulled.get_mut(i))
            {
                p.target = choice;
            }
        }
        self.sweep_failed(now);
    }

    /// Close every session whose `Rtc` panicked or failed.
    fn sweep_failed(&mut self, now: Instant) {
        let failed: Vec<(SessionKey, CloseReason)> = self
            .sessions
            .iter()
            .filter_map(|(&k, s)| s.failed.map(|r| (k, r)))
            .collect();
        for (key, reason) in failed {
            self.close(key, reason, now);
        }
    }

    /// Remove a session, tell its subscribers their sources are gone, and say so.
    pub(crate) fn close(&mut self, key: SessionKey, reason: CloseReason, _now: Instant) {
        let Some(mut s) = self.sessions.remove(&key) else {
            return;
        };
        if reason == CloseReason::Panicked {
            self.stats.panicked_sessions += 1;
        }
        if s.failed.is_none() {
            // Best effort goodbye (DTLS close_notify); a dead Rtc sends nothing.
            s.guard(|rtc| {
                let _ = rtc.close();
            });
            let local = self.config.local_addr;
            while let Some(Ok(Output::Transmit(t))) = s.guard(|rtc| rtc.poll_output()) {
                self.transmits.push_back(Transmit {
                    source: local,
                    destination: t.destination,
                    contents: t.contents.into(),
                });
            }
        }
        self.ids.remove(&s.id);
        self.by_ufrag.retain(|_, k| *k != key);
        for addr in &s.addrs {
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
        }
        self.dirty.retain(|k| *k != key);
        for t in &s.published {
            self.unroute_publisher(key, t.mid);
            self.emit(SfuEvent::TrackRemoved {
                session_id: s.id.clone(),
                track_name: t.name.clone(),
                reason: TrackRemovedReason::SessionClosed,
            });
        }
        for p in &s.pulled {
            self.unroute_subscriber(p.publisher, &p.name, key, p.mid);
        }
        self.emit(SfuEvent::SessionClosed {
            session_id: s.id,
            reason,
        });
    }

    /// Forget a published track and mark its subscribers' copies inactive.
    pub(crate) fn remove_published(
        &mut self,
        key: SessionKey,
        mid: Mid,
        reason: TrackRemovedReason,
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&key) else {
            return false;
        };
        let Some(i) = s.published.iter().position(|t| t.mid == mid) else {
            return false;
        };
        let track = s.published.remove(i);
        let session_id = s.id.clone();
        self.unroute_publisher(key, mid);
        self.emit(SfuEvent::TrackRemoved {
            session_id,
            track_name: track.name,
            reason,
        });
        true
    }

    fn unroute_publisher(&mut self, key: SessionKey, mid: Mid) {
        for (sub_key, sub_mid) in self.routes.remove(&(key, mid)).unwrap_or_default() {
            if let Some(p) = self
                .sessions
                .get_mut(&sub_key)
                .and_then(|s| s.pulled.iter_mut().find(|p| p.mid == sub_mid))
            {
                p.source_gone = true;
            }
        }
    }

    pub(crate) fn unroute_subscriber(
        &mut self,
        publisher: SessionKey,
        track_name: &str,
        sub_key: SessionKey,
        sub_mid: Mid,
    ) {
        let Some(mid) = self
            .sessions
            .get(&publisher)
            .and_then(|s| s.published_by_name(track_name))
            .map(|t| t.mid)
        else {
            return;
        };
        if let Some(subs) = self.routes.get_mut(&(publisher, mid)) {
            subs.retain(|&(k, m)| (k, m) != (sub_key, sub_mid));
            if subs.is_empty() {
                self.routes.remove(&(publisher, mid));
            }
        }
    }

    /// Run `f` inside the panic guard of a session, as every call into an `Rtc` does. The
    /// session is closed and reported if `f` panics. Exists so tests can prove the isolation.
    #[doc(hidden)]
    pub fn run_guarded_for_test(
        &mut self,
        now: Instant,
        session_id: &str,
        f: impl FnOnce(&mut Rtc),
    ) -> Result<(), CallsError> {
        let key = self.key(session_id)?;
        if let Some(s) = self.sessions.get_mut(&key) {
            s.guard(f);
        }
        self.mark_dirty(key);
        self.drive(now);
        Ok(())
    }
}

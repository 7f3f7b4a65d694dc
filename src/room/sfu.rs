//! The `Sfu` media plane: one peer connection (bundled) to the SFU, through the server's
//! room-scoped Calls proxy (`/sfu/…`, our peer token; the app secret stays on the server).
//!
//! Our camera and microphone go out on send-only transceivers pushed with one `tracks/new`;
//! what others publish (`sfu-tracks` events) is pulled in one batch per participant, and the
//! SFU's offer answered through `renegotiate`. The Calls API wants mutations of a session one
//! at a time, so every call goes through one queue of [`Op`]s run in order. A pull the SFU
//! cannot serve yet (`not_found_track_error`: no media so far) is retried with backoff.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use callroom_protocol::{Role, SfuTracks};
use gloo_events::EventListener;
use gloo_timers::callback::Timeout;
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, RtcPeerConnection, RtcRtpTransceiver,
    RtcRtpTransceiverDirection, RtcRtpTransceiverInit, RtcSdpType, RtcSessionDescriptionInit,
    RtcTrackEvent,
};

use super::plane::{PlaneEvent, PlaneSetup};
use super::RemoteStream;
use crate::core::backoff::Backoff;
use crate::core::layers;
use crate::core::quality::{Quality, QualityMeter, QualityReport, StatsSample};
use crate::core::roster::{Change, Roster};
use crate::core::session;
use crate::js_error::browser_error;
use crate::web::http::Http;
use crate::web::js::spawn;
use crate::web::js::{self, get, get_str, set};
use crate::web::stats;
use crate::Error;

/// How long a pushed kind may send nothing before we push it anew when it comes back: the
/// SFU removes a track without packets after 30 s.
const SILENT_TRACK_MS: f64 = 25_000.0;

/// How long the connection may stay `disconnected` before it is rebuilt (Cloudflare's own
/// client waits about 7 s).
const DISCONNECTED_GRACE_MS: u32 = 5_000;

/// The layer of a camera whose `tracks/update` failed: none the policy picks, so the next
/// measurement asks again.
const UNKNOWN_LAYER: &str = "?";

/// How often a pull the server refused is asked again.
const FAILING_PULL_MS: u32 = 10_000;

/// Most tracks one `tracks/new` may ask for (the SFU's limit per call, as Cloudflare's).
const MAX_PULL_TRACKS: usize = 64;

/// How a pull request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulled {
    /// Answered (or to be retried later by itself).
    Done,
    /// The server refused the request as a whole (`forbidden`).
    Refused,
}

/// One change to the SFU session, run in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// Open our Calls session.
    Session,
    /// Push the local tracks that have no transceiver yet.
    Publish,
    /// Pull what `peer` announced and we have not pulled.
    Pull(String),
    /// Close the pulls of `peer` that it no longer publishes (all of them when it left).
    Close(String),
    /// Close our pushed tracks.
    Unpublish,
    /// Ask for `peer`'s camera in the layer its view now calls for.
    Layer(String),
    /// Close one of our pushes (its transceiver is stopped already).
    Retire(String),
    /// Start over: a new connection and session, everything pushed and pulled again (after
    /// ICE failed, the session is gone, or a negotiation broke half-way).
    Rebuild,
    /// Ask whether our session still exists (signaling came back after an outage, so the
    /// server, and an embedded SFU with it, may have restarted); start over at once if not.
    Check,
}

/// A participant whose media we pull.
struct Remote {
    peer_id: String,
    session_id: String,
    /// Announced track names.
    tracks: Vec<String>,
    /// Pulled tracks: (name, our mid).
    pulled: Vec<(String, String)>,
    /// Mids of pulls to close (they stopped publishing them, or changed session).
    closing: Vec<String>,
    /// They left: forget them once their pulls are closed.
    left: bool,
    stream: MediaStream,
    frames_decoded: f64,
    /// Delays between pulls the SFU could not serve yet (no media so far).
    retry: Backoff,
    retry_timer: Option<Timeout>,
    /// A pull of theirs was refused (told once; asked again every [`FAILING_PULL_MS`]).
    failing: bool,
    /// Their camera's track name, and how many simulcast layers it is sent in (1: none).
    camera: Option<String>,
    layers: usize,
    /// The layer asked for (`None`: the SFU's default, the best).
    layer: Option<&'static str>,
    /// Their camera is not pulled: nobody shows it, or the app said `off` (for long enough).
    paused: bool,
    pause: layers::Pause,
    /// How tall their capture is, estimated from the frames of the layer we get.
    capture_height: u32,
    /// How the app shows them.
    shown: layers::Shown,
    /// The screen they share, as a stream of its own.
    screen: Option<MediaStream>,
    /// Quality of what reaches us from them, from the stats of their mids (`metered`).
    meter: QualityMeter,
    metered: Vec<String>,
    quality: Option<QualityReport>,
}

impl Remote {
    /// The mid we receive their camera on, if pulled.
    fn camera_mid(&self) -> Option<&str> {
        let camera = self.camera.as_ref()?;
        let (_, mid) = self.pulled.iter().find(|(name, _)| name == camera)?;
        Some(mid)
    }

    /// Whether `name` is wanted now: announced, and not a paused camera.
    fn wants(&self, name: &str) -> bool {
        self.tracks.iter().any(|t| t == name)
            && !(self.paused && self.camera.as_deref() == Some(name))
    }
}

/// An op to run again after a delay.
struct Retry {
    op: Op,
    /// Set when the timer has run (the entry goes at the next `later`).
    fired: Rc<Cell<bool>>,
    _timer: Timeout,
}

struct State {
    setup: PlaneSetup,
    http: Http,
    token: String,
    pc: RefCell<RtcPeerConnection>,
    session: RefCell<Option<String>>,
    local: RefCell<Option<MediaStream>>,
    /// Tracks to push that are not in `local`, by what they are (`audio`, `video`, `screen`):
    /// a shared screen, or a camera turned on with none pushed.
    pending: RefCell<Vec<(String, MediaStreamTrack)>>,
    /// Since when each kind we push has sent nothing (camera off), in ms.
    silent_since: RefCell<Vec<(String, f64)>>,
    /// Delays between retries of failed ops (pushes, closes, rebuilds), and their timers: at
    /// most one waiting per op, and a retry of one never cancels another's. A rebuild drops
    /// them all (everything goes out anew).
    rebuilds: RefCell<Backoff>,
    /// The last rebuild was for a refusal (406): the next session does not reset
    /// `rebuilds`, so a refusal that comes back on every new session is retried ever more
    /// slowly rather than once a second.
    refused: Cell<bool>,
    retry: RefCell<Vec<Retry>>,
    /// Runs out when the connection stayed `disconnected` too long.
    grace: RefCell<Option<Timeout>>,
    /// Cameras paused on this connection (see [`layers::MAX_PAUSES`]).
    pauses: Cell<u32>,
    /// The connection was lost and is not back yet (told to the room as it changes).
    reconnecting: Cell<bool>,
    /// Our pushed transceivers, by kind.
    sent: RefCell<Vec<(String, RtcRtpTransceiver)>>,
    remotes: RefCell<Vec<Remote>>,
    /// Views set for participants with no `Remote` yet.
    early: RefCell<layers::Views>,
    /// Calls waiting to run, oldest first (a `Vec`: it holds a handful, and a `VecDeque`
    /// costs the bundle more code).
    ops: RefCell<Vec<Op>>,
    running: Cell<bool>,
    meter: RefCell<QualityMeter>,
    quality: Cell<Option<QualityReport>>,
    _listeners: RefCell<Vec<EventListener>>,
}

/// One connection to the SFU for the whole room.
pub(crate) struct Sfu {
    state: Rc<State>,
}

impl Drop for Sfu {
    fn drop(&mut self) {
        self.state._listeners.borrow_mut().clear();
        self.state.remotes.borrow_mut().clear();
        self.state.retry.borrow_mut().clear();
        self.state.grace.borrow_mut().take();
        self.state.pc().close();
    }
}

/// The listeners of `pc`, which belong to `state`.
fn listen(state: &Rc<State>, pc: &RtcPeerConnection) -> Vec<EventListener> {
    let weak = Rc::downgrade(state);
    let on_track = EventListener::new(pc, "track", move |e| {
        if let (Some(state), Some(e)) = (weak.upgrade(), e.dyn_ref::<RtcTrackEvent>()) {
            state.on_track(e);
        }
    });
    let weak = Rc::downgrade(state);
    let on_state = EventListener::new(pc, "connectionstatechange", move |_| {
        let Some(state) = weak.upgrade() else { return };
        let now = js::get_str(&state.pc(), "connectionState");
        match now.as_deref() {
            Some("connected") => state.set_reconnecting(false),
            Some("failed" | "disconnected") => state.set_reconnecting(true),
            _ => {}
        }
        match now.as_deref() {
            // ICE gave up: a new connection and session, as Cloudflare's own client does.
            Some("failed") => enqueue(&state, Op::Rebuild),
            // Lost for longer than a short grace (the SFU restarted, the network moved): the
            // same.
            Some("disconnected") => {
                let weak = Rc::downgrade(&state);
                *state.grace.borrow_mut() = Some(js::timeout(
                    DISCONNECTED_GRACE_MS,
                    Box::new(move || {
                        if let Some(state) = weak.upgrade() {
                            let state_now = js::get_str(&state.pc(), "connectionState");
                            if state_now.as_deref() == Some("disconnected") {
                                enqueue(&state, Op::Rebuild);
                            }
                        }
                    }),
                ));
            }
            _ => {
                state.grace.borrow_mut().take();
            }
        }
        (state.setup.sink)(PlaneEvent::Changed);
    });
    vec![on_track, on_state]
}

impl Sfu {
    pub(crate) fn new(
        setup: PlaneSetup,
        http: Http,
        token: String,
        local: Option<&MediaStream>,
    ) -> Result<Self, Error> {
        let pc = setup.connection()?;
        let state = Rc::new(State {
            setup,
            http,
            token,
            pc: RefCell::new(pc),
            session: RefCell::new(None),
            local: RefCell::new(local.cloned()),
            pending: RefCell::new(Vec::new()),
            silent_since: RefCell::new(Vec::new()),
            rebuilds: RefCell::new(Backoff::new(1_000.0, 10_000.0)),
            refused: Cell::new(false),
            retry: RefCell::new(Vec::new()),
            grace: RefCell::new(None),
            pauses: Cell::new(0),
            reconnecting: Cell::new(false),
            sent: RefCell::new(Vec::new()),
            remotes: RefCell::new(Vec::new()),
            early: RefCell::new(layers::Views::default()),
            ops: RefCell::new(Vec::new()),
            running: Cell::new(false),
            meter: RefCell::new(QualityMeter::default()),
            quality: Cell::new(None),
            _listeners: RefCell::new(Vec::new()),
        });
        let listeners = listen(&state, &state.pc());
        *state._listeners.borrow_mut() = listeners;
        Ok(Self { state })
    }

    pub(crate) fn start(&self) {
        enqueue(&self.state, Op::Session);
        if self.state.local.borrow().is_some() {
            enqueue(&self.state, Op::Publish);
        }
    }

    pub(crate) fn on_roster(&self, change: &Change) {
        if let Change::Left { peer_id, .. } = change {
            self.state.early.borrow_mut().remove(peer_id);
            let known = self.state.remote_mut(peer_id, |r| {
                r.tracks.clear();
                r.closing.extend(r.pulled.drain(..).map(|(_, mid)| mid));
                r.left = true;
                r.retry_timer = None;
            });
            if known.is_some() {
                enqueue(&self.state, Op::Close(peer_id.clone()));
            }
        }
    }

    /// `peer` now publishes `tracks`: pull what is new, close what went.
    pub(crate) fn on_tracks(&self, tracks: SfuTracks) {
        let camera = tracks
            .tracks
            .iter()
            .find(|t| t.kind == "video" && !t.track_name.ends_with("-screen"));
        let layers = camera.map_or(1, |t| t.rids.len().max(1));
        let camera = camera.map(|t| t.track_name.clone());
        let names: Vec<String> = tracks.tracks.into_iter().map(|t| t.track_name).collect();
        let peer = tracks.peer_id;
        let known = self.state.remote_mut(&peer, |r| {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut r.pulled)
                .into_iter()
                .partition(|(name, _)| r.session_id != tracks.session_id || !names.contains(name));
            r.pulled = kept;
            r.closing.extend(gone.into_iter().map(|(_, mid)| mid));
            r.session_id.clone_from(&tracks.session_id);
            r.tracks.clone_from(&names);
            r.camera.clone_from(&camera);
            r.layers = layers;
            !r.closing.is_empty()
        });
        if known.is_none() {
            let Ok(stream) = MediaStream::new() else {
                return;
            };
            let shown = self.state.early.borrow_mut().remove(&peer);
            self.state.remotes.borrow_mut().push(Remote {
                peer_id: peer.clone(),
                session_id: tracks.session_id,
                tracks: names,
                pulled: Vec::new(),
                closing: Vec::new(),
                left: false,
                stream,
                frames_decoded: 0.0,
                // Media reaches the SFU within a second or two of a push: ask often.
                retry: Backoff::new(200.0, 2_000.0),
                retry_timer: None,
                failing: false,
                camera,
                layers,
                layer: None,
                paused: false,
                pause: layers::Pause::default(),
                capture_height: 0,
                shown: shown.unwrap_or_default(),
                screen: None,
                meter: QualityMeter::default(),
                metered: Vec::new(),
                quality: None,
            });
        }
        if known.is_some_and(|closing| closing) {
            enqueue(&self.state, Op::Close(peer.clone()));
        }
        enqueue(&self.state, Op::Pull(peer));
        (self.state.setup.sink)(PlaneEvent::Changed);
    }

    pub(crate) fn publish(&self, stream: &MediaStream) {
        *self.state.local.borrow_mut() = Some(Clone::clone(stream));
        enqueue(&self.state, Op::Unpublish);
        enqueue(&self.state, Op::Publish);
    }

    /// How the app shows `peer` (tile height, hint): the next measurement picks the layer of
    /// their camera accordingly. Kept aside until they publish, if they have not yet (a tile
    /// may be laid out first).
    pub(crate) fn set_view(&self, peer: &str, shown: layers::Shown) {
        if self.state.remote_mut(peer, |r| r.shown = shown).is_none() {
            self.state.early.borrow_mut().set(peer, |v| *v = shown);
        }
    }

    /// What we publish; a kind not pushed yet goes out at the next `send_track`.
    pub(crate) fn set_local(&self, stream: Option<&MediaStream>) {
        *self.state.local.borrow_mut() = stream.cloned();
    }

    pub(crate) fn unpublish(&self) {
        *self.state.local.borrow_mut() = None;
        enqueue(&self.state, Op::Unpublish);
    }

    /// Swaps what a pushed transceiver sends (no renegotiation); a kind not pushed yet is
    /// pushed.
    pub(crate) async fn send_track(
        &self,
        kind: &str,
        track: Option<&MediaStreamTrack>,
        stream: &MediaStream,
    ) -> Vec<Error> {
        let now = js::now_ms();
        let silent_for = {
            let mut silent = self.state.silent_since.borrow_mut();
            let since = silent.iter().find(|(k, _)| k == kind).map(|(_, t)| now - t);
            silent.retain(|(k, _)| k != kind);
            if track.is_none() {
                silent.push((kind.to_owned(), now));
            }
            since
        };
        if track.is_some() && silent_for.is_some_and(|ms| ms >= SILENT_TRACK_MS) {
            // The SFU drops a pushed track that sent nothing for 30 s: push anew.
            let old = {
                let mut sent = self.state.sent.borrow_mut();
                let at = sent.iter().position(|(k, _)| k == kind);
                at.map(|i| sent.remove(i).1)
            };
            if let Some(old) = old {
                old.stop();
                enqueue(&self.state, Op::Retire(old.mid().unwrap_or_default()));
            }
        }
        let sender = self
            .state
            .sent
            .borrow()
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, t)| t.sender());
        match (sender, track) {
            (Some(sender), _) => match JsFuture::from(sender.replace_track(track)).await {
                Ok(_) => Vec::new(),
                Err(e) => vec![browser_error("replacing a track", &e)],
            },
            (None, Some(track)) => {
                // Not pushed yet (no camera, say, when a screen is shared): push this track.
                let mut pending = self.state.pending.borrow_mut();
                pending.retain(|(k, _)| k != kind);
                pending.push((kind.to_owned(), Clone::clone(track)));
                drop(pending);
                if self.state.local.borrow().is_none() {
                    *self.state.local.borrow_mut() = Some(Clone::clone(stream));
                }
                enqueue(&self.state, Op::Publish);
                Vec::new()
            }
            (None, None) => Vec::new(),
        }
    }

    /// Pushes `track` as a screen of its own, beside the camera.
    pub(crate) fn share_screen(&self, track: &MediaStreamTrack) {
        let mut pending = self.state.pending.borrow_mut();
        pending.retain(|(k, _)| k != "screen");
        pending.push(("screen".into(), Clone::clone(track)));
        drop(pending);
        enqueue(&self.state, Op::Publish);
    }

    /// Stops pushing the screen.
    pub(crate) fn stop_screen(&self) {
        self.state
            .pending
            .borrow_mut()
            .retain(|(k, _)| k != "screen");
        let old = {
            let mut sent = self.state.sent.borrow_mut();
            let at = sent.iter().position(|(k, _)| k == "screen");
            at.map(|i| sent.remove(i).1)
        };
        if let Some(old) = old {
            old.stop();
            enqueue(&self.state, Op::Retire(old.mid().unwrap_or_default()));
        }
    }

    pub(crate) fn tick(&self, _now: f64) {}

    /// Signaling is back after an outage: if the server restarted, our SFU session died with
    /// it, and waiting for ICE to notice would take seconds longer than asking.
    pub(crate) fn on_resumed(&self) {
        enqueue(&self.state, Op::Check);
    }

    /// Reads the connection's stats once: the link's quality (which steers layers), and per
    /// participant the frames and quality of what reaches us from them. Pauses cameras nobody
    /// shows, resumes them when shown, and asks for the layer each tile calls for.
    pub(crate) async fn measure(&self) -> Vec<(String, QualityReport)> {
        let state = &self.state;
        let pc = state.pc();
        let connected = js::get_str(&pc, "connectionState").as_deref() == Some("connected");
        let mut inbound = Vec::new();
        let Some(reading) = stats::read_by_mid(&pc, connected, &mut inbound).await else {
            return Vec::new();
        };
        let link = state.meter.borrow_mut().update(reading.sample);
        state.quality.set(Some(link));
        let mut ops = Vec::new();
        let mut reports = Vec::new();
        for remote in state.remotes.borrow_mut().iter_mut() {
            let peer = remote.peer_id.clone();
            let theirs: Vec<&stats::Inbound> = inbound
                .iter()
                .filter(|i| remote.pulled.iter().any(|(_, mid)| *mid == i.mid))
                .collect();
            remote.frames_decoded = theirs.iter().map(|i| i.frames_decoded).sum();
            if !theirs.is_empty() {
                // Their mids changed (a pause, a new pull): counters start over.
                let mids: Vec<String> = theirs.iter().map(|i| i.mid.clone()).collect();
                if remote.metered != mids {
                    remote.meter = QualityMeter::default();
                    remote.metered = mids;
                }
                let mut sample = StatsSample {
                    at_ms: reading.sample.at_ms,
                    connected,
                    rtt_s: reading.sample.rtt_s,
                    ..StatsSample::default()
                };
                for i in &theirs {
                    stats::add_inbound(&mut sample, i);
                }
                let mut report = remote.meter.update(sample);
                if connected && report.quality == Quality::Lost {
                    // Nothing from them this interval while our link works: they send nothing
                    // (camera off, muted), which says nothing of the path. A participant
                    // whose own link died leaves the roster after the peer timeout.
                    report.quality = link.quality;
                }
                remote.quality = Some(report);
                reports.push((peer.clone(), report));
            } else {
                remote.quality = None;
            }
            let view = layers::View {
                hint: remote.shown.hint,
                tile_height: remote.shown.tile_height,
                quality: Some(link.quality),
            };
            let pause = remote.camera.is_some()
                && remote.pause.update(
                    reading.sample.at_ms,
                    layers::paused(view),
                    state.pauses.get(),
                );
            if pause != remote.paused {
                remote.paused = pause;
                remote.layer = None;
                if pause {
                    state.pauses.set(state.pauses.get() + 1);
                    if let Some(mid) = remote.camera_mid().map(str::to_owned) {
                        remote.pulled.retain(|(_, m)| *m != mid);
                        remote.closing.push(mid);
                    }
                    ops.push(Op::Close(peer));
                } else {
                    ops.push(Op::Pull(peer));
                }
                continue;
            }
            let Some(height) = remote
                .camera_mid()
                .and_then(|mid| inbound.iter().find(|i| i.mid == mid))
                .map(|i| i.frame_height as u32)
                .filter(|h| *h > 0 && remote.layers > 1)
            else {
                continue;
            };
            // The capture's height is the tallest frame seen while the full layer was asked
            // for (the SFU's default is the best flowing layer).
            if matches!(remote.layer, None | Some("f")) {
                remote.capture_height = remote.capture_height.max(height);
            }
            let wanted = layers::choose(remote.capture_height, remote.layers, view);
            if remote.layer.unwrap_or("f") != wanted {
                remote.layer = Some(wanted);
                ops.push(Op::Layer(peer));
            }
        }
        for op in ops {
            enqueue(state, op);
        }
        reports
    }

    pub(crate) fn remote_streams(&self, roster: &Roster) -> Vec<RemoteStream> {
        let connection_state =
            js::get_str(&self.state.pc(), "connectionState").unwrap_or_else(|| "new".into());
        self.state
            .remotes
            .borrow()
            .iter()
            .filter_map(|r| {
                let member = roster.member(&r.peer_id)?;
                Some(RemoteStream {
                    peer_id: r.peer_id.clone(),
                    name: member.name.clone(),
                    role: Role::Peer,
                    stream: Clone::clone(&r.stream),
                    connection_state: connection_state.clone(),
                    screen: r.screen.clone().filter(|s| s.get_tracks().length() > 0),
                    quality: r.quality,
                    frames_decoded: r.frames_decoded,
                    video_layer: r.camera.as_ref().and_then(|_| match (r.paused, r.layer) {
                        (true, _) => Some(layers::Hint::Off),
                        // A change failed: which layer comes is not known until asked again.
                        (false, Some(UNKNOWN_LAYER)) => None,
                        (false, rid) => Some(layers::Hint::of_rid(rid.unwrap_or("f"))),
                    }),
                    audio_level: 0.0,
                    speaking: false,
                })
            })
            .collect()
    }
}

impl State {
    /// The current connection (a handle: no borrow outlives the call).
    fn pc(&self) -> RtcPeerConnection {
        self.pc.borrow().clone()
    }

    /// Whether there is anything to send or receive, so a connection to wait for.
    fn has_media(&self) -> bool {
        let sending = self
            .local
            .borrow()
            .as_ref()
            .is_some_and(|s| s.get_tracks().length() > 0)
            || !self.pending.borrow().is_empty();
        sending
            || self
                .remotes
                .borrow()
                .iter()
                .any(|r| r.tracks.iter().any(|name| r.wants(name)))
    }

    fn set_reconnecting(&self, reconnecting: bool) {
        if self.reconnecting.replace(reconnecting) != reconnecting {
            (self.setup.sink)(PlaneEvent::Reconnecting(reconnecting));
        }
    }

    fn remote_mut<R>(&self, peer: &str, f: impl FnOnce(&mut Remote) -> R) -> Option<R> {
        find_remote(&mut self.remotes.borrow_mut(), peer).map(f)
    }

    fn on_track(&self, e: &RtcTrackEvent) {
        let Some(mid) = e.transceiver().mid() else {
            return;
        };
        let track = e.track();
        let target = self.remote_mut_by_mid(&mid, |r, name| {
            let stream = if name.ends_with("-screen") {
                r.screen.get_or_insert_with(|| {
                    MediaStream::new().unwrap_or_else(|_| Clone::clone(&r.stream))
                })
            } else {
                &r.stream
            };
            (r.peer_id.clone(), Clone::clone(stream))
        });
        if let Some((peer_id, stream)) = target {
            if stream.get_track_by_id(&track.id()).is_none() {
                stream.add_track(&track);
            }
            (self.setup.sink)(PlaneEvent::Track { peer_id, stream });
        }
    }

    /// Runs `f` on the remote that pulled `mid`, with the pulled track's name.
    fn remote_mut_by_mid<R>(&self, mid: &str, f: impl FnOnce(&mut Remote, &str) -> R) -> Option<R> {
        let mut remotes = self.remotes.borrow_mut();
        let remote = remotes
            .iter_mut()
            .find(|r| r.pulled.iter().any(|(_, m)| m == mid))?;
        let name = remote.pulled.iter().find(|(_, m)| m == mid)?.0.clone();
        Some(f(remote, &name))
    }

    fn path(&self, tail: &str) -> Result<String, Error> {
        let session = self
            .session
            .borrow()
            .clone()
            .ok_or_else(|| Error::Protocol("no SFU session".into()))?;
        Ok(format!("/sfu/sessions/{session}{tail}"))
    }

    async fn call(&self, method: &str, path: &str, body: &JsValue) -> Result<JsValue, Error> {
        self.http
            .with_body(method, path, Some(&self.token), body, None)
            .await
    }

    async fn run(self: Rc<Self>, op: Op) -> Result<(), Error> {
        match op {
            Op::Session => {
                let made = self
                    .call("POST", "/sfu/sessions/new", &Object::new())
                    .await
                    .and_then(|answer| {
                        get_str(&answer, "sessionId")
                            .ok_or_else(|| Error::Protocol("malformed sfu session".into()))
                    });
                let id = match made {
                    Ok(id) => id,
                    Err(error) => {
                        // Nothing queued behind can run without a session: all of it goes out
                        // again with the next attempt.
                        self.ops.borrow_mut().clear();
                        self.later(Op::Rebuild);
                        return Err(error);
                    }
                };
                *self.session.borrow_mut() = Some(id);
                // A working session: the next failure waits the shortest delay again (unless
                // it was made after a refusal, which may come back).
                if !self.refused.replace(false) {
                    self.rebuilds.borrow_mut().reset();
                }
                Ok(())
            }
            Op::Publish => self.publish().await,
            Op::Unpublish => {
                let mids: Vec<String> = std::mem::take(&mut *self.sent.borrow_mut())
                    .into_iter()
                    .filter_map(|(_, t)| {
                        t.stop();
                        t.mid()
                    })
                    .collect();
                self.close(mids).await
            }
            Op::Pull(peer) => {
                // Every pull queued right behind goes in the same request (many join at once).
                let mut peers = vec![peer];
                loop {
                    let next = {
                        let mut ops = self.ops.borrow_mut();
                        match ops.first() {
                            Some(Op::Pull(_)) => Some(ops.remove(0)),
                            _ => None,
                        }
                    };
                    let Some(Op::Pull(next)) = next else { break };
                    if !peers.contains(&next) {
                        peers.push(next);
                    }
                }
                self.pull(&peers).await
            }
            Op::Layer(peer) => self.relayer(&peer).await,
            Op::Rebuild => self.rebuild(),
            Op::Check => {
                let Ok(path) = self.path("") else {
                    return Ok(());
                };
                match self.http.get(&path, Some(&self.token), None).await {
                    Err(Error::Server { code, .. }) if code == "session_error" => self.rebuild(),
                    _ => Ok(()),
                }
            }
            Op::Retire(mid) => self.close(vec![mid]).await,
            Op::Close(peer) => {
                let mids = self
                    .remote_mut(&peer, |r| std::mem::take(&mut r.closing))
                    .unwrap_or_default();
                let result = if mids.is_empty() {
                    Ok(())
                } else {
                    for t in self.pc().get_transceivers().iter() {
                        let t: RtcRtpTransceiver = t.unchecked_into();
                        if t.mid().is_some_and(|m| mids.contains(&m)) {
                            let track = t.receiver().track();
                            self.remote_mut(&peer, |r| {
                                r.stream.remove_track(&track);
                                if let Some(screen) = &r.screen {
                                    screen.remove_track(&track);
                                }
                            });
                            t.stop();
                        }
                    }
                    match self.close(mids.clone()).await {
                        Err(error) if is_transient(&error) => {
                            // Not closed (a busy or restarting server): close them later, or
                            // the SFU keeps sending what nobody shows.
                            self.remote_mut(&peer, |r| r.closing.extend(mids));
                            self.later(Op::Close(peer));
                            return Ok(());
                        }
                        other => other,
                    }
                };
                self.remotes
                    .borrow_mut()
                    .retain(|r| !(r.peer_id == peer && r.left));
                (self.setup.sink)(PlaneEvent::Changed);
                result
            }
        }
    }

    /// Adds a send-only transceiver for each track (local, or handed in while none of its
    /// kind was pushed) of a kind not pushed yet, and pushes them with one offer. Only what
    /// the SFU accepted counts as pushed; the rest is taken back and tried again later.
    async fn publish(self: &Rc<Self>) -> Result<(), Error> {
        let stream = self.local.borrow().clone();
        let mut tracks: Vec<(String, MediaStreamTrack)> = self.pending.borrow().clone();
        if let Some(stream) = &stream {
            for track in stream.get_tracks().iter() {
                let track: MediaStreamTrack = track.unchecked_into();
                let kind = track.kind();
                if !tracks.iter().any(|(k, _)| *k == kind) {
                    tracks.push((kind, track));
                }
            }
        }
        let mut added = Vec::new();
        for (kind, track) in tracks {
            if self.sent.borrow().iter().any(|(k, _)| *k == kind) {
                continue;
            }
            let init = RtcRtpTransceiverInit::new();
            init.set_direction(RtcRtpTransceiverDirection::Sendonly);
            let height = get(&track.get_settings(), "height").as_f64().unwrap_or(0.0);
            let count = layers::layer_count(height as u32);
            if kind == "video" && count > 1 {
                // Layers, so each viewer gets the one its tile and link call for.
                let encodings = Array::new();
                for &(rid, down) in &layers::LAYERS[..count] {
                    let e = Object::new();
                    set(&e, "rid", rid);
                    set(&e, "scaleResolutionDownBy", down);
                    encodings.push(&e);
                }
                set(init.unchecked_ref::<Object>(), "sendEncodings", encodings);
            } else if kind == "screen" {
                // Text must stay sharp: a budget of its own, beside the camera's.
                let e = Object::new();
                set(&e, "maxBitrate", 1_500_000);
                set(
                    init.unchecked_ref::<Object>(),
                    "sendEncodings",
                    Array::of1(&e),
                );
            }
            if let Some(stream) = &stream {
                init.set_streams(&Array::of1(stream));
            }
            let transceiver = self
                .pc()
                .add_transceiver_with_media_stream_track_and_init(&track, &init);
            added.push((kind, transceiver));
        }
        if added.is_empty() {
            return Ok(());
        }
        let result = self.push(&added).await;
        let accepted: Vec<String> = match &result {
            Ok(accepted) => accepted.clone(),
            Err(_) => Vec::new(),
        };
        for (kind, transceiver) in added {
            let mid = transceiver.mid().unwrap_or_default();
            if accepted.contains(&mid) {
                self.pending.borrow_mut().retain(|(k, _)| *k != kind);
                self.sent.borrow_mut().push((kind, transceiver));
            } else {
                transceiver.stop();
            }
        }
        match result {
            Ok(accepted) if !accepted.is_empty() => Ok(()),
            // Nothing went out: try again shortly (a busy or restarting server).
            other => {
                self.later(Op::Publish);
                other.map(drop)
            }
        }
    }

    /// One `tracks/new` push of `added`; the mids the SFU accepted.
    async fn push(&self, added: &[(String, RtcRtpTransceiver)]) -> Result<Vec<String>, Error> {
        let path = self.path("/tracks/new")?;
        let offer = self.local_description().await?;
        let tracks = Array::new();
        for (kind, transceiver) in added {
            let t = Object::new();
            set(&t, "location", "local");
            set(&t, "mid", transceiver.mid().unwrap_or_default());
            let name = match kind.as_str() {
                "video" => "cam",
                "audio" => "mic",
                _ => "screen",
            };
            set(&t, "trackName", name);
            tracks.push(&t);
        }
        let body = Object::new();
        set(&body, "sessionDescription", offer);
        set(&body, "tracks", tracks);
        let answer = match self.call("POST", &path, &body).await {
            Ok(answer) => answer,
            Err(error) => {
                self.rollback().await;
                return Err(error);
            }
        };
        self.apply_remote(&get(&answer, "sessionDescription"), RtcSdpType::Answer)
            .await?;
        let mut accepted = Vec::new();
        if let Some(list) = get(&answer, "tracks").dyn_ref::<Array>() {
            for t in list.iter() {
                match (get_str(&t, "mid"), track_error(&t)) {
                    (Some(mid), None) => accepted.push(mid),
                    (_, Some(error)) => (self.setup.sink)(PlaneEvent::Error(error)),
                    _ => {}
                }
            }
        }
        Ok(accepted)
    }

    /// Runs `op` again after a backoff delay, unless a retry of it is already waiting (more
    /// failures before it fires do not push it back).
    fn later(self: &Rc<Self>, op: Op) {
        let mut retry = self.retry.borrow_mut();
        retry.retain(|r| !r.fired.get());
        if retry.iter().any(|r| r.op == op) {
            return;
        }
        let delay = self.rebuilds.borrow_mut().next_delay_ms(js::random());
        let weak = Rc::downgrade(self);
        let again = op.clone();
        let fired = Rc::new(Cell::new(false));
        let mark = fired.clone();
        let timer = js::timeout(
            delay,
            Box::new(move || {
                mark.set(true);
                if let Some(state) = weak.upgrade() {
                    enqueue(&state, again);
                }
            }),
        );
        retry.push(Retry {
            op,
            fired,
            _timer: timer,
        });
    }

    /// A new connection and session; what we publish and pull goes out again on it.
    fn rebuild(self: &Rc<Self>) -> Result<(), Error> {
        let pc = match self.setup.connection() {
            Ok(pc) => pc,
            Err(error) => {
                self.later(Op::Rebuild);
                return Err(error);
            }
        };
        // Everything starts over below: no retry waiting for the old session is wanted.
        self.retry.borrow_mut().clear();
        *self._listeners.borrow_mut() = listen(self, &pc);
        self.pc.replace(pc).close();
        self.sent.borrow_mut().clear();
        self.pauses.set(0);
        *self.session.borrow_mut() = None;
        // Those who left need no closing on a session that is gone.
        self.remotes.borrow_mut().retain(|r| !r.left);
        // Media comes back once the new connection is up; with nothing to send or receive
        // there is nothing to wait for.
        self.set_reconnecting(self.has_media());
        let mut peers = Vec::new();
        for remote in self.remotes.borrow_mut().iter_mut() {
            remote.pulled.clear();
            remote.closing.clear();
            remote.layer = None;
            remote.retry_timer = None;
            remote.failing = false;
            remote.meter = QualityMeter::default();
            remote.metered.clear();
            remote.quality = None;
            for stream in std::iter::once(&remote.stream).chain(&remote.screen) {
                for track in stream.get_tracks().iter() {
                    stream.remove_track(track.unchecked_ref());
                }
            }
            peers.push(remote.peer_id.clone());
        }
        self.ops.borrow_mut().clear();
        enqueue(self, Op::Session);
        enqueue(self, Op::Publish);
        for peer in peers {
            enqueue(self, Op::Pull(peer));
        }
        (self.setup.sink)(PlaneEvent::Changed);
        Ok(())
    }

    /// Pulls what `peers` announced and we have not pulled, in as few `tracks/new` calls as
    /// the SFU's limit of tracks per call allows, answering the SFU's offer after each.
    async fn pull(self: &Rc<Self>, peers: &[String]) -> Result<(), Error> {
        let mut start = 0;
        while start < peers.len() {
            let (mut end, mut count) = (start, 0);
            while end < peers.len() {
                let wanted = self
                    .remote_mut(&peers[end], |r| {
                        r.tracks.iter().filter(|name| r.wants(name)).count()
                    })
                    .unwrap_or(0);
                if end > start && count + wanted > MAX_PULL_TRACKS {
                    break;
                }
                count += wanted;
                end += 1;
            }
            match self.pull_group(&peers[start..end]).await {
                Err(error) if breaks_session(&error) => return Err(error),
                // Refused for a reason of its own: told, asked again later, and the groups
                // behind still go out.
                Err(error) => {
                    for peer in &peers[start..end] {
                        self.pull_failed(peer, &error);
                    }
                }
                Ok(()) => {}
            }
            start = end;
        }
        Ok(())
    }

    /// One `tracks/new` for `peers`. When the server refuses it (`forbidden`: one of them is
    /// not published yet as it knows the room, as after a restart; or anything else about
    /// one of them), each is asked alone, so one publisher does not hold up the others.
    async fn pull_group(self: &Rc<Self>, peers: &[String]) -> Result<(), Error> {
        let result = self.pull_batch(peers).await;
        let refused = match &result {
            Ok(pulled) => *pulled == Pulled::Refused,
            Err(error) => matches!(error, Error::Server { .. }) && !breaks_session(error),
        };
        match result {
            Ok(Pulled::Done) => Ok(()),
            Ok(Pulled::Refused) if peers.len() == 1 => {
                self.pull_later(&peers[0]);
                Ok(())
            }
            _ if refused && peers.len() > 1 => {
                for peer in peers {
                    match self.pull_batch(std::slice::from_ref(peer)).await {
                        Ok(Pulled::Done) => {}
                        Ok(Pulled::Refused) => self.pull_later(peer),
                        Err(error) if breaks_session(&error) => return Err(error),
                        Err(error) => self.pull_failed(peer, &error),
                    }
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(error) => Err(error),
        }
    }

    async fn pull_batch(self: &Rc<Self>, peers: &[String]) -> Result<Pulled, Error> {
        // (peer, their session, track name) for each track asked for.
        let mut asked: Vec<(String, String, String)> = Vec::new();
        for peer in peers {
            self.remote_mut(peer, |r| {
                for name in &r.tracks {
                    if r.wants(name) && !r.pulled.iter().any(|(p, _)| p == name) {
                        asked.push((peer.clone(), r.session_id.clone(), name.clone()));
                    }
                }
            });
        }
        if asked.is_empty() {
            return Ok(Pulled::Done);
        }
        let tracks = Array::new();
        for (_, session, name) in &asked {
            let t = Object::new();
            set(&t, "location", "remote");
            set(&t, "sessionId", session.as_str());
            set(&t, "trackName", name.as_str());
            tracks.push(&t);
        }
        let body = Object::new();
        set(&body, "tracks", tracks);
        let path = self.path("/tracks/new")?;
        let answer = match self.call("POST", &path, &body).await {
            Ok(answer) => answer,
            Err(Error::Server { code, .. }) if code == "forbidden" => return Ok(Pulled::Refused),
            Err(error) if is_transient(&error) => {
                for peer in peers {
                    self.pull_later(peer);
                }
                return Ok(Pulled::Done);
            }
            Err(error) => return Err(error),
        };
        let mut not_yet: Vec<String> = Vec::new();
        let mut pulled: Vec<(String, String)> = Vec::new();
        if let Some(list) = get(&answer, "tracks").dyn_ref::<Array>() {
            for t in list.iter() {
                let name = get_str(&t, "trackName").unwrap_or_default();
                match (get_str(&t, "mid"), track_error(&t)) {
                    (Some(mid), None) if !mid.is_empty() => pulled.push((name, mid)),
                    (_, Some(error)) if error.code() == "not_found_track_error" => {
                        not_yet.push(name)
                    }
                    (_, Some(error)) => (self.setup.sink)(PlaneEvent::Error(error)),
                    _ => {}
                }
            }
        }
        // While the call was out, they may have left or changed what they publish: keep
        // only what is still wanted, close the rest.
        let mut stale = Vec::new();
        let mut later = Vec::new();
        for peer in peers {
            let theirs = |name: &String| asked.iter().any(|(p, _, n)| p == peer && n == name);
            let session = asked.iter().find(|(p, _, _)| p == peer).map(|(_, s, _)| s);
            let (mine, rest): (Vec<_>, Vec<_>) = pulled.into_iter().partition(|(n, _)| theirs(n));
            pulled = rest;
            let waiting = not_yet.iter().any(theirs);
            self.remote_mut(peer, |r| {
                let (keep, gone): (Vec<_>, Vec<_>) = mine.into_iter().partition(|(name, _)| {
                    !r.left && Some(&r.session_id) == session && r.wants(name)
                });
                r.pulled.extend(keep);
                if !gone.is_empty() {
                    r.closing.extend(gone.into_iter().map(|(_, mid)| mid));
                    stale.push(peer.clone());
                }
                if !waiting {
                    r.retry.reset();
                    r.failing = false;
                }
            });
            if waiting {
                later.push(peer);
            }
        }
        self.answer_if_asked(&answer).await?;
        for peer in stale {
            enqueue(self, Op::Close(peer));
        }
        for peer in later {
            // The publisher's media has not reached the SFU yet: ask again later.
            self.pull_later(peer);
        }
        Ok(Pulled::Done)
    }

    /// A pull of `peer` was refused: told once (until one works), asked again later, slowly.
    fn pull_failed(self: &Rc<Self>, peer: &str, error: &Error) {
        let first = self.remote_mut(peer, |r| !std::mem::replace(&mut r.failing, true));
        if first == Some(true) {
            (self.setup.sink)(PlaneEvent::Error(error.clone()));
        }
        self.pull_later(peer);
    }

    fn pull_later(self: &Rc<Self>, peer: &str) {
        let delay = self
            .remote_mut(peer, |r| {
                let delay = r.retry.next_delay_ms(js::random());
                if r.failing {
                    delay.max(FAILING_PULL_MS)
                } else {
                    delay
                }
            })
            .unwrap_or(1_000);
        let weak = Rc::downgrade(self);
        let again = peer.to_owned();
        let timer = js::timeout(
            delay,
            Box::new(move || {
                if let Some(state) = weak.upgrade() {
                    enqueue(&state, Op::Pull(again));
                }
            }),
        );
        self.remote_mut(peer, |r| r.retry_timer = Some(timer));
    }

    /// Asks the SFU for `peer`'s camera in the layer chosen for it.
    async fn relayer(&self, peer: &str) -> Result<(), Error> {
        let Some((session, name, mid, rid)) = self
            .remote_mut(peer, |r| {
                let mid = r.camera_mid()?.to_owned();
                let rid = r.layer.filter(|rid| *rid != UNKNOWN_LAYER)?;
                Some((r.session_id.clone(), r.camera.clone()?, mid, rid))
            })
            .flatten()
        else {
            return Ok(());
        };
        let t = Object::new();
        set(&t, "location", "remote");
        set(&t, "sessionId", session.as_str());
        set(&t, "trackName", name.as_str());
        set(&t, "mid", mid.as_str());
        let simulcast = Object::new();
        set(&simulcast, "preferredRid", rid);
        set(&t, "simulcast", simulcast);
        let body = Object::new();
        set(&body, "tracks", Array::of1(&t));
        let path = self.path("/tracks/update")?;
        let result = match self.call("PUT", &path, &body).await {
            Ok(answer) => {
                let answered = self.answer_if_asked(&answer).await;
                // The call went through, but the SFU may have refused the track itself.
                answered.and(first_track_error(&answer).map_or(Ok(()), Err))
            }
            Err(error) => Err(error),
        };
        if result.is_err() {
            // Which layer comes is unknown now: the next measurement asks again (unless it
            // already chose another one, which is on its way).
            self.remote_mut(peer, |r| {
                if r.layer == Some(rid) {
                    r.layer = Some(UNKNOWN_LAYER);
                }
            });
        }
        result
    }

    /// When the SFU sent an offer with its answer, answers it through `renegotiate`. The SFU
    /// takes no other change before that answer, so failing to deliver it breaks the session
    /// (a protocol error: the plane starts over).
    async fn answer_if_asked(&self, answer: &JsValue) -> Result<(), Error> {
        if get(answer, "requiresImmediateRenegotiation").as_bool() != Some(true) {
            return Ok(());
        }
        self.answer(answer).await.map_err(|error| match error {
            Error::Protocol(_) => error,
            other => Error::Protocol(format!("the SFU's offer went unanswered: {other}")),
        })
    }

    async fn answer(&self, answer: &JsValue) -> Result<(), Error> {
        self.apply_remote(&get(answer, "sessionDescription"), RtcSdpType::Offer)
            .await?;
        let local = self.local_description().await?;
        let body = Object::new();
        set(&body, "sessionDescription", local);
        let path = self.path("/renegotiate")?;
        let mut retry = Backoff::new(250.0, 2_000.0);
        loop {
            match self.call("PUT", &path, &body).await {
                Ok(_) => return Ok(()),
                // The SFU waits for this answer before anything else: send it again.
                Err(error) if is_transient(&error) && retry.failures() < 4 => {
                    gloo_timers::future::TimeoutFuture::new(retry.next_delay_ms(js::random()))
                        .await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Closes `mids` (their transceivers are stopped) with an offer, and applies the answer.
    async fn close(&self, mids: Vec<String>) -> Result<(), Error> {
        if mids.is_empty() {
            return Ok(());
        }
        let Ok(path) = self.path("/tracks/close") else {
            return Ok(());
        };
        let offer = self.local_description().await?;
        let tracks = Array::new();
        for mid in mids {
            let t = Object::new();
            set(&t, "mid", mid);
            tracks.push(&t);
        }
        let body = Object::new();
        set(&body, "tracks", tracks);
        set(&body, "sessionDescription", offer);
        set(&body, "force", false);
        let answer = match self.call("PUT", &path, &body).await {
            Ok(answer) => answer,
            Err(error) => {
                self.rollback().await;
                return Err(error);
            }
        };
        let desc = get(&answer, "sessionDescription");
        if desc.is_object() {
            self.apply_remote(&desc, RtcSdpType::Answer).await?;
        }
        Ok(())
    }

    /// Back to stable after an offer the SFU never answered, so the next negotiation starts
    /// clean.
    async fn rollback(&self) {
        let rollback = RtcSessionDescriptionInit::new(RtcSdpType::Rollback);
        let _ = JsFuture::from(self.pc().set_local_description(&rollback)).await;
    }

    /// `setLocalDescription()`; the description as `{type, sdp}`.
    async fn local_description(&self) -> Result<JsValue, Error> {
        let pc = self.pc();
        JsFuture::from(js::set_local_description_auto(&pc))
            .await
            .map_err(|e| browser_error("creating a description for the SFU", &e))?;
        let desc = self
            .pc()
            .local_description()
            .ok_or_else(|| Error::Protocol("no local description".into()))?;
        let o = Object::new();
        set(&o, "type", get_str(&desc, "type").unwrap_or_default());
        set(&o, "sdp", desc.sdp());
        Ok(o.into())
    }

    async fn apply_remote(&self, desc: &JsValue, kind: RtcSdpType) -> Result<(), Error> {
        let sdp = get_str(desc, "sdp")
            .ok_or_else(|| Error::Protocol("the SFU sent no session description".into()))?;
        let init = RtcSessionDescriptionInit::new(kind);
        init.set_sdp(&sdp);
        let pc = self.pc();
        JsFuture::from(pc.set_remote_description(&init))
            .await
            .map_err(|e| {
                Error::Protocol(format!(
                    "the SFU's description was refused ({})",
                    crate::js_error::exception_parts(&e).1
                ))
            })?;
        Ok(())
    }
}

/// The remote `peer`: one body for the many callers of `remote_mut`, which is generic.
#[inline(never)]
fn find_remote<'a>(remotes: &'a mut [Remote], peer: &str) -> Option<&'a mut Remote> {
    remotes.iter_mut().find(|r| r.peer_id == peer)
}

/// The first per-track refusal (`errorCode`) in an answer of the Calls API.
fn first_track_error(answer: &JsValue) -> Option<Error> {
    let list = get(answer, "tracks").dyn_into::<Array>().ok()?;
    list.iter().find_map(|t| track_error(&t))
}

/// One track's refusal in an answer of the Calls API (`errorCode`, `errorDescription`).
fn track_error(track: &JsValue) -> Option<Error> {
    Some(Error::Server {
        code: get_str(track, "errorCode")?,
        message: get_str(track, "errorDescription").unwrap_or_default(),
    })
}

/// Queues `op` and starts the runner. An op identical to the last one queued is covered by
/// it; anywhere else it is not (a Publish after an Unpublish must run after it).
fn enqueue(state: &Rc<State>, op: Op) {
    {
        let mut ops = state.ops.borrow_mut();
        if ops.last() == Some(&op) {
            return;
        }
        ops.push(op);
    }
    if !state.running.replace(true) {
        spawn(Box::pin(run_ops(Rc::downgrade(state))));
    }
}

/// Whether the same call may work later: the server was busy or unreachable, or the SFU
/// said so (`retryable_transient_error`). Calls' `internal_error` also stands for refused
/// credentials and unreadable answers, so it is reported, not retried quietly.
fn is_transient(error: &Error) -> bool {
    session::is_transient(error)
        || matches!(error, Error::Server { code, .. } if code == "retryable_transient_error")
}

/// Whether `error` leaves the session unusable: it is gone (closed for silence, or the
/// server restarted), or a negotiation broke half-way and left the SFU waiting. A 406
/// `invalid_params` to calls this client makes from its own state means the SFU's view of the
/// session is not ours: above all, a call whose answer was lost on the way back after the SFU
/// made an offer, which it then waits to see answered before anything else, forever.
fn breaks_session(error: &Error) -> bool {
    matches!(error, Error::Server { code, .. } if code == "session_error")
        || matches!(error, Error::Protocol(_))
        || is_refusal(error)
}

/// A 406 `invalid_params`: the SFU refused a call the session's state did not allow.
fn is_refusal(error: &Error) -> bool {
    matches!(error, Error::Server { code, .. } if code == "invalid_params")
}

async fn run_ops(weak: Weak<State>) {
    loop {
        let Some(state) = weak.upgrade() else { return };
        let next = {
            let mut ops = state.ops.borrow_mut();
            (!ops.is_empty()).then(|| ops.remove(0))
        };
        let Some(op) = next else {
            state.running.set(false);
            // Everything went out and nothing was negotiated (nothing to send, nobody to
            // pull): no connection will come up, and none is missing.
            let negotiated = js::get_str(&state.pc(), "connectionState").as_deref() != Some("new");
            let waiting = state.retry.borrow().iter().any(|r| !r.fired.get());
            if !negotiated && !waiting && !state.has_media() {
                state.set_reconnecting(false);
            }
            return;
        };
        let rebuilding = op == Op::Rebuild;
        if let Err(error) = state.clone().run(op).await {
            // The session is gone (closed for silence, or the server restarted), or a
            // negotiation broke half-way and left the SFU waiting: start over.
            if breaks_session(&error) && !rebuilding {
                if is_refusal(&error) {
                    state.refused.set(true);
                }
                state.later(Op::Rebuild);
            }
            (state.setup.sink)(PlaneEvent::Error(error));
        }
    }
}

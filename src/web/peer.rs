//! One peer connection to one remote participant: perfect negotiation, trickle ICE with
//! candidates buffered until the remote description is set, recovery, and quality.

use std::cell::RefCell;
use std::rc::Rc;

use callroom_protocol::{IceCandidate, MessageKind, SessionDescription};
use gloo_events::EventListener;
use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    MediaStream, MediaStreamTrack, MediaStreamTrackEvent, RtcConfiguration, RtcIceCandidateInit,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcRtpSender, RtcRtpTransceiver, RtcSdpType,
    RtcSessionDescriptionInit, RtcSignalingState, RtcTrackEvent,
};

use crate::core::guard::PendingCandidates;
use crate::core::negotiation::{Negotiator, OnDescription, SignalingState};
use crate::core::quality::{Adapter, QualityMeter, QualityReport, SendLimits};
use crate::core::recovery::{IceState, Recovery, RecoveryAction, RecoveryOptions};
use crate::js_error::{browser_error, exception_parts};
use crate::web::js;
use crate::web::js::spawn;
use crate::web::stats;
use crate::web::wire;
use crate::Error;

/// What a link tells its room.
pub(crate) enum LinkEvent {
    /// Send this message to the remote peer (`offer`, `answer` or `candidate`).
    Send(MessageKind, JsValue),
    /// The remote stream gained a track.
    Track(MediaStream),
    /// The connection state changed.
    StateChanged,
    /// The link cannot recover by itself: build a new one (and tell the other side).
    Rebuild,
    /// Something went wrong that the app should hear about; the link carries on.
    Error(Error),
}

/// Which side starts the first negotiation of a link. Letting exactly one side offer first
/// avoids a collision (and the round trip perfect negotiation spends resolving it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opening {
    /// We just arrived (or rebuilt the link): we offer at once, with receive-only
    /// transceivers when we publish nothing, so the other side's media has a place to go.
    Offer,
    /// The other side will offer: our tracks join when its offer arrives, so the answer
    /// carries them without a second negotiation.
    Answer,
}

/// How long an answering side waits for the offer before publishing (and so offering) itself.
const OFFER_WAIT_MS: f64 = 3_000.0;

/// What a new link needs to know.
pub(crate) struct LinkSetup<'a> {
    /// Where the remote participant's tracks go: the same stream for every link to them, so
    /// tracks of an older link are taken out of it first.
    pub(crate) remote_stream: MediaStream,
    pub(crate) my_id: &'a str,
    pub(crate) peer_id: &'a str,
    /// Which build of the link to this peer this is.
    pub(crate) generation: u32,
    /// The link's peer connection, new and unused ([`connection`]).
    pub(crate) pc: RtcPeerConnection,
    pub(crate) recovery: RecoveryOptions,
    /// What we publish, if anything.
    pub(crate) local: Option<&'a MediaStream>,
    /// Kinds of track on their way, when we publish nothing yet: an offer we open gives them
    /// sending sections at once, and [`Link::fill`] puts the tracks on without renegotiation.
    pub(crate) coming: &'a [&'static str],
    pub(crate) opening: Opening,
}

/// Reacts to one peer-connection event.
type Handler = Box<dyn Fn(&Rc<Link>, &web_sys::Event)>;

/// Where link events go: the room, which holds no borrow while handling them.
pub(crate) type Sink = Rc<dyn Fn(&str, u32, LinkEvent)>;

struct LinkState {
    negotiator: Negotiator,
    /// Candidates that arrived before the remote description they belong to.
    pending: PendingCandidates<IceCandidate>,
    /// The peer overflowed `pending` (said once, then the excess is dropped quietly).
    overflowed: bool,
    /// A TURN server refused our credentials (said once per connection).
    turn_refused: bool,
    recovery: Recovery,
    meter: QualityMeter,
    adapter: Adapter,
    /// Our senders with their track kind (the track itself may be swapped out or null).
    senders: Vec<(String, RtcRtpSender)>,
    /// The streams the remote side sends its tracks in, watched for removed tracks (a few at
    /// most: one per stream the remote publishes, capped against a hostile peer).
    sources: Vec<(String, EventListener)>,
    quality: Option<QualityReport>,
    frames_decoded: f64,
    /// Our stream, held back until the other side's first offer (see [`Opening::Answer`]).
    held: Option<MediaStream>,
    /// We answer, and the first offer has not come (nor been given up on): a track added
    /// now is held too, or our own offer would cross theirs.
    awaiting_offer: bool,
    /// Sending sections made for tracks on their way (`LinkSetup::coming`), by kind: their
    /// senders wait for them.
    waiting: Vec<(String, RtcRtpTransceiver)>,
    opened_at: f64,
}

/// A peer connection and everything that belongs to it. Dropping it closes the connection
/// and removes every listener.
pub(crate) struct Link {
    peer_id: String,
    generation: u32,
    pc: RtcPeerConnection,
    /// The remote participant's media: one stream for the link's whole life, which gains
    /// the tracks that arrive and loses those the remote side removes, so an app can set
    /// `srcObject` once.
    remote_stream: MediaStream,
    state: RefCell<LinkState>,
    sink: Sink,
    listeners: RefCell<Vec<EventListener>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.listeners.borrow_mut().clear();
        self.state.borrow_mut().sources.clear();
        self.pc.close();
    }
}

/// A peer connection with every track on one transport (`max-bundle`): one set of ICE
/// candidates to gather, relay and check instead of one per media kind. Every browser callroom
/// runs in, and the SFU, supports bundling.
pub(crate) fn connection(ice_servers: &JsValue) -> Result<RtcPeerConnection, Error> {
    let config = RtcConfiguration::new();
    config.set_ice_servers(ice_servers);
    js::set(
        config.unchecked_ref::<Object>(),
        "bundlePolicy",
        "max-bundle",
    );
    RtcPeerConnection::new_with_configuration(&config)
        .map_err(|e| browser_error("creating a peer connection", &e))
}

fn signaling_state(pc: &RtcPeerConnection) -> SignalingState {
    match pc.signaling_state() {
        RtcSignalingState::Stable => SignalingState::Stable,
        RtcSignalingState::Closed => SignalingState::Closed,
        _ => SignalingState::Negotiating,
    }
}

impl Link {
    /// Opens a connection to `peer_id`; `local` (if publishing) is sent from the start.
    pub(crate) fn open(setup: LinkSetup<'_>, sink: Sink) -> Result<Rc<Self>, Error> {
        let LinkSetup {
            remote_stream,
            my_id,
            peer_id,
            generation,
            pc,
            recovery,
            local,
            coming,
            opening,
        } = setup;
        for old in remote_stream.get_tracks().iter() {
            remote_stream.remove_track(old.unchecked_ref());
        }
        let link = Rc::new(Self {
            peer_id: peer_id.to_owned(),
            generation,
            pc,
            remote_stream,
            state: RefCell::new(LinkState {
                negotiator: Negotiator::new(my_id, peer_id),
                pending: PendingCandidates::default(),
                overflowed: false,
                turn_refused: false,
                recovery: Recovery::new(recovery, js::now_ms()),
                meter: QualityMeter::default(),
                adapter: Adapter::default(),
                senders: Vec::new(),
                sources: Vec::new(),
                quality: None,
                frames_decoded: 0.0,
                held: None,
                awaiting_offer: opening == Opening::Answer,
                waiting: Vec::new(),
                opened_at: js::now_ms(),
            }),
            sink,
            listeners: RefCell::new(Vec::new()),
        });
        link.listen();
        match (opening, local) {
            (Opening::Offer, Some(stream)) => link.publish(stream),
            (Opening::Offer, None) => link.open_sections(coming),
            (Opening::Answer, local) => link.state.borrow_mut().held = local.cloned(),
        }
        if opening == Opening::Offer {
            // The first offer goes out now rather than on `negotiationneeded`, a task the
            // browser queues behind whatever the page does next (20 ms on a busy page). Once
            // it is under way, the browser sees nothing left to negotiate and stays quiet.
            spawn(Box::pin(link.clone().negotiate()));
        }
        Ok(link)
    }

    /// The remote peer.
    pub(crate) fn peer_id(&self) -> &str {
        &self.peer_id
    }

    /// Which build of the link to this peer this is; events from older ones are stale.
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// `RTCPeerConnection.connectionState`.
    pub(crate) fn connection_state(&self) -> String {
        js::get_str(&self.pc, "connectionState").unwrap_or_else(|| "new".into())
    }

    /// The remote participant's stream: empty until their first track arrives.
    pub(crate) fn remote_stream(&self) -> MediaStream {
        Clone::clone(&self.remote_stream)
    }

    /// The last quality report.
    pub(crate) fn quality(&self) -> Option<QualityReport> {
        self.state.borrow().quality
    }

    /// Video frames decoded from this peer so far (as of the last stats read).
    pub(crate) fn frames_decoded(&self) -> f64 {
        self.state.borrow().frames_decoded
    }

    /// True when this side yields on collisions (and leaves rebuilding to the other side).
    pub(crate) fn polite(&self) -> bool {
        self.state.borrow().negotiator.polite()
    }

    fn emit(&self, event: LinkEvent) {
        (self.sink)(&self.peer_id, self.generation, event);
    }

    fn listen(self: &Rc<Self>) {
        let weak = Rc::downgrade(self);
        let mut listeners = Vec::new();
        let on = |event: &'static str, handler: Handler| {
            let weak = weak.clone();
            EventListener::new(&self.pc, event, move |e| {
                if let Some(link) = weak.upgrade() {
                    handler(&link, e);
                }
            })
        };
        listeners.push(on(
            "negotiationneeded",
            Box::new(|link, _| spawn(Box::pin(link.clone().negotiate()))),
        ));
        listeners.push(on(
            "icecandidate",
            Box::new(|link, e| {
                let Some(e) = e.dyn_ref::<RtcPeerConnectionIceEvent>() else {
                    return;
                };
                // `null` marks the end of gathering; peers do not need it relayed.
                let Some(candidate) = e.candidate() else {
                    return;
                };
                let payload = IceCandidate {
                    candidate: candidate.candidate(),
                    sdp_mid: candidate.sdp_mid(),
                    sdp_m_line_index: candidate.sdp_m_line_index(),
                    username_fragment: js::get_str(&candidate, "usernameFragment"),
                };
                link.emit(LinkEvent::Send(
                    MessageKind::Candidate,
                    wire::ice_candidate_js(&payload),
                ));
            }),
        ));
        listeners.push(on(
            "track",
            Box::new(|link, e| {
                let Some(e) = e.dyn_ref::<RtcTrackEvent>() else {
                    return;
                };
                let track = e.track();
                if link.remote_stream.get_track_by_id(&track.id()).is_none() {
                    link.remote_stream.add_track(&track);
                }
                if let Ok(source) = e.streams().get(0).dyn_into::<MediaStream>() {
                    link.watch_source(&source);
                }
                link.emit(LinkEvent::Track(link.remote_stream()));
            }),
        ));
        listeners.push(on(
            "icecandidateerror",
            Box::new(|link, e| {
                let status = js::get(e, "errorCode").as_f64().unwrap_or(0.0) as u16;
                let url = js::get_str(e, "url").unwrap_or_default();
                let reason = js::get_str(e, "errorText").unwrap_or_default();
                let Some(error) = Error::from_ice_candidate_error(&url, status, &reason) else {
                    return;
                };
                if !std::mem::replace(&mut link.state.borrow_mut().turn_refused, true) {
                    link.emit(LinkEvent::Error(error));
                }
            }),
        ));
        listeners.push(on(
            "connectionstatechange",
            Box::new(|link, _| link.emit(LinkEvent::StateChanged)),
        ));
        listeners.push(on(
            "iceconnectionstatechange",
            Box::new(|link, _| {
                let state = IceState::parse(
                    &js::get_str(&link.pc, "iceConnectionState").unwrap_or_default(),
                );
                let action = link
                    .state
                    .borrow_mut()
                    .recovery
                    .on_ice_state(state, js::now_ms());
                link.act(action);
                link.emit(LinkEvent::StateChanged);
            }),
        ));
        *self.listeners.borrow_mut() = listeners;
    }

    /// Mirrors tracks the remote side removes from `source` (it unpublished) into our stream.
    fn watch_source(self: &Rc<Self>, source: &MediaStream) {
        const MAX_SOURCES: usize = 4;
        let id = source.id();
        let mut state = self.state.borrow_mut();
        if state.sources.len() >= MAX_SOURCES || state.sources.iter().any(|(s, _)| *s == id) {
            return;
        }
        let weak = Rc::downgrade(self);
        let listener = EventListener::new(source, "removetrack", move |e| {
            let Some(link) = weak.upgrade() else { return };
            let Some(e) = e.dyn_ref::<MediaStreamTrackEvent>() else {
                return;
            };
            link.remote_stream.remove_track(&e.track());
            link.emit(LinkEvent::StateChanged);
        });
        state.sources.push((id, listener));
    }

    fn act(&self, action: RecoveryAction) {
        // Only the impolite side restarts ICE or rebuilds (telling the other with a reset);
        // the polite side answers. Both sides see ICE fail at once, so restarts from both
        // would collide every time, and the polite side's rollback can leave Chromium decoding
        // frames that never reach the remote video track (seen after a 12 s outage: a frozen
        // picture).
        if self.polite() {
            return;
        }
        match action {
            RecoveryAction::Wait => {}
            RecoveryAction::RestartIce => {
                if let Err(e) = js::restart_ice(&self.pc) {
                    self.emit(LinkEvent::Error(browser_error("ICE restart", &e)));
                }
            }
            RecoveryAction::Rebuild => self.emit(LinkEvent::Rebuild),
        }
    }

    /// Signaling is back after an outage: recovery timeouts start again.
    pub(crate) fn on_signaling_resumed(&self, now: f64) {
        self.state.borrow_mut().recovery.on_signaling_resumed(now);
    }

    /// Time passed: drives recovery, and publishes held media if no offer came.
    pub(crate) fn tick(&self, now: f64) {
        let action = self.state.borrow_mut().recovery.on_tick(now);
        self.act(action);
        let overdue = {
            let state = self.state.borrow();
            (state.held.is_some() || state.awaiting_offer) && now - state.opened_at >= OFFER_WAIT_MS
        };
        if overdue {
            self.release_held();
        }
    }

    /// Publishes the stream held back for the other side's offer.
    fn release_held(&self) {
        let held = {
            let mut state = self.state.borrow_mut();
            state.awaiting_offer = false;
            state.held.take()
        };
        if let Some(stream) = held {
            self.publish(&stream);
        }
    }

    /// Sends the tracks of `stream`, reusing transceivers the remote side opened.
    pub(crate) fn publish(&self, stream: &MediaStream) {
        for track in stream
            .get_tracks()
            .iter()
            .filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
        {
            self.add_track(&track, stream);
        }
    }

    /// The sections of a first offer made before we publish: receive-only, but sending
    /// for each kind in `coming` (tracks on their way), whose senders then wait for them.
    fn open_sections(&self, coming: &[&str]) {
        // The other side groups the tracks by this stream; they are the camera's later.
        let stream = MediaStream::new().ok().filter(|_| !coming.is_empty());
        for kind in ["audio", "video"] {
            let init = web_sys::RtcRtpTransceiverInit::new();
            match &stream {
                Some(stream) if coming.contains(&kind) => {
                    init.set_direction(web_sys::RtcRtpTransceiverDirection::Sendrecv);
                    init.set_streams(&js_sys::Array::of1(stream));
                    let transceiver = self.pc.add_transceiver_with_str_and_init(kind, &init);
                    let mut state = self.state.borrow_mut();
                    state.senders.push((kind.to_owned(), transceiver.sender()));
                    state.waiting.push((kind.to_owned(), transceiver));
                }
                _ => {
                    init.set_direction(web_sys::RtcRtpTransceiverDirection::Recvonly);
                    self.pc.add_transceiver_with_str_and_init(kind, &init);
                }
            }
        }
    }

    /// Puts `stream`'s tracks on the senders made for tracks on their way, without
    /// renegotiation: the offer that made them is out already. A waiting kind the stream
    /// lacks stops being offered, and a kind nothing waited for is added (both renegotiate).
    /// False when no sender was waiting.
    pub(crate) fn fill(self: &Rc<Self>, stream: &MediaStream) -> bool {
        let waiting = std::mem::take(&mut self.state.borrow_mut().waiting);
        if waiting.is_empty() {
            return false;
        }
        let tracks: Vec<MediaStreamTrack> = stream
            .get_tracks()
            .iter()
            .filter_map(|t| t.dyn_into().ok())
            .collect();
        for (kind, transceiver) in waiting {
            match tracks.iter().find(|t| t.kind() == kind) {
                Some(track) => {
                    let replaced = JsFuture::from(transceiver.sender().replace_track(Some(track)));
                    let link = Rc::downgrade(self);
                    spawn(Box::pin(async move {
                        if let (Err(e), Some(link)) = (replaced.await, link.upgrade()) {
                            link.emit(LinkEvent::Error(browser_error("replacing a track", &e)));
                        }
                    }));
                }
                None => {
                    self.state.borrow_mut().senders.retain(|(k, _)| *k != kind);
                    stop_sending(&transceiver);
                }
            }
        }
        for track in &tracks {
            self.add_track(track, stream);
        }
        true
    }

    /// Stops sending; the remote side renegotiates to receive-only.
    pub(crate) fn unpublish(&self) {
        let mut state = self.state.borrow_mut();
        state.held = None;
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        for (_, transceiver) in waiting {
            stop_sending(&transceiver);
        }
        let senders = std::mem::take(&mut self.state.borrow_mut().senders);
        for (_, sender) in senders {
            self.pc.remove_track(&sender);
        }
    }

    /// Swaps the outgoing track of `kind` without renegotiation (`None` sends nothing).
    /// Returns false when no sender of that kind exists.
    pub(crate) async fn replace_track(
        &self,
        kind: &str,
        track: Option<&MediaStreamTrack>,
    ) -> Result<bool, Error> {
        let senders = self.state.borrow().senders.clone();
        let mut found = false;
        for (sender_kind, sender) in senders {
            if sender_kind == kind {
                found = true;
                JsFuture::from(sender.replace_track(track))
                    .await
                    .map_err(|e| browser_error("replacing a track", &e))?;
            }
        }
        Ok(found)
    }

    /// Adds one outgoing track (renegotiates), unless a sender of its kind exists already
    /// (then `replace_track` is the way to change what it sends).
    pub(crate) fn add_track(&self, track: &MediaStreamTrack, stream: &MediaStream) {
        let kind = track.kind();
        {
            let mut state = self.state.borrow_mut();
            if state.senders.iter().any(|(k, _)| *k == kind) {
                return;
            }
            if state.awaiting_offer && stream.get_track_by_id(&track.id()).is_some() {
                // The answer to their first offer carries it (the stream holds the track).
                state.held = Some(Clone::clone(stream));
                return;
            }
        }
        // No borrow is held while the browser runs, and its exceptions come back as values.
        match js::add_track(&self.pc, track, stream) {
            Ok(sender) => self.state.borrow_mut().senders.push((kind, sender)),
            Err(e) => self.emit(LinkEvent::Error(browser_error("adding a track", &e))),
        }
    }

    /// Makes an offer and sends it (perfect negotiation): on `negotiationneeded`, and at once
    /// when a link we open is ours to offer.
    async fn negotiate(self: Rc<Self>) {
        self.state.borrow_mut().negotiator.begin_offer();
        let result = JsFuture::from(js::set_local_description_auto(&self.pc)).await;
        self.state.borrow_mut().negotiator.end_offer();
        match result {
            Ok(_) => self.send_local_description(),
            Err(e) if signaling_state(&self.pc) == SignalingState::Closed => drop(e),
            Err(e) => self.emit(LinkEvent::Error(browser_error("creating an offer", &e))),
        }
    }

    fn send_local_description(&self) {
        let Some(desc) = self.pc.local_description() else {
            return;
        };
        let kind = js::get_str(&desc, "type").unwrap_or_default();
        let payload = SessionDescription {
            kind: kind.clone(),
            sdp: desc.sdp(),
        };
        let kind = if kind == "answer" {
            MessageKind::Answer
        } else {
            MessageKind::Offer
        };
        self.emit(LinkEvent::Send(
            kind,
            wire::session_description_js(&payload),
        ));
    }

    /// A remote offer or answer.
    pub(crate) async fn on_description(
        self: Rc<Self>,
        desc: SessionDescription,
    ) -> Result<(), Error> {
        let sdp_type = match desc.kind.as_str() {
            "offer" => RtcSdpType::Offer,
            "answer" => RtcSdpType::Answer,
            other => {
                return Err(Error::Protocol(format!(
                    "unknown description type `{other}`"
                )))
            }
        };
        let decision = self
            .state
            .borrow_mut()
            .negotiator
            .on_description(&desc.kind, signaling_state(&self.pc));
        let answer = match decision {
            OnDescription::Ignore | OnDescription::Drop => return Ok(()),
            OnDescription::Apply { answer } => answer,
        };
        let init = RtcSessionDescriptionInit::new(sdp_type);
        init.set_sdp(&desc.sdp);
        JsFuture::from(self.pc.set_remote_description(&init))
            .await
            .map_err(|e| {
                let (name, message) = exception_parts(&e);
                Error::Protocol(format!(
                    "peer {} sent a description the browser rejects ({name}: {message})",
                    self.peer_id
                ))
            })?;
        let pending = self.state.borrow_mut().pending.take();
        for candidate in pending {
            self.add_candidate(candidate).await?;
        }
        if answer {
            // Our held tracks take the transceivers the offer created, so the answer
            // carries them.
            self.release_held();
            JsFuture::from(js::set_local_description_auto(&self.pc))
                .await
                .map_err(|e| browser_error("creating an answer", &e))?;
            self.send_local_description();
        }
        Ok(())
    }

    /// A remote candidate: applied now, or kept until the remote description is set.
    pub(crate) async fn on_candidate(self: Rc<Self>, candidate: IceCandidate) -> Result<(), Error> {
        if self.pc.remote_description().is_none() {
            let mut state = self.state.borrow_mut();
            let size = candidate.candidate.len()
                + candidate.sdp_mid.as_ref().map_or(0, String::len)
                + candidate.username_fragment.as_ref().map_or(0, String::len);
            if state.pending.push(candidate, size).is_err() && !state.overflowed {
                state.overflowed = true;
                return Err(Error::Protocol(format!(
                    "peer {} sent more ICE candidates before its offer than are kept; the rest are dropped",
                    self.peer_id
                )));
            }
            return Ok(());
        }
        self.add_candidate(candidate).await
    }

    async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), Error> {
        let init = RtcIceCandidateInit::new(&candidate.candidate);
        init.set_sdp_mid(candidate.sdp_mid.as_deref());
        init.set_sdp_m_line_index(candidate.sdp_m_line_index);
        if let Some(ufrag) = &candidate.username_fragment {
            js::set(
                init.unchecked_ref::<Object>(),
                "usernameFragment",
                ufrag.as_str(),
            );
        }
        match JsFuture::from(
            self.pc
                .add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)),
        )
        .await
        {
            Ok(_) => Ok(()),
            // Candidates of an offer we ignored, or of an ICE generation that is gone, fail
            // by design.
            Err(_) if self.state.borrow().negotiator.ignoring_offer() => Ok(()),
            Err(e) => {
                let (name, message) = exception_parts(&e);
                if name == "OperationError" {
                    Ok(())
                } else {
                    Err(Error::Protocol(format!(
                        "peer {} sent an invalid ICE candidate ({name}: {message})",
                        self.peer_id
                    )))
                }
            }
        }
    }

    /// Reads stats, scores quality and adapts the video sender. Returns the new report.
    pub(crate) async fn measure(self: Rc<Self>) -> Option<QualityReport> {
        let connected = matches!(
            js::get_str(&self.pc, "iceConnectionState").as_deref(),
            Some("connected" | "completed")
        );
        let reading = stats::read(&self.pc, connected).await?;
        let (report, limits) = {
            let mut state = self.state.borrow_mut();
            let report = state.meter.update(reading.sample);
            state.quality = Some(report);
            state.frames_decoded = reading.frames_decoded;
            let limits = state.adapter.update(&report);
            (report, limits)
        };
        if let Some(limits) = limits {
            self.limit_video(limits).await;
        }
        Some(report)
    }

    async fn limit_video(&self, limits: SendLimits) {
        let senders = self.state.borrow().senders.clone();
        for (kind, sender) in senders {
            if kind != "video" {
                continue;
            }
            let Ok(params) = js::parameters(&sender) else {
                continue;
            };
            let encodings = js::get(&params, "encodings");
            let Some(encodings) = encodings.dyn_ref::<Array>() else {
                continue;
            };
            for encoding in encodings.iter().filter_map(|e| e.dyn_into::<Object>().ok()) {
                match limits.max_bitrate_bps {
                    Some(bps) => js::set(&encoding, "maxBitrate", bps),
                    None => {
                        let _ = js_sys::Reflect::delete_property(&encoding, &"maxBitrate".into());
                    }
                }
                js::set(
                    &encoding,
                    "scaleResolutionDownBy",
                    limits.scale_resolution_down_by,
                );
            }
            if let Err(e) = JsFuture::from(js::set_parameters(&sender, &params)).await {
                self.emit(LinkEvent::Error(browser_error(
                    "adapting the video bitrate",
                    &e,
                )));
            }
        }
    }
}

/// Makes a sending section that never got its track receive-only (the next offer says so).
/// `removeTrack` cannot: it does nothing for a sender without a track.
fn stop_sending(transceiver: &RtcRtpTransceiver) {
    // Through `Reflect.set`: the setter throws on a stopped transceiver, and an exception
    // must not unwind through Rust frames.
    js::set(transceiver.unchecked_ref(), "direction", "recvonly");
}

#[cfg(test)]
mod tests {
    //! Runs in the browser (`wasm-pack test`).
    use super::*;
    use crate::media::{LocalMedia, MediaRequest};
    use std::cell::RefCell;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    fn recording_sink() -> (Sink, Rc<RefCell<Vec<String>>>) {
        let errors = Rc::new(RefCell::new(Vec::new()));
        let seen = errors.clone();
        let sink: Sink = Rc::new(move |_: &str, _: u32, event: LinkEvent| {
            if let LinkEvent::Error(e) = event {
                seen.borrow_mut().push(e.to_string());
            }
        });
        (sink, errors)
    }

    /// A link that waits for pb's offer, publishing `local`; the errors it reports.
    fn answering_link(local: Option<&MediaStream>) -> (Rc<Link>, Rc<RefCell<Vec<String>>>) {
        let (sink, errors) = recording_sink();
        let link = Link::open(
            LinkSetup {
                remote_stream: MediaStream::new().unwrap(),
                my_id: "pa",
                peer_id: "pb",
                generation: 1,
                pc: connection(&js_sys::Array::new().into()).unwrap(),
                recovery: RecoveryOptions::default(),
                local,
                coming: &[],
                opening: Opening::Answer,
            },
            sink,
        )
        .unwrap();
        (link, errors)
    }

    #[wasm_bindgen_test]
    async fn a_held_stream_released_after_a_track_swap_never_adds_a_second_sender() {
        let media = LocalMedia::open(&MediaRequest::camera_and_microphone())
            .await
            .unwrap();
        let stream = Clone::clone(media.stream());
        let (link, errors) = answering_link(Some(&stream));
        // The camera changes before the offer arrives: the new track is added to the link and
        // put into the very stream the link holds back.
        let new_camera = crate::media::open_track("video", &crate::media::TrackRequest::Any)
            .await
            .unwrap();
        link.add_track(&new_camera, &stream);
        stream.add_track(&new_camera);
        // Then the held stream is released (as when the offer arrives): no second video sender,
        // no exception, and the link still works.
        link.release_held();
        let kinds: Vec<String> = link
            .state
            .borrow()
            .senders
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "video").count(),
            1,
            "{kinds:?}"
        );
        assert_eq!(
            kinds.iter().filter(|k| *k == "audio").count(),
            1,
            "{kinds:?}"
        );
        assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
        new_camera.stop();
    }

    #[wasm_bindgen_test]
    async fn a_camera_turned_on_before_the_first_offer_waits_for_it_instead_of_offering_across_it()
    {
        let (link, errors) = answering_link(None);
        let camera = crate::media::open_track("video", &crate::media::TrackRequest::Any)
            .await
            .unwrap();
        let stream = MediaStream::new().unwrap();
        stream.add_track(&camera);
        link.add_track(&camera, &stream);
        // Held: no sender, so no offer of ours crosses the one the other side is making.
        assert!(link.state.borrow().senders.is_empty());
        assert_eq!(link.pc.get_senders().length(), 0);
        assert!(link.state.borrow().held.is_some());
        // Their offer comes (or the wait runs out): the camera goes out then.
        link.release_held();
        assert_eq!(link.pc.get_senders().length(), 1);
        // From then on a track is added at once.
        let mic = crate::media::open_track("audio", &crate::media::TrackRequest::Any)
            .await
            .unwrap();
        stream.add_track(&mic);
        link.add_track(&mic, &stream);
        assert_eq!(link.pc.get_senders().length(), 2);
        assert!(errors.borrow().is_empty(), "{:?}", errors.borrow());
        camera.stop();
        mic.stop();
    }
}

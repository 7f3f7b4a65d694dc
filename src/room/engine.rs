//! The room at work in the browser: join, the long-poll loop, the outbox, links, the ticker,
//! media controls and teardown.
//!
//! Rules that keep it sound: no `RefCell` borrow is held across an `await` or while app
//! callbacks run (`update` publishes after releasing it); tasks hold a `Weak` across awaits,
//! so dropping the last `Room` frees everything; every timer, listener and in-flight request
//! is owned by `Inner`, so leaving cancels it.

use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use gloo_timers::callback::{Interval, Timeout};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;
use web_sys::{AbortController, MediaStream, MediaStreamTrack};

use super::{JoinOptions, RoomEvent, Shared};
use crate::core::backoff::Backoff;
use crate::core::roster::{classify, Change, ConnectionState, Inbound, Roster, RESET};
use crate::media::{self, Device, LocalMedia, TrackRequest};
use crate::web::http::Http;
use crate::web::js;
use crate::web::peer::{Link, LinkEvent, LinkSetup, Opening, Sink};
use crate::web::wire;
use crate::Error;

/// The open links, one per remote peer. A handful at most, so a `Vec` beats a map (and
/// costs less code in the bundle).
#[derive(Default)]
pub(crate) struct Links(Vec<Rc<Link>>);

impl Links {
    pub(crate) fn get(&self, peer: &str) -> Option<&Rc<Link>> {
        self.0.iter().find(|l| l.peer_id() == peer)
    }

    fn contains_key(&self, peer: &str) -> bool {
        self.get(peer).is_some()
    }

    /// Adds `link`, replacing (and so closing) any link to the same peer.
    fn insert(&mut self, link: Rc<Link>) {
        self.remove(link.peer_id());
        self.0.push(link);
    }

    fn remove(&mut self, peer: &str) {
        self.0.retain(|l| l.peer_id() != peer);
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Rc<Link>> {
        self.0.iter()
    }

    /// The links, to use after the room state is released (across awaits).
    fn snapshot(&self) -> Vec<Rc<Link>> {
        self.0.clone()
    }
}

/// Room state while joined.
pub(crate) struct Session {
    pub(crate) peer_id: String,
    token: String,
    pub(crate) roster: Roster,
    cursor: u64,
    ice_servers: JsValue,
}

pub(crate) struct Inner {
    pub(crate) options: JoinOptions,
    http: Http,
    pub(crate) state: ConnectionState,
    pub(crate) session: Option<Session>,
    pub(crate) links: Links,
    /// Each link gets a new number, so events from a replaced link are recognised as stale.
    next_generation: u32,
    pub(crate) local: Option<LocalMedia>,
    pub(crate) mic_enabled: bool,
    pub(crate) camera_enabled: bool,
    pub(crate) screen: Option<MediaStreamTrack>,
    pub(crate) devices: Vec<Device>,
    pub(crate) error: Option<Error>,
    /// Bumped by leave and by each rejoin: tasks of an older epoch stop.
    epoch: u32,
    backoff: Backoff,
    poll_abort: Option<AbortController>,
    retry_timer: Option<Timeout>,
    ticker: Option<Interval>,
    ticks: u32,
    outbox: VecDeque<(String, String, JsValue)>,
    /// The epoch whose outbox drainer is running, if any (a drainer of an older epoch
    /// stops by itself and must not keep a new one from starting).
    sending: Option<u32>,
    /// `devicechange`, local tracks' `ended`.
    listeners: Vec<EventListener>,
    events: Vec<RoomEvent>,
    pub(crate) changed: bool,
}

impl Inner {
    pub(crate) fn new(options: JoinOptions) -> Self {
        let backoff = Backoff::new(
            f64::from(options.retry_base_ms),
            f64::from(options.retry_max_ms),
        );
        Self {
            http: Http::new(&options.server),
            options,
            state: ConnectionState::Connecting,
            session: None,
            links: Links::default(),
            next_generation: 0,
            local: None,
            mic_enabled: false,
            camera_enabled: false,
            screen: None,
            devices: Vec::new(),
            error: None,
            epoch: 0,
            backoff,
            poll_abort: None,
            retry_timer: None,
            ticker: None,
            ticks: 0,
            outbox: VecDeque::new(),
            sending: None,
            listeners: Vec::new(),
            events: Vec::new(),
            changed: false,
        }
    }

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.events.push(RoomEvent::State(state));
            self.changed = true;
        }
    }

    pub(crate) fn push_listener(&mut self, listener: EventListener) {
        self.listeners.push(listener);
    }

    pub(crate) fn report_error(&mut self, error: Error) {
        self.report(error);
    }

    fn report(&mut self, error: Error) {
        self.events.push(RoomEvent::Error(error.clone()));
        self.error = Some(error);
        self.changed = true;
    }

    /// Stops everything that runs on its own; the session and media stay.
    fn stop_activity(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if let Some(abort) = self.poll_abort.take() {
            abort.abort();
        }
        self.retry_timer = None;
        self.outbox.clear();
        self.sending = None;
        self.links.clear();
    }
}

impl Drop for Inner {
    /// Dropping the last handle without `leave()` still leaves: the server is told (best
    /// effort) and every connection, track, timer and listener goes with `Inner`.
    fn drop(&mut self) {
        self.stop_activity();
        if let Some(session) = self.session.take() {
            let http = self.http.clone();
            spawn_local(async move { end_session(&http, &session.token).await });
        }
    }
}

/// Runs `f` on the room state, then delivers the notifications it queued. `None` when the
/// room is gone or (a bug) already borrowed, rather than a panic.
pub(crate) fn update<R>(shared: &Rc<Shared>, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    let (result, events, changed) = {
        let mut inner = shared.inner.try_borrow_mut().ok()?;
        let result = f(&mut inner);
        (
            result,
            std::mem::take(&mut inner.events),
            std::mem::take(&mut inner.changed),
        )
    };
    shared.notify.publish(events, changed);
    Some(result)
}

fn with<R>(weak: &Weak<Shared>, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
    update(&weak.upgrade()?, f)
}

// ------------------------------------------------------------------ join and rejoin

/// Joins (or rejoins) and starts the poll loop and the ticker.
pub(crate) async fn connect(shared: &Rc<Shared>) -> Result<(), Error> {
    let Some((http, request, epoch)) = update(shared, |inner| {
        let o = &inner.options;
        let request = callroom_protocol::JoinRequest {
            room: o.room.clone(),
            role: o.role,
            name: o.name.clone(),
            ticket: o.ticket.clone(),
        };
        (inner.http.clone(), request, inner.epoch)
    }) else {
        return Err(Error::Closed);
    };
    let answer = http
        .post("/signaling", None, &wire::join_request(&request), None)
        .await?;
    let joined = wire::join_response(&answer)?;
    let weak = Rc::downgrade(shared);
    let started = update(shared, |inner| {
        if inner.epoch != epoch || inner.state == ConnectionState::Disconnected {
            // Left (or rejoined) while this join was in flight: end the session it made, so
            // nobody sees a ghost until the server's timeout.
            let http = inner.http.clone();
            let token = joined.token.clone();
            spawn_local(async move { end_session(&http, &token).await });
            return Err(Error::Closed);
        }
        let ice_servers = match &inner.options.ice_servers {
            Some(servers) => wire::ice_servers_js(servers),
            None => wire::ice_servers_js(&joined.ice_servers),
        };
        let roster = Roster::new(&joined.peer_id, joined.role, joined.topology, joined.peers);
        let links: Vec<String> = roster.links().iter().map(|m| m.peer_id.clone()).collect();
        inner.session = Some(Session {
            peer_id: joined.peer_id,
            token: joined.token,
            roster,
            cursor: joined.cursor,
            ice_servers,
        });
        inner.backoff.reset();
        for peer in links {
            // We are the newcomer: we offer to everyone already here.
            open_link(inner, &weak, &peer, Opening::Offer);
        }
        if inner.ticker.is_none() {
            let weak = weak.clone();
            inner.ticker = Some(Interval::new(1_000, move || tick(&weak)));
        }
        inner.set_state(ConnectionState::Connected);
        inner.changed = true;
        Ok(inner.epoch)
    });
    let epoch = started.ok_or(Error::Closed)??;
    spawn_local(poll_loop(weak, epoch));
    Ok(())
}

/// A full rejoin: new session, new links; local media stays.
pub(crate) fn rejoin(shared: &Rc<Shared>) {
    let rejoin = update(shared, |inner| {
        if inner.state == ConnectionState::Disconnected {
            return None;
        }
        inner.stop_activity();
        let old = inner.session.take().map(|s| (inner.http.clone(), s.token));
        inner.set_state(ConnectionState::Reconnecting);
        Some((inner.epoch, old))
    })
    .flatten();
    let Some((epoch, old)) = rejoin else { return };
    let weak = Rc::downgrade(shared);
    spawn_local(async move {
        // End the old session first (when the server still knows it), so the others drop it
        // at once instead of after the server's peer timeout.
        if let Some((http, token)) = old {
            end_session(&http, &token).await;
        }
        rejoin_attempt(weak, epoch).await;
    });
}

async fn rejoin_attempt(weak: Weak<Shared>, epoch: u32) {
    let Some(shared) = weak.upgrade() else { return };
    if with(&weak, |inner| inner.epoch != epoch) != Some(false) {
        return;
    }
    let result = connect(&shared).await;
    drop(shared);
    if let Err(error) = result {
        with(&weak, |inner| {
            if inner.epoch != epoch {
                return;
            }
            if error.is_fatal_for_join() {
                inner.set_state(ConnectionState::Failed);
                inner.report(error);
            } else {
                let delay = inner.backoff.next_delay_ms(js::random());
                let weak = weak.clone();
                inner.retry_timer = Some(Timeout::new(delay, move || {
                    spawn_local(rejoin_attempt(weak, epoch));
                }));
            }
        });
    }
}

// ------------------------------------------------------------------ polling

async fn poll_loop(weak: Weak<Shared>, epoch: u32) {
    loop {
        let Some(request) = with(&weak, |inner| {
            if inner.epoch != epoch {
                return None;
            }
            let session = inner.session.as_ref()?;
            let abort = AbortController::new().ok()?;
            let signal = abort.signal();
            inner.poll_abort = Some(abort);
            // While reconnecting, ask without waiting: the first answer shows the server is
            // back at once, instead of after a full long-poll.
            let wait = if inner.state == ConnectionState::Reconnecting {
                0
            } else {
                inner.options.poll_wait_ms
            };
            Some((
                inner.http.clone(),
                format!("/messages?since={}&wait={wait}", session.cursor),
                session.token.clone(),
                signal,
            ))
        })
        .flatten() else {
            return;
        };
        let (http, path, token, signal) = request;
        let result = http.get(&path, Some(&token), Some(&signal)).await;
        let Some(shared) = weak.upgrade() else { return };
        if with(&weak, |inner| inner.epoch != epoch) != Some(false) {
            return;
        }
        match result.and_then(|json| wire::messages(&json)) {
            Ok((messages, cursor)) => {
                for message in messages {
                    // Each message is handled once: anything at or below the cursor was
                    // handled already (the server never repeats, but a client must not trust
                    // that with its peer connections).
                    let fresh = with(&weak, |inner| {
                        let session = inner.session.as_mut()?;
                        let fresh = message.seq > session.cursor;
                        session.cursor = session.cursor.max(message.seq);
                        Some(fresh)
                    })
                    .flatten();
                    if fresh == Some(true) {
                        handle_message(&shared, message).await;
                    }
                    if with(&weak, |inner| inner.epoch != epoch) != Some(false) {
                        return;
                    }
                }
                let pause = update(&shared, |inner| {
                    if let Some(session) = inner.session.as_mut() {
                        session.cursor = session.cursor.max(cursor);
                    }
                    inner.backoff.reset();
                    inner.set_state(ConnectionState::Connected);
                    let pause = inner.options.poll_interval_ms;
                    if pause > 0 {
                        let weak = weak.clone();
                        inner.retry_timer = Some(Timeout::new(pause, move || {
                            spawn_local(poll_loop(weak, epoch));
                        }));
                    }
                    pause
                });
                if pause != Some(0) {
                    return;
                }
            }
            Err(error @ Error::Server { .. }) if error.code() == "replaced" => {
                // Another host of this hub took over. Rejoining would take it back and start
                // a tug of war; the app decides (`reconnect()` takes over deliberately).
                update(&shared, |inner| {
                    inner.stop_activity();
                    inner.session = None;
                    inner.set_state(ConnectionState::Failed);
                    inner.report(error);
                });
                return;
            }
            Err(Error::Server { code, .. }) if code == "unauthorized" => {
                // Our peer expired (the server timed us out or lost its state): join anew.
                rejoin(&shared);
                return;
            }
            Err(error) => {
                update(&shared, |inner| {
                    if matches!(error, Error::Protocol(_)) {
                        inner.report(error);
                    }
                    inner.set_state(ConnectionState::Reconnecting);
                    let delay = inner.backoff.next_delay_ms(js::random());
                    let weak = weak.clone();
                    inner.retry_timer = Some(Timeout::new(delay, move || {
                        spawn_local(poll_loop(weak, epoch));
                    }));
                });
                return;
            }
        }
    }
}

async fn handle_message(shared: &Rc<Shared>, message: wire::Inbound) {
    let payload = &message.payload;
    let result = match classify(&message.kind) {
        Inbound::PeerJoined => {
            wire::peer_info(payload).map(|peer| apply(shared, |roster| roster.joined(peer)))
        }
        Inbound::PeerLeft => {
            wire::peer_left(payload).map(|left| apply(shared, |roster| roster.left(left)))
        }
        Inbound::HostReset => {
            wire::host_reset(payload).map(|reset| apply(shared, |roster| roster.host_reset(reset)))
        }
        Inbound::Description => match (wire::session_description(payload), message.from) {
            (Ok(desc), Some(from)) => match link_for(shared, &from) {
                Some(link) => link.on_description(desc).await,
                None => Ok(()),
            },
            (Err(e), _) => Err(e),
            (Ok(_), None) => Ok(()),
        },
        Inbound::Candidate => match (wire::ice_candidate(payload), message.from) {
            (Ok(candidate), Some(from)) => match link_for(shared, &from) {
                Some(link) => link.on_candidate(candidate).await,
                None => Ok(()),
            },
            (Err(e), _) => Err(e),
            (Ok(_), None) => Ok(()),
        },
        Inbound::Reset => {
            if let Some(from) = message.from {
                let weak = Rc::downgrade(shared);
                update(shared, |inner| {
                    if inner.links.contains_key(&from) {
                        open_link(inner, &weak, &from, Opening::Answer);
                    }
                });
            }
            Ok(())
        }
        // A newer server or client may send types this version does not know.
        Inbound::Unknown => Ok(()),
    };
    if let Err(error) = result {
        update(shared, |inner| inner.report(error));
    }
}

fn apply(shared: &Rc<Shared>, change: impl FnOnce(&mut Roster) -> Vec<Change>) {
    let weak = Rc::downgrade(shared);
    update(shared, |inner| {
        let Some(session) = inner.session.as_mut() else {
            return;
        };
        for change in change(&mut session.roster) {
            match change {
                Change::Joined { peer, link } => {
                    if link {
                        open_link(inner, &weak, &peer.peer_id, Opening::Answer);
                    }
                    inner.events.push(RoomEvent::ParticipantJoined(peer));
                }
                Change::Left { peer_id, reason } => {
                    inner.links.remove(&peer_id);
                    inner
                        .events
                        .push(RoomEvent::ParticipantLeft { peer_id, reason });
                }
            }
            inner.changed = true;
        }
    });
}

/// The link to `peer`, opened on demand if our topology links us.
fn link_for(shared: &Rc<Shared>, peer: &str) -> Option<Rc<Link>> {
    let weak = Rc::downgrade(shared);
    update(shared, |inner| {
        if let Some(link) = inner.links.get(peer) {
            return Some(link.clone());
        }
        let member = inner.session.as_ref()?.roster.member(peer)?.clone();
        if !inner.session.as_ref()?.roster.links_to(member.role) {
            return None;
        }
        open_link(inner, &weak, peer, Opening::Answer);
        inner.links.get(peer).cloned()
    })
    .flatten()
}

/// Opens (or replaces) the link to `peer`.
fn open_link(inner: &mut Inner, weak: &Weak<Shared>, peer: &str, opening: Opening) {
    let Some(session) = inner.session.as_ref() else {
        return;
    };
    inner.next_generation = inner.next_generation.wrapping_add(1);
    let generation = inner.next_generation;
    let sink_weak = weak.clone();
    let sink: Sink = Rc::new(move |peer: &str, generation: u32, event: LinkEvent| {
        on_link_event(&sink_weak, peer, generation, event);
    });
    let local = inner.local.as_ref().map(|m| Clone::clone(m.stream()));
    let setup = LinkSetup {
        my_id: &session.peer_id,
        peer_id: peer,
        generation,
        ice_servers: &session.ice_servers,
        recovery: inner.options.recovery,
        local: local.as_ref(),
        opening,
    };
    match Link::open(setup, sink) {
        Ok(link) => {
            inner.links.insert(link);
            inner.changed = true;
        }
        Err(error) => inner.report(error),
    }
}

fn on_link_event(weak: &Weak<Shared>, peer: &str, generation: u32, event: LinkEvent) {
    let Some(shared) = weak.upgrade() else { return };
    let current = update(&shared, |inner| {
        inner
            .links
            .get(peer)
            .is_some_and(|l| l.generation() == generation)
    });
    if current != Some(true) {
        return;
    }
    match event {
        LinkEvent::Send(kind, payload) => send(&shared, peer, kind, payload),
        LinkEvent::Track(stream) => {
            update(&shared, |inner| {
                inner.events.push(RoomEvent::Track {
                    peer_id: peer.to_owned(),
                    stream,
                });
                inner.changed = true;
            });
        }
        LinkEvent::StateChanged => {
            update(&shared, |inner| inner.changed = true);
        }
        LinkEvent::Rebuild => {
            // The reset goes out first (the outbox keeps order), then the new link's offer.
            send(&shared, peer, RESET, JsValue::from(js_sys::Object::new()));
            update(&shared, |inner| {
                open_link(inner, weak, peer, Opening::Offer)
            });
        }
        LinkEvent::Error(error) => {
            update(&shared, |inner| inner.report(error));
        }
    }
}

// ------------------------------------------------------------------ outbox

/// Queues a relay; the outbox sends one at a time, in order, retrying outages.
fn send(shared: &Rc<Shared>, to: &str, kind: &str, payload: JsValue) {
    let start = update(shared, |inner| {
        inner
            .outbox
            .push_back((to.to_owned(), kind.to_owned(), payload));
        let epoch = inner.epoch;
        (inner.sending.replace(epoch) != Some(epoch)).then_some(epoch)
    })
    .flatten();
    if let Some(epoch) = start {
        spawn_local(drain_outbox(Rc::downgrade(shared), epoch));
    }
}

async fn drain_outbox(weak: Weak<Shared>, epoch: u32) {
    let mut failures = Backoff::new(250.0, 5_000.0);
    loop {
        let Some(next) = with(&weak, |inner| {
            let front = (inner.epoch == epoch)
                .then(|| inner.outbox.front().cloned())
                .flatten();
            let token = inner.session.as_ref().map(|s| s.token.clone());
            match (front, token) {
                (Some(front), Some(token)) => Some((inner.http.clone(), token, front)),
                _ => {
                    if inner.sending == Some(epoch) {
                        inner.sending = None;
                    }
                    None
                }
            }
        })
        .flatten() else {
            return;
        };
        let (http, token, (to, kind, payload)) = next;
        let body = wire::relay(&kind, &to, &payload);
        let result = http.post("/signaling", Some(&token), &body, None).await;
        let retry = match &result {
            Ok(_) => false,
            Err(Error::Network(_)) => true,
            Err(Error::Server { code, .. }) => {
                code == "rate_limited" || code.starts_with("http_5") || code == "internal"
            }
            Err(_) => false,
        };
        if retry {
            let delay = failures.next_delay_ms(js::random());
            gloo_timers::future::TimeoutFuture::new(delay).await;
            continue;
        }
        failures.reset();
        with(&weak, |inner| {
            if inner.epoch == epoch {
                inner.outbox.pop_front();
            }
            if let Err(error) = result {
                // `peer_not_found`: the peer left meanwhile; nothing to tell the app.
                if !matches!(&error, Error::Server { code, .. } if code == "peer_not_found") {
                    inner.report(error);
                }
            }
        });
    }
}

// ------------------------------------------------------------------ ticker

fn tick(weak: &Weak<Shared>) {
    let Some(work) = with(weak, |inner| {
        inner.ticks = inner.ticks.wrapping_add(1);
        let every = (inner.options.stats_interval_ms / 1000).max(1);
        let measure = inner.ticks % every == 0;
        let links = inner.links.snapshot();
        (links, measure)
    }) else {
        return;
    };
    let (links, measure) = work;
    let now = js::now_ms();
    for link in links {
        link.tick(now);
        if measure {
            let weak = weak.clone();
            spawn_local(async move {
                let peer = link.peer_id().to_owned();
                if let Some(report) = link.measure().await {
                    with(&weak, |inner| {
                        inner.events.push(RoomEvent::Quality {
                            peer_id: peer,
                            report,
                        });
                        inner.changed = true;
                    });
                }
            });
        }
    }
}

// ------------------------------------------------------------------ media

/// Starts sending `media` to every link (renegotiating where needed).
pub(crate) fn publish_media(shared: &Rc<Shared>, media: LocalMedia) {
    let weak = Rc::downgrade(shared);
    update(shared, |inner| {
        for link in inner.links.values() {
            link.unpublish();
            link.publish(media.stream());
        }
        inner.mic_enabled = media.audio_tracks().iter().any(|t| t.enabled());
        inner.camera_enabled = !media.video_tracks().is_empty();
        watch_tracks(inner, &weak, &media);
        inner.local = Some(media);
        inner.changed = true;
    });
}

pub(crate) fn unpublish(shared: &Rc<Shared>) {
    update(shared, |inner| {
        for link in inner.links.values() {
            link.unpublish();
        }
        inner.local = None;
        inner.mic_enabled = false;
        inner.camera_enabled = false;
        inner.changed = true;
    });
}

/// A device unplugged ends its track: fall back to another device of that kind.
fn watch_tracks(inner: &mut Inner, weak: &Weak<Shared>, media: &LocalMedia) {
    for track in media.video_tracks().into_iter().chain(media.audio_tracks()) {
        watch_track(inner, weak, &track);
    }
}

fn watch_track(inner: &mut Inner, weak: &Weak<Shared>, track: &MediaStreamTrack) {
    let weak = weak.clone();
    let kind = track.kind();
    let id = track.id();
    inner
        .listeners
        .push(EventListener::once(track, "ended", move |_| {
            spawn_local(fall_back(weak, kind, id));
        }));
}

async fn fall_back(weak: Weak<Shared>, kind: String, ended_id: String) {
    let still_current = with(&weak, |inner| {
        inner
            .local
            .as_ref()
            .is_some_and(|m| m.stream().get_track_by_id(&ended_id).is_some())
    });
    if still_current != Some(true) {
        return;
    }
    let replacement = media::open_track(&kind, &TrackRequest::Any).await;
    let Some(shared) = weak.upgrade() else { return };
    let label = if kind == "video" {
        "camera"
    } else {
        "microphone"
    };
    match replacement {
        Ok(track) => {
            let message = format!("the {label} stopped; switched to {}", track.label());
            swap_local_track(&shared, &kind, Some(track)).await;
            update(&shared, |inner| inner.report(Error::DeviceLost(message)));
        }
        Err(_) => {
            swap_local_track(&shared, &kind, None).await;
            update(&shared, |inner| {
                if kind == "video" {
                    inner.camera_enabled = false;
                } else {
                    inner.mic_enabled = false;
                }
                inner.report(Error::DeviceLost(format!(
                    "the {label} stopped and no other is available"
                )));
            });
        }
    }
}

/// Puts `track` in the local stream and on every link: without renegotiation where a
/// sender of that kind exists, with it where none does. While a screen is shared, the
/// links keep sending the screen and only the local stream changes.
pub(crate) async fn swap_local_track(
    shared: &Rc<Shared>,
    kind: &str,
    track: Option<MediaStreamTrack>,
) {
    let weak = Rc::downgrade(shared);
    let Some((links, stream, screen_active)) = update(shared, |inner| {
        if inner.local.is_none() {
            inner.local = MediaStream::new().ok().map(LocalMedia::adopt);
        }
        let local = inner.local.as_mut()?;
        local.swap_track(track.as_ref(), kind);
        let stream = Clone::clone(local.stream());
        if let Some(track) = &track {
            watch_track(inner, &weak, track);
        }
        inner.changed = true;
        let screen_active = kind == "video" && inner.screen.is_some();
        Some((inner.links.snapshot(), stream, screen_active))
    })
    .flatten() else {
        return;
    };
    if !screen_active {
        send_track(shared, &links, kind, track.as_ref(), &stream).await;
    }
}

/// Sends `track` as the outgoing track of `kind` on each link.
pub(crate) async fn send_track(
    shared: &Rc<Shared>,
    links: &[Rc<Link>],
    kind: &str,
    track: Option<&MediaStreamTrack>,
    stream: &MediaStream,
) {
    for link in links {
        match link.replace_track(kind, track).await {
            Ok(true) => {}
            Ok(false) => {
                if let Some(track) = track {
                    link.add_track(track, stream);
                }
            }
            Err(error) => {
                update(shared, |inner| inner.report(error));
            }
        }
    }
}

/// Shares `track` in place of the camera on every link.
pub(crate) async fn start_screen(shared: &Rc<Shared>, track: MediaStreamTrack) {
    let weak = Rc::downgrade(shared);
    let Some((links, stream)) = update(shared, |inner| {
        if let Some(old) = inner.screen.replace(Clone::clone(&track)) {
            old.stop();
        }
        // The browser's own "Stop sharing" button ends the track.
        let on_end = weak.clone();
        inner
            .listeners
            .push(EventListener::once(&track, "ended", move |_| {
                if let Some(shared) = on_end.upgrade() {
                    spawn_local(async move { stop_screen(&shared).await });
                }
            }));
        inner.changed = true;
        let stream = inner
            .local
            .as_ref()
            .map(|l| Clone::clone(l.stream()))
            .or_else(|| MediaStream::new().ok())?;
        Some((inner.links.snapshot(), stream))
    })
    .flatten() else {
        return;
    };
    send_track(shared, &links, "video", Some(&track), &stream).await;
}

/// Stops sharing; the links send the camera again, or nothing if it is off.
pub(crate) async fn stop_screen(shared: &Rc<Shared>) {
    let Some((links, camera, stream)) = update(shared, |inner| {
        let screen = inner.screen.take()?;
        screen.stop();
        inner.changed = true;
        let local = inner.local.as_ref();
        let camera = local.and_then(|l| l.video_tracks().into_iter().next());
        let stream = local
            .map(|l| Clone::clone(l.stream()))
            .or_else(|| MediaStream::new().ok())?;
        Some((inner.links.snapshot(), camera, stream))
    })
    .flatten() else {
        return;
    };
    send_track(shared, &links, "video", camera.as_ref(), &stream).await;
}

/// Leaves: everything stops at once, then the server is told.
pub(crate) async fn leave(shared: &Rc<Shared>) {
    let session = update(shared, |inner| {
        inner.stop_activity();
        inner.ticker = None;
        inner.listeners.clear();
        if let Some(screen) = inner.screen.take() {
            screen.stop();
        }
        inner.local = None;
        inner.mic_enabled = false;
        inner.camera_enabled = false;
        inner.set_state(ConnectionState::Disconnected);
        inner.changed = true;
        inner.session.take().map(|s| (inner.http.clone(), s.token))
    })
    .flatten();
    shared.notify.close();
    if let Some((http, token)) = session {
        end_session(&http, &token).await;
    }
}

/// Tells the server a session is over. Best effort: if the server is unreachable, it times
/// the session out instead.
async fn end_session(http: &Http, token: &str) {
    let _ = http
        .post("/signaling", Some(token), &wire::leave(), None)
        .await;
}

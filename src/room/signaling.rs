//! The signaling client: join and rejoin, the long-poll loop and what each message means, the
//! outbox of relays, and leaving. Its decisions (retry, rejoin, stop; which messages are
//! fresh; which failed relays are sent again) are made by `core::session`; this file carries
//! them out with `fetch` and timers.

use std::cell::Cell;
use std::rc::{Rc, Weak};

use callroom_protocol::{
    HostReset, JoinRequest, JoinResponse, MessageKind, PeerInfo, PeerLeft, Role, Topology,
};
use futures_channel::oneshot;
use wasm_bindgen::JsValue;
use web_sys::RtcPeerConnection;

use super::plane::{Plane, PlaneEvent, PlaneSetup, PlaneSink, Signal};
use super::state::{read, update, with, Session, Shared, Signaling};
use super::{ticker, RoomEvent};
use crate::core::backoff::Backoff;
use crate::core::roster::{Change, ConnectionState, Roster};
use crate::core::session::{
    on_join_error, on_relay_error, PollAction, PollPolicy, RelayAction, DEAD_AFTER_MS,
};
use crate::web::http::{Deadline, Http};
use crate::web::js;
use crate::web::js::spawn;
use crate::web::peer;
use crate::web::wire;
use crate::{Error, JoinOptions};

/// A relay waiting in the outbox.
pub(crate) struct Relay {
    to: String,
    kind: MessageKind,
    payload: JsValue,
}

// ------------------------------------------------------------------ join and rejoin

/// Where a hub host keeps its reclaim key for `room` on `server`: the tab's sessionStorage,
/// so a reload (or a rejoin) takes the seat back, and another tab or browser cannot.
fn reclaim_storage_key(server: &str, room: &str) -> String {
    format!("callroom.reclaim {server} {room}")
}

/// Joins (or rejoins) and starts the poll loop and the ticker.
/// Joins (or rejoins) the room and starts the session: the join request, then the media
/// plane and the poll loop.
pub(crate) async fn connect(shared: &Rc<Shared>) -> Result<(), Error> {
    let answered = request_join(shared).await?;
    start_session(shared, answered)
}

/// A join's answer, with the epoch it was asked in.
pub(crate) struct Answered {
    joined: JoinResponse,
    epoch: u32,
    /// The first peer connection the session will need, made as soon as the answer says what
    /// to connect to: a first join makes it while the camera is still opening.
    spare: Option<RtcPeerConnection>,
}

impl Answered {
    /// The room's topology, as the server answered it.
    pub(crate) fn topology(&self) -> Topology {
        self.joined.topology
    }
}

/// Sends the join request. Nothing here needs the local media, so a first join sends it
/// while the camera is being opened.
pub(crate) async fn request_join(shared: &Rc<Shared>) -> Result<Answered, Error> {
    let Some((http, request, epoch, storage_key)) = read(shared, |inner| {
        let o = &inner.options;
        let storage_key = reclaim_storage_key(&o.server, &o.room);
        let request = JoinRequest {
            room: o.room.clone(),
            role: o.role,
            name: o.name.clone(),
            ticket: o.ticket.clone(),
            topology: o.topology,
            // A hub host proves it may take the seat back (after a reload, a rejoin).
            reclaim: (o.role == Role::Host)
                .then(|| js::session_get(&storage_key))
                .flatten(),
        };
        (inner.http.clone(), request, inner.epoch, storage_key)
    }) else {
        return Err(Error::Closed);
    };
    let answer = http
        .post("/signaling", None, &wire::join_request(&request), None)
        .await?;
    let joined = wire::join_response(&answer)?;
    if let Some(key) = &joined.reclaim_key {
        js::session_set(&storage_key, key);
    }
    // An SFU room always connects; a mesh or hub room, when someone we link to is here.
    let connects = joined.topology == Topology::Sfu
        || joined
            .peers
            .iter()
            .any(|p| joined.topology.links(joined.role, p.role));
    let spare = read(shared, |inner| ice_servers(&inner.options, &joined))
        .filter(|_| connects)
        .and_then(|servers| peer::connection(&servers).ok());
    Ok(Answered {
        joined,
        epoch,
        spare,
    })
}

/// The ICE servers a session uses: the app's, or else those the join answer brought.
fn ice_servers(options: &JoinOptions, joined: &JoinResponse) -> JsValue {
    match &options.ice_servers {
        Some(servers) => wire::ice_servers_js(servers),
        None => wire::ice_servers_js(&joined.ice_servers),
    }
}

/// Starts the session a join answered: the media plane (with the local media as it is now),
/// the roster, and the poll loop.
pub(crate) fn start_session(shared: &Rc<Shared>, answered: Answered) -> Result<(), Error> {
    let Answered {
        joined,
        epoch,
        spare,
    } = answered;
    let spare = Rc::new(Cell::new(spare));
    let token = joined.token.clone();
    let weak = Rc::downgrade(shared);
    let started = update(shared, |inner| {
        if inner.epoch != epoch || inner.view.state == ConnectionState::Disconnected {
            // Left (or rejoined) while this join was in flight: the session it made is ended
            // below, so nobody sees a ghost until the server's timeout.
            return Err(Error::Closed);
        }
        let ice_servers = ice_servers(&inner.options, &joined);
        let roster = Roster::new(&joined.peer_id, joined.role, joined.topology, joined.peers);
        let setup = PlaneSetup {
            my_id: joined.peer_id.clone(),
            ice_servers,
            recovery: inner.options.recovery,
            max_links: crate::core::guard::max_links(joined.capacity),
            sink: plane_sink(&weak, epoch),
            spare: spare.clone(),
        };
        let plane = Plane::new(
            joined.topology,
            setup,
            inner.local_stream().as_ref(),
            &inner.coming,
            &inner.http,
            &joined.token,
        )?;
        // How the app shows those still here (it may have before a rejoin).
        inner.views.retain(|peer| roster.member(peer).is_some());
        for (peer, shown) in inner.views.iter() {
            plane.set_view(peer, shown);
        }
        if let Err(error) = plane.start(&roster) {
            inner.report(error);
        }
        let o = &inner.options;
        inner.signaling = Some(Signaling {
            token: joined.token,
            poll: PollPolicy::new(
                joined.cursor,
                o.poll_wait_ms,
                o.poll_interval_ms,
                Backoff::new(f64::from(o.retry_base_ms), f64::from(o.retry_max_ms)),
            ),
        });
        inner.view.session = Some(Session {
            peer_id: joined.peer_id,
            roster,
            plane,
        });
        inner.join_backoff.reset();
        if inner.ticker.is_none() {
            let weak = weak.clone();
            inner.ticker = Some(js::interval(1_000, Box::new(move || ticker::tick(&weak))));
        }
        if inner.levels_timer.is_none() {
            let weak = weak.clone();
            inner.levels_timer = Some(js::interval(
                ticker::LEVELS_EVERY_MS,
                Box::new(move || ticker::listen(&weak)),
            ));
        }
        inner.media_reconnecting = false;
        inner.set_state(ConnectionState::Connected);
        Ok(inner.epoch)
    });
    // Nobody took it (nobody to connect to after all, or the start failed).
    if let Some(pc) = spare.take() {
        pc.close();
    }
    match started.unwrap_or(Err(Error::Closed)) {
        Ok(epoch) => {
            spawn(Box::pin(poll_loop(weak, epoch)));
            Ok(())
        }
        Err(error) => {
            // The server admitted us, but no session runs here: end it, so nobody sees a
            // ghost until the server's timeout.
            abandon_token(shared, token);
            Err(error)
        }
    }
}

/// Ends an admitted session nobody will run (its join was cancelled, or its start failed).
pub(crate) fn abandon(shared: &Rc<Shared>, answered: Answered) {
    if let Some(pc) = answered.spare {
        pc.close();
    }
    abandon_token(shared, answered.joined.token);
}

fn abandon_token(shared: &Rc<Shared>, token: String) {
    if let Some(http) = read(shared, |inner| inner.http.clone()) {
        end_session_later(&http, token);
    }
}

/// Where the plane's events go: relays into the outbox, the rest into the room's state. A
/// plane of an older session (rejoined, left) may still finish work; its events are dropped,
/// so it never speaks for the new session.
fn plane_sink(weak: &Weak<Shared>, epoch: u32) -> PlaneSink {
    let weak = weak.clone();
    Rc::new(move |event| {
        let Some(shared) = weak.upgrade() else { return };
        if read(&shared, |inner| inner.epoch) != Some(epoch) {
            return;
        }
        match event {
            PlaneEvent::Send { to, kind, payload } => send(&shared, to, kind, payload),
            PlaneEvent::Track { peer_id, stream } => {
                update(&shared, |inner| {
                    inner.view.touch();
                    inner.events.push(RoomEvent::Track { peer_id, stream });
                });
            }
            PlaneEvent::Changed => {
                update(&shared, |inner| inner.view.touch());
            }
            PlaneEvent::Reconnecting(reconnecting) => {
                update(&shared, |inner| inner.set_media_reconnecting(reconnecting));
            }
            PlaneEvent::Error(error) => {
                update(&shared, |inner| inner.report(error));
            }
        }
    })
}

/// A full rejoin: new session, new connections; local media stays.
pub(crate) fn rejoin(shared: &Rc<Shared>) {
    let rejoin = update(shared, |inner| {
        if inner.view.state == ConnectionState::Disconnected {
            return None;
        }
        inner.stop_activity();
        inner.view.session = None;
        let old = inner
            .signaling
            .take()
            .map(|s| (inner.http.clone(), s.token));
        inner.set_state(ConnectionState::Reconnecting);
        Some((inner.epoch, old))
    })
    .flatten();
    let Some((epoch, old)) = rejoin else { return };
    let weak = Rc::downgrade(shared);
    spawn(Box::pin(async move {
        // End the old session first (when the server still knows it), so the others drop it
        // at once instead of after the server's peer timeout.
        if let Some((http, token)) = old {
            end_session(&http, &token).await;
        }
        rejoin_attempt(weak, epoch).await;
    }));
}

async fn rejoin_attempt(weak: Weak<Shared>, epoch: u32) {
    let Some(shared) = weak.upgrade() else { return };
    if read(&shared, |inner| inner.epoch != epoch) != Some(false) {
        return;
    }
    let result = connect(&shared).await;
    drop(shared);
    if let Err(error) = result {
        with(&weak, |inner| {
            if inner.epoch != epoch {
                return;
            }
            match on_join_error(&error, &mut inner.join_backoff, js::random()) {
                None => {
                    inner.set_state(ConnectionState::Failed);
                    inner.report(error);
                }
                Some(delay) => {
                    let weak = weak.clone();
                    inner.retry_timer = Some(js::timeout(
                        delay,
                        Box::new(move || {
                            spawn(Box::pin(rejoin_attempt(weak, epoch)));
                        }),
                    ));
                }
            }
        });
    }
}

// ------------------------------------------------------------------ polling

async fn poll_loop(weak: Weak<Shared>, epoch: u32) {
    let mut next = start_poll(&weak, epoch);
    loop {
        let Some(pending) = next.take() else { return };
        let result = pending.await.unwrap_or(Err(Error::Closed));
        let Some(shared) = weak.upgrade() else { return };
        let current = |shared: &Shared| read(shared, |inner| inner.epoch == epoch) == Some(true);
        if !current(&shared) {
            return;
        }
        let answer = result.and_then(|json| wire::messages(&json));
        let action = match answer {
            Ok((mut fresh, cursor)) => {
                let action = with(&weak, |inner| {
                    let poll = &mut inner.signaling.as_mut()?.poll;
                    fresh.retain(|message| poll.accept(message.seq));
                    Some(poll.on_answer(cursor))
                })
                .flatten();
                if action.is_none() {
                    fresh.clear();
                }
                // The next poll goes out now, not after these are handled: handling an offer
                // takes the browser tens of ms, and the candidates that follow it are then
                // already here. They are still handled in order, after these.
                if action == Some(PollAction::Poll { after_ms: 0 }) {
                    next = start_poll(&weak, epoch);
                }
                for message in fresh {
                    handle_message(&shared, message).await;
                    if !current(&shared) {
                        return;
                    }
                }
                update(&shared, |inner| {
                    let resumed = inner.signal_state == ConnectionState::Reconnecting;
                    inner.set_state(ConnectionState::Connected);
                    if let Some(plane) = inner.plane().filter(|_| resumed) {
                        plane.on_resumed();
                    }
                });
                action
            }
            Err(error) => update(&shared, |inner| {
                let action = inner
                    .signaling
                    .as_mut()?
                    .poll
                    .on_error(&error, js::random());
                match action {
                    PollAction::Poll { .. } => {
                        if matches!(error, Error::Protocol(_)) {
                            inner.report(error);
                        }
                        inner.set_state(ConnectionState::Reconnecting);
                    }
                    PollAction::Stop => {
                        inner.stop_activity();
                        inner.view.session = None;
                        inner.signaling = None;
                        inner.set_state(ConnectionState::Failed);
                        inner.report(error);
                    }
                    PollAction::Rejoin => {}
                }
                Some(action)
            })
            .flatten(),
        };
        match action {
            Some(PollAction::Poll { after_ms: 0 }) => {
                // After an error the next poll starts here; after an answer it is out already.
                if next.is_none() {
                    next = start_poll(&weak, epoch);
                }
            }
            Some(PollAction::Poll { after_ms }) => {
                update(&shared, |inner| {
                    let weak = weak.clone();
                    inner.retry_timer = Some(js::timeout(
                        after_ms,
                        Box::new(move || {
                            spawn(Box::pin(poll_loop(weak, epoch)));
                        }),
                    ));
                });
                return;
            }
            // Our peer expired (the server timed us out or lost its state): join anew.
            Some(PollAction::Rejoin) => {
                rejoin(&shared);
                return;
            }
            Some(PollAction::Stop) | None => return,
        }
    }
}

/// Sends the next poll (it runs on its own); its answer arrives on the receiver.
fn start_poll(
    weak: &Weak<Shared>,
    epoch: u32,
) -> Option<oneshot::Receiver<Result<JsValue, Error>>> {
    let (http, path, token, signal) = with(weak, |inner| {
        if inner.epoch != epoch {
            return None;
        }
        let signaling = inner.signaling.as_mut()?;
        let path = format!(
            "/messages?since={}&wait={}",
            signaling.poll.cursor(),
            signaling.poll.wait_ms()
        );
        let abort = Deadline::after(signaling.poll.on_sent(js::now_ms())).ok()?;
        let signal = abort.signal();
        let token = signaling.token.clone();
        inner.poll_abort = Some(abort);
        Some((inner.http.clone(), path, token, signal))
    })
    .flatten()?;
    let (answer, answered) = oneshot::channel();
    spawn(Box::pin(async move {
        let _ = answer.send(http.get(&path, Some(&token), Some(&signal)).await);
    }));
    Some(answered)
}

/// The probe `PollPolicy::probe_due` asked for (the ticker checks every second): a fresh
/// request to the server under a held poll. When it gets no answer, the poll is given up, so
/// an outage shows (and its retries start) within seconds instead of after TCP gives up on
/// the held connection.
pub(crate) async fn probe(weak: Weak<Shared>, http: Http, epoch: u32) {
    let alive = match Deadline::after(DEAD_AFTER_MS) {
        Ok(deadline) => !matches!(
            http.get("/livez", None, Some(&deadline.signal())).await,
            Err(Error::Network(_))
        ),
        Err(_) => true,
    };
    with(&weak, |inner| {
        if inner.epoch != epoch {
            return;
        }
        let dead = inner
            .signaling
            .as_mut()
            .is_some_and(|s| s.poll.on_probe(alive));
        if let Some(poll) = inner.poll_abort.as_ref().filter(|_| dead) {
            poll.abort();
        }
    });
}

async fn handle_message(shared: &Rc<Shared>, message: wire::Inbound) {
    let payload = &message.payload;
    let Some(kind) = MessageKind::parse(&message.kind) else {
        // A newer server or client may send types this version does not know.
        return;
    };
    let signal = match kind {
        MessageKind::PeerJoined => {
            wire::peer_info(payload).map(|p| apply(shared, Event::Joined(p)))
        }
        MessageKind::PeerLeft => wire::peer_left(payload).map(|l| apply(shared, Event::Left(l))),
        MessageKind::HostReset => {
            wire::host_reset(payload).map(|r| apply(shared, Event::HostReset(r)))
        }
        MessageKind::Offer | MessageKind::Answer => wire::session_description(payload)
            .map(|d| Some(Signal::Description(d, wire::reset_number(payload, "reset")))),
        MessageKind::Candidate => wire::ice_candidate(payload)
            .map(|c| Some(Signal::Candidate(c, wire::reset_number(payload, "reset")))),
        MessageKind::PeerReset => Ok(Some(Signal::Reset(
            wire::reset_number(payload, "n").unwrap_or(0),
        ))),
        MessageKind::SfuTracks => wire::sfu_tracks(payload).map(|tracks| {
            if let Some(plane) = read(shared, |inner| inner.plane()).flatten() {
                plane.on_tracks(tracks);
            }
            None
        }),
    };
    let result = match (signal, message.from) {
        (Ok(Some(signal)), Some(from)) => {
            let target = read(shared, |inner| {
                let session = inner.view.session.as_ref()?;
                let linked = session
                    .roster
                    .member(&from)
                    .is_some_and(|m| session.roster.links_to(m.role));
                Some((session.plane.clone(), linked))
            })
            .flatten();
            match target {
                Some((plane, linked)) => plane.on_signal(&from, linked, signal).await,
                None => Ok(()),
            }
        }
        (Ok(_), _) => Ok(()),
        (Err(error), _) => Err(error),
    };
    if let Err(error) = result {
        update(shared, |inner| inner.report(error));
    }
}

/// A room event from the server, for the roster.
enum Event {
    Joined(PeerInfo),
    Left(PeerLeft),
    HostReset(HostReset),
}

/// Applies a room event to the roster; room events carry no signal for the plane.
fn apply(shared: &Rc<Shared>, event: Event) -> Option<Signal> {
    update(shared, |inner| {
        let Some(session) = inner.view.session.as_mut() else {
            return;
        };
        let roster = &mut session.roster;
        let changes = match event {
            Event::Joined(peer) => roster.joined(peer),
            Event::Left(left) => roster.left(left),
            Event::HostReset(reset) => roster.host_reset(reset),
        };
        let plane = session.plane.clone();
        for change in changes {
            if let Err(error) = plane.on_roster(&change) {
                inner.report(error);
            }
            inner.events.push(match change {
                Change::Joined { peer, .. } => RoomEvent::ParticipantJoined(peer),
                Change::Left { peer_id, reason } => {
                    inner.views.remove(&peer_id);
                    RoomEvent::ParticipantLeft { peer_id, reason }
                }
            });
        }
    });
    None
}

// ------------------------------------------------------------------ outbox

/// Queues a relay; the outbox sends one at a time, in order, retrying outages. A
/// `peer-reset` supersedes whatever is still queued for that peer: it belongs to the
/// connection being replaced. (The head may be on the wire already and stays; the peer's
/// answer to it is recognised as stale by its reset number.)
pub(crate) fn send(shared: &Rc<Shared>, to: String, kind: MessageKind, payload: JsValue) {
    let start = update(shared, |inner| {
        if kind == MessageKind::PeerReset {
            // The head stays when a drainer has it (it may be on the wire).
            let mut keep_head = inner.sending == Some(inner.epoch);
            inner
                .outbox
                .retain(|r| std::mem::take(&mut keep_head) || r.to != to);
        }
        inner.outbox.push(Relay { to, kind, payload });
        let epoch = inner.epoch;
        (inner.sending.replace(epoch) != Some(epoch)).then_some(epoch)
    })
    .flatten();
    if let Some(epoch) = start {
        spawn(Box::pin(drain_outbox(Rc::downgrade(shared), epoch)));
    }
}

async fn drain_outbox(weak: Weak<Shared>, epoch: u32) {
    let Some(mut failures) = with(&weak, |inner| {
        let o = &inner.options;
        Backoff::new(f64::from(o.retry_base_ms), f64::from(o.retry_max_ms))
    }) else {
        return;
    };
    loop {
        let Some(next) = with(&weak, |inner| {
            let front = (inner.epoch == epoch)
                .then(|| inner.outbox.first())
                .flatten()
                .map(|r| wire::relay(r.kind.as_str(), &r.to, &r.payload));
            let token = inner.signaling.as_ref().map(|s| s.token.clone());
            match (front, token) {
                (Some(body), Some(token)) => Some((inner.http.clone(), token, body)),
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
        let (http, token, body) = next;
        // Under `Http`'s own deadline: a relay held on a dead connection is sent again.
        let result = http.post("/signaling", Some(&token), &body, None).await;
        let action = result.as_ref().err().map(on_relay_error);
        if action == Some(RelayAction::Retry) {
            let delay = failures.next_delay_ms(js::random());
            gloo_timers::future::TimeoutFuture::new(delay).await;
            continue;
        }
        failures.reset();
        with(&weak, |inner| {
            if inner.epoch != epoch || inner.outbox.is_empty() {
                return;
            }
            // A handful of relays at most: a `Vec` costs less code than a `VecDeque`.
            let sent = inner.outbox.remove(0);
            match (action, result) {
                (Some(RelayAction::DropRecipient), Err(error)) => {
                    inner.outbox.retain(|r| r.to != sent.to);
                    inner.report(error);
                }
                (Some(RelayAction::Report), Err(error)) => inner.report(error),
                _ => {}
            }
        });
    }
}

// ------------------------------------------------------------------ leaving

/// Tells the server a session is over. Best effort: if the server is unreachable, it times
/// the session out instead.
pub(crate) async fn end_session(http: &Http, token: &str) {
    let _ = http
        .post("/signaling", Some(token), &wire::leave(), None)
        .await;
}

/// [`end_session`] in the background.
pub(crate) fn end_session_later(http: &Http, token: String) {
    let http = http.clone();
    spawn(Box::pin(async move { end_session(&http, &token).await }));
}

/// Leaves: everything stops at once, then the server is told.
pub(crate) async fn leave(shared: &Rc<Shared>) {
    let session = update(shared, |inner| {
        inner.stop_activity();
        inner.ticker = None;
        inner.levels_timer = None;
        inner.meter = None;
        inner.speakers = Default::default();
        inner.device_listener = None;
        inner.view.session = None;
        inner.view.screen = None;
        inner.view.local = None;
        inner.view.mic_enabled = false;
        inner.view.camera_enabled = false;
        inner.view.recording = None;
        inner.set_state(ConnectionState::Disconnected);
        inner
            .signaling
            .take()
            .map(|s| (inner.http.clone(), s.token))
    })
    .flatten();
    shared.notify.close();
    if let Some((http, token)) = session {
        end_session(&http, &token).await;
    }
}

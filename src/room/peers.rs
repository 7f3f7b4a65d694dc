//! The `Peers` media plane: one peer connection ([`Link`]) per remote participant our
//! topology links us to. Mesh and hub rooms differ only in which pairs link
//! ([`Topology::links`](callroom_protocol::Topology::links), applied by the roster).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use callroom_protocol::{MessageKind, Role};
use web_sys::{MediaStream, MediaStreamTrack};

use super::plane::{PlaneEvent, PlaneSetup, Signal};
use super::RemoteStream;
use crate::core::guard::{ResetAction, ResetThrottle};
use crate::core::quality::QualityReport;
use crate::core::roster::{Change, Roster};
use crate::js_error::browser_error;
use crate::web::js;
use crate::web::peer::{Link, LinkEvent, LinkSetup, Opening, Sink};
use crate::web::wire;
use crate::Error;

/// The state the links' event handlers reach through a `Weak`: when the plane is dropped
/// (leave, rejoin), late events from its links find nothing and are ignored.
struct State {
    setup: PlaneSetup,
    /// One link per remote peer. A handful at most, so a `Vec` beats a map (and costs less
    /// code in the bundle).
    links: RefCell<Vec<Rc<Link>>>,
    /// Each link gets a new number, so events from a replaced link are recognised as stale.
    next_generation: Cell<u32>,
    /// What we publish, for links opened later.
    local: RefCell<Option<MediaStream>>,
    /// Kinds of track on their way while we publish nothing yet (the camera still opens):
    /// links opened meanwhile make senders for them (`LinkSetup::coming`).
    coming: RefCell<Vec<&'static str>>,
    /// Each remote participant's stream, across rebuilt links.
    streams: RefCell<Vec<(String, MediaStream)>>,
    /// `peer-reset`s per linked participant.
    resets: RefCell<Vec<(String, ResetThrottle)>>,
}

/// One connection per linked pair.
pub(crate) struct Peers {
    state: Rc<State>,
}

impl Peers {
    pub(crate) fn new(
        setup: PlaneSetup,
        local: Option<&MediaStream>,
        coming: &[&'static str],
    ) -> Self {
        Self {
            state: Rc::new(State {
                setup,
                links: RefCell::new(Vec::new()),
                next_generation: Cell::new(0),
                local: RefCell::new(local.cloned()),
                coming: RefCell::new(coming.to_vec()),
                streams: RefCell::new(Vec::new()),
                resets: RefCell::new(Vec::new()),
            }),
        }
    }

    fn links(&self) -> Vec<Rc<Link>> {
        self.state.links.borrow().clone()
    }

    fn link(&self, peer: &str) -> Option<Rc<Link>> {
        find(&self.state, peer)
    }

    pub(crate) fn start(&self, roster: &Roster) -> Result<(), Error> {
        for member in roster.links() {
            // We are the newcomer: we offer to everyone already here.
            open(&self.state, &member.peer_id, Opening::Offer)?;
        }
        Ok(())
    }

    pub(crate) fn on_roster(&self, change: &Change) -> Result<(), Error> {
        match change {
            Change::Joined { peer, link: true } => {
                open(&self.state, &peer.peer_id, Opening::Answer)?
            }
            Change::Joined { .. } => {}
            Change::Left { peer_id, .. } => {
                self.state
                    .links
                    .borrow_mut()
                    .retain(|l| l.peer_id() != peer_id);
                self.state
                    .streams
                    .borrow_mut()
                    .retain(|(p, _)| p != peer_id);
                self.state.resets.borrow_mut().retain(|(p, _)| p != peer_id);
            }
        }
        Ok(())
    }

    /// What we publish, for links opened from now on (the open ones are told by
    /// `publish` / `send_track`).
    pub(crate) fn set_local(&self, stream: Option<&MediaStream>) {
        *self.state.local.borrow_mut() = stream.cloned();
        self.state.coming.borrow_mut().clear();
    }

    pub(crate) async fn on_signal(
        &self,
        from: &str,
        linked: bool,
        signal: Signal,
    ) -> Result<(), Error> {
        if let Signal::Description(_, stamp) | Signal::Candidate(_, stamp) = &signal {
            let resets = self.state.resets.borrow();
            if resets.iter().any(|(p, r)| p == from && r.is_stale(*stamp)) {
                // For a connection we replaced: it would break the new one.
                return Ok(());
            }
        }
        // The link to `from`, opened on demand if our topology links us.
        let link = match self.link(from) {
            Some(link) => Some(link),
            None if linked && !matches!(signal, Signal::Reset(_)) => {
                open(&self.state, from, Opening::Answer)?;
                self.link(from)
            }
            None => None,
        };
        let Some(link) = link else { return Ok(()) };
        match signal {
            Signal::Description(desc, _) => link.on_description(desc).await,
            Signal::Candidate(candidate, _) => link.on_candidate(candidate).await,
            Signal::Reset(n) => {
                let action = with_resets(&self.state, from, |r| {
                    r.on_seen(n);
                    r.on_reset(js::now_ms())
                });
                match action {
                    ResetAction::Rebuild => open(&self.state, from, Opening::Answer),
                    // A peer resetting without end must not make us churn connections (the
                    // browser caps how many a page may create).
                    ResetAction::Wait | ResetAction::Ignore => Ok(()),
                }
            }
        }
    }

    pub(crate) fn publish(&self, stream: &MediaStream) {
        *self.state.local.borrow_mut() = Some(Clone::clone(stream));
        self.state.coming.borrow_mut().clear();
        for link in self.links() {
            // Senders made for these tracks while the camera opened take them as they are.
            if !link.fill(stream) {
                link.unpublish();
                link.publish(stream);
            }
        }
    }

    pub(crate) fn unpublish(&self) {
        *self.state.local.borrow_mut() = None;
        self.state.coming.borrow_mut().clear();
        for link in self.links() {
            link.unpublish();
        }
    }

    pub(crate) async fn send_track(
        &self,
        kind: &str,
        track: Option<&MediaStreamTrack>,
        stream: &MediaStream,
    ) -> Vec<Error> {
        let mut errors = Vec::new();
        for link in self.links() {
            match link.replace_track(kind, track).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(track) = track {
                        link.add_track(track, stream);
                    }
                }
                Err(error) => errors.push(error),
            }
        }
        errors
    }

    pub(crate) fn tick(&self, now: f64) {
        for link in self.links() {
            link.tick(now);
        }
    }

    pub(crate) fn on_signaling_resumed(&self, now: f64) {
        for link in self.links() {
            link.on_signaling_resumed(now);
        }
    }

    pub(crate) async fn measure(&self) -> Vec<(String, QualityReport)> {
        let mut reports = Vec::new();
        for link in self.links() {
            if let Some(report) = link.clone().measure().await {
                reports.push((link.peer_id().to_owned(), report));
            }
        }
        reports
    }

    pub(crate) fn remote_streams(&self, roster: &Roster) -> Vec<RemoteStream> {
        self.state
            .links
            .borrow()
            .iter()
            .map(|link| {
                let member = roster.member(link.peer_id());
                RemoteStream {
                    peer_id: link.peer_id().to_owned(),
                    name: member.map(|m| m.name.clone()).unwrap_or_default(),
                    role: member.map_or(Role::Peer, |m| m.role),
                    stream: link.remote_stream(),
                    connection_state: link.connection_state(),
                    screen: None,
                    quality: link.quality(),
                    frames_decoded: link.frames_decoded(),
                    video_layer: None,
                    audio_level: 0.0,
                    speaking: false,
                }
            })
            .collect()
    }
}

fn find(state: &State, peer: &str) -> Option<Rc<Link>> {
    state
        .links
        .borrow()
        .iter()
        .find(|l| l.peer_id() == peer)
        .cloned()
}

/// The stream `peer`'s media arrives in: one per participant, kept across rebuilt links so
/// an app's `srcObject` stays valid.
fn stream_for(state: &State, peer: &str) -> Result<MediaStream, Error> {
    let mut streams = state.streams.borrow_mut();
    if let Some((_, stream)) = streams.iter().find(|(p, _)| p == peer) {
        return Ok(Clone::clone(stream));
    }
    let stream = MediaStream::new().map_err(|e| browser_error("creating a media stream", &e))?;
    streams.push((peer.to_owned(), Clone::clone(&stream)));
    Ok(stream)
}

/// Opens (or replaces, and so closes) the link to `peer`.
fn open(state: &Rc<State>, peer: &str, opening: Opening) -> Result<(), Error> {
    {
        let links = state.links.borrow();
        let max = state.setup.max_links;
        if links.len() >= max && links.iter().all(|l| l.peer_id() != peer) {
            // More than the room holds: a server or roster gone wrong must not make the page
            // exhaust the browser's peer connections.
            return Err(Error::Protocol(format!(
                "not connecting to {peer}: already {max} connections, as many as the room holds"
            )));
        }
    }
    let generation = state.next_generation.get().wrapping_add(1);
    state.next_generation.set(generation);
    let weak = Rc::downgrade(state);
    let sink: Sink = Rc::new(move |peer: &str, generation: u32, event: LinkEvent| {
        on_link_event(&weak, peer, generation, event);
    });
    let local = state.local.borrow().clone();
    let coming = state.coming.borrow().clone();
    let setup = LinkSetup {
        remote_stream: stream_for(state, peer)?,
        my_id: &state.setup.my_id,
        peer_id: peer,
        generation,
        pc: state.setup.connection()?,
        recovery: state.setup.recovery,
        local: local.as_ref(),
        coming: &coming,
        opening,
    };
    let link = Link::open(setup, sink)?;
    let old = {
        let mut links = state.links.borrow_mut();
        let old = links
            .iter()
            .position(|l| l.peer_id() == peer)
            .map(|i| links.remove(i));
        links.push(link);
        old
    };
    // Closed outside the borrow: closing fires no events we handle, but a `Drop` that did
    // would find the list free.
    drop(old);
    (state.setup.sink)(PlaneEvent::Changed);
    Ok(())
}

/// The reset bookkeeping for `peer` (made on first use; dropped when they leave).
fn with_resets<T>(state: &State, peer: &str, f: impl FnOnce(&mut ResetThrottle) -> T) -> T {
    let mut resets = state.resets.borrow_mut();
    let index = match resets.iter().position(|(p, _)| p == peer) {
        Some(index) => index,
        None => {
            resets.push((peer.to_owned(), ResetThrottle::new(js::now_ms())));
            resets.len() - 1
        }
    };
    f(&mut resets[index].1)
}

fn on_link_event(weak: &Weak<State>, peer: &str, generation: u32, event: LinkEvent) {
    let Some(state) = weak.upgrade() else { return };
    if find(&state, peer).is_none_or(|l| l.generation() != generation) {
        return;
    }
    let sink = &state.setup.sink;
    match event {
        LinkEvent::Send(kind, payload) => {
            // Tells them which of their connections this answers (see `ResetThrottle`).
            wire::stamp(&payload, with_resets(&state, peer, |r| r.stamp()));
            sink(PlaneEvent::Send {
                to: peer.to_owned(),
                kind,
                payload,
            });
        }
        LinkEvent::Track(stream) => sink(PlaneEvent::Track {
            peer_id: peer.to_owned(),
            stream,
        }),
        LinkEvent::StateChanged => sink(PlaneEvent::Changed),
        LinkEvent::Rebuild => {
            // The reset goes out first (the outbox keeps order), then the new link's offer.
            sink(PlaneEvent::Send {
                to: peer.to_owned(),
                kind: MessageKind::PeerReset,
                payload: wire::peer_reset(with_resets(&state, peer, |r| r.on_sent())),
            });
            if let Err(error) = open(&state, peer, Opening::Offer) {
                sink(PlaneEvent::Error(error));
            }
        }
        LinkEvent::Error(error) => sink(PlaneEvent::Error(error)),
    }
}

#[cfg(test)]
mod tests {
    //! Runs in the browser (`wasm-pack test`).
    use super::*;
    use callroom_protocol::PeerInfo;
    use wasm_bindgen_test::*;

    wasm_bindgen_test_configure!(run_in_browser);

    #[wasm_bindgen_test]
    fn past_the_rooms_size_no_further_peer_connection_is_opened() {
        let peers = Peers::new(
            PlaneSetup {
                my_id: "pa".into(),
                ice_servers: js_sys::Array::new().into(),
                recovery: crate::core::recovery::RecoveryOptions::default(),
                max_links: 2,
                sink: Rc::new(|_| {}),
                spare: Rc::default(),
            },
            None,
            &[],
        );
        let joined = |id: &str| Change::Joined {
            peer: PeerInfo {
                peer_id: id.into(),
                role: Role::Peer,
                name: String::new(),
            },
            link: true,
        };
        assert!(peers.on_roster(&joined("pb")).is_ok());
        assert!(peers.on_roster(&joined("pc")).is_ok());
        let refused = peers.on_roster(&joined("pd")).unwrap_err();
        assert!(refused.to_string().contains("2 connections"), "{refused}");
        assert_eq!(peers.links().len(), 2);
        // Rebuilding a link that exists is no new connection.
        assert!(open(&peers.state, "pb", Opening::Offer).is_ok());
        assert_eq!(peers.links().len(), 2);
    }
}

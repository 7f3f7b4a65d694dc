//! The media plane: everything between the room and its remote media. The room tells the
//! plane who is here, what we publish and what arrived for it; the plane owns the
//! connections and reports back through a [`PlaneSink`]. Nothing outside the plane walks
//! connections.
//!
//! `mesh` and `hub` rooms use [`Peers`] (one connection per linked pair; only which pairs
//! link differs); `sfu` rooms use [`Sfu`], one connection to the room's SFU.

use std::cell::Cell;
use std::rc::Rc;

use callroom_protocol::{IceCandidate, MessageKind, SessionDescription, SfuTracks, Topology};
use wasm_bindgen::JsValue;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnection};

use super::peers::Peers;
use super::sfu::Sfu;
use super::RemoteStream;
use crate::core::quality::QualityReport;
use crate::core::recovery::RecoveryOptions;
use crate::core::roster::{Change, Roster};
use crate::web::http::Http;
use crate::web::js;
use crate::web::peer;
use crate::Error;

/// What a plane tells its room.
pub(crate) enum PlaneEvent {
    /// Relay this message to a peer, in order with every other relay.
    Send {
        /// Recipient.
        to: String,
        /// Message type.
        kind: MessageKind,
        /// Its payload.
        payload: JsValue,
    },
    /// A participant's stream gained a track.
    Track {
        /// Whose.
        peer_id: String,
        /// Their stream (the same object for the whole call).
        stream: MediaStream,
    },
    /// Something the snapshot shows changed (a connection state, a track removed).
    Changed,
    /// The plane's one connection was lost and is being made anew (`true`), or is back: the
    /// room shows `reconnecting` meanwhile.
    Reconnecting(bool),
    /// Something failed; the plane carries on.
    Error(Error),
}

/// Where plane events go. Called while no room state is borrowed.
pub(crate) type PlaneSink = Rc<dyn Fn(PlaneEvent)>;

/// What a plane needs from the session that made it.
pub(crate) struct PlaneSetup {
    /// Our peer id.
    pub(crate) my_id: String,
    /// ICE servers, as `RTCConfiguration.iceServers`.
    pub(crate) ice_servers: JsValue,
    /// ICE recovery timings.
    pub(crate) recovery: RecoveryOptions,
    /// Most peer connections to hold open ([`crate::core::guard::max_links`]).
    pub(crate) max_links: usize,
    /// Where events go.
    pub(crate) sink: PlaneSink,
    /// A peer connection made as the join was answered (on a first join, while the camera
    /// opens), for the first one the plane needs.
    pub(crate) spare: Rc<Cell<Option<RtcPeerConnection>>>,
}

impl PlaneSetup {
    /// A new peer connection: the spare while it is unused, else a fresh one.
    pub(crate) fn connection(&self) -> Result<RtcPeerConnection, Error> {
        match self.spare.take() {
            Some(pc) => Ok(pc),
            None => peer::connection(&self.ice_servers),
        }
    }
}

/// A signaling message for the plane, from another peer.
pub(crate) enum Signal {
    /// An SDP offer or answer, and the number of the newest of our resets the sender had
    /// seen (`None` from an older client).
    Description(SessionDescription, Option<u32>),
    /// A trickled ICE candidate, stamped the same way.
    Candidate(IceCandidate, Option<u32>),
    /// The sender rebuilt its connection to us; its reset number.
    Reset(u32),
}

/// The media plane of one session. Shared (`Rc`) so async work runs on it after the room
/// state is released; dropping the last handle closes every connection.
pub(crate) enum Plane {
    /// One connection per linked pair (mesh and hub).
    Peers(Peers),
    /// One connection to the room's SFU.
    Sfu(Sfu),
}

impl Plane {
    /// The plane for a room of `topology`, publishing `local` from the start. `http` and
    /// `token` reach the server's Calls proxy.
    pub(crate) fn new(
        topology: Topology,
        setup: PlaneSetup,
        local: Option<&MediaStream>,
        coming: &[&'static str],
        http: &Http,
        token: &str,
    ) -> Result<Rc<Self>, Error> {
        Ok(Rc::new(match topology {
            Topology::Sfu => Plane::Sfu(Sfu::new(setup, http.clone(), token.to_owned(), local)?),
            Topology::Mesh | Topology::Hub => Plane::Peers(Peers::new(setup, local, coming)),
        }))
    }

    /// We just joined: connect to whoever the topology links us to.
    pub(crate) fn start(&self, roster: &Roster) -> Result<(), Error> {
        match self {
            Plane::Peers(peers) => peers.start(roster),
            Plane::Sfu(sfu) => {
                sfu.start();
                Ok(())
            }
        }
    }

    /// The room's membership changed.
    pub(crate) fn on_roster(&self, change: &Change) -> Result<(), Error> {
        match self {
            Plane::Peers(peers) => peers.on_roster(change),
            Plane::Sfu(sfu) => {
                sfu.on_roster(change);
                Ok(())
            }
        }
    }

    /// How the app shows `peer`: in an SFU room, the layer pulled of its camera follows (a
    /// mesh link sends one layer; nothing to choose).
    pub(crate) fn set_view(&self, peer: &str, shown: crate::core::layers::Shown) {
        if let Plane::Sfu(sfu) = self {
            sfu.set_view(peer, shown);
        }
    }

    /// What we publish, for connections made from now on.
    pub(crate) fn set_local(&self, stream: Option<&MediaStream>) {
        match self {
            Plane::Peers(peers) => peers.set_local(stream),
            Plane::Sfu(sfu) => sfu.set_local(stream),
        }
    }

    /// A peer of an SFU room changed what it publishes.
    pub(crate) fn on_tracks(&self, tracks: SfuTracks) {
        if let Plane::Sfu(sfu) = self {
            sfu.on_tracks(tracks);
        }
    }

    /// A signaling message from `from`; `linked` says whether our topology links us to it.
    pub(crate) async fn on_signal(
        &self,
        from: &str,
        linked: bool,
        signal: Signal,
    ) -> Result<(), Error> {
        match self {
            Plane::Peers(peers) => peers.on_signal(from, linked, signal).await,
            // Peers of an SFU room never message each other.
            Plane::Sfu(_) => Ok(()),
        }
    }

    /// Starts sending `stream` (replacing what was published).
    pub(crate) fn publish(&self, stream: &MediaStream) {
        match self {
            Plane::Peers(peers) => peers.publish(stream),
            Plane::Sfu(sfu) => sfu.publish(stream),
        }
    }

    /// Stops sending.
    pub(crate) fn unpublish(&self) {
        match self {
            Plane::Peers(peers) => peers.unpublish(),
            Plane::Sfu(sfu) => sfu.unpublish(),
        }
    }

    /// Sends `track` (or nothing) as the outgoing track of `kind`, without renegotiation
    /// where a sender of that kind exists. `stream` is the local stream it belongs to.
    pub(crate) async fn send_track(
        &self,
        kind: &str,
        track: Option<&MediaStreamTrack>,
        stream: &MediaStream,
    ) -> Vec<Error> {
        match self {
            Plane::Peers(peers) => peers.send_track(kind, track, stream).await,
            Plane::Sfu(sfu) => sfu.send_track(kind, track, stream).await,
        }
    }

    /// Shares `track`: in place of the camera on peer links, as a track of its own through an
    /// SFU.
    pub(crate) async fn share_screen(
        &self,
        track: &MediaStreamTrack,
        stream: &MediaStream,
    ) -> Vec<Error> {
        match self {
            Plane::Peers(peers) => peers.send_track("video", Some(track), stream).await,
            Plane::Sfu(sfu) => {
                sfu.share_screen(track);
                Vec::new()
            }
        }
    }

    /// Stops sharing: peer links send `camera` (or nothing) again; the SFU push ends.
    pub(crate) async fn stop_screen(
        &self,
        camera: Option<&MediaStreamTrack>,
        stream: &MediaStream,
    ) -> Vec<Error> {
        match self {
            Plane::Peers(peers) => peers.send_track("video", camera, stream).await,
            Plane::Sfu(sfu) => {
                sfu.stop_screen();
                Vec::new()
            }
        }
    }

    /// True when a shared screen takes the camera's place (so camera changes wait).
    pub(crate) fn screen_replaces_camera(&self) -> bool {
        matches!(self, Plane::Peers(_))
    }

    /// Signaling is back after an outage.
    pub(crate) fn on_resumed(&self) {
        match self {
            Plane::Peers(peers) => peers.on_signaling_resumed(js::now_ms()),
            Plane::Sfu(sfu) => sfu.on_resumed(),
        }
    }

    /// Time passed: drives recovery.
    pub(crate) fn tick(&self, now: f64) {
        match self {
            Plane::Peers(peers) => peers.tick(now),
            Plane::Sfu(sfu) => sfu.tick(now),
        }
    }

    /// Reads stats and scores quality, per remote participant; adapts what we send.
    pub(crate) async fn measure(&self) -> Vec<(String, QualityReport)> {
        match self {
            Plane::Peers(peers) => peers.measure().await,
            Plane::Sfu(sfu) => sfu.measure().await,
        }
    }

    /// One entry per remote participant whose media we receive or expect.
    pub(crate) fn remote_streams(&self, roster: &Roster) -> Vec<RemoteStream> {
        match self {
            Plane::Peers(peers) => peers.remote_streams(roster),
            Plane::Sfu(sfu) => sfu.remote_streams(roster),
        }
    }
}

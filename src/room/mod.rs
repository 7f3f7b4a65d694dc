//! A call: join a room and its state (who is here, their streams, how each connection is
//! doing) updates by itself, survives network trouble, and is cleaned up completely on leave.

mod options;
pub use options::JoinOptions;

#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod notify;
#[cfg(target_arch = "wasm32")]
pub use notify::{Events, Subscription};
#[cfg(target_arch = "wasm32")]
pub use web_room::*;

#[cfg(target_arch = "wasm32")]
mod web_room {
    use std::cell::RefCell;
    use std::rc::Rc;

    use callroom_protocol::{LeaveReason, PeerInfo, Role, Topology};
    use web_sys::MediaStream;

    use super::engine::{self, update, Inner};
    use super::notify::{Events, Notifier, Subscription};
    use super::JoinOptions;
    use crate::core::quality::QualityReport;
    use crate::core::roster::ConnectionState;
    use crate::media::{self, Device, LocalMedia, MediaRequest, TrackRequest};
    use crate::Error;

    pub(crate) struct Shared {
        pub(crate) inner: RefCell<Inner>,
        pub(crate) notify: Notifier,
    }

    /// Something that happened in the room, for apps that prefer events to snapshots.
    #[derive(Debug, Clone)]
    pub enum RoomEvent {
        /// Someone joined.
        ParticipantJoined(PeerInfo),
        /// Someone left (or timed out, or was replaced as host).
        ParticipantLeft {
            /// Who.
            peer_id: String,
            /// Why.
            reason: LeaveReason,
        },
        /// A participant's stream arrived or gained a track.
        Track {
            /// Whose.
            peer_id: String,
            /// The stream.
            stream: MediaStream,
        },
        /// Something failed; the room carries on where it can.
        Error(Error),
        /// A new quality measurement for a link.
        Quality {
            /// Which link.
            peer_id: String,
            /// The measurement.
            report: QualityReport,
        },
        /// The room's connection state changed.
        State(ConnectionState),
    }

    /// One remote participant we are linked to, and their media.
    #[derive(Debug, Clone)]
    pub struct RemoteStream {
        /// Their peer id.
        pub peer_id: String,
        /// Their display name.
        pub name: String,
        /// Their role.
        pub role: Role,
        /// Their media, once it arrived.
        pub stream: Option<MediaStream>,
        /// `RTCPeerConnection.connectionState` of the link.
        pub connection_state: String,
        /// The last quality measurement.
        pub quality: Option<QualityReport>,
        /// Video frames decoded from them so far (as of the last measurement).
        pub frames_decoded: f64,
    }

    /// The whole room state at one moment. `version` changes whenever anything changes.
    #[derive(Debug, Clone)]
    pub struct Snapshot {
        /// Bumped on every change.
        pub version: u64,
        /// The room's connection to the service.
        pub connection_state: ConnectionState,
        /// Our peer id while joined.
        pub session_id: Option<String>,
        /// Room id.
        pub room: String,
        /// Our role.
        pub role: Role,
        /// The room's topology, once joined.
        pub topology: Option<Topology>,
        /// What we publish.
        pub local_stream: Option<MediaStream>,
        /// Everyone we are linked to.
        pub remote_streams: Vec<RemoteStream>,
        /// Everyone else in the room.
        pub participants: Vec<PeerInfo>,
        /// Microphone on.
        pub mic_enabled: bool,
        /// Camera on.
        pub camera_enabled: bool,
        /// Sharing a screen.
        pub screen_sharing: bool,
        /// Known devices.
        pub devices: Vec<Device>,
        /// The last error, if any.
        pub error: Option<Error>,
    }

    /// A joined room. Dropping it leaves (best effort); `leave().await` leaves and waits.
    pub struct Room {
        shared: Rc<Shared>,
    }

    impl std::fmt::Debug for Room {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Room")
                .field("version", &self.shared.notify.version())
                .finish()
        }
    }

    impl Room {
        /// Captures media (if `options.media` asks for it), joins, and connects to the room.
        ///
        /// A denied camera does not fail the join: the room joins without publishing and its
        /// snapshot carries the error (`permission_denied`, ...), so the user can still watch.
        /// A refused or failed join request does fail it.
        pub async fn join(options: JoinOptions) -> Result<Room, Error> {
            options.validate()?;
            let media = options.media.clone();
            let shared = Rc::new(Shared {
                inner: RefCell::new(Inner::new(options)),
                notify: Notifier::default(),
            });
            if let Some(request) = media.filter(|r| !r.is_empty()) {
                match LocalMedia::open(&request).await {
                    Ok(local) => engine::publish_media(&shared, local),
                    Err(error) => {
                        update(&shared, |inner| {
                            inner.error = Some(error);
                            inner.changed = true;
                        });
                    }
                }
            }
            let room = Room { shared };
            if let Err(error) = engine::connect(&room.shared).await {
                update(&room.shared, |inner| {
                    inner.state = ConnectionState::Failed;
                    inner.error = Some(error.clone());
                });
                return Err(error);
            }
            room.watch_devices();
            Ok(room)
        }

        fn watch_devices(&self) {
            let Ok(devices) = media::browser_media_devices() else {
                return;
            };
            let weak = Rc::downgrade(&self.shared);
            update(&self.shared, |inner| {
                inner.push_listener(gloo_events::EventListener::new(
                    &devices,
                    "devicechange",
                    move |_| {
                        let weak = weak.clone();
                        wasm_bindgen_futures::spawn_local(async move {
                            if let Ok(list) = media::devices().await {
                                if let Some(shared) = weak.upgrade() {
                                    update(&shared, |inner| {
                                        inner.devices = list;
                                        inner.changed = true;
                                    });
                                }
                            }
                        });
                    },
                ));
            });
        }

        /// The current state. Cheap; build UI from it.
        pub fn snapshot(&self) -> Snapshot {
            let inner = self.shared.inner.borrow();
            let session = inner.session.as_ref();
            let remote_streams = inner
                .links
                .values()
                .map(|link| {
                    let member = session.and_then(|s| s.roster.member(link.peer_id()));
                    RemoteStream {
                        peer_id: link.peer_id().to_owned(),
                        name: member.map(|m| m.name.clone()).unwrap_or_default(),
                        role: member.map_or(Role::Peer, |m| m.role),
                        stream: link.remote_stream(),
                        connection_state: link.connection_state(),
                        quality: link.quality(),
                        frames_decoded: link.frames_decoded(),
                    }
                })
                .collect();
            Snapshot {
                version: self.shared.notify.version(),
                connection_state: inner.state,
                session_id: session.map(|s| s.peer_id.clone()),
                room: inner.options.room.clone(),
                role: inner.options.role,
                topology: session.map(|s| s.roster.topology()),
                local_stream: inner.local.as_ref().map(|m| Clone::clone(m.stream())),
                remote_streams,
                participants: session
                    .map(|s| s.roster.members().to_vec())
                    .unwrap_or_default(),
                mic_enabled: inner.mic_enabled,
                camera_enabled: inner.camera_enabled,
                screen_sharing: inner.screen.is_some(),
                devices: inner.devices.clone(),
                error: inner.error.clone(),
            }
        }

        /// The snapshot version; changes whenever [`Room::snapshot`] would differ.
        pub fn version(&self) -> u64 {
            self.shared.notify.version()
        }

        /// Calls `callback` after every change, until the subscription is dropped.
        pub fn on_change(&self, callback: impl Fn() + 'static) -> Subscription {
            let id = self.shared.notify.add_callback(Rc::new(callback));
            Subscription {
                notifier: Rc::downgrade(&self.shared),
                id,
            }
        }

        /// A stream of everything that happens from now on; it ends on leave.
        pub fn events(&self) -> Events {
            self.shared.notify.stream()
        }

        /// After an await: if the room was left meanwhile, release what was just captured.
        fn still_joined(&self, captured: &web_sys::MediaStreamTrack) -> Result<(), Error> {
            if self.shared.inner.borrow().state == ConnectionState::Disconnected {
                captured.stop();
                return Err(Error::Closed);
            }
            Ok(())
        }

        fn ensure_joined(&self) -> Result<(), Error> {
            match self.shared.inner.borrow().state {
                ConnectionState::Disconnected => Err(Error::Closed),
                _ => Ok(()),
            }
        }

        /// Publishes `stream`, or captures with the join options' media request (camera and
        /// microphone by default). Replaces what was published before.
        pub async fn publish(&self, stream: Option<MediaStream>) -> Result<(), Error> {
            self.ensure_joined()?;
            let media = match stream {
                Some(stream) => LocalMedia::adopt(stream),
                None => {
                    let request = self
                        .shared
                        .inner
                        .borrow()
                        .options
                        .media
                        .clone()
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(MediaRequest::camera_and_microphone);
                    LocalMedia::open(&request)
                        .await
                        .inspect_err(|e| self.report(e.clone()))?
                }
            };
            // Left while the browser was asking? Dropping `media` releases what it opened.
            self.ensure_joined()?;
            engine::publish_media(&self.shared, media);
            Ok(())
        }

        /// Stops publishing (and releases devices callroom opened).
        pub fn unpublish(&self) {
            engine::unpublish(&self.shared);
        }

        /// Leaves: stops every track callroom opened, closes every connection, cancels every
        /// request, timer and listener, and tells the server.
        pub async fn leave(&self) {
            engine::leave(&self.shared).await;
        }

        /// Forces a full rejoin (new session, new connections; media stays).
        pub fn reconnect(&self) -> Result<(), Error> {
            self.ensure_joined()?;
            engine::rejoin(&self.shared);
            Ok(())
        }

        /// Mutes or unmutes the microphone (the track stays open, so unmuting is instant).
        pub fn set_mic_enabled(&self, enabled: bool) {
            update(&self.shared, |inner| {
                if let Some(local) = &inner.local {
                    for track in local.audio_tracks() {
                        track.set_enabled(enabled);
                    }
                }
                inner.mic_enabled = enabled
                    && inner
                        .local
                        .as_ref()
                        .is_some_and(|l| !l.audio_tracks().is_empty());
                inner.changed = true;
            });
        }

        /// Turns the camera off (releasing it: the light goes off) or on again, without
        /// renegotiating.
        pub async fn set_camera_enabled(&self, enabled: bool) -> Result<(), Error> {
            self.ensure_joined()?;
            if !enabled {
                engine::swap_local_track(&self.shared, "video", None).await;
                update(&self.shared, |inner| inner.camera_enabled = false);
                return Ok(());
            }
            self.use_camera(&self.preferred_camera()).await
        }

        /// Opens `device` and sends it in place of the current camera (no renegotiation).
        async fn use_camera(&self, device: &TrackRequest) -> Result<(), Error> {
            let track = media::open_track("video", device)
                .await
                .inspect_err(|e| self.report(e.clone()))?;
            self.still_joined(&track)?;
            engine::swap_local_track(&self.shared, "video", Some(track)).await;
            update(&self.shared, |inner| {
                inner.camera_enabled = true;
                inner.changed = true;
            });
            Ok(())
        }

        fn preferred_camera(&self) -> TrackRequest {
            self.shared.inner.borrow().options.media.as_ref().map_or(
                TrackRequest::Any,
                |m| match &m.video {
                    TrackRequest::Off => TrackRequest::Any,
                    other => other.clone(),
                },
            )
        }

        /// Switches to camera `device_id`, or to the next camera when `None`, with
        /// `replaceTrack` (no renegotiation).
        pub async fn switch_camera(&self, device_id: Option<String>) -> Result<(), Error> {
            self.ensure_joined()?;
            let cameras: Vec<Device> = media::devices()
                .await?
                .into_iter()
                .filter(|d| d.kind == "videoinput")
                .collect();
            let current = self
                .shared
                .inner
                .borrow()
                .local
                .as_ref()
                .and_then(|l| l.video_tracks().first().and_then(media::device_id_of));
            let target = match device_id {
                Some(id) => id,
                None => {
                    let position = cameras
                        .iter()
                        .position(|c| Some(&c.device_id) == current.as_ref());
                    let next = position.map_or(0, |p| (p + 1) % cameras.len().max(1));
                    cameras
                        .get(next)
                        .map(|c| c.device_id.clone())
                        .ok_or(Error::DeviceNotFound)?
                }
            };
            self.use_camera(&TrackRequest::Device(target)).await?;
            update(&self.shared, |inner| {
                inner.devices = cameras
                    .into_iter()
                    .chain(inner.devices.drain(..).filter(|d| d.kind != "videoinput"))
                    .collect();
                inner.changed = true;
            });
            Ok(())
        }

        /// Shares a screen, window or tab in place of the camera (`contentHint = "detail"`).
        /// Ends by itself when the user stops sharing from the browser's UI.
        pub async fn start_screen_share(&self) -> Result<(), Error> {
            self.ensure_joined()?;
            let track = media::open_screen()
                .await
                .inspect_err(|e| self.report(e.clone()))?;
            self.still_joined(&track)?;
            engine::start_screen(&self.shared, track).await;
            Ok(())
        }

        /// Stops sharing and sends the camera again (if it is on).
        pub async fn stop_screen_share(&self) {
            engine::stop_screen(&self.shared).await;
        }

        /// Lists cameras, microphones and speakers, and updates the snapshot's `devices`.
        pub async fn list_devices(&self) -> Result<Vec<Device>, Error> {
            let list = media::devices().await?;
            update(&self.shared, |inner| {
                inner.devices = list.clone();
                inner.changed = true;
            });
            Ok(list)
        }

        fn report(&self, error: Error) {
            update(&self.shared, |inner| inner.report_error(error));
        }
    }
}

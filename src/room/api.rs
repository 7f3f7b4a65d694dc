//! `Room`, the Rust API: each method hands its work to the file that owns that job.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;

use callroom_protocol::Topology;

use web_sys::MediaStream;

use super::notify::{Events, Notifier, Subscription};
use super::state::{read, update, Inner, Shared};
use super::{local, signaling, JoinOptions, Snapshot};
use crate::core::roster::ConnectionState;
use crate::media::{self, Device, LocalMedia};
use crate::web::js::spawn;
use crate::Error;

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
        let capture = media.filter(|r| !r.is_empty());
        // With the devices already granted (no prompt), the join request goes out while the
        // camera opens, and the media plane starts once both are there. Behind a prompt, which
        // can take the user many seconds, the camera comes first: an admitted peer that does
        // not poll yet would look silent to the room. The camera is asked first, and the
        // permission check runs beside it, so neither waits for the other. Either way a task
        // sends the request, so a `join` dropped midway leaves no admitted session behind.
        let (answered_tx, answered) = futures_channel::oneshot::channel();
        let mut early = EarlyJoin {
            answered,
            read: None,
            shared: shared.clone(),
        };
        let (settled_tx, settled) = futures_channel::oneshot::channel::<()>();
        let requesting = shared.clone();
        let check = capture.clone();
        spawn(Box::pin(async move {
            let granted = match &check {
                Some(request) => media::already_granted(request).await,
                None => true,
            };
            // Behind a prompt, the camera settles first (or `join` goes away meanwhile).
            if !granted && settled.await.is_err() {
                return;
            }
            if answered_tx.is_canceled() {
                return;
            }
            let result = signaling::request_join(&requesting).await;
            if let Err(Ok(orphaned)) = answered_tx.send(result) {
                // `join` was dropped meanwhile: nobody runs this session.
                signaling::abandon(&requesting, orphaned);
            }
        }));
        // A mesh or hub session whose answer comes while the camera still opens starts at
        // once: its links make senders for the tracks on their way, so the first offer (and
        // the connection) need not wait for the camera. An SFU session starts after it, as
        // its first call publishes what there is.
        let mut started = None;
        if let Some(request) = capture {
            update(&shared, |inner| inner.coming = request.kinds());
            let mut camera = Box::pin(LocalMedia::open(&request));
            let opened = match first(&mut camera, &mut early.answered).await {
                First::A(opened) => opened,
                First::B(answered) => {
                    match answered {
                        Ok(Ok(answered)) if answered.topology() != Topology::Sfu => {
                            started = Some(signaling::start_session(&shared, answered));
                        }
                        Ok(Ok(answered)) => early.read = Some(answered),
                        Ok(Err(error)) => started = Some(Err(error)),
                        Err(_) => started = Some(Err(Error::Closed)),
                    }
                    camera.await
                }
            };
            update(&shared, |inner| inner.coming.clear());
            match opened {
                Ok(local) => local::publish(&shared, local),
                Err(error) => {
                    // Senders made for it would send nothing: they stop being offered.
                    local::unpublish(&shared);
                    update(&shared, |inner| inner.view.error = Some(error));
                }
            }
        }
        let _ = settled_tx.send(());
        let started = match (started, early.read.take()) {
            (Some(started), _) => started,
            (None, Some(answered)) => signaling::start_session(&shared, answered),
            (None, None) => match (&mut early.answered).await {
                Ok(answered) => answered.and_then(|a| signaling::start_session(&shared, a)),
                Err(_) => Err(Error::Closed),
            },
        };
        if let Err(error) = started {
            update(&shared, |inner| {
                inner.set_state(ConnectionState::Failed);
                inner.view.error = Some(error.clone());
            });
            return Err(error);
        }
        local::watch_devices(&shared);
        Ok(Room { shared })
    }

    /// The current state. Cheap; build UI from it.
    pub fn snapshot(&self) -> Snapshot {
        let version = self.shared.notify.version();
        let inner = self.shared.inner.borrow();
        inner.snapshot(version)
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

    fn ensure_joined(&self) -> Result<(), Error> {
        match read(&self.shared, |inner| inner.view.state) {
            Some(ConnectionState::Disconnected) | None => Err(Error::Closed),
            Some(_) => Ok(()),
        }
    }

    /// Publishes `stream`, or captures with the join options' media request (camera and
    /// microphone by default). Replaces what was published before.
    pub async fn publish(&self, stream: Option<MediaStream>) -> Result<(), Error> {
        self.ensure_joined()?;
        let media = match stream {
            Some(stream) => LocalMedia::adopt(stream),
            None => LocalMedia::open(&local::default_request(&self.shared))
                .await
                .inspect_err(|e| local::report(&self.shared, e.clone()))?,
        };
        // Left while the browser was asking? Dropping `media` releases what it opened.
        self.ensure_joined()?;
        local::publish(&self.shared, media);
        Ok(())
    }

    /// Stops publishing (and releases devices callroom opened).
    pub fn unpublish(&self) {
        local::unpublish(&self.shared);
    }

    /// Leaves: stops every track callroom opened, closes every connection, cancels every
    /// request, timer and listener, and tells the server.
    pub async fn leave(&self) {
        signaling::leave(&self.shared).await;
    }

    /// Forces a full rejoin (new session, new connections; media stays).
    pub fn reconnect(&self) -> Result<(), Error> {
        self.ensure_joined()?;
        signaling::rejoin(&self.shared);
        Ok(())
    }

    /// Mutes or unmutes the microphone (the track stays open, so unmuting is instant).
    pub fn set_mic_enabled(&self, enabled: bool) {
        local::set_mic_enabled(&self.shared, enabled);
    }

    /// Turns the camera off (releasing it: the light goes off) or on again, without
    /// renegotiating.
    pub async fn set_camera_enabled(&self, enabled: bool) -> Result<(), Error> {
        self.ensure_joined()?;
        local::set_camera_enabled(&self.shared, enabled).await
    }

    /// Switches to camera `device_id`, or to the next camera when `None`, with
    /// `replaceTrack` (no renegotiation).
    pub async fn switch_camera(&self, device_id: Option<String>) -> Result<(), Error> {
        self.ensure_joined()?;
        local::switch_camera(&self.shared, device_id).await
    }

    /// Shares a screen, window or tab in place of the camera (`contentHint = "detail"`).
    /// Ends by itself when the user stops sharing from the browser's UI.
    pub async fn start_screen_share(&self) -> Result<(), Error> {
        self.ensure_joined()?;
        let track = media::open_screen()
            .await
            .inspect_err(|e| local::report(&self.shared, e.clone()))?;
        local::still_joined(&self.shared, &track)?;
        local::start_screen(&self.shared, track).await;
        Ok(())
    }

    /// Stops sharing and sends the camera again (if it is on).
    pub async fn stop_screen_share(&self) {
        local::stop_screen(&self.shared).await;
    }

    /// Tells the room how large `peer_id`'s video is shown (CSS pixels times
    /// `devicePixelRatio`; 0 when hidden). In an SFU room, the simulcast layer pulled of their
    /// camera follows: the smallest that fills the tile, one lower on a poor link; a camera
    /// unshown for 3 s is paused.
    pub fn set_tile_size(&self, peer_id: &str, _width: u32, height: u32) {
        self.set_view(peer_id, |v| v.tile_height = Some(height));
    }

    /// Which layer of `peer_id`'s camera to receive in an SFU room: `Auto` (the default)
    /// follows the tile size (see [`Room::set_tile_size`]) and our link; `High`, `Medium` and
    /// `Low` pick one; `Off` pauses it (nothing received; see [`crate::core::layers::Pause`]).
    pub fn set_video_quality(&self, peer_id: &str, hint: crate::core::layers::Hint) {
        self.set_view(peer_id, |v| v.hint = hint);
    }

    /// Keeps how `peer_id` is shown (a connection made after a rejoin gets it too) and hands
    /// it to the media plane.
    fn set_view(&self, peer_id: &str, f: impl FnOnce(&mut crate::core::layers::Shown)) {
        let set = update(&self.shared, |inner| {
            let shown = inner.views.set(peer_id, f);
            inner.plane().map(|plane| (plane, shown))
        });
        if let Some((plane, shown)) = set.flatten() {
            plane.set_view(peer_id, shown);
        }
    }

    /// Shows a recording in progress in the snapshot's `recording` (`None`: none). The npm
    /// package's `room.startRecording()` reports through this; a recorder of your own can.
    pub fn set_recording(&self, status: Option<super::RecordingStatus>) {
        update(&self.shared, |inner| {
            if inner.view.recording != status {
                inner.view.recording = status;
            }
        });
    }

    /// Lists cameras, microphones and speakers, and updates the snapshot's `devices`.
    pub async fn list_devices(&self) -> Result<Vec<Device>, Error> {
        local::list_devices(&self.shared).await
    }
}

/// The join's answer, on its way to [`Room::join`] from the task that asked. When `join` is
/// dropped after the answer arrived but before it was read, the admitted session is ended
/// here, so the room sees no ghost (an answer arriving later is ended by the task).
struct EarlyJoin {
    answered: futures_channel::oneshot::Receiver<Result<signaling::Answered, Error>>,
    /// An answer read while the camera opened whose session waits for it (an SFU room's).
    read: Option<signaling::Answered>,
    shared: Rc<Shared>,
}

impl Drop for EarlyJoin {
    fn drop(&mut self) {
        if let Some(answered) = self.read.take() {
            signaling::abandon(&self.shared, answered);
        }
        if let Ok(Some(Ok(answered))) = self.answered.try_recv() {
            signaling::abandon(&self.shared, answered);
        }
    }
}

/// Which of two futures finished first, with its output; the other is left as it was.
enum First<A, B> {
    A(A),
    B(B),
}

async fn first<A, B>(a: &mut A, b: &mut B) -> First<A::Output, B::Output>
where
    A: Future + Unpin,
    B: Future + Unpin,
{
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = Pin::new(&mut *a).poll(cx) {
            return Poll::Ready(First::A(out));
        }
        Pin::new(&mut *b).poll(cx).map(First::B)
    })
    .await
}

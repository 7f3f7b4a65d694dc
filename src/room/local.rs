//! Local media: what we publish, mute, camera off and on, switching camera, falling back when
//! a device goes away, screen share and the device list. Each local track's `ended` listener
//! lives beside the track, so replacing or dropping the track removes it.

use std::rc::{Rc, Weak};

use gloo_events::EventListener;
use web_sys::{MediaStream, MediaStreamTrack};

use super::state::{read, update, with, Inner, Shared};
use crate::core::roster::ConnectionState;
use crate::media::{self, Device, LocalMedia, MediaRequest, TrackRequest};
use crate::web::js::spawn;
use crate::Error;

/// What we publish, with an `ended` listener per track (a device unplugged ends its track:
/// we fall back to another device of that kind).
pub(crate) struct Local {
    media: LocalMedia,
    watchers: Vec<(String, EventListener)>,
}

impl Local {
    fn new(media: LocalMedia, weak: &Weak<Shared>) -> Self {
        let mut local = Self {
            media,
            watchers: Vec::new(),
        };
        for track in local
            .media
            .video_tracks()
            .into_iter()
            .chain(local.media.audio_tracks())
        {
            local.watch(&track, weak);
        }
        local
    }

    pub(crate) fn stream(&self) -> &MediaStream {
        self.media.stream()
    }

    fn watch(&mut self, track: &MediaStreamTrack, weak: &Weak<Shared>) {
        let weak = weak.clone();
        let kind = track.kind();
        let id = track.id();
        let listener = EventListener::once(track, "ended", move |_| {
            spawn(Box::pin(fall_back(weak, kind, id)));
        });
        self.watchers.push((track.id(), listener));
    }

    /// Puts `track` in place of the tracks of `kind`; their listeners go with them.
    fn swap(&mut self, track: Option<&MediaStreamTrack>, kind: &str, weak: &Weak<Shared>) {
        self.media.swap_track(track, kind);
        let stream = Clone::clone(self.media.stream());
        self.watchers
            .retain(|(id, _)| stream.get_track_by_id(id).is_some());
        if let Some(track) = track {
            self.watch(track, weak);
        }
    }
}

/// A shared screen: the track, stopped when this goes, and the listener for the browser's own
/// "Stop sharing" button.
pub(crate) struct Screen {
    track: MediaStreamTrack,
    /// The track as a stream of its own, for the snapshot (one object while it lasts).
    stream: Option<MediaStream>,
    _ended: EventListener,
}

impl Screen {
    /// The shared screen as a stream.
    pub(crate) fn stream(&self) -> Option<MediaStream> {
        self.stream.clone()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        self.track.stop();
    }
}

/// Starts sending `media` to everyone (renegotiating where needed).
pub(crate) fn publish(shared: &Rc<Shared>, media: LocalMedia) {
    let weak = Rc::downgrade(shared);
    update(shared, |inner| {
        // Publishing replaces what was published (the plane stops sending that itself).
        if let Some(plane) = inner.plane() {
            plane.publish(media.stream());
        }
        inner.view.mic_enabled = media.audio_tracks().iter().any(|t| t.enabled());
        inner.view.camera_enabled = !media.video_tracks().is_empty();
        inner.view.local = Some(Local::new(media, &weak));
    });
}

/// Stops publishing (and releases devices callroom opened).
pub(crate) fn unpublish(shared: &Rc<Shared>) {
    update(shared, |inner| {
        if let Some(plane) = inner.plane() {
            plane.unpublish();
        }
        inner.view.local = None;
        inner.view.mic_enabled = false;
        inner.view.camera_enabled = false;
    });
}

/// What `publish(None)` captures: the join options' request, or camera and microphone.
pub(crate) fn default_request(shared: &Shared) -> MediaRequest {
    read(shared, |inner| inner.options.media.clone())
        .flatten()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(MediaRequest::camera_and_microphone)
}

pub(crate) fn set_mic_enabled(shared: &Rc<Shared>, enabled: bool) {
    update(shared, |inner| {
        let tracks = inner
            .view
            .local
            .as_ref()
            .map(|l| l.media.audio_tracks())
            .unwrap_or_default();
        for track in &tracks {
            track.set_enabled(enabled);
        }
        inner.view.mic_enabled = enabled && !tracks.is_empty();
    });
}

/// Turns the camera off (releasing it: the light goes off) or on again, without
/// renegotiating.
pub(crate) async fn set_camera_enabled(shared: &Rc<Shared>, enabled: bool) -> Result<(), Error> {
    if enabled {
        let device = preferred_camera(shared);
        use_camera(shared, &device).await
    } else {
        swap(shared, "video", None).await;
        Ok(())
    }
}

/// Switches to camera `device_id`, or to the next camera when `None`.
pub(crate) async fn switch_camera(
    shared: &Rc<Shared>,
    device_id: Option<String>,
) -> Result<(), Error> {
    let cameras: Vec<Device> = media::devices()
        .await?
        .into_iter()
        .filter(|d| d.kind == "videoinput")
        .collect();
    let target = match device_id {
        Some(id) => id,
        None => {
            let current = read(shared, |inner| {
                let local = inner.view.local.as_ref()?;
                local
                    .media
                    .video_tracks()
                    .first()
                    .and_then(media::device_id_of)
            })
            .flatten();
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
    use_camera(shared, &TrackRequest::Device(target)).await?;
    update(shared, |inner| {
        let others = inner
            .view
            .devices
            .drain(..)
            .filter(|d| d.kind != "videoinput");
        let devices: Vec<Device> = cameras.into_iter().chain(others).collect();
        inner.view.devices = devices;
    });
    Ok(())
}

/// Opens `device` and sends it in place of the current camera.
async fn use_camera(shared: &Rc<Shared>, device: &TrackRequest) -> Result<(), Error> {
    let track = media::open_track("video", device)
        .await
        .inspect_err(|e| report(shared, e.clone()))?;
    still_joined(shared, &track)?;
    swap(shared, "video", Some(track)).await;
    Ok(())
}

fn preferred_camera(shared: &Shared) -> TrackRequest {
    read(shared, |inner| inner.options.media.clone())
        .flatten()
        .map_or(TrackRequest::Any, |m| match m.video {
            TrackRequest::Off => TrackRequest::Any,
            other => other,
        })
}

/// Puts `track` in the local stream and sends it: without renegotiation where a sender of
/// that kind exists, with it where none does. While a screen is shared, the screen keeps
/// going out and only the local stream changes. The camera and microphone flags change in
/// the same step, so no snapshot shows the new stream with the old flag.
async fn swap(shared: &Rc<Shared>, kind: &str, track: Option<MediaStreamTrack>) {
    let weak = Rc::downgrade(shared);
    let Some((plane, stream, screen_active)) = update(shared, |inner| {
        if inner.view.local.is_none() {
            let stream = MediaStream::new().ok()?;
            // Connections made from now on (newcomers, rebuilds) send it too.
            if let Some(plane) = inner.plane() {
                plane.set_local(Some(&stream));
            }
            inner.view.local = Some(Local::new(LocalMedia::adopt(stream), &weak));
        }
        let local = inner.view.local.as_mut()?;
        let had_audio = !local.media.audio_tracks().is_empty();
        local.swap(track.as_ref(), kind, &weak);
        let stream = Clone::clone(local.stream());
        if kind == "video" {
            inner.view.camera_enabled = track.is_some();
        } else {
            // A replacement microphone keeps the mute of the one it replaces.
            if let (Some(track), true) = (&track, had_audio) {
                track.set_enabled(inner.view.mic_enabled);
            }
            inner.view.mic_enabled = track.as_ref().is_some_and(|t| t.enabled());
        }
        let plane = inner.plane();
        let screen_active = kind == "video"
            && inner.view.screen.is_some()
            && plane.as_ref().is_some_and(|p| p.screen_replaces_camera());
        Some((plane, stream, screen_active))
    })
    .flatten() else {
        return;
    };
    if let (Some(plane), false) = (plane, screen_active) {
        for error in plane.send_track(kind, track.as_ref(), &stream).await {
            report(shared, error);
        }
    }
}

async fn fall_back(weak: Weak<Shared>, kind: String, ended_id: String) {
    let still_current = with(&weak, |inner| {
        inner
            .view
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
    let error = match replacement {
        Ok(track) => {
            let message = format!("the {label} stopped; switched to {}", track.label());
            swap(&shared, &kind, Some(track)).await;
            Error::DeviceLost(message)
        }
        Err(_) => {
            swap(&shared, &kind, None).await;
            Error::DeviceLost(format!("the {label} stopped and no other is available"))
        }
    };
    report(&shared, error);
}

/// Shares `track`: in place of the camera on peer links, beside it through an SFU.
pub(crate) async fn start_screen(shared: &Rc<Shared>, track: MediaStreamTrack) {
    let weak = Rc::downgrade(shared);
    let Some((plane, stream)) = update(shared, |inner| {
        // The browser's own "Stop sharing" button ends the track.
        let ended = EventListener::once(&track, "ended", move |_| {
            if let Some(shared) = weak.upgrade() {
                spawn(Box::pin(async move { stop_screen(&shared).await }));
            }
        });
        inner.view.screen = Some(Screen {
            track: Clone::clone(&track),
            stream: MediaStream::new_with_tracks(&js_sys::Array::of1(&track)).ok(),
            _ended: ended,
        });
        let stream = inner.local_stream().or_else(|| MediaStream::new().ok())?;
        Some((inner.plane()?, stream))
    })
    .flatten() else {
        return;
    };
    for error in plane.share_screen(&track, &stream).await {
        report(shared, error);
    }
}

/// Stops sharing; the camera goes out again, or nothing if it is off.
pub(crate) async fn stop_screen(shared: &Rc<Shared>) {
    let Some((plane, camera, stream)) = update(shared, |inner| {
        // Dropping the screen stops its track.
        inner.view.screen.take()?;
        let local = inner.view.local.as_ref();
        let camera = local.and_then(|l| l.media.video_tracks().into_iter().next());
        let stream = inner.local_stream().or_else(|| MediaStream::new().ok())?;
        Some((inner.plane()?, camera, stream))
    })
    .flatten() else {
        return;
    };
    for error in plane.stop_screen(camera.as_ref(), &stream).await {
        report(shared, error);
    }
}

/// Keeps the snapshot's device list current.
pub(crate) fn watch_devices(shared: &Rc<Shared>) {
    let Ok(devices) = media::browser_media_devices() else {
        return;
    };
    let weak = Rc::downgrade(shared);
    let listener = EventListener::new(&devices, "devicechange", move |_| {
        let weak = weak.clone();
        spawn(Box::pin(async move {
            if let Ok(list) = media::devices().await {
                with(&weak, |inner| inner.view.devices = list);
            }
        }));
    });
    update(shared, |inner| inner.device_listener = Some(listener));
}

/// Lists devices and updates the snapshot's list.
pub(crate) async fn list_devices(shared: &Rc<Shared>) -> Result<Vec<Device>, Error> {
    let list = media::devices().await?;
    update(shared, |inner| inner.view.devices = list.clone());
    Ok(list)
}

/// After an await: if the room was left meanwhile, release what was just captured.
pub(crate) fn still_joined(shared: &Shared, captured: &MediaStreamTrack) -> Result<(), Error> {
    if read(shared, |inner| inner.view.state) != Some(ConnectionState::Disconnected) {
        return Ok(());
    }
    captured.stop();
    Err(Error::Closed)
}

pub(crate) fn report(shared: &Shared, error: Error) {
    update(shared, |inner: &mut Inner| inner.report(error));
}

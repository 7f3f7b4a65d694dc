//! `getUserMedia`, `getDisplayMedia`, `enumerateDevices`, and the tracks they return.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DisplayMediaStreamConstraints, MediaDeviceInfo, MediaDevices, MediaStream,
    MediaStreamConstraints, MediaStreamTrack, MediaStreamTrackState,
};

use super::{Device, MediaRequest, TrackRequest};
use crate::js_error::{browser_error, media_error};
use crate::Error;

/// A camera/microphone stream.
///
/// When callroom opened the devices (`open`), dropping it or calling [`LocalMedia::stop`]
/// stops every track, so the camera light goes off when the owner goes away. A stream the
/// app handed in (`adopt`) is the app's: callroom never stops its tracks.
#[derive(Debug)]
pub struct LocalMedia {
    stream: MediaStream,
    owned: bool,
}

impl LocalMedia {
    /// Asks the browser for the devices in `request`.
    pub async fn open(request: &MediaRequest) -> Result<Self, Error> {
        if request.is_empty() {
            return Err(Error::InvalidArgument(
                "a media request must ask for audio, video or both".into(),
            ));
        }
        let constraints = MediaStreamConstraints::new();
        constraints.set_audio(&track_constraint(&request.audio));
        constraints.set_video(&track_constraint(&request.video));
        let promise = media_devices()?
            .get_user_media_with_constraints(&constraints)
            .map_err(|e| media_error(&e))?;
        let stream = JsFuture::from(promise).await.map_err(|e| media_error(&e))?;
        let stream = stream
            .dyn_into::<MediaStream>()
            .map_err(|v| browser_error("getUserMedia gave no MediaStream", &v))?;
        Ok(Self {
            stream,
            owned: true,
        })
    }

    /// Wraps a stream the app captured itself; its tracks stay the app's to stop.
    pub fn adopt(stream: MediaStream) -> Self {
        Self {
            stream,
            owned: false,
        }
    }

    /// The underlying stream, to attach to a `<video>` or a peer connection.
    pub fn stream(&self) -> &MediaStream {
        &self.stream
    }

    /// The camera tracks (zero or one).
    pub fn video_tracks(&self) -> Vec<MediaStreamTrack> {
        tracks(&self.stream.get_video_tracks())
    }

    /// The microphone tracks (zero or one).
    pub fn audio_tracks(&self) -> Vec<MediaStreamTrack> {
        tracks(&self.stream.get_audio_tracks())
    }

    /// Puts `track` in the stream in place of the tracks of its kind (which are stopped if
    /// callroom opened them).
    pub fn swap_track(&mut self, track: Option<&MediaStreamTrack>, kind: &str) {
        for old in tracks(&self.stream.get_tracks())
            .into_iter()
            .filter(|t| t.kind() == kind)
        {
            self.stream.remove_track(&old);
            if self.owned {
                old.stop();
            }
        }
        if let Some(track) = track {
            self.stream.add_track(track);
            // A track we add is one we opened, whoever opened the rest.
            self.owned = true;
        }
    }

    /// Stops every track callroom opened; the devices are released at once.
    pub fn stop(&self) {
        if self.owned {
            for track in tracks(&self.stream.get_tracks()) {
                track.stop();
            }
        }
    }
}

impl Drop for LocalMedia {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens one track of `kind` (`"audio"` or `"video"`).
pub async fn open_track(kind: &str, device: &TrackRequest) -> Result<MediaStreamTrack, Error> {
    let request = match kind {
        "audio" => MediaRequest {
            audio: device.clone(),
            video: TrackRequest::Off,
        },
        _ => MediaRequest {
            audio: TrackRequest::Off,
            video: device.clone(),
        },
    };
    let mut media = LocalMedia::open(&request).await?;
    let track = tracks(&media.stream.get_tracks())
        .into_iter()
        .next()
        .ok_or(Error::DeviceNotFound)?;
    // The track now belongs to the caller; do not stop it with the temporary stream.
    media.owned = false;
    Ok(track)
}

/// Asks the user for a screen, window or tab to share; the track is tuned for detail.
pub async fn open_screen() -> Result<MediaStreamTrack, Error> {
    let constraints = DisplayMediaStreamConstraints::new();
    constraints.set_video(&JsValue::TRUE);
    constraints.set_audio(&JsValue::FALSE);
    let promise = media_devices()?
        .get_display_media_with_constraints(&constraints)
        .map_err(|e| media_error(&e))?;
    let stream: MediaStream = JsFuture::from(promise)
        .await
        .map_err(|e| media_error(&e))?
        .unchecked_into();
    let track = tracks(&stream.get_video_tracks())
        .into_iter()
        .next()
        .ok_or(Error::DeviceNotFound)?;
    // Text and slides stay sharp: the encoder keeps resolution and drops frame rate instead.
    let _ = Reflect::set(&track, &"contentHint".into(), &"detail".into());
    Ok(track)
}

/// Cameras, microphones and speakers the page may use.
pub async fn devices() -> Result<Vec<Device>, Error> {
    let promise = media_devices()?
        .enumerate_devices()
        .map_err(|e| media_error(&e))?;
    let list: Array = JsFuture::from(promise)
        .await
        .map_err(|e| media_error(&e))?
        .unchecked_into();
    Ok(list
        .iter()
        .filter_map(|d| d.dyn_into::<MediaDeviceInfo>().ok())
        .map(|d| Device {
            device_id: d.device_id(),
            kind: crate::web::js::get_str(&d, "kind").unwrap_or_default(),
            label: d.label(),
        })
        .collect())
}

/// The `deviceId` a live track was opened from.
pub fn device_id_of(track: &MediaStreamTrack) -> Option<String> {
    crate::web::js::get_str(&track.get_settings(), "deviceId")
}

/// `navigator.mediaDevices`, which exists only in secure contexts.
pub fn media_devices() -> Result<MediaDevices, Error> {
    let window = web_sys::window().ok_or(Error::InsecureContext)?;
    if !window.is_secure_context() {
        return Err(Error::InsecureContext);
    }
    Reflect::get(&window.navigator(), &JsValue::from_str("mediaDevices"))
        .ok()
        .filter(|d| !d.is_undefined() && !d.is_null())
        .map(JsCast::unchecked_into::<MediaDevices>)
        .ok_or(Error::InsecureContext)
}

/// True when the browser says every device `request` captures is already granted to this
/// page (`navigator.permissions`), so opening them shows no prompt. Unknown (a browser
/// without the query, or without these names) is false.
pub async fn already_granted(request: &MediaRequest) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let permissions = crate::web::js::get(&window.navigator(), "permissions");
    if permissions.is_undefined() || permissions.is_null() {
        return false;
    }
    let names = [
        (request.video != TrackRequest::Off, "camera"),
        (request.audio != TrackRequest::Off, "microphone"),
    ];
    for (wanted, name) in names {
        if !wanted {
            continue;
        }
        let descriptor = Object::new();
        crate::web::js::set(&descriptor, "name", name);
        let query = Reflect::get(&permissions, &JsValue::from_str("query"))
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let Some(query) = query else { return false };
        let Ok(promise) = query.call1(&permissions, &descriptor) else {
            return false;
        };
        let Ok(status) = JsFuture::from(promise.unchecked_into::<js_sys::Promise>()).await else {
            return false;
        };
        if crate::web::js::get_str(&status, "state").as_deref() != Some("granted") {
            return false;
        }
    }
    true
}

/// True while the track still delivers media.
pub fn is_live(track: &MediaStreamTrack) -> bool {
    track.ready_state() == MediaStreamTrackState::Live
}

pub(crate) fn tracks(array: &Array) -> Vec<MediaStreamTrack> {
    array
        .iter()
        .filter_map(|t| t.dyn_into::<MediaStreamTrack>().ok())
        .collect()
}

fn track_constraint(request: &TrackRequest) -> JsValue {
    match request {
        TrackRequest::Off => JsValue::FALSE,
        TrackRequest::Any => JsValue::TRUE,
        TrackRequest::Device(id) => {
            let exact = Object::new();
            let constraint = Object::new();
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&exact, &"exact".into(), &JsValue::from_str(id));
            let _ = Reflect::set(&constraint, &"deviceId".into(), &exact);
            constraint.into()
        }
    }
}

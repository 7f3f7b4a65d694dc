//! `getUserMedia` and the tracks it returns.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{MediaStream, MediaStreamConstraints, MediaStreamTrack, MediaStreamTrackState};

use super::{MediaRequest, TrackRequest};
use crate::js_error::{exception_parts, media_error};
use crate::Error;

/// A captured camera/microphone stream, owned by callroom.
///
/// Dropping it (or calling [`LocalMedia::stop`]) stops every track it opened, so the
/// camera light goes off when the owner goes away.
#[derive(Debug)]
pub struct LocalMedia {
    stream: MediaStream,
}

impl LocalMedia {
    /// Asks the browser for the devices in `request`.
    pub async fn open(request: &MediaRequest) -> Result<Self, Error> {
        if request.is_empty() {
            return Err(Error::Browser {
                name: "TypeError".into(),
                message: "a media request must ask for audio, video or both".into(),
            });
        }
        let window = web_sys::window().ok_or(Error::InsecureContext)?;
        if !window.is_secure_context() {
            return Err(Error::InsecureContext);
        }
        let devices = Reflect::get(&window.navigator(), &JsValue::from_str("mediaDevices"))
            .ok()
            .filter(|d| !d.is_undefined() && !d.is_null())
            .ok_or(Error::InsecureContext)?
            .unchecked_into::<web_sys::MediaDevices>();

        let constraints = MediaStreamConstraints::new();
        constraints.set_audio(&track_constraint(&request.audio));
        constraints.set_video(&track_constraint(&request.video));
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|e| media_error(&e))?;
        let stream = JsFuture::from(promise).await.map_err(|e| media_error(&e))?;
        let stream = stream.dyn_into::<MediaStream>().map_err(|v| {
            let (name, message) = exception_parts(&v);
            Error::Browser { name, message }
        })?;
        Ok(Self { stream })
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

    /// Stops every track; the devices are released at once.
    pub fn stop(&self) {
        for track in tracks(&self.stream.get_tracks()) {
            track.stop();
        }
    }
}

impl Drop for LocalMedia {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True while the track still delivers media.
pub fn is_live(track: &MediaStreamTrack) -> bool {
    track.ready_state() == MediaStreamTrackState::Live
}

fn tracks(array: &Array) -> Vec<MediaStreamTrack> {
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

//! Local media: what to ask the browser for, and the tracks it gives back.
//!
//! [`MediaRequest`] is plain Rust so it can be tested natively; the browser calls live in
//! `browser.rs`, compiled only for wasm32.

#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
pub(crate) use browser::media_devices as browser_media_devices;
#[cfg(target_arch = "wasm32")]
pub use browser::{
    already_granted, device_id_of, devices, is_live, open_screen, open_track, LocalMedia,
};

/// A camera, microphone or speaker, as `enumerateDevices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Stable id to pass back as [`TrackRequest::Device`].
    pub device_id: String,
    /// `videoinput`, `audioinput` or `audiooutput`.
    pub kind: String,
    /// Human-readable name (empty until the user granted a permission).
    pub label: String,
}

/// What to capture for one kind of track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrackRequest {
    /// Do not capture this kind.
    Off,
    /// Any device of this kind (the browser's default).
    #[default]
    Any,
    /// Exactly this device, by `deviceId`.
    Device(String),
}

/// A capture request: one entry per kind of track.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MediaRequest {
    /// Microphone.
    pub audio: TrackRequest,
    /// Camera.
    pub video: TrackRequest,
}

impl MediaRequest {
    /// Camera and microphone, default devices.
    pub fn camera_and_microphone() -> Self {
        Self::default()
    }

    /// True when the request captures nothing, which the browser rejects.
    pub fn is_empty(&self) -> bool {
        self.audio == TrackRequest::Off && self.video == TrackRequest::Off
    }

    /// The kinds of track it asks for: `"audio"`, `"video"`.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub(crate) fn kinds(&self) -> Vec<&'static str> {
        [("audio", &self.audio), ("video", &self.video)]
            .into_iter()
            .filter(|(_, request)| **request != TrackRequest::Off)
            .map(|(kind, _)| kind)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_request_captures_camera_and_microphone() {
        let req = MediaRequest::camera_and_microphone();
        assert_eq!(req.audio, TrackRequest::Any);
        assert_eq!(req.video, TrackRequest::Any);
        assert!(!req.is_empty());
    }

    #[test]
    fn a_request_for_nothing_is_empty() {
        let req = MediaRequest {
            audio: TrackRequest::Off,
            video: TrackRequest::Off,
        };
        assert!(req.is_empty());
        let video_only = MediaRequest {
            audio: TrackRequest::Off,
            video: TrackRequest::Device("cam-2".into()),
        };
        assert!(!video_only.is_empty());
    }
}

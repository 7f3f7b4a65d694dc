//! Browser test: the fake camera and microphone through the library's media code.
//! Runs in headless Chromium via `wasm-pack test --headless --chrome` (see webdriver.json).
#![cfg(target_arch = "wasm32")]

use callroom::media::{is_live, LocalMedia, MediaRequest, TrackRequest};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn camera_and_microphone_give_one_live_track_each_and_stop_ends_them() {
    let media = LocalMedia::open(&MediaRequest::camera_and_microphone())
        .await
        .expect("the fake devices from webdriver.json should open");
    let video = media.video_tracks();
    let audio = media.audio_tracks();
    assert_eq!(video.len(), 1, "one video track");
    assert_eq!(audio.len(), 1, "one audio track");
    assert!(
        is_live(&video[0]) && is_live(&audio[0]),
        "tracks start live"
    );

    media.stop();
    assert!(!is_live(&video[0]), "stop ends the video track");
    assert!(!is_live(&audio[0]), "stop ends the audio track");
}

#[wasm_bindgen_test]
async fn dropping_local_media_releases_the_devices() {
    let media = LocalMedia::open(&MediaRequest {
        audio: TrackRequest::Off,
        video: TrackRequest::Any,
    })
    .await
    .expect("the fake camera should open");
    let video = media.video_tracks();
    assert_eq!(video.len(), 1);
    assert!(media.audio_tracks().is_empty(), "audio was not requested");
    drop(media);
    assert!(!is_live(&video[0]), "drop stops the track");
}

#[wasm_bindgen_test]
async fn an_unknown_device_id_is_a_typed_error_not_a_panic() {
    let err = LocalMedia::open(&MediaRequest {
        audio: TrackRequest::Off,
        video: TrackRequest::Device("no-such-camera".into()),
    })
    .await
    .expect_err("an exact unknown deviceId cannot be satisfied");
    assert!(
        matches!(err.code(), "overconstrained" | "device_not_found"),
        "got {err:?}"
    );
}

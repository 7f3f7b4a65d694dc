//! Small helpers over JavaScript values, and the few browser methods web-sys lacks.

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MediaStream, MediaStreamTrack, RtcPeerConnection, RtcRtpSender};

#[wasm_bindgen]
extern "C" {
    /// The parts of `RTCPeerConnection` web-sys lacks.
    #[wasm_bindgen(js_name = RTCPeerConnection)]
    type PeerConnectionExt;

    #[wasm_bindgen(method, catch, js_name = restartIce)]
    fn restart_ice(this: &PeerConnectionExt) -> Result<(), JsValue>;

    #[wasm_bindgen(method, js_name = setLocalDescription)]
    fn set_local_description(this: &PeerConnectionExt) -> Promise;

    #[wasm_bindgen(method, catch, js_name = addTrack)]
    fn add_track(
        this: &PeerConnectionExt,
        track: &MediaStreamTrack,
        stream: &MediaStream,
    ) -> Result<RtcRtpSender, JsValue>;

    /// `RTCRtpSender` with parameters as plain objects.
    #[wasm_bindgen(js_name = RTCRtpSender)]
    type SenderExt;

    #[wasm_bindgen(method, catch, js_name = getParameters)]
    fn get_parameters(this: &SenderExt) -> Result<JsValue, JsValue>;

    #[wasm_bindgen(method, js_name = setParameters)]
    fn set_parameters(this: &SenderExt, params: &JsValue) -> Promise;

    /// `Storage` (sessionStorage), whose every call may throw (storage disabled, full).
    type SessionStorage;

    #[wasm_bindgen(method, catch, js_name = getItem)]
    fn get_item(this: &SessionStorage, key: &str) -> Result<Option<String>, JsValue>;

    #[wasm_bindgen(method, catch, js_name = setItem)]
    fn set_item(this: &SessionStorage, key: &str, value: &str) -> Result<(), JsValue>;
}

/// `sessionStorage`, where the page has one it may use.
fn session_storage() -> Option<SessionStorage> {
    // Reading the property itself throws in sandboxed frames.
    let storage = Reflect::get(&js_sys::global(), &"sessionStorage".into()).ok()?;
    (storage.is_object()).then(|| storage.unchecked_into())
}

/// `sessionStorage.getItem(key)`; `None` when absent or unavailable.
pub(crate) fn session_get(key: &str) -> Option<String> {
    session_storage()?.get_item(key).ok().flatten()
}

/// `sessionStorage.setItem(key, value)`, if the page may.
pub(crate) fn session_set(key: &str, value: &str) {
    if let Some(storage) = session_storage() {
        let _ = storage.set_item(key, value);
    }
}

/// `pc.restartIce()`.
pub(crate) fn restart_ice(pc: &RtcPeerConnection) -> Result<(), JsValue> {
    pc.unchecked_ref::<PeerConnectionExt>().restart_ice()
}

/// Parameterless `pc.setLocalDescription()`: creates the offer or answer the current state
/// calls for, which is what perfect negotiation relies on.
pub(crate) fn set_local_description_auto(pc: &RtcPeerConnection) -> Promise {
    pc.unchecked_ref::<PeerConnectionExt>()
        .set_local_description()
}

/// `pc.addTrack(track, stream)`, with the exception it may throw (a closed connection, a
/// track already sent) returned rather than unwinding through Rust frames.
pub(crate) fn add_track(
    pc: &RtcPeerConnection,
    track: &MediaStreamTrack,
    stream: &MediaStream,
) -> Result<RtcRtpSender, JsValue> {
    pc.unchecked_ref::<PeerConnectionExt>()
        .add_track(track, stream)
}

/// `sender.getParameters()`.
pub(crate) fn parameters(sender: &RtcRtpSender) -> Result<JsValue, JsValue> {
    sender.unchecked_ref::<SenderExt>().get_parameters()
}

/// `sender.setParameters(params)`.
pub(crate) fn set_parameters(sender: &RtcRtpSender, params: &JsValue) -> Promise {
    sender.unchecked_ref::<SenderExt>().set_parameters(params)
}

/// `obj[key]`, or `undefined` when `obj` is not an object or the read throws.
pub(crate) fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `obj[key]` as a string.
pub(crate) fn get_str(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string()
}

/// `obj[key]` as a number.
pub(crate) fn get_f64(obj: &JsValue, key: &str) -> Option<f64> {
    get(obj, key).as_f64()
}

/// `obj[key] = value` on a plain object (cannot fail on one we created).
pub(crate) fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// Milliseconds on a monotonic clock.
pub(crate) fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// A uniform random number in `[0, 1)`.
pub(crate) fn random() -> f64 {
    js_sys::Math::random()
}

/// Runs `task` on the page's event loop. One body for every task: `spawn_local` is generic,
/// and inlined at each call site it costs about 150 bytes of wasm.
#[inline(never)]
pub(crate) fn spawn(task: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
    wasm_bindgen_futures::spawn_local(task);
}

/// `gloo_timers::callback::Timeout::new` with one body for every timer (the generic one
/// costs about 150 bytes of wasm per call site).
#[inline(never)]
pub(crate) fn timeout(ms: u32, f: Box<dyn FnOnce()>) -> gloo_timers::callback::Timeout {
    gloo_timers::callback::Timeout::new(ms, f)
}

/// `gloo_timers::callback::Interval::new`, the same way.
#[inline(never)]
pub(crate) fn interval(ms: u32, f: Box<dyn FnMut()>) -> gloo_timers::callback::Interval {
    gloo_timers::callback::Interval::new(ms, f)
}

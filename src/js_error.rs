//! Turning thrown JavaScript values into typed errors, without ever panicking.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

use crate::Error;

/// The `name` and `message` of a thrown value (`DOMException`, `Error`, or anything else).
pub(crate) fn exception_parts(value: &JsValue) -> (String, String) {
    let name = string_property(value, "name").unwrap_or_else(|| "Error".to_owned());
    let message = string_property(value, "message")
        .or_else(|| value.as_string())
        .unwrap_or_default();
    (name, message)
}

/// Any other thrown value as an [`Error::Browser`], its message prefixed with what we were
/// doing.
pub(crate) fn browser_error(context: &str, value: &JsValue) -> Error {
    let (name, message) = exception_parts(value);
    Error::Browser {
        name,
        message: format!("{context}: {message}"),
    }
}

/// A rejected `getUserMedia` / `getDisplayMedia` as an [`Error`] with a stable code.
pub(crate) fn media_error(value: &JsValue) -> Error {
    let (name, message) = exception_parts(value);
    let constraint = string_property(value, "constraint");
    Error::from_media_exception(&name, &message, constraint.as_deref())
}

fn string_property(value: &JsValue, key: &str) -> Option<String> {
    if !value.is_object() {
        return None;
    }
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
}

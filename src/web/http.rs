//! JSON over fetch, with typed errors: network failures, server errors with the server's
//! stable code, and malformed answers as protocol errors.

use gloo_timers::callback::Timeout;
use js_sys::{Object, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, AbortSignal, RequestInit, Response};

use crate::js_error::{browser_error, exception_parts};
use crate::web::js;
use crate::Error;

/// How long a request without a deadline of its own may take.
const REQUEST_DEADLINE_MS: u32 = 10_000;

/// The signaling server's base URL.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    base: String,
}

impl Http {
    /// `base` like `https://calls.example.com` (a trailing slash is fine); empty means the
    /// page's own origin.
    pub(crate) fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// `POST path` with a JSON body (a plain JS object); returns the parsed answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<JsValue, Error> {
        self.with_body("POST", path, token, body, signal).await
    }

    /// `method path` with a JSON body.
    pub(crate) async fn with_body(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &JsValue,
        signal: Option<&AbortSignal>,
    ) -> Result<JsValue, Error> {
        let text = JSON::stringify(body)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| Error::Protocol("encoding request".into()))?;
        self.send(method, path, token, Some(text), signal).await
    }

    /// `GET path` returning raw JSON.
    pub(crate) async fn get(
        &self,
        path: &str,
        token: Option<&str>,
        signal: Option<&AbortSignal>,
    ) -> Result<JsValue, Error> {
        self.send("GET", path, token, None, signal).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        signal: Option<&AbortSignal>,
    ) -> Result<JsValue, Error> {
        let window = web_sys::window().ok_or_else(|| Error::Network("no window".into()))?;
        // A plain object: fetch takes a record of headers, and unlike `Headers` it cannot throw.
        let headers = Object::new();
        if body.is_some() {
            js::set(&headers, "content-type", "application/json");
        }
        if let Some(token) = token {
            js::set(&headers, "authorization", String::from("Bearer ") + token);
        }
        let init = RequestInit::new();
        init.set_method(method);
        init.set_headers(&headers);
        if let Some(body) = body {
            init.set_body(&JsValue::from_str(&body));
        }
        // Without a signal of the caller's, a request still ends: one sent on a connection
        // that died upstream would otherwise wait out TCP's retransmissions.
        let deadline = match signal {
            Some(_) => None,
            None => Some(Deadline::after(REQUEST_DEADLINE_MS)?),
        };
        let own = deadline.as_ref().map(Deadline::signal);
        if let Some(signal) = signal.or(own.as_ref()) {
            init.set_signal(Some(signal));
        }
        let url = self.base.clone() + path;
        let response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
            .await
            .map_err(|e| {
                let (name, message) = exception_parts(&e);
                Error::Network(format!("{name}: {message}"))
            })?;
        let response: Response = response
            .dyn_into()
            .map_err(|_| Error::Network("fetch did not return a Response".into()))?;
        let text = JsFuture::from(
            response
                .text()
                .map_err(|e| browser_error("reading the answer", &e))?,
        )
        .await
        .map_err(|e| Error::Network(exception_parts(&e).1))?
        .as_string()
        .unwrap_or_default();
        let json = JSON::parse(&text);
        if !response.ok() {
            return Err(server_error(response.status(), json.ok().as_ref()));
        }
        json.map_err(|_| {
            Error::Protocol(format!("{method} {path}: the server sent malformed JSON"))
        })
    }
}

/// An abort signal that fires by itself after a deadline, or when asked. Dropping it cancels
/// the timer, not the request.
pub(crate) struct Deadline {
    controller: AbortController,
    _timer: Timeout,
}

impl Deadline {
    /// Aborts after `ms`.
    pub(crate) fn after(ms: u32) -> Result<Self, Error> {
        let controller =
            AbortController::new().map_err(|e| browser_error("making an abort signal", &e))?;
        let abort = controller.clone();
        Ok(Self {
            controller,
            _timer: js::timeout(ms, Box::new(move || abort.abort())),
        })
    }

    pub(crate) fn signal(&self) -> AbortSignal {
        self.controller.signal()
    }

    pub(crate) fn abort(&self) {
        self.controller.abort();
    }
}

/// The server's `{error:{code,message}}` (or the Calls proxy's `{errorCode,
/// errorDescription}`), or a code made from the status when a proxy in between answered with
/// something else.
fn server_error(status: u16, json: Option<&JsValue>) -> Error {
    let json = json.cloned().unwrap_or(JsValue::UNDEFINED);
    let error = js::get(&json, "error");
    let code = js::get_str(&error, "code").or_else(|| js::get_str(&json, "errorCode"));
    let message = js::get_str(&error, "message").or_else(|| js::get_str(&json, "errorDescription"));
    match (code, message) {
        (Some(code), message) => Error::Server {
            code,
            message: message.unwrap_or_default(),
        },
        _ => Error::Server {
            code: format!("http_{status}"),
            message: format!("the server answered HTTP {status}"),
        },
    }
}

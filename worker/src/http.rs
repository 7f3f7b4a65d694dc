//! Small pieces every handler uses: settings from the environment, JSON answers, errors in
//! both formats (ours and the Calls API's), and bodies read within a limit.

use worker::{Env, Request, Response, Result};

use crate::config::Config;
use crate::error::ApiError;

/// The settings, from Worker vars and secrets.
pub fn settings(env: &Env) -> std::result::Result<Config, String> {
    Config::from_lookup(|name| {
        env.var(name)
            .map(|v| v.to_string())
            .or_else(|_| env.secret(name).map(|s| s.to_string()))
            .ok()
    })
}

thread_local! {
    /// The front door's settings, read once per isolate (vars and secrets are fixed for its
    /// life): reading some twenty bindings per request is measurable.
    static SETTINGS: std::cell::OnceCell<std::result::Result<Config, String>> =
        const { std::cell::OnceCell::new() };
}

/// [`settings`], read once per isolate.
pub fn cached_settings(env: &Env) -> std::result::Result<Config, String> {
    SETTINGS.with(|cell| cell.get_or_init(|| settings(env)).clone())
}

/// A JSON answer with `status`.
pub fn json_response<T: serde::Serialize>(
    status: u16,
    value: &T,
) -> std::result::Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|_| ApiError::internal())?;
    raw_json(status, body).map_err(|_| ApiError::internal())
}

/// `body` (already JSON) with `status`.
pub fn raw_json(status: u16, body: Vec<u8>) -> Result<Response> {
    let mut response = Response::from_bytes(body)?.with_status(status);
    response
        .headers_mut()
        .set("content-type", "application/json")?;
    Ok(response)
}

/// `{"error":{"code","message"}}` with the code's status and `Retry-After`.
pub fn error_response(error: &ApiError) -> Result<Response> {
    let mut response = raw_json(error.status(), error.body().into_bytes())?;
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .set("retry-after", &seconds.to_string())?;
    }
    Ok(response)
}

/// A Calls API error: `{"errorCode","errorDescription"}`.
pub fn calls_error_response(status: u16, code: &str, description: &str) -> Result<Response> {
    let body = serde_json::json!({
        "errorCode": code,
        "errorDescription": crate::error::bounded(description),
    });
    raw_json(status, body.to_string().into_bytes())
}

/// The request's body, refused past `limit` bytes (by `Content-Length` before reading).
pub async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|n| n.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::body_too_large(limit));
    }
    let body = req
        .bytes()
        .await
        .map_err(|e| ApiError::invalid_input(format!("cannot read body: {e}")))?;
    if body.len() > limit {
        return Err(ApiError::body_too_large(limit));
    }
    Ok(body)
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// `work`'s output, or `None` when it takes longer than `ms` (it is then dropped).
pub async fn timed<T>(ms: u64, work: impl std::future::Future<Output = T>) -> Option<T> {
    let deadline = worker::Delay::from(std::time::Duration::from_millis(ms));
    futures_util::pin_mut!(work);
    match futures_util::future::select(work, deadline).await {
        futures_util::future::Either::Left((done, _)) => Some(done),
        futures_util::future::Either::Right(_) => None,
    }
}

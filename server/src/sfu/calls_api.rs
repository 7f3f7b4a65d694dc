//! The Calls API of the embedded SFU, as Cloudflare documents it, at
//! `/v1/apps/{appId}/sessions/…`: for an app's own backend (or Cloudflare's example clients),
//! authenticated with `Authorization: Bearer <app secret>`. Browsers may call it from any
//! origin, as Cloudflare allows; the secret is what guards it.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use callroom_sfu::calls::{
    CloseTracksRequest, CloseTracksResponse, NewSessionResponse, RenegotiateRequest,
    RenegotiateResponse, SessionStateResponse, TracksRequest, TracksResponse, UpdateTracksRequest,
};
use callroom_sfu::CallsError;
use sha2::{Digest, Sha256};
use tower_http::cors::{Any, CorsLayer};

use super::proxy::{calls_body, CallsFailure};
use super::SfuService;
use crate::rate::TokenBucket;
use crate::state::{now_ms, AppState};

/// Requests per second per session, as Cloudflare allows.
const SESSION_RATE: f64 = 50.0;
/// Most sessions whose request budget is remembered; past it the budgets start afresh.
const MAX_BUDGETS: usize = 65_536;

/// Request budgets per session id.
#[derive(Default)]
pub struct Budgets(Mutex<HashMap<String, TokenBucket>>);

impl Budgets {
    fn take(&self, session: &str, now_ms: i64) -> Result<(), u64> {
        let mut budgets = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if budgets.len() >= MAX_BUDGETS && !budgets.contains_key(session) {
            budgets.clear();
        }
        budgets
            .entry(session.to_owned())
            .or_insert_with(|| TokenBucket::full(SESSION_RATE, now_ms))
            .try_take(now_ms, SESSION_RATE, SESSION_RATE)
    }
}

/// The routes, with CORS open to every origin.
pub fn router() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any);
    Router::new()
        .route("/v1/apps/{app}/sessions/new", post(new_session))
        .route("/v1/apps/{app}/sessions/{sid}", get(session_state))
        .route("/v1/apps/{app}/sessions/{sid}/tracks/new", post(tracks_new))
        .route(
            "/v1/apps/{app}/sessions/{sid}/renegotiate",
            put(renegotiate),
        )
        .route(
            "/v1/apps/{app}/sessions/{sid}/tracks/close",
            put(tracks_close),
        )
        .route(
            "/v1/apps/{app}/sessions/{sid}/tracks/update",
            put(tracks_update),
        )
        .layer(cors)
}

fn failure(status: u16, code: &'static str, description: &str) -> CallsFailure {
    CallsFailure(CallsError {
        status,
        code,
        description: description.to_owned(),
    })
}

/// Equal in time that does not depend on where they differ.
fn same_secret(given: &str, secret: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(secret));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The embedded SFU, if the caller holds this app's secret; and the session's budget.
fn authorized<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    app: &str,
    session: Option<&str>,
) -> Result<&'a SfuService, CallsFailure> {
    let sfu = state
        .sfu
        .as_ref()
        .filter(|s| matches!(s.backend, super::Backend::Local(_)))
        .ok_or_else(|| failure(404, "not_found", "this server embeds no SFU"))?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if app != sfu.app_id || !same_secret(given, &sfu.app_secret) {
        return Err(failure(
            401,
            "unauthorized",
            "unknown app id or wrong app secret",
        ));
    }
    if let Some(session) = session {
        state
            .calls_budgets
            .take(session, now_ms())
            .map_err(|_| failure(429, "rate_limited", "more than 50 requests per second"))?;
    }
    Ok(sfu)
}

async fn new_session(
    State(state): State<AppState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<NewSessionResponse>), CallsFailure> {
    let sfu = authorized(&state, &headers, &app, None)?;
    Ok((StatusCode::CREATED, Json(sfu.new_session().await?)))
}

async fn tracks_new(
    State(state): State<AppState>,
    Path((app, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TracksResponse>, CallsFailure> {
    let sfu = authorized(&state, &headers, &app, Some(&sid))?;
    let request: TracksRequest = calls_body(&state, body).await?;
    Ok(Json(sfu.tracks_new(&sid, request).await?))
}

async fn renegotiate(
    State(state): State<AppState>,
    Path((app, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RenegotiateResponse>, CallsFailure> {
    let sfu = authorized(&state, &headers, &app, Some(&sid))?;
    let request: RenegotiateRequest = calls_body(&state, body).await?;
    Ok(Json(sfu.renegotiate(&sid, request).await?))
}

async fn tracks_close(
    State(state): State<AppState>,
    Path((app, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CloseTracksResponse>, CallsFailure> {
    let sfu = authorized(&state, &headers, &app, Some(&sid))?;
    let request: CloseTracksRequest = calls_body(&state, body).await?;
    Ok(Json(sfu.tracks_close(&sid, request).await?))
}

async fn tracks_update(
    State(state): State<AppState>,
    Path((app, sid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TracksResponse>, CallsFailure> {
    let sfu = authorized(&state, &headers, &app, Some(&sid))?;
    let request: UpdateTracksRequest = calls_body(&state, body).await?;
    Ok(Json(sfu.tracks_update(&sid, request).await?))
}

async fn session_state(
    State(state): State<AppState>,
    Path((app, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<SessionStateResponse>, CallsFailure> {
    let sfu = authorized(&state, &headers, &app, Some(&sid))?;
    Ok(Json(sfu.session_state(&sid).await?))
}

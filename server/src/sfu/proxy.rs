//! The room-scoped Calls proxy: our clients reach the SFU with their peer token, never with the
//! app secret. Paths mirror the Calls API under `/sfu` (`/sfu/sessions/new`,
//! `/sfu/sessions/{sid}/tracks/new`, …) and bodies are Calls bodies, with these rules:
//!
//! - only peers of `sfu` rooms may use it, and each has at most one session, bound to its
//!   token (a new one ends the old one); every other path names that session or is refused;
//! - the server names pushed tracks `<peerId>-<name>`, so nobody publishes under another's
//!   name; `autoDiscover` (names from the SDP) is refused;
//! - a peer may pull (or update) only tracks currently published by members of its own room;
//! - when what a peer publishes changes, its room hears `sfu-tracks` through the long-poll
//!   queue, and a newcomer hears what everyone already publishes;
//! - a peer that leaves or times out has its session ended.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use callroom_protocol::{MessageKind, SfuTracks};
use callroom_sfu::calls::{
    CloseTracksRequest, CloseTracksResponse, NewSessionResponse, RenegotiateRequest,
    RenegotiateResponse, SessionStateResponse, TrackObject, TracksRequest, TracksResponse,
    UpdateTracksRequest,
};
use callroom_sfu::{CallsError, SfuEvent};
use serde::de::DeserializeOwned;

pub use callroom_rules::sfu::{Binding, Published, Registry};

use super::SfuService;
use crate::error::AppError;
use crate::state::{now_ms, AppState};
use crate::store::{Peer, Recipients};

/// Smallest body limit of Calls requests, whatever `--max-body` says.
const CALLS_MAX_BODY: usize = 512 * 1024;

/// A failed proxy or Calls call, answered as Calls answers: `{errorCode, errorDescription}`.
#[derive(Debug)]
pub struct CallsFailure(pub CallsError);

impl From<CallsError> for CallsFailure {
    fn from(err: CallsError) -> Self {
        Self(err)
    }
}

impl axum::response::IntoResponse for CallsFailure {
    fn into_response(mut self) -> axum::response::Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Descriptions can quote the caller's body (a JSON error): a short, escaped prefix.
        self.0.description = crate::error::bounded(&self.0.description);
        (status, Json(self.0.to_response())).into_response()
    }
}

fn refused(status: u16, code: &'static str, description: impl Into<String>) -> CallsFailure {
    CallsFailure(CallsError {
        status,
        code,
        description: description.into(),
    })
}

impl From<AppError> for CallsFailure {
    fn from(err: AppError) -> Self {
        let status = err.status().as_u16();
        let code = err.code().as_str();
        refused(status, code, err.to_string())
    }
}

/// Reads a Calls body: the size limit, then JSON of the expected shape.
pub async fn calls_body<T: DeserializeOwned>(
    state: &AppState,
    body: Body,
) -> Result<T, CallsFailure> {
    // Offers grow with every track pulled (a few KB each): room for a full room's worth.
    let limit = state.config.max_body.max(CALLS_MAX_BODY);
    let bytes = crate::api::read_body(body, limit, state.config.body_timeout).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CallsError::decoding(format!("invalid body: {e}")).into())
}

/// The caller: a peer of an SFU room, on a server with an SFU, within its request budget.
fn member<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<(Peer, &'a SfuService), CallsFailure> {
    let peer = state.authenticate(headers)?;
    let sfu = state.sfu.as_ref().ok_or_else(|| {
        refused(
            404,
            "sfu_unavailable",
            "this server runs no SFU (--sfu off)",
        )
    })?;
    if peer.topology != callroom_protocol::Topology::Sfu {
        return Err(refused(
            403,
            "forbidden",
            format!(
                "room `{}` is a {} room, not an sfu room",
                peer.room,
                peer.topology.as_str()
            ),
        ));
    }
    let config = &state.config;
    state
        .live
        .try_relay(&peer.id, now_ms(), config.relay_rate, config.relay_burst)
        .map_err(AppError::RateLimited)?;
    Ok((peer, sfu))
}

/// The caller, who must hold session `sid`.
fn owner<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    sid: &str,
) -> Result<(Peer, &'a SfuService), CallsFailure> {
    let (peer, sfu) = member(state, headers)?;
    // Another peer's session is 403; one that is gone (closed by the SFU, replaced, or lost
    // in a restart) is Calls' 410 `session_error`, on which clients open a new session.
    match sfu.registry().peer_of(sid) {
        Some(holder) if holder == peer.id => Ok((peer, sfu)),
        Some(_) => Err(refused(403, "forbidden", "that session is not yours")),
        None => Err(CallsError::session_gone("no such session, or it is closed").into()),
    }
}

/// Tells `announcement.peer_id`'s room (but itself) what it publishes now.
fn announce(state: &AppState, room: &str, announcement: &SfuTracks, to: Recipients<'_>) {
    let payload = match serde_json::to_string(announcement) {
        Ok(payload) => payload,
        Err(err) => return tracing::error!(%err, "encoding sfu-tracks"),
    };
    match state
        .store
        .announce(room, to, MessageKind::SfuTracks, &payload, now_ms())
    {
        Ok(wake) => state.live.wake(&wake),
        Err(err) => tracing::error!(%err, "queueing sfu-tracks"),
    }
}

fn announce_to_room(state: &AppState, room: &str, announcement: Option<SfuTracks>) {
    if let Some(a) = announcement {
        let peer = a.peer_id.clone();
        announce(state, room, &a, Recipients::AllBut(&peer));
    }
}

/// A newcomer to an SFU room hears what everyone there publishes. (Announcements are queued
/// while the registry is held, so every recipient hears a peer's lists in the order they
/// were made.)
pub fn welcome(state: &AppState, room: &str, newcomer: &str) {
    let Some(sfu) = &state.sfu else { return };
    let registry = sfu.registry();
    for a in registry.room(room) {
        announce(state, room, &a, Recipients::Only(newcomer));
    }
}

/// A peer left or timed out: end its session.
pub fn forget(state: &AppState, peer: &str) {
    let Some(sfu) = &state.sfu else { return };
    let Some(binding) = sfu.registry().unbind(peer) else {
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Some(sfu) = &state.sfu {
            let mids = binding.tracks.into_iter().map(|t| t.mid).collect();
            sfu.end_session(&binding.session_id, mids).await;
        }
    });
}

/// What the embedded SFU did by itself: a track that went silent, a session that failed.
pub fn on_events(state: &AppState, events: Vec<SfuEvent>) {
    let Some(sfu) = &state.sfu else { return };
    for event in events {
        let (session_id, track) = match &event {
            // A close through the API was announced by its handler; a late event of it must
            // not take back a track pushed again under the same name meanwhile.
            SfuEvent::TrackRemoved {
                reason: callroom_sfu::TrackRemovedReason::Closed,
                ..
            } => continue,
            SfuEvent::TrackRemoved {
                session_id,
                track_name,
                ..
            } => (session_id, Some(track_name)),
            SfuEvent::SessionClosed { session_id, .. } => (session_id, None),
            _ => continue,
        };
        let mut registry = sfu.registry();
        let Some(peer) = registry.peer_of(session_id).map(str::to_owned) else {
            continue;
        };
        let Some(room) = registry.binding(&peer).map(|b| b.room.clone()) else {
            continue;
        };
        let announcement = match track {
            Some(name) => registry.unpublish(&peer, session_id, |t| &t.name == name),
            None => {
                let empty = registry.unpublish(&peer, session_id, |_| true);
                registry.unbind(&peer);
                empty
            }
        };
        announce_to_room(state, &room, announcement);
        drop(registry);
    }
}

/// Refuses unless every track in `tracks` is published now by a member of `room`.
fn ensure_pullable(
    sfu: &SfuService,
    room: &str,
    tracks: &[TrackObject],
) -> Result<(), CallsFailure> {
    sfu.registry()
        .check_pullable(room, tracks)
        .map_err(|description| refused(403, "forbidden", description))
}

/// `POST /sfu/sessions/new`: a session for the caller (ending one it had).
pub async fn new_session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<NewSessionResponse>), CallsFailure> {
    let (peer, sfu) = member(&state, &headers)?;
    let created = sfu.new_session().await?;
    let replaced = {
        let mut registry = sfu.registry();
        let replaced = registry.bind(&peer.id, &peer.room, &created.session_id);
        if replaced.as_ref().is_some_and(|old| !old.tracks.is_empty()) {
            announce_to_room(&state, &peer.room, registry.announcement(&peer.id));
        }
        replaced
    };
    if let Some(old) = replaced {
        let mids = old.tracks.into_iter().map(|t| t.mid).collect();
        sfu.end_session(&old.session_id, mids).await;
    }
    // The peer may have left while the session was being made; then nothing would end it.
    if state.authenticate(&headers).is_err() {
        forget(&state, &peer.id);
        return Err(AppError::Unauthorized.into());
    }
    Ok((StatusCode::CREATED, Json(created)))
}

/// `POST /sfu/sessions/{sid}/tracks/new`: push (tracks the server names) or pull (tracks
/// published in the caller's room).
pub async fn tracks_new(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TracksResponse>, CallsFailure> {
    let (peer, sfu) = owner(&state, &headers, &sid)?;
    let mut request: TracksRequest = calls_body(&state, body).await?;
    let checked = callroom_rules::sfu::check_tracks_new(&mut request, &peer.id)
        .map_err(|description| refused(406, "invalid_params", description))?;
    ensure_pullable(sfu, &peer.room, &checked.remote)?;
    let response = sfu.tracks_new(&sid, request).await?;
    if checked.pushing {
        let published =
            callroom_rules::sfu::pushed(&response, checked.offer.as_deref(), &checked.kinds);
        let mut registry = sfu.registry();
        let announcement = registry.publish(&peer.id, &sid, published);
        announce_to_room(&state, &peer.room, announcement);
    }
    Ok(Json(response))
}

/// `PUT /sfu/sessions/{sid}/renegotiate`.
pub async fn renegotiate(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RenegotiateResponse>, CallsFailure> {
    let (_, sfu) = owner(&state, &headers, &sid)?;
    let request: RenegotiateRequest = calls_body(&state, body).await?;
    Ok(Json(sfu.renegotiate(&sid, request).await?))
}

/// `PUT /sfu/sessions/{sid}/tracks/close`: the room hears of closed pushes.
pub async fn tracks_close(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CloseTracksResponse>, CallsFailure> {
    let (peer, sfu) = owner(&state, &headers, &sid)?;
    let request: CloseTracksRequest = calls_body(&state, body).await?;
    let response = sfu.tracks_close(&sid, request).await?;
    let closed: Vec<String> = response
        .tracks
        .iter()
        .filter(|t| t.error_code.is_none())
        .map(|t| t.mid.clone())
        .collect();
    let mut registry = sfu.registry();
    let announcement = registry.unpublish(&peer.id, &sid, |t| closed.contains(&t.mid));
    announce_to_room(&state, &peer.room, announcement);
    drop(registry);
    Ok(Json(response))
}

/// `PUT /sfu/sessions/{sid}/tracks/update`: only for tracks published in the caller's room.
pub async fn tracks_update(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TracksResponse>, CallsFailure> {
    let (peer, sfu) = owner(&state, &headers, &sid)?;
    let request: UpdateTracksRequest = calls_body(&state, body).await?;
    ensure_pullable(sfu, &peer.room, &request.tracks)?;
    Ok(Json(sfu.tracks_update(&sid, request).await?))
}

/// `GET /sfu/sessions/{sid}`.
pub async fn session_state(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SessionStateResponse>, CallsFailure> {
    let (_, sfu) = owner(&state, &headers, &sid)?;
    Ok(Json(sfu.session_state(&sid).await?))
}

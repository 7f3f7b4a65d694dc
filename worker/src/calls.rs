//! The room-scoped Calls proxy, as callroom-server's (`server/src/sfu/proxy.rs`): our clients
//! reach the Calls API with their peer token, never the app secret. Each peer of an `sfu` room
//! holds at most one session; pushed tracks are named `<peerId>-<label>`; a peer may pull only
//! tracks published in its room; the room hears `sfu-tracks` when what a peer publishes
//! changes. The API behind it is Cloudflare's, or any Calls-compatible SFU
//! (`CALLROOM_CALLS_API_BASE`, such as callroom-server's embedded one).

use callroom_protocol::calls::{
    CloseTrackObject, CloseTracksRequest, CloseTracksResponse, NewSessionResponse,
    RenegotiateResponse, SessionStateResponse, TrackObject, TracksRequest, TracksResponse,
    UpdateTracksRequest,
};
use callroom_protocol::{IceServer, MessageKind, SfuTracks, Topology};
use callroom_rules::sfu::Binding;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response, Result};

use crate::config::{Calls, Config};
use crate::entry::CALLS_MAX_BODY;
use crate::error::ApiError;
use crate::http::{calls_error_response, raw_json, read_body, timed};
use crate::room::{Peer, Room};

/// How long a Calls API call may take, as callroom-server's client allows.
const CALLS_TIMEOUT_MS: u64 = 10_000;
/// How long Cloudflare's TURN API may take.
const TURN_TIMEOUT_MS: u64 = 5_000;

/// A refusal in the Calls API's format.
struct Refused {
    status: u16,
    code: String,
    description: String,
}

fn refused(status: u16, code: &str, description: impl Into<String>) -> Refused {
    Refused {
        status,
        code: code.to_owned(),
        description: description.into(),
    }
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        refused(error.status(), error.code.as_str(), error.message)
    }
}

/// Serves `/sfu/...` for the room.
pub async fn handle(
    room: &Room,
    config: &Config,
    req: &mut Request,
    path: &str,
) -> Result<Response> {
    match route(room, config, req, path).await {
        Ok(response) => Ok(response),
        Err(r) => calls_error_response(r.status, &r.code, &r.description),
    }
}

async fn route(
    room: &Room,
    config: &Config,
    req: &mut Request,
    path: &str,
) -> std::result::Result<Response, Refused> {
    let (peer, calls) = member(room, config, req)?;
    let rest = path.strip_prefix("/sfu/sessions/").unwrap_or_default();
    let method = req.method();
    if rest == "new" && method == Method::Post {
        return new_session(room, &peer, &calls, req).await;
    }
    let (sid, action) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_sid = !sid.is_empty()
        && sid.len() <= 128
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_sid {
        return Err(refused(404, "not_found", "no such Calls endpoint"));
    }
    // Another peer's session is 403; one that is gone is Calls' 410, on which clients open a
    // new session.
    match room.live.borrow().sfu.peer_of(sid) {
        Some(holder) if holder == peer.id => {}
        Some(_) => return Err(refused(403, "forbidden", "that session is not yours")),
        None => {
            return Err(refused(
                410,
                "session_error",
                "no such session, or it is closed",
            ))
        }
    }
    let target = format!("sessions/{sid}/{action}");
    let target = target.trim_end_matches('/');
    match (action, method) {
        ("tracks/new", Method::Post) => tracks_new(room, config, &peer, &calls, req, sid).await,
        ("renegotiate", Method::Put) => {
            let body = body_of(config, req).await?;
            let (status, answer, _) =
                call::<RenegotiateResponse>(&calls, Method::Put, target, Some(body)).await?;
            respond(status, answer)
        }
        ("tracks/close", Method::Put) => {
            let body = body_of(config, req).await?;
            let (status, answer, closed) =
                call::<CloseTracksResponse>(&calls, Method::Put, target, Some(body)).await?;
            let mids: Vec<String> = closed
                .tracks
                .iter()
                .filter(|t| t.error_code.is_none())
                .map(|t| t.mid.clone())
                .collect();
            let news = room
                .live
                .borrow_mut()
                .sfu
                .unpublish(&peer.id, sid, |t| mids.contains(&t.mid));
            tell_room(room, news)?;
            respond(status, answer)
        }
        ("tracks/update", Method::Put) => {
            let body = body_of(config, req).await?;
            let request: UpdateTracksRequest = decode(&body)?;
            ensure_pullable(room, &peer, &request.tracks)?;
            // What was checked is what is sent.
            let body = serde_json::to_vec(&request).map_err(|_| ApiError::internal())?;
            let (status, answer, _) =
                call::<TracksResponse>(&calls, Method::Put, target, Some(body)).await?;
            respond(status, answer)
        }
        ("", Method::Get) => {
            let (status, answer, _) =
                call::<SessionStateResponse>(&calls, Method::Get, target, None).await?;
            respond(status, answer)
        }
        _ => Err(refused(
            405,
            "method_not_allowed",
            "method not allowed on this endpoint",
        )),
    }
}

/// The caller: a peer of this `sfu` room, on a deployment with a Calls app, within its budget.
fn member(
    room: &Room,
    config: &Config,
    req: &Request,
) -> std::result::Result<(Peer, Calls), Refused> {
    let peer = room.authenticate(req)?;
    let calls = config.calls.clone().ok_or_else(|| {
        refused(
            404,
            "sfu_unavailable",
            "this server runs no SFU (no CALLROOM_CALLS_APP_ID)",
        )
    })?;
    if peer.topology != Topology::Sfu {
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
    room.spend_relay(config, &peer.id)?;
    Ok((peer, calls))
}

/// A Calls body within the proxy's limit: the larger of `CALLROOM_MAX_BODY` and 512 KiB
/// (offers grow with every track pulled), as callroom-server's.
async fn body_of(config: &Config, req: &mut Request) -> std::result::Result<Vec<u8>, Refused> {
    Ok(read_body(req, config.max_body.max(CALLS_MAX_BODY)).await?)
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> std::result::Result<T, Refused> {
    serde_json::from_slice(body)
        .map_err(|e| refused(400, "decoding_error", format!("invalid body: {e}")))
}

fn respond(status: u16, body: Vec<u8>) -> std::result::Result<Response, Refused> {
    raw_json(status, body).map_err(|_| ApiError::internal().into())
}

/// Calls `calls`' API: the status and body it answered with.
async fn forward(
    calls: &Calls,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> std::result::Result<(u16, Vec<u8>), Refused> {
    let unreachable = |e: worker::Error| {
        worker::console_warn!("Calls API: {e}");
        refused(
            503,
            "retryable_transient_error",
            "the Calls API could not be reached",
        )
    };
    let headers = Headers::new();
    headers
        .set("authorization", &format!("Bearer {}", calls.app_secret))
        .map_err(unreachable)?;
    headers
        .set("content-type", "application/json")
        .map_err(unreachable)?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(body) = body {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let url = format!(
        "{}/apps/{}/{path}",
        calls.base.trim_end_matches('/'),
        calls.app_id
    );
    let request = Request::new_with_init(&url, &init).map_err(unreachable)?;
    let answered = timed(CALLS_TIMEOUT_MS, async {
        let mut response = Fetch::Request(request).send().await?;
        let bytes = response.bytes().await?;
        Ok((response.status_code(), bytes))
    })
    .await;
    match answered {
        Some(answer) => answer.map_err(unreachable),
        None => Err(refused(
            503,
            "retryable_transient_error",
            "the Calls API did not answer in time",
        )),
    }
}

/// Like [`forward`], a success decoded as `T`; a failure as callroom-server passes it on
/// (`callroom_rules::sfu::upstream_failure`).
async fn call<T: serde::de::DeserializeOwned>(
    calls: &Calls,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> std::result::Result<(u16, Vec<u8>, T), Refused> {
    let (status, bytes) = forward(calls, method, path, body).await?;
    if !(200..300).contains(&status) {
        if matches!(status, 401 | 403) {
            worker::console_error!("the Calls API refused this server's credentials ({status})");
        }
        let (status, code, description) = callroom_rules::sfu::upstream_failure(status, &bytes);
        return Err(refused(status, code, description));
    }
    let value = serde_json::from_slice(&bytes).map_err(|_| {
        refused(
            500,
            "internal_error",
            "the Calls API answered an unexpected shape",
        )
    })?;
    Ok((status, bytes, value))
}

fn tell_room(room: &Room, news: Option<SfuTracks>) -> std::result::Result<(), Refused> {
    if let Some(news) = news {
        let payload = serde_json::to_string(&news).map_err(|_| ApiError::internal())?;
        room.announce(MessageKind::SfuTracks, &payload, Some(&news.peer_id), None)?;
    }
    Ok(())
}

/// A newcomer to an SFU room hears what everyone there publishes.
pub fn welcome(room: &Room, room_id: &str, newcomer: &str) -> std::result::Result<(), ApiError> {
    let everyone = room.live.borrow().sfu.room(room_id);
    for news in everyone {
        let payload = serde_json::to_string(&news).map_err(|_| ApiError::internal())?;
        room.announce(MessageKind::SfuTracks, &payload, None, Some(newcomer))?;
    }
    Ok(())
}

/// Ends a session the proxy no longer binds (its peer left, timed out, or opened another):
/// its tracks are closed, forced.
pub async fn end_session(calls: Calls, binding: Binding) {
    if binding.tracks.is_empty() {
        return;
    }
    let request = CloseTracksRequest {
        tracks: binding
            .tracks
            .into_iter()
            .map(|t| CloseTrackObject {
                mid: t.mid,
                ..Default::default()
            })
            .collect(),
        force: true,
        ..Default::default()
    };
    let Ok(body) = serde_json::to_vec(&request) else {
        return;
    };
    let path = format!("sessions/{}/tracks/close", binding.session_id);
    if let Err(r) = forward(&calls, Method::Put, &path, Some(body)).await {
        worker::console_warn!("ending a Calls session: {}", r.description);
    }
}

async fn new_session(
    room: &Room,
    peer: &Peer,
    calls: &Calls,
    req: &Request,
) -> std::result::Result<Response, Refused> {
    let (_, bytes, created) =
        call::<NewSessionResponse>(calls, Method::Post, "sessions/new", Some(b"{}".to_vec()))
            .await?;
    let replaced = {
        let mut live = room.live.borrow_mut();
        let replaced = live.sfu.bind(&peer.id, &peer.room, &created.session_id);
        let news = replaced
            .as_ref()
            .filter(|old| !old.tracks.is_empty())
            .and_then(|_| live.sfu.announcement(&peer.id));
        drop(live);
        tell_room(room, news)?;
        replaced
    };
    if let Some(old) = replaced {
        end_session(calls.clone(), old).await;
    }
    // The peer may have left while the session was being made; then nothing would end it.
    if room.authenticate(req).is_err() {
        let binding = room.live.borrow_mut().sfu.unbind(&peer.id);
        if let Some(binding) = binding {
            end_session(calls.clone(), binding).await;
        }
        return Err(ApiError::unauthorized().into());
    }
    respond(201, bytes)
}

fn ensure_pullable(
    room: &Room,
    peer: &Peer,
    tracks: &[TrackObject],
) -> std::result::Result<(), Refused> {
    room.live
        .borrow()
        .sfu
        .check_pullable(&peer.room, tracks)
        .map_err(|description| refused(403, "forbidden", description))
}

async fn tracks_new(
    room: &Room,
    config: &Config,
    peer: &Peer,
    calls: &Calls,
    req: &mut Request,
    sid: &str,
) -> std::result::Result<Response, Refused> {
    let body = body_of(config, req).await?;
    let mut request: TracksRequest = decode(&body)?;
    let checked = callroom_rules::sfu::check_tracks_new(&mut request, &peer.id)
        .map_err(|description| refused(406, "invalid_params", description))?;
    ensure_pullable(room, peer, &checked.remote)?;
    let body = serde_json::to_vec(&request).map_err(|_| ApiError::internal())?;
    let path = format!("sessions/{sid}/tracks/new");
    let (status, bytes, response) =
        call::<TracksResponse>(calls, Method::Post, &path, Some(body)).await?;
    if checked.pushing {
        let published =
            callroom_rules::sfu::pushed(&response, checked.offer.as_deref(), &checked.kinds);
        let news = room.live.borrow_mut().sfu.publish(&peer.id, sid, published);
        tell_room(room, news)?;
    }
    respond(status, bytes)
}

/// Cloudflare's TURN API: ICE servers with credentials for `ttl` seconds.
pub async fn cloudflare_turn(
    config: &Config,
    key_id: &str,
    api_token: &str,
) -> std::result::Result<Vec<IceServer>, String> {
    let url = format!(
        "{}/turn/keys/{key_id}/credentials/generate-ice-servers",
        config.cf_api_base.trim_end_matches('/')
    );
    let headers = Headers::new();
    let fail = |e: worker::Error| format!("Cloudflare TURN request: {e}");
    headers
        .set("authorization", &format!("Bearer {api_token}"))
        .map_err(fail)?;
    headers
        .set("content-type", "application/json")
        .map_err(fail)?;
    let mut init = RequestInit::new();
    let body = serde_json::json!({ "ttl": config.turn_ttl_s }).to_string();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(&url, &init).map_err(fail)?;
    let answered = timed(TURN_TIMEOUT_MS, async {
        let mut response = Fetch::Request(request).send().await.map_err(fail)?;
        let status = response.status_code();
        if !(200..300).contains(&status) {
            return Err(format!("Cloudflare TURN answered {status}"));
        }
        let body = response.bytes().await.map_err(fail)?;
        callroom_rules::turn_answer(&body)
    })
    .await;
    answered.unwrap_or_else(|| Err("Cloudflare TURN did not answer in time".into()))
}

//! The HTTP API: `POST /signaling`, `GET /messages`, `POST /turn-credentials`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Extension;
use axum::Json;
use callroom_protocol::{
    is_valid_relay_type, is_valid_room_id, JoinRequest, JoinResponse, LeaveReason, Message,
    MessagesResponse, RelayRequest, Role, Topology, TurnCredentials, MAX_WAIT_MS, NAME_MAX_LEN,
    RESERVED_TYPES,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::ids;
use crate::state::{now_ms, AppState};
use crate::store::{Backlog, HostClaim};

/// How long a replaced host's token is answered with `replaced` rather than `unauthorized`.
const REPLACED_MEMORY_MS: i64 = 10 * 60 * 1000;

/// `POST /signaling`: join, leave, or relay a message to a peer of the same room.
pub async fn signaling(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, AppError> {
    let bytes = read_body(body, state.config.max_body, state.config.body_timeout).await?;
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    let Kind { kind } = parse_json(&bytes)?;
    match kind.as_str() {
        "join" => {
            // Checked first, so an unknown topology is `invalid_input` rather than the generic
            // `invalid_json` of a body that does not match the join shape.
            #[derive(Deserialize)]
            struct Requested {
                topology: Option<String>,
            }
            let Requested { topology } = parse_json(&bytes)?;
            if let Some(topology) = topology.filter(|t| Topology::parse(t).is_none()) {
                return Err(AppError::InvalidInput(format!(
                    "unknown topology `{}`; use \"mesh\", \"hub\" or \"sfu\"",
                    truncate(&topology, 20)
                )));
            }
            let client = client_address(&state, connect.map(|c| c.0 .0), &headers);
            join(&state, client, parse_json(&bytes)?).await
        }
        "leave" => {
            let peer = state.authenticate(&headers)?;
            let wake = state.store.leave(&peer.id, LeaveReason::Left, now_ms())?;
            state.live.forget(&peer.id);
            crate::sfu::proxy::forget(&state, &peer.id);
            state.live.wake(&wake);
            tracing::info!(peer = %peer.id, room = %peer.room, "peer left");
            Ok(Json(json!({ "ok": true })))
        }
        kind if is_valid_relay_type(kind) => {
            let peer = state.authenticate(&headers)?;
            let request: RelayRequest<Box<RawValue>> = parse_json(&bytes)?;
            if !ids::is_peer_id_shaped(&request.to) {
                // Echo a short, escaped prefix only: the field is the caller's, of any size.
                return Err(AppError::PeerNotFound(
                    truncate(&request.to, 20).escape_default().to_string(),
                ));
            }
            if request.to == peer.id {
                return Err(AppError::InvalidInput("a peer cannot message itself".into()));
            }
            let config = &state.config;
            state
                .live
                .try_relay(&peer.id, now_ms(), config.relay_rate, config.relay_burst)
                .map_err(AppError::RateLimited)?;
            if kind == "peer-reset" {
                // Each makes the recipient rebuild its connection to us.
                state
                    .live
                    .try_reset(&peer.id, &request.to, now_ms())
                    .map_err(AppError::RateLimited)?;
            }
            let wake = state
                .store
                .relay(
                    &peer,
                    &request.to,
                    kind,
                    request.payload.get(),
                    Backlog {
                        acknowledged: state.live.acknowledged(&request.to),
                        max: config.max_backlog,
                        max_bytes: config.max_backlog_bytes,
                        max_storage: config.max_storage,
                    },
                    now_ms(),
                )?;
            state.live.wake(&[wake]);
            Ok(Json(json!({ "ok": true })))
        }
        kind if RESERVED_TYPES.contains(&kind) => Err(AppError::UnknownType(format!(
            "{kind}` is sent by the server only; clients send join, leave or a relay type like `offer"
        ))),
        other => Err(AppError::UnknownType(truncate(other, 40))),
    }
}

/// Who is joining, for the join limits: the socket's peer, or behind a trusted proxy, the
/// address it put last in `X-Forwarded-For`.
fn client_address(
    state: &AppState,
    socket: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    if state.config.trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|a| parse_forwarded(a.trim()));
        if forwarded.is_some() {
            return forwarded;
        }
    }
    socket.map(|s| s.ip())
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or
/// `[2001:db8::1]:5678`.
fn parse_forwarded(text: &str) -> Option<IpAddr> {
    text.parse()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .ok()
        })
}

async fn join(
    state: &AppState,
    client: Option<IpAddr>,
    request: JoinRequest,
) -> Result<Json<Value>, AppError> {
    if !is_valid_room_id(&request.room) {
        return Err(AppError::InvalidInput(
            "room must match [A-Za-z0-9_-]{1,64}".into(),
        ));
    }
    let name = request.name.trim();
    if !callroom_rules::is_valid_name(name) {
        return Err(AppError::InvalidInput(format!(
            "name must be at most {NAME_MAX_LEN} characters, without control, bidi-override or zero-width characters"
        )));
    }
    let topology = request.topology.unwrap_or(request.role.topology());
    if topology == Topology::Sfu && state.sfu.is_none() {
        return Err(AppError::InvalidInput(
            "this server runs no SFU (--sfu off): sfu rooms are not available".into(),
        ));
    }
    if !topology.admits(request.role) {
        return Err(AppError::InvalidInput(format!(
            "role `{}` cannot join a {} room",
            request.role.as_str(),
            topology.as_str()
        )));
    }
    let ticket = match &state.config.ticket_secret {
        Some(secret) => Some(crate::ticket::verify(
            secret,
            request.ticket.as_deref(),
            &request.room,
            request.role,
            unix_secs(),
            state.config.max_ticket_lifetime.as_secs(),
        )?),
        None => None,
    };
    // Charged only now, for a join that could succeed: junk joins (a bad name, a forged
    // ticket) cannot spend a room's budget and lock its real members out.
    state
        .live
        .try_join(client, &request.room, state.config.join_limits(), now_ms())
        .map_err(AppError::RateLimited)?;
    let room = request.room.clone();
    let result = admit(
        state,
        request,
        ticket.and_then(|t| t.jti.map(|j| (j, t.exp))),
    )
    .await;
    if result.is_err() {
        // Refused after all (room full, seat taken): the room's budget is not spent.
        state
            .live
            .refund_room_join(&room, state.config.join_limits(), now_ms());
    }
    result
}

async fn admit(
    state: &AppState,
    request: JoinRequest,
    jti: Option<(String, u64)>,
) -> Result<Json<Value>, AppError> {
    let name = request.name.trim();
    let topology = request.topology.unwrap_or(request.role.topology());
    if let Some((jti, exp)) = &jti {
        // Remembered past the ticket's expiry by the leeway a ticket is checked with.
        let until = exp
            .saturating_add(crate::ticket::LEEWAY_SECS)
            .saturating_mul(1000);
        let until = i64::try_from(until).unwrap_or(i64::MAX);
        if !state.store.use_ticket(&ids::hash_token(jti), until)? {
            return Err(AppError::InvalidTicket("ticket was used already".into()));
        }
    }
    let peer_id = ids::new_peer_id()?;
    let token = ids::new_token()?;
    // Joining is the first heartbeat (recorded before the commit, so a sweep in between
    // cannot take the new peer for a silent one); until the first poll it counts from here.
    state.live.touch(&peer_id, now_ms());
    // A hub host gets a key that proves, on a later join, that it may take the seat back (the
    // one it proved the seat with, if it did: see `HostClaim`).
    let reclaim_key = match request.role {
        Role::Host => Some(ids::new_token()?),
        _ => None,
    };
    let new_key_hash = reclaim_key
        .as_deref()
        .map(ids::hash_token)
        .unwrap_or_default();
    let key_hash = request.reclaim.as_deref().map(ids::hash_token);
    let host = HostClaim {
        // A verified ticket names this role: the app's backend vouches for the host.
        ticket: state.config.ticket_secret.is_some(),
        key_hash: key_hash.as_ref().map(|k| k.as_slice()),
        new_key_hash: &new_key_hash,
        // Stored with the takeover, before the old host's pending poll wakes, so that poll
        // (and every later call, after a restart too) learns it was replaced and does not
        // rejoin and replace us back.
        replaced_until: now_ms() + REPLACED_MEMORY_MS,
    };
    let joined = state
        .store
        .join(
            &peer_id,
            &ids::hash_token(&token),
            &request.room,
            topology,
            request.role,
            name,
            state.config.room_capacity,
            host,
            now_ms(),
        )
        .inspect_err(|_| state.live.forget(&peer_id))?;
    if let Some(old) = joined.replaced {
        state.live.forget(&old.peer_id);
        tracing::info!(room = %request.room, old_host = %old.peer_id, new_host = %peer_id, "hub host reset");
    }
    state.live.wake(&joined.wake);
    if joined.topology == Topology::Sfu {
        crate::sfu::proxy::welcome(state, &request.room, &peer_id);
    }
    tracing::info!(peer = %peer_id, room = %request.room, role = request.role.as_str(), "peer joined");

    let ice_servers = match state.turn.credentials(&peer_id, unix_secs()).await {
        Ok(credentials) => credentials.ice_servers,
        Err(err) => {
            // A join must not fail because TURN is down; loopback and LAN need none.
            tracing::warn!(%err, "joining without TURN credentials");
            state.turn.static_servers()
        }
    };
    let response = JoinResponse {
        peer_id,
        token,
        room: request.room,
        topology: joined.topology,
        role: request.role,
        peers: joined.others,
        cursor: 0,
        ice_servers,
        reclaim_key: if joined.key_kept {
            request.reclaim
        } else {
            reclaim_key
        },
        capacity: state.config.room_capacity,
    };
    to_json_value(&response).map(Json)
}

/// Query of `GET /messages`.
#[derive(Debug, Deserialize)]
pub struct PollQuery {
    /// Last seq the client has processed; everything up to it is acknowledged.
    #[serde(default)]
    since: u64,
    /// How long to wait for a message, in milliseconds (at most 30 000).
    #[serde(default)]
    wait: u64,
}

/// `GET /messages?since=&wait=`: messages after `since`, waiting up to `wait` ms for one.
pub async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Json<MessagesResponse<Box<RawValue>>>, AppError> {
    let peer = state.authenticate(&headers)?;
    let Query(query) = query.map_err(|e| {
        AppError::InvalidInput(format!(
            "query must be ?since=<number>&wait=<ms>: {}",
            e.body_text()
        ))
    })?;
    let wait = Duration::from_millis(query.wait.min(MAX_WAIT_MS));
    let _slot = state
        .live
        .take_poll_slot(&peer.id, state.config.max_polls_per_peer)
        .ok_or(AppError::TooManyPolls(state.config.max_polls_per_peer))?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut shutdown = state.shutdown_signal();
    // Subscribed before the first read, so a message stored in between still wakes us.
    let mut wake = state.live.subscribe(&peer.id);
    let mut first = true;
    let mut resubscribe = false;
    loop {
        let acknowledged = state.live.acknowledged(&peer.id).unwrap_or(0);
        let Some(batch) = state.store.read(&peer.id, query.since, acknowledged)? else {
            // Removed meanwhile (left, timed out, replaced): say which.
            return Err(state.gone(&headers));
        };
        if first {
            // Only now is `since` known to be a cursor this peer was really given.
            state.live.acknowledge(&peer.id, query.since);
            first = false;
        }
        if resubscribe {
            wake = state.live.subscribe(&peer.id);
            resubscribe = false;
        }
        state.live.touch(&peer.id, now_ms());
        let done =
            !batch.is_empty() || tokio::time::Instant::now() >= deadline || *shutdown.borrow();
        if done {
            let cursor = batch.last().map_or(query.since, |m| m.seq);
            let messages = batch
                .into_iter()
                .map(|m| {
                    Ok(Message {
                        seq: m.seq,
                        kind: m.kind,
                        from: m.from,
                        payload: RawValue::from_string(m.payload)
                            .map_err(|e| AppError::Internal(format!("stored payload: {e}")))?,
                    })
                })
                .collect::<Result<Vec<_>, AppError>>()?;
            return Ok(Json(MessagesResponse { messages, cursor }));
        }
        tokio::select! {
            changed = wake.changed() => {
                // Closed: the peer was removed, and the next read says so. Only if it is
                // still there is a new wake-up needed (and created).
                resubscribe = changed.is_err();
            }
            () = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// `POST /turn-credentials`: ICE servers for the authenticated peer.
pub async fn turn_credentials(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TurnCredentials>, AppError> {
    let peer = state.authenticate(&headers)?;
    // Minting credentials may call out to a provider: it shares the relay budget.
    let config = &state.config;
    state
        .live
        .try_relay(&peer.id, now_ms(), config.relay_rate, config.relay_burst)
        .map_err(AppError::RateLimited)?;
    state
        .turn
        .credentials(&peer.id, unix_secs())
        .await
        .map(Json)
}

/// `GET /healthz`.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    state.store.room_peers("")?;
    Ok(Json(
        json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }),
    ))
}

/// `GET /livez`: answers without touching storage. Clients probe it under a held long-poll to
/// learn whether their connection to the server still carries anything; a busy database must
/// not make every client give up its poll at once.
pub async fn livez() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// JSON 405 for a known API path called with the wrong method.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Reads a body of at most `limit` bytes, arriving within `timeout`.
pub(crate) async fn read_body(
    body: Body,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, AppError> {
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await;
    let Ok(read) = read else {
        return Err(AppError::RequestTimeout(timeout.as_secs()));
    };
    read.map_err(|err| {
        let too_large = std::error::Error::source(&err)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || err.to_string().contains("length limit");
        if too_large {
            AppError::BodyTooLarge(limit)
        } else {
            AppError::InvalidInput(format!("cannot read body: {err}"))
        }
    })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| AppError::InvalidJson(e.to_string()))
}

fn to_json_value<T: serde::Serialize>(value: &T) -> Result<Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(format!("encoding response: {e}")))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn unix_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}

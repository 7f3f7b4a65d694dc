//! A room's Durable Object: its peers, their tokens (hashed), per-recipient queues with
//! gapless `seq`, the hub's host seat, used tickets and replaced hosts, all in the object's
//! own SQLite storage; long-polls held here and woken by the relay that fills them; silent
//! peers and old messages swept by the object's alarm.
//!
//! Every request runs its SQL with no `await` in between, so it commits as one; checks come
//! before writes, so a refused request writes nothing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use callroom_protocol::{
    ErrorCode, HostReset, IceServer, JoinResponse, LeaveReason, MessageKind, PeerInfo, PeerLeft,
    RelayRequest, Role, Topology, TurnCredentials, MAX_WAIT_MS, NAME_MAX_LEN,
};
use callroom_rules::rate::{try_reset, TokenBucket};
use callroom_rules::sfu::Registry;
use futures_channel::oneshot;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use worker::{
    durable_object, wasm_bindgen, Delay, Env, Method, Request, Response, Result, SqlStorageValue,
    State,
};

use crate::config::Config;
use crate::error::ApiError;
use crate::http::{error_response, json_response, now_ms, settings};
use crate::signal::Kind;
use crate::{ids, signal, ticket};

/// How long a replaced host's token is answered with `replaced` rather than `unauthorized`.
const REPLACED_MEMORY_MS: i64 = 10 * 60 * 1000;
/// Messages returned by one poll at most.
const POLL_BATCH: u32 = 256;
/// How long a failed call to the TURN provider is remembered, ms.
const TURN_FAILURE_BACKOFF_MS: i64 = 30_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS room (
    k             INTEGER PRIMARY KEY CHECK (k = 0),
    id            TEXT NOT NULL,
    topology      TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    host_key_hash TEXT
);
CREATE TABLE IF NOT EXISTS peers (
    id         TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    joined_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    recipient  TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    sender     TEXT,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (recipient, seq)
);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages(created_at);
CREATE TABLE IF NOT EXISTS replaced_tokens (
    token_hash TEXT PRIMARY KEY,
    until      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS used_tickets (
    jti_hash   TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
";

/// In-memory state: none of it needs to survive a restart (peers stored before one get a
/// full timeout from it to poll again), as in callroom-server's `live`.
#[derive(Default)]
pub(crate) struct Live {
    /// Pending long-polls per peer, woken when a message is queued for it.
    waiters: HashMap<String, Vec<oneshot::Sender<()>>>,
    polls: HashMap<String, u32>,
    last_seen: HashMap<String, i64>,
    acked: HashMap<String, u64>,
    relay: HashMap<String, TokenBucket>,
    resets: HashMap<String, Vec<(String, TokenBucket)>>,
    joins: Option<TokenBucket>,
    /// Calls sessions and published tracks of this room's peers.
    pub(crate) sfu: Registry,
    turn: Option<(i64, Minted)>,
    /// Joins waiting for the TURN fetch in flight, if one is: one fetch serves them all.
    turn_waiters: Option<Vec<oneshot::Sender<Minted>>>,
}

/// What the TURN provider answered: its servers, or why not.
type Minted = std::result::Result<Vec<IceServer>, String>;

/// The TURN fetch in flight; dropped (also when its request is cancelled), it lets go of the
/// joins waiting for it, which then see a failure rather than wait forever.
struct TurnFetch(Rc<RefCell<Live>>);

impl TurnFetch {
    fn finish(self, result: &Minted, now: i64) {
        let waiters = {
            let mut live = self.0.borrow_mut();
            live.turn = Some((now, result.clone()));
            live.turn_waiters.take()
        };
        for waiter in waiters.unwrap_or_default() {
            let _ = waiter.send(result.clone());
        }
    }
}

impl Drop for TurnFetch {
    fn drop(&mut self) {
        self.0.borrow_mut().turn_waiters.take();
    }
}

/// An authenticated peer.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) id: String,
    pub(crate) room: String,
    pub(crate) role: Role,
    pub(crate) topology: Topology,
    /// Its token's hash, to tell a later call why the token stopped working.
    token_hash: String,
}

/// One room.
#[durable_object]
pub struct Room {
    state: State,
    /// The settings, read once per object: vars and secrets do not change while it lives.
    config: std::result::Result<Config, String>,
    pub(crate) live: Rc<RefCell<Live>>,
    started_ms: i64,
    /// The tables exist. They are made by the first join (or ticket), not by any request: a
    /// made-up token for a room nobody joined must not leave storage behind.
    has_schema: std::cell::Cell<bool>,
}

impl worker::DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            config: settings(&env),
            live: Rc::default(),
            started_ms: now_ms(),
            has_schema: std::cell::Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let config = match &self.config {
            Ok(config) => config,
            Err(message) => {
                worker::console_error!("configuration: {message}");
                return error_response(&ApiError::internal());
            }
        };
        let path = req.path();
        if path.starts_with("/sfu/") {
            return crate::calls::handle(self, config, &mut req, &path).await;
        }
        let result = match (path.as_str(), req.method()) {
            ("/signaling", Method::Post) => self.signaling(config, &mut req).await,
            ("/messages", Method::Get) => self.messages(config, &req).await,
            ("/turn-credentials", Method::Post) => self.turn_credentials(config, &req).await,
            _ => Err(ApiError::method_not_allowed()),
        };
        match result {
            Ok(response) => Ok(response),
            Err(error) => error_response(&error),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let config = self
            .config
            .as_ref()
            .map_err(|e| worker::Error::RustError(e.clone()))?;
        // A storage failure here is an error, so the runtime retries the alarm.
        if !self
            .exists()
            .map_err(|e| worker::Error::RustError(e.message))?
        {
            return Response::ok("nothing to sweep");
        }
        if let Err(err) = self.sweep(config).await {
            // The next sweep still comes: a failed one must not end presence for the room.
            worker::console_error!("sweep: {}", err.message);
            self.state
                .storage()
                .set_alarm(Duration::from_millis(
                    u64::try_from(config.sweep_interval_ms()).unwrap_or(5_000),
                ))
                .await?;
        }
        Response::ok("swept")
    }
}

#[derive(Deserialize)]
struct PeerRow {
    id: String,
    role: String,
    name: String,
}

#[derive(Deserialize)]
struct MessageRow {
    seq: u64,
    kind: String,
    sender: Option<String>,
    payload: String,
}

fn role_of(text: &str) -> std::result::Result<Role, ApiError> {
    Role::parse(text).ok_or_else(|| storage_error("unknown role in storage"))
}

fn storage_error(what: impl std::fmt::Display) -> ApiError {
    worker::console_error!("storage: {what}");
    ApiError::internal()
}

fn text(value: &str) -> SqlStorageValue {
    SqlStorageValue::String(value.to_owned())
}

fn int(value: i64) -> SqlStorageValue {
    SqlStorageValue::Integer(value)
}

fn seq_value(value: u64) -> SqlStorageValue {
    int(i64::try_from(value).unwrap_or(i64::MAX))
}

impl Room {
    /// True when this room's tables exist (it has had a join).
    pub(crate) fn exists(&self) -> std::result::Result<bool, ApiError> {
        if !self.has_schema.get() {
            #[derive(Deserialize)]
            struct Table {
                #[allow(dead_code)]
                name: String,
            }
            let found: Vec<Table> = self.rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'peers'",
                vec![],
            )?;
            if !found.is_empty() {
                // Tables or indexes added since this room was made come in now.
                self.run(SCHEMA, vec![])?;
                self.has_schema.set(true);
            }
        }
        Ok(self.has_schema.get())
    }

    /// Creates the tables if they are missing.
    fn ensure_schema(&self) -> std::result::Result<(), ApiError> {
        if !self.exists()? {
            self.run(SCHEMA, vec![])?;
            self.has_schema.set(true);
        }
        Ok(())
    }

    /// Rows of `query` as `T`.
    pub(crate) fn rows<T: DeserializeOwned>(
        &self,
        query: &str,
        binds: Vec<SqlStorageValue>,
    ) -> std::result::Result<Vec<T>, ApiError> {
        let sql = self.state.storage().sql();
        sql.exec(query, binds)
            .and_then(|cursor| cursor.to_array())
            .map_err(storage_error)
    }

    /// Runs a statement.
    pub(crate) fn run(
        &self,
        query: &str,
        binds: Vec<SqlStorageValue>,
    ) -> std::result::Result<(), ApiError> {
        let sql = self.state.storage().sql();
        sql.exec(query, binds)
            .map(|cursor| {
                // A cursor runs its statement as it is read.
                for _ in cursor.raw() {}
            })
            .map_err(storage_error)
    }

    fn room_row(&self) -> std::result::Result<Option<(String, Topology)>, ApiError> {
        #[derive(Deserialize)]
        struct RoomRow {
            id: String,
            topology: String,
        }
        let rows: Vec<RoomRow> = self.rows("SELECT id, topology FROM room WHERE k = 0", vec![])?;
        rows.into_iter()
            .next()
            .map(|r| {
                Topology::parse(&r.topology)
                    .map(|t| (r.id, t))
                    .ok_or_else(|| storage_error("unknown topology in storage"))
            })
            .transpose()
    }

    /// The peer whose bearer token `req` carries.
    pub(crate) fn authenticate(&self, req: &Request) -> std::result::Result<Peer, ApiError> {
        let header = req.headers().get("authorization").ok().flatten();
        let token = ids::bearer(header.as_deref()).ok_or_else(ApiError::unauthorized)?;
        if !self.exists()? {
            return Err(ApiError::unauthorized());
        }
        let hash = ids::hash(token);
        let rows: Vec<PeerRow> = self.rows(
            "SELECT id, role, name FROM peers WHERE token_hash = ?",
            vec![text(&hash)],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Err(self.gone(&hash));
        };
        let (room, topology) = self.room_row()?.ok_or_else(ApiError::unauthorized)?;
        Ok(Peer {
            id: row.id,
            room,
            role: role_of(&row.role)?,
            topology,
            token_hash: hash,
        })
    }

    /// Why a token of this hash no longer works.
    fn gone(&self, token_hash: &str) -> ApiError {
        #[derive(Deserialize)]
        struct One {
            #[allow(dead_code)]
            one: i64,
        }
        let replaced: Vec<One> = self
            .rows(
                "SELECT 1 AS one FROM replaced_tokens WHERE token_hash = ? AND until > ?",
                vec![text(token_hash), int(now_ms())],
            )
            .unwrap_or_default();
        if replaced.is_empty() {
            ApiError::unauthorized()
        } else {
            ApiError::replaced()
        }
    }

    fn room_peers(&self, except: &str) -> std::result::Result<Vec<PeerInfo>, ApiError> {
        let rows: Vec<PeerRow> = self.rows(
            "SELECT id, role, name FROM peers WHERE id != ? ORDER BY joined_at, id",
            vec![text(except)],
        )?;
        rows.into_iter()
            .map(|r| {
                Ok(PeerInfo {
                    role: role_of(&r.role)?,
                    peer_id: r.id,
                    name: r.name,
                })
            })
            .collect()
    }

    /// Queues a message for `recipient` with its next seq.
    fn enqueue(
        &self,
        recipient: &str,
        kind: &str,
        from: Option<&str>,
        payload: &str,
        now: i64,
    ) -> std::result::Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Seq {
            last_seq: i64,
        }
        let seq: Vec<Seq> = self.rows(
            "UPDATE peers SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq",
            vec![text(recipient)],
        )?;
        let Some(Seq { last_seq }) = seq.into_iter().next() else {
            return Ok(());
        };
        self.run(
            "INSERT INTO messages (recipient, seq, kind, sender, payload, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![
                text(recipient),
                int(last_seq),
                text(kind),
                from.map_or(SqlStorageValue::Null, text),
                text(payload),
                int(now),
            ],
        )
    }

    /// Queues a server event for everyone but `except` (or only `only`), and wakes them.
    pub(crate) fn announce(
        &self,
        kind: MessageKind,
        payload: &str,
        except: Option<&str>,
        only: Option<&str>,
    ) -> std::result::Result<(), ApiError> {
        let mut chosen = self.room_peers("")?;
        chosen.retain(|peer| {
            only.is_none_or(|o| o == peer.peer_id) && except.is_none_or(|e| e != peer.peer_id)
        });
        self.tell(&chosen, kind, payload)
    }

    /// Queues a server event for each of `peers`, and wakes them.
    fn tell(
        &self,
        peers: &[PeerInfo],
        kind: MessageKind,
        payload: &str,
    ) -> std::result::Result<(), ApiError> {
        let now = now_ms();
        for peer in peers {
            self.enqueue(&peer.peer_id, kind.as_str(), None, payload, now)?;
        }
        let woken: Vec<String> = peers.iter().map(|p| p.peer_id.clone()).collect();
        self.wake(&woken);
        Ok(())
    }

    /// Wakes the long-polls of `peers`.
    pub(crate) fn wake(&self, peers: &[String]) {
        let mut live = self.live.borrow_mut();
        for peer in peers {
            for waiter in live.waiters.remove(peer).unwrap_or_default() {
                let _ = waiter.send(());
            }
        }
    }

    /// Removes a peer, tells the room why, and forgets what memory held for it.
    fn remove_peer(&self, peer_id: &str, reason: LeaveReason) -> std::result::Result<(), ApiError> {
        #[derive(Deserialize)]
        struct Removed {
            #[allow(dead_code)]
            id: String,
        }
        let removed: Vec<Removed> = self.rows(
            "DELETE FROM peers WHERE id = ? RETURNING id",
            vec![text(peer_id)],
        )?;
        self.run(
            "DELETE FROM messages WHERE recipient = ?",
            vec![text(peer_id)],
        )?;
        if !removed.is_empty() {
            let payload = serde_json::to_string(&PeerLeft {
                peer_id: peer_id.to_owned(),
                reason,
            })
            .map_err(storage_error)?;
            let others = self.room_peers("")?;
            if others.is_empty() {
                self.run("DELETE FROM room", vec![])?;
            }
            self.tell(&others, MessageKind::PeerLeft, &payload)?;
        }
        self.forget(peer_id);
        Ok(())
    }

    /// Drops what memory holds for a peer that is gone, and ends its Calls session.
    fn forget(&self, peer_id: &str) {
        let binding = {
            let mut live = self.live.borrow_mut();
            live.last_seen.remove(peer_id);
            live.acked.remove(peer_id);
            live.relay.remove(peer_id);
            live.resets.remove(peer_id);
            // Its pending polls wake and learn it is gone.
            for waiter in live.waiters.remove(peer_id).unwrap_or_default() {
                let _ = waiter.send(());
            }
            live.sfu.unbind(peer_id)
        };
        if let (Some(binding), Ok(config)) = (binding, &self.config) {
            if let Some(calls) = config.calls.clone() {
                self.state
                    .wait_until(crate::calls::end_session(calls, binding));
            }
        }
    }

    async fn signaling(
        &self,
        config: &Config,
        req: &mut Request,
    ) -> std::result::Result<Response, ApiError> {
        let body = req
            .bytes()
            .await
            .map_err(|e| ApiError::invalid_input(format!("cannot read body: {e}")))?;
        match signal::classify(&body)? {
            Kind::Join => self.join(config, &body).await,
            Kind::Leave => {
                let peer = self.authenticate(req)?;
                self.remove_peer(&peer.id, LeaveReason::Left)?;
                json_response(200, &serde_json::json!({ "ok": true }))
            }
            Kind::Relay(kind) => {
                let peer = self.authenticate(req)?;
                self.relay(config, &peer, &kind, &body)?;
                json_response(200, &serde_json::json!({ "ok": true }))
            }
        }
    }

    /// Takes one relay from `peer`'s budget.
    pub(crate) fn spend_relay(
        &self,
        config: &Config,
        peer: &str,
    ) -> std::result::Result<(), ApiError> {
        let now = now_ms();
        let mut live = self.live.borrow_mut();
        live.relay
            .entry(peer.to_owned())
            .or_insert_with(|| TokenBucket::full(config.relay_burst, now))
            .try_take(now, config.relay_rate, config.relay_burst)
            .map_err(ApiError::rate_limited)
    }

    fn relay(
        &self,
        config: &Config,
        peer: &Peer,
        kind: &str,
        body: &[u8],
    ) -> std::result::Result<(), ApiError> {
        let request: RelayRequest<Box<RawValue>> =
            serde_json::from_slice(body).map_err(ApiError::invalid_json)?;
        if !ids::is_peer_id_shaped(&request.to) {
            let shown: String = request.to.chars().take(20).collect();
            return Err(ApiError::new(
                ErrorCode::PeerNotFound,
                format!("no peer `{}` in this room", shown.escape_default()),
            ));
        }
        if request.to == peer.id {
            return Err(ApiError::invalid_input("a peer cannot message itself"));
        }
        self.spend_relay(config, &peer.id)?;
        if kind == "peer-reset" {
            // Each makes the recipient rebuild its connection to us.
            let mut live = self.live.borrow_mut();
            let resets = live.resets.entry(peer.id.clone()).or_default();
            try_reset(resets, &request.to, now_ms()).map_err(ApiError::rate_limited)?;
        }
        let recipient: Vec<PeerRow> = self.rows(
            "SELECT id, role, name FROM peers WHERE id = ?",
            vec![text(&request.to)],
        )?;
        let Some(recipient) = recipient.into_iter().next() else {
            return Err(ApiError::new(
                ErrorCode::PeerNotFound,
                format!("no peer `{}` in this room", request.to),
            ));
        };
        let payload = request.payload.get();
        #[derive(Deserialize)]
        struct Backlog {
            count: u64,
            bytes: u64,
        }
        let acked = self
            .live
            .borrow()
            .acked
            .get(&request.to)
            .copied()
            .unwrap_or(0);
        let backlog: Vec<Backlog> = self.rows(
            "SELECT COUNT(*) AS count, COALESCE(SUM(LENGTH(CAST(payload AS BLOB))), 0) AS bytes
             FROM messages WHERE recipient = ? AND seq > ?",
            vec![text(&request.to), seq_value(acked)],
        )?;
        let backlog = backlog
            .into_iter()
            .next()
            .unwrap_or(Backlog { count: 0, bytes: 0 });
        if backlog.count >= config.max_backlog
            || backlog.bytes + payload.len() as u64 > config.max_backlog_bytes
        {
            return Err(ApiError::new(
                ErrorCode::RecipientBacklog,
                format!(
                    "the recipient is {} messages behind; retry later",
                    config.max_backlog
                ),
            ));
        }
        let used = self.state.storage().sql().database_size() as u64;
        if used + payload.len() as u64 > config.max_storage {
            return Err(ApiError::new(
                ErrorCode::StorageFull,
                format!(
                    "the server's message storage is full ({} bytes); retry later",
                    config.max_storage
                ),
            ));
        }
        let to_role = role_of(&recipient.role)?;
        if !peer.topology.links(peer.role, to_role) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "in a {} room, a {} may not message a {}",
                    peer.topology.as_str(),
                    peer.role.as_str(),
                    to_role.as_str()
                ),
            ));
        }
        self.enqueue(&request.to, kind, Some(&peer.id), payload, now_ms())?;
        self.wake(&[request.to]);
        Ok(())
    }

    async fn join(&self, config: &Config, body: &[u8]) -> std::result::Result<Response, ApiError> {
        let request = signal::join_request(body)?;
        let name = request.name.trim().to_owned();
        if !callroom_rules::is_valid_name(&name) {
            return Err(ApiError::invalid_input(format!(
                "name must be at most {NAME_MAX_LEN} characters, without control, bidi-override or zero-width characters"
            )));
        }
        let topology = request.topology.unwrap_or(request.role.topology());
        if topology == Topology::Sfu && config.calls.is_none() {
            return Err(ApiError::invalid_input(
                "this server runs no SFU (no CALLROOM_CALLS_APP_ID): sfu rooms are not available",
            ));
        }
        if !topology.admits(request.role) {
            return Err(ApiError::invalid_input(format!(
                "role `{}` cannot join a {} room",
                request.role.as_str(),
                topology.as_str()
            )));
        }
        let now = now_ms();
        let ticket = match &config.ticket_secret {
            Some(secret) => Some(ticket::verify(
                secret,
                request.ticket.as_deref(),
                &request.room,
                request.role,
                u64::try_from(now / 1000).unwrap_or(0),
                config.max_ticket_lifetime_s,
            )?),
            None => None,
        };
        {
            let mut live = self.live.borrow_mut();
            live.joins
                .get_or_insert_with(|| TokenBucket::full(config.room_join_burst, now))
                .try_take(now, config.room_join_rate, config.room_join_burst)
                .map_err(ApiError::rate_limited)?;
        }
        let result = self
            .spend_ticket(ticket.as_ref())
            .and_then(|()| self.admit(config, &request, &name, topology));
        let joined = match result {
            Ok(joined) => joined,
            Err(error) => {
                // Refused after all (room full, seat taken): the room's budget is not spent.
                if let Some(bucket) = self.live.borrow_mut().joins.as_mut() {
                    bucket.refund(now, config.room_join_rate, config.room_join_burst);
                }
                return Err(error);
            }
        };
        self.ensure_alarm(config).await;
        if joined.topology == Topology::Sfu {
            crate::calls::welcome(self, &request.room, &joined.peer_id)?;
        }
        let ice_servers = match self.ice_servers(config).await {
            Ok(servers) => servers,
            // A join must not fail because TURN is down; loopback and LAN need none.
            Err(_) => config.ice_servers.clone(),
        };
        let response = JoinResponse {
            peer_id: joined.peer_id,
            token: joined.token,
            room: request.room,
            topology: joined.topology,
            role: request.role,
            peers: joined.others,
            cursor: 0,
            ice_servers,
            reclaim_key: joined.reclaim_key,
            capacity: config.room_capacity,
        };
        json_response(200, &response)
    }

    /// Marks a single-use ticket used, before anything else can refuse the join (as
    /// callroom-server does): a ticket whose join was refused is spent all the same.
    fn spend_ticket(&self, ticket: Option<&ticket::Ticket>) -> std::result::Result<(), ApiError> {
        let Some(ticket::Ticket {
            jti: Some(jti),
            exp,
        }) = ticket
        else {
            return Ok(());
        };
        let hash = ids::hash(jti);
        #[derive(Deserialize)]
        struct Used {
            #[allow(dead_code)]
            expires_at: i64,
        }
        self.ensure_schema()?;
        let used: Vec<Used> = self.rows(
            "SELECT expires_at FROM used_tickets WHERE jti_hash = ?",
            vec![text(&hash)],
        )?;
        if !used.is_empty() {
            return Err(ApiError::invalid_ticket("ticket was used already"));
        }
        // Remembered past the ticket's expiry by the leeway a ticket is checked with.
        let until = exp.saturating_add(ticket::LEEWAY_SECS).saturating_mul(1000);
        self.run(
            "INSERT INTO used_tickets (jti_hash, expires_at) VALUES (?, ?)",
            vec![text(&hash), int(i64::try_from(until).unwrap_or(i64::MAX))],
        )
    }

    fn admit(
        &self,
        config: &Config,
        request: &callroom_protocol::JoinRequest,
        name: &str,
        requested: Topology,
    ) -> std::result::Result<Admitted, ApiError> {
        self.ensure_schema()?;
        // Minted before any write, so a failure here leaves storage as it was.
        let peer_id = ids::new_peer_id()?;
        let token = ids::new_token(&request.room)?;
        let reclaim_key = match request.role {
            Role::Host => Some(ids::new_secret()?),
            _ => None,
        };
        let now = now_ms();
        let existing = self.room_row()?;
        let topology = existing.as_ref().map_or(requested, |(_, t)| *t);
        if !topology.admits(request.role) {
            return Err(ApiError::new(
                ErrorCode::RoleMismatch,
                format!(
                    "room `{}` is a {} room; role `{}` cannot join it",
                    request.room,
                    topology.as_str(),
                    request.role.as_str()
                ),
            ));
        }
        if topology != requested {
            return Err(ApiError::new(
                ErrorCode::TopologyMismatch,
                format!(
                    "room `{}` is a {} room; join it with topology `{}`",
                    request.room,
                    topology.as_str(),
                    topology.as_str()
                ),
            ));
        }
        // Every check before any write: a refused join leaves storage as it was.
        #[derive(Deserialize)]
        struct HostRow {
            id: String,
            token_hash: String,
        }
        let mut old_host = None;
        let mut key_kept = false;
        if request.role == Role::Host {
            let hosts: Vec<HostRow> = self.rows(
                "SELECT id, token_hash FROM peers WHERE role = 'host'",
                vec![],
            )?;
            #[derive(Deserialize)]
            struct Key {
                host_key_hash: Option<String>,
            }
            let key: Vec<Key> = self.rows("SELECT host_key_hash FROM room WHERE k = 0", vec![])?;
            let key = key.into_iter().next().and_then(|k| k.host_key_hash);
            key_kept = request
                .reclaim
                .as_deref()
                .is_some_and(|r| key.as_deref() == Some(ids::hash(r).as_str()));
            old_host = hosts.into_iter().next();
            if old_host.is_some() && config.ticket_secret.is_none() && !key_kept {
                return Err(ApiError::new(
                    ErrorCode::HostTaken,
                    "this hub has a live host: join with its reclaim key or a host ticket to take the seat",
                ));
            }
        }
        #[derive(Deserialize)]
        struct Count {
            count: u32,
        }
        let count: Vec<Count> = self.rows("SELECT COUNT(*) AS count FROM peers", vec![])?;
        let count = count
            .first()
            .map_or(0, |c| c.count)
            .saturating_sub(u32::from(old_host.is_some()));
        if count >= config.room_capacity {
            return Err(ApiError::new(
                ErrorCode::RoomFull,
                format!("room is full ({} peers)", config.room_capacity),
            ));
        }
        if existing.is_none() {
            self.run(
                "INSERT INTO room (k, id, topology, created_at) VALUES (0, ?, ?, ?)",
                vec![text(&request.room), text(topology.as_str()), int(now)],
            )?;
        }
        if let Some(old) = &old_host {
            self.run("DELETE FROM peers WHERE id = ?", vec![text(&old.id)])?;
            self.run(
                "DELETE FROM messages WHERE recipient = ?",
                vec![text(&old.id)],
            )?;
            self.run(
                "INSERT OR REPLACE INTO replaced_tokens (token_hash, until) VALUES (?, ?)",
                vec![text(&old.token_hash), int(now + REPLACED_MEMORY_MS)],
            )?;
        }
        if request.role == Role::Host && !key_kept {
            let hash = reclaim_key.as_deref().map(ids::hash);
            self.run(
                "UPDATE room SET host_key_hash = ? WHERE k = 0",
                vec![hash.map_or(SqlStorageValue::Null, |h| text(&h))],
            )?;
        }
        self.run(
            "INSERT INTO peers (id, role, name, token_hash, last_seq, joined_at)
             VALUES (?, ?, ?, ?, 0, ?)",
            vec![
                text(&peer_id),
                text(request.role.as_str()),
                text(name),
                text(&ids::hash(&token)),
                int(now),
            ],
        )?;
        let peer = PeerInfo {
            peer_id: peer_id.clone(),
            role: request.role,
            name: name.to_owned(),
        };
        let others = self.room_peers(&peer_id)?;
        let (kind, payload) = match &old_host {
            Some(old) => (
                MessageKind::HostReset,
                serde_json::to_string(&HostReset {
                    host: peer.clone(),
                    previous_peer_id: old.id.clone(),
                }),
            ),
            None => (MessageKind::PeerJoined, serde_json::to_string(&peer)),
        };
        let payload = payload.map_err(storage_error)?;
        self.tell(&others, kind, &payload)?;
        if let Some(old) = &old_host {
            self.forget(&old.id);
        }
        // Joining is the first heartbeat.
        self.live
            .borrow_mut()
            .last_seen
            .insert(peer_id.clone(), now);
        Ok(Admitted {
            peer_id,
            token,
            topology,
            others,
            reclaim_key: if key_kept {
                request.reclaim.clone()
            } else {
                reclaim_key
            },
        })
    }

    async fn messages(
        &self,
        config: &Config,
        req: &Request,
    ) -> std::result::Result<Response, ApiError> {
        let peer = self.authenticate(req)?;
        let url = req.url().map_err(|_| ApiError::internal())?;
        let (since, wait) = poll_query(&url)?;
        let wait = wait.min(MAX_WAIT_MS);
        let _slot = PollSlot::take(&self.live, &peer.id, config.max_polls_per_peer)?;
        let deadline = now_ms() + i64::try_from(wait).unwrap_or(0);
        let mut first = true;
        loop {
            let acked = self.live.borrow().acked.get(&peer.id).copied().unwrap_or(0);
            // Removed meanwhile (left, timed out, replaced): say which.
            let batch = self
                .read(&peer.id, since, acked)?
                .ok_or_else(|| self.gone(&peer.token_hash))?;
            if first {
                // Only now is `since` known to be a cursor this peer was really given:
                // what it acknowledges is deleted.
                first = false;
                let mut live = self.live.borrow_mut();
                let acked = live.acked.entry(peer.id.clone()).or_default();
                *acked = (*acked).max(since);
                drop(live);
                self.run(
                    "DELETE FROM messages WHERE recipient = ? AND seq <= ?",
                    vec![text(&peer.id), seq_value(since)],
                )?;
            }
            let now = now_ms();
            self.live
                .borrow_mut()
                .last_seen
                .insert(peer.id.clone(), now);
            if !batch.is_empty() || now >= deadline {
                return messages_response(since, batch);
            }
            let (tx, rx) = oneshot::channel();
            {
                let mut live = self.live.borrow_mut();
                let waiters = live.waiters.entry(peer.id.clone()).or_default();
                // Polls that ended at their deadline leave a closed sender behind: dropped
                // here, so the list stays as long as the peer's open polls.
                waiters.retain(|w| !w.is_canceled());
                waiters.push(tx);
            }
            let delay = Delay::from(Duration::from_millis(
                u64::try_from(deadline - now).unwrap_or(0),
            ));
            futures_util::future::select(rx, delay).await;
        }
    }

    /// The messages after `since`; a peer that no longer exists is told why.
    fn read(
        &self,
        peer_id: &str,
        since: u64,
        acked: u64,
    ) -> std::result::Result<Option<Vec<MessageRow>>, ApiError> {
        #[derive(Deserialize)]
        struct Last {
            last_seq: u64,
        }
        let last: Vec<Last> = self.rows(
            "SELECT last_seq FROM peers WHERE id = ?",
            vec![text(peer_id)],
        )?;
        let Some(Last { last_seq: last }) = last.into_iter().next() else {
            return Ok(None);
        };
        if since > last {
            return Err(ApiError::new(
                ErrorCode::CursorAhead,
                format!("cursor {since} is ahead of the last message {last}"),
            ));
        }
        let messages: Vec<MessageRow> = self.rows(
            "SELECT seq, kind, sender, payload FROM messages
             WHERE recipient = ? AND seq > ? ORDER BY seq LIMIT ?",
            vec![text(peer_id), seq_value(since), int(i64::from(POLL_BATCH))],
        )?;
        // Sequence numbers have no holes and what was acknowledged is deleted: a missing next
        // message expired unread.
        let from = since.max(acked).min(last);
        if from < last && messages.first().is_none_or(|m| m.seq > from + 1) {
            return Err(ApiError::new(
                ErrorCode::CursorExpired,
                format!(
                    "messages after cursor {since} expired unread (CALLROOM_MESSAGE_TTL); join again"
                ),
            ));
        }
        Ok(Some(messages))
    }

    async fn turn_credentials(
        &self,
        config: &Config,
        req: &Request,
    ) -> std::result::Result<Response, ApiError> {
        let peer = self.authenticate(req)?;
        // Minting credentials may call out to a provider: it shares the relay budget.
        self.spend_relay(config, &peer.id)?;
        let ice_servers = self.ice_servers(config).await?;
        json_response(
            200,
            &TurnCredentials {
                ice_servers,
                ttl: config.turn_ttl_s,
            },
        )
    }

    /// Static servers, plus Cloudflare TURN credentials (shared until half their lifetime is
    /// used; a failure remembered for 30 s).
    async fn ice_servers(&self, config: &Config) -> std::result::Result<Vec<IceServer>, ApiError> {
        let mut servers = config.ice_servers.clone();
        let Some((key_id, api_token)) = &config.cf_turn else {
            return Ok(servers);
        };
        let now = now_ms();
        let cached = self.live.borrow().turn.clone().filter(|(at, result)| {
            let valid_for = if result.is_ok() {
                i64::try_from(config.turn_ttl_s * 500).unwrap_or(i64::MAX)
            } else {
                TURN_FAILURE_BACKOFF_MS
            };
            now - at < valid_for
        });
        let result = match cached {
            Some((_, result)) => result,
            None => {
                let waiting = {
                    let mut live = self.live.borrow_mut();
                    match live.turn_waiters.as_mut() {
                        Some(waiters) => {
                            let (tx, rx) = oneshot::channel();
                            waiters.push(tx);
                            Some(rx)
                        }
                        None => {
                            live.turn_waiters = Some(Vec::new());
                            None
                        }
                    }
                };
                match waiting {
                    Some(rx) => rx
                        .await
                        .unwrap_or_else(|_| Err("the TURN fetch was abandoned".into())),
                    None => {
                        let fetch = TurnFetch(self.live.clone());
                        let result = crate::calls::cloudflare_turn(config, key_id, api_token).await;
                        fetch.finish(&result, now);
                        result
                    }
                }
            }
        };
        let minted = result.map_err(|cause| {
            worker::console_warn!("TURN provider: {cause}");
            ApiError::new(
                ErrorCode::TurnUnavailable,
                "ICE servers are unavailable right now",
            )
        })?;
        servers.extend(minted);
        Ok(servers)
    }

    /// Makes sure a sweep comes within one sweep interval: an empty room's alarm may wait for a
    /// remembered ticket's expiry, hours away, and must be brought forward for new peers.
    async fn ensure_alarm(&self, config: &Config) {
        let storage = self.state.storage();
        let interval = config.sweep_interval_ms();
        // Unknown (a failed read) sets one: setting an alarm again is harmless.
        let soon_enough = matches!(
            storage.get_alarm().await,
            Ok(Some(at)) if at <= now_ms() + interval
        );
        if !soon_enough {
            let millis = u64::try_from(interval).unwrap_or(5_000);
            if let Err(err) = storage.set_alarm(Duration::from_millis(millis)).await {
                worker::console_error!("setting the sweep alarm: {err}");
            }
        }
    }

    /// Removes silent peers (telling the room), old messages, and expired memories of
    /// replaced hosts and used tickets; then sets the next alarm if anything is left to sweep.
    async fn sweep(&self, config: &Config) -> std::result::Result<(), ApiError> {
        let now = now_ms();
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let ids: Vec<Id> = self.rows("SELECT id FROM peers", vec![])?;
        let silent: Vec<String> = {
            let live = self.live.borrow();
            ids.into_iter()
                .map(|i| i.id)
                .filter(|id| {
                    let polling = live.polls.get(id).is_some_and(|n| *n > 0);
                    let seen = live.last_seen.get(id).copied().unwrap_or(self.started_ms);
                    !polling && seen < now - config.peer_timeout_ms
                })
                .collect()
        };
        for id in &silent {
            self.remove_peer(id, LeaveReason::Timeout)?;
        }
        self.run(
            "DELETE FROM messages WHERE created_at < ?",
            vec![int(now - config.message_ttl_ms)],
        )?;
        self.run(
            "DELETE FROM replaced_tokens WHERE until <= ?",
            vec![int(now)],
        )?;
        self.run(
            "DELETE FROM used_tickets WHERE expires_at < ?",
            vec![int(now)],
        )?;
        #[derive(Deserialize)]
        struct Next {
            peers: i64,
            expiry: Option<i64>,
        }
        let next: Vec<Next> = self.rows(
            "SELECT (SELECT COUNT(*) FROM peers) AS peers,
                    (SELECT MIN(t) FROM (SELECT until AS t FROM replaced_tokens
                                         UNION ALL SELECT expires_at FROM used_tickets)) AS expiry",
            vec![],
        )?;
        let next = next.into_iter().next().unwrap_or(Next {
            peers: 0,
            expiry: None,
        });
        let storage = self.state.storage();
        let wake_in = if next.peers > 0 {
            Some(config.sweep_interval_ms())
        } else {
            next.expiry.map(|at| (at - now).max(1_000))
        };
        if let Some(ms) = wake_in {
            storage
                .set_alarm(Duration::from_millis(u64::try_from(ms).unwrap_or(5_000)))
                .await
                .map_err(storage_error)?;
        }
        Ok(())
    }
}

/// What [`Room::admit`] made.
struct Admitted {
    peer_id: String,
    token: String,
    topology: Topology,
    others: Vec<PeerInfo>,
    reclaim_key: Option<String>,
}

/// `?since=<n>&wait=<ms>`, both optional numbers, decoded and checked as callroom-server
/// checks them (a duplicate is refused).
fn poll_query(url: &worker::Url) -> std::result::Result<(u64, u64), ApiError> {
    let (mut since, mut wait) = (None, None);
    let refuse = |detail: String| {
        ApiError::invalid_input(format!("query must be ?since=<number>&wait=<ms>: {detail}"))
    };
    for (key, value) in url.query_pairs() {
        let target = match key.as_ref() {
            "since" => &mut since,
            "wait" => &mut wait,
            _ => continue,
        };
        if target.is_some() {
            return Err(refuse(format!("duplicate field `{key}`")));
        }
        *target = Some(
            value
                .parse::<u64>()
                .map_err(|e| refuse(format!("{key}: {e}")))?,
        );
    }
    Ok((since.unwrap_or(0), wait.unwrap_or(0)))
}

fn messages_response(
    since: u64,
    batch: Vec<MessageRow>,
) -> std::result::Result<Response, ApiError> {
    let cursor = batch.last().map_or(since, |m| m.seq);
    let messages = batch
        .into_iter()
        .map(|m| {
            Ok(callroom_protocol::Message {
                seq: m.seq,
                kind: m.kind,
                from: m.sender,
                payload: RawValue::from_string(m.payload).map_err(storage_error)?,
            })
        })
        .collect::<std::result::Result<Vec<_>, ApiError>>()?;
    json_response(
        200,
        &callroom_protocol::MessagesResponse { messages, cursor },
    )
}

/// A held long-poll slot; dropping it (also when the request is cancelled) frees it.
struct PollSlot {
    live: Rc<RefCell<Live>>,
    peer: String,
}

impl PollSlot {
    fn take(live: &Rc<RefCell<Live>>, peer: &str, max: u32) -> std::result::Result<Self, ApiError> {
        let mut state = live.borrow_mut();
        let polls = state.polls.entry(peer.to_owned()).or_default();
        if *polls >= max {
            return Err(ApiError::new(
                ErrorCode::TooManyPolls,
                format!("at most {max} concurrent polls per peer"),
            ));
        }
        *polls += 1;
        Ok(Self {
            live: live.clone(),
            peer: peer.to_owned(),
        })
    }
}

impl Drop for PollSlot {
    fn drop(&mut self) {
        let mut live = self.live.borrow_mut();
        if let Some(polls) = live.polls.get_mut(&self.peer) {
            *polls = polls.saturating_sub(1);
            if *polls == 0 {
                live.polls.remove(&self.peer);
            }
        }
    }
}

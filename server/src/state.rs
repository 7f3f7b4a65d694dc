//! Everything a request handler needs, shared behind one `Arc`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::AppError;
use crate::ids;
use crate::live::Live;
use crate::sfu::calls_api::Budgets;
use crate::sfu::SfuService;
use crate::store::{Peer, Store, Swept};
use crate::turn::Turn;

/// Shared server state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    /// Flags in force.
    pub config: Config,
    /// Durable state.
    pub store: Store,
    /// Wake-ups, poll slots, rate budgets.
    pub live: Live,
    /// ICE server provider.
    pub turn: Turn,
    /// The SFU of `sfu` rooms; `None` with `--sfu off`.
    pub sfu: Option<SfuService>,
    /// Request budgets of the embedded SFU's Calls API, per session.
    pub calls_budgets: Budgets,
    shutdown: watch::Sender<bool>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("cannot open database `{path}`: {source}")]
    Database {
        /// The `--db` value.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A flag combination makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The hash of a well-formed bearer token in `headers`.
fn bearer_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| ids::is_token_shaped(t))
        .map(ids::hash_token)
}

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl AppState {
    /// Opens the database and checks the configuration.
    pub fn new(config: Config) -> Result<Self, StartError> {
        Self::started_at(config, now_ms())
    }

    /// As [`AppState::new`], for a process that started at `started_ms` (tests pass in a
    /// start long ago to see what a long-running server does).
    pub fn started_at(config: Config, started_ms: i64) -> Result<Self, StartError> {
        let store = Store::open(&config.db).map_err(|source| StartError::Database {
            path: config.db.clone(),
            source,
        })?;
        let turn = Turn::from_config(&config).map_err(StartError::Config)?;
        if config.room_capacity < 2 {
            return Err(StartError::Config(
                "--room-capacity must be at least 2".into(),
            ));
        }
        if config.max_polls_per_peer < 1 {
            return Err(StartError::Config(
                "--max-polls-per-peer must be at least 1".into(),
            ));
        }
        let sfu = SfuService::from_config(&config).map_err(StartError::Config)?;
        Ok(Self(Arc::new(Inner {
            sfu,
            calls_budgets: Budgets::default(),
            config,
            store,
            // Peers stored before a restart get a full timeout from now to poll again.
            live: Live::new(started_ms),
            turn,
            shutdown: watch::channel(false).0,
        })))
    }

    /// The peer whose bearer token is in `headers`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Peer, AppError> {
        let hash = bearer_hash(headers).ok_or(AppError::Unauthorized)?;
        match self.store.authenticate(&hash)? {
            Some(peer) => Ok(peer),
            None => Err(self.gone(headers)),
        }
    }

    /// Why the token in `headers` no longer works: `replaced` for a hub host another host
    /// took over, `unauthorized` otherwise.
    pub fn gone(&self, headers: &HeaderMap) -> AppError {
        match bearer_hash(headers) {
            Some(hash) if self.store.was_replaced(&hash, now_ms()).unwrap_or(false) => {
                AppError::Replaced
            }
            _ => AppError::Unauthorized,
        }
    }

    /// Deletes acknowledged messages, removes silent peers and old messages, and wakes
    /// whoever must hear of it.
    pub fn sweep(&self, now: i64) -> Result<Swept, AppError> {
        let timeout = i64::try_from(self.config.peer_timeout.as_millis()).unwrap_or(i64::MAX);
        let ttl = i64::try_from(self.config.message_ttl.as_millis()).unwrap_or(i64::MAX);
        self.live.prune_joins(self.config.join_limits(), now);
        // A failure here must not stop the rest of the sweep (presence, expiry).
        if let Err(err) = self.store.delete_acknowledged(&self.live.take_acks()) {
            tracing::error!(%err, "deleting acknowledged messages failed");
        }
        let swept = self
            .store
            .sweep(now, ttl, |id| self.live.is_silent(id, now, timeout))?;
        for id in &swept.timed_out {
            tracing::info!(peer = %id, "peer timed out");
            self.live.forget(id);
            crate::sfu::proxy::forget(self, id);
        }
        self.live.wake(&swept.wake);
        Ok(swept)
    }

    /// Ends every pending long-poll now and makes new ones return at once.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Changes when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

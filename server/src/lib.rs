//! callroom-server as a library: [`app`] builds the whole HTTP service so tests can call it
//! without a socket, and [`serve`] runs it on a listener with the background sweeper until a
//! shutdown signal. The protocol is documented in `docs/protocol.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod conn;
pub mod cors;
pub mod error;
pub mod ids;
pub mod live;
/// Token buckets, shared with the Worker.
pub use callroom_rules::rate;
pub mod sfu;
pub mod state;
pub mod store;
pub mod ticket;
pub mod turn;

use std::future::Future;
use std::time::Duration;

use axum::routing::{get, post, put};
use axum::Router;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;

pub use config::Config;
pub use error::AppError;
pub use state::{AppState, StartError};

/// Builds the router: the API, `/healthz` and `/livez`, the package at `/pkg/`, the demo at `/`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/signaling", post(api::signaling))
        .route("/messages", get(api::messages))
        .route("/turn-credentials", post(api::turn_credentials))
        .route("/healthz", get(api::healthz))
        .route("/livez", get(api::livez))
        .route("/sfu/sessions/new", post(sfu::proxy::new_session))
        .route("/sfu/sessions/{sid}", get(sfu::proxy::session_state))
        .route(
            "/sfu/sessions/{sid}/tracks/new",
            post(sfu::proxy::tracks_new),
        )
        .route(
            "/sfu/sessions/{sid}/renegotiate",
            put(sfu::proxy::renegotiate),
        )
        .route(
            "/sfu/sessions/{sid}/tracks/close",
            put(sfu::proxy::tracks_close),
        )
        .route(
            "/sfu/sessions/{sid}/tracks/update",
            put(sfu::proxy::tracks_update),
        )
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            cors::guard,
        ))
        .layer(cors::layer(&state.config.allow_origins));
    Router::new()
        .merge(api)
        .merge(sfu::calls_api::router())
        .nest_service("/pkg", ServeDir::new(&state.config.pkg_dir))
        .fallback_service(ServeDir::new(&state.config.demo_dir))
        .layer(axum::middleware::from_fn(hide_private))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// 404 for paths into dependencies or dot files (`node_modules`, `.env`, `.git`): the demo
/// folder holds the React demo's sources and installed packages beside its build.
async fn hide_private(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if is_private_path(request.uri().path()) {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

fn is_private_path(path: &str) -> bool {
    // Decoded as the file server decodes it, so `%6eode_modules` is no way around.
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded)
        .split(['/', '\\'])
        .any(|segment| segment == "node_modules" || segment.starts_with('.'))
}

/// Serves on `listener` until `shutdown` completes: pending long-polls then answer at once
/// and in-flight requests finish. Runs the presence and cleanup sweeper meanwhile.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = tokio::spawn(sweep_forever(state.clone()));
    let sfu = match state.sfu.as_ref().map(|s| &s.backend) {
        Some(sfu::Backend::Local(local)) => {
            // The SFU's own events (a silent track, a dead session) reach rooms through the
            // database; that happens on another task, so a busy database never stalls
            // forwarding.
            let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
            let events = state.clone();
            let announcer = tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    sfu::proxy::on_events(&events, batch);
                }
            });
            let local = local.clone();
            let forwarder = tokio::spawn(async move {
                local
                    .run(move |batch| {
                        if tx.try_send(batch).is_err() {
                            tracing::warn!("SFU events dropped: the announcer is behind");
                        }
                    })
                    .await;
            });
            Some((forwarder, announcer))
        }
        _ => None,
    };
    let checkpointer = tokio::spawn(checkpoint_forever(state.clone()));
    let draining = state.clone();
    let limits = conn::Limits {
        max_connections: state
            .config
            .max_connections
            .unwrap_or_else(conn::default_max_connections),
        header_timeout: state.config.header_timeout,
    };
    let result = conn::serve(listener, app(state), limits, async move {
        shutdown.await;
        draining.begin_shutdown();
    })
    .await;
    sweeper.abort();
    checkpointer.abort();
    if let Some((forwarder, announcer)) = sfu {
        forwarder.abort();
        announcer.abort();
    }
    result
}

/// How often the sweeper runs: a third of the peer timeout, within 100 ms .. 5 s.
fn sweep_interval(peer_timeout: Duration) -> Duration {
    (peer_timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

async fn sweep_forever(state: AppState) {
    let mut tick = tokio::time::interval(sweep_interval(state.config.peer_timeout));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // On a blocking thread, batch by batch: requests never wait for a whole sweep.
        let sweeping = state.clone();
        match tokio::task::spawn_blocking(move || sweeping.sweep(state::now_ms())).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::error!(%err, "sweep failed"),
            Err(err) => tracing::error!(%err, "sweep task failed"),
        }
    }
}

/// Checkpoints the WAL every second on its own connection, off the request path.
async fn checkpoint_forever(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let state = state.clone();
        match tokio::task::spawn_blocking(move || state.store.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(%err, "checkpoint failed"),
            Err(err) => tracing::warn!(%err, "checkpoint task failed"),
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_runs_often_enough_for_short_timeouts_and_rarely_for_long_ones() {
        assert_eq!(
            sweep_interval(Duration::from_secs(30)),
            Duration::from_secs(5)
        );
        assert_eq!(
            sweep_interval(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            sweep_interval(Duration::from_millis(60)),
            Duration::from_millis(100)
        );
    }
}

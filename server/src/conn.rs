//! Connections: accepted one by one under a cap, each with a deadline for its headers, and
//! shed with a quick 503 when the cap is reached, so slow or idle clients cannot hold the
//! server's file descriptors and starve everyone else.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower_service::Service;

/// How long to wait after a failed `accept` (out of file descriptors, say) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// File descriptors kept for the database, the SFU's socket and the like when the connection
/// cap comes from the open-file limit.
const RESERVED_FDS: u64 = 128;

/// The default cap never goes past this many connections (memory runs out before a raised
/// open-file limit of a million would).
const MAX_DEFAULT_CONNECTIONS: u64 = 16_384;

/// Connections being answered 503 at once; past it, one over the cap is just closed (the
/// answer needs a descriptor for up to a second).
const MAX_SHEDDING: usize = 64;

/// How long open connections get to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The limits connections live under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once; past it, new ones get a 503 and are closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may stay idle between requests.
    pub header_timeout: Duration,
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force (`None`
/// where the platform has none to tell).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(err) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%err, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The default connection cap: what the open-file limit leaves after a reserve, at most
/// [`MAX_DEFAULT_CONNECTIONS`].
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(MAX_DEFAULT_CONNECTIONS);
    let cap = limit
        .saturating_sub(RESERVED_FDS)
        .clamp(64, MAX_DEFAULT_CONNECTIONS);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open connections
/// finish (idle ones are closed).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let shedding = Arc::new(Semaphore::new(MAX_SHEDDING));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, addr) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Those already connected keep being served.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Dropped unanswered when too many are being answered already.
            if let Ok(permit) = shedding.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    shed(stream).await;
                    drop(permit);
                });
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(addr));
            router.clone().call(request)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors are the client's (it went away, or sent garbage): nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
    // No new connections while the open ones finish, and no waiting on them for ever.
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}

/// Answers a connection over the cap with a 503 and closes it, without reading the request.
async fn shed(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"server_busy","message":"the server has too many connections; retry shortly"}}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client sent, so closing does not reset the connection under the
        // answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}

//! The server on a real port: long-poll wake-ups, durability across a restart, many peers at
//! once, graceful shutdown, and Cloudflare TURN through a local stand-in for its API.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use callroom_server::{serve, AppState, Config};
use serde_json::{json, Value};
use tokio::sync::oneshot;

struct Running {
    url: String,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState::new(config).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Self {
            url,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("graceful shutdown finishes")
            .unwrap()
            .unwrap();
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
}

impl Client {
    fn new(url: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.to_owned(),
        }
    }

    async fn post(&self, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/signaling", self.url))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.unwrap())
    }

    async fn join(&self, room: &str) -> (String, String) {
        let (status, json) = self
            .post(None, json!({"type": "join", "room": room, "role": "peer"}))
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        (
            json["peerId"].as_str().unwrap().to_owned(),
            json["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn relay(&self, token: &str, to: &str, payload: Value) {
        let (status, json) = self
            .post(
                Some(token),
                json!({"type": "candidate", "to": to, "payload": payload}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
    }

    async fn poll(&self, token: &str, since: u64, wait_ms: u64) -> Value {
        let response = self
            .http
            .get(format!(
                "{}/messages?since={since}&wait={wait_ms}",
                self.url
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    /// Polls until `count` messages after `since` have arrived; returns them in order.
    async fn drain(&self, token: &str, mut since: u64, count: usize) -> Vec<Value> {
        let mut all = Vec::new();
        while all.len() < count {
            let reply = self.poll(token, since, 5_000).await;
            let batch = reply["messages"].as_array().unwrap();
            assert!(!batch.is_empty(), "messages stopped after {}", all.len());
            all.extend(batch.iter().cloned());
            since = reply["cursor"].as_u64().unwrap();
        }
        all
    }
}

fn config() -> Config {
    let mut config = common::test_config();
    config.relay_burst = 100_000.0;
    config.relay_rate = 100_000.0;
    config
}

#[tokio::test]
async fn a_long_poll_answers_a_relay_before_its_wait_expires() {
    let server = Running::start(config()).await;
    let client = Arc::new(Client::new(&server.url));
    let (a, a_token) = client.join("r").await;
    let (_b, b_token) = client.join("r").await;
    client.poll(&a_token, 0, 0).await; // peer-joined, seq 1

    let wait_ms = 20_000;
    let started = Instant::now();
    let waiting = {
        let client = client.clone();
        let token = a_token.clone();
        tokio::spawn(async move { client.poll(&token, 1, wait_ms).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.relay(&b_token, &a, json!({"n": 1})).await;
    let reply = waiting.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(wait_ms),
        "answered by the relay, not by the wait expiring"
    );
    assert_eq!(reply["messages"][0]["payload"], json!({"n": 1}));
    server.shutdown().await;
}

#[tokio::test]
async fn unacknowledged_messages_survive_a_restart_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.db = dir.path().join("restart.db").to_string_lossy().into_owned();

    let server = Running::start(config.clone()).await;
    let client = Client::new(&server.url);
    let (a, a_token) = client.join("r").await;
    let (_b, b_token) = client.join("r").await;
    for i in 0..50 {
        client.relay(&b_token, &a, json!({"i": i})).await;
    }
    // a reads the first 10 and acknowledges 5 before the restart.
    let early = client.poll(&a_token, 0, 0).await;
    assert!(early["messages"].as_array().unwrap().len() >= 10);
    client.poll(&a_token, 5, 0).await;
    server.shutdown().await;

    let server = Running::start(config).await;
    let client = Client::new(&server.url);
    let after = client.drain(&a_token, 5, 46).await;
    let seqs: Vec<u64> = after.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (6..=51).collect::<Vec<_>>(), "no gap, no duplicate");
    let payloads: Vec<u64> = after
        .iter()
        .map(|m| m["payload"]["i"].as_u64().unwrap())
        .collect();
    assert_eq!(payloads, (4..50).collect::<Vec<_>>(), "in send order");
    let empty = client.poll(&a_token, 51, 0).await;
    assert_eq!(empty["messages"], json!([]));
    server.shutdown().await;
}

#[tokio::test]
async fn many_peers_relaying_at_once_lose_duplicate_and_reorder_nothing() {
    let server = Running::start(config()).await;
    let client = Arc::new(Client::new(&server.url));
    let (target, target_token) = client.join("busy").await;
    const SENDERS: usize = 12;
    const EACH: usize = 40;
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        senders.push(client.join("busy").await);
    }
    let mut tasks = Vec::new();
    for (s, (_, token)) in senders.iter().enumerate() {
        let client = client.clone();
        let token = token.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                client.relay(&token, &target, json!({"s": s, "i": i})).await;
            }
        }));
    }
    // Read while they send: long-polls interleave with relays.
    let reader = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .drain(&target_token, 0, SENDERS + SENDERS * EACH)
                .await
        })
    };
    for task in tasks {
        task.await.unwrap();
    }
    let all = reader.await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=(SENDERS + SENDERS * EACH) as u64).collect::<Vec<_>>()
    );
    let mut next = vec![0u64; SENDERS];
    for m in all.iter().filter(|m| m["type"] == "candidate") {
        let s = m["payload"]["s"].as_u64().unwrap() as usize;
        assert_eq!(
            m["payload"]["i"].as_u64().unwrap(),
            next[s],
            "sender {s} in order"
        );
        next[s] += 1;
    }
    assert!(
        next.iter().all(|&n| n == EACH as u64),
        "every message arrived: {next:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_pending_long_polls_at_once() {
    let server = Running::start(config()).await;
    let client = Arc::new(Client::new(&server.url));
    let (_a, a_token) = client.join("r").await;
    let started = Instant::now();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.poll(&a_token, 0, 25_000).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown().await;
    let reply = waiting.await.unwrap();
    assert_eq!(reply["messages"], json!([]));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "drained, not waited out"
    );
}

/// A stand-in for Cloudflare's TURN key API on loopback.
async fn fake_cloudflare(fail: bool) -> (String, Arc<AtomicUsize>) {
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::routing::post;
    use axum::{Json, Router};

    let calls = Arc::new(AtomicUsize::new(0));
    async fn generate(
        State((calls, fail)): State<(Arc<AtomicUsize>, bool)>,
        Path(key_id): Path<String>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        calls.fetch_add(1, Ordering::SeqCst);
        if fail {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "boom"})),
            );
        }
        assert_eq!(key_id, "key-123");
        assert_eq!(headers["authorization"], "Bearer cf-api-token-secret");
        assert_eq!(body, json!({"ttl": 7200}));
        (
            StatusCode::CREATED,
            Json(json!({"iceServers": [
                {"urls": ["stun:stun.cloudflare.com:3478"]},
                {"urls": ["turn:turn.cloudflare.com:3478?transport=udp"],
                 "username": "minted-user", "credential": "minted-credential"}
            ]})),
        )
    }
    let app = Router::new()
        .route(
            "/v1/turn/keys/{key}/credentials/generate-ice-servers",
            post(generate),
        )
        .with_state((calls.clone(), fail));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn cloudflare_config(api_base: String) -> Config {
    let mut config = config();
    config.cf_turn_key_id = Some("key-123".into());
    config.cf_turn_api_token = Some("cf-api-token-secret".into());
    config.cf_api_base = api_base;
    config.turn_ttl = Duration::from_secs(7200);
    config
}

#[tokio::test]
async fn cloudflare_turn_credentials_are_minted_server_side_and_cached() {
    let (api, calls) = fake_cloudflare(false).await;
    let server = Running::start(cloudflare_config(api)).await;
    let client = Client::new(&server.url);
    let (status, joined) = client
        .post(None, json!({"type": "join", "room": "r", "role": "peer"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(joined["iceServers"][1]["username"], "minted-user");
    let token = joined["token"].as_str().unwrap();
    let reply: Value = client
        .http
        .post(format!("{}/turn-credentials", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["ttl"], 7200);
    assert_eq!(reply["iceServers"], joined["iceServers"]);
    assert!(!reply.to_string().contains("cf-api-token-secret"));
    assert!(!joined.to_string().contains("cf-api-token-secret"));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the second request used the cache"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_failing_turn_provider_is_502_but_joins_still_work() {
    let (api, calls) = fake_cloudflare(true).await;
    let server = Running::start(cloudflare_config(api)).await;
    let client = Client::new(&server.url);
    let (status, joined) = client
        .post(None, json!({"type": "join", "room": "r", "role": "peer"}))
        .await;
    assert_eq!(status, StatusCode::OK, "join survives a TURN outage");
    assert_eq!(joined["iceServers"], json!([]));
    let response = client
        .http
        .post(format!("{}/turn-credentials", server.url))
        .bearer_auth(joined["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "turn_unavailable");
    assert!(
        !body.to_string().contains("boom"),
        "provider details stay in the log"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the failure is remembered: the join and the request share one call"
    );
    server.shutdown().await;
}

// ---------------------------------------------------------------- slow and idle clients

/// A raw connection to `url` (`http://host:port`).
async fn raw(url: &str) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or `within` passes: `None`).
async fn until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_client_that_sends_half_its_headers_or_nothing_is_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let mut config = config();
    config.header_timeout = Duration::from_secs(1);
    let server = Running::start(config).await;
    let mut silent = raw(&server.url).await;
    let mut half = raw(&server.url).await;
    half.write_all(b"POST /signaling HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Closed after about a second, well before the 30 s a stalled connection used to keep.
    for stream in [&mut silent, &mut half] {
        let seen = until_closed(stream, Duration::from_secs(10)).await;
        assert!(seen.is_some(), "closed within 10 s");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_request_timeout() {
    use tokio::io::AsyncWriteExt;
    let mut config = config();
    config.body_timeout = Duration::from_secs(1);
    let server = Running::start(config).await;
    let mut stalled = raw(&server.url).await;
    stalled
        .write_all(
            b"POST /signaling HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"type\":",
        )
        .await
        .unwrap();
    let seen = until_closed(&mut stalled, Duration::from_secs(10))
        .await
        .expect("answered and closed within 10 s");
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("request_timeout"), "{seen}");
    server.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_get_a_quick_503_and_a_freed_slot_serves_again() {
    use tokio::io::AsyncWriteExt;
    let mut config = config();
    config.max_connections = Some(3);
    config.header_timeout = Duration::from_secs(30);
    let server = Running::start(config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(raw(&server.url).await);
    }
    // Give the server a moment to take them (accepting is asynchronous).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = raw(&server.url).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let seen = until_closed(&mut extra, Duration::from_secs(5))
        .await
        .expect("answered at once");
    assert!(seen.starts_with("HTTP/1.1 503"), "{seen}");
    assert!(seen.contains("server_busy"), "{seen}");
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    drop(held);
    server.shutdown().await;
}

#[tokio::test]
async fn one_client_address_past_its_join_burst_is_429_whatever_the_room() {
    let mut config = config();
    config.join_burst = 3.0;
    config.join_rate = 0.01;
    let server = Running::start(config).await;
    let client = Client::new(&server.url);
    for room in ["a", "b", "c"] {
        client.join(room).await;
    }
    let (status, json) = client
        .post(None, json!({"type": "join", "room": "d", "role": "peer"}))
        .await;
    assert_eq!(
        (status, json["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    server.shutdown().await;
}

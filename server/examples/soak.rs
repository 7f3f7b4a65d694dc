//! Soak: the attacks callroom-server was hardened against, rerun against a release server on
//! loopback, each for a few seconds, with what it did to the server. Run by
//! `cargo xtask soak` (not part of `cargo xtask test`). It reports; it asserts nothing.
//!
//! Each row: requests sent, how they were answered, 5xx, `/healthz` latency meanwhile
//! (p50 / p99 / max, from a prober polling every 20 ms on its own connections), the database
//! on disk (file + WAL) and the server's RSS afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "support/mod.rs"]
mod support;
use support::{percentile, rss_kib, spawn_server};

/// How long each flood runs.
const FLOOD: Duration = Duration::from_secs(6);

struct Server {
    child: tokio::process::Child,
    url: String,
    db: String,
    bin: String,
    listen: String,
}

impl Server {
    async fn start(bin: &str, db: &str, listen: &str) -> Self {
        let (child, url) = spawn_server(
            bin,
            &[
                "--listen",
                listen,
                "--db",
                db,
                "--header-timeout",
                "2s",
                "--body-timeout",
                "2s",
                "--peer-timeout",
                "5s",
                "--sfu",
                "off",
                // The sweep attack comes through a proxy, as many clients.
                "--trust-forwarded-for",
            ],
        )
        .await;
        let listen = url.trim_start_matches("http://").to_owned();
        Self {
            child,
            url,
            db: db.to_owned(),
            bin: bin.to_owned(),
            listen,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// Database file plus WAL, bytes.
    fn disk(&self) -> u64 {
        ["", "-wal"]
            .iter()
            .map(|s| std::fs::metadata(format!("{}{s}", self.db)).map_or(0, |m| m.len()))
            .sum()
    }

    async fn kill_and_restart(&mut self) {
        let _ = self.child.kill().await;
        *self = Server::start(&self.bin.clone(), &self.db.clone(), &self.listen.clone()).await;
    }
}

/// Answers by status, and the latencies of a `/healthz` prober running meanwhile.
#[derive(Default)]
struct Tally {
    statuses: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
}

impl Tally {
    fn count(&self, status: &str) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(status.to_owned())
            .or_default() += 1;
    }

    fn summary(&self) -> (u64, u64, String) {
        let statuses = self.statuses.lock().unwrap();
        let errors = statuses
            .iter()
            .filter(|(s, _)| s.starts_with('5') && !s.contains("507") && !s.contains("503"))
            .map(|(_, n)| n)
            .sum();
        let text = statuses
            .iter()
            .map(|(s, n)| format!("{n}×{s}"))
            .collect::<Vec<_>>()
            .join(" ");
        (self.requests.load(Ordering::Relaxed), errors, text)
    }
}

/// Polls `/healthz` every 20 ms until stopped; latencies in µs (a failure counts as 10 s).
fn probe(url: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(Vec<u64>, u64)> {
    let url = format!("{url}/healthz");
    tokio::spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let (mut latencies, mut failed) = (Vec::new(), 0);
        while !stop.load(Ordering::Relaxed) {
            let start = Instant::now();
            let ok = matches!(http.get(&url).send().await, Ok(r) if r.status().is_success());
            let us = start.elapsed().as_micros() as u64;
            if ok {
                latencies.push(us);
            } else {
                failed += 1;
                latencies.push(us.max(10_000_000));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies.sort_unstable();
        (latencies, failed)
    })
}

struct Row {
    attack: &'static str,
    requests: u64,
    errors_5xx: u64,
    answers: String,
    health: String,
    disk: u64,
    rss_mib: f64,
}

/// Runs `attack` with the prober beside it, and makes its row.
async fn measured<F, Fut>(server: &Server, attack: &'static str, run: F) -> Row
where
    F: FnOnce(Arc<Tally>) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(&server.url, stop.clone());
    let note = run(tally.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let (latencies, failed) = prober.await.unwrap();
    let (requests, errors_5xx, answers) = tally.summary();
    Row {
        attack,
        requests,
        errors_5xx,
        answers: if note.is_empty() {
            answers
        } else {
            format!("{answers}; {note}")
        },
        health: format!(
            "{:.1} / {:.1} / {:.1} ms{}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            percentile(&latencies, 100.0),
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        ),
        disk: server.disk(),
        rss_mib: rss_kib(server.pid()).0 as f64 / 1024.0,
    }
}

async fn post(http: &reqwest::Client, url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = http.post(format!("{url}/signaling")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

fn label(status: u16, body: &Value) -> String {
    match body["error"]["code"].as_str() {
        Some(code) => format!("{status} {code}"),
        None if status == 0 => "no answer".into(),
        None => status.to_string(),
    }
}

async fn join(http: &reqwest::Client, url: &str, room: &str) -> (String, String) {
    let (status, body) = post(
        http,
        url,
        None,
        json!({"type": "join", "room": room, "role": "peer"}),
    )
    .await;
    assert_eq!(status, 200, "join: {body}");
    (
        body["peerId"].as_str().unwrap().to_owned(),
        body["token"].as_str().unwrap().to_owned(),
    )
}

/// 15 senders push 60 KB relays at a peer that never polls.
async fn disk_fill(server: &Server, tally: Arc<Tally>) -> String {
    let http = reqwest::Client::new();
    let (victim, _) = join(&http, &server.url, "fill").await;
    let before = server.disk();
    let deadline = Instant::now() + FLOOD;
    let mut senders = Vec::new();
    for _ in 0..15 {
        let (http, url, victim, tally) = (
            http.clone(),
            server.url.clone(),
            victim.clone(),
            tally.clone(),
        );
        let (_, token) = join(&http, &url, "fill").await;
        senders.push(tokio::spawn(async move {
            let pad = "x".repeat(60_000);
            while Instant::now() < deadline {
                let (status, body) = post(
                    &http,
                    &url,
                    Some(&token),
                    json!({"type": "offer", "to": victim, "payload": {"pad": pad}}),
                )
                .await;
                tally.count(&label(status, &body));
                if status == 429 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    format!(
        "database {} → {} MB",
        before / 1_000_000,
        server.disk() / 1_000_000
    )
}

/// Joins from one address, as fast as 8 connections go.
async fn join_flood(server: &Server, tally: Arc<Tally>) -> String {
    let deadline = Instant::now() + FLOOD;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (url, tally) = (server.url.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let (status, body) = post(
                    &http,
                    &url,
                    None,
                    json!({"type": "join", "room": format!("flood-{t}-{i}"), "role": "peer"}),
                )
                .await;
                tally.count(&label(status, &body));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    String::new()
}

/// 1,100 connections that send half their headers, then nothing.
async fn stalled_connections(server: &Server, tally: Arc<Tally>) -> String {
    let mut held = Vec::new();
    for _ in 0..1_100 {
        match TcpStream::connect(&server.listen).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"POST /signaling HTTP/1.1\r\nHost: x\r\n")
                    .await;
                tally.count("opened");
                held.push(stream);
            }
            Err(_) => tally.count("connect failed"),
        }
    }
    // Past the header timeout (2 s), the server has closed them.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut closed = 0;
    for stream in &mut held {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_millis(5), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => closed += 1,
            Ok(Ok(_)) => closed += 1,
            Err(_) => {}
        }
    }
    format!("{closed} of {} closed by the server within 4 s", held.len())
}

/// 50 bodies declared as 10 GB, 10 bytes sent, then silence.
async fn slow_bodies(server: &Server, tally: Arc<Tally>) -> String {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (listen, tally) = (server.listen.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&listen).await else { return };
            let _ = stream
                .write_all(b"POST /signaling HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n{\"type\":\"j")
                .await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
            let text = String::from_utf8_lossy(&answer);
            let status = text.split_whitespace().nth(1).unwrap_or("none").to_owned();
            let code = text.split("\"code\":\"").nth(1).and_then(|t| t.split('"').next()).unwrap_or("");
            tally.count(&format!("{status} {code}"));
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    format!("all answered within {:.1} s", start.elapsed().as_secs_f64())
}

/// A room member sends `peer-reset` after `peer-reset` to one victim.
async fn reset_storm(server: &Server, tally: Arc<Tally>) -> String {
    let http = reqwest::Client::new();
    let (victim, _) = join(&http, &server.url, "resets").await;
    let (_, token) = join(&http, &server.url, "resets").await;
    for _ in 0..600 {
        let (status, body) = post(
            &http,
            &server.url,
            Some(&token),
            json!({"type": "peer-reset", "to": victim, "payload": {}}),
        )
        .await;
        tally.count(&label(status, &body));
    }
    String::new()
}

/// 20,000 peers join through a proxy (so from many addresses).
async fn mass_expiry(server: &Server, tally: Arc<Tally>) -> String {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for t in 0..8u32 {
        let (http, url, tally) = (http.clone(), server.url.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..2_500u32 {
                let n = t * 2_500 + i;
                let reply = http
                    .post(format!("{url}/signaling"))
                    .header("x-forwarded-for", format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255))
                    .json(&json!({"type": "join", "room": format!("expire-{}", n / 15), "role": "peer"}))
                    .send()
                    .await;
                tally.count(&reply.map_or("no answer".into(), |r| r.status().as_u16().to_string()));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    String::new()
}

/// The 20,000 stay silent: their 5 s timeout passes and the sweeps (every 1.7 s) remove
/// them, in batches, while the prober runs.
async fn expiry(_server: &Server, _tally: Arc<Tally>) -> String {
    tokio::time::sleep(Duration::from_secs(9)).await;
    String::from("all swept")
}

/// A sender relays numbered messages to a receiver that reads them, while the server is
/// killed (`kill -9`) and restarted on the same port and database.
async fn kill_restarts(server: &mut Server) -> Row {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let (receiver, receiver_token) = join(&http, &server.url, "durable").await;
    let (_, sender_token) = join(&http, &server.url, "durable").await;
    let url = server.url.clone();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (http, url, acknowledged, stop) = (
            http.clone(),
            url.clone(),
            acknowledged.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            // Every attempt has a number of its own: a relay stored whose answer the kill cut
            // off is no duplicate of the server's making.
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (status, _) = post(
                    &http,
                    &url,
                    Some(&sender_token),
                    json!({"type": "candidate", "to": receiver, "payload": {"n": n}}),
                )
                .await;
                if status == 200 {
                    acknowledged.lock().unwrap().push(n);
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    let received = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (http, url, received, stop) =
            (http.clone(), url.clone(), received.clone(), stop.clone());
        tokio::spawn(async move {
            let mut since = 0u64;
            loop {
                let stopping = stop.load(Ordering::Relaxed);
                let answer = http
                    .get(format!("{url}/messages?since={since}&wait=1000"))
                    .bearer_auth(&receiver_token)
                    .send()
                    .await;
                if let Ok(answer) = answer {
                    if let Ok(body) = answer.json::<Value>().await {
                        let messages = body["messages"].as_array().cloned().unwrap_or_default();
                        for m in &messages {
                            if let Some(n) = m["payload"]["n"].as_u64() {
                                received.lock().unwrap().push(n);
                            }
                        }
                        since = body["cursor"].as_u64().unwrap_or(since);
                        if stopping && messages.is_empty() {
                            return;
                        }
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };
    let restarts = 5;
    for _ in 0..restarts {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        server.kill_and_restart().await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sender.await;
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let sent = acknowledged.lock().unwrap().clone();
    let got = received.lock().unwrap().clone();
    let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
    for n in &got {
        *counts.entry(*n).or_default() += 1;
    }
    let lost = sent.iter().filter(|n| !counts.contains_key(n)).count();
    let duplicated = counts.values().filter(|c| **c > 1).count();
    Row {
        attack: "kill -9 restarts mid-traffic",
        requests: sent.len() as u64,
        errors_5xx: 0,
        answers: format!(
            "{restarts} restarts, {} acknowledged relays: {lost} lost, {duplicated} duplicated",
            sent.len()
        ),
        health: "-".into(),
        disk: server.disk(),
        rss_mib: rss_kib(server.pid()).0 as f64 / 1024.0,
    }
}

/// One request each of the smaller refusals.
async fn small_refusals(server: &Server, tally: Arc<Tally>) -> String {
    let http = reqwest::Client::new();
    // A foreign page's no-cors POST: text/plain.
    let plain = http
        .post(format!("{}/signaling", server.url))
        .header("content-type", "text/plain")
        .header("origin", "https://evil.example")
        .body(r#"{"type":"join","room":"hub","role":"host"}"#)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    tally.count(&format!("{plain} (text/plain join)"));
    // A live hub's host seat, without its key.
    let (status, _) = post(
        &http,
        &server.url,
        None,
        json!({"type": "join", "room": "seat", "role": "host"}),
    )
    .await;
    tally.count(&format!("{status} (first host)"));
    let (status, body) = post(
        &http,
        &server.url,
        None,
        json!({"type": "join", "room": "seat", "role": "host"}),
    )
    .await;
    tally.count(&label(status, &body));
    // A 60 KB field in an error.
    let (status, body) = post(
        &http,
        &server.url,
        None,
        json!({"type": "join", "room": "r", "role": "x".repeat(60_000)}),
    )
    .await;
    tally.count(&label(status, &body));
    let echoed = body["error"]["message"].as_str().map_or(0, str::len);
    // node_modules of the React demo.
    let modules = reqwest::get(format!(
        "{}/react/node_modules/react/package.json",
        server.url
    ))
    .await
    .map(|r| r.status().as_u16())
    .unwrap_or(0);
    tally.count(&format!("{modules} (node_modules)"));
    format!("60 KB field echoed as {echoed} bytes")
}

#[tokio::main]
async fn main() {
    let bin = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/callroom-server".into());
    // The stalled-connection attack needs more descriptors than the default 1,024 here too.
    let _ = callroom_server::conn::raise_open_file_limit();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("soak.db").to_string_lossy().into_owned();
    let mut server = Server::start(&bin, &db, "127.0.0.1:0").await;
    println!(
        "soak: release callroom-server on {} (loopback), floods of {} s",
        server.url,
        FLOOD.as_secs()
    );
    let mut rows = vec![
        measured(&server, "idle (baseline)", |_| async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            String::new()
        })
        .await,
    ];
    rows.push(
        measured(
            &server,
            "disk fill: 15 senders × 60 KB to a peer that never polls",
            |t| disk_fill(&server, t),
        )
        .await,
    );
    rows.push(
        measured(&server, "join flood from one address", |t| {
            join_flood(&server, t)
        })
        .await,
    );
    rows.push(
        measured(&server, "1,100 connections stalled mid-headers", |t| {
            stalled_connections(&server, t)
        })
        .await,
    );
    rows.push(
        measured(&server, "50 bodies declared 10 GB, 10 bytes sent", |t| {
            slow_bodies(&server, t)
        })
        .await,
    );
    rows.push(
        measured(&server, "600 peer-resets to one member", |t| {
            reset_storm(&server, t)
        })
        .await,
    );
    rows.push(
        measured(&server, "20,000 joins through a proxy", |t| {
            mass_expiry(&server, t)
        })
        .await,
    );
    rows.push(
        measured(&server, "those 20,000 expire and are swept", |t| {
            expiry(&server, t)
        })
        .await,
    );
    rows.push(
        measured(
            &server,
            "cross-origin, host seat, echo, node_modules",
            |t| small_refusals(&server, t),
        )
        .await,
    );
    rows.push(kill_restarts(&mut server).await);
    println!(
        "\n| attack | requests | 5xx | answers | /healthz p50 / p99 / max | db on disk | RSS |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} MB | {:.0} MiB |",
            r.attack,
            r.requests,
            r.errors_5xx,
            r.answers,
            r.health,
            r.disk as f64 / 1_000_000.0,
            r.rss_mib
        );
    }
    let _ = server.child.kill().await;
}

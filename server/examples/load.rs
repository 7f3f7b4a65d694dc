//! Signaling benchmark: N long-polling clients in M rooms relay candidates through a real
//! `callroom-server` process; prints relay latency (send -> delivered to the long-poll),
//! messages/s, the server's RSS and the SQLite settings. Run by `cargo xtask bench server`.
//!
//! Two phases: a steady load (each client sends one message per second) for latency, then a
//! saturating closed loop for throughput. Nothing here asserts a timing; it reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/mod.rs"]
mod support;
use support::{percentile, rss_kib};

struct Args {
    server_bin: String,
    clients: usize,
    room_size: usize,
    seconds: u64,
    senders: usize,
    json_out: Option<String>,
    workers: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        server_bin: "target/release/callroom-server".into(),
        clients: 2000,
        room_size: 4,
        seconds: 10,
        senders: 64,
        json_out: None,
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--server-bin" => args.server_bin = value,
            "--clients" => args.clients = value.parse().unwrap_or(args.clients),
            "--room-size" => args.room_size = value.parse().unwrap_or(args.room_size).max(2),
            "--seconds" => args.seconds = value.parse().unwrap_or(args.seconds),
            "--senders" => args.senders = value.parse().unwrap_or(args.senders),
            "--json" => args.json_out = Some(value),
            "--workers" => args.workers = Some(value),
            other => eprintln!("ignoring unknown flag {other}"),
        }
    }
    args
}

#[derive(Clone)]
struct Peer {
    id: String,
    token: String,
    room: usize,
}

struct Shared {
    http: reqwest::Client,
    url: String,
    started: Instant,
    latencies_us: Mutex<Vec<u64>>,
    delivered: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

async fn start_server(
    bin: &str,
    db: &str,
    workers: Option<&str>,
) -> (tokio::process::Child, String) {
    let mut args: Vec<&str> = workers.map(|w| vec!["--workers", w]).unwrap_or_default();
    args.extend([
        "--listen",
        "127.0.0.1:0",
        "--db",
        db,
        "--relay-rate",
        "1000000",
        "--relay-burst",
        "1000000",
        "--room-capacity",
        "64",
        // Every client comes from this one address: the join limits would pace them.
        "--join-burst",
        "1000000",
        "--room-join-burst",
        "1000000",
        "--peer-timeout",
        "120s",
    ]);
    support::spawn_server(bin, &args).await
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports in USER_HZ, which is 100 on every mainstream configuration.
    (ticks(11) + ticks(12)) / 100.0
}

async fn join(shared: &Shared, room: usize) -> Peer {
    let reply: Value = shared
        .http
        .post(format!("{}/signaling", shared.url))
        .json(&json!({"type": "join", "room": format!("bench-{room}"), "role": "peer"}))
        .send()
        .await
        .expect("join")
        .json()
        .await
        .expect("join reply");
    Peer {
        id: reply["peerId"].as_str().expect("peerId").to_owned(),
        token: reply["token"].as_str().expect("token").to_owned(),
        room,
    }
}

async fn poll_loop(shared: Arc<Shared>, peer: Peer) {
    let mut since = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let reply = shared
            .http
            .get(format!("{}/messages?since={since}&wait=2000", shared.url))
            .bearer_auth(&peer.token)
            .send()
            .await;
        let Ok(reply) = reply else { continue };
        let Ok(body) = reply.json::<Value>().await else {
            continue;
        };
        let now = shared.now_us();
        let mut batch = Vec::new();
        for m in body["messages"].as_array().into_iter().flatten() {
            if let Some(sent) = m["payload"]["t"].as_u64() {
                batch.push(now.saturating_sub(sent));
            }
        }
        if !batch.is_empty() {
            shared
                .delivered
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            shared.latencies_us.lock().unwrap().extend(batch);
        }
        since = body["cursor"].as_u64().unwrap_or(since);
    }
}

async fn relay(shared: &Shared, from: &Peer, to: &Peer) -> bool {
    let payload = json!({"t": shared.now_us(), "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0"});
    shared
        .http
        .post(format!("{}/signaling", shared.url))
        .bearer_auth(&from.token)
        .json(&json!({"type": "candidate", "to": to.id, "payload": payload}))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn summarize(latencies: &mut [u64]) -> (f64, f64, f64) {
    latencies.sort_unstable();
    (
        percentile(latencies, 50.0),
        percentile(latencies, 99.0),
        percentile(latencies, 100.0),
    )
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("bench.db").to_string_lossy().into_owned();
    let (server, url) = start_server(&args.server_bin, &db, args.workers.as_deref()).await;
    let pid = server.id().unwrap_or(0);
    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        url,
        started: Instant::now(),
        latencies_us: Mutex::new(Vec::new()),
        delivered: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    let rooms = args.clients.div_ceil(args.room_size);
    let mut peers = Vec::with_capacity(args.clients);
    let join_started = Instant::now();
    for chunk in (0..args.clients).collect::<Vec<_>>().chunks(50) {
        let joins: Vec<_> = chunk
            .iter()
            .map(|i| {
                let shared = shared.clone();
                let room = i % rooms;
                tokio::spawn(async move { join(&shared, room).await })
            })
            .collect();
        for handle in joins {
            peers.push(handle.await.expect("join task"));
        }
    }
    let join_secs = join_started.elapsed().as_secs_f64();
    let mut by_room: Vec<Vec<Peer>> = vec![Vec::new(); rooms];
    for peer in &peers {
        by_room[peer.room].push(peer.clone());
    }
    let pollers: Vec<_> = peers
        .iter()
        .map(|p| tokio::spawn(poll_loop(shared.clone(), p.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await; // let every poll settle into waiting
    shared.latencies_us.lock().unwrap().clear(); // peer-joined events carry no timestamp anyway

    // Phase 1: steady load, one message per client per second, spread over the second.
    let steady_started = Instant::now();
    let mut tasks = Vec::new();
    for (i, peer) in peers.iter().enumerate() {
        let shared = shared.clone();
        let peer = peer.clone();
        let others: Vec<Peer> = by_room[peer.room]
            .iter()
            .filter(|p| p.id != peer.id)
            .cloned()
            .collect();
        let offset = Duration::from_micros((i as u64 * 1_000_000) / args.clients as u64);
        let seconds = args.seconds;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(offset).await;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for n in 0..seconds {
                tick.tick().await;
                if !others.is_empty() {
                    relay(&shared, &peer, &others[n as usize % others.len()]).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let steady_secs = steady_started.elapsed().as_secs_f64();
    let mut steady = std::mem::take(&mut *shared.latencies_us.lock().unwrap());
    let steady_count = steady.len();
    let (s50, s99, smax) = summarize(&mut steady);
    let (rss_steady, _) = rss_kib(pid);

    // Phase 2: saturation, `senders` relays in flight at all times.
    let sent = Arc::new(AtomicU64::new(0));
    let delivered_before = shared.delivered.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let sat_started = Instant::now();
    let (server_cpu_before, client_cpu_before) = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    let mut tasks = Vec::new();
    for s in 0..args.senders {
        let shared = shared.clone();
        let sent = sent.clone();
        let room = &by_room[s % rooms];
        let (from, to) = (room[0].clone(), room[1 % room.len()].clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if relay(&shared, &from, &to).await {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let sat_secs = sat_started.elapsed().as_secs_f64() - 1.0;
    let server_cpu = cpu_secs(&pid.to_string()) - server_cpu_before;
    let client_cpu = cpu_secs("self") - client_cpu_before;
    let delivered = shared.delivered.load(Ordering::Relaxed) - delivered_before;
    let mut saturated = std::mem::take(&mut *shared.latencies_us.lock().unwrap());
    let (t50, t99, _) = summarize(&mut saturated);
    let (rss_end, rss_peak) = rss_kib(pid);

    shared.stop.store(true, Ordering::Relaxed);
    for p in pollers {
        p.abort();
    }
    let conn = rusqlite::Connection::open(&db).ok();
    let journal: String = conn
        .as_ref()
        .and_then(|c| c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).ok())
        .unwrap_or_default();
    drop(server);

    let sent = sent.load(Ordering::Relaxed);
    let sqlite: Vec<String> = callroom_server::store::PRAGMAS
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "signaling benchmark: {} clients long-polling in {rooms} rooms of {}",
        args.clients, args.room_size
    );
    println!(
        "  joins                       {:>10.0} joins/s ({} in {join_secs:.1} s)",
        args.clients as f64 / join_secs,
        args.clients
    );
    println!("  steady load                 {:>10.0} msg/s offered ({steady_count} delivered in {steady_secs:.1} s)", args.clients as f64);
    println!("    relay latency p50         {s50:>10.2} ms");
    println!("    relay latency p99         {s99:>10.2} ms   (target < 50 ms)");
    println!("    relay latency max         {smax:>10.2} ms");
    println!("  saturation ({} senders)     {:>10.0} msg/s delivered ({sent} sent, {delivered} delivered; target >= 10000)", args.senders, delivered as f64 / sat_secs);
    println!("    relay latency p50 / p99   {t50:>10.2} / {t99:.2} ms");
    println!("    CPU used                  {server_cpu:>10.1} s server, {client_cpu:.1} s load generator (2 cores shared)");
    println!(
        "    server CPU per message    {:>10.1} us  (= {:.0} msg/s per server core)",
        server_cpu * 1e6 / delivered.max(1) as f64,
        delivered as f64 / server_cpu.max(1e-9)
    );
    println!(
        "  server RSS                  {:>10.1} MiB after steady, {:.1} MiB at end, {:.1} MiB peak",
        rss_steady as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    println!(
        "  sqlite                      {} (file reports journal_mode={journal})",
        sqlite.join(", ")
    );
    if let Some(path) = args.json_out {
        let report = json!({
            "clients": args.clients, "rooms": rooms, "roomSize": args.room_size,
            "steady": {"offeredPerSec": args.clients, "delivered": steady_count,
                       "p50Ms": s50, "p99Ms": s99, "maxMs": smax},
            "saturation": {"senders": args.senders, "sent": sent, "delivered": delivered,
                           "deliveredPerSec": delivered as f64 / sat_secs, "p50Ms": t50, "p99Ms": t99,
                           "serverCpuSecs": server_cpu, "loadCpuSecs": client_cpu,
                           "serverCpuUsPerMessage": server_cpu * 1e6 / delivered.max(1) as f64},
            "serverRssMiB": {"steady": rss_steady as f64 / 1024.0, "end": rss_end as f64 / 1024.0, "peak": rss_peak as f64 / 1024.0},
            "sqlite": sqlite,
        });
        if let Err(e) = std::fs::write(
            &path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        ) {
            eprintln!("cannot write {path}: {e}");
        }
    }
}

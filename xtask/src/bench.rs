//! `cargo xtask bench [part ...]`: benchmarks that print numbers. They report; they never
//! assert timings (this machine is shared, so figures measured side by side are what count).
//! Parts: size, join, scale, restart, server, memory, sfu, recording, worker. JSON goes to
//! `target/bench/`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::run::{cmd, output, root, status, step, tee};

const PARTS: &[&str] = &[
    "size",
    "join",
    "scale",
    "restart",
    "server",
    "memory",
    "sfu",
    "recording",
    "worker",
];

pub fn run(args: &[String]) -> Result<()> {
    let parts: Vec<&str> = if args.is_empty() {
        PARTS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for part in &parts {
        if !PARTS.contains(part) {
            bail!("unknown bench part `{part}`; parts: {}", PARTS.join(", "));
        }
    }
    // The SFU bench is native and in-process: it needs neither the package nor a browser.
    if parts.iter().all(|p| *p == "sfu") {
        return sfu();
    }
    crate::setup::run()?;
    crate::build::run()?;
    build_release_server("load")?;
    if parts.contains(&"worker") {
        crate::worker::build()?;
    }
    std::fs::create_dir_all(bench_dir())?;
    let machine = machine();
    println!("\nmachine: {machine}");
    for part in &parts {
        match *part {
            "server" => server()?,
            "sfu" => sfu()?,
            browser_part => node(browser_part)?,
        }
    }
    summarize(&machine)
}

/// Builds callroom-server and its example `example` (a load generator) in release.
pub fn build_release_server(example: &str) -> Result<()> {
    step(&format!(
        "build callroom-server and its `{example}` example (release)"
    ));
    status(
        "cargo build --release",
        cmd("cargo").args([
            "build",
            "--release",
            "-p",
            "callroom-server",
            "--bin",
            "callroom-server",
            "--example",
            example,
        ]),
    )
}

fn bench_dir() -> PathBuf {
    root().join("target").join("bench")
}

fn release_server() -> PathBuf {
    root()
        .join("target")
        .join("release")
        .join("callroom-server")
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|s| s.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let chromium = output(std::process::Command::new("chromium").arg("--version"))
        .unwrap_or_else(|| "chromium not installed".into());
    format!("{cores} cores, {cpu}; {chromium}")
}

/// A browser benchmark: `node bench/<part>.mjs` against the release server. `join` also
/// runs its cold mode (`bench/join-cold.mjs`: fresh contexts, against PeerJS), with
/// Chromium's fake camera (which opens at once) and with cameras that take 300 ms to open,
/// as a real webcam's first open does.
fn node(part: &str) -> Result<()> {
    let scripts: &[(&str, &str)] = if part == "join" {
        &[("join", "0"), ("join-cold", "0"), ("join-cold", "300")]
    } else {
        &[(part, "0")]
    };
    for (script, camera_ms) in scripts {
        step(&format!("bench {script} (cameras open in {camera_ms} ms)"));
        status(
            &format!("bench {script}"),
            cmd("node")
                .arg(root().join("bench").join(format!("{script}.mjs")))
                .env("CALLROOM_SERVER_BIN", release_server())
                .env("BENCH_CAMERA_MS", camera_ms),
        )?;
    }
    Ok(())
}

/// The signaling server under 2000 long-polling clients, with one runtime worker (the load
/// generator needs the other core here) and with one per core.
fn server() -> Result<()> {
    let release = root().join("target").join("release");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut workers = vec![1];
    if cores > 1 {
        workers.push(cores);
    }
    for w in workers {
        step(&format!(
            "bench server: 2000 clients, server with {w} worker thread(s)"
        ));
        status(
            "load generator",
            cmd(&release.join("examples").join("load").to_string_lossy())
                .arg("--server-bin")
                .arg(release_server())
                .args([
                    "--clients",
                    "2000",
                    "--seconds",
                    "10",
                    "--workers",
                    &w.to_string(),
                ])
                .arg("--json")
                .arg(bench_dir().join(format!("server-{w}w.json"))),
        )?;
    }
    Ok(())
}

/// The embedded SFU's forwarding cost, delay and memory at 10, 50 and 200 forwarded streams:
/// synthetic str0m publishers and subscribers in one process (`sfu/examples/bench.rs`).
fn sfu() -> Result<()> {
    step("bench sfu: forwarding at 10, 50 and 200 streams (release, in-process)");
    let (ok, lines) = tee(cmd("cargo").args([
        "run",
        "--quiet",
        "--release",
        "-p",
        "callroom-sfu",
        "--example",
        "bench",
        "--",
        "--streams",
        "10,50,200",
    ]))?;
    if !ok {
        bail!("the SFU benchmark failed");
    }
    std::fs::create_dir_all(bench_dir())?;
    let json = serde_json::json!({ "report": lines });
    std::fs::write(
        bench_dir().join("sfu.json"),
        serde_json::to_string_pretty(&json)?,
    )?;
    Ok(())
}

/// Merges every part's JSON into `results.json`.
fn summarize(machine: &str) -> Result<()> {
    let mut merged = serde_json::Map::new();
    merged.insert("machine".into(), machine.into());
    for entry in std::fs::read_dir(bench_dir())? {
        let path = entry?.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.extension().and_then(|e| e.to_str()) != Some("json") || name == "results" {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        merged.insert(name, value);
    }
    let out = bench_dir().join("results.json");
    std::fs::write(&out, serde_json::to_string_pretty(&merged)?)?;
    println!("\nall results: {}", out.display());
    Ok(())
}

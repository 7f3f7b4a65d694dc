//! `cargo xtask bench [part]`: benchmarks that print numbers. They report; they never assert
//! timings (this machine is shared, and only figures measured side by side mean much).

use anyhow::{bail, Result};

use crate::run::{cmd, output, root, status, step};

const PARTS: &[&str] = &["server"];

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
    std::fs::create_dir_all(root().join("target").join("bench"))?;
    print_machine();
    for part in parts {
        if part == "server" {
            server()?;
        }
    }
    Ok(())
}

fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(str::trim)
                    .map(String::from)
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let chromium = output(std::process::Command::new("chromium").arg("--version"))
        .unwrap_or_else(|| "chromium not installed".into());
    println!("machine: {cores} cores, {cpu}; {chromium}");
}

/// The signaling server under N long-polling clients, with one runtime worker (the load
/// generator needs the other core here) and with one per core.
fn server() -> Result<()> {
    step("build callroom-server and the load generator (release)");
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
            "load",
        ]),
    )?;
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
        let json = root()
            .join("target")
            .join("bench")
            .join(format!("server-{w}w.json"));
        status(
            "load generator",
            cmd(&release.join("examples").join("load").to_string_lossy())
                .arg("--server-bin")
                .arg(release.join("callroom-server"))
                .args([
                    "--clients",
                    "2000",
                    "--seconds",
                    "10",
                    "--workers",
                    &w.to_string(),
                ])
                .arg("--json")
                .arg(&json),
        )?;
        println!("(JSON: {})", json.display());
    }
    Ok(())
}

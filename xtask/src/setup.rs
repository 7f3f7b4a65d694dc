//! `cargo xtask setup`: install only what is missing, and say what each step does.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run::{cmd, is_root, output, root, status, step};

/// wasm-pack release that `setup` installs when none is present.
const WASM_PACK_VERSION: &str = "0.15.1";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Root folders holding a package.json + package-lock.json that `npm ci` installs.
const NPM_FOLDERS: &[&str] = &[".", "demo/react"];

/// Runs every set-up step in order; the first failure stops with a message naming the step.
pub fn run() -> Result<()> {
    let started = std::time::Instant::now();
    wasm_target().context("setup step `wasm32 target`")?;
    wasm_pack().context("setup step `wasm-pack`")?;
    wasm_bindgen_cli().context("setup step `wasm-bindgen-cli`")?;
    chromium().context("setup step `chromium`")?;
    node().context("setup step `node`")?;
    network_tools().context("setup step `iproute2 + nftables + coturn`")?;
    crate::worker::setup().context("setup step `worker-build`")?;
    for folder in NPM_FOLDERS {
        npm_ci(folder).with_context(|| format!("setup step `npm ci` in {folder}"))?;
    }
    println!(
        "setup: everything present ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn wasm_target() -> Result<()> {
    step("rust target wasm32-unknown-unknown");
    let installed = output(cmd("rustup").args(["target", "list", "--installed"]))
        .context("rustup is needed to add the wasm32 target; install it from rustup.rs")?;
    if installed.lines().any(|l| l.trim() == WASM_TARGET) {
        println!("present");
        return Ok(());
    }
    status(
        "rustup target add",
        cmd("rustup").args(["target", "add", WASM_TARGET]),
    )
}

fn wasm_pack() -> Result<()> {
    step("wasm-pack");
    if let Some(version) = output(cmd("wasm-pack").arg("--version")) {
        println!("present: {version}");
        return Ok(());
    }
    println!("installing wasm-pack {WASM_PACK_VERSION} with cargo install (a few minutes)");
    status(
        "cargo install wasm-pack",
        cmd("cargo").args([
            "install",
            "wasm-pack",
            "--locked",
            "--version",
            WASM_PACK_VERSION,
        ]),
    )
}

/// The exact version the `wasm-bindgen` crate is pinned to in the root Cargo.toml.
pub fn pinned_wasm_bindgen() -> Result<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("wasm-bindgen = \"=")?;
            Some(rest.trim_end_matches('"').to_owned())
        })
        .context("Cargo.toml must pin wasm-bindgen with `wasm-bindgen = \"=X.Y.Z\"`")
}

fn wasm_bindgen_cli() -> Result<()> {
    let wanted = pinned_wasm_bindgen()?;
    step(&format!("wasm-bindgen-cli {wanted}"));
    let found = output(cmd("wasm-bindgen").arg("--version"));
    let runner = output(cmd("wasm-bindgen-test-runner").arg("--version"));
    let matches = |v: &Option<String>| v.as_deref().is_some_and(|v| v.ends_with(&wanted));
    if matches(&found) && matches(&runner) {
        println!("present");
        return Ok(());
    }
    println!(
        "installing wasm-bindgen-cli {wanted} (found {}) with cargo install (a few minutes)",
        found.as_deref().unwrap_or("none")
    );
    let install = |locked: bool| {
        let mut command = cmd("cargo");
        command.args([
            "install",
            "wasm-bindgen-cli",
            "--force",
            "--version",
            &wanted,
        ]);
        if locked {
            command.arg("--locked");
        }
        status("cargo install wasm-bindgen-cli", &mut command)
    };
    // The CLI's own lockfile can name a dependency release the registry mirror lacks;
    // then resolve afresh (the CLI's version itself stays exact).
    install(true).or_else(|err| {
        println!("{err:#}; retrying without --locked");
        install(false)
    })
}

fn chromium() -> Result<()> {
    step("chromium + chromedriver (Debian packages)");
    apt_unless_present(
        &[("chromium", "--version"), ("chromedriver", "--version")],
        &["chromium", "chromium-driver"],
    )
}

/// What the network stage builds its namespaces with, and its TURN server; only as root,
/// where that stage runs.
fn network_tools() -> Result<()> {
    step("iproute2 + nftables + coturn (network stage)");
    if !is_root() {
        println!("not root: the network stage will be skipped");
        return Ok(());
    }
    apt_unless_present(
        &[
            ("ip", "-V"),
            ("nft", "--version"),
            ("turnserver", "--version"),
        ],
        &["iproute2", "nftables", "coturn"],
    )
}

fn node() -> Result<()> {
    step("node + npm");
    apt_unless_present(
        &[("node", "--version"), ("npm", "--version")],
        &["nodejs", "npm"],
    )
}

/// Says which versions are there when every `(program, version flag)` of `probes` answers;
/// otherwise installs `packages` with apt-get.
fn apt_unless_present(probes: &[(&str, &str)], packages: &[&str]) -> Result<()> {
    let versions: Option<Vec<String>> = probes
        .iter()
        .map(|(program, flag)| {
            output(Command::new(program).arg(flag)).map(|v| format!("{program}: {v}"))
        })
        .collect();
    match versions {
        Some(versions) => {
            println!("present: {}", versions.join("; "));
            Ok(())
        }
        None => apt_install(packages),
    }
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !is_root() {
        bail!(
            "missing system packages; run as root: apt-get update && apt-get install -y {}",
            packages.join(" ")
        );
    }
    println!("installing {} with apt-get", packages.join(" "));
    status(
        "apt-get update",
        Command::new("apt-get").args(["update", "-q"]),
    )?;
    status(
        "apt-get install",
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// `npm ci` when node_modules does not match the committed lockfile.
///
/// npm writes `node_modules/.package-lock.json` describing what it installed; a copy of the
/// lockfile we installed from, kept beside it, tells whether anything changed since.
fn npm_ci(folder: &str) -> Result<()> {
    let dir = root().join(folder);
    step(&format!(
        "node dev dependencies ({folder}/package-lock.json)"
    ));
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("{folder}/package-lock.json is missing"))?;
    let stamp = dir.join("node_modules").join(".callroom-installed-lock");
    if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        println!("present (matches package-lock.json)");
        return Ok(());
    }
    status(
        "npm ci",
        cmd("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
    )?;
    std::fs::write(&stamp, &lock)?;
    Ok(())
}

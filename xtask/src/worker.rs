//! `cargo xtask worker`: the Cloudflare Worker (`worker/`), built with worker-build from local
//! tools only, and run offline under workerd with `wrangler dev`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run::{cargo_bin_dir, cmd, output, root, status, step};

/// worker-build release matching the `worker` crate.
const WORKER_BUILD_VERSION: &str = "0.8.7";

/// Installs worker-build when it is missing or another version.
pub fn setup() -> Result<()> {
    step(&format!(
        "worker-build {WORKER_BUILD_VERSION} (Cloudflare Worker)"
    ));
    let found = output(cmd("worker-build").arg("--version"));
    if found
        .as_deref()
        .is_some_and(|v| v.ends_with(WORKER_BUILD_VERSION))
    {
        println!("present");
        return Ok(());
    }
    println!("installing worker-build {WORKER_BUILD_VERSION} with cargo install (a few minutes)");
    status(
        "cargo install worker-build",
        cmd("cargo").args([
            "install",
            "worker-build",
            "--locked",
            "--force",
            "--version",
            WORKER_BUILD_VERSION,
        ]),
    )
}

/// The Worker's folder.
pub fn dir() -> PathBuf {
    root().join("worker")
}

/// Static assets the Worker serves: the demo pages at `/`, the package at `/pkg/`.
pub fn assets_dir() -> PathBuf {
    root().join("target").join("worker-assets")
}

/// Builds the Worker (`worker/build/`) and its assets; `pkg/` must be built already.
pub fn build() -> Result<()> {
    step("worker-build --release (worker/)");
    let node_bin = root().join("node_modules").join(".bin");
    status(
        "worker-build",
        cmd("worker-build")
            .arg("--release")
            .current_dir(dir())
            // worker-build would download these; ours are pinned and installed by setup.
            .env("WASM_BINDGEN_BIN", cargo_bin_dir().join("wasm-bindgen"))
            .env("WASM_OPT_BIN", node_bin.join("wasm-opt"))
            .env("ESBUILD_BIN", node_bin.join("esbuild")),
    )?;
    step("assemble the Worker's assets (demo pages + pkg/)");
    let assets = assets_dir();
    if assets.exists() {
        std::fs::remove_dir_all(&assets).context("removing old Worker assets")?;
    }
    std::fs::create_dir_all(&assets)?;
    for entry in std::fs::read_dir(root().join("demo"))? {
        let entry = entry?;
        let name = entry.file_name();
        let shipped = Path::new(&name)
            .extension()
            .is_some_and(|e| e == "html" || e == "js" || e == "css");
        if entry.file_type()?.is_file() && shipped {
            std::fs::copy(entry.path(), assets.join(&name))?;
        }
    }
    let pkg = root().join("pkg");
    if !pkg.join("callroom.js").exists() {
        bail!("pkg/ is not built: run `cargo xtask build` first");
    }
    crate::build::copy_dir(&pkg, &assets.join("pkg"))?;
    Ok(())
}

/// `wrangler` with the offline environment: no metrics, no banner, no request to Cloudflare
/// for `request.cf`, and its config and logs under `target/`.
pub fn wrangler() -> Command {
    let home = root().join("target").join("wrangler");
    let mut command = cmd("wrangler");
    command
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("XDG_CONFIG_HOME", &home)
        .env("WRANGLER_LOG_PATH", home.join("logs"));
    command
}

/// `cargo xtask worker dev --port P --persist-to DIR [--var NAME:VALUE ...]`: builds, then
/// serves the Worker on 127.0.0.1:P until stopped.
pub fn dev(args: &[String]) -> Result<()> {
    let mut port = "8787".to_owned();
    let mut persist = root().join("target").join("worker-state");
    let mut vars = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .with_context(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--port" => port = value()?,
            "--persist-to" => persist = PathBuf::from(value()?),
            "--var" => vars.push(value()?),
            other => bail!("unknown option `{other}` (use --port, --persist-to, --var NAME:VALUE)"),
        }
    }
    crate::setup::run()?;
    crate::build::run()?;
    build()?;
    step(&format!(
        "wrangler dev on http://127.0.0.1:{port}/ (Ctrl-C stops it)"
    ));
    let mut command = wrangler();
    command
        .arg("dev")
        .args(dev_args(&port, &persist))
        .args(vars.iter().flat_map(|v| ["--var", v.as_str()]));
    status("wrangler dev", &mut command)
}

/// The arguments of an offline `wrangler dev` of our Worker.
pub fn dev_args(port: &str, persist: &Path) -> Vec<String> {
    vec![
        "--config".into(),
        dir().join("wrangler.toml").display().to_string(),
        "--local".into(),
        "--ip".into(),
        "127.0.0.1".into(),
        "--port".into(),
        port.into(),
        "--persist-to".into(),
        persist.display().to_string(),
        "--show-interactive-dev-session=false".into(),
        "--inspector-port".into(),
        "0".into(),
        "--log-level".into(),
        "warn".into(),
    ]
}

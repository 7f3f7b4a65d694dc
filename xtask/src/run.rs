//! Running commands: a shared PATH, step banners, and output that is shown live and kept.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The repository root (the folder holding the workspace Cargo.toml).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives one folder below the root")
            .to_path_buf()
    })
}

/// Where `cargo install` puts binaries.
pub fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
        .join("bin")
}

/// PATH with cargo's bin folder and the root's `node_modules/.bin` in front, so tools
/// installed by `setup` are found even when the caller's PATH lacks them.
fn path_env() -> std::ffi::OsString {
    let mut dirs = vec![cargo_bin_dir(), root().join("node_modules").join(".bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// A command run from the repository root with the shared PATH.
pub fn cmd(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(root()).env("PATH", path_env());
    command
}

/// Prints a step banner.
pub fn step(what: &str) {
    println!("\n==> {what}");
    let _ = std::io::stdout().flush();
}

/// Runs `command` with inherited output; an error names `what` failed.
pub fn status(what: &str, command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("{what}: cannot start {:?}", command.get_program()))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs `command` quietly and returns its trimmed stdout, or `None` when it cannot run or fails.
pub fn output(command: &mut Command) -> Option<String> {
    let out = command.stderr(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `command`, echoing its stdout live, and returns whether it succeeded plus every
/// stdout line (for summaries).
pub fn tee(command: &mut Command) -> Result<(bool, Vec<String>)> {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let mut lines = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let mut out = std::io::stdout();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            let _ = writeln!(out, "{line}");
            lines.push(line);
        }
    }
    let status = child.wait()?;
    Ok((status.success(), lines))
}

/// True when running as root (so apt-get can install system packages).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).as_deref() == Some("0")
}

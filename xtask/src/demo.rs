//! `cargo xtask demo`: setup + build, then the server with the demo on port 8080.

use anyhow::Result;

use crate::run::{cmd, root, status, step};

pub fn run(extra_args: &[String]) -> Result<()> {
    crate::setup::run()?;
    crate::build::run()?;
    step("build callroom-server");
    status(
        "cargo build",
        cmd("cargo").args(["build", "-p", "callroom-server"]),
    )?;
    step("run callroom-server (Ctrl-C stops it)");
    let server = root().join("target").join("debug").join("callroom-server");
    // Same foreground process group: Ctrl-C reaches the server, which shuts down cleanly.
    status(
        "callroom-server",
        cmd(&server.to_string_lossy())
            .args(["--listen", "127.0.0.1:8080"])
            .args(extra_args),
    )
}

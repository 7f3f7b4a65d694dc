//! `cargo xtask soak`: reruns the attacks the server was hardened against on a release
//! build, on loopback, a few seconds each, and prints what they did (`server/examples/soak.rs`).
//! Not part of `cargo xtask test`: it reports, it asserts nothing.

use anyhow::Result;

use crate::run::{cmd, root, status, step};

pub fn run() -> Result<()> {
    crate::bench::build_release_server("soak")?;
    let release = root().join("target").join("release");
    step("soak");
    status(
        "soak",
        cmd(&release.join("examples").join("soak").to_string_lossy())
            .arg(release.join("callroom-server")),
    )
}

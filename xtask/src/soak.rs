//! `cargo xtask soak`: reruns the attacks the server was hardened against on a release
//! build, on loopback, a few seconds each, and prints what they did (`server/examples/soak.rs`).
//! Not part of `cargo xtask test`: it reports, it asserts nothing.

use anyhow::Result;

use crate::run::{cmd, root, status, step};

pub fn run() -> Result<()> {
    step("build callroom-server and the soak (release)");
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
            "soak",
        ]),
    )?;
    let release = root().join("target").join("release");
    step("soak");
    status(
        "soak",
        cmd(&release.join("examples").join("soak").to_string_lossy())
            .arg(release.join("callroom-server")),
    )
}

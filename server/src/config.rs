//! Command-line flags, each with a `CALLROOM_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// callroom-server: signaling for callroom video calls, and the demo pages.
#[derive(Debug, Clone, Parser)]
#[command(name = "callroom-server", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CALLROOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder served at `/` (the demo pages).
    #[arg(long, env = "CALLROOM_DEMO_DIR", default_value = "demo")]
    pub demo_dir: PathBuf,

    /// Folder served at `/pkg/` (the built npm package).
    #[arg(long, env = "CALLROOM_PKG_DIR", default_value = "pkg")]
    pub pkg_dir: PathBuf,
}

impl Config {
    /// A configuration for tests: the given folders, an ephemeral port.
    pub fn for_tests(demo_dir: PathBuf, pkg_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            demo_dir,
            pkg_dir,
        }
    }
}

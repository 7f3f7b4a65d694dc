//! The `callroom-server` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use callroom_server::{serve, shutdown_signal, AppState, Config};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        runtime.worker_threads(workers.max(1));
    }
    match runtime.enable_all().build() {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(err) => {
            eprintln!("callroom-server: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> ExitCode {
    match callroom_server::conn::raise_open_file_limit() {
        Some(limit) => tracing::info!(limit, "open-file limit"),
        None => tracing::info!("no open-file limit"),
    }
    let listen = config.listen;
    let state = match AppState::new(config) {
        Ok(state) => state,
        Err(err) => {
            eprintln!("callroom-server: {err}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("callroom-server: cannot listen on {listen}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().map_or(listen, |a| a);
    // Printed (not only logged) so scripts and people can find the server.
    println!("callroom-server listening on http://{addr}/");
    if let Some(sfu) = &state.sfu {
        if let callroom_server::sfu::Backend::Local(local) = &sfu.backend {
            let udp = local.udp_addr().map(|a| a.to_string()).unwrap_or_default();
            println!(
                "embedded SFU on udp {udp}; its Calls API: http://{addr}/v1 (app id `{}`)",
                sfu.app_id
            );
            if state.config.calls_app_secret.is_none() {
                // Never printed: it opens every room's media. Browsers use the room proxy.
                println!("(its app secret is random; pass --calls-app-secret to use /v1 directly)");
            }
        }
        if cfg!(panic = "abort") {
            tracing::warn!(
                "built with panic=abort: one failing SFU session ends the process; build with --profile server"
            );
        }
    }
    match serve(listener, state, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("callroom-server: {err}");
            ExitCode::FAILURE
        }
    }
}

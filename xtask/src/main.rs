//! The callroom task runner. `cargo xtask <task>`; see README.md.
#![forbid(unsafe_code)]

mod bench;
mod build;
mod demo;
mod run;
mod setup;
mod soak;
mod test;
mod test_servers;
mod worker;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  setup   install what is missing: wasm32 target, wasm-pack, wasm-bindgen-cli,
          chromium + chromedriver, node dev dependencies (npm ci)
  build   build the wasm package into pkg/ and pack an npm tarball into target/
  demo    setup + build, then serve the demo on http://127.0.0.1:8080/
  test    setup, then fmt, clippy (native + wasm32), native tests, browser tests,
          build (pkg, Worker, server), end-to-end tests, protocol conformance against
          callroom-server and the Worker, end-to-end tests against the Worker, network
          tests; prints a summary line per stage
  test browser [FILTER]
          only the browser tests (those whose name contains FILTER)
  bench [size|join|scale|restart|server|memory|sfu|recording|worker]
          benchmarks that print numbers (and JSON under target/bench/)
  worker build
          build the Cloudflare Worker (worker/build/) and its assets
  worker dev [--port P] [--persist-to DIR] [--var NAME:VALUE]...
          build, then run the Worker offline under workerd on 127.0.0.1:P
  soak    the attacks the server is hardened against, on a release build, with
          what each did to it (not part of test)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup::run(),
        Some("build") => setup::run().and_then(|()| build::run()),
        Some("demo") => demo::run(&args[1..]),
        Some("test") => return test::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("soak") => soak::run(),
        Some("worker") => match args.get(1).map(String::as_str) {
            Some("dev") => worker::dev(&args[2..]),
            Some("build") => setup::run()
                .and_then(|()| build::run())
                .and_then(|()| worker::build()),
            _ => {
                eprintln!("usage: cargo xtask worker dev|build\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

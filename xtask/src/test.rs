//! `cargo xtask test`: every check the project has, one summary line per stage.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::run::{cmd, root, step, tee};
use crate::test_servers::{Restartable, TestServer};

struct Stage {
    name: &'static str,
    outcome: Outcome,
    seconds: f64,
    /// Result lines quoted from the stage's own output (test counts).
    details: Vec<String>,
}

impl Stage {
    fn skipped(name: &'static str, why: &'static str) -> Self {
        Self {
            name,
            outcome: Outcome::Skipped(why),
            seconds: 0.0,
            details: Vec::new(),
        }
    }
}

#[derive(PartialEq)]
enum Outcome {
    Passed,
    Failed,
    Skipped(&'static str),
}

/// Test counts gathered from runners' closing lines.
#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
}

pub fn run(args: &[String]) -> ExitCode {
    let mut stages = Vec::new();
    let mut counts = Counts::default();
    if args.first().map(String::as_str) == Some("browser") {
        stages.push(browser_stage(&mut counts, args.get(1).map(String::as_str)));
        return summarize(&stages, &counts);
    }

    let started = Instant::now();
    let setup = crate::setup::run();
    stages.push(Stage {
        name: "setup",
        outcome: if setup.is_ok() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        seconds: started.elapsed().as_secs_f64(),
        details: setup
            .as_ref()
            .err()
            .map(|e| format!("{e:#}"))
            .into_iter()
            .collect(),
    });
    if setup.is_err() {
        return summarize(&stages, &counts);
    }

    let plan: Vec<(&'static str, Command)> = vec![
        ("fmt", cargo(&["fmt", "--all", "--check"])),
        (
            "clippy (native)",
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        (
            "clippy (wasm32)",
            cargo(&[
                "clippy",
                "-p",
                "callroom",
                "-p",
                "callroom-worker",
                "--all-targets",
                "--target",
                "wasm32-unknown-unknown",
                "--",
                "-D",
                "warnings",
            ]),
        ),
        ("native tests", cargo(&["test", "--workspace"])),
    ];
    for (name, command) in plan {
        stages.push(run_stage(name, command, &mut counts));
    }
    stages.push(browser_stage(&mut counts, None));

    let started = Instant::now();
    let built = crate::build::run().and_then(|()| crate::worker::build());
    let server = built.is_ok().then(build_server).and_then(Result::ok);
    stages.push(Stage {
        name: "build (pkg, Worker, server)",
        outcome: if server.is_some() {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        seconds: started.elapsed().as_secs_f64(),
        details: built.err().map(|e| format!("{e:#}")).into_iter().collect(),
    });
    if server.is_some() {
        let mut tsc = cmd("tsc");
        tsc.args(["-p", "tests/types/tsconfig.json"]);
        stages.push(run_stage("types (tsc --noEmit)", tsc, &mut counts));
    }
    match &server {
        Some(server) => {
            let mut e2e = cmd("node");
            e2e.args(["--test", "--test-concurrency=1"])
                .arg(root().join("tests").join("js"))
                .arg(root().join("tests").join("e2e"))
                .env("CALLROOM_SERVER_BIN", server);
            stages.push(run_stage("end-to-end tests", e2e, &mut counts));
        }
        None => stages.push(Stage::skipped("end-to-end tests", "build failed")),
    }
    match &server {
        Some(server) => {
            let conformance = root().join("tests").join("conformance");
            let mut suite = cmd("node");
            suite
                .args(["--test", "--test-concurrency=1"])
                .arg(&conformance)
                .env("CALLROOM_SERVER_BIN", server);
            stages.push(run_stage(
                "conformance (server + Worker)",
                suite,
                &mut counts,
            ));
            // The library's own end-to-end tests, unchanged, against the Worker.
            let e2e = root().join("tests").join("e2e");
            let mut against = cmd("node");
            against
                .arg(conformance.join("against-worker.mjs"))
                .arg(e2e.join("js-api.test.mjs"))
                .arg(e2e.join("sfu.test.mjs"))
                .env("CALLROOM_SERVER_BIN", server);
            stages.push(run_stage(
                "end-to-end against the Worker",
                against,
                &mut counts,
            ));
        }
        None => {
            stages.push(Stage::skipped(
                "conformance (server + Worker)",
                "build failed",
            ));
            stages.push(Stage::skipped(
                "end-to-end against the Worker",
                "build failed",
            ));
        }
    }
    stages.push(network_stage(server.as_deref(), &mut counts));
    summarize(&stages, &counts)
}

/// Calls across network namespaces with links cut and degraded (`tests/network`): only as
/// root with `ip netns` and nftables working.
fn network_stage(server: Option<&Path>, counts: &mut Counts) -> Stage {
    let Some(server) = server else {
        return Stage::skipped("network tests", "build failed");
    };
    let probe = "callroom-xtask-probe";
    let ip = |args: &[&str]| {
        Command::new("ip")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let works = crate::run::is_root() && {
        // One left by a run killed here would make `add` fail for good.
        ip(&["netns", "del", probe]);
        let nft =
            ip(&["netns", "add", probe]) && ip(&["netns", "exec", probe, "nft", "list", "tables"]);
        ip(&["netns", "del", probe]);
        nft
    };
    if !works {
        println!("network tests skipped: needs root and ip netns");
        return Stage::skipped("network tests", "needs root and ip netns");
    }
    let mut node = cmd("node");
    node.args(["--test", "--test-concurrency=1"])
        .arg(root().join("tests").join("network"))
        .env("CALLROOM_SERVER_BIN", server);
    run_stage("network tests", node, counts)
}

fn cargo(args: &[&str]) -> Command {
    let mut command = cmd("cargo");
    command.args(args);
    command
}

/// wasm-bindgen tests in headless Chromium, against a real callroom-server started for them.
fn browser_stage(counts: &mut Counts, filter: Option<&str>) -> Stage {
    let started = Instant::now();
    let servers = build_server().and_then(|bin| {
        let main = TestServer::start(&bin, &["--db", ":memory:"])?;
        let restartable = Restartable::start(&bin)?;
        Ok((main, restartable))
    });
    let (server, restartable) = match servers {
        Ok(servers) => servers,
        Err(err) => {
            return Stage {
                name: "browser tests",
                outcome: Outcome::Failed,
                seconds: started.elapsed().as_secs_f64(),
                details: vec![format!("cannot start callroom-server: {err:#}")],
            }
        }
    };
    let mut command = cmd("wasm-pack");
    command
        .args(["test", "--headless", "--chrome", "--chromedriver"])
        .arg(chromedriver())
        // The whole browser run shares this; calls take seconds each on 2 shared cores.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600")
        // Read by the tests at compile time (`option_env!`), as gloo's HTTP tests do.
        .env("CALLROOM_TEST_SERVER", &server.url)
        .env("CALLROOM_TEST_RESTARTABLE_SERVER", restartable.url())
        .env("CALLROOM_TEST_CONTROL", &restartable.control_url);
    if let Some(filter) = filter {
        command.args(["--lib", "--test", "room", "--test", "media", "--", filter]);
    }
    let mut stage = run_stage("browser tests", command, counts);
    stage.seconds = started.elapsed().as_secs_f64();
    drop(server);
    drop(restartable);
    stage
}

fn chromedriver() -> String {
    let debian = Path::new("/usr/bin/chromedriver");
    if debian.exists() {
        debian.display().to_string()
    } else {
        "chromedriver".to_owned()
    }
}

fn build_server() -> anyhow::Result<std::path::PathBuf> {
    step("cargo build -p callroom-server");
    crate::run::status(
        "cargo build -p callroom-server",
        &mut cargo(&["build", "-p", "callroom-server"]),
    )?;
    Ok(root().join("target").join("debug").join("callroom-server"))
}

fn run_stage(name: &'static str, mut command: Command, counts: &mut Counts) -> Stage {
    step(name);
    let started = Instant::now();
    let (ok, lines) = tee(&mut command).unwrap_or_else(|err| (false, vec![format!("{err:#}")]));
    let mut details = Vec::new();
    for line in &lines {
        if let Some((passed, failed)) = cargo_result(line) {
            counts.passed += passed;
            counts.failed += failed;
            // Crates without tests print `0 passed; 0 failed`; that says nothing.
            if passed + failed > 0 {
                details.push(line.trim().to_owned());
            }
        }
    }
    if let Some((passed, failed)) = node_result(&lines) {
        counts.passed += passed;
        counts.failed += failed;
        details.push(format!("node --test: {passed} passed, {failed} failed"));
    }
    Stage {
        name,
        outcome: if ok { Outcome::Passed } else { Outcome::Failed },
        seconds: started.elapsed().as_secs_f64(),
        details,
    }
}

/// Parses cargo's / wasm-bindgen-test's `test result: ok. 3 passed; 0 failed; ...`.
fn cargo_result(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let number_before = |word: &str| {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .rsplit(' ')
                .next()?
                .trim()
                .parse()
                .ok()
        })
    };
    Some((number_before(" passed")?, number_before(" failed")?))
}

/// node's test runner (TAP reporter) ends with `# pass N` and `# fail N` lines.
fn node_result(lines: &[String]) -> Option<(u64, u64)> {
    let total = |prefix: &str| {
        lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
    };
    Some((total("# pass ")?, total("# fail ")?))
}

fn summarize(stages: &[Stage], counts: &Counts) -> ExitCode {
    println!("\n==> summary");
    for stage in stages {
        let outcome = match stage.outcome {
            Outcome::Passed => "ok".to_owned(),
            Outcome::Failed => "FAILED".to_owned(),
            Outcome::Skipped(why) => format!("skipped ({why})"),
        };
        println!("{:<32} {:<22} {:>7.1}s", stage.name, outcome, stage.seconds);
        for detail in &stage.details {
            println!("    {detail}");
        }
    }
    let failed_stages = stages
        .iter()
        .filter(|s| s.outcome != Outcome::Passed)
        .count();
    // The plain closing line CI readers understand: test counts over every runner.
    println!("tests: {} passed, {} failed", counts.passed, counts.failed);
    if failed_stages == 0 {
        println!("all {} stages passed", stages.len());
        ExitCode::SUCCESS
    } else {
        println!("{failed_stages} of {} stages did not pass", stages.len());
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_result_lines_give_passed_and_failed() {
        assert_eq!(
            cargo_result("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"),
            Some((12, 0))
        );
        assert_eq!(
            cargo_result("test result: FAILED. 3 passed; 2 failed; 0 ignored"),
            Some((3, 2))
        );
        assert_eq!(cargo_result("running 3 tests"), None);
    }

    #[test]
    fn node_totals_come_from_the_closing_lines() {
        let lines: Vec<String> = ["# tests 4", "# pass 3", "# fail 1", "# cancelled 0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(node_result(&lines), Some((3, 1)));
        assert_eq!(node_result(&lines[..1]), None);
    }
}

//! callroom-server processes for the browser tests: a plain one, and one the tests can stop
//! and start again (same port, same database file) through a small control endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};

/// A callroom-server on a loopback port; killed on drop.
pub struct TestServer {
    child: Child,
    pub url: String,
}

impl TestServer {
    /// Starts on a free port (or `--listen` in `args`) and waits until it listens.
    pub fn start(bin: &Path, args: &[&str]) -> Result<Self> {
        let listen = if args.contains(&"--listen") {
            &[][..]
        } else {
            &["--listen", "127.0.0.1:0"][..]
        };
        let mut child = Command::new(bin)
            .args(listen)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let url = lines
            .find_map(|line| {
                let line = line.ok()?;
                Some(
                    line.strip_prefix("callroom-server listening on ")?
                        .trim_end_matches('/')
                        .to_owned(),
                )
            })
            .ok_or_else(|| anyhow!("callroom-server did not say where it listens"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        println!("callroom-server for browser tests: {url}");
        Ok(Self { child, url })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server with a database file, and a control endpoint: `POST /stop` kills it,
/// `POST /start` starts it again on the same port and answers once it listens.
pub struct Restartable {
    server: Arc<Mutex<Option<TestServer>>>,
    url: String,
    pub control_url: String,
    _dir: tempfile::TempDir,
}

impl Restartable {
    pub fn start(bin: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let db = dir
            .path()
            .join("restartable.db")
            .to_string_lossy()
            .into_owned();
        let first = TestServer::start(bin, &["--db", &db])?;
        let url = first.url.clone();
        let listen = url.trim_start_matches("http://").to_owned();
        let server = Arc::new(Mutex::new(Some(first)));
        let control = TcpListener::bind("127.0.0.1:0")?;
        let control_url = format!("http://{}", control.local_addr()?);
        let (shared, bin) = (server.clone(), bin.to_path_buf());
        std::thread::spawn(move || {
            for stream in control.incoming().flatten() {
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split_whitespace().nth(1).unwrap_or("");
                let result = match path {
                    "/stop" => {
                        shared.lock().map(|mut s| s.take()).ok();
                        Ok(())
                    }
                    // `/start-empty`: a server that lost its state (a wiped or in-memory
                    // database), which no longer knows anyone's token.
                    "/start" | "/start-empty" => {
                        if path == "/start-empty" {
                            for suffix in ["", "-wal", "-shm"] {
                                let _ = std::fs::remove_file(format!("{db}{suffix}"));
                            }
                        }
                        TestServer::start(&bin, &["--listen", &listen, "--db", &db]).map(|s| {
                            if let Ok(mut slot) = shared.lock() {
                                *slot = Some(s);
                            }
                        })
                    }
                    _ => Err(anyhow!("unknown control path {path}")),
                };
                let (status, body) = match result {
                    Ok(()) => ("200 OK", "ok".to_owned()),
                    Err(e) => ("500 Internal Server Error", e.to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Ok(Self {
            server,
            url,
            control_url,
            _dir: dir,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        if let Ok(mut server) = self.server.lock() {
            server.take();
        }
    }
}

//! `switchyard serve` started as a user starts it, for the tests that run the binary: a free
//! port, only the environment the test gives (and `PATH`), its standard error kept.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A running server; killed when dropped (its standard error printed if the test failed).
pub struct Server {
    /// The process, for the tests that signal it.
    pub child: Child,
    /// `http://HOST:PORT`, from its `listening on` line.
    pub url: String,
    /// What it has written to standard error so far.
    pub log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server with `SWITCHYARD_BIND=127.0.0.1:0`, agents allowed on loopback (the
    /// tests' agents listen there), `RUST_LOG=warn`, then `env` (which may change any of
    /// them), and waits for its `listening on` line.
    pub fn start<V: AsRef<OsStr>>(env: &[(&str, V)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHYARD_BIND", "127.0.0.1:0")
            .env("SWITCHYARD_AGENT_DENY_PRIVATE", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the switchyard binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let kept = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let mut log = kept.lock().unwrap_or_else(|p| p.into_inner());
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut first);
        }
        let url = match first.trim().strip_prefix("listening on ") {
            Some(url) => url.to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log = log.lock().unwrap_or_else(|p| p.into_inner());
                panic!("unexpected first line {first:?}; standard error:\n{log}");
            }
        };
        Self { child, url, log }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            eprintln!("--- the server's standard error ---\n{log}");
        }
    }
}

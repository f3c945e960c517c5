//! The `switchyard` command as an operator uses it: migrate, tenants, users, tokens, and a
//! server started the way a user starts it, answering through a real socket.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn switchyard(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHYARD_DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn ok(db: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = switchyard(db, args, stdin);
    assert!(
        out.status.success(),
        "switchyard {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A server started as a user would, on a free port; killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db: &str, extra_env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHYARD_DATABASE_URL", db)
            .env("SWITCHYARD_BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let url = first
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        Self { child, url }
    }

    /// Sends SIGTERM and waits (with a deadline) for a clean exit.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sqlite_url() -> String {
    format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    )
}

async fn operator_story(db: String) {
    let out = ok(&db, &["migrate"], None);
    assert!(
        out.contains("applied migrations 1") || out.contains("up to date"),
        "{out}"
    );
    assert!(
        ok(&db, &["migrate"], None).contains("up to date"),
        "migrating again changes nothing"
    );

    let slug = format!("cli-{:08x}", rand::random::<u32>());
    let created: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &["tenant", "create", "--slug", &slug, "--name", "CLI Corp"],
        None,
    ))
    .unwrap();
    assert_eq!(created["slug"], slug.as_str());
    assert_eq!(created["status"], "active");
    let bad = switchyard(&db, &["tenant", "create", "--slug", "Not A Slug"], None);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a slug"));

    let user: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "Ops@CLI.test",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a-password-long-enough\n"),
    ))
    .unwrap();
    assert_eq!(
        (user["email"].as_str(), user["role"].as_str()),
        (Some("ops@cli.test"), Some("admin"))
    );
    let short = switchyard(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "x@cli.test",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success(), "a short password is refused");

    assert!(ok(&db, &["tenant", "list"], None).contains(&slug));

    let token = ok(
        &db,
        &[
            "token",
            "issue",
            "--tenant",
            &slug,
            "--email",
            "ops@cli.test",
        ],
        None,
    );
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // The server, started as a user would, accepts the token (its signing secret was made
    // at the first use and kept in the database), and the password works for a login.
    let server = Server::start(&db, &[]);
    let client = http_client().build().unwrap();
    let me = client
        .get(format!("{}/v1/me", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], "ops@cli.test");
    assert_eq!(me["tenant"]["slug"], slug.as_str());
    let login = client
        .post(format!("{}/v1/auth/login", server.url))
        .json(&serde_json::json!({"tenant": slug, "email": "ops@cli.test", "password": "a-password-long-enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // Suspending the tenant from the command line refuses its users at once.
    assert!(ok(&db, &["tenant", "suspend", &slug], None).contains("suspended"));
    let me = client
        .get(format!("{}/v1/me", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 403);
    ok(&db, &["tenant", "suspend", &slug, "--resume"], None);
    let me = client
        .get(format!("{}/v1/me", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    assert!(server.stop().success(), "SIGTERM stops the server cleanly");
}

#[tokio::test]
async fn operator_story_on_sqlite() {
    operator_story(sqlite_url()).await;
}

#[tokio::test]
async fn operator_story_on_postgres() {
    if let Some(url) = switchyard_store::testing::postgres_database_url().await {
        operator_story(url).await;
    }
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATABASE_URL", sqlite_url())
        .env("SWITCHYARD_BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("bind"), "{stderr}");
}

/// An HTTP client for the tests (TLS through the same provider as the server's).
fn http_client() -> reqwest::ClientBuilder {
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder()
}

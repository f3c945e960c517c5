//! The `switchyard` command as an operator uses it: migrate, tenants, users, tokens, and a
//! server started the way a user starts it, answering through a real socket.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

#[path = "support/serve.rs"]
mod serve;

use serve::Server;

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

/// The server on `db`, with `extra_env`.
fn start(db: &str, extra_env: &[(&str, &str)]) -> Server {
    let mut env = vec![("SWITCHYARD_DATABASE_URL", db)];
    env.extend_from_slice(extra_env);
    Server::start(&env)
}

/// Sends SIGTERM and waits (with a deadline) for a clean exit.
fn stop(mut server: Server) -> std::process::ExitStatus {
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
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
    let server = start(&db, &[]);
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

    assert!(stop(server).success(), "SIGTERM stops the server cleanly");
}

/// The routing lab from the command line: `routing eval` on a CSV file (with and without a
/// draft, the tenant by slug or id) and `routing replay` of a draft on the stored turns.
#[tokio::test]
async fn the_routing_lab_from_the_command_line() {
    let db = sqlite_url();
    ok(&db, &["migrate"], None);
    let slug = format!("lab-{:08x}", rand::random::<u32>());
    let tenant: serde_json::Value =
        serde_json::from_str(&ok(&db, &["tenant", "create", "--slug", &slug], None)).unwrap();
    let admin = [
        "user",
        "create",
        "--tenant",
        &slug,
        "--email",
        "ops@lab.test",
        "--role",
        "admin",
    ];
    ok(&db, &admin, None);
    let token = ok(
        &db,
        &[
            "token",
            "issue",
            "--tenant",
            &slug,
            "--email",
            "ops@lab.test",
        ],
        None,
    );
    let server = start(&db, &[]);
    let client = http_client().build().unwrap();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{}{path}", server.url))
            .bearer_auth(token.trim())
            .json(&body)
            .send()
    };
    for agent in [
        serde_json::json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "refund", "charged"],
                           "examples": ["I was charged twice", "where is my invoice"]}),
        serde_json::json!({"name": "shipping", "kind": "echo", "keywords": ["package", "delivery", "tracking"],
                           "examples": ["my package is late", "tracking number for my order"]}),
        serde_json::json!({"name": "general", "kind": "echo", "is_fallback": true}),
    ] {
        assert_eq!(post("/v1/agents", agent).await.unwrap().status(), 201);
    }
    for message in [
        "I was charged twice on my card",
        "my package is late",
        "can I return these shoes",
    ] {
        let chat = post("/v1/chat", serde_json::json!({"message": message}))
            .await
            .unwrap();
        assert_eq!(chat.status(), 200);
    }
    let dir = empty_dir();
    let csv = dir.join("messages.csv");
    std::fs::write(
        &csv,
        "message,agent\n\"I was charged twice, again\",billing\nmy package is late,shipping\ncan I return these shoes,returns\n",
    )
    .unwrap();
    let draft = dir.join("draft.json");
    std::fs::write(
        &draft,
        r#"{"add": [{"name": "returns", "kind": "echo", "keywords": ["return", "exchange"],
                     "examples": ["I want to return an item", "can I exchange these shoes"]}]}"#,
    )
    .unwrap();
    let csv = csv.to_str().unwrap();
    let draft = draft.to_str().unwrap();

    // The live agents do not have the agent the labels name: a clear refusal.
    let refused = switchyard(&db, &["routing", "eval", "--tenant", &slug, csv], None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("\"returns\""));
    // With the draft: a table, and the same figures as JSON, the tenant by slug or id.
    let table = ok(
        &db,
        &["routing", "eval", "--tenant", &slug, csv, "--draft", draft],
        None,
    );
    assert!(table.starts_with("accuracy "), "{table}");
    assert!(table.contains("returns"), "{table}");
    let id = tenant["id"].as_str().unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "routing", "eval", "--tenant", id, csv, "--draft", draft, "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(json["total"], 3);
    assert!(json["correct"].as_u64().unwrap() >= 2, "{json}");
    assert!(table.contains("of 3"), "{table}");

    // The draft replayed on the three stored turns: the returns question moves.
    let replay: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "routing", "replay", "--tenant", &slug, "--draft", draft, "--json",
        ],
        None,
    ))
    .unwrap();
    assert_eq!(replay["turns"], 3);
    assert!(
        replay["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["to"]["name"] == "returns"),
        "{replay}"
    );
    let text = ok(
        &db,
        &["routing", "replay", "--tenant", &slug, "--draft", draft],
        None,
    );
    assert!(text.starts_with("replayed 3 turns: "), "{text}");

    // Errors a person can act on.
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "message,agent\nno agent on this row\n").unwrap();
    let bad = switchyard(
        &db,
        &["routing", "eval", "--tenant", &slug, bad.to_str().unwrap()],
        None,
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 2"));
    let last = switchyard(
        &db,
        &[
            "routing", "replay", "--tenant", &slug, "--draft", draft, "--last", "0",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&last.stderr).contains("`last`"));
    let nobody = switchyard(
        &db,
        &["routing", "eval", "--tenant", "nobody-here", csv],
        None,
    );
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("there is no tenant \"nobody-here\""));
    drop(server);
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

/// A new empty directory for a command to run in.
fn empty_dir() -> std::path::PathBuf {
    let db = switchyard_store::testing::sqlite_path();
    let dir = db.with_extension("dir");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn migrate_on_a_fresh_machine_needs_no_settings_at_all() {
    let dir = empty_dir();
    let out = Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "switchyard migrate with no settings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dir.join("switchyard.db").exists(),
        "the embedded default database is made in the working directory"
    );
    let again = Command::new(BIN)
        .arg("migrate")
        .env_clear()
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("up to date"));
}

/// Reads from `stream` until the server closes it or `within` passes; whether it closed.
fn closed_within(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[tokio::test]
async fn slow_and_oversized_requests_through_a_real_socket() {
    let server = start(
        &sqlite_url(),
        &[("SWITCHYARD_HEADER_READ_TIMEOUT_MS", "300")],
    );
    let addr = server.url.strip_prefix("http://").unwrap().to_string();
    // A client that starts a request and never finishes its headers is cut off.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(20)),
        "a client that never finishes its headers is disconnected"
    );
    // Meanwhile the server answers others, with problem documents for what it refuses.
    let client = http_client().build().unwrap();
    let big = client
        .post(format!("{}/v1/auth/login", server.url))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    // The unread rest of the body spoils the connection; the answer says it closes it, so
    // the client's next request (below) goes on a new one.
    assert_eq!(big.headers()["connection"].to_str().unwrap(), "close");
    let unknown = client
        .get(format!("{}/v1/nowhere", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let problem: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(problem["status"], 404);
    assert_eq!(
        client
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(stop(server).success());
}

#[tokio::test]
async fn the_demo_starts_with_two_tenants_and_its_curl_lines_work() {
    let dir = empty_dir();
    let mut child = Command::new(BIN)
        .arg("demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHYARD_BIND", "127.0.0.1:0")
        // The agents of these tests listen on loopback.
        .env("SWITCHYARD_AGENT_DENY_PRIVATE", "false")
        .env("RUST_LOG", "warn")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let mut tokens = std::collections::HashMap::new();
    let mut curl_lines = 0;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("export ") {
            let (name, value) = rest.split_once('=').unwrap();
            tokens.insert(name.to_string(), value.to_string());
        }
        if line.starts_with("curl ") {
            curl_lines += 1;
            assert!(line.contains(&base), "{line}");
        }
        if line.contains("/v1/route") {
            break;
        }
    }
    assert!(curl_lines >= 4, "the demo prints curl lines to paste");
    let client = http_client().build().unwrap();
    let chat = |token: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client
                .post(format!("{base}/v1/chat"))
                .bearer_auth(token)
                .json(&serde_json::json!({"message": "I was charged twice on my card"}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    // As the printed lines say: acme's billing agent answers, globex (no billing agent)
    // falls back; debug timings are on in the demo.
    let acme = chat(tokens["TOKEN_ACME_MEMBER"].clone()).await;
    assert_eq!(acme["agent"]["name"], "billing", "{acme}");
    assert!(acme["debug"]["timings_ms"].is_object(), "{acme}");
    let globex = chat(tokens["TOKEN_GLOBEX_MEMBER"].clone()).await;
    assert_ne!(globex["agent"]["name"], "billing", "{globex}");
    assert_eq!(globex["routing"]["fallback_used"], true, "{globex}");
    // Each sees only their own conversation.
    let list = client
        .get(format!("{base}/v1/conversations"))
        .bearer_auth(&tokens["TOKEN_GLOBEX_MEMBER"])
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], globex["conversation_id"]);
    assert!(dir.join("switchyard-demo.db").exists());
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the demo stops cleanly on SIGTERM");
}

/// The operator's day from the command line: users, API keys and agents of a tenant named
/// by slug or id, a tenant deleted, and every refusal in words a person can act on.
#[tokio::test]
async fn users_keys_agents_and_tenants_from_the_command_line() {
    let db = sqlite_url();
    ok(&db, &["migrate"], None);
    let slug = format!("ops-{:08x}", rand::random::<u32>());
    let tenant: serde_json::Value =
        serde_json::from_str(&ok(&db, &["tenant", "create", "--slug", &slug], None)).unwrap();
    let id = tenant["id"].as_str().unwrap().to_owned();
    let again = switchyard(&db, &["tenant", "create", "--slug", &slug], None);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        format!("error: tenant \"{slug}\" already exists")
    );
    let password = Some("the first password\n");
    ok(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            &id,
            "--email",
            "ann@ops.test",
            "--role",
            "admin",
            "--password-stdin",
        ],
        password,
    );
    ok(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "bob@ops.test",
            "--password-stdin",
        ],
        password,
    );
    let twice = switchyard(
        &db,
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "bob@ops.test",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already has a user bob@ops.test"));
    let users = ok(&db, &["user", "list", "--tenant", &id], None);
    assert!(
        users.contains("ann@ops.test") && users.contains("bob@ops.test"),
        "{users}"
    );
    assert!(
        users.contains("admin") && users.contains("member"),
        "{users}"
    );

    let server = start(&db, &[]);
    let client = http_client().build().unwrap();
    let login = |password: &'static str| {
        client
            .post(format!("{}/v1/auth/login", server.url))
            .json(
                &serde_json::json!({"tenant": slug, "email": "bob@ops.test", "password": password}),
            )
            .send()
    };
    assert_eq!(login("the first password").await.unwrap().status(), 200);
    // A new password: the old one is refused, the new one signs in.
    let set = ok(
        &db,
        &[
            "user",
            "set-password",
            "--tenant",
            &slug,
            "--email",
            "Bob@Ops.test",
        ],
        Some("the second password\n"),
    );
    assert!(set.contains("bob@ops.test"), "{set}");
    assert_eq!(login("the first password").await.unwrap().status(), 401);
    assert_eq!(login("the second password").await.unwrap().status(), 200);
    let short = switchyard(
        &db,
        &[
            "user",
            "set-password",
            "--tenant",
            &slug,
            "--email",
            "bob@ops.test",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success());
    // Disabled, the user is refused; enabled again, let in.
    assert!(
        ok(
            &db,
            &[
                "user",
                "disable",
                "--tenant",
                &slug,
                "--email",
                "bob@ops.test"
            ],
            None
        )
        .contains("disabled")
    );
    assert_eq!(login("the second password").await.unwrap().status(), 403);
    ok(
        &db,
        &[
            "user",
            "disable",
            "--tenant",
            &slug,
            "--email",
            "bob@ops.test",
            "--enable",
        ],
        None,
    );
    assert_eq!(login("the second password").await.unwrap().status(), 200);
    let nobody = switchyard(
        &db,
        &[
            "user",
            "disable",
            "--tenant",
            &slug,
            "--email",
            "eve@ops.test",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&nobody.stderr).contains(&format!(
        "there is no user eve@ops.test in tenant \"{slug}\""
    )));

    // Agents from a JSON file, listed and deleted by name.
    let dir = empty_dir();
    let agent = dir.join("billing.json");
    std::fs::write(
        &agent,
        r#"{"name": "billing", "kind": "echo", "keywords": ["invoice"]}"#,
    )
    .unwrap();
    let made: serde_json::Value = serde_json::from_str(&ok(
        &db,
        &[
            "agent",
            "create",
            "--tenant",
            &slug,
            agent.to_str().unwrap(),
        ],
        None,
    ))
    .unwrap();
    assert_eq!(made["name"], "billing");
    let dup = switchyard(
        &db,
        &[
            "agent",
            "create",
            "--tenant",
            &slug,
            agent.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("already has an agent named \"billing\"")
    );
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"name": "web", "kind": "http", "config": {"url": "not a url"}}"#,
    )
    .unwrap();
    let refused = switchyard(
        &db,
        &["agent", "create", "--tenant", &slug, bad.to_str().unwrap()],
        None,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("bad.json"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(ok(&db, &["agent", "list", "--tenant", &id], None).contains("billing"));

    // An API key: its secret once, working at once; listed; revoked, refused.
    let secret = ok(
        &db,
        &[
            "api-key",
            "create",
            "--tenant",
            &slug,
            "--email",
            "bob@ops.test",
            "--name",
            "script",
        ],
        None,
    );
    let secret = secret.trim();
    assert!(secret.starts_with("sy_"), "{secret}");
    let models = |key: String| {
        client
            .get(format!("{}/v1/models", server.url))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(models(secret.to_owned()).await.unwrap().status(), 200);
    let keys = ok(&db, &["api-key", "list", "--tenant", &slug], None);
    assert!(keys.contains("script") && keys.contains("active"), "{keys}");
    assert!(!keys.contains(secret), "the secret is shown once only");
    let key_id = keys
        .lines()
        .find(|l| l.contains("script"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        ok(
            &db,
            &["api-key", "revoke", "--tenant", &slug, &key_id],
            None
        )
        .contains("revoked")
    );
    assert_eq!(models(secret.to_owned()).await.unwrap().status(), 401);

    assert!(
        ok(
            &db,
            &["agent", "delete", "--tenant", &slug, "billing"],
            None
        )
        .contains("deleted")
    );
    assert!(!ok(&db, &["agent", "list", "--tenant", &slug], None).contains("billing"));
    let gone = switchyard(
        &db,
        &["agent", "delete", "--tenant", &slug, "billing"],
        None,
    );
    assert!(String::from_utf8_lossy(&gone.stderr).contains("there is no agent \"billing\""));

    // Tokens live at least a second.
    let ttl = switchyard(
        &db,
        &[
            "token",
            "issue",
            "--tenant",
            &slug,
            "--email",
            "ann@ops.test",
            "--ttl",
            "0",
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&ttl.stderr).contains("--ttl"));

    // A tenant is deleted only with --yes, by slug or id.
    let unsure = switchyard(&db, &["tenant", "delete", &slug], None);
    assert!(String::from_utf8_lossy(&unsure.stderr).contains("--yes"));
    assert!(ok(&db, &["tenant", "list"], None).contains(&slug));
    assert!(ok(&db, &["tenant", "delete", &id, "--yes"], None).contains("deleted"));
    assert!(!ok(&db, &["tenant", "list"], None).contains(&slug));
    drop(server);

    // A database that cannot be opened is named, without its password.
    let pg = switchyard(
        "postgres://ops:hunter2@127.0.0.1:1/switchyard",
        &["tenant", "list"],
        None,
    );
    let said = String::from_utf8_lossy(&pg.stderr);
    assert!(
        said.contains("postgres://ops:***@127.0.0.1:1/switchyard"),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
    let sqlite = switchyard(
        "sqlite:///no/such/directory/switchyard.db",
        &["tenant", "list"],
        None,
    );
    assert!(String::from_utf8_lossy(&sqlite.stderr).contains("/no/such/directory/switchyard.db"));
}

/// `switchyard serve` takes a host name to bind, and says after its `listening on` line
/// where the console is, which database, whether the operator's token is set, and how it
/// routes.
#[test]
fn serve_says_what_it_runs_with() {
    let db = sqlite_url();
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHYARD_DATABASE_URL", &db)
        .env("SWITCHYARD_BIND", "localhost:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let said: Vec<String> = (0..5).map(|_| lines.next().unwrap().unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(said[0].starts_with("listening on http://"), "{said:?}");
    let url = said[0].trim_start_matches("listening on ");
    assert_eq!(said[1], format!("console: {url}/"));
    assert_eq!(said[2], format!("database: {db}"));
    assert!(said[3].starts_with("operator token: not set"), "{said:?}");
    assert!(said[4].starts_with("analyzer: lexical"), "{said:?}");
}

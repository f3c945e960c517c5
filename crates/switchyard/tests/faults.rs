//! The server as a user runs it, under faults: SIGTERM with turns and streams in flight,
//! and a PostgreSQL cluster (started by the test) that stops and comes back mid-load. Also
//! the private metrics address and the retention command.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

#[path = "support/serve.rs"]
mod serve;
#[path = "support/tenant.rs"]
mod tenant;

use serve::Server;
const OPERATOR: &str = "operator-token-for-fault-tests";

/// The server with the operator's token and `env`.
fn start(env: &[(&str, String)]) -> Server {
    let mut all = vec![("SWITCHYARD_ADMIN_TOKEN", OPERATOR.to_owned())];
    all.extend(env.iter().cloned());
    Server::start(&all)
}

fn signal(server: &Server, name: &str) {
    Command::new("kill")
        .args([&format!("-{name}"), &server.child.id().to_string()])
        .status()
        .unwrap();
}

fn wait(server: &mut Server, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tenant with an admin and a token, made over the API.
async fn tenant(client: &reqwest::Client, url: &str, agents: Vec<Value>) -> String {
    let slug = format!("f-{:08x}", rand::random::<u32>());
    let settings = json!({"rate_limit_per_second": 0});
    let (_, token) = tenant::tenant(client, url, OPERATOR, &slug, settings).await;
    for agent in agents {
        tenant::agent(client, url, &token, &agent).await;
    }
    token
}

fn sqlite_url() -> String {
    format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    )
}

/// An agent that takes its time: 800 ms before it answers. Also how many calls it has
/// received so far.
async fn slow_agent() -> (String, Arc<AtomicUsize>) {
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().route(
        "/slow",
        axum::routing::post(move |body: axum::Json<Value>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(800)).await;
                axum::Json(
                    json!({"response": format!("slowly: {}", body["message"].as_str().unwrap_or(""))}),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/slow"), received)
}

/// Waits until `done` holds, failing the test if it does not within `within`.
async fn wait_for(within: Duration, what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_turns_and_streams_finish() {
    let (agent, received) = slow_agent().await;
    let mut server = start(&[
        ("SWITCHYARD_DATABASE_URL", sqlite_url()),
        ("SWITCHYARD_SHUTDOWN_GRACE_SECONDS", "20".into()),
    ]);
    let client = http_client().build().unwrap();
    let token = tenant(
        &client,
        &server.url,
        vec![
            json!({"name": "slow", "kind": "http", "is_fallback": true, "config": {"url": agent}}),
        ],
    )
    .await;
    let mut turns = Vec::new();
    for i in 0..4 {
        let (client, url, token) = (client.clone(), server.url.clone(), token.clone());
        turns.push(tokio::spawn(async move {
            client
                .post(format!("{url}/v1/chat"))
                .bearer_auth(token)
                .json(&json!({"message": format!("turn {i}")}))
                .send()
                .await
        }));
    }
    let stream = {
        let (client, url, token) = (client.clone(), server.url.clone(), token.clone());
        tokio::spawn(async move {
            let resp = client
                .post(format!("{url}/v1/chat"))
                .bearer_auth(token)
                .header("accept", "text/event-stream")
                .json(&json!({"message": "stream"}))
                .send()
                .await
                .unwrap();
            resp.text().await.unwrap()
        })
    };
    // Every turn (and the stream) is with the agent when the server is told to stop.
    wait_for(
        Duration::from_secs(10),
        "five calls reaching the agent",
        async || received.load(Ordering::SeqCst) == 5,
    )
    .await;
    signal(&server, "TERM");
    // No new connections once stopping (the signal takes effect shortly after it is sent).
    let health = format!("{}/healthz", server.url);
    wait_for(
        Duration::from_secs(5),
        "refusing new connections",
        async || {
            http_client()
                .build()
                .unwrap()
                .get(&health)
                .send()
                .await
                .is_err()
        },
    )
    .await;
    for turn in turns {
        let resp = turn.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200, "an in-flight turn finishes");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["response"]
                .as_str()
                .unwrap()
                .starts_with("slowly: turn")
        );
    }
    let text = stream.await.unwrap();
    assert!(
        text.contains("event: done"),
        "the stream was not cut off: {text}"
    );
    assert!(wait(&mut server, Duration::from_secs(25)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_private_metrics_address_needs_no_token() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = start(&[
        ("SWITCHYARD_DATABASE_URL", sqlite_url()),
        ("SWITCHYARD_METRICS_BIND", format!("127.0.0.1:{port}")),
    ]);
    let client = http_client().build().unwrap();
    client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    let resp = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("switchyard_http_requests_total")
    );
    // On the public address the operator's token is still needed.
    assert_eq!(
        client
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn the_retention_command_deletes_expired_turns() {
    let db = sqlite_url();
    let mut config = switchyard_store::StoreConfig::new(&db);
    config.max_connections = 2;
    let switchyard_store::Opened { store, operator } =
        switchyard_store::connect(&config).await.unwrap();
    let (tenant, admin) = store
        .create_tenant(
            &operator,
            switchyard_core::model::NewTenant {
                slug: "keep-30".into(),
                name: "x".into(),
                settings: serde_json::from_value(json!({"retention_days": 30})).unwrap(),
            },
            Some(switchyard_core::model::NewUser {
                email: "a@x.test".into(),
                display_name: None,
                role: switchyard_core::Role::Admin,
                password_hash: None,
            }),
        )
        .await
        .unwrap();
    let scope = operator.act_as(tenant.id, admin.unwrap().id, switchyard_core::Role::Admin);
    for days in [90, 45, 1] {
        store
            .append_turn(
                &scope,
                switchyard_core::model::NewTurn {
                    id: Default::default(),
                    target: switchyard_core::model::TurnTarget::New {
                        id: Default::default(),
                        title: None,
                        max_per_user: 100,
                        max_per_tenant: 100,
                    },
                    user_message: format!("{days} days ago"),
                    agent_response: "ok".into(),
                    intent_category: None,
                    intent_confidence: None,
                    selected_agent_id: None,
                    routing: json!({}),
                    routing_method: None,
                    routing_confidence: None,
                    fallback_used: None,
                    latency_ms: None,
                    created_at: chrono::Utc::now() - chrono::TimeDelta::days(days),
                },
            )
            .await
            .unwrap();
    }
    let run = || {
        let out = Command::new(BIN)
            .args(["retention", "run"])
            .env_clear()
            .env("SWITCHYARD_DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(
        run().contains("2 turns and 2 conversations deleted"),
        "the tenant keeps 30 days"
    );
    assert!(
        run().contains("0 turns and 0 conversations deleted"),
        "running again is a no-op"
    );
    let left = store
        .list_conversations(
            &scope,
            switchyard_store::ConversationFilter::All,
            switchyard_core::page::PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].title, None);
    assert_eq!(left.items[0].message_count, 1);
}

/// A PostgreSQL cluster of the test's own, in a temporary directory.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

fn as_postgres(program: &Path, args: &[&str]) -> Command {
    // initdb and the server refuse to run as root; the test machines run tests as root.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

impl Cluster {
    fn start() -> Option<Self> {
        let bin = std::env::var_os("PG_BIN").map(PathBuf::from).or_else(|| {
            let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .flatten()
                .map(|e| e.path().join("bin"))
                .collect();
            versions.sort();
            versions.pop()
        });
        let Some(bin) = bin.filter(|b| b.join("initdb").exists()) else {
            if switchyard_store::testing::postgres_required() {
                panic!("PostgreSQL server binaries are required but not found (set PG_BIN)");
            }
            switchyard_store::testing::loud_skip(
                "PostgreSQL server binaries not found: the PostgreSQL fault test is SKIPPED",
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("switchyard-pg-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        let status = as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )
        .stdout(Stdio::null())
        .status()
        .unwrap();
        assert!(status.success(), "initdb failed");
        let cluster = Self { dir, bin, port };
        cluster.pg_ctl("start");
        Some(cluster)
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let mut args = vec![
            action,
            "-D",
            data.to_str().unwrap(),
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
        ];
        if action != "stop" {
            args.extend(["-o", &options]);
        } else {
            args.extend(["-m", "fast"]);
        }
        let status = as_postgres(&self.bin.join("pg_ctl"), &args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {action} failed");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["stop", "-D", data.to_str().unwrap(), "-m", "immediate"],
        )
        .stdout(Stdio::null())
        .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stops_and_returns_mid_load_without_losing_an_acknowledged_turn() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let server = start(&[
        ("SWITCHYARD_DATABASE_URL", cluster.url()),
        ("SWITCHYARD_DATABASE_ACQUIRE_TIMEOUT_MS", "1000".into()),
    ]);
    let client = http_client()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let token = tenant(
        &client,
        &server.url,
        vec![json!({"name": "echo", "kind": "echo", "is_fallback": true})],
    )
    .await;
    let first: Value = client
        .post(format!("{}/v1/chat", server.url))
        .bearer_auth(&token)
        .json(&json!({"message": "start"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = first["conversation_id"].as_str().unwrap().to_string();

    // Load: one client sending turns one after the other, recording what was acknowledged.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, url, token, conversation, stop) = (
            client.clone(),
            server.url.clone(),
            token.clone(),
            conversation.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let (mut acknowledged, mut unavailable, mut other) = (Vec::new(), 0, Vec::new());
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                match client
                    .post(format!("{url}/v1/chat"))
                    .bearer_auth(&token)
                    .json(&json!({"message": format!("m{i}"), "conversation_id": conversation}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acknowledged.push(
                        r.json::<Value>().await.unwrap()["message_id"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    ),
                    Ok(r) if r.status() == 503 => unavailable += 1,
                    Ok(r) => other.push(r.status().as_u16()),
                    Err(e) => panic!("the server stopped answering: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acknowledged, unavailable, other)
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    cluster.pg_ctl("stop");
    // While the database is down, requests are answered (503), not hung.
    let down = client
        .get(format!("{}/readyz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 503);
    let refused = client
        .post(format!("{}/v1/chat", server.url))
        .bearer_auth(&token)
        .json(&json!({"message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg_ctl("start");
    // Service returns without restarting Switchyard.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = client
            .get(format!("{}/readyz", server.url))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the service did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acknowledged, unavailable, other) = load.await.unwrap();
    assert!(
        other.is_empty(),
        "only 200 or 503 while the database restarts: {other:?}"
    );
    assert!(unavailable > 0, "some requests met the stopped database");
    assert!(acknowledged.len() > 5, "{}", acknowledged.len());

    // Every acknowledged turn is stored.
    let mut stored = std::collections::HashSet::new();
    let mut path = format!(
        "{}/v1/conversations/{conversation}/messages?limit=100",
        server.url
    );
    loop {
        let page: Value = client
            .get(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in page["items"].as_array().unwrap() {
            stored.insert(m["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                path = format!(
                    "{}/v1/conversations/{conversation}/messages?limit=100&cursor={c}",
                    server.url
                )
            }
            None => break,
        }
    }
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged turn {id} was lost");
    }
    let detail: Value = client
        .get(format!("{}/v1/conversations/{conversation}", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["message_count"].as_i64().unwrap() as usize,
        stored.len()
    );
}

/// An HTTP client for the tests (TLS through the same provider as the server's).
fn http_client() -> reqwest::ClientBuilder {
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder()
}

/// Sends raw HTTP/1.1 on a socket and reads one answer (headers and a `Content-Length`
/// body), waiting at most `wait`.
async fn raw_exchange(url: &str, request: &[u8], wait: Duration) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if out.len() >= end + 4 + length {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(wait, read).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Before authentication, a request costs little: a bad credential is refused before its
/// body is read, a body that does not arrive in time is a `408`, and made-up API keys from
/// one address stop costing database queries after 20 a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_cost_little() {
    let server = start(&[
        ("SWITCHYARD_DATABASE_URL", sqlite_url()),
        ("SWITCHYARD_HEADER_READ_TIMEOUT_MS", "500".to_string()),
    ]);
    let client = http_client().build().unwrap();
    let token = tenant(
        &client,
        &server.url,
        vec![json!({"name": "general", "kind": "echo", "is_fallback": true})],
    )
    .await;

    // A good token, and a body that stops half-way: 408 after the limit, not 120 s later.
    let started = Instant::now();
    let request = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"message\": \"hel"
    );
    let answer = raw_exchange(&server.url, request.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A forged token: refused at once, the body never waited for.
    let request = "POST /v1/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer not.a.token\r\n\
                   Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let started = Instant::now();
    let answer = raw_exchange(&server.url, request.as_bytes(), Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_millis(450),
        "no wait for the body"
    );

    // Made-up API keys in the right form: 401 each, then 429 for that address.
    let forged = |n: u32| format!("sy_{:064x}{}", n, uuid::Uuid::now_v7().simple());
    for n in 0..20 {
        let resp = client
            .get(format!("{}/v1/agents", server.url))
            .bearer_auth(forged(n))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "key {n}");
    }
    let resp = client
        .get(format!("{}/v1/agents", server.url))
        .bearer_auth(forged(99))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // A login token is not held back by it.
    let resp = client
        .get(format!("{}/v1/agents", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_agents_metric_series_leave_the_scrape() {
    let server = start(&[
        ("SWITCHYARD_DATABASE_URL", sqlite_url()),
        ("SWITCHYARD_METRICS_IDLE_SECONDS", "2".into()),
    ]);
    let client = http_client().build().unwrap();
    let token = tenant(
        &client,
        &server.url,
        vec![
            json!({"name": "gone", "kind": "echo"}),
            json!({"name": "kept", "kind": "echo", "is_fallback": true}),
        ],
    )
    .await;
    let agents: Value = client
        .get(format!("{}/v1/agents", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = |name: &str| {
        agents["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (gone, kept) = (id("gone"), id("kept"));
    let chat = |agent: String| {
        let (client, url, token) = (client.clone(), server.url.clone(), token.clone());
        async move {
            let resp = client
                .post(format!("{url}/v1/chat"))
                .bearer_auth(&token)
                .json(&json!({"message": "hello", "agent_id": agent}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    let scrape = || {
        let (client, url) = (client.clone(), server.url.clone());
        async move {
            client
                .get(format!("{url}/metrics"))
                .bearer_auth(OPERATOR)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let series = |text: &str, agent: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("switchyard_turns_total") && l.contains(&format!("agent=\"{agent}\""))
            })
            .count()
    };
    chat(gone.clone()).await;
    chat(kept.clone()).await;
    let before = scrape().await;
    assert_eq!(series(&before, "gone"), 1, "{before}");
    assert_eq!(series(&before, "kept"), 1, "{before}");

    let deleted = client
        .delete(format!("{}/v1/agents/{gone}", server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The kept agent keeps answering; the deleted one's series goes once idle.
    wait_for(
        Duration::from_secs(20),
        "the deleted agent's series to go",
        async || {
            chat(kept.clone()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let text = scrape().await;
            assert_eq!(
                series(&text, "kept"),
                1,
                "a used agent's series stays: {text}"
            );
            series(&text, "gone") == 0
        },
    )
    .await;
}

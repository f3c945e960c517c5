//! docs/quickstart.md as a newcomer follows it: its Python agent, run as written, answers
//! through a real server (and a request signed with another secret is refused), and its
//! Rust agent is the example the workspace builds, word for word.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const OPERATOR: &str = "operator-token-for-the-quickstart";
const SECRET: &str = "a-long-random-secret";

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/quickstart.md"))
        .unwrap()
}

/// The code block of `language` that starts with `first_line`.
fn block(doc: &str, language: &str, first_line: &str) -> String {
    let start = format!("```{language}\n{first_line}");
    let at = doc
        .find(&start)
        .unwrap_or_else(|| panic!("no {start:?} block"));
    let code = &doc[at + language.len() + 4..];
    code[..code.find("```").unwrap()].to_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_rust_agent_is_the_example_the_workspace_builds() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../switchyard-agents/examples/first_agent.rs"),
    )
    .unwrap();
    assert_eq!(block(&doc(), "rust", "//! Your first http agent"), example);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_agent_answers_through_switchyard() {
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("SWITCHYARD_REQUIRE_OPENAI_CLIENT").is_err(),
            "python3 is needed for the quickstart's agent"
        );
        switchyard_store::testing::loud_skip("no python3: the quickstart's agent test is SKIPPED");
        return;
    }
    let script = switchyard_store::testing::sqlite_path().with_extension("py");
    std::fs::write(&script, block(&doc(), "python", "# first_agent.py")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _agent = Killed(
        Command::new("python3")
            .arg(&script)
            .env("AGENT_SECRET", SECRET)
            .env("PORT", port.to_string())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the quickstart's agent did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let db = format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    );
    let mut server = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SWITCHYARD_DATABASE_URL", &db)
        .env("SWITCHYARD_BIND", "127.0.0.1:0")
        .env("SWITCHYARD_AGENT_DENY_PRIVATE", "false")
        .env("SWITCHYARD_ADMIN_TOKEN", OPERATOR)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _server = Killed(server);
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    switchyard_agents::install_tls_provider();
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{url}/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(
            &json!({"slug": "quick", "name": "Quick", "admin_email": "a@quick.test",
                      "admin_password": "a long enough password"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let login: Value = http
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"tenant": "quick", "email": "a@quick.test", "password": "a long enough password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    let agent: Value = http
        .post(format!("{url}/v1/agents"))
        .bearer_auth(token)
        .json(
            &json!({"name": "first", "kind": "http", "description": "repeats what it is told",
                      "config": {"url": format!("http://127.0.0.1:{port}/"), "secret": SECRET}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = agent["id"].as_str().unwrap();
    let chat = |body: Value| {
        http.post(format!("{url}/v1/chat"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let answer = chat(json!({"message": "hello there", "agent_id": id}))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["response"], "You said: hello there");

    // Signed with another secret, the request is refused by the agent.
    let patched = http
        .patch(format!("{url}/v1/agents/{id}"))
        .bearer_auth(token)
        .json(&json!({"config": {"url": format!("http://127.0.0.1:{port}/"), "secret": "another-secret-entirely"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let refused = chat(json!({"message": "hello again", "agent_id": id}))
        .await
        .unwrap();
    assert_eq!(refused.status(), 502);
    let _ = std::fs::remove_file(&script);
}

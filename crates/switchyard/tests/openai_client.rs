//! A real OpenAI client library — the official Python `openai` package, not written here —
//! talks to Switchyard: lists models, completes a chat, streams one, continues the
//! conversation with Switchyard's header, and reads an error.
//!
//! The client lives in a virtual environment under `target/` made on first use (`pip install`
//! of the pinned version). Where that cannot be made (no Python, no package index) the test
//! says so loudly and skips, unless `SWITCHYARD_REQUIRE_OPENAI_CLIENT=1` (CI sets it).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

#[path = "support/venv.rs"]
mod venv;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const OPERATOR: &str = "operator-token-for-openai-client-tests";

fn required() -> bool {
    std::env::var("SWITCHYARD_REQUIRE_OPENAI_CLIENT").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_client_lists_completes_and_streams() {
    let Some(python) = venv::python(
        "openai-client-venv",
        "openai",
        "tests/openai_client/requirements.txt",
    ) else {
        assert!(
            !required(),
            "the OpenAI client library could not be installed"
        );
        switchyard_store::testing::loud_skip(
            "the OpenAI Python client could not be installed: this test is SKIPPED",
        );
        return;
    };
    let db = format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    );
    let mut server = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATABASE_URL", &db)
        .env("SWITCHYARD_BIND", "127.0.0.1:0")
        // The agents of these tests listen on loopback.
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
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    switchyard_agents::install_tls_provider();
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{url}/v1/tenants"))
        .bearer_auth(OPERATOR)
        .json(&json!({"slug": "openai-client", "name": "x", "admin_email": "a@o.test", "admin_password": "a long enough password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value = http
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"tenant": "openai-client", "email": "a@o.test", "password": "a long enough password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap();
    for agent in [
        json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "charged"], "examples": ["I was charged twice"]}),
        json!({"name": "travel", "kind": "echo", "keywords": ["flight"]}),
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    ] {
        http.post(format!("{url}/v1/agents"))
            .bearer_auth(token)
            .json(&agent)
            .send()
            .await
            .unwrap();
    }
    let key: Value = http
        .post(format!("{url}/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "python", "user_id": created["admin"]["id"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client/client.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&url)
        .arg(key["secret"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen["models"],
        json!(["switchyard", "billing", "general", "travel"])
    );
    assert_eq!(seen["retrieved"], "travel");
    assert_eq!(seen["answer"], "billing: I was charged twice on my invoice");
    assert_eq!(seen["answered_by"], "billing");
    // What cannot be done is a 400 the client raises, naming the field.
    assert_eq!(
        seen["refused"],
        json!({"type": "BadRequestError", "status": 400, "param": "n"})
    );
    assert_eq!(seen["finish_reason"], "stop");
    let pieces: Vec<&str> = seen["streamed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(pieces.len() > 1, "streamed in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), "travel: and book me a flight");
    assert_eq!(
        seen["error"],
        json!({"type": "NotFoundError", "status": 404})
    );
    // The streamed turn continued the first conversation.
    let conversation = seen["conversation"].as_str().unwrap();
    let detail: Value = http
        .get(format!("{url}/v1/conversations/{conversation}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["message_count"], 2);
    let _ = server.kill();
    let _ = server.wait();
}

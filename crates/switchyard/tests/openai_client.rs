//! A real OpenAI client library — the official Python `openai` package, not written here —
//! talks to Switchyard: lists models, completes a chat, streams one, continues the
//! conversation with Switchyard's header, and reads an error.
//!
//! The client lives in a virtual environment under `target/` made on first use (`pip install`
//! of the pinned version). Where that cannot be made (no Python, no package index) the test
//! says so loudly and skips, unless `SWITCHYARD_REQUIRE_OPENAI_CLIENT=1` (CI sets it).

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

#[path = "support/venv.rs"]
mod venv;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// An `http` agent that answers with the history it received, `role: text` each, and the
/// message as `now: text`; its URL.
async fn recorder() -> String {
    let app = axum::Router::new().route(
        "/agent",
        axum::routing::post(|body: axum::Json<Value>| async move {
            let mut said: Vec<String> = body["history"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    format!(
                        "{}: {}",
                        h["role"].as_str().unwrap_or_default(),
                        h["content"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            said.push(format!(
                "now: {}",
                body["message"].as_str().unwrap_or_default()
            ));
            axum::Json(json!({"response": said.join(" | ")}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/agent", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    url
}

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
        .json(&json!({"slug": "openai-client", "name": "x", "admin_email": "a@o.test", "admin_password": "a long enough password",
                      "settings": {"max_conversations_per_user": 3}}))
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
    let recorder = recorder().await;
    for agent in [
        json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "charged"], "examples": ["I was charged twice"]}),
        json!({"name": "travel", "kind": "echo", "keywords": ["flight"]}),
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
        json!({"name": "recorder", "kind": "http", "config": {"url": recorder}}),
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
        json!(["switchyard", "billing", "general", "recorder", "travel"])
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

    // A missing model is the client's NotFoundError, read from an OpenAI-shaped body.
    assert_eq!(
        seen["missing_model"],
        json!({"type": "NotFoundError", "status": 404, "code": "model_not_found"})
    );
    // The agent got the history the client sent, in order, system message included.
    assert_eq!(
        seen["recorded"],
        "system: be brief | user: first question | assistant: first answer | now: second question"
    );
    // The resent thread continued one conversation, of two turns.
    let resent = seen["resent"].as_array().unwrap();
    assert_eq!(resent[0], resent[1], "{resent:?}");
    let thread: Value = http
        .get(format!(
            "{url}/v1/conversations/{}",
            resent[0].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(thread["message_count"], 2);
    // Twelve one-message calls with a conversation limit of three: none refused, and the
    // user's own chat is not locked out either.
    assert_eq!(seen["calls"], 12);
    let chat = http
        .post(format!("{url}/v1/chat"))
        .bearer_auth(token)
        .json(&json!({"message": "still here?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    // Usage on a plain answer and in a streamed one's last chunk (with no choices), estimated
    // at a token per four characters: 33 characters asked (9), 42 answered (11).
    for usage in [&seen["plain_usage"], &seen["streamed_usage"]["usage"]] {
        assert_eq!(usage["prompt_tokens"], 9, "{usage}");
        assert_eq!(usage["completion_tokens"], 11, "{usage}");
        assert_eq!(usage["total_tokens"], 20, "{usage}");
    }
    assert_eq!(seen["streamed_usage"]["choices"], 0);
    let _ = server.kill();
    let _ = server.wait();
}

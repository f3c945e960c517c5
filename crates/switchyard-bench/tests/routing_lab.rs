//! The routing lab measures what `routing-eval` measures: HWU64's scenario agents, built as
//! `routing-eval` builds them (`--lab-out`), registered over the API of a server on a real
//! socket, and the set's test messages sent to `POST /v1/routing/evaluate` as CSV, give the
//! same number of messages routed where their label says.

use std::process::Command;
use std::sync::Arc;

use serde_json::{Value, json};
use switchyard_server::config::Secret;
use switchyard_server::{App, AppState, Config, router};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard-bench");
const OPERATOR: &str = "operator-token-for-tests-0123456789";
const SET: &str = "hwu64-scenarios-10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_measures_what_routing_eval_measures() {
    // The lexical configuration: the encoder's stage is the same call in both (the chat
    // turn's `analyze`), and leaving it out keeps this test to seconds in a debug build.
    let dir = std::env::temp_dir().join(format!(
        "switchyard-lab-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let out = Command::new(BIN)
        .args([
            "routing-eval",
            "--only",
            SET,
            "--variants",
            "lexical",
            "--lab-out",
        ])
        .arg(&dir)
        .env_remove("SWITCHYARD_ENCODER_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |name: String| std::fs::read_to_string(dir.join(name)).unwrap();
    let figures: Value =
        serde_json::from_str(&read(format!("{SET}-lexical.figures.json"))).unwrap();
    let agents: Vec<Value> = serde_json::from_str(&read(format!("{SET}.agents.json"))).unwrap();
    let csv = read(format!("{SET}.examples.csv"));
    std::fs::remove_dir_all(&dir).unwrap();

    // The server, as it runs, on embedded SQLite and a real socket.
    let config = Config {
        admin_token: Some(Secret::new(OPERATOR)),
        jwt_secret: Some(Secret::new("a-jwt-secret-for-tests-only-0123456789abcdef")),
        ..Config::default()
    };
    let store = switchyard_store::testing::sqlite_store().await;
    let state = AppState(Arc::new(
        App::new(config.validated().unwrap(), store).await.unwrap(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(state.clone())).into_future());
    let http = reqwest::Client::new();
    let post = |path: &str, token: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    let created = post(
        "/v1/tenants",
        OPERATOR,
        json!({"slug": "hwu", "name": "HWU64", "admin_email": "admin@hwu.test"}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let token = state
        .jwt
        .issue(
            created["id"].as_str().unwrap().parse().unwrap(),
            created["admin"]["id"].as_str().unwrap().parse().unwrap(),
            None,
        )
        .unwrap()
        .0;
    for agent in agents {
        let made = post("/v1/agents", &token, agent).await.unwrap();
        assert_eq!(made.status(), 201, "{:?}", made.text().await);
    }
    let evaluated = post("/v1/routing/evaluate", &token, json!({"csv": csv}))
        .await
        .unwrap();
    assert_eq!(evaluated.status(), 200);
    let evaluated: Value = evaluated.json().await.unwrap();
    assert_eq!(evaluated["total"], figures["total"]);
    assert_eq!(evaluated["correct"], figures["correct"], "{figures}");
    assert!(evaluated["total"].as_u64().unwrap() > 1000);
}

//! What agents receive over real HTTP: signed requests with only their conversation's
//! history, refused private addresses, OpenAI-compatible models whole and streamed.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use super::{chat, http_agent};
use crate::agent_server::{self, sse_events};
use crate::common::{OPERATOR, TestApp, assert_problem};

#[tokio::test]
async fn http_agents_get_a_signed_request_with_only_their_conversations_history() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    http_agent(
        &app,
        &t,
        "billing",
        agents.url("/ok"),
        json!({"secret": "0123456789abcdef-secret", "headers": {"X-Api-Key": "k1"}}),
    )
    .await;
    let first = chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice", "metadata": {"channel": "web"}}),
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["response"], "ok: refund my invoice");
    let conversation = first.body["conversation_id"].as_str().unwrap().to_string();
    // Another conversation of the same user: its turns must never reach this one's agent.
    chat(
        &app,
        &t.member_token,
        json!({"message": "invoice of another conversation"}),
    )
    .await;
    chat(
        &app,
        &t.member_token,
        json!({"message": "and the refund?", "conversation_id": conversation}),
    )
    .await;

    let received = agents.received("/ok");
    assert_eq!(received.len(), 3);
    let last = &received[2];
    let body = last.json();
    assert_eq!(body["conversation_id"], conversation.as_str());
    assert_eq!(body["message"], "and the refund?");
    assert_eq!(
        body["history"],
        json!([{"role": "user", "content": "refund my invoice"}, {"role": "assistant", "content": "ok: refund my invoice"}])
    );
    assert!(body["message_id"].is_string());
    assert_eq!(body["intent"], "billing");
    assert_eq!(received[0].json()["metadata"], json!({"channel": "web"}));
    assert_eq!(last.headers["x-api-key"], "k1");
    // The signature verifies: HMAC-SHA256(secret, timestamp + "." + body).
    let timestamp: i64 = last.headers["x-switchyard-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    let expected = switchyard_agents::sign("0123456789abcdef-secret", timestamp, &last.body);
    assert_eq!(
        last.headers["x-switchyard-signature"].to_str().unwrap(),
        expected
    );
}

#[tokio::test]
async fn private_addresses_can_be_refused() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.agent_deny_private = Some(true);
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    let by_ip = http_agent(&app, &t, "by-ip", agents.url("/ok"), json!({})).await;
    let by_name = http_agent(
        &app,
        &t,
        "by-name",
        format!("http://localhost:{}/ok", agents.addr.port()),
        json!({}),
    )
    .await;
    for id in [by_ip, by_name] {
        // An admin is told why (a member only that the agent failed).
        let resp = chat(
            &app,
            &t.admin_token,
            json!({"message": "refund", "agent_id": id}),
        )
        .await;
        assert_problem(&resp, 502);
        assert!(
            resp.body["detail"].as_str().unwrap().contains("refused"),
            "{:?}",
            resp.body
        );
    }
    assert!(agents.received("/ok").is_empty());
}

#[tokio::test]
async fn an_agent_gets_only_the_last_turns_of_its_conversation() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.history_turns = 2;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    http_agent(&app, &t, "billing", agents.url("/ok"), json!({})).await;
    let first = chat(&app, &t.member_token, json!({"message": "refund one"})).await;
    let conversation = first.body["conversation_id"].clone();
    for message in ["refund two", "refund three", "refund four"] {
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": message, "conversation_id": conversation}),
        )
        .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
    }
    let received = agents.received("/ok");
    assert_eq!(received.len(), 4);
    // The fourth call carries the two turns before it, oldest first, and nothing older.
    assert_eq!(
        received[3].json()["history"],
        json!([
            {"role": "user", "content": "refund two"},
            {"role": "assistant", "content": "ok: refund two"},
            {"role": "user", "content": "refund three"},
            {"role": "assistant", "content": "ok: refund three"},
        ])
    );
    assert_eq!(received[0].json()["history"], json!([]));
}

#[tokio::test]
async fn openai_agents_answer_whole_and_streamed() {
    let model = agent_server::start_openai().await;
    // The key is named by the agent and read from the environment, never stored: cargo
    // sets this test's variable before the test binary starts (`.cargo/config.toml`), so
    // no test writes the environment while others read it.
    assert_eq!(
        std::env::var("SY_TEST_OPENAI_KEY").as_deref(),
        Ok("sk-test-123"),
        "run the tests with cargo, which sets SY_TEST_OPENAI_KEY"
    );
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let agent = |var: &str| {
        json!({"name": "assistant", "kind": "openai", "is_fallback": true,
               "config": {"base_url": model.url("/v1"), "model": "tiny", "system_prompt": "Be brief.", "api_key_env": var}})
    };
    // A tenant admin may name only a variable the operator granted the tenant: never the
    // server's own secrets, nor anything not granted.
    for var in [
        "SWITCHYARD_JWT_SECRET",
        "SWITCHYARD_ADMIN_TOKEN",
        "SY_TEST_OPENAI_KEY",
    ] {
        assert_problem(
            &app.post("/v1/agents", &t.admin_token, agent(var)).await,
            422,
        );
    }
    let granted = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"agent_key_envs": ["SY_TEST_OPENAI_KEY"]}}),
        )
        .await;
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    assert_problem(
        &app.patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"agent_key_envs": ["SWITCHYARD_JWT_SECRET"]}}),
        )
        .await,
        422,
    );
    let created = app
        .post("/v1/agents", &t.admin_token, agent("SY_TEST_OPENAI_KEY"))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let whole = chat(&app, &t.member_token, json!({"message": "hello there"})).await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert_eq!(whole.body["response"], "model says: hello there");
    let sent = &model.received("/v1/chat/completions")[0];
    assert_eq!(sent.headers["authorization"], "Bearer sk-test-123");
    assert_eq!(sent.json()["model"], "tiny");
    assert_eq!(
        sent.json()["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );

    let request = Request::post("/v1/chat")
        .header("authorization", format!("Bearer {}", t.member_token))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(json!({"message": "stream it please", "conversation_id": whole.body["conversation_id"]}).to_string()))
        .unwrap();
    let events = sse_events(&app.send(request).await.raw);
    let streamed: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "model says: stream it please");
    assert_eq!(events.last().unwrap().1["response"], streamed.as_str());
    let history = model.received("/v1/chat/completions")[1].json()["messages"].clone();
    assert_eq!(
        history[1],
        json!({"role": "user", "content": "hello there"})
    );
    assert_eq!(
        history[2],
        json!({"role": "assistant", "content": "model says: hello there"})
    );

    // A stream cut off half-way is an error, and nothing is stored.
    let cut = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "cut", "kind": "openai", "config": {"base_url": model.url("/cut"), "model": "tiny"}}),
        )
        .await;
    let request = Request::post("/v1/chat")
        .header("authorization", format!("Bearer {}", t.member_token))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(json!({"message": "this will break", "agent_id": cut.body["id"], "conversation_id": whole.body["conversation_id"]}).to_string()))
        .unwrap();
    let events = sse_events(&app.send(request).await.raw);
    assert!(
        events.iter().any(|(e, _)| e == "delta"),
        "pieces arrived before the cut"
    );
    let (last, problem) = events.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(problem["status"], 502);
    let detail = app
        .get(
            &format!(
                "/v1/conversations/{}",
                whole.body["conversation_id"].as_str().unwrap()
            ),
            &t.member_token,
        )
        .await;
    assert_eq!(detail.body["message_count"], 2);

    // A grant taken back holds at once for agents made under it: the key is not read.
    let calls = model.received("/v1/chat/completions").len();
    let revoked = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"agent_key_envs": null}}),
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let refused = chat(
        &app,
        &t.admin_token,
        json!({"message": "hello again", "agent_id": created.body["id"]}),
    )
    .await;
    assert_problem(&refused, 502);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("not granted"),
        "{:?}",
        refused.body
    );
    assert_eq!(model.received("/v1/chat/completions").len(), calls);
}

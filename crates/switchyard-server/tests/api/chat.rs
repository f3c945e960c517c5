//! `POST /v1/chat` and `POST /v1/route`: routing behaviour, agent calls over real HTTP,
//! failover and circuits, idempotency, concurrency, streaming and limits.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};
use switchyard_core::{Role, TenantScope};

use crate::agent_server::{self, sse_events};
use crate::common::{Actors, OPERATOR, TestApp, assert_problem, on_both_backends};

/// The customer-service agents of the load workload (a subset of shared/perf/agents.json).
async fn service_agents(app: &TestApp, t: &Actors) -> Value {
    let agents = [
        json!({"name": "billing", "description": "Invoices, payments, refunds and subscriptions", "kind": "echo",
               "intents": ["billing"], "priority": 10,
               "keywords": ["invoice", "payment", "refund", "charge", "charged", "bill", "billing", "subscription", "card"],
               "examples": ["I was charged twice on my card", "Where is my invoice for March?"]}),
        json!({"name": "tech_support", "description": "Errors, crashes, installation and login problems", "kind": "echo",
               "intents": ["technical"], "priority": 10,
               "keywords": ["error", "crash", "crashes", "bug", "install", "login", "password", "reset", "broken", "app"],
               "examples": ["The app crashes when I log in", "How do I reset my password?"]}),
        json!({"name": "shipping", "description": "Deliveries, parcels and order tracking", "kind": "echo",
               "intents": ["shipping"], "priority": 10,
               "keywords": ["delivery", "package", "parcel", "tracking", "shipment", "shipping", "order", "courier", "late"],
               "examples": ["My package is late", "Can I get a tracking number for my order?"]}),
        json!({"name": "general", "description": "General questions; answers when nothing else fits", "kind": "echo",
               "intents": ["general"], "priority": 0, "is_fallback": true,
               "keywords": ["hello", "hi", "help", "question", "info", "thanks"],
               "examples": ["Hello, I have a question", "Thanks for the help"]}),
    ];
    let mut ids = serde_json::Map::new();
    for agent in agents {
        let created = app.post("/v1/agents", &t.admin_token, agent.clone()).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        ids.insert(
            agent["name"].as_str().unwrap().to_string(),
            created.body["id"].clone(),
        );
    }
    Value::Object(ids)
}

async fn chat(app: &TestApp, token: &str, body: Value) -> crate::common::Resp {
    app.post("/v1/chat", token, body).await
}

async fn routing_behaviour(app: TestApp) {
    let t = app.tenant().await;
    let ids = service_agents(&app, &t).await;

    // A clear message goes to its agent, by the lexical analysis, and is stored.
    let first = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice on my card, where is my refund?"}),
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let b = &first.body;
    assert_eq!(b["agent"]["name"], "billing");
    assert_eq!(b["agent"]["id"], ids["billing"]);
    assert_eq!(
        b["response"],
        "billing: I was charged twice on my card, where is my refund?"
    );
    assert_eq!(b["intent"]["category"], "billing");
    assert!(b["intent"]["confidence"].as_f64().unwrap() >= 0.5);
    assert!(
        b["intent"]["keywords"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "charged" || k == "refund" || k == "card")
    );
    assert_eq!(b["routing"]["method"], "lexical");
    assert_eq!(b["routing"]["fallback_used"], false);
    assert_eq!(b["routing"]["failover_from"], Value::Null);
    assert!(b["routing"]["margin"].as_f64().unwrap() > 0.0);
    assert!(b["routing"]["reason"].is_string());
    assert!(
        b["routing"]["alternatives"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["agent_id"].is_string() && a["score"].is_number())
    );
    assert!(b.get("debug").is_none(), "debug info is off unless enabled");
    let conversation = b["conversation_id"].as_str().unwrap().to_string();

    // A neutral follow-up stays with the conversation's agent (sticky wins over fallback).
    let follow = chat(
        &app,
        &t.member_token,
        json!({"message": "yes, please", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(follow.status, 200, "{:?}", follow.body);
    assert_eq!(follow.body["agent"]["name"], "billing");
    assert_eq!(follow.body["routing"]["method"], "sticky");
    assert_eq!(follow.body["conversation_id"], conversation.as_str());
    // A clearly different follow-up moves.
    let moved = chat(
        &app,
        &t.member_token,
        json!({"message": "my package is late, can I get a tracking number for the delivery?", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(moved.body["agent"]["name"], "shipping", "{:?}", moved.body);

    // Nothing fits: the fallback agent answers.
    let vague = chat(
        &app,
        &t.member_token,
        json!({"message": "what will the weather be like on saturday?"}),
    )
    .await;
    assert_eq!(vague.body["agent"]["name"], "general", "{:?}", vague.body);
    assert_eq!(vague.body["routing"]["method"], "fallback");
    assert_eq!(vague.body["routing"]["fallback_used"], true);

    // Pinned: that agent answers, whatever the message says.
    let pinned = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice", "agent_id": ids["tech_support"]}),
    )
    .await;
    assert_eq!(pinned.body["agent"]["name"], "tech_support");
    assert_eq!(pinned.body["routing"]["method"], "pinned");

    // The conversation has its turns, with the routing recorded on each.
    let detail = app
        .get(
            &format!("/v1/conversations/{conversation}"),
            &t.member_token,
        )
        .await;
    assert_eq!(detail.body["message_count"], 3);
    assert_eq!(detail.body["primary_intent"], "billing");
    assert_eq!(detail.body["last_agent_id"], ids["shipping"]);
    let turns = detail.body["messages"]["items"].as_array().unwrap();
    assert_eq!(turns[1]["routing"]["method"], "sticky");
    assert_eq!(turns[1]["selected_agent_id"], ids["billing"]);
    assert!(turns[0]["latency_ms"].as_f64().unwrap() > 0.0);

    // /v1/route decides the same way and stores nothing.
    let before = app.get("/v1/conversations", &t.member_token).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    let routed = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "the app crashes at login"}),
        )
        .await;
    assert_eq!(routed.status, 200, "{:?}", routed.body);
    assert_eq!(routed.body["agent"]["name"], "tech_support");
    assert_eq!(routed.body["routing"]["method"], "lexical");
    let sticky = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "yes, please do that", "conversation_id": conversation}),
        )
        .await;
    assert_eq!(sticky.body["routing"]["method"], "sticky");
    let after = app.get("/v1/conversations", &t.member_token).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

async fn thresholds_margins_and_no_fallback(app: TestApp) {
    let t = app.tenant().await;
    service_agents(&app, &t).await;
    // A tenant that demands near certainty sends everything to the fallback agent.
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"min_confidence": 1.0}}),
    )
    .await;
    let strict = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice on my card"}),
    )
    .await;
    assert_eq!(
        strict.body["routing"]["method"], "fallback",
        "{:?}",
        strict.body
    );
    assert_eq!(strict.body["agent"]["name"], "general");
    // A tenant that demands a wide margin too.
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"min_confidence": null, "min_margin": 1.0}}),
    )
    .await;
    let narrow = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice on my card"}),
    )
    .await;
    assert_eq!(
        narrow.body["routing"]["method"], "fallback",
        "{:?}",
        narrow.body
    );
    // Back to defaults: routed.
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"min_margin": null}}),
    )
    .await;
    let normal = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice on my card"}),
    )
    .await;
    assert_eq!(normal.body["routing"]["method"], "lexical");

    // Without a fallback agent, the best candidate answers and the reason says so.
    let lone = app.tenant().await;
    app.post(
        "/v1/agents",
        &lone.admin_token,
        json!({"name": "billing", "kind": "echo", "keywords": ["invoice"]}),
    )
    .await;
    app.post(
        "/v1/agents",
        &lone.admin_token,
        json!({"name": "shipping", "kind": "echo", "keywords": ["parcel"]}),
    )
    .await;
    let unclear = chat(
        &app,
        &lone.member_token,
        json!({"message": "what is the meaning of life?"}),
    )
    .await;
    assert_eq!(unclear.status, 200, "{:?}", unclear.body);
    assert_eq!(unclear.body["routing"]["fallback_used"], false);
    assert!(
        unclear.body["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("fallback"),
        "{:?}",
        unclear.body["routing"]
    );

    // A tenant with no agent at all cannot chat.
    let empty = app.tenant().await;
    assert_problem(
        &chat(&app, &empty.member_token, json!({"message": "hello"})).await,
        503,
    );
}

async fn another_tenants_agent_is_never_chosen(app: TestApp) {
    let a = app.tenant().await;
    let b = app.tenant().await;
    // A has a generic fallback and an agent for something else; B has the perfect agent
    // for the message.
    app.post(
        "/v1/agents",
        &a.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    app.post(
        "/v1/agents",
        &a.admin_token,
        json!({"name": "shipping", "kind": "echo", "keywords": ["parcel", "delivery"], "examples": ["where is my parcel"]}),
    )
    .await;
    let b_billing = app
        .post(
            "/v1/agents",
            &b.admin_token,
            json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "refund", "charged"], "examples": ["refund my invoice"]}),
        )
        .await;
    let b_id = b_billing.body["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let resp = chat(
            &app,
            &a.member_token,
            json!({"message": "refund my invoice, I was charged twice"}),
        )
        .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        assert_eq!(resp.body["agent"]["name"], "general");
        assert!(
            !resp.raw.windows(b_id.len()).any(|w| w == b_id.as_bytes()),
            "B's agent appears nowhere in A's answer"
        );
        let alternatives = resp.body["routing"]["alternatives"].as_array().unwrap();
        assert!(
            alternatives.iter().all(|a| a["name"] != "billing"),
            "{alternatives:?}"
        );
        // The dry run agrees.
        let route = app
            .post(
                "/v1/route",
                &a.member_token,
                json!({"message": "refund my invoice, I was charged twice"}),
            )
            .await;
        assert_eq!(route.body["agent"]["name"], "general");
        assert!(!route.raw.windows(b_id.len()).any(|w| w == b_id.as_bytes()));
    }
    // Pinning B's agent from A is not found, as a random id is.
    let pinned = chat(
        &app,
        &a.member_token,
        json!({"message": "refund", "agent_id": b_id}),
    )
    .await;
    let random = chat(
        &app,
        &a.member_token,
        json!({"message": "refund", "agent_id": uuid::Uuid::now_v7()}),
    )
    .await;
    assert_problem(&pinned, 404);
    assert_eq!(pinned.raw, random.raw);
    // Continuing B's conversation from A is not found either.
    let b_conv = chat(
        &app,
        &b.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    let foreign = chat(
        &app,
        &a.member_token,
        json!({"message": "hi", "conversation_id": b_conv.body["conversation_id"]}),
    )
    .await;
    assert_problem(&foreign, 404);
    let b_detail = app
        .get(
            &format!(
                "/v1/conversations/{}",
                b_conv.body["conversation_id"].as_str().unwrap()
            ),
            &b.member_token,
        )
        .await;
    assert_eq!(
        b_detail.body["message_count"], 1,
        "nothing was added to B's conversation"
    );
}

on_both_backends!(
    routing_behaviour,
    thresholds_margins_and_no_fallback,
    another_tenants_agent_is_never_chosen,
    fifty_concurrent_chats_on_one_conversation_count_exactly
);

async fn http_agent(app: &TestApp, t: &Actors, name: &str, url: String, extra: Value) -> String {
    let mut config = json!({"url": url});
    if let Value::Object(extra) = extra {
        config.as_object_mut().unwrap().extend(extra);
    }
    let created = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": name, "kind": "http", "config": config, "keywords": ["refund", "invoice"], "priority": 5}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

async fn message_count(app: &TestApp, t: &Actors) -> i64 {
    let scope = TenantScope::trusted_for_cli_or_tests(t.tenant, t.admin, Role::Admin);
    let all = app
        .store
        .list_conversations(
            &scope,
            switchyard_store::ConversationFilter::All,
            switchyard_core::page::PageRequest::first(100),
        )
        .await
        .unwrap();
    all.items.iter().map(|c| c.message_count).sum()
}

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
async fn failover_errors_and_the_circuit_breaker() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.circuit_failure_threshold = 3;
    config.circuit_open_seconds = 1;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    let broken = http_agent(&app, &t, "billing", agents.url("/fail"), json!({})).await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;

    // The chosen agent fails: the fallback answers in the same turn, and the turn says so.
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(resp.body["agent"]["name"], "general");
    assert_eq!(
        resp.body["routing"]["failover_from"]["agent_id"],
        broken.as_str()
    );
    assert_eq!(resp.body["routing"]["failover_from"]["name"], "billing");
    assert!(
        resp.body["routing"]["failover_from"]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    let stored = app
        .get(
            &format!(
                "/v1/conversations/{}",
                resp.body["conversation_id"].as_str().unwrap()
            ),
            &t.member_token,
        )
        .await;
    assert_eq!(
        stored.body["messages"]["items"][0]["routing"]["failover_from"]["name"],
        "billing"
    );

    // Two more failures open the circuit: the agent is then skipped without a call.
    for _ in 0..2 {
        chat(
            &app,
            &t.member_token,
            json!({"message": "refund my invoice"}),
        )
        .await;
    }
    let calls = agents.received("/fail").len();
    assert_eq!(calls, 3);
    let skipped = chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(skipped.status, 200);
    assert_eq!(skipped.body["agent"]["name"], "general");
    assert_eq!(
        agents.received("/fail").len(),
        calls,
        "an open circuit is not called"
    );
    // Pinned to an agent whose circuit is open: 503, nothing stored.
    let before = message_count(&app, &t).await;
    let open = chat(
        &app,
        &t.member_token,
        json!({"message": "refund", "agent_id": broken}),
    )
    .await;
    assert_problem(&open, 503);
    assert_eq!(message_count(&app, &t).await, before);
    // Once the open period is over, one trial call is made (and, failing, reopens it).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while agents.received("/fail").len() == calls {
        assert!(std::time::Instant::now() < deadline, "no trial call came");
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": "refund my invoice"}),
        )
        .await;
        assert_eq!(resp.status, 200, "the fallback answers meanwhile");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(
        agents.received("/fail").len(),
        calls + 1,
        "exactly one trial, and its failure reopened the circuit"
    );
}

#[tokio::test]
async fn an_agent_that_cannot_answer_with_no_one_left_is_a_problem_and_stores_nothing() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let cases = [
        ("fail", "/fail", json!({}), 502, "agent-failed"),
        ("garbage", "/garbage", json!({}), 502, "agent-failed"),
        ("shape", "/wrong-shape", json!({}), 502, "agent-failed"),
        ("redirect", "/redirect", json!({}), 502, "agent-failed"),
        ("huge", "/huge", json!({}), 502, "agent-failed"),
        (
            "hang",
            "/hang",
            json!({"timeout_ms": 300}),
            504,
            "agent-timeout",
        ),
    ];
    let mut ids = Vec::new();
    for (name, path, extra, _, _) in &cases {
        ids.push(http_agent(&app, &t, name, agents.url(path), extra.clone()).await);
    }
    let (conversation, _) = {
        let ok = app
            .post(
                "/v1/agents",
                &t.admin_token,
                json!({"name": "echo", "kind": "echo"}),
            )
            .await;
        let first = chat(
            &app,
            &t.member_token,
            json!({"message": "hello", "agent_id": ok.body["id"]}),
        )
        .await;
        (
            first.body["conversation_id"].as_str().unwrap().to_string(),
            (),
        )
    };
    for ((name, _, _, status, kind), id) in cases.iter().zip(&ids) {
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": "refund", "agent_id": id, "conversation_id": conversation}),
        )
        .await;
        assert_problem(&resp, *status);
        assert_eq!(
            resp.body["type"],
            format!("https://switchyard.dev/problems/{kind}"),
            "{name}"
        );
        assert!(
            resp.body["detail"].as_str().unwrap().contains(name),
            "{name}: {:?}",
            resp.body
        );
    }
    assert_eq!(
        agents.received("/ok").len(),
        0,
        "the redirect was not followed"
    );
    let detail = app
        .get(
            &format!("/v1/conversations/{conversation}"),
            &t.member_token,
        )
        .await;
    assert_eq!(detail.body["message_count"], 1, "no failed turn was stored");
    // A new conversation whose first turn fails is not created at all.
    let before = app.get("/v1/conversations", &t.member_token).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_problem(
        &chat(
            &app,
            &t.member_token,
            json!({"message": "refund", "agent_id": ids[0]}),
        )
        .await,
        502,
    );
    let after = app.get("/v1/conversations", &t.member_token).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
}

#[tokio::test]
async fn private_addresses_can_be_refused() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.agent_deny_private = true;
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
        let resp = chat(
            &app,
            &t.member_token,
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
async fn idempotent_retries_store_one_turn() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "echo", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let send = |key: &str, body: Value| {
        let request = Request::post("/v1/chat")
            .header("authorization", format!("Bearer {}", t.member_token))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap();
        let app = app.clone();
        async move { app.send(request).await }
    };
    let body = json!({"message": "pay my invoice"});
    let first = send("key-1", body.clone()).await;
    assert_eq!(first.status, 200);
    let again = send("key-1", body.clone()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body, "the retry returns the first answer");
    assert_eq!(message_count(&app, &t).await, 1);
    assert_problem(
        &send("key-1", json!({"message": "something else"})).await,
        422,
    );
    assert_problem(&send(&"k".repeat(300), body.clone()).await, 400);
    // A failed request releases its key: the retry runs again.
    let failing = http_agent(&app, &t, "failing", agents.url("/flaky"), json!({})).await;
    agents
        .recorder
        .flaky_failures_left
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let pinned = json!({"message": "try", "agent_id": failing});
    assert_problem(&send("key-2", pinned.clone()).await, 502);
    let retried = send("key-2", pinned.clone()).await;
    assert_eq!(retried.status, 200, "{:?}", retried.body);
    assert_eq!(retried.body["response"], "flaky recovered");
    // The same key while the first is still running: 409.
    let slow = http_agent(&app, &t, "slow", agents.url("/slow"), json!({})).await;
    let slow_body = json!({"message": "slowly", "agent_id": slow});
    let running = tokio::spawn(send("key-3", slow_body.clone()));
    agent_server::wait_for_requests(&agents, "/slow", 1).await;
    assert_problem(&send("key-3", slow_body.clone()).await, 409);
    assert_eq!(running.await.unwrap().status, 200);
    // Keys are per user: another user's same key is independent.
    let other = app
        .call(
            Method::POST,
            "/v1/chat",
            Some(&t.admin_token),
            Some(body.clone()),
        )
        .await;
    assert_eq!(other.status, 200);
}

async fn fifty_concurrent_chats_on_one_conversation_count_exactly(app: TestApp) {
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "echo", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let first = chat(&app, &t.member_token, json!({"message": "start"})).await;
    let conversation = first.body["conversation_id"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let app = app.clone();
        let token = t.member_token.clone();
        let conversation = conversation.clone();
        tasks.push(tokio::spawn(async move {
            chat(
                &app,
                &token,
                json!({"message": format!("message {i}"), "conversation_id": conversation}),
            )
            .await
            .status
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert!(ok > 0);
    let detail = app
        .get(
            &format!("/v1/conversations/{conversation}?limit=100"),
            &t.member_token,
        )
        .await;
    assert_eq!(detail.body["message_count"], ok + 1);
    assert_eq!(
        detail.body["messages"]["items"].as_array().unwrap().len(),
        ok as usize + 1
    );
}

#[tokio::test]
async fn the_stream_adds_up_to_the_stored_answer() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    service_agents(&app, &t).await;
    let request = Request::post("/v1/chat")
        .header("authorization", format!("Bearer {}", t.member_token))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(
            json!({"message": "where is my invoice for the refund of my card payment?"})
                .to_string(),
        ))
        .unwrap();
    let resp = app.send(request).await;
    assert_eq!(resp.status, 200);
    assert!(
        resp.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&resp.raw);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"routing"));
    assert_eq!(names.last(), Some(&"done"));
    assert!(
        names.iter().filter(|n| **n == "delta").count() > 1,
        "the answer arrives in pieces: {names:?}"
    );
    let routing = &events[0].1;
    assert_eq!(routing["agent"]["name"], "billing");
    assert_eq!(routing["routing"]["method"], "lexical");
    let streamed: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    let done = &events.last().unwrap().1;
    assert_eq!(streamed, done["response"].as_str().unwrap());
    assert!(done["message_id"].is_string() && done["conversation_id"].is_string());
    let stored = app
        .get(
            &format!(
                "/v1/conversations/{}",
                done["conversation_id"].as_str().unwrap()
            ),
            &t.member_token,
        )
        .await;
    assert_eq!(
        stored.body["messages"]["items"][0]["agent_response"]
            .as_str()
            .unwrap(),
        streamed
    );
    assert_eq!(
        stored.body["messages"]["items"][0]["id"],
        done["message_id"]
    );

    // What fails before the routing decision is out is a plain problem with its own
    // status, not a stream that says 200: no agent (503), another tenant's conversation
    // (404, as a missing one).
    let none = app.tenant().await;
    let streamed = |token: &str, body: Value| {
        Request::post("/v1/chat")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let refused = app
        .send(streamed(&none.member_token, json!({"message": "hello"})))
        .await;
    assert_problem(&refused, 503);
    let foreign = app
        .send(streamed(
            &none.member_token,
            json!({"message": "hello", "conversation_id": done["conversation_id"]}),
        ))
        .await;
    assert_problem(&foreign, 404);
}

#[tokio::test]
async fn limits_and_message_sizes() {
    let mut config = crate::common::test_config();
    config.enable_debug_info = true;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "echo", "kind": "echo", "is_fallback": true}),
    )
    .await;
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"max_conversations_per_user": 2}}),
    )
    .await;
    let first = chat(&app, &t.member_token, json!({"message": "one"})).await;
    assert_eq!(first.status, 200);
    let timings = &first.body["debug"]["timings_ms"];
    for part in ["analyze", "route", "agent", "store"] {
        assert!(timings[part].as_f64().unwrap() >= 0.0, "{part}");
    }
    chat(&app, &t.member_token, json!({"message": "two"})).await;
    let over = chat(&app, &t.member_token, json!({"message": "three"})).await;
    assert_problem(&over, 409);
    assert_eq!(
        over.body["type"],
        "https://switchyard.dev/problems/limit-reached"
    );
    assert_eq!(
        app.get("/v1/conversations", &t.member_token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Follow-ups still work; other users have their own limit.
    let follow = chat(
        &app,
        &t.member_token,
        json!({"message": "more", "conversation_id": first.body["conversation_id"]}),
    )
    .await;
    assert_eq!(follow.status, 200);
    assert_eq!(
        chat(&app, &t.admin_token, json!({"message": "admin's"}))
            .await
            .status,
        200
    );
    // The tenant-wide limit.
    app.patch(&format!("/v1/tenants/{}", t.tenant), OPERATOR, json!({"settings": {"max_conversations_per_user": null, "max_conversations_per_tenant": 3}})).await;
    let turns_before = message_count(&app, &t).await;
    let over_tenant = chat(&app, &t.admin_token, json!({"message": "fourth"})).await;
    assert_problem(&over_tenant, 409);
    assert!(
        over_tenant.body["detail"].as_str().unwrap().contains('3'),
        "{:?}",
        over_tenant.body
    );
    assert_eq!(
        message_count(&app, &t).await,
        turns_before,
        "nothing written"
    );
    assert_eq!(
        app.get("/v1/conversations?all=true", &t.admin_token)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    assert_problem(
        &chat(&app, &t.member_token, json!({"message": ""})).await,
        422,
    );
    let longest = "é".repeat(32_768);
    let ok = chat(
        &app,
        &t.member_token,
        json!({"message": longest, "conversation_id": first.body["conversation_id"]}),
    )
    .await;
    assert_eq!(ok.status, 200, "32,768 characters (not bytes) are fine");
    assert_problem(
        &chat(
            &app,
            &t.member_token,
            json!({"message": "é".repeat(32_769)}),
        )
        .await,
        422,
    );
    assert_problem(
        &chat(
            &app,
            &t.member_token,
            json!({"message": "x", "tenant_id": t.tenant}),
        )
        .await,
        422,
    );
    assert_problem(
        &chat(&app, &t.member_token, json!({"text": "x"})).await,
        422,
    );
}

#[tokio::test]
async fn openai_agents_answer_whole_and_streamed() {
    let model = agent_server::start_openai().await;
    // The key is named by the agent and read from the environment, never stored.
    // SAFETY of the test: a variable no other test reads.
    unsafe_env_set("SY_TEST_OPENAI_KEY", "sk-test-123");
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
        &t.member_token,
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

fn unsafe_env_set(key: &str, value: &str) {
    // Edition 2024 makes set_var unsafe because other threads may read the environment at
    // the same time; the variable set here is read only by this test's agent calls.
    #[expect(unsafe_code, reason = "setting a test-only environment variable")]
    unsafe {
        std::env::set_var(key, value);
    }
}

/// Two servers (each with its own pool and caches) on one database.
async fn replicas_sharing_a_database_see_agent_changes_at_once(url: String) {
    let open = || async {
        TestApp::new(
            switchyard_store::connect(&switchyard_store::StoreConfig::new(url.clone()))
                .await
                .unwrap(),
        )
        .await
    };
    let one = open().await;
    let two = open().await;
    let t = one.tenant().await;
    one.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    // Replica two builds and caches its index.
    let before = chat(
        &two,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(before.body["agent"]["name"], "general");
    // Replica one adds an agent; replica two routes to it on its very next request.
    one.post("/v1/agents", &t.admin_token, json!({"name": "billing", "kind": "echo", "keywords": ["refund", "invoice"], "examples": ["refund my invoice"]})).await;
    let after = chat(
        &two,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(after.body["agent"]["name"], "billing", "{:?}", after.body);
    // And disabling it there is seen here too.
    let billing = two.get("/v1/agents", &t.member_token).await.body["items"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    one.patch(
        &format!("/v1/agents/{billing}"),
        &t.admin_token,
        json!({"enabled": false}),
    )
    .await;
    let disabled = chat(
        &two,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(disabled.body["agent"]["name"], "general");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_sqlite_see_agent_changes_at_once() {
    let url = format!(
        "sqlite://{}",
        switchyard_store::testing::sqlite_path().display()
    );
    replicas_sharing_a_database_see_agent_changes_at_once(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_on_postgres_see_agent_changes_at_once() {
    if let Some(url) = switchyard_store::testing::postgres_database_url().await {
        replicas_sharing_a_database_see_agent_changes_at_once(url).await;
    }
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

/// A tenant with two billing agents, the primary the better match, whose thresholds let any
/// candidate take over (`min_confidence` 0, no margin needed), and optionally a fallback.
async fn two_billing_agents(
    app: &TestApp,
    primary: String,
    primary_extra: Value,
    backup: String,
    backup_extra: Value,
    with_fallback: bool,
) -> (Actors, String, String) {
    let t = app.tenant().await;
    let patched = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"min_confidence": 0.0, "min_margin": 0.0}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    // The primary fits the message best; the backup fits it too, less well.
    let agent = |name: &str, url: String, extra: Value, keywords: Value, examples: Value| {
        let mut config = json!({"url": url});
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        json!({"name": name, "kind": "http", "config": config, "keywords": keywords, "examples": examples})
    };
    let first = app
        .post(
            "/v1/agents",
            &t.admin_token,
            agent(
                "primary",
                primary,
                primary_extra,
                json!(["refund", "invoice"]),
                json!(["refund my invoice", "an invoice refund"]),
            ),
        )
        .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let second = app
        .post(
            "/v1/agents",
            &t.admin_token,
            agent(
                "backup",
                backup,
                backup_extra,
                json!(["refund"]),
                json!(["a refund please"]),
            ),
        )
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    if with_fallback {
        app.post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "general", "kind": "echo", "is_fallback": true}),
        )
        .await;
    }
    (
        t,
        first.body["id"].as_str().unwrap().to_string(),
        second.body["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn an_unpinned_turn_fails_over_through_its_candidates() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;

    // The chosen agent fails; the next confident candidate answers in the same turn.
    let (t, primary, _) = two_billing_agents(
        &app,
        agents.url("/fail"),
        json!({}),
        agents.url("/ok"),
        json!({}),
        true,
    )
    .await;
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(resp.body["agent"]["name"], "backup", "{:#}", resp.body);
    assert_eq!(
        resp.body["routing"]["failover_from"]["agent_id"],
        primary.as_str()
    );
    assert_eq!(resp.body["response"], "ok: refund my invoice");

    // Both candidates fail, the fallback answers.
    let (t, _, _) = two_billing_agents(
        &app,
        agents.url("/fail"),
        json!({}),
        agents.url("/garbage"),
        json!({}),
        true,
    )
    .await;
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(resp.body["agent"]["name"], "general");
    assert_eq!(resp.body["routing"]["failover_from"]["name"], "primary");

    // Everyone fails and no one is left: the first failure's problem, nothing stored.
    for (primary, primary_extra, status) in [
        ("/fail", json!({}), 502),
        ("/hang", json!({"timeout_ms": 300}), 504),
    ] {
        let (t, _, _) = two_billing_agents(
            &app,
            agents.url(primary),
            primary_extra,
            agents.url("/garbage"),
            json!({}),
            false,
        )
        .await;
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": "refund my invoice"}),
        )
        .await;
        assert_problem(&resp, status);
        assert_eq!(
            message_count(&app, &t).await,
            0,
            "{primary}: nothing stored"
        );
        assert_eq!(
            app.get("/v1/conversations", &t.member_token).await.body["items"],
            json!([]),
            "{primary}: no conversation either"
        );
    }
}

#[tokio::test]
async fn timeouts_and_garbage_open_the_circuit_too() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.circuit_failure_threshold = 2;
    config.circuit_open_seconds = 60;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    for (name, path, extra, status) in [
        ("slowpoke", "/hang", json!({"timeout_ms": 200}), 504),
        ("babbler", "/garbage", json!({}), 502),
    ] {
        let id = http_agent(&app, &t, name, agents.url(path), extra).await;
        let pinned = json!({"message": "refund", "agent_id": id});
        for _ in 0..2 {
            assert_problem(&chat(&app, &t.member_token, pinned.clone()).await, status);
        }
        let calls = agents.received(path).len();
        assert_eq!(calls, 2, "{name}");
        // Open now: refused at once, without a call.
        let open = chat(&app, &t.member_token, pinned.clone()).await;
        assert_problem(&open, 503);
        assert_eq!(
            open.body["type"],
            "https://switchyard.dev/problems/circuit-open"
        );
        assert_eq!(agents.received(path).len(), calls, "{name}: not called");
    }
}

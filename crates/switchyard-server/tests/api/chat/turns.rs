//! Turns as the store keeps them: idempotent retries, concurrent turns counted exactly,
//! streams that add up to the stored answer, limits and message sizes.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use super::{chat, http_agent, message_count, service_agents};
use crate::agent_server::{self, sse_events};
use crate::common::{OPERATOR, TestApp, assert_problem, on_both_backends};

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

on_both_backends!(fifty_concurrent_chats_on_one_conversation_count_exactly);

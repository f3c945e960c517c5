//! Agents that fail: failover through the candidates, circuits that open, and a turn with
//! no one left to answer.

use std::time::Duration;

use serde_json::{Value, json};

use super::{chat, http_agent, message_count};
use crate::agent_server::{self};
use crate::common::{Actors, OPERATOR, TestApp, assert_problem};

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
    // The routing record reaches members: the kind of failure, not the agent's status line.
    assert_eq!(
        resp.body["routing"]["failover_from"]["error"],
        "the agent could not be reached or answered an error"
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
        let detail = resp.body["detail"].as_str().unwrap();
        assert!(detail.contains(name), "{name}: {:?}", resp.body);
        // A member is told the kind of failure only; an admin making the same call gets
        // what went wrong.
        assert!(
            !detail.contains("HTTP") && !detail.contains("127.0.0.1"),
            "{name}: {detail}"
        );
        let as_admin = chat(
            &app,
            &t.admin_token,
            json!({"message": "refund", "agent_id": id}),
        )
        .await;
        assert_problem(&as_admin, *status);
        if *name == "fail" {
            assert!(
                as_admin.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("HTTP 500"),
                "{:?}",
                as_admin.body
            );
        }
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

//! Operations: per-tenant rate limits and in-flight caps (one noisy tenant does not slow
//! the others), metrics and analytics that match the traffic actually made.

use std::time::Duration;

use serde_json::{Value, json};

use crate::agent_server;
use crate::common::{Actors, OPERATOR, TestApp, assert_problem};

async fn chat(app: &TestApp, token: &str, body: Value) -> crate::common::Resp {
    app.post("/v1/chat", token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_limited_and_its_neighbour_is_not() {
    let app = TestApp::sqlite().await;
    let noisy = app.tenant().await;
    let quiet = app.tenant().await;
    for t in [&noisy, &quiet] {
        app.post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "echo", "kind": "echo", "is_fallback": true}),
        )
        .await;
    }
    let patched = app
        .patch(
            &format!("/v1/tenants/{}", noisy.tenant),
            OPERATOR,
            json!({"settings": {"rate_limit_per_second": 2, "rate_limit_burst": 5}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    // Both tenants at once: the noisy one far over its limit.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let app = app.clone();
        let (token, noisy_one) = if i % 3 == 0 {
            (quiet.member_token.clone(), false)
        } else {
            (noisy.member_token.clone(), true)
        };
        tasks.push(tokio::spawn(async move {
            let resp = chat(&app, &token, json!({"message": format!("hello {i}")})).await;
            (noisy_one, resp)
        }));
    }
    let (mut noisy_ok, mut noisy_limited) = (0, 0);
    for task in tasks {
        let (noisy_one, resp) = task.await.unwrap();
        if noisy_one {
            match resp.status.as_u16() {
                200 => noisy_ok += 1,
                429 => {
                    noisy_limited += 1;
                    assert_problem(&resp, 429);
                    let retry: u64 = resp.headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!(retry >= 1, "Retry-After in whole seconds, at least 1");
                }
                other => panic!("unexpected {other}: {:?}", resp.body),
            }
        } else {
            assert_eq!(
                resp.status, 200,
                "the quiet tenant is never limited: {:?}",
                resp.body
            );
        }
    }
    assert!(noisy_limited >= 30, "{noisy_limited} of 40 limited");
    assert!(noisy_ok >= 5, "the burst goes through: {noisy_ok}");
    // Every authenticated request counts, not only chats.
    assert_problem(&app.get("/v1/agents", &noisy.member_token).await, 429);
    // Turning the limit off (0) lets the tenant through at once.
    app.patch(
        &format!("/v1/tenants/{}", noisy.tenant),
        OPERATOR,
        json!({"settings": {"rate_limit_per_second": 0}}),
    )
    .await;
    assert_eq!(app.get("/v1/agents", &noisy.member_token).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_agent_calls_are_capped_per_tenant() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    for a in [&t, &other] {
        app.post(
            "/v1/agents",
            &a.admin_token,
            json!({"name": "slow", "kind": "http", "is_fallback": true, "config": {"url": agents.url("/slow")}}),
        )
        .await;
    }
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"max_inflight_agent_calls": 1}}),
    )
    .await;
    let first = {
        let app = app.clone();
        let token = t.member_token.clone();
        tokio::spawn(async move { chat(&app, &token, json!({"message": "first"})).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = chat(&app, &t.member_token, json!({"message": "second"})).await;
    assert_problem(&second, 429);
    // Another tenant's calls are not affected.
    assert_eq!(
        chat(&app, &other.member_token, json!({"message": "mine"}))
            .await
            .status,
        200
    );
    assert_eq!(first.await.unwrap().status, 200);
    // Once the first is done, the slot is free again.
    assert_eq!(
        chat(&app, &t.member_token, json!({"message": "third"}))
            .await
            .status,
        200
    );
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && !line.starts_with('#'))
        .filter(|line| {
            let rest = &line[name.len()..];
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn setup_traffic(app: &TestApp, agents: &agent_server::AgentServer, t: &Actors) {
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "refund", "charged"], "examples": ["refund my invoice"], "intents": ["billing"]}),
    )
    .await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "broken", "kind": "http", "config": {"url": agents.url("/fail")}, "keywords": ["vpn", "laptop"], "examples": ["my vpn is broken"], "intents": ["technical"]}),
    )
    .await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true, "intents": ["general"]}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_analytics_match_the_traffic() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    setup_traffic(&app, &agents, &a).await;
    setup_traffic(&app, &agents, &b).await;
    // A: 3 billing turns, 2 failovers from broken to general, 1 vague (fallback).
    for _ in 0..3 {
        assert_eq!(
            chat(
                &app,
                &a.member_token,
                json!({"message": "refund my invoice, I was charged"})
            )
            .await
            .body["agent"]["name"],
            "billing"
        );
    }
    for _ in 0..2 {
        let resp = chat(
            &app,
            &a.member_token,
            json!({"message": "my vpn is broken on my laptop"}),
        )
        .await;
        assert_eq!(
            resp.body["routing"]["failover_from"]["name"], "broken",
            "{:?}",
            resp.body
        );
    }
    let vague = chat(
        &app,
        &a.member_token,
        json!({"message": "what is the weather on mars"}),
    )
    .await;
    assert_eq!(vague.body["routing"]["method"], "fallback");
    // B: one turn only.
    chat(
        &app,
        &b.member_token,
        json!({"message": "refund my invoice"}),
    )
    .await;

    let text = app.get("/metrics", OPERATOR).await;
    assert_eq!(text.status, 200);
    let text = String::from_utf8(text.raw).unwrap();
    let slug = a.slug.as_str();
    assert_eq!(
        metric(
            &text,
            "switchyard_routing_decisions_total",
            &[("tenant", slug)]
        ),
        6.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_routing_decisions_total",
            &[("tenant", slug), ("method", "fallback")]
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "switchyard_fallbacks_total", &[("tenant", slug)]),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_failovers_total",
            &[("tenant", slug), ("agent", "broken")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_agent_errors_total",
            &[("tenant", slug), ("agent", "broken"), ("kind", "failed")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_turns_total",
            &[("tenant", slug), ("agent", "billing")]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_turns_total",
            &[("tenant", slug), ("agent", "general")]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_turn_duration_seconds_count",
            &[("tenant", slug)]
        ),
        6.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_agent_duration_seconds_count",
            &[("tenant", slug), ("agent", "broken")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "switchyard_turns_total",
            &[("tenant", b.slug.as_str())]
        ),
        1.0
    );
    assert!(
        metric(
            &text,
            "switchyard_http_requests_total",
            &[("route", "/v1/chat"), ("status", "200")]
        ) >= 7.0
    );
    assert!(
        !text.contains("refund my invoice"),
        "metrics never carry message text"
    );
    // Only the operator sees them.
    assert_problem(&app.get("/metrics", &a.admin_token).await, 403);
    assert_problem(
        &app.call(axum::http::Method::GET, "/metrics", None, None)
            .await,
        401,
    );

    let figures = app.get("/v1/analytics/routing", &a.admin_token).await;
    assert_eq!(figures.status, 200, "{:?}", figures.body);
    let f = &figures.body;
    assert_eq!(f["turns"], 6);
    assert_eq!(f["conversations"], 6);
    let by_agent: Vec<(String, i64, i64)> = f["by_agent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["turns"].as_i64().unwrap(),
                a["errors"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(by_agent.contains(&("billing".into(), 3, 0)), "{by_agent:?}");
    assert!(by_agent.contains(&("general".into(), 3, 0)), "{by_agent:?}");
    assert!(by_agent.contains(&("broken".into(), 0, 2)), "{by_agent:?}");
    let by_intent: Vec<(Value, i64)> = f["by_intent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["intent"].clone(), i["turns"].as_i64().unwrap()))
        .collect();
    assert_eq!(by_intent.iter().map(|(_, n)| n).sum::<i64>(), 6);
    assert_eq!(by_intent[0], (json!("billing"), 3));
    assert!((f["fallback_rate"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-9);
    assert!((f["agent_error_rate"].as_f64().unwrap() - 2.0 / 8.0).abs() < 1e-9);
    assert!(f["mean_confidence"].as_f64().unwrap() > 0.0);
    let p = &f["latency_ms"];
    assert!(
        p["p50"].as_f64().unwrap() <= p["p95"].as_f64().unwrap()
            && p["p95"].as_f64().unwrap() <= p["p99"].as_f64().unwrap()
    );
    // B's figures are B's alone.
    let b_figures = app.get("/v1/analytics/routing", &b.admin_token).await;
    assert_eq!(b_figures.body["turns"], 1);
    // Periods.
    let empty = app
        .get(
            "/v1/analytics/routing?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z",
            &a.admin_token,
        )
        .await;
    assert_eq!(empty.body["turns"], 0);
    assert_eq!(empty.body["agent_error_rate"], Value::Null);
    assert_problem(
        &app.get(
            "/v1/analytics/routing?from=2020-01-02T00:00:00Z&to=2020-01-01T00:00:00Z",
            &a.admin_token,
        )
        .await,
        400,
    );
    assert_problem(
        &app.get("/v1/analytics/routing?from=yesterday", &a.admin_token)
            .await,
        400,
    );
    assert_problem(
        &app.get("/v1/analytics/routing?tenant=x", &a.admin_token)
            .await,
        400,
    );
    assert_problem(
        &app.get("/v1/analytics/routing", &a.member_token).await,
        403,
    );
}

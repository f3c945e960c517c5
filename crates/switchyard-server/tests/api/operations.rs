//! Operations: per-tenant rate limits and in-flight caps (one noisy tenant does not slow
//! the others), metrics and analytics that match the traffic actually made, retention, and
//! streams that nobody reads.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use switchyard_core::model::{NewTurn, TurnTarget};
use switchyard_core::{ConversationId, MessageId, Role};

use crate::agent_server::{self, sse_events};
use crate::common::{Actors, OPERATOR, TestApp, assert_problem, on_both_backends};

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
    // An agent that answers only when the test says so: calls stay in flight exactly as
    // long as the test needs, with no timing involved.
    let gated = agent_server::start_gated().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    for a in [&t, &other] {
        app.post(
            "/v1/agents",
            &a.admin_token,
            json!({"name": "gated", "kind": "http", "is_fallback": true, "config": {"url": gated.server.url("/gated")}}),
        )
        .await;
    }
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        json!({"settings": {"max_inflight_agent_calls": 1}}),
    )
    .await;
    let spawn_chat = |token: &str, message: &str| {
        let (app, token, message) = (app.clone(), token.to_string(), message.to_string());
        tokio::spawn(async move { chat(&app, &token, json!({"message": message})).await })
    };
    let first = spawn_chat(&t.member_token, "first");
    // The first call has reached the agent: it holds the tenant's only slot.
    agent_server::wait_for_requests(&gated.server, "/gated", 1).await;
    let second = chat(&app, &t.member_token, json!({"message": "second"})).await;
    assert_problem(&second, 429);
    assert_eq!(
        gated.server.received("/gated").len(),
        1,
        "the refused turn never called its agent"
    );
    // Another tenant's call is not affected: it reaches the agent too.
    let mine = spawn_chat(&other.member_token, "mine");
    agent_server::wait_for_requests(&gated.server, "/gated", 2).await;
    gated.open();
    assert_eq!(mine.await.unwrap().status, 200);
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
    // The routing index cache reports its size (a process-wide gauge, which other tests'
    // servers in this process set too: here only its presence is certain).
    assert!(
        metric(&text, "switchyard_routing_cache_tenants", &[]) >= 1.0,
        "{text}"
    );
    assert!(
        metric(&text, "switchyard_routing_cache_bytes", &[]) > 0.0,
        "{text}"
    );
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
    // Routing and storing time are the process's histograms, without a tenant label.
    for name in [
        "switchyard_routing_duration_seconds_count",
        "switchyard_store_duration_seconds_count",
    ] {
        assert!(metric(&text, name, &[]) >= 6.0, "{name}: {text}");
        assert!(
            text.lines()
                .filter(|l| l.starts_with(name))
                .all(|l| !l.contains("tenant=")),
            "{name}: {text}"
        );
    }
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
    // Per hour: the last three hours and a minute ahead cross three or four hour
    // boundaries (whole UTC hours, the first and last partial); the stretches follow each
    // other from the period's start to its end, together they hold every turn, and the
    // figures of the hour with the turns are theirs.
    let now = chrono::Utc::now();
    let period = format!(
        "from={}&to={}",
        (now - chrono::TimeDelta::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + chrono::TimeDelta::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let hourly = app
        .get(
            &format!("/v1/analytics/routing?{period}&bucket=hour"),
            &a.admin_token,
        )
        .await;
    assert_eq!(hourly.status, 200, "{:?}", hourly.body);
    let series = hourly.body["series"].as_array().unwrap();
    assert!((4..=5).contains(&series.len()), "{series:?}");
    assert_eq!(series[0]["from"], hourly.body["from"]);
    assert_eq!(series[series.len() - 1]["to"], hourly.body["to"]);
    assert!(series.windows(2).all(|w| w[0]["to"] == w[1]["from"]));
    assert!(
        series[1]["from"].as_str().unwrap().contains(":00:00"),
        "whole hours: {series:?}"
    );
    let turns: i64 = series.iter().map(|p| p["turns"].as_i64().unwrap()).sum();
    assert_eq!(turns, 6);
    let busy = series.iter().find(|p| p["turns"] == 6).unwrap();
    assert!((busy["fallback_rate"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-9);
    assert!(busy["latency_p95_ms"].as_f64().unwrap() > 0.0);
    assert!(
        series
            .iter()
            .filter(|p| p["turns"] == 0)
            .all(|p| p["latency_p95_ms"].is_null())
    );
    // Without `bucket`, no series; a bucket it does not know, or too many, is a 400.
    assert!(figures.body.get("series").is_none());
    assert_problem(
        &app.get("/v1/analytics/routing?bucket=week", &a.admin_token)
            .await,
        400,
    );
    assert_problem(
        &app.get(
            "/v1/analytics/routing?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z&bucket=hour",
            &a.admin_token,
        )
        .await,
        400,
    );
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

/// A turn written `days_ago` days ago, straight into the store (the API only writes turns
/// now); `to` is the conversation to continue, or `None` for a new one.
async fn old_turn(
    app: &TestApp,
    t: &Actors,
    to: Option<ConversationId>,
    days_ago: i64,
) -> ConversationId {
    let scope = app.operator.act_as(t.tenant, t.member, Role::Member);
    let message = format!("{days_ago} days ago");
    let target = match to {
        Some(id) => TurnTarget::Existing(id),
        None => TurnTarget::New {
            id: ConversationId::new(),
            title: Some(message.clone()),
            max_per_user: 1000,
            max_per_tenant: 100_000,
        },
    };
    let (conversation, _) = app
        .store
        .append_turn(
            &scope,
            NewTurn {
                id: MessageId::new(),
                target,
                agent_response: format!("echo: {message}"),
                user_message: message,
                intent_category: None,
                intent_confidence: None,
                selected_agent_id: None,
                routing: json!({"method": "fallback"}),
                routing_method: Some("fallback".into()),
                routing_confidence: Some(0.0),
                fallback_used: Some(true),
                latency_ms: Some(1.0),
                created_at: Utc::now() - TimeDelta::days(days_ago),
            },
        )
        .await
        .unwrap();
    conversation.id
}

/// What the tenant's user sees: each conversation's messages, by age in days.
async fn what_is_left(app: &TestApp, t: &Actors) -> Vec<Vec<String>> {
    let list = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let mut left = Vec::new();
    for c in list.body["items"].as_array().unwrap() {
        let detail = app
            .get(
                &format!("/v1/conversations/{}", c["id"].as_str().unwrap()),
                &t.member_token,
            )
            .await;
        let messages: Vec<String> = detail.body["messages"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["user_message"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(c["message_count"], messages.len(), "{c:?}");
        left.push(messages);
    }
    left.sort();
    left
}

/// Retention keeps each tenant's turns for its own `retention_days`, or, when it has none,
/// for the server's `message_retention_days` (`ORCHESTRATOR_MESSAGE_RETENTION_DAYS`), as the
/// background task and `switchyard retention run` do; running it again removes nothing.
async fn retention_uses_the_tenants_days_or_the_servers_default(app: TestApp) {
    let config = switchyard_server::Config {
        message_retention_days: 10,
        ..crate::common::test_config()
    };
    let default = app.tenant().await;
    let longer = app.tenant().await;
    let shorter = app.tenant().await;
    for (t, days) in [(&longer, 30), (&shorter, 5)] {
        let patched = app
            .patch(
                &format!("/v1/tenants/{}", t.tenant),
                OPERATOR,
                json!({"settings": {"retention_days": days}}),
            )
            .await;
        assert_eq!(patched.status, 200, "{:?}", patched.body);
    }
    // Each tenant: a conversation half expired, and one entirely expired (by its own days).
    for (t, ages, gone) in [
        (&default, [20, 7], 15),
        (&longer, [40, 20], 35),
        (&shorter, [7, 1], 6),
    ] {
        let c = old_turn(&app, t, None, ages[0]).await;
        old_turn(&app, t, Some(c), ages[1]).await;
        old_turn(&app, t, None, gone).await;
    }
    let run = |t: &Actors| {
        let (store, config, slug) = (app.store.clone(), config.clone(), t.slug.clone());
        let operator = app.operator.clone();
        async move {
            switchyard_server::retention::run_once(&store, &operator, &config, Some(&slug))
                .await
                .unwrap()
        }
    };
    for t in [&default, &longer, &shorter] {
        let report = run(t).await;
        assert_eq!(
            (report.tenants, report.turns, report.conversations),
            (1, 2, 1),
            "{}",
            t.slug
        );
    }
    // The default tenant keeps 10 days; the longer one keeps its 20-day-old turn (which the
    // default would delete); the shorter one loses its 7-day-old turn (which it would keep).
    assert_eq!(what_is_left(&app, &default).await, [["7 days ago"]]);
    assert_eq!(what_is_left(&app, &longer).await, [["20 days ago"]]);
    assert_eq!(what_is_left(&app, &shorter).await, [["1 days ago"]]);
    for t in [&default, &longer, &shorter] {
        let again = run(t).await;
        assert_eq!(
            (again.turns, again.conversations, again.records),
            (0, 0, 0),
            "re-running is a no-op"
        );
    }
    assert_eq!(what_is_left(&app, &default).await, [["7 days ago"]]);
}

on_both_backends!(retention_uses_the_tenants_days_or_the_servers_default);

/// Undoes HTTP/1.1 chunked transfer coding.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            std::str::from_utf8(&body[..line_end])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_nobody_reads_holds_nothing_up_and_its_turn_is_stored() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "echo", "kind": "echo", "is_fallback": true}),
    )
    .await;
    // The service on a real socket, with the listener `switchyard serve` uses.
    let addr = on_a_socket(
        &app,
        switchyard_server::serve::ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_connections: 100,
        },
    )
    .await;
    // A long answer, echoed word by word: its stream is far more than the socket buffers
    // hold while nobody reads it.
    let message = "a ".repeat(16_000);
    let body = json!({ "message": message }).to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            format!(
                "POST /v1/chat HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
                 content-type: application/json\r\naccept: text/event-stream\r\n\
                 connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                t.member_token,
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Not a byte read, and the turn is stored all the same.
    agent_server::eventually("the unread stream's turn is stored", || async {
        let list = app.get("/v1/conversations", &t.member_token).await;
        list.body["items"]
            .as_array()
            .is_some_and(|items| items.len() == 1 && items[0]["message_count"] == 1)
    })
    .await;
    // Read at last, the stream is whole: every piece, then done.
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let events = sse_events(&dechunk(&raw[head_end..]));
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    let pieces: String = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(pieces, done["response"].as_str().unwrap());
    assert!(pieces.len() > 32_000, "{}", pieces.len());
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
        stored.body["messages"]["items"][0]["agent_response"],
        done["response"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_and_a_client_that_does_not_read_is_let_go() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::sqlite().await;
    let addr = on_a_socket(
        &app,
        switchyard_server::serve::ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_millis(500),
            max_connections: 1,
        },
    )
    .await;
    let request = format!("GET /openapi.json HTTP/1.1\r\nhost: {addr}\r\n\r\n");

    // The one slot: a client that asks for large answers, one after another, and reads none.
    let mut hog = tokio::net::TcpStream::connect(addr).await.unwrap();
    hog.write_all(request.as_bytes()).await.unwrap();
    // A second client is not served while the first holds the slot...
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    second
        .write_all(
            format!("GET /healthz HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = [0u8; 12];
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut head)).await;
    assert!(
        early.is_err(),
        "answered while the only connection slot was taken"
    );
    // ... and the first fills its socket buffers without reading a byte: its writes wait,
    // time out, and the server lets the connection go.
    for _ in 0..200 {
        if hog.write_all(request.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), second.read_to_end(&mut answer))
        .await
        .expect("the second client is served once the first is let go")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Serves the app on a loopback socket with the listener `switchyard serve` uses.
async fn on_a_socket(
    app: &TestApp,
    limits: switchyard_server::serve::ConnectionLimits,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(switchyard_server::serve::serve(
        listener,
        app.router.clone(),
        limits,
        std::future::pending(),
        Duration::from_secs(1),
        std::future::ready(()),
    ));
    addr
}

//! Agent health (docs/routing.md): health states in the API and `/metrics`, routing that
//! names the agents it skipped (route, chat, SSE, the OpenAI door, stored turns), the
//! `failover` event, stored intents, the test call and active health checks — over real
//! HTTP agents (a closed port, one answering 500, one whose health can be switched).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use super::{chat, last_stored_turn, message_count, stream_chat};
use crate::agent_server::{self, AgentServer, eventually};
use crate::common::{Actors, OPERATOR, TestApp, assert_problem};

/// A port nothing listens on: bound, then let go.
async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/agent")
}

/// A tenant with `stocks` (an http agent at `stocks_url`), `weather` (echo) and `general`
/// (echo, the fallback). Returns the stocks agent's id.
async fn market_tenant(app: &TestApp, t: &Actors, stocks_config: Value) -> String {
    let stocks = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "stocks", "kind": "http", "config": stocks_config, "intents": ["stocks"],
                   "description": "Share prices, stock quotes and the stock market",
                   "keywords": ["stock", "stocks", "share", "shares", "price", "aapl", "market", "ticker", "quote", "nasdaq"],
                   "examples": ["price of AAPL stock", "how are my shares doing", "stock quote for MSFT", "is the market up today"]}),
        )
        .await;
    assert_eq!(stocks.status, 201, "{:?}", stocks.body);
    let weather = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "weather", "kind": "echo", "intents": ["weather"],
                   "description": "Forecasts, rain, sun and temperatures",
                   "keywords": ["weather", "rain", "forecast", "sunny", "temperature", "snow", "wind", "cold", "hot"],
                   "examples": ["what's the weather in Paris", "will it rain tomorrow", "forecast for the weekend", "how cold is it outside"]}),
        )
        .await;
    assert_eq!(weather.status, 201, "{:?}", weather.body);
    let general = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "general", "kind": "echo", "intents": ["general"], "is_fallback": true,
                   "description": "Anything else", "keywords": ["hello", "thanks"], "examples": ["hello there", "thanks a lot"]}),
        )
        .await;
    assert_eq!(general.status, 201, "{:?}", general.body);
    stocks.body["id"].as_str().unwrap().to_string()
}

async fn health(app: &TestApp, t: &Actors, id: &str) -> Value {
    let agent = app.get(&format!("/v1/agents/{id}"), &t.admin_token).await;
    assert_eq!(agent.status, 200, "{:?}", agent.body);
    agent.body["health"].clone()
}

/// The value of the circuit gauge for the tenant's agent in `/metrics`.
async fn gauge(app: &TestApp, t: &Actors, agent: &str) -> Option<f64> {
    let metrics = app.get("/metrics", OPERATOR).await;
    let text = String::from_utf8(metrics.raw).unwrap();
    let wanted = format!("tenant=\"{}\"", t.slug);
    text.lines()
        .filter(|l| l.starts_with("switchyard_agent_circuit_state{"))
        .filter(|l| l.contains(&wanted) && l.contains(&format!("agent=\"{agent}\"")))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn skipped_names(routing: &Value) -> Vec<String> {
    routing["skipped"]
        .as_array()
        .unwrap_or_else(|| panic!("no skipped list in {routing}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn health_goes_closed_open_half_open_closed_in_the_api_and_the_metrics() {
    let agents = agent_server::start().await;
    let mut config = crate::common::test_config();
    config.circuit_failure_threshold = 2;
    config.circuit_open_seconds = 1;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    agents
        .recorder
        .flaky_failures_left
        .store(2, Ordering::SeqCst);
    let stocks = market_tenant(&app, &t, json!({"url": agents.url("/flaky")})).await;

    let fresh = health(&app, &t, &stocks).await;
    assert_eq!(fresh["state"], "closed");
    assert_eq!(fresh["consecutive_failures"], 0);
    assert!(fresh["last_error"].is_null() && fresh["last_success_at"].is_null());

    for n in 1..=2 {
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": "price of AAPL stock"}),
        )
        .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
        assert_eq!(resp.body["agent"]["name"], "general", "turn {n} fails over");
    }
    let open = health(&app, &t, &stocks).await;
    assert_eq!(open["state"], "open", "{open}");
    assert_eq!(open["consecutive_failures"], 2);
    assert_eq!(open["last_error"], "the agent answered HTTP 503");
    assert!(open["last_error_at"].is_string());
    // A member sees the state, not the error's text.
    for path in [format!("/v1/agents/{stocks}"), "/v1/agents".to_string()] {
        let seen = app.get(&path, &t.member_token).await;
        assert_eq!(seen.status, 200, "{:?}", seen.body);
        let agent = seen.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|a| a["id"] == stocks.as_str()))
            .unwrap_or(&seen.body);
        assert_eq!(agent["health"]["state"], "open", "{path}");
        assert!(agent["health"]["last_error"].is_null(), "{path}: {agent}");
    }
    assert_eq!(gauge(&app, &t, "stocks").await, Some(2.0));

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(health(&app, &t, &stocks).await["state"], "half_open");
    assert_eq!(gauge(&app, &t, "stocks").await, Some(1.0));

    // The trial call succeeds (the agent has recovered): closed again.
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "price of AAPL stock"}),
    )
    .await;
    assert_eq!(resp.body["agent"]["name"], "stocks", "{:?}", resp.body);
    let closed = health(&app, &t, &stocks).await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["consecutive_failures"], 0);
    assert!(closed["last_success_at"].is_string());
    assert_eq!(gauge(&app, &t, "stocks").await, Some(0.0));
    // The list shows the same.
    let list = app.get("/v1/agents", &t.member_token).await;
    let listed = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == stocks.as_str())
        .unwrap();
    assert_eq!(listed["health"]["state"], "closed");
}

/// An agent behind a closed port, its circuit open after one failure.
async fn down_stocks(app: &TestApp, t: &Actors) -> String {
    let stocks = market_tenant(app, t, json!({"url": closed_port().await})).await;
    let first = chat(
        app,
        &t.member_token,
        json!({"message": "price of AAPL stock"}),
    )
    .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["routing"]["failover_from"]["name"], "stocks");
    assert_eq!(health(app, t, &stocks).await["state"], "open");
    stocks
}

fn one_failure_opens() -> switchyard_server::Config {
    let mut config = crate::common::test_config();
    config.circuit_failure_threshold = 1;
    config.circuit_open_seconds = 60;
    config
}

#[tokio::test]
async fn routing_names_the_agents_it_skipped_everywhere() {
    let app = TestApp::with_config(
        switchyard_store::testing::sqlite_store().await,
        one_failure_opens(),
    )
    .await;
    let t = app.tenant().await;
    let stocks = down_stocks(&app, &t).await;

    // `/v1/route`: the best match is down; the fallback answers, and the decision says
    // which agent was skipped and why, with the analysis' own confidence.
    let route = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "price of AAPL stock"}),
        )
        .await;
    assert_eq!(route.status, 200, "{:?}", route.body);
    let routing = &route.body["routing"];
    assert_eq!(route.body["agent"]["name"], "general");
    assert_eq!(routing["method"], "fallback");
    assert_eq!(skipped_names(routing), ["stocks"]);
    assert_eq!(routing["skipped"][0]["agent_id"], stocks.as_str());
    let why = routing["skipped"][0]["reason"].as_str().unwrap();
    // The reason reaches members: no error text, which stays in the admins' health.
    assert_eq!(why, "circuit open after 1 failure in a row");
    assert_eq!(
        health(&app, &t, &stocks).await["last_error"],
        "cannot connect to the agent"
    );
    assert_eq!(routing["failover_from"]["name"], "stocks");
    assert!(
        routing["reason"]
            .as_str()
            .unwrap()
            .contains("stocks skipped"),
        "{routing}"
    );
    assert!(
        routing["confidence"].as_f64().unwrap() >= 0.5,
        "the analysis' confidence, not the fallback's: {routing}"
    );
    assert_eq!(
        route.body["intent"]["category"], "general",
        "the intent of the agent that answers"
    );
    assert_eq!(routing["guessed_intent"], "stocks");

    // A follow-up in a weather conversation does not stay with weather because stocks is
    // down.
    let weather = chat(
        &app,
        &t.member_token,
        json!({"message": "will it rain tomorrow in Paris? what's the forecast"}),
    )
    .await;
    assert_eq!(
        weather.body["agent"]["name"], "weather",
        "{:?}",
        weather.body
    );
    let conversation = weather.body["conversation_id"].clone();
    let follow = chat(
        &app,
        &t.member_token,
        json!({"message": "price of AAPL stock", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(follow.status, 200, "{:?}", follow.body);
    assert_eq!(
        follow.body["agent"]["name"], "general",
        "{:?}",
        follow.body["routing"]
    );
    assert_ne!(follow.body["routing"]["method"], "sticky");
    assert_eq!(skipped_names(&follow.body["routing"]), ["stocks"]);

    // The stored turn keeps the same record.
    let last = last_stored_turn(&app, &t.member_token, &follow.body).await;
    assert_eq!(skipped_names(&last["routing"]), ["stocks"]);
    assert_eq!(last["intent_category"], "general");

    // Streamed: the routing event names it before anything else.
    let events = stream_chat(
        &app,
        &t.member_token,
        json!({"message": "price of AAPL stock"}),
    )
    .await;
    assert_eq!(events[0].0, "routing");
    assert_eq!(skipped_names(&events[0].1["routing"]), ["stocks"]);
    assert_eq!(events.last().unwrap().0, "done");

    // The OpenAI door: a header lists them.
    let completion = app
        .post(
            "/v1/chat/completions",
            &t.member_token,
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "price of AAPL stock"}]}),
        )
        .await;
    assert_eq!(completion.status, 200, "{:?}", completion.body);
    let header = completion.headers["x-switchyard-skipped"].to_str().unwrap();
    assert!(
        header.starts_with("stocks; circuit open after 1 failure in a row"),
        "{header}"
    );

    // Nothing down: an empty list, and no header.
    let clear = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "will it rain tomorrow? forecast please"}),
        )
        .await;
    assert_eq!(clear.body["routing"]["skipped"], json!([]));
    let plain = app
        .post(
            "/v1/chat/completions",
            &t.member_token,
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "will it rain tomorrow? forecast please"}]}),
        )
        .await;
    assert!(plain.headers.get("x-switchyard-skipped").is_none());
}

#[tokio::test]
async fn a_failover_event_comes_before_the_next_agents_deltas() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    market_tenant(&app, &t, json!({"url": agents.url("/fail")})).await;
    let events = stream_chat(
        &app,
        &t.member_token,
        json!({"message": "price of AAPL stock"}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names[0], "routing", "{names:?}");
    assert_eq!(events[0].1["agent"]["name"], "stocks");
    assert_eq!(names[1], "failover", "{names:?}");
    let failover = &events[1].1;
    assert_eq!(failover["from"]["name"], "stocks");
    assert_eq!(
        failover["from"]["error"],
        "the agent could not be reached or answered an error"
    );
    assert!(failover["from"]["agent_id"].is_string());
    assert_eq!(failover["to"]["name"], "general");
    assert!(failover["to"]["id"].is_string());
    assert!(names[2..].contains(&"delta"), "{names:?}");
    assert!(
        names[2..].iter().all(|n| *n != "failover"),
        "one failover: {names:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["agent"]["name"], "general");
    assert_eq!(done["routing"]["failover_from"]["name"], "stocks");
}

#[tokio::test]
async fn stored_intents_are_those_of_the_agents_that_answered() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    super::service_agents(&app, &t).await;
    let first = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice on my card, refund the invoice"}),
    )
    .await;
    assert_eq!(first.body["agent"]["name"], "billing");
    // A sticky follow-up whose words point elsewhere: stored as billing's, the guess kept.
    let follow = chat(
        &app,
        &t.member_token,
        json!({"message": "yes, please do that", "conversation_id": first.body["conversation_id"]}),
    )
    .await;
    assert_eq!(
        follow.body["routing"]["method"], "sticky",
        "{:?}",
        follow.body["routing"]
    );
    assert_eq!(follow.body["intent"]["category"], "billing");
    // Fallback: the fallback's intent, not the unmatched guess.
    let vague = chat(&app, &t.member_token, json!({"message": "hmm"})).await;
    assert_eq!(
        vague.body["routing"]["method"], "fallback",
        "{:?}",
        vague.body["routing"]
    );
    assert_eq!(vague.body["intent"]["category"], "general");
    // Pinned to shipping: shipping's intent.
    let agents = app.get("/v1/agents", &t.member_token).await;
    let shipping = agents.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "shipping")
        .unwrap()["id"]
        .clone();
    let pinned = chat(
        &app,
        &t.member_token,
        json!({"message": "my password does not work", "agent_id": shipping}),
    )
    .await;
    assert_eq!(pinned.body["routing"]["method"], "pinned");
    assert_eq!(pinned.body["intent"]["category"], "shipping");
    assert_eq!(pinned.body["routing"]["guessed_intent"], "technical");

    for (resp, intent) in [
        (&follow, "billing"),
        (&vague, "general"),
        (&pinned, "shipping"),
    ] {
        let last = last_stored_turn(&app, &t.member_token, &resp.body).await;
        assert_eq!(last["intent_category"], intent, "{last}");
    }
}

#[tokio::test]
async fn the_test_call_is_signed_like_a_turn_and_stores_nothing() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let secret = "a-signing-secret-0123456789";
    let ok = super::http_agent(&app, &t, "ok", agents.url("/ok"), json!({"secret": secret})).await;
    let failing = super::http_agent(&app, &t, "failing", agents.url("/fail"), json!({})).await;
    let dead = super::http_agent(&app, &t, "dead", closed_port().await, json!({})).await;
    let hanging = super::http_agent(
        &app,
        &t,
        "hanging",
        agents.url("/hang"),
        json!({"timeout_ms": 300}),
    )
    .await;
    let before = message_count(&app, &t).await;

    let tested = app
        .post(&format!("/v1/agents/{ok}/test"), &t.admin_token, json!({}))
        .await;
    assert_eq!(tested.status, 200, "{:?}", tested.body);
    assert_eq!(tested.body["ok"], true);
    assert_eq!(tested.body["status"], 200);
    assert!(tested.body["error"].is_null());
    assert!(tested.body["latency_ms"].as_f64().unwrap() > 0.0);
    let received = agents.received("/ok");
    assert_eq!(received.len(), 1);
    let call = &received[0];
    let timestamp: i64 = call.headers["x-switchyard-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        call.headers["x-switchyard-signature"].to_str().unwrap(),
        switchyard_agents::sign(secret, timestamp, &call.body),
        "signed as a turn is"
    );
    assert_eq!(call.json()["metadata"]["switchyard_test"], true);
    assert_eq!(message_count(&app, &t).await, before, "nothing stored");
    assert!(health(&app, &t, &ok).await["last_success_at"].is_string());

    let failed = app
        .post(
            &format!("/v1/agents/{failing}/test"),
            &t.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(failed.status, 200);
    assert_eq!(failed.body["ok"], false);
    assert_eq!(failed.body["status"], 500);
    assert_eq!(failed.body["error"], "the agent answered HTTP 500");
    assert_eq!(health(&app, &t, &failing).await["consecutive_failures"], 1);

    let unreachable = app
        .post(
            &format!("/v1/agents/{dead}/test"),
            &t.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(unreachable.body["ok"], false);
    assert!(unreachable.body["status"].is_null());
    assert_eq!(unreachable.body["error"], "cannot connect to the agent");

    let slow = app
        .post(
            &format!("/v1/agents/{hanging}/test"),
            &t.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(slow.body["ok"], false);
    assert_eq!(slow.body["error"], "timed out after 300 ms");
    assert!(slow.body["latency_ms"].as_f64().unwrap() >= 300.0);

    // Members may not; a disabled agent, another tenant's and a made-up one are not found.
    assert_problem(
        &app.post(&format!("/v1/agents/{ok}/test"), &t.member_token, json!({}))
            .await,
        403,
    );
    let disabled = app
        .patch(
            &format!("/v1/agents/{ok}"),
            &t.admin_token,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200);
    let refused = app
        .post(&format!("/v1/agents/{ok}/test"), &t.admin_token, json!({}))
        .await;
    assert_problem(&refused, 404);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("disabled")
    );
    let other = app.tenant().await;
    assert_problem(
        &app.post(
            &format!("/v1/agents/{failing}/test"),
            &other.admin_token,
            json!({}),
        )
        .await,
        404,
    );
    assert_problem(
        &app.post(
            "/v1/agents/0190a0a0-0000-7000-8000-000000000000/test",
            &t.admin_token,
            json!({}),
        )
        .await,
        404,
    );
    assert_eq!(
        agents.received("/ok").len(),
        1,
        "no call for a refused test"
    );
    assert_eq!(message_count(&app, &t).await, before);
}

async fn checked_agent(app: &TestApp, t: &Actors, agents: &AgentServer) -> String {
    market_tenant(
        app,
        t,
        json!({"url": agents.url("/ok"), "health_check": {"path": "/health", "interval_s": 1}}),
    )
    .await
}

#[tokio::test]
async fn active_health_checks_open_and_close_the_circuit_without_a_user() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let stocks = checked_agent(&app, &t, &agents).await;
    // The tenant's routing is read once (as by its first request); checks start then.
    let route = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "price of AAPL stock"}),
        )
        .await;
    assert_eq!(route.body["agent"]["name"], "stocks", "{:?}", route.body);
    agent_server::wait_for_requests(&agents, "/health", 1).await;
    assert_eq!(
        agents.received("/ok").len(),
        0,
        "a check calls the health path, not the agent"
    );

    agents.recorder.unhealthy.store(true, Ordering::SeqCst);
    eventually("the check opens the circuit", || async {
        health(&app, &t, &stocks).await["state"] == "open"
    })
    .await;
    let down = health(&app, &t, &stocks).await;
    assert_eq!(
        down["last_error"],
        "health check: the agent answered HTTP 503"
    );
    let route = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "price of AAPL stock"}),
        )
        .await;
    assert_eq!(route.body["agent"]["name"], "general");
    assert_eq!(skipped_names(&route.body["routing"]), ["stocks"]);
    assert_eq!(
        agents.received("/ok").len(),
        0,
        "no user met the dead agent"
    );

    agents.recorder.unhealthy.store(false, Ordering::SeqCst);
    eventually("the check closes the circuit", || async {
        health(&app, &t, &stocks).await["state"] == "closed"
    })
    .await;
    let route = app
        .post(
            "/v1/route",
            &t.member_token,
            json!({"message": "price of AAPL stock"}),
        )
        .await;
    assert_eq!(route.body["agent"]["name"], "stocks");
}

#[tokio::test]
async fn bad_health_checks_are_refused_and_change_nothing() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let stocks = checked_agent(&app, &t, &agents).await;
    let before = app
        .get(&format!("/v1/agents/{stocks}"), &t.admin_token)
        .await
        .body;
    for (check, says) in [
        (json!({"path": "health", "interval_s": 5}), "absolute path"),
        (
            json!({"path": "//elsewhere.example/health", "interval_s": 5}),
            "absolute path",
        ),
        (
            json!({"path": "/health", "interval_s": 0}),
            "between 1 and 86400",
        ),
        (
            json!({"path": "/health", "interval_s": 86_401}),
            "between 1 and 86400",
        ),
        (json!({"path": "/health", "interval_s": 0.5}), "interval_s"),
        (json!({"path": "/health"}), "interval_s"),
    ] {
        let patch = app
            .patch(
                &format!("/v1/agents/{stocks}"),
                &t.admin_token,
                json!({"config": {"url": agents.url("/ok"), "health_check": check}}),
            )
            .await;
        assert_problem(&patch, 422);
        let detail = patch.body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{check}: {detail}");
        let created = app
            .post(
                "/v1/agents",
                &t.admin_token,
                json!({"name": "another", "kind": "http",
                       "config": {"url": agents.url("/ok"), "health_check": check}}),
            )
            .await;
        assert_problem(&created, 422);
    }
    let echo = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "echoed", "kind": "echo", "config": {"health_check": {"path": "/h", "interval_s": 5}}}),
        )
        .await;
    assert_problem(&echo, 422);
    let after = app
        .get(&format!("/v1/agents/{stocks}"), &t.admin_token)
        .await
        .body;
    assert_eq!(before["config"], after["config"]);
    assert_eq!(before["updated_at"], after["updated_at"]);
    let list = app.get("/v1/agents", &t.admin_token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_tenant_model_without_its_own_key_uses_the_server_key_only_where_granted() {
    let models = agent_server::start_models().await;
    let mut config = crate::common::test_config();
    // A variable every environment has, so no test needs to set one.
    config.llm_api_key_env = Some("PATH".into());
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    let billing = super::service_agents(&app, &t).await["billing"].clone();
    let mode = format!("pick-{}", billing.as_str().unwrap());
    let settings = |grant: Value| {
        json!({"settings": {"analyzer": "llm", "cascade_band": [0.0, 1.0], "agent_key_envs": grant,
                            "llm": {"base_url": format!("http://{}/{mode}/v1", models.addr), "model": "router"}}})
    };
    let path = format!("/{mode}/chat");
    for (grant, message) in [
        (json!([]), "first question"),
        (json!(["PATH"]), "second question"),
    ] {
        let set = app
            .patch(
                &format!("/v1/tenants/{}", t.tenant),
                OPERATOR,
                settings(grant.clone()),
            )
            .await;
        assert_eq!(set.status, 200, "{:?}", set.body);
        let resp = app
            .post("/v1/route", &t.member_token, json!({"message": message}))
            .await;
        assert_eq!(resp.status, 200, "{:?}", resp.body);
    }
    let calls = models.received(&path);
    assert_eq!(calls.len(), 2, "one model call per question");
    assert!(
        calls[0].headers.get("authorization").is_none(),
        "not granted: the server's key is not sent to the tenant's model"
    );
    assert_eq!(
        calls[1].headers["authorization"].to_str().unwrap(),
        format!("Bearer {}", std::env::var("PATH").unwrap()),
        "granted: the server-wide key setting is used"
    );
}

//! The routing lab: `POST /v1/routing/evaluate` measures routing on labelled messages, over
//! the live agents or a draft of changes; `POST /v1/routing/replay` re-routes stored turns
//! over a draft — both as chat routes, nothing stored, each tenant its own turns only.

use serde_json::{Value, json};

use crate::chat::{chat, service_agents};
use crate::common::{Actors, TestApp, assert_problem, on_both_backends};

/// Messages about returns: no agent of [`service_agents`] serves them.
const RETURNS: [&str; 4] = [
    "I would like to return these shoes",
    "how can I send back the jacket I bought",
    "can I exchange this shirt for a bigger size",
    "returning an item that does not fit",
];

/// Messages of the agents [`service_agents`] has, with their agent.
const OTHERS: [(&str, &str); 6] = [
    ("I was charged twice on my card", "billing"),
    ("where is my invoice for April", "billing"),
    ("my package is late again", "shipping"),
    ("can I get a tracking number for my order", "shipping"),
    ("the app crashes when I open it", "tech_support"),
    ("what will the weather be like on saturday", "fallback"),
];

fn returns_agent() -> Value {
    json!({"name": "returns", "description": "Returns and exchanges of items bought", "kind": "echo",
           "intents": ["returns"], "priority": 10,
           "keywords": ["return", "returns", "returning", "exchange", "send back"],
           "examples": ["I want to return an item", "How do I send something back?",
                        "Can I exchange it for another size?", "returning shoes that do not fit"]})
}

fn labeled(rows: &[(&str, &str)]) -> Value {
    Value::Array(
        rows.iter()
            .map(|(m, a)| json!({"message": m, "agent": a}))
            .collect(),
    )
}

async fn evaluate(app: &TestApp, t: &Actors, body: Value) -> Value {
    let resp = app.post("/v1/routing/evaluate", &t.admin_token, body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    resp.body
}

async fn replay(app: &TestApp, t: &Actors, body: Value) -> Value {
    let resp = app.post("/v1/routing/replay", &t.admin_token, body).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    resp.body
}

fn score<'a>(evaluation: &'a Value, agent: &str) -> &'a Value {
    evaluation["by_agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == agent)
        .unwrap_or_else(|| panic!("no {agent} in {evaluation}"))
}

async fn evaluate_measures_the_live_agents_and_a_draft(app: TestApp) {
    let t = app.tenant().await;
    let ids = service_agents(&app, &t).await;

    // The live agents: every figure is there and adds up.
    let live = evaluate(&app, &t, json!({"examples": labeled(&OTHERS)})).await;
    assert_eq!(live["total"], 6);
    let correct = live["correct"].as_u64().unwrap();
    assert!(correct >= 5, "{live}");
    assert!((live["accuracy"].as_f64().unwrap() - correct as f64 / 6.0).abs() < 1e-9);
    assert_eq!(score(&live, "billing")["support"], 2);
    assert_eq!(score(&live, "billing")["agent_id"], ids["billing"]);
    // `fallback` stands for the fallback agent, shown by its name.
    assert_eq!(score(&live, "general")["support"], 1);
    let cells: u64 = live["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(cells, 6);
    let bins = live["calibration"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    let decided: u64 = bins.iter().map(|b| b["decisions"].as_u64().unwrap()).sum();
    assert_eq!(decided, 6);
    assert_eq!(
        live["misrouted"].as_array().unwrap().len() as u64,
        6 - correct
    );

    // Returns messages, expected at shipping: the live shipping agent misses them; a draft
    // that gives shipping the returns examples takes them over (its recall moves).
    let mut rows: Vec<(&str, &str)> = OTHERS.to_vec();
    rows.extend(RETURNS.iter().map(|m| (*m, "shipping")));
    let before = evaluate(&app, &t, json!({"examples": labeled(&rows)})).await;
    let returns = returns_agent();
    let mut examples = vec![
        json!("My package is late"),
        json!("Can I get a tracking number for my order?"),
    ];
    examples.extend(returns["examples"].as_array().unwrap().iter().cloned());
    let mut keywords = vec![json!("delivery"), json!("package"), json!("tracking")];
    keywords.extend(returns["keywords"].as_array().unwrap().iter().cloned());
    let draft =
        json!({"update": [{"id": ids["shipping"], "examples": examples, "keywords": keywords}]});
    let after = evaluate(
        &app,
        &t,
        json!({"examples": labeled(&rows), "agents": draft}),
    )
    .await;
    let recall = |e: &Value| score(e, "shipping")["recall"].as_f64().unwrap();
    assert!(recall(&before) <= 0.5, "{before}");
    assert!(recall(&after) >= 0.8, "{after}");
    assert!(after["accuracy"].as_f64() > before["accuracy"].as_f64());
    // The misrouted list names where each went, the most confident first.
    let misrouted = before["misrouted"].as_array().unwrap();
    assert!(misrouted.iter().any(|m| m["expected"] == "shipping"
        && RETURNS.contains(&m["message"].as_str().unwrap())
        && m["reason"].is_string()));
    let confidences: Vec<f64> = misrouted
        .iter()
        .map(|m| m["confidence"].as_f64().unwrap())
        .collect();
    assert!(
        confidences.windows(2).all(|w| w[0] >= w[1]),
        "{confidences:?}"
    );

    // An agent added in a draft can be expected, by name; live it is unknown.
    let mut with_returns: Vec<(&str, &str)> = OTHERS.to_vec();
    with_returns.extend(RETURNS.iter().map(|m| (*m, "returns")));
    let drafted = evaluate(
        &app,
        &t,
        json!({"examples": labeled(&with_returns), "agents": {"add": [returns]}}),
    )
    .await;
    assert_eq!(score(&drafted, "returns")["support"], 4);
    assert!(
        score(&drafted, "returns")["recall"].as_f64().unwrap() >= 0.75,
        "{drafted}"
    );
    let unknown = app
        .post(
            "/v1/routing/evaluate",
            &t.admin_token,
            json!({"examples": labeled(&with_returns)}),
        )
        .await;
    assert_problem(&unknown, 422);
    assert!(unknown.body["detail"].as_str().unwrap().contains("returns"));

    // Requests at once take their turns (the lab runs one at a time): both are answered.
    let body = json!({"examples": labeled(&OTHERS)});
    let (one, two) = tokio::join!(
        app.post("/v1/routing/evaluate", &t.admin_token, body.clone()),
        app.post("/v1/routing/evaluate", &t.admin_token, body),
    );
    assert_eq!((one.status.as_u16(), two.status.as_u16()), (200, 200));
    assert_eq!(one.body["correct"], two.body["correct"]);

    // The same messages as CSV text give the same figures.
    let mut csv = String::from("message,agent\n");
    for (m, a) in &OTHERS {
        csv.push_str(&format!("\"{m}\",{a}\n"));
    }
    let from_csv = evaluate(&app, &t, json!({"csv": csv})).await;
    assert_eq!(from_csv["correct"], live["correct"]);
    assert_eq!(from_csv["total"], 6);

    // Nothing was stored: the draft's agent and changes are not there.
    let agents = app.get("/v1/agents", &t.admin_token).await;
    let names: Vec<&str> = agents.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 4);
    assert!(!names.contains(&"returns"));
    let shipping = app
        .get(
            &format!("/v1/agents/{}", ids["shipping"].as_str().unwrap()),
            &t.admin_token,
        )
        .await;
    assert_eq!(shipping.body["examples"].as_array().unwrap().len(), 2);
}

async fn replay_tells_what_a_change_would_move(app: TestApp) {
    let t = app.tenant().await;
    let ids = service_agents(&app, &t).await;
    // Ten turns, each its own conversation, and one pinned to billing.
    let mut turns: Vec<(String, String)> = Vec::new();
    for message in RETURNS.iter().chain(OTHERS.iter().map(|(m, _)| m)) {
        let answer = chat(&app, &t.member_token, json!({"message": message})).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        turns.push((
            (*message).to_owned(),
            answer.body["agent"]["id"].as_str().unwrap().to_owned(),
        ));
    }
    let pinned = chat(
        &app,
        &t.member_token,
        json!({"message": RETURNS[0], "agent_id": ids["billing"]}),
    )
    .await;
    assert_eq!(pinned.status, 200, "{:?}", pinned.body);
    let pinned_id = pinned.body["message_id"].as_str().unwrap().to_owned();

    // The store reads the turns page by page, newest first, each once.
    let scope = app.operator.admin_of(t.tenant);
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = app.store.recent_decisions(&scope, before, 4).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some((last.created_at, last.id));
        pages.push(page.len());
        let times: Vec<_> = page.iter().map(|d| (d.created_at, d.id)).collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]), "newest first");
    }
    assert_eq!(pages, vec![4, 4, 3]);

    // The live agents decide today as they decided then.
    let same = replay(&app, &t, json!({})).await;
    assert_eq!(same["turns"], 11);
    assert_eq!(same["changed"], 0, "{same}");
    assert_eq!(replay(&app, &t, json!({"last": 3})).await["turns"], 3);

    let draft = json!({"add": [returns_agent()]});
    let proposed = replay(&app, &t, json!({"agents": draft})).await;
    assert_eq!(proposed["turns"], 11);
    let changed = proposed["changed"].as_u64().unwrap();
    assert!(changed >= 3, "{proposed}");
    let to_returns: u64 = proposed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"]["name"] == "returns")
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert!(to_returns >= 3, "{proposed}");
    let samples = proposed["samples"].as_array().unwrap();
    assert_eq!(samples.len() as u64, changed);
    // The pinned turn stays pinned.
    assert!(
        samples
            .iter()
            .all(|s| s["message_id"] != pinned_id.as_str())
    );

    // Made for real, the change moves exactly the turns replay said: routed afresh, as a
    // new conversation routes them.
    let created = app
        .post("/v1/agents", &t.admin_token, returns_agent())
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let mut moved = 0;
    for (message, was) in &turns {
        let now = app
            .post("/v1/route", &t.member_token, json!({"message": message}))
            .await;
        assert_eq!(now.status, 200, "{:?}", now.body);
        moved += u64::from(now.body["agent"]["id"] != was.as_str());
    }
    assert_eq!(moved, changed);
    assert_eq!(replay(&app, &t, json!({})).await["changed"], changed);

    // Removing the pinned agent changes its pinned turn (to no agent), and turns of an
    // agent deleted since count as changed, named by id.
    let removed = replay(&app, &t, json!({"agents": {"remove": [ids["billing"]]}})).await;
    assert!(
        removed["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| { s["message_id"] == pinned_id.as_str() && s["to"]["agent_id"].is_null() })
    );
    let deleted = app
        .delete(
            &format!("/v1/agents/{}", ids["tech_support"].as_str().unwrap()),
            &t.admin_token,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let after_delete = replay(&app, &t, json!({})).await;
    assert!(
        after_delete["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["from"]["agent_id"] == ids["tech_support"] && c["from"]["name"].is_null()),
        "{after_delete}"
    );
}

async fn each_tenant_replays_its_own_turns_only(app: TestApp) {
    let a = app.tenant().await;
    let b = app.tenant().await;
    let a_ids = service_agents(&app, &a).await;
    service_agents(&app, &b).await;
    for (message, _) in OTHERS {
        let answer = chat(&app, &a.member_token, json!({"message": message})).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    assert_eq!(replay(&app, &a, json!({})).await["turns"], 6);
    let theirs = replay(&app, &b, json!({"agents": {"add": [returns_agent()]}})).await;
    assert_eq!(theirs["turns"], 0);
    assert_eq!(theirs["changed"], 0);
    assert_eq!(theirs["samples"], json!([]));
    // Another tenant's agent is unknown: as a label, in a draft.
    let label = app
        .post(
            "/v1/routing/evaluate",
            &b.admin_token,
            json!({"examples": [{"message": "I was charged twice", "agent": a_ids["billing"]}]}),
        )
        .await;
    assert_problem(&label, 422);
    let draft = app
        .post(
            "/v1/routing/replay",
            &b.admin_token,
            json!({"agents": {"update": [{"id": a_ids["billing"], "enabled": false}]}}),
        )
        .await;
    assert_problem(&draft, 422);
}

async fn the_lab_is_for_admins_and_refuses_bad_input_clearly(app: TestApp) {
    let t = app.tenant().await;
    let ids = service_agents(&app, &t).await;
    let body = json!({"examples": labeled(&OTHERS)});
    for path in ["/v1/routing/evaluate", "/v1/routing/replay"] {
        assert_problem(&app.post(path, &t.member_token, body.clone()).await, 403);
    }
    let refused = |body: Value, path: &'static str| {
        let app = app.clone();
        let token = t.admin_token.clone();
        async move {
            let resp = app.post(path, &token, body).await;
            assert_problem(&resp, 422);
            resp.body["detail"].as_str().unwrap().to_owned()
        }
    };
    let evaluate = "/v1/routing/evaluate";
    // A malformed CSV row is named by its line.
    let detail = refused(
        json!({"csv": "message,agent\n\"I was charged twice\",billing\njust a message\n"}),
        evaluate,
    )
    .await;
    assert!(detail.contains("line 3"), "{detail}");
    assert!(
        refused(json!({"examples": []}), evaluate)
            .await
            .contains("no labelled")
    );
    assert!(
        refused(json!({"csv": "message,agent\n"}), evaluate)
            .await
            .contains("no labelled")
    );
    let many: Vec<Value> = (0..5001)
        .map(|i| json!({"message": format!("message {i}"), "agent": "billing"}))
        .collect();
    assert!(
        refused(json!({"examples": many}), evaluate)
            .await
            .contains("5000")
    );
    assert!(
        refused(
            json!({"examples": [{"message": "hi", "agent": "nobody"}]}),
            evaluate
        )
        .await
        .contains("nobody")
    );
    assert!(
        refused(
            json!({"examples": [{"message": "  ", "agent": "billing"}]}),
            evaluate
        )
        .await
        .contains("examples[0]")
    );
    refused(
        json!({"examples": labeled(&OTHERS), "csv": "a,b"}),
        evaluate,
    )
    .await;
    refused(json!({}), evaluate).await;
    // A draft is checked as the agent routes check agents.
    let unknown = refused(
        json!({"examples": labeled(&OTHERS), "agents": {"remove": [uuid::Uuid::now_v7()]}}),
        evaluate,
    )
    .await;
    assert!(unknown.contains("agents.remove[0]"), "{unknown}");
    let twice = refused(
        json!({"examples": labeled(&OTHERS), "agents": {"add": [{"name": "billing", "kind": "echo"}]}}),
        evaluate,
    )
    .await;
    assert!(twice.contains("billing"), "{twice}");
    let bad_field = refused(
        json!({"examples": labeled(&OTHERS), "agents": {"update": [{"id": ids["billing"], "priority": 5000}]}}),
        evaluate,
    )
    .await;
    assert!(bad_field.contains("agents.update[0]"), "{bad_field}");
    let unknown_field = app
        .post(
            evaluate,
            &t.admin_token,
            json!({"examples": labeled(&OTHERS), "agents": {"update": [{"id": ids["billing"], "colour": "red"}]}}),
        )
        .await;
    assert_eq!(unknown_field.status, 422, "{:?}", unknown_field.body);
    // Replay: at most 10,000 turns, at least one.
    let replay = "/v1/routing/replay";
    assert!(
        refused(json!({"last": 10001}), replay)
            .await
            .contains("10000")
    );
    refused(json!({"last": 0}), replay).await;
}

on_both_backends!(
    evaluate_measures_the_live_agents_and_a_draft,
    replay_tells_what_a_change_would_move,
    each_tenant_replays_its_own_turns_only,
    the_lab_is_for_admins_and_refuses_bad_input_clearly,
);

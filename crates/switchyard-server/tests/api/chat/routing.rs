//! Routing as chat does it: the decision rules, thresholds, isolation of agents between
//! tenants, and replicas that share a database.

use serde_json::{Value, json};

use super::{chat, service_agents};
use crate::common::{OPERATOR, TestApp, assert_problem, on_both_backends};

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
    // A message like the fallback agent's own examples is a fallback too, and says why.
    let thanks = chat(
        &app,
        &t.member_token,
        json!({"message": "thanks for the help"}),
    )
    .await;
    assert_eq!(thanks.body["agent"]["name"], "general", "{:?}", thanks.body);
    assert_eq!(thanks.body["routing"]["method"], "fallback");
    assert_eq!(thanks.body["routing"]["fallback_used"], true);
    assert!(
        thanks.body["routing"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("closest to the fallback agent's own examples"),
        "{:?}",
        thanks.body
    );

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

on_both_backends!(
    routing_behaviour,
    thresholds_margins_and_no_fallback,
    another_tenants_agent_is_never_chosen,
);

//! `POST /v1/chat` and `POST /v1/route`: routing behaviour, agent calls over real HTTP,
//! failover and circuits, idempotency, concurrency, streaming and limits — one file each.

use serde_json::{Value, json};
use switchyard_core::Role;

use crate::common::{Actors, TestApp};

mod agents;
mod encoder;
mod failover;
mod health;
mod routing;
mod turns;

/// The customer-service agents of the load workload (a subset of shared/perf/agents.json).
pub(crate) async fn service_agents(app: &TestApp, t: &Actors) -> Value {
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

pub(crate) async fn chat(app: &TestApp, token: &str, body: Value) -> crate::common::Resp {
    app.post("/v1/chat", token, body).await
}

/// A chat turn asked for as a stream: its server-sent events, in order.
pub(crate) async fn stream_chat(app: &TestApp, token: &str, body: Value) -> Vec<(String, Value)> {
    let request = axum::http::Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    crate::agent_server::sse_events(&app.send(request).await.raw)
}

/// The last stored turn of the conversation an answer names.
pub(crate) async fn last_stored_turn(app: &TestApp, token: &str, answer: &Value) -> Value {
    let id = answer["conversation_id"].as_str().unwrap();
    let stored = app.get(&format!("/v1/conversations/{id}"), token).await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    stored.body["messages"]["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

pub(crate) async fn http_agent(
    app: &TestApp,
    t: &Actors,
    name: &str,
    url: String,
    extra: Value,
) -> String {
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

pub(crate) async fn message_count(app: &TestApp, t: &Actors) -> i64 {
    let scope = app.operator.act_as(t.tenant, t.admin, Role::Admin);
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

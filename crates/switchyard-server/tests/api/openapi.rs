//! The OpenAPI document: snapshot-locked, and it lists every route of the API.

use std::collections::BTreeSet;

use crate::common::TestApp;

/// Every operation of the v1 API.
const OPERATIONS: &[(&str, &str)] = &[
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{id}"),
    ("patch", "/v1/tenants/{id}"),
    ("delete", "/v1/tenants/{id}"),
    ("post", "/v1/users"),
    ("get", "/v1/users"),
    ("get", "/v1/users/{id}"),
    ("patch", "/v1/users/{id}"),
    ("delete", "/v1/users/{id}"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/agents"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{id}"),
    ("patch", "/v1/agents/{id}"),
    ("delete", "/v1/agents/{id}"),
    ("get", "/v1/conversations"),
    ("get", "/v1/conversations/{id}"),
    ("delete", "/v1/conversations/{id}"),
    ("get", "/v1/conversations/{id}/messages"),
    ("post", "/v1/chat"),
    ("post", "/v1/route"),
    ("post", "/v1/routing/evaluate"),
    ("post", "/v1/routing/replay"),
    ("get", "/v1/analytics/routing"),
    ("get", "/metrics"),
    ("post", "/v1/agents/import"),
    ("post", "/v1/agents/{id}/test"),
    ("get", "/v1/models"),
    ("get", "/v1/models/{model}"),
    ("post", "/v1/chat/completions"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

#[tokio::test]
async fn the_document_is_served_and_lists_every_route() {
    let app = TestApp::sqlite().await;
    let served = app
        .call(axum::http::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(served.status, 200);
    let doc = served.body;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert((method.clone(), path.clone()));
            let id = op["operationId"].as_str().unwrap();
            assert!(id.contains('_'), "operation ids are verb_resource: {id}");
        }
    }
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = expected.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&expected).collect();
    assert!(
        extra.is_empty(),
        "documented routes this test does not know: {extra:?}"
    );
    // Every documented route is really served (not 404 or 405 from the router itself).
    for (method, path) in &documented {
        let path = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        let resp = app
            .call(method.to_uppercase().parse().unwrap(), &path, None, None)
            .await;
        assert_ne!(resp.status, 405, "{method} {path}");
        if resp.status == 404 {
            assert_ne!(
                resp.body["detail"], "no such resource",
                "{method} {path} is not routed"
            );
        }
    }
}

#[test]
fn the_document_is_snapshot_locked() {
    insta::assert_json_snapshot!("openapi", switchyard_server::openapi());
}

/// The document's `RoutingRecord` names every field a real decision carries (it is written
/// by hand beside the type that serialises, so this keeps the two together).
#[tokio::test]
async fn the_routing_record_schema_lists_every_field_of_a_decision() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    for agent in [
        serde_json::json!({"name": "billing", "kind": "echo", "keywords": ["invoice", "refund"]}),
        serde_json::json!({"name": "general", "kind": "echo", "is_fallback": true}),
    ] {
        assert_eq!(
            app.post("/v1/agents", &t.admin_token, agent).await.status,
            201
        );
    }
    // A pinned decision has a guessed intent, so every optional field shows.
    let agents = app.get("/v1/agents", &t.member_token).await;
    let general = agents.body["items"][1]["id"].clone();
    let chat = app
        .post(
            "/v1/chat",
            &t.member_token,
            serde_json::json!({"message": "refund my invoice", "agent_id": general}),
        )
        .await;
    assert_eq!(chat.status, 200, "{:?}", chat.body);
    let doc = serde_json::to_value(switchyard_server::openapi()).unwrap();
    let schema = &doc["components"]["schemas"]["RoutingRecord"]["properties"];
    let documented: BTreeSet<&String> = schema.as_object().unwrap().keys().collect();
    let sent: BTreeSet<&String> = chat.body["routing"].as_object().unwrap().keys().collect();
    assert!(sent.contains(&"guessed_intent".to_string()), "{sent:?}");
    assert_eq!(documented, sent);
}

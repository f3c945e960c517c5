//! Isolation as a table: every route with an id slot (path, query, body), called by the
//! admin and the member of tenant A with tenant B's ids, is never a 2xx, writes nothing, and
//! answers byte for byte as the same call with a random id.

use axum::http::Method;
use serde_json::{Value, json};
use switchyard_core::Role;
use switchyard_core::page::PageRequest;
use switchyard_store::ConversationFilter;
use uuid::Uuid;

use crate::common::{Actors, TestApp, assert_problem, on_both_backends};

/// Everything both tenants have, as the store shows it to their admins and operator.
async fn snapshot(app: &TestApp, actors: &[&Actors]) -> String {
    let mut out = String::new();
    for a in actors {
        let scope = app.operator.act_as(a.tenant, a.admin, Role::Admin);
        let all = PageRequest::first(100);
        out += &format!(
            "{:?}\n",
            app.store.get_tenant(&app.operator, a.tenant).await.unwrap()
        );
        // Every table's rows, those no list shows included (idempotency records, failed
        // agent calls).
        out += &format!(
            "{:?}\n",
            app.store
                .tenant_usage(&app.operator, a.tenant)
                .await
                .unwrap()
        );
        out += &format!("{:?}\n", app.store.list_users(&scope, all).await.unwrap());
        out += &format!("{:?}\n", app.store.list_agents(&scope, all).await.unwrap());
        out += &format!(
            "{:?}\n",
            app.store.list_api_keys(&scope, all).await.unwrap()
        );
        let conversations = app
            .store
            .list_conversations(&scope, ConversationFilter::All, all)
            .await
            .unwrap();
        for c in &conversations.items {
            out += &format!(
                "{:?}\n",
                app.store.list_turns(&scope, c.id, all).await.unwrap()
            );
        }
        out += &format!("{conversations:?}\n");
    }
    out
}

struct Slot {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    /// A header that carries the id.
    header: Option<&'static str>,
}

fn slot(method: Method, path: &'static str, body: Option<Value>) -> Slot {
    Slot {
        method,
        path,
        body,
        header: None,
    }
}

/// A slot whose id travels in a header.
fn header_slot(method: Method, path: &'static str, body: Value, header: &'static str) -> Slot {
    Slot {
        method,
        path,
        body: Some(body),
        header: Some(header),
    }
}

/// Sends `slot` with `id` in its place.
async fn send(app: &TestApp, slot: &Slot, token: &str, id: &str) -> crate::common::Resp {
    let mut request = axum::http::Request::builder()
        .method(slot.method.clone())
        .uri(fill(slot.path, id))
        .header("authorization", format!("Bearer {token}"));
    if let Some(header) = slot.header {
        request = request.header(header, id);
    }
    if slot.path == "/v1/chat" {
        // A claimed key would be a row written; a refused turn must leave none.
        request = request.header("idempotency-key", Uuid::now_v7().to_string());
    }
    let request = match fill_body(&slot.body, id) {
        Some(body) => request
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string())),
        None => request.body(axum::body::Body::empty()),
    }
    .unwrap();
    app.send(request).await
}

fn fill(template: &str, id: &str) -> String {
    template.replace("{id}", id)
}

fn fill_body(body: &Option<Value>, id: &str) -> Option<Value> {
    body.as_ref()
        .map(|b| serde_json::from_str(&b.to_string().replace("{id}", id)).unwrap())
}

async fn another_tenants_ids_are_never_reachable(app: TestApp) {
    let a = app.tenant().await;
    let b = app.tenant().await;
    // Tenant B's resources.
    let agent = app
        .post(
            "/v1/agents",
            &b.admin_token,
            json!({"name": "billing", "kind": "echo", "keywords": ["invoice"]}),
        )
        .await;
    assert_eq!(agent.status, 201);
    let agent = agent.body["id"].as_str().unwrap().to_string();
    let key = app
        .post(
            "/v1/api-keys",
            &b.admin_token,
            json!({"name": "ci", "user_id": b.member}),
        )
        .await;
    assert_eq!(key.status, 201);
    let key = key.body["id"].as_str().unwrap().to_string();
    let member_scope = app.operator.act_as(b.tenant, b.member, Role::Member);
    let (conversation, _) = app
        .store
        .append_turn(
            &member_scope,
            crate::resources::new_turn("where is my invoice?"),
        )
        .await
        .unwrap();
    let user = b.member.to_string();
    let admin = b.admin.to_string();
    let conversation = conversation.id.to_string();
    let tenant_b = b.tenant.to_string();

    let table: Vec<(Slot, String)> = vec![
        (slot(Method::GET, "/v1/users/{id}", None), user.clone()),
        (slot(Method::GET, "/v1/users/{id}", None), admin.clone()),
        (
            slot(
                Method::PATCH,
                "/v1/users/{id}",
                Some(json!({"display_name": "owned"})),
            ),
            user.clone(),
        ),
        (
            slot(
                Method::PATCH,
                "/v1/users/{id}",
                Some(json!({"role": "member"})),
            ),
            admin.clone(),
        ),
        (slot(Method::DELETE, "/v1/users/{id}", None), user.clone()),
        (
            slot(
                Method::POST,
                "/v1/api-keys",
                Some(json!({"name": "stolen", "user_id": "{id}"})),
            ),
            user.clone(),
        ),
        (slot(Method::DELETE, "/v1/api-keys/{id}", None), key.clone()),
        (slot(Method::GET, "/v1/agents/{id}", None), agent.clone()),
        (
            slot(
                Method::PATCH,
                "/v1/agents/{id}",
                Some(json!({"description": "owned"})),
            ),
            agent.clone(),
        ),
        (
            slot(Method::POST, "/v1/agents/{id}/test", Some(json!({}))),
            agent.clone(),
        ),
        (slot(Method::DELETE, "/v1/agents/{id}", None), agent.clone()),
        (
            slot(Method::GET, "/v1/conversations/{id}", None),
            conversation.clone(),
        ),
        (
            slot(Method::GET, "/v1/conversations/{id}/messages", None),
            conversation.clone(),
        ),
        (
            slot(Method::DELETE, "/v1/conversations/{id}", None),
            conversation.clone(),
        ),
        (
            slot(Method::GET, "/v1/conversations?user_id={id}", None),
            user.clone(),
        ),
        (
            slot(Method::GET, "/v1/conversations?user_id={id}&limit=5", None),
            admin.clone(),
        ),
        (
            slot(
                Method::POST,
                "/v1/chat",
                Some(json!({"message": "where is my invoice?", "conversation_id": "{id}"})),
            ),
            conversation.clone(),
        ),
        (
            slot(
                Method::POST,
                "/v1/chat",
                Some(json!({"message": "where is my invoice?", "agent_id": "{id}"})),
            ),
            agent.clone(),
        ),
        (
            slot(
                Method::POST,
                "/v1/route",
                Some(json!({"message": "where is my invoice?", "conversation_id": "{id}"})),
            ),
            conversation.clone(),
        ),
        (
            header_slot(
                Method::POST,
                "/v1/chat/completions",
                json!({"model": "switchyard", "messages": [{"role": "user", "content": "where is my invoice?"}]}),
                "x-switchyard-conversation-id",
            ),
            conversation.clone(),
        ),
        (
            header_slot(
                Method::POST,
                "/v1/chat/completions",
                json!({"model": "switchyard", "stream": true, "messages": [{"role": "user", "content": "where is my invoice?"}]}),
                "x-switchyard-conversation-id",
            ),
            conversation.clone(),
        ),
        // Tenant management is the operator's: a tenant's token gets the same refusal for
        // its own tenant's neighbour as for a random id.
        (
            slot(Method::GET, "/v1/tenants/{id}", None),
            tenant_b.clone(),
        ),
        (
            slot(
                Method::PATCH,
                "/v1/tenants/{id}",
                Some(json!({"status": "suspended"})),
            ),
            tenant_b.clone(),
        ),
        (
            slot(Method::DELETE, "/v1/tenants/{id}", None),
            tenant_b.clone(),
        ),
    ];

    // Every route of the API that takes an id is in the table.
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains("{id}") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            assert!(
                table
                    .iter()
                    .any(|(s, _)| s.path.split('?').next() == Some(path.as_str())
                        && s.method.as_str().eq_ignore_ascii_case(method)),
                "{method} {path} takes an id but is not in the isolation table"
            );
        }
    }

    // Tenant A can chat (so a refusal below is about the id, nothing else).
    let a_agent = app
        .post(
            "/v1/agents",
            &a.admin_token,
            json!({"name": "general", "kind": "echo", "is_fallback": true}),
        )
        .await;
    assert_eq!(a_agent.status, 201);
    let before = snapshot(&app, &[&a, &b]).await;
    for (slot, foreign_id) in &table {
        for token in [&a.admin_token, &a.member_token] {
            let random_id = Uuid::now_v7().to_string();
            let foreign = send(&app, slot, token, foreign_id).await;
            let random = send(&app, slot, token, &random_id).await;
            let what = format!(
                "{} {} as {}",
                slot.method,
                slot.path,
                if token == &a.admin_token {
                    "admin"
                } else {
                    "member"
                }
            );
            assert!(!foreign.status.is_success(), "{what}: {:?}", foreign.body);
            if slot.path.starts_with("/v1/chat/completions") {
                // The OpenAI dialect's error shape.
                assert!(foreign.body["error"]["message"].is_string(), "{what}");
            } else {
                assert_problem(&foreign, foreign.status.as_u16());
            }
            assert_eq!(foreign.status, random.status, "{what}");
            assert_eq!(
                foreign.raw, random.raw,
                "{what}: a foreign id must answer as a random one"
            );
        }
    }
    // Another tenant's agent named as a model (the OpenAI dialect pins by name) is an
    // unknown model, as a made-up name is.
    for model in ["billing", "no-such-agent"] {
        let resp = app
            .post(
                "/v1/chat/completions",
                &a.member_token,
                json!({"model": model, "messages": [{"role": "user", "content": "invoice"}]}),
            )
            .await;
        assert_eq!(resp.status, 404, "{model}: {:?}", resp.body);
        assert_eq!(resp.body["error"]["code"], "model_not_found");
        // Read as a model by its name, the same.
        let read = app
            .get(&format!("/v1/models/{model}"), &a.member_token)
            .await;
        assert_eq!(read.status, 404, "{model}: {:?}", read.body);
        assert_eq!(read.body["error"]["code"], "model_not_found");
    }
    // And B's agent is a model for B alone.
    let own = app.get("/v1/models/billing", &b.member_token).await;
    assert_eq!(own.status, 200, "{:?}", own.body);
    assert_eq!(
        snapshot(&app, &[&a, &b]).await,
        before,
        "nothing was written"
    );

    // Owner fields in bodies are refused, and write nothing either.
    let own_agent = app
        .post(
            "/v1/agents",
            &a.admin_token,
            json!({"name": "mine", "kind": "echo"}),
        )
        .await;
    assert_eq!(own_agent.status, 201);
    let own_agent = own_agent.body["id"].as_str().unwrap().to_string();
    let before = snapshot(&app, &[&a, &b]).await;
    for (method, path, body) in [
        (
            Method::POST,
            "/v1/agents".to_string(),
            json!({"name": "x", "kind": "echo", "tenant_id": tenant_b}),
        ),
        (
            Method::PATCH,
            format!("/v1/agents/{own_agent}"),
            json!({"tenant_id": tenant_b}),
        ),
        (
            Method::POST,
            "/v1/users".to_string(),
            json!({"email": "x@y.test", "role": "member", "tenant_id": tenant_b}),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", a.member),
            json!({"tenant_id": tenant_b}),
        ),
        (
            Method::POST,
            "/v1/api-keys".to_string(),
            json!({"name": "x", "tenant_id": tenant_b}),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", a.member),
            json!({"id": b.member}),
        ),
    ] {
        let resp = app
            .call(method.clone(), &path, Some(&a.admin_token), Some(body))
            .await;
        assert_problem(&resp, 422);
        assert!(
            resp.body["detail"]
                .as_str()
                .unwrap()
                .contains("unknown field"),
            "{method} {path}: {:?}",
            resp.body
        );
    }
    assert_eq!(
        snapshot(&app, &[&a, &b]).await,
        before,
        "refused bodies write nothing"
    );

    // Lists show only the caller's tenant.
    for (path, token) in [
        ("/v1/agents", &a.member_token),
        ("/v1/users", &a.admin_token),
        ("/v1/api-keys", &a.admin_token),
        ("/v1/conversations?all=true", &a.admin_token),
        ("/v1/models", &a.member_token),
    ] {
        let list = app.get(path, token).await;
        assert_eq!(list.status, 200, "{path}");
        let text = list.body.to_string();
        for id in [&agent, &key, &conversation, &user, &admin] {
            assert!(!text.contains(id.as_str()), "{path} shows tenant B's {id}");
        }
        assert!(!text.contains("billing"), "{path} shows tenant B's agent");
    }
}

on_both_backends!(another_tenants_ids_are_never_reachable);

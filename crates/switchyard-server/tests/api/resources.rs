//! Each resource over HTTP: status codes, shapes and validation as the API promises (its
//! OpenAPI document).

use chrono::Utc;
use serde_json::json;
use switchyard_core::model::{NewTurn, TurnTarget};
use switchyard_core::{AgentId, ConversationId, MessageId, Role};

use crate::common::{OPERATOR, TestApp, assert_problem};

/// A turn opening a new conversation (until chat writes them, tests seed them this way).
pub fn new_turn(message: &str) -> NewTurn {
    NewTurn {
        id: MessageId::new(),
        target: TurnTarget::New {
            id: ConversationId::new(),
            title: Some(message.into()),
            max_per_user: 1000,
            max_per_tenant: 100_000,
        },
        user_message: message.into(),
        agent_response: format!("answer to {message}"),
        intent_category: Some("billing".into()),
        intent_confidence: Some(0.8),
        selected_agent_id: None,
        routing: json!({"method": "lexical"}),
        routing_method: Some("lexical".into()),
        routing_confidence: Some(0.8),
        fallback_used: Some(false),
        latency_ms: Some(2.0),
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn tenants_for_the_operator() {
    let app = TestApp::sqlite().await;
    let created = app
        .post(
            "/v1/tenants",
            OPERATOR,
            json!({"slug": "acme-ops", "name": "Acme", "settings": {"min_confidence": 0.5},
                   "admin_email": "Boss@Acme.test", "admin_password": "a long enough password"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["slug"], "acme-ops");
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["settings"], json!({"min_confidence": 0.5}));
    assert_eq!(created.body["admin"]["email"], "boss@acme.test");
    assert_eq!(created.body["admin"]["role"], "admin");
    let id = created.body["id"].as_str().unwrap().to_string();

    // The admin can log in with the password.
    let login = app
        .call(
            axum::http::Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"tenant": "acme-ops", "email": "boss@acme.test", "password": "a long enough password"})),
        )
        .await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 3600);
    let me = app
        .get("/v1/me", login.body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["tenant"]["slug"], "acme-ops");

    for (body, status) in [
        (json!({"slug": "acme-ops", "name": "Again"}), 409),
        (json!({"slug": "-bad", "name": "x"}), 422),
        (json!({"slug": "a", "name": "x"}), 422),
        (json!({"slug": "ok-slug", "name": ""}), 422),
        (
            json!({"slug": "ok-slug", "name": "x", "settings": {"colour": "blue"}}),
            422,
        ),
        (
            json!({"slug": "ok-slug", "name": "x", "admin_email": "a@b.test", "admin_password": "short"}),
            422,
        ),
        (
            json!({"slug": "ok-slug", "name": "x", "admin_password": "long enough password"}),
            422,
        ),
        (json!({"slug": "ok-slug"}), 422),
    ] {
        assert_problem(
            &app.post("/v1/tenants", OPERATOR, body.clone()).await,
            status,
        );
    }

    let got = app.get(&format!("/v1/tenants/{id}"), OPERATOR).await;
    assert_eq!(got.body["name"], "Acme");
    // The slug names the tenant as well as the id does.
    let by_slug = app.get("/v1/tenants/acme-ops", OPERATOR).await;
    assert_eq!(by_slug.status, 200, "{:?}", by_slug.body);
    assert_eq!(by_slug.body["id"], id.as_str());
    let renamed = app
        .patch(
            "/v1/tenants/acme-ops",
            OPERATOR,
            json!({"name": "Acme Corp"}),
        )
        .await;
    assert_eq!(renamed.body["name"], "Acme Corp");
    assert_problem(&app.get("/v1/tenants/no-such-tenant", OPERATOR).await, 404);
    assert_problem(
        &app.delete("/v1/tenants/no-such-tenant", OPERATOR).await,
        404,
    );
    let patched = app
        .patch(
            &format!("/v1/tenants/{id}"),
            OPERATOR,
            json!({"status": "suspended", "settings": {"min_confidence": null, "rate_limit_per_second": 5}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["status"], "suspended");
    assert_eq!(
        patched.body["settings"],
        json!({"rate_limit_per_second": 5})
    );
    assert_problem(
        &app.patch(
            &format!("/v1/tenants/{id}"),
            OPERATOR,
            json!({"status": "gone"}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.patch(
            &format!("/v1/tenants/{id}"),
            OPERATOR,
            json!({"settings": {"min_margin": 7}}),
        )
        .await,
        422,
    );

    let list = app.get("/v1/tenants", OPERATOR).await;
    assert!(
        list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str())
    );

    assert_eq!(
        app.delete(&format!("/v1/tenants/{id}"), OPERATOR)
            .await
            .status,
        204
    );
    assert_problem(&app.get(&format!("/v1/tenants/{id}"), OPERATOR).await, 404);
    assert_problem(
        &app.delete(&format!("/v1/tenants/{id}"), OPERATOR).await,
        404,
    );
}

#[tokio::test]
async fn users_for_the_admin() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": " Mia@Example.TEST", "display_name": "Mia", "role": "member", "password": "twelve chars!"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["email"], "mia@example.test");
    assert_eq!(created.body["status"], "active");
    assert!(
        created.body.get("password_hash").is_none()
            && !created.raw.windows(7).any(|w| w == b"argon2i")
    );
    let id = created.body["id"].as_str().unwrap().to_string();

    for (body, status) in [
        (json!({"email": "mia@example.test", "role": "member"}), 409),
        (json!({"email": "not-an-email", "role": "member"}), 422),
        (json!({"email": "x@y.test", "role": "owner"}), 422),
        (
            json!({"email": "x@y.test", "role": "member", "password": "short"}),
            422,
        ),
        (json!({"email": "x@y.test"}), 422),
    ] {
        assert_problem(&app.post("/v1/users", &t.admin_token, body).await, status);
    }

    let patched = app
        .patch(
            &format!("/v1/users/{id}"),
            &t.admin_token,
            json!({"display_name": null, "role": "admin"}),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.body["display_name"], json!(null));
    assert_eq!(patched.body["role"], "admin");
    // Admins cannot lock themselves out.
    assert_problem(
        &app.patch(
            &format!("/v1/users/{}", t.admin),
            &t.admin_token,
            json!({"role": "member"}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.delete(&format!("/v1/users/{}", t.admin), &t.admin_token)
            .await,
        422,
    );

    let list = app.get("/v1/users", &t.admin_token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        app.delete(&format!("/v1/users/{id}"), &t.admin_token)
            .await
            .status,
        204
    );
    assert_problem(
        &app.get(&format!("/v1/users/{id}"), &t.admin_token).await,
        404,
    );
    // A malformed id names nothing.
    assert_problem(&app.get("/v1/users/not-a-uuid", &t.admin_token).await, 404);
}

#[tokio::test]
async fn api_keys_are_shown_once_and_act_as_their_user() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/api-keys",
            &t.admin_token,
            json!({"name": "ci", "user_id": t.member}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sy_"));
    assert_eq!(created.body["prefix"].as_str().unwrap(), &secret[..12]);
    assert_eq!(created.body["user_id"], t.member.to_string());

    let me = app.get("/v1/me", &secret).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["id"], t.member.to_string());
    assert_eq!(me.body["user"]["role"], "member");

    let list = app.get("/v1/api-keys", &t.admin_token).await;
    let listed = &list.body["items"][0];
    assert_eq!(listed["prefix"], created.body["prefix"]);
    assert!(listed.get("secret").is_none(), "the secret is shown once");
    assert!(
        !list
            .raw
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );
    assert!(listed["last_used_at"].is_string(), "use is recorded");

    // Defaults to the caller.
    let own = app
        .post("/v1/api-keys", &t.admin_token, json!({"name": "mine"}))
        .await;
    assert_eq!(own.body["user_id"], t.admin.to_string());
    assert_problem(
        &app.post("/v1/api-keys", &t.admin_token, json!({"name": ""}))
            .await,
        422,
    );

    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/v1/api-keys/{id}"), &t.admin_token)
            .await
            .status,
        204
    );
    assert_problem(&app.get("/v1/me", &secret).await, 401);
    assert_problem(
        &app.delete(&format!("/v1/api-keys/{id}"), &t.admin_token)
            .await,
        404,
    );
}

#[tokio::test]
async fn agents_with_configs_checked_per_kind() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "helpdesk", "description": "IT problems", "kind": "http",
                   "config": {"url": "http://127.0.0.1:9/agent", "secret": "0123456789abcdef", "headers": {"Authorization": "Bearer x"}},
                   "intents": ["technical"], "keywords": ["vpn", "laptop"], "examples": ["my vpn is down"], "priority": 5}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.body["config"]["secret"], "***",
        "secrets are not shown"
    );
    assert_eq!(created.body["config"]["headers"]["Authorization"], "***");
    assert_eq!(created.body["enabled"], true);
    assert_eq!(created.body["is_fallback"], false);
    let id = created.body["id"].as_str().unwrap().to_string();

    for body in [
        json!({"name": "x", "kind": "carrier-pigeon"}),
        json!({"name": "x", "kind": "http", "config": {}}),
        json!({"name": "x", "kind": "http", "config": {"url": "http://169.254.169.254/"}}),
        json!({"name": "x", "kind": "echo", "config": {"unknown": 1}}),
        json!({"name": "x", "kind": "openai", "config": {"base_url": "https://api.test/v1", "model": "m", "api_key": "sk"}}),
        json!({"name": "", "kind": "echo"}),
        json!({"name": "x", "kind": "echo", "priority": 5000}),
        json!({"name": "x", "kind": "echo", "examples": [""]}),
    ] {
        assert_problem(
            &app.post("/v1/agents", &t.admin_token, body.clone()).await,
            422,
        );
    }
    assert_problem(
        &app.post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "helpdesk", "kind": "echo"}),
        )
        .await,
        409,
    );

    // An edited copy of the answer keeps the secrets it shows as ***.
    let mut config = created.body["config"].clone();
    config["url"] = json!("http://127.0.0.1:9/v2");
    let patched = app
        .patch(
            &format!("/v1/agents/{id}"),
            &t.admin_token,
            json!({"config": config, "enabled": false}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["enabled"], false);
    let scope = app.operator.act_as(t.tenant, t.admin, Role::Admin);
    let stored = app
        .store
        .get_agent(&scope, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(stored.config["secret"], "0123456789abcdef");
    assert_eq!(stored.config["headers"]["Authorization"], "Bearer x");
    assert_eq!(stored.config["url"], "http://127.0.0.1:9/v2");
    // Sent to another host, the stored credentials stay behind unless given again: one
    // admin cannot send another's secret to a host of their choosing.
    let mut moved = patched.body["config"].clone();
    moved["url"] = json!("http://127.0.0.2:9/v2");
    let patched = app
        .patch(
            &format!("/v1/agents/{id}"),
            &t.admin_token,
            json!({"config": moved}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    let stored = app
        .store
        .get_agent(&scope, id.parse().unwrap())
        .await
        .unwrap();
    assert!(stored.config.get("secret").is_none(), "{}", stored.config);
    assert_eq!(stored.config["headers"], json!({}));
    assert_eq!(stored.config["url"], "http://127.0.0.2:9/v2");
    assert_problem(
        &app.patch(
            &format!("/v1/agents/{id}"),
            &t.admin_token,
            json!({"kind": "echo"}),
        )
        .await,
        422,
    );

    // One enabled fallback per tenant.
    assert_eq!(
        app.post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "general", "kind": "echo", "is_fallback": true})
        )
        .await
        .status,
        201
    );
    assert_problem(
        &app.post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "general2", "kind": "echo", "is_fallback": true}),
        )
        .await,
        409,
    );

    // Members read agents.
    assert_eq!(
        app.get("/v1/agents", &t.member_token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.get(&format!("/v1/agents/{id}"), &t.member_token)
            .await
            .status,
        200
    );
    assert_eq!(
        app.delete(&format!("/v1/agents/{id}"), &t.admin_token)
            .await
            .status,
        204
    );
    assert_problem(
        &app.get(&format!("/v1/agents/{id}"), &t.member_token).await,
        404,
    );
}

#[tokio::test]
async fn conversations_with_their_turns() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let scope = app.operator.act_as(t.tenant, t.member, Role::Member);
    let agent = AgentId::new();
    let with_agent = |message: &str| NewTurn {
        selected_agent_id: Some(agent),
        ..new_turn(message)
    };
    let (conversation, _) = app
        .store
        .append_turn(&scope, with_agent("first"))
        .await
        .unwrap();
    for i in 0..4 {
        let mut turn = with_agent(&format!("turn {i}"));
        turn.target = TurnTarget::Existing(conversation.id);
        app.store.append_turn(&scope, turn).await.unwrap();
    }
    let list = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(list.status, 200);
    let item = &list.body["items"][0];
    assert_eq!(item["id"], conversation.id.to_string());
    assert_eq!(item["message_count"], 5);
    assert_eq!(item["user_id"], t.member.to_string());
    assert_eq!(item["title"], "first");
    assert_eq!(item["primary_intent"], "billing");
    assert_eq!(item["last_agent_id"], agent.to_string());
    for key in ["created_at", "last_activity"] {
        assert!(
            item[key].as_str().is_some_and(|t| t.ends_with('Z')),
            "{key}: {item}"
        );
    }

    let detail = app
        .get(
            &format!("/v1/conversations/{}?limit=2", conversation.id),
            &t.member_token,
        )
        .await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_eq!(detail.body["message_count"], 5);
    let first_page = detail.body["messages"]["items"].as_array().unwrap();
    assert_eq!(first_page.len(), 2);
    assert_eq!(first_page[0]["user_message"], "first");
    let turn = &first_page[0];
    assert!(
        turn["id"].as_str().is_some_and(|id| id.len() == 36),
        "{turn}"
    );
    assert_eq!(turn["conversation_id"], conversation.id.to_string());
    assert_eq!(turn["agent_response"], "answer to first");
    assert_eq!(turn["intent_category"], "billing");
    assert_eq!(turn["intent_confidence"], 0.8);
    assert_eq!(turn["selected_agent_id"], agent.to_string());
    assert_eq!(turn["routing"], json!({"method": "lexical"}));
    assert_eq!(turn["latency_ms"], 2.0);
    assert!(
        turn["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{turn}"
    );
    let cursor = detail.body["messages"]["next_cursor"].as_str().unwrap();
    let more = app
        .get(
            &format!(
                "/v1/conversations/{}/messages?limit=10&cursor={cursor}",
                conversation.id
            ),
            &t.member_token,
        )
        .await;
    let rest: Vec<&str> = more.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_message"].as_str().unwrap())
        .collect();
    assert_eq!(rest, vec!["turn 1", "turn 2", "turn 3"]);
    assert_eq!(more.body["next_cursor"], json!(null));

    // Admins see it too, and may list by user; members may not.
    assert_eq!(
        app.get(
            &format!("/v1/conversations/{}", conversation.id),
            &t.admin_token
        )
        .await
        .status,
        200
    );
    let by_user = app
        .get(
            &format!("/v1/conversations?user_id={}", t.member),
            &t.admin_token,
        )
        .await;
    assert_eq!(by_user.body["items"].as_array().unwrap().len(), 1);
    assert_problem(
        &app.get("/v1/conversations?all=true", &t.member_token).await,
        403,
    );
    assert_problem(
        &app.get(
            &format!("/v1/conversations?user_id={}", t.member),
            &t.member_token,
        )
        .await,
        403,
    );
    // Any `all` or `user_id` from a member is refused, whatever its value: even `false`,
    // even their own id, even a malformed one.
    for query in ["all=false", "all=maybe", "user_id=not-a-uuid"] {
        assert_problem(
            &app.get(&format!("/v1/conversations?{query}"), &t.member_token)
                .await,
            403,
        );
    }
    assert_problem(
        &app.get("/v1/conversations?all=maybe", &t.admin_token).await,
        400,
    );
    assert_problem(
        &app.get("/v1/conversations?sort=asc", &t.member_token).await,
        400,
    );

    assert_eq!(
        app.delete(
            &format!("/v1/conversations/{}", conversation.id),
            &t.member_token
        )
        .await
        .status,
        204
    );
    assert_problem(
        &app.get(
            &format!("/v1/conversations/{}", conversation.id),
            &t.member_token,
        )
        .await,
        404,
    );
}

#[tokio::test]
async fn a_member_sees_only_their_own_conversations() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let other = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": "other@member.test", "role": "member"}),
        )
        .await;
    assert_eq!(other.status, 201, "{:?}", other.body);
    let other: switchyard_core::UserId = other.body["id"].as_str().unwrap().parse().unwrap();
    let other_token = app.token(t.tenant, other);
    let scope = app.operator.act_as(t.tenant, t.member, Role::Member);
    let (mine, _) = app
        .store
        .append_turn(&scope, new_turn("my own question"))
        .await
        .unwrap();
    let path = format!("/v1/conversations/{}", mine.id);
    let random = format!("/v1/conversations/{}", ConversationId::new());
    // The neighbour in the same tenant: the conversation is not there for them, exactly as
    // a random id is not, and deleting it does nothing.
    for (method, suffix) in [
        (axum::http::Method::GET, ""),
        (axum::http::Method::GET, "/messages"),
        (axum::http::Method::DELETE, ""),
    ] {
        let theirs = app
            .call(
                method.clone(),
                &format!("{path}{suffix}"),
                Some(&other_token),
                None,
            )
            .await;
        let missing = app
            .call(
                method.clone(),
                &format!("{random}{suffix}"),
                Some(&other_token),
                None,
            )
            .await;
        assert_problem(&theirs, 404);
        assert_eq!(theirs.raw, missing.raw, "{method} {suffix}");
    }
    let chat = app
        .post(
            "/v1/chat",
            &other_token,
            json!({"message": "let me in", "conversation_id": mine.id}),
        )
        .await;
    assert_problem(&chat, 404);
    let list = app.get("/v1/conversations", &other_token).await;
    assert_eq!(list.body["items"], json!([]));
    // The owner still has it, untouched; the admin sees it too.
    let owned = app.get(&path, &t.member_token).await;
    assert_eq!(owned.status, 200);
    assert_eq!(owned.body["message_count"], 1);
    assert_eq!(app.get(&path, &t.admin_token).await.status, 200);
}

#[tokio::test]
async fn bodies_that_cannot_be_read() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    use axum::body::Body;
    use axum::http::Request;
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut r = Request::post("/v1/agents")
            .header("authorization", format!("Bearer {}", t.admin_token));
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    assert_problem(
        &app.send(send(Some("application/json"), b"{not json".to_vec()))
            .await,
        400,
    );
    assert_problem(
        &app.send(send(Some("text/plain"), b"{}".to_vec())).await,
        415,
    );
    assert_problem(&app.send(send(None, b"{}".to_vec())).await, 415);
    assert_problem(
        &app.send(send(
            Some("application/json"),
            br#"{"name": 5, "kind": "echo"}"#.to_vec(),
        ))
        .await,
        422,
    );
    let huge = format!(
        r#"{{"name": "x", "kind": "echo", "description": "{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    );
    assert_problem(
        &app.send(send(Some("application/json"), huge.into_bytes()))
            .await,
        413,
    );
    // Unknown routes and methods are problems too.
    assert_problem(&app.get("/v2/nothing", &t.admin_token).await, 404);
    assert_problem(
        &app.call(
            axum::http::Method::PUT,
            "/v1/agents",
            Some(&t.admin_token),
            None,
        )
        .await,
        405,
    );
}

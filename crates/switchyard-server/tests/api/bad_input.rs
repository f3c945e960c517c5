//! Bad input answers a clear 4xx and loses nothing, the same on SQLite and PostgreSQL:
//! text with NUL characters anywhere in a body, broken Unicode, messages with nothing
//! visible in them; and a deleted conversation leaves nothing to replay.
//! (docs/operations.md, *Security*.)

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use crate::common::{TestApp, assert_problem, on_both_backends};

/// Sends `raw` as a JSON body, as a client that writes its own JSON would.
async fn raw_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    raw: &str,
) -> crate::common::Resp {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    app.send(request.body(Body::from(raw.to_owned())).unwrap())
        .await
}

async fn nul_characters_are_refused_naming_the_field(app: TestApp) {
    let t = app.tenant().await;
    let agent = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "general", "kind": "echo", "is_fallback": true}),
        )
        .await;
    assert_eq!(agent.status, 201);
    let agents_before = app.get("/v1/agents", &t.admin_token).await.body;
    let conversations_before = app.get("/v1/conversations", &t.member_token).await.body;

    for (path, token, body, field) in [
        (
            "/v1/chat",
            Some(&t.member_token),
            json!({"message": "a\u{0}b"}),
            "message",
        ),
        (
            "/v1/chat",
            Some(&t.member_token),
            json!({"message": "fine", "metadata": {"note": ["ok", "x\u{0}"]}}),
            "metadata.note[1]",
        ),
        (
            "/v1/route",
            Some(&t.member_token),
            json!({"message": "\u{0}"}),
            "message",
        ),
        (
            "/v1/agents",
            Some(&t.admin_token),
            json!({"name": "bad\u{0}name", "kind": "echo"}),
            "name",
        ),
        (
            "/v1/agents",
            Some(&t.admin_token),
            json!({"name": "ok", "kind": "echo", "examples": ["a", "b\u{0}"]}),
            "examples[1]",
        ),
        (
            "/v1/users",
            Some(&t.admin_token),
            json!({"email": "x\u{0}@example.com", "role": "member"}),
            "email",
        ),
        (
            "/v1/auth/login",
            None,
            json!({"tenant": "acme\u{0}", "email": "a@b.c", "password": "a long enough password"}),
            "tenant",
        ),
        (
            "/v1/auth/login",
            None,
            json!({"tenant": "acme", "email": "a\u{0}@b.c", "password": "a long enough password"}),
            "email",
        ),
        (
            "/v1/chat/completions",
            Some(&t.member_token),
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "hi\u{0}"}]}),
            "messages[0].content",
        ),
    ] {
        let resp = match token {
            Some(token) => app.post(path, token, body.clone()).await,
            None => app.call(Method::POST, path, None, Some(body.clone())).await,
        };
        assert_eq!(resp.status, 422, "{path} {body}: {:?}", resp.body);
        let text = String::from_utf8_lossy(&resp.raw);
        assert!(
            text.contains(&format!("`{field}` must not contain NUL characters")),
            "{path}: {text}"
        );
    }
    // A key with a NUL is named too.
    let keyed = raw_post(
        &app,
        "/v1/route",
        Some(&t.member_token),
        r#"{"message": "hi", "a\u0000": 1}"#,
    )
    .await;
    assert_problem(&keyed, 422);
    // An escaped backslash before "u0000" is not a NUL: no false alarm.
    let literal = raw_post(
        &app,
        "/v1/route",
        Some(&t.member_token),
        r#"{"message": "a path like C:\\u0000 is fine"}"#,
    )
    .await;
    assert_eq!(literal.status, 200, "{:?}", literal.body);

    assert_eq!(
        app.get("/v1/agents", &t.admin_token).await.body,
        agents_before
    );
    assert_eq!(
        app.get("/v1/conversations", &t.member_token).await.body,
        conversations_before,
        "nothing stored"
    );
}

async fn broken_unicode_is_a_bad_request_not_a_crash(app: TestApp) {
    let t = app.tenant().await;
    for (path, token, raw) in [
        (
            "/v1/auth/login",
            None,
            r#"{"tenant": "\ud800", "email": "a@b.c", "password": "a long enough password"}"#,
        ),
        (
            "/v1/auth/login",
            None,
            r#"{"tenant": "acme", "email": "\udfff@b.c", "password": "a long enough password"}"#,
        ),
        (
            "/v1/chat",
            Some(t.member_token.as_str()),
            r#"{"message": "\ud83d"}"#,
        ),
    ] {
        let resp = raw_post(&app, path, token, raw).await;
        assert_problem(&resp, 400);
        assert!(
            resp.body["detail"].as_str().unwrap().contains("JSON"),
            "{path}: {:?}",
            resp.body
        );
    }
    // Bytes that are not UTF-8 at all.
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/auth/login")
        .header("content-type", "application/json");
    let bytes: Vec<u8> =
        b"{\"tenant\": \"\xff\xfe\", \"email\": \"a@b.c\", \"password\": \"x\"}".to_vec();
    let resp = app.send(request.body(Body::from(bytes)).unwrap()).await;
    assert_problem(&resp, 400);
}

async fn messages_with_nothing_visible_are_empty(app: TestApp) {
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    for message in ["", "   ", "\n\t ", "\u{200B}\u{FEFF}", " \u{2060} "] {
        for path in ["/v1/chat", "/v1/route"] {
            let resp = app
                .post(path, &t.member_token, json!({"message": message}))
                .await;
            assert_problem(&resp, 422);
            assert!(
                resp.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("must not be empty"),
                "{message:?}: {:?}",
                resp.body
            );
        }
        let completion = app
            .post(
                "/v1/chat/completions",
                &t.member_token,
                json!({"model": "switchyard", "messages": [{"role": "user", "content": message}]}),
            )
            .await;
        assert_eq!(completion.status, 422, "{message:?}");
        assert!(completion.body["error"]["message"].is_string());
    }
    let listed = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(listed.body["items"], json!([]), "nothing stored");
    // A message with something to read, surrounded by spaces, is fine.
    let ok = app
        .post("/v1/chat", &t.member_token, json!({"message": "  hi  "}))
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
}

/// Deleting a conversation deletes the recorded answers of its turns: a retry with the same
/// `Idempotency-Key` runs again instead of replaying the deleted messages.
async fn a_deleted_conversation_is_not_replayed(app: TestApp) {
    let t = app.tenant().await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "echo", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let send = |key: &'static str, message: &'static str| {
        let request = Request::post("/v1/chat")
            .header("authorization", format!("Bearer {}", t.member_token))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(json!({"message": message}).to_string()))
            .unwrap();
        let app = app.clone();
        async move { app.send(request).await }
    };
    let first = send("delete-me", "my secret account number").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let kept = send("keep-me", "another conversation").await;
    assert_eq!(kept.status, 200);
    let id = first.body["conversation_id"].as_str().unwrap().to_owned();
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{id}"),
            Some(&t.member_token),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
    let retried = send("delete-me", "my secret account number").await;
    assert_eq!(retried.status, 200);
    assert_ne!(
        retried.body["conversation_id"], first.body["conversation_id"],
        "a new turn, not the deleted one replayed"
    );
    assert_ne!(retried.body["message_id"], first.body["message_id"]);
    // Another conversation's record is untouched.
    let again = send("keep-me", "another conversation").await;
    assert_eq!(again.body, kept.body);
}

/// A tenant's agents, users and API keys are capped (its settings over the server's): one
/// past the cap is `409 …/limit-reached` and nothing is created; another tenant is not held
/// back by it.
async fn tenants_have_quotas_on_agents_users_and_keys(app: TestApp) {
    let t = app.tenant().await;
    let other = app.tenant().await;
    let set = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            crate::common::OPERATOR,
            json!({"settings": {"max_agents": 1, "max_users": 2, "max_api_keys": 1}}),
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let admin = &t.admin_token;
    for (path, first, second, says) in [
        (
            "/v1/agents",
            json!({"name": "one", "kind": "echo"}),
            json!({"name": "two", "kind": "echo"}),
            "limit of 1 agents",
        ),
        // The admin and the member exist already: a third user is one too many.
        (
            "/v1/users",
            json!(null),
            json!({"email": "third@example.com", "role": "member"}),
            "limit of 2 users",
        ),
        (
            "/v1/api-keys",
            json!({"name": "ci"}),
            json!({"name": "another"}),
            "limit of 1 API keys",
        ),
    ] {
        if !first.is_null() {
            let created = app.post(path, admin, first).await;
            assert_eq!(created.status, 201, "{path}: {:?}", created.body);
        }
        let refused = app.post(path, admin, second.clone()).await;
        assert_problem(&refused, 409);
        assert!(
            refused.body["type"]
                .as_str()
                .unwrap()
                .ends_with("limit-reached"),
            "{:?}",
            refused.body
        );
        assert!(
            refused.body["detail"].as_str().unwrap().contains(says),
            "{:?}",
            refused.body
        );
        let elsewhere = app.post(path, &other.admin_token, second).await;
        assert_eq!(elsewhere.status, 201, "{path} in another tenant");
    }
    let agents = app.get("/v1/agents", admin).await;
    assert_eq!(agents.body["items"].as_array().unwrap().len(), 1);
    let bad = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            crate::common::OPERATOR,
            json!({"settings": {"max_agents": -1}}),
        )
        .await;
    assert_problem(&bad, 422);
}

on_both_backends!(
    nul_characters_are_refused_naming_the_field,
    broken_unicode_is_a_bad_request_not_a_crash,
    messages_with_nothing_visible_are_empty,
    a_deleted_conversation_is_not_replayed,
    tenants_have_quotas_on_agents_users_and_keys,
);

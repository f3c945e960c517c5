//! Revoking tokens: a password change revokes the user's earlier tokens, and
//! `POST /v1/auth/logout` the token it carries (with the user's other sessions), on both
//! backends.

use axum::http::Method;
use serde_json::json;

use crate::common::{Actors, TestApp, assert_problem, on_both_backends};

/// A user of `t` with a password, and a token from a real login.
async fn user_with_login(
    app: &TestApp,
    t: &Actors,
    email: &str,
    password: &str,
) -> (String, String) {
    let created = app
        .post(
            "/v1/users",
            &t.admin_token,
            json!({"email": email, "role": "member", "password": password}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    (id, login(app, t, email, password).await)
}

async fn login(app: &TestApp, t: &Actors, email: &str, password: &str) -> String {
    let resp = app
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"tenant": t.slug, "email": email, "password": password})),
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    resp.body["access_token"].as_str().unwrap().to_string()
}

async fn a_password_change_revokes_the_earlier_tokens(app: TestApp) {
    let t = app.tenant().await;
    let (ann, first) = user_with_login(&app, &t, "ann@x.test", "the first password").await;
    let (_, bob) = user_with_login(&app, &t, "bob@x.test", "bob's own password").await;
    assert_eq!(app.get("/v1/me", &first).await.status, 200);

    // Only a name change: the token stays good.
    let renamed = app
        .patch(
            &format!("/v1/users/{ann}"),
            &t.admin_token,
            json!({"display_name": "Ann"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(app.get("/v1/me", &first).await.status, 200);

    let changed = app
        .patch(
            &format!("/v1/users/{ann}"),
            &t.admin_token,
            json!({"password": "the second password"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    // The old token is refused everywhere, the hot reads included.
    for path in ["/v1/me", "/v1/conversations"] {
        assert_problem(&app.get(path, &first).await, 401);
    }
    assert_problem(
        &app.post("/v1/chat", &first, json!({"message": "hello"}))
            .await,
        401,
    );
    // The new password gives a token that works at once; other users are not touched.
    let second = login(&app, &t, "ann@x.test", "the second password").await;
    assert_eq!(app.get("/v1/me", &second).await.status, 200);
    assert_eq!(app.get("/v1/me", &bob).await.status, 200);
    assert_eq!(app.get("/v1/me", &t.admin_token).await.status, 200);
}

async fn logout_revokes_the_token_it_carries(app: TestApp) {
    let t = app.tenant().await;
    let (_, token) = user_with_login(&app, &t, "cid@x.test", "cid's password here").await;
    let (_, other_user) = user_with_login(&app, &t, "dee@x.test", "dee's password here").await;
    assert_eq!(app.get("/v1/conversations", &token).await.status, 200);

    let out = app.post("/v1/auth/logout", &token, json!({})).await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    for path in ["/v1/me", "/v1/conversations"] {
        assert_problem(&app.get(path, &token).await, 401);
    }
    // Logging out twice with the revoked token is a 401 like any other use.
    assert_problem(&app.post("/v1/auth/logout", &token, json!({})).await, 401);
    assert_eq!(app.get("/v1/me", &other_user).await.status, 200);
    // A new login works at once.
    let again = login(&app, &t, "cid@x.test", "cid's password here").await;
    assert_eq!(app.get("/v1/me", &again).await.status, 200);
}

async fn an_api_key_is_not_logged_out(app: TestApp) {
    let t = app.tenant().await;
    let key = app
        .post("/v1/api-keys", &t.admin_token, json!({"name": "script"}))
        .await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    let key = key.body["secret"].as_str().unwrap().to_string();
    let refused = app.post("/v1/auth/logout", &key, json!({})).await;
    assert_problem(&refused, 422);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/api-keys"),
        "{:?}",
        refused.body
    );
    assert_eq!(app.get("/v1/me", &key).await.status, 200);
    // The admin's own token was not revoked by the refused logout.
    assert_eq!(app.get("/v1/me", &t.admin_token).await.status, 200);
}

on_both_backends!(
    a_password_change_revokes_the_earlier_tokens,
    logout_revokes_the_token_it_carries,
    an_api_key_is_not_logged_out,
);

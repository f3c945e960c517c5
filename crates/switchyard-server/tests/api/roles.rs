//! Roles: members on admin routes and admins on operator routes get `403`.

use axum::http::Method;
use serde_json::json;

use crate::common::{OPERATOR, TestApp, assert_problem};

#[tokio::test]
async fn each_role_stays_in_its_lane() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let any = uuid::Uuid::now_v7();
    let admin_routes = [
        (
            Method::POST,
            "/v1/users".to_string(),
            Some(json!({"email": "x@y.test", "role": "admin"})),
        ),
        (Method::GET, "/v1/users".to_string(), None),
        (Method::GET, format!("/v1/users/{}", t.admin), None),
        (
            Method::PATCH,
            format!("/v1/users/{}", t.member),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("/v1/users/{}", t.admin), None),
        (
            Method::POST,
            "/v1/api-keys".to_string(),
            Some(json!({"name": "k"})),
        ),
        (Method::GET, "/v1/api-keys".to_string(), None),
        (Method::DELETE, format!("/v1/api-keys/{any}"), None),
        (
            Method::POST,
            "/v1/agents".to_string(),
            Some(json!({"name": "a", "kind": "echo"})),
        ),
        (
            Method::PATCH,
            format!("/v1/agents/{any}"),
            Some(json!({"enabled": false})),
        ),
        (Method::DELETE, format!("/v1/agents/{any}"), None),
        (Method::GET, "/v1/conversations?all=true".to_string(), None),
        (
            Method::GET,
            format!("/v1/conversations?user_id={}", t.admin),
            None,
        ),
        (
            Method::POST,
            "/v1/agents/import".to_string(),
            Some(json!({"card_url": "http://127.0.0.1:9/.well-known/agent-card.json"})),
        ),
        (Method::GET, "/v1/analytics/routing".to_string(), None),
        (
            Method::POST,
            "/v1/routing/evaluate".to_string(),
            Some(json!({"examples": [{"message": "hi", "agent": "fallback"}]})),
        ),
        (
            Method::POST,
            "/v1/routing/replay".to_string(),
            Some(json!({})),
        ),
    ];
    for (method, path, body) in &admin_routes {
        let resp = app
            .call(method.clone(), path, Some(&t.member_token), body.clone())
            .await;
        assert_problem(&resp, 403);
    }
    // The member's role was not changed by any of that.
    assert_problem(&app.get("/v1/users", &t.member_token).await, 403);

    let operator_routes = [
        (
            Method::POST,
            "/v1/tenants".to_string(),
            Some(json!({"slug": "new-one", "name": "x"})),
        ),
        (Method::GET, "/v1/tenants".to_string(), None),
        (Method::GET, format!("/v1/tenants/{}", t.tenant), None),
        (
            Method::PATCH,
            format!("/v1/tenants/{}", t.tenant),
            Some(json!({"status": "suspended"})),
        ),
        (Method::DELETE, format!("/v1/tenants/{}", t.tenant), None),
        (Method::GET, "/metrics".to_string(), None),
    ];
    for (method, path, body) in &operator_routes {
        for token in [&t.admin_token, &t.member_token] {
            assert_problem(
                &app.call(method.clone(), path, Some(token), body.clone())
                    .await,
                403,
            );
        }
        assert_problem(
            &app.call(method.clone(), path, None, body.clone()).await,
            401,
        );
        assert_problem(
            &app.call(
                method.clone(),
                path,
                Some("not-the-operator-token"),
                body.clone(),
            )
            .await,
            401,
        );
    }
    // The tenant is still there and active.
    assert_eq!(
        app.get(&format!("/v1/tenants/{}", t.tenant), OPERATOR)
            .await
            .body["status"],
        "active"
    );
    // The operator is not a tenant user.
    assert_problem(&app.get("/v1/me", OPERATOR).await, 401);
}

#[tokio::test]
async fn without_an_operator_token_operator_routes_are_closed() {
    let mut config = crate::common::test_config();
    config.admin_token = None;
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    assert_problem(&app.get("/v1/tenants", OPERATOR).await, 401);
}

//! A tenant made over the HTTP API as an operator makes one, and its admin signed in with a
//! real login, for the tests that run the binary.

use serde_json::{Value, json};

/// The admin's password.
pub const PASSWORD: &str = "a long enough password";
/// The admin's e-mail address.
pub const EMAIL: &str = "admin@tenant.test";

/// Makes the tenant `slug` with `settings` (the operator's token `operator`) and signs its
/// admin in: the tenant's id and the admin's token.
pub async fn tenant(
    client: &reqwest::Client,
    url: &str,
    operator: &str,
    slug: &str,
    settings: Value,
) -> (String, String) {
    let created = client
        .post(format!("{url}/v1/tenants"))
        .bearer_auth(operator)
        .json(&json!({"slug": slug, "name": slug, "admin_email": EMAIL,
                      "admin_password": PASSWORD, "settings": settings}))
        .send()
        .await
        .expect("the tenant request is answered");
    assert_eq!(created.status(), 201, "the tenant {slug} is made");
    let created: Value = created.json().await.expect("a JSON tenant");
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let login = login(client, url, slug, PASSWORD).await;
    assert_eq!(login.status(), 200, "the admin of {slug} signs in");
    let login: Value = login.json().await.expect("a JSON login answer");
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, token)
}

/// The tenant's admin tries to sign in with `password`.
pub async fn login(
    client: &reqwest::Client,
    url: &str,
    slug: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{url}/v1/auth/login"))
        .json(&json!({"tenant": slug, "email": EMAIL, "password": password}))
        .send()
        .await
        .expect("the login request is answered")
}

/// Registers an agent (`body` as `POST /v1/agents` takes it) with the admin's `token`: the
/// agent as the API answers it.
pub async fn agent(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Value {
    let created = client
        .post(format!("{url}/v1/agents"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the agent request is answered");
    assert_eq!(created.status(), 201, "the agent {body} is registered");
    created.json().await.expect("a JSON agent")
}

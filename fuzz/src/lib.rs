//! What the fuzz targets share: the whole service in-process on a fresh SQLite database,
//! with a tenant (an admin, a member and an echo agent), and the one rule every answer
//! must keep — whatever arrives, the answer is not a server error, and a refusal is a
//! problem document.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use switchyard_server::{App, AppState, Config};
use tower::ServiceExt as _;

const OPERATOR: &str = "operator-token-for-the-fuzz-targets";

/// The service and the tenant's credentials.
pub struct Service {
    runtime: tokio::runtime::Runtime,
    router: Router,
    /// An admin's token.
    pub admin: String,
    /// A member's token.
    pub member: String,
}

/// The service, made once per process.
pub fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (router, admin, member) = runtime.block_on(async {
            let opened = switchyard_store::testing::sqlite_store().await;
            let config = Config {
                admin_token: Some(switchyard_server::config::Secret::new(OPERATOR)),
                jwt_secret: Some(switchyard_server::config::Secret::new(
                    "a-jwt-secret-for-the-fuzz-targets-only",
                )),
                ..Config::default()
            }
            .validated()
            .expect("a valid configuration");
            let app = App::new(config, opened).await.expect("the app");
            let state = AppState(std::sync::Arc::new(app));
            let router = switchyard_server::router(state.clone());
            let created = send(
                &router,
                "POST",
                "/v1/tenants",
                Some(OPERATOR),
                json!({"slug": "fuzz", "name": "Fuzz", "admin_email": "admin@fuzz.test",
                       "settings": {"rate_limit_per_second": 0}})
                .to_string()
                .into_bytes(),
            )
            .await;
            let body: Value = serde_json::from_slice(&created.1).expect("a tenant");
            let tenant = body["id"]
                .as_str()
                .expect("its id")
                .parse()
                .expect("a tenant id");
            let admin_id = body["admin"]["id"]
                .as_str()
                .expect("its admin")
                .parse()
                .expect("a user id");
            let admin = state.jwt.issue(tenant, admin_id, None).expect("a token").0;
            let member = send(
                &router,
                "POST",
                "/v1/users",
                Some(&admin),
                json!({"email": "member@fuzz.test", "role": "member"})
                    .to_string()
                    .into_bytes(),
            )
            .await;
            let body: Value = serde_json::from_slice(&member.1).expect("a member");
            let member_id = body["id"]
                .as_str()
                .expect("its id")
                .parse()
                .expect("a user id");
            let member = state.jwt.issue(tenant, member_id, None).expect("a token").0;
            send(
                &router,
                "POST",
                "/v1/agents",
                Some(&admin),
                json!({"name": "general", "kind": "echo", "is_fallback": true})
                    .to_string()
                    .into_bytes(),
            )
            .await;
            (router, admin, member)
        });
        Service {
            runtime,
            router,
            admin,
            member,
        }
    })
}

impl Service {
    /// Sends a request with a JSON body and checks the rule; the status and body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        self.runtime
            .block_on(send(&self.router, method, path, token, body))
    }

    /// Sends a request with raw header bytes for `Authorization`.
    pub fn call_with_authorization(
        &self,
        method: &str,
        path: &str,
        authorization: &[u8],
        body: Vec<u8>,
    ) -> (StatusCode, Vec<u8>) {
        let Ok(value) = axum::http::HeaderValue::from_bytes(authorization) else {
            // Not a header value at all: no client can send it.
            return (StatusCode::BAD_REQUEST, Vec::new());
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", value)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("a request");
        self.runtime.block_on(exchange(&self.router, request))
    }
}

async fn send(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    exchange(router, request.body(Body::from(body)).expect("a request")).await
}

/// The OpenAPI document's path template for a concrete path the targets call.
fn template(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    match path.strip_prefix("/v1/agents/") {
        Some(rest) if !rest.contains('/') => "/v1/agents/{id}".to_string(),
        _ => path.to_string(),
    }
}

/// Whether the OpenAPI document lists `status` for the operation (or a default answer).
fn documented(method: &str, path: &str, status: StatusCode) -> bool {
    static DOC: OnceLock<Value> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        serde_json::to_value(switchyard_server::openapi()).expect("the OpenAPI document")
    });
    let responses = &doc["paths"][template(path)][method.to_lowercase()]["responses"];
    responses.get(status.as_str()).is_some() || responses.get("default").is_some()
}

/// Sends `request` and checks the rule every answer keeps.
async fn exchange(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let (method, path) = (request.method().to_string(), request.uri().to_string());
    let response = router.clone().oneshot(request).await.expect("an answer");
    let status = response.status();
    // No answer the document does not announce (what a schema-driven client relies on).
    assert!(
        documented(&method, &path, status),
        "{method} {path} answered {status}, which the OpenAPI document does not list"
    );
    let problem = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes()
        .to_vec();
    assert!(
        !status.is_server_error(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    if status.is_client_error() {
        assert!(problem, "a {status} that is not a problem document");
        let doc: Value = serde_json::from_slice(&body).expect("a problem document is JSON");
        assert_eq!(doc["status"], status.as_u16());
    }
    (status, body)
}

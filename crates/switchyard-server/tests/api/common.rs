//! The test application and its actors.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use switchyard_core::{TenantId, UserId};
use switchyard_server::config::Secret;
use switchyard_server::{App, AppState, Config, router};
use switchyard_store::{Opened, OperatorScope, Store};
use tower::ServiceExt;

pub const OPERATOR: &str = "operator-token-for-tests-0123456789";
pub const JWT_SECRET: &str = "a-jwt-secret-for-tests-only-0123456789abcdef";

/// A configuration for tests: an operator token, a fixed HS256 secret, and agents allowed on
/// loopback.
pub fn test_config() -> Config {
    Config {
        admin_token: Some(Secret::new(OPERATOR)),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        // The tests' agents listen on loopback.
        agent_deny_private: Some(false),
        ..Config::default()
    }
}

/// The service, in-process.
#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    /// The operator's proof, for tests that set up or inspect what only the operator may.
    pub operator: OperatorScope,
}

/// An answer.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub raw: Vec<u8>,
    pub body: Value,
}

impl TestApp {
    pub async fn new(opened: Opened) -> Self {
        Self::with_config(opened, test_config()).await
    }

    pub async fn with_config(opened: Opened, config: Config) -> Self {
        let app = App::new(config.validated().unwrap(), opened.clone())
            .await
            .unwrap();
        let state = AppState(Arc::new(app));
        Self {
            router: router(state.clone()),
            state,
            store: opened.store,
            operator: opened.operator,
        }
    }

    pub async fn sqlite() -> Self {
        Self::new(switchyard_store::testing::sqlite_store().await).await
    }

    /// Sends a request; `body` is sent as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        self.send(request).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: Request<Body>) -> Resp {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            raw,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// A token for a user, as login would issue it.
    pub fn token(&self, tenant: TenantId, user: UserId) -> String {
        self.state.jwt.issue(tenant, user, None).unwrap().0
    }

    /// A new tenant (made over the API by the operator) with an admin and a member.
    pub async fn tenant(&self) -> Actors {
        let slug = format!("t-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let created = self
            .post(
                "/v1/tenants",
                OPERATOR,
                json!({"slug": slug, "name": "Tenant", "admin_email": format!("admin@{slug}.test")}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let tenant: TenantId = created.body["id"].as_str().unwrap().parse().unwrap();
        let admin: UserId = created.body["admin"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let admin_token = self.token(tenant, admin);
        let member = self
            .post(
                "/v1/users",
                &admin_token,
                json!({"email": format!("member@{slug}.test"), "role": "member"}),
            )
            .await;
        assert_eq!(member.status, 201, "{:?}", member.body);
        let member: UserId = member.body["id"].as_str().unwrap().parse().unwrap();
        Actors {
            tenant,
            slug,
            admin,
            member,
            admin_token,
            member_token: self.token(tenant, member),
        }
    }
}

/// A tenant with an admin and a member, and their tokens.
#[derive(Clone, Debug)]
pub struct Actors {
    pub tenant: TenantId,
    pub slug: String,
    pub admin: UserId,
    pub member: UserId,
    pub admin_token: String,
    pub member_token: String,
}

/// Asserts the answer is a problem document with `status`.
pub fn assert_problem(resp: &Resp, status: u16) {
    assert_eq!(resp.status.as_u16(), status, "{:?}", resp.body);
    assert_eq!(
        resp.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{:?}",
        resp.body
    );
    assert_eq!(resp.body["status"], status);
    assert!(
        resp.body["type"]
            .as_str()
            .unwrap()
            .starts_with("https://switchyard.dev/problems/")
    );
    assert!(resp.body["title"].is_string() && resp.body["detail"].is_string());
}

/// Runs an async scenario `fn(TestApp)` on SQLite and on PostgreSQL.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::common::TestApp::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(store) = switchyard_store::testing::postgres_store().await {
                        super::$scenario($crate::common::TestApp::new(store).await).await;
                    }
                }
            )*
        }
    };
}

pub(crate) use on_both_backends;

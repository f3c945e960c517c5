//! Errors as RFC 9457 problem documents (`application/problem+json`).
//!
//! Every failure of a request becomes one [`ApiError`]. Its body says what the client can
//! act on; what it must not see (database errors, agent internals) rides on the response as
//! an [`ErrorLog`] extension, which the request logger writes once, inside the request's
//! span.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchyard_agents::AgentError;
use switchyard_core::routing::RouteError;
use switchyard_store::StoreError;

use crate::routing::RoutingError;
use crate::turn::{MessageError, TurnError};
use utoipa::ToSchema;

/// A problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
}

/// The prefix of every problem type URI.
pub const PROBLEM_BASE: &str = "https://switchyard.dev/problems/";

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The status to answer with.
    pub status: StatusCode,
    /// The problem type's last path segment (`not-found`).
    pub kind: &'static str,
    /// The problem's title.
    pub title: &'static str,
    /// What the client is told.
    pub detail: String,
    /// Seconds until a retry may succeed (`Retry-After`).
    pub retry_after: Option<u64>,
    /// What only the log is told.
    pub internal: Option<String>,
}

/// The part of an error that goes to the log, not the client.
#[derive(Clone, Debug)]
pub struct ErrorLog(pub String);

/// The API's result.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            retry_after: None,
            internal: None,
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    /// 401: no valid credential. One body for every reason, so it tells an attacker nothing.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "a valid bearer token or API key is required",
        )
    }

    /// 401 for a failed login: the same answer whether the tenant, the e-mail or the
    /// password was wrong.
    pub fn bad_login() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "invalid tenant, e-mail or password",
        )
    }

    /// 403: authenticated, but not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 404: nothing there — or something of another tenant, which is the same answer.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no such resource",
        )
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 409: a conversation limit is reached.
    pub fn limit_reached(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "limit-reached",
            "Conversation limit reached",
            detail,
        )
    }

    /// 413: the body is too large.
    pub fn too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            "the request body is larger than the server accepts",
        )
    }

    /// 415: the body is not JSON.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            "the request body must be JSON (Content-Type: application/json)",
        )
    }

    /// 422: well-formed, but the values are not acceptable.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "Unprocessable request",
            detail,
        )
    }

    /// 429: too many requests; retry after `seconds`.
    pub fn too_many_requests(detail: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
                detail,
            )
        }
    }

    /// 503: a dependency (the database) is unavailable; retry shortly.
    pub fn unavailable(internal: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            internal: Some(internal.into()),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "the service cannot reach its database; retry shortly",
            )
        }
    }

    /// 500: a bug or a broken dependency. The client learns nothing internal.
    pub fn internal(internal: impl Into<String>) -> Self {
        Self {
            internal: Some(internal.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "the request failed on the server; it has been logged",
            )
        }
    }

    /// Builds an error of any kind.
    pub fn custom(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(status, kind, title, detail)
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("{PROBLEM_BASE}{}", self.kind),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.kind, self.detail)?;
        if let Some(internal) = &self.internal {
            write!(f, " ({internal})")?;
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read, so the connection cannot carry another
            // request: say so, and the client will not send its next one on it.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.internal.is_some() || self.status.is_server_error() {
            response.extensions_mut().insert(ErrorLog(self.to_string()));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Forbidden => ApiError::forbidden("your role may not do this"),
            StoreError::Conflict { constraint } => ApiError::conflict(match constraint {
                "tenant_slug" => "a tenant with this slug already exists",
                "user_email" => "a user with this e-mail address already exists in the tenant",
                "agent_name" => "an agent with this name already exists in the tenant",
                "agent_fallback" => "the tenant already has an enabled fallback agent",
                _ => "the request conflicts with an existing resource",
            }),
            StoreError::LimitReached { which, limit } => ApiError::limit_reached(match which {
                "per_user" => format!(
                    "you have reached the limit of {limit} conversations; delete one to start another"
                ),
                "agents" => format!("the tenant has reached its limit of {limit} agents"),
                "users" => format!("the tenant has reached its limit of {limit} users"),
                "api_keys" => format!("the tenant has reached its limit of {limit} API keys"),
                _ => format!("the tenant has reached its limit of {limit} conversations"),
            }),
            StoreError::Invalid(e) => ApiError::unprocessable(e),
            StoreError::Unavailable(e) => ApiError::unavailable(e),
            StoreError::Config(e) | StoreError::Other(e) => ApiError::internal(e),
        }
    }
}

impl From<MessageError> for ApiError {
    fn from(err: MessageError) -> Self {
        ApiError::unprocessable(err.to_string())
    }
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        match err {
            // A pinned agent that is not one of this tenant's enabled agents is not found,
            // whatever tenant it belongs to.
            RouteError::UnknownAgent(_) => ApiError::not_found(),
            RouteError::NoAgents => ApiError::custom(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-agent",
                "No agent available",
                "the tenant has no enabled agent to answer",
            ),
            RouteError::NoneAvailable => ApiError::custom(
                StatusCode::SERVICE_UNAVAILABLE,
                "circuit-open",
                "Agents unavailable",
                "every agent that could answer is failing; retry later",
            ),
        }
    }
}

impl From<RoutingError> for ApiError {
    fn from(err: RoutingError) -> Self {
        match err {
            RoutingError::Store(e) => e.into(),
            RoutingError::Route(e) => e.into(),
            RoutingError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl From<TurnError> for ApiError {
    fn from(err: TurnError) -> Self {
        match err {
            TurnError::Store(e) => e.into(),
            TurnError::Route(e) => e.into(),
            TurnError::Busy => {
                ApiError::too_many_requests("the tenant has too many agent calls in flight", 1)
            }
            TurnError::Agent { agent, error } => agent_failure(&agent, &error),
            TurnError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// The problem for an agent that could not answer, with no one left to take over.
fn agent_failure(agent: &str, e: &AgentError) -> ApiError {
    let detail = format!("agent {agent:?} could not answer: {e}");
    match e {
        AgentError::Failed(_) | AgentError::Status { .. } => ApiError::custom(
            StatusCode::BAD_GATEWAY,
            "agent-failed",
            "Agent failed",
            detail,
        ),
        AgentError::Timeout(_) => ApiError::custom(
            StatusCode::GATEWAY_TIMEOUT,
            "agent-timeout",
            "Agent timed out",
            detail,
        ),
        AgentError::CircuitOpen => ApiError::custom(
            StatusCode::SERVICE_UNAVAILABLE,
            "circuit-open",
            "Agent unavailable",
            detail,
        ),
    }
}

//! Errors of the OpenAI door in OpenAI's shape, `{"error": {"message", "type", "code",
//! "param"}}`: the door's own, and those the service answers on its paths (an unknown path
//! under them, a wrong method, the request's time limit).

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;

/// An error in OpenAI's shape, naming the request field it is about where there is one.
#[derive(Debug)]
pub struct OpenAiError {
    /// Boxed: an error is rare, and the `Result`s that carry it stay small.
    error: Box<ApiError>,
    /// The request field the error is about.
    param: Option<&'static str>,
    /// Whether the answer tells the client not to retry at once (`x-should-retry: false`).
    no_retry: bool,
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        Self {
            error: Box::new(error),
            param: None,
            no_retry: false,
        }
    }
}

impl OpenAiError {
    /// `error`, about the request field `param`.
    pub(super) fn about(error: ApiError, param: &'static str) -> Self {
        Self {
            param: Some(param),
            ..Self::from(error)
        }
    }
}

/// The OpenAI clients' header that turns their automatic retry off.
static SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

/// A turn's failure as this door answers it: an open circuit (the agents that could answer
/// are passed over until their circuits' time is up: `Retry-After` that long) and a pinned
/// agent that timed out (no other may answer for it) are not helped by a retry at once, and
/// say `x-should-retry: false`.
pub(super) fn turn_failure(
    state: &AppState,
    error: crate::turn::TurnError,
    pinned: bool,
) -> OpenAiError {
    let mut error = ApiError::from(error);
    let no_retry = match error.kind {
        "circuit-open" => {
            error.retry_after = Some(state.config.circuit_open_seconds);
            true
        }
        "agent-timeout" => pinned,
        _ => false,
    };
    OpenAiError {
        no_retry,
        ..OpenAiError::from(error)
    }
}

/// A `400 invalid_request_error` about the request field `param`.
pub(super) fn invalid_param(param: &'static str, message: &str) -> OpenAiError {
    OpenAiError::about(
        ApiError::custom(
            StatusCode::BAD_REQUEST,
            "unsupported_parameter",
            "Bad request",
            message,
        ),
        param,
    )
}

/// OpenAI's error `type` for a status.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        400 | 404 | 405 | 408 | 409 | 413 | 415 | 422 => "invalid_request_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

impl OpenAiError {
    pub(super) fn body(&self) -> Value {
        let e = &self.error;
        let code = if e.status == StatusCode::UNAUTHORIZED {
            "invalid_api_key"
        } else {
            e.kind
        };
        json!({"error": {"message": e.detail, "type": error_type(e.status), "code": code, "param": self.param}})
    }
}

/// Whether a path is the OpenAI door's: `/v1/chat/completions` and `/v1/models`, and
/// anything under them.
fn is_door(path: &str) -> bool {
    ["/v1/chat/completions", "/v1/models"].iter().any(|door| {
        path.strip_prefix(door)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The answer to `error` on `path`: in OpenAI's shape on the door's paths (an unknown path
/// under them, a wrong method, the request's time limit), a problem document elsewhere —
/// so that every error a client of the door sees is one its library reads.
pub fn error_for(path: &str, error: ApiError) -> Response {
    if is_door(path) {
        OpenAiError::from(error).into_response()
    } else {
        error.into_response()
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.error.status, Json(body)).into_response();
        if let Some(seconds) = self.error.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The official clients retry 5xx answers by themselves unless told not to: where a
        // retry at once cannot help, say so, rather than multiply the failure.
        if self.no_retry {
            response
                .headers_mut()
                .insert(SHOULD_RETRY.clone(), HeaderValue::from_static("false"));
        }
        // The request log writes the detail of server errors once, as for problems.
        if self.error.status.is_server_error() || self.error.internal.is_some() {
            response
                .extensions_mut()
                .insert(crate::error::ErrorLog(self.error.to_string()));
        }
        response
    }
}

//! The v1 API's handlers, one file per resource. Each handler is named `<verb>_<resource>`,
//! which is also its OpenAPI operation id.

pub mod agents;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod chat;
pub mod conversations;
pub mod health;
pub mod openai_compat;
pub mod tenants;
pub mod users;

use axum::http::StatusCode;

/// The answer of a successful delete.
pub(crate) fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

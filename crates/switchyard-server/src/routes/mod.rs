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
pub mod routing;
pub mod tenants;
pub mod users;

use axum::http::StatusCode;

/// The answer of a successful delete.
pub(crate) fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Refuses a new one of `kind` when the tenant already has its quota (its own setting, else
/// the server's): `409 …/limit-reached`. The count and the insert are not one transaction,
/// so requests racing each other may pass a quota by the few of them.
pub(crate) async fn check_quota(
    state: &crate::app::AppState,
    principal: &crate::auth::Principal,
    kind: switchyard_store::Owned,
) -> crate::error::ApiResult<()> {
    use switchyard_store::Owned;
    let (s, c) = (&principal.tenant.settings, &state.config);
    let (limit, which) = match kind {
        Owned::Agents => (s.max_agents.unwrap_or(c.max_agents_per_tenant), "agents"),
        Owned::Users => (s.max_users.unwrap_or(c.max_users_per_tenant), "users"),
        Owned::ApiKeys => (
            s.max_api_keys.unwrap_or(c.max_api_keys_per_tenant),
            "api_keys",
        ),
    };
    let count = state.store.count_owned(&principal.scope, kind).await?;
    if count >= limit {
        return Err(switchyard_store::StoreError::LimitReached { which, limit }.into());
    }
    Ok(())
}

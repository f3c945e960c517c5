//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame: title, version, security scheme, tags. The paths come from the
/// handlers registered in [`crate::api_router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "A multi-tenant orchestrator for AI agents: it routes each chat message of a \
                       tenant's user to the best of that tenant's agents, and keeps every \
                       conversation isolated per tenant."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Login and the caller"),
        (name = "tenants", description = "Tenants (platform operator)"),
        (name = "users", description = "Users of the tenant (admins)"),
        (name = "api-keys", description = "API keys of the tenant (admins)"),
        (name = "agents", description = "Agents of the tenant"),
        (name = "chat", description = "Orchestrated chat turns and routing"),
        (name = "conversations", description = "Conversations and their turns"),
        (name = "analytics", description = "Routing figures of the tenant (admins)"),
        (name = "openai", description = "The OpenAI chat-completions dialect, for existing clients"),
        (name = "health", description = "Liveness, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A JWT from /v1/auth/login or an identity provider, an API key (sy_…), or the operator's token"))
                    .build(),
            ),
        );
    }
}

/// Gives every response a `description`, which OpenAPI 3.1 requires: the status's reason
/// phrase where the handler's annotation wrote none.
pub fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, response) in operation.responses.responses.iter_mut() {
                if let utoipa::openapi::RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("The answer")
                        .to_owned();
                }
            }
        }
    }
}

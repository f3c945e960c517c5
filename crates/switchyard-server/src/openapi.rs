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
        (name = "routing", description = "The routing lab: routing measured on labelled messages, changes tried before they are made (admins)"),
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

/// The refusals every operation of a kind may answer, whatever its handler: they come
/// from the extractors and layers it shares with the others (docs/operations.md, Security).
fn common_refusals(
    authenticated: bool,
    has_body: bool,
    has_path_id: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut refusals = Vec::new();
    if authenticated {
        refusals.extend([
            ("401", "No valid credential (missing, malformed, expired, revoked or unknown)"),
            ("403", "The tenant is suspended, the user disabled, or the route is not for this role"),
            ("429", "Over the tenant's rate limit, or too many unknown API keys from this address; see Retry-After"),
            ("503", "The database is unavailable; retry later"),
        ]);
    }
    if has_body {
        refusals.extend([
            (
                "400",
                "The body is not JSON (or not UTF-8, or holds an unpaired surrogate)",
            ),
            ("408", "The body did not arrive in time"),
            ("413", "The body is larger than the limit"),
            ("415", "The body is not application/json"),
            (
                "422",
                "A field is missing, unknown, of the wrong type or value, or holds a NUL character",
            ),
        ]);
    }
    if has_path_id {
        refusals.push(("404", "Not found (or another tenant's)"));
    }
    refusals
}

/// Completes every operation's responses: each gets a `description`, which OpenAPI 3.1
/// requires (the status's reason phrase where the handler's annotation wrote none), and each
/// lists the refusals its extractors can answer (a `401` of an authenticated route, a `422`
/// of one with a body…) as problem documents, so that no answer contradicts the document.
/// The OpenAI door keeps what its handlers list (its errors are OpenAI's shape).
pub fn describe_responses(doc: &mut utoipa::openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_path_id = path.contains('{');
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
            let openai = operation
                .tags
                .as_ref()
                .is_some_and(|tags| tags.iter().any(|t| t == "openai"));
            if !openai {
                let authenticated = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some();
                for (status, description) in common_refusals(authenticated, has_body, has_path_id) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem_response(description));
                }
            }
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

/// A response whose body is a problem document.
fn problem_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

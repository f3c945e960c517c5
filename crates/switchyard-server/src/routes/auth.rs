//! Login, logout and `/v1/me`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};

use crate::api::{Login, Me, MeTenant, MeUser, TokenOut};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// Exchanges a tenant's slug, an e-mail address and a password for a token.
///
/// A wrong tenant, e-mail or password all give the same `401`, after the same work. After
/// 10 failures for one tenant and e-mail within 5 minutes, logins for them answer `429`
/// until the window has passed; so do logins from one client address after 600 attempts in
/// a minute (`SWITCHYARD_LOGIN_ATTEMPTS_PER_ADDRESS`) or 50 failures in 5 minutes, and logins that find every password-check slot
/// busy for 2 seconds. Each `429` has `Retry-After`.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, body = TokenOut),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Json<TokenOut>> {
    let email = body.email.trim().to_lowercase();
    let tenant_slug = body.tenant.trim().to_lowercase();
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let found = crate::auth::login(&state, &tenant_slug, &email, body.password, address).await?;
    let (access_token, expires_in) = state.jwt.issue(found.tenant.id, found.user.id, None)?;
    Ok(Json(TokenOut {
        access_token,
        token_type: "Bearer",
        expires_in,
    }))
}

/// Signs out: revokes the token the request carries and every other token its user was
/// issued until now (every session of the user; API keys are not tokens and stay valid —
/// they are revoked with `DELETE /v1/api-keys/{id}`). The next use of such a token is `401`;
/// a login gives a new one.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The user's tokens until now are revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_tokens(
    principal: Principal,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    if crate::auth::bearer(&headers).is_some_and(|t| t.starts_with(crate::auth::API_KEY_MARKER)) {
        return Err(ApiError::unprocessable(
            "an API key is not a session: revoke it with DELETE /v1/api-keys/{id}",
        ));
    }
    state
        .store
        .revoke_own_tokens(&principal.scope, chrono::Utc::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who the credential belongs to.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_me(principal: Principal) -> Json<Me> {
    let Principal { user, tenant, .. } = principal;
    Json(Me {
        user: MeUser {
            id: user.id.as_uuid(),
            email: user.email,
            display_name: user.display_name,
            role: user.role.as_str().into(),
            status: user.status.as_str().into(),
        },
        tenant: MeTenant {
            id: tenant.id.as_uuid(),
            slug: tenant.slug,
            name: tenant.name,
            status: tenant.status.as_str().into(),
        },
    })
}

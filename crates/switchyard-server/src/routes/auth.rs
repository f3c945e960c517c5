//! Login and `/v1/me`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::{Extension, Json};

use crate::api::{Login, Me, MeTenant, MeUser, TokenOut};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiResult, Problem};
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

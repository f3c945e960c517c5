//! Login and `/v1/me`.

use axum::Json;
use axum::extract::State;
use switchyard_store::StoreError;

use crate::api::{Login, Me, MeTenant, MeUser, TokenOut};
use crate::app::AppState;
use crate::auth::{Principal, verify_password};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::ApiJson;

/// Exchanges a tenant's slug, an e-mail address and a password for a token.
///
/// A wrong tenant, e-mail or password all give the same `401`, after the same work. After
/// 10 failures for one tenant and e-mail within 5 minutes, logins for them answer `429`
/// until the window has passed.
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
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Json<TokenOut>> {
    let email = body.email.trim().to_lowercase();
    let tenant_slug = body.tenant.trim().to_lowercase();
    if let Some(seconds) = state.login_limiter.locked_for(&tenant_slug, &email) {
        return Err(ApiError::too_many_requests(
            "too many failed logins; try again later",
            seconds,
        ));
    }
    let found = match state.store.find_login(&tenant_slug, &email).await {
        Ok(found) => Some(found),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let hash = found.as_ref().and_then(|f| f.password_hash.clone());
    let password = body.password;
    // argon2 is slow on purpose; keep it off the request threads. The check runs (against
    // a dummy hash) even when there is no such user, so that all failures take as long.
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("password check: {e}")))?;
    let found = match found {
        Some(f) if matches => f,
        _ => {
            state.login_limiter.failed(&tenant_slug, &email);
            return Err(ApiError::bad_login());
        }
    };
    // The password was right: tell the user why they may not in, as every request would.
    if found.principal.tenant.status != switchyard_core::model::TenantStatus::Active {
        return Err(ApiError::forbidden("the tenant is suspended"));
    }
    if found.principal.user.status != switchyard_core::model::UserStatus::Active {
        return Err(ApiError::forbidden("the user is disabled"));
    }
    state.login_limiter.succeeded(&tenant_slug, &email);
    let (access_token, expires_in) =
        state
            .jwt
            .issue(found.principal.tenant.id, found.principal.user.id, None)?;
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

//! Tenants: the platform operator's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::model::{NewTenant, NewUser, TenantPatch, TenantStatus};
use switchyard_core::settings::TenantSettings;
use switchyard_core::{Role, TenantId};
use uuid::Uuid;

use crate::api::{CreateTenant, CreatedTenant, List, PageParams, PatchTenant, TenantOut, UserOut};
use crate::app::AppState;
use crate::auth::{Operator, hash_password};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, page_request};
use crate::validate::{is_slug, name_problem, normalize_email, password_problem};

/// Creates a tenant, and its first admin when `admin_email` is given.
#[utoipa::path(
    post,
    path = "/v1/tenants",
    tag = "tenants",
    security(("bearer" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, body = CreatedTenant),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_tenant(
    Operator(operator): Operator,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateTenant>,
) -> ApiResult<(StatusCode, Json<CreatedTenant>)> {
    if !is_slug(&body.slug) {
        return Err(ApiError::unprocessable(
            "`slug` must be 2 to 63 of a-z, 0-9 and -, starting with a letter or digit",
        ));
    }
    if let Some(problem) = name_problem("name", &body.name, 200) {
        return Err(ApiError::unprocessable(problem));
    }
    let settings = match &body.settings {
        Some(map) => TenantSettings::default()
            .merged(map)
            .map_err(|e| ApiError::unprocessable(e.to_string()))?,
        None => TenantSettings::default(),
    };
    let first_admin = match (body.admin_email, body.admin_password) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "`admin_password` needs `admin_email`",
            ));
        }
        (Some(email), password) => {
            let email = normalize_email(&email)
                .ok_or_else(|| ApiError::unprocessable("`admin_email` is not an e-mail address"))?;
            let password_hash = match password {
                Some(p) => {
                    if let Some(problem) = password_problem(&p) {
                        return Err(ApiError::unprocessable(problem));
                    }
                    Some(
                        tokio::task::spawn_blocking(move || hash_password(&p))
                            .await
                            .map_err(|e| ApiError::internal(e.to_string()))??,
                    )
                }
                None => None,
            };
            Some(NewUser {
                email,
                display_name: None,
                role: Role::Admin,
                password_hash,
            })
        }
    };
    let (tenant, admin) = state
        .store
        .create_tenant(
            &operator,
            NewTenant {
                slug: body.slug,
                name: body.name.trim().to_string(),
                settings,
            },
            first_admin,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            tenant: tenant.into(),
            admin: admin.map(UserOut::from),
        }),
    ))
}

/// Lists tenants, oldest first.
#[utoipa::path(
    get,
    path = "/v1/tenants",
    tag = "tenants",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = List<TenantOut>), (status = 400, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_tenants(
    Operator(operator): Operator,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<TenantOut>>> {
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let tenants = state.store.list_tenants(&operator, page).await?;
    Ok(Json(List::from_page(tenants, TenantOut::from)))
}

/// Reads a tenant.
#[utoipa::path(
    get,
    path = "/v1/tenants/{id}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The tenant's id, or its slug")),
    responses((status = 200, body = TenantOut), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_tenant(
    Operator(operator): Operator,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Json<TenantOut>> {
    Ok(Json(tenant_of(&state, &operator, &key).await?.into()))
}

/// The tenant a path names by its id or its slug.
async fn tenant_of(
    state: &AppState,
    operator: &switchyard_store::OperatorScope,
    key: &str,
) -> ApiResult<switchyard_core::model::Tenant> {
    Ok(match Uuid::try_parse(key) {
        Ok(id) => state.store.get_tenant(operator, TenantId::from(id)).await?,
        Err(_) => state.store.find_tenant_by_slug(operator, key).await?,
    })
}

/// Renames, suspends or reactivates a tenant, or changes its settings (each key given
/// replaces that key; `null` removes it).
#[utoipa::path(
    patch,
    path = "/v1/tenants/{id}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The tenant's id, or its slug")),
    request_body = PatchTenant,
    responses(
        (status = 200, body = TenantOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_tenant(
    Operator(operator): Operator,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<PatchTenant>,
) -> ApiResult<Json<TenantOut>> {
    let id = tenant_of(&state, &operator, &key).await?.id;
    if let Some(name) = &body.name
        && let Some(problem) = name_problem("name", name, 200)
    {
        return Err(ApiError::unprocessable(problem));
    }
    let status = match body.status.as_deref() {
        None => None,
        Some(s) => Some(
            TenantStatus::parse(s)
                .ok_or_else(|| ApiError::unprocessable("`status` must be active or suspended"))?,
        ),
    };
    let tenant = state
        .store
        .update_tenant(
            &operator,
            id,
            TenantPatch {
                name: body.name.map(|n| n.trim().to_string()),
                status,
                settings: body.settings,
            },
        )
        .await?;
    // This replica's limits follow the new settings at once (others on the tenant's next
    // request that reaches the database).
    state.limits.refresh(&state.config, &tenant);
    Ok(Json(tenant.into()))
}

/// Erases a tenant and every row it owns.
#[utoipa::path(
    delete,
    path = "/v1/tenants/{id}",
    tag = "tenants",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The tenant's id, or its slug")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_tenant(
    Operator(operator): Operator,
    State(state): State<AppState>,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let id = tenant_of(&state, &operator, &key).await?.id;
    state.store.delete_tenant(&operator, id).await?;
    Ok(super::no_content())
}

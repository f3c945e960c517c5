//! API keys of the admin's tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::model::NewApiKey;
use switchyard_core::{ApiKeyId, UserId};
use uuid::Uuid;

use crate::api::{ApiKeyOut, CreateApiKey, CreatedApiKey, List, PageParams};
use crate::app::AppState;
use crate::auth::{Admin, new_api_key};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, page_request};
use crate::validate::name_problem;

/// Creates an API key acting as a user of the tenant (default: the caller). The secret is
/// in this answer only; the server keeps its hash.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The tenant has as many API keys as it may"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_api_key(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<CreatedApiKey>)> {
    if let Some(problem) = name_problem("name", &body.name, 100) {
        return Err(ApiError::unprocessable(problem));
    }
    let user_id = body.user_id.map_or(admin.scope.user_id(), UserId::from);
    super::check_quota(&state, &admin, switchyard_store::Owned::ApiKeys).await?;
    let (secret, prefix, secret_hash) = new_api_key(admin.scope.tenant_id());
    let key = state
        .store
        .create_api_key(
            &admin.scope,
            NewApiKey {
                id: ApiKeyId::new(),
                user_id,
                name: body.name.trim().to_string(),
                prefix,
                secret_hash,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: key.id.as_uuid(),
            name: key.name,
            user_id: key.user_id.as_uuid(),
            prefix: key.prefix,
            created_at: key.created_at,
            secret,
        }),
    ))
}

/// Lists the tenant's API keys that are not revoked.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = List<ApiKeyOut>))
)]
pub async fn list_api_keys(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<ApiKeyOut>>> {
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let keys = state.store.list_api_keys(&admin.scope, page).await?;
    Ok(Json(List::from_page(keys, ApiKeyOut::from)))
}

/// Revokes an API key: it authenticates nothing from now on.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_api_key(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_api_key(&admin.scope, ApiKeyId::from(id))
        .await?;
    Ok(super::no_content())
}

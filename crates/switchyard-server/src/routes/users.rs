//! Users of the admin's tenant.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use switchyard_core::model::{NewUser, UserPatch, UserStatus};
use switchyard_core::{Role, UserId};
use uuid::Uuid;

use crate::api::{CreateUser, List, PageParams, PatchUser, UserOut};
use crate::app::AppState;
use crate::auth::{Admin, hash_password};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, page_request};
use crate::validate::{name_problem, normalize_email, password_problem};

fn role(s: &str) -> Result<Role, ApiError> {
    Role::parse(s).ok_or_else(|| ApiError::unprocessable("`role` must be member or admin"))
}

async fn hashed(password: Option<String>) -> ApiResult<Option<String>> {
    match password {
        None => Ok(None),
        Some(p) => {
            if let Some(problem) = password_problem(&p) {
                return Err(ApiError::unprocessable(problem));
            }
            let hash = tokio::task::spawn_blocking(move || hash_password(&p))
                .await
                .map_err(|e| ApiError::internal(e.to_string()))??;
            Ok(Some(hash))
        }
    }
}

/// Creates a user in the tenant.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = UserOut),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_user(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    let email = normalize_email(&body.email)
        .ok_or_else(|| ApiError::unprocessable("`email` is not an e-mail address"))?;
    if let Some(name) = &body.display_name
        && let Some(problem) = name_problem("display_name", name, 200)
    {
        return Err(ApiError::unprocessable(problem));
    }
    let role = role(&body.role)?;
    super::check_quota(&state, &admin, switchyard_store::Owned::Users).await?;
    let password_hash = hashed(body.password).await?;
    let user = state
        .store
        .create_user(
            &admin.scope,
            NewUser {
                email,
                display_name: body.display_name,
                role,
                password_hash,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// Lists the tenant's users, oldest first.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    security(("bearer" = [])),
    params(PageParams),
    responses((status = 200, body = List<UserOut>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_users(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<UserOut>>> {
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let users = state.store.list_users(&admin.scope, page).await?;
    Ok(Json(List::from_page(users, UserOut::from)))
}

/// Reads a user of the tenant.
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    responses((status = 200, body = UserOut), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_user(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<UserOut>> {
    Ok(Json(
        state
            .store
            .get_user(&admin.scope, UserId::from(id))
            .await?
            .into(),
    ))
}

/// Changes a user's name, role, status or password.
#[utoipa::path(
    patch,
    path = "/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    request_body = PatchUser,
    responses(
        (status = 200, body = UserOut),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_user(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<PatchUser>,
) -> ApiResult<Json<UserOut>> {
    let id = UserId::from(id);
    if let Some(Some(name)) = &body.display_name
        && let Some(problem) = name_problem("display_name", name, 200)
    {
        return Err(ApiError::unprocessable(problem));
    }
    let role = body.role.as_deref().map(role).transpose()?;
    let status = match body.status.as_deref() {
        None => None,
        Some(s) => Some(
            UserStatus::parse(s)
                .ok_or_else(|| ApiError::unprocessable("`status` must be active or disabled"))?,
        ),
    };
    // An admin cannot lock themselves out by accident.
    if id == admin.scope.user_id()
        && (role == Some(Role::Member) || status == Some(UserStatus::Disabled))
    {
        return Err(ApiError::unprocessable(
            "you cannot demote or disable yourself",
        ));
    }
    let password_hash = hashed(body.password).await?;
    let user = state
        .store
        .update_user(
            &admin.scope,
            id,
            UserPatch {
                display_name: body.display_name,
                role,
                status,
                password_hash,
            },
        )
        .await?;
    Ok(Json(user.into()))
}

/// Deletes a user with their conversations and API keys.
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The user's id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_user(
    Admin(admin): Admin,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let id = UserId::from(id);
    if id == admin.scope.user_id() {
        return Err(ApiError::unprocessable("you cannot delete yourself"));
    }
    state.store.delete_user(&admin.scope, id).await?;
    Ok(super::no_content())
}

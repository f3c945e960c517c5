//! Conversations and their turns.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use switchyard_core::{ConversationId, UserId};
use switchyard_store::{ConversationFilter, FirstRead, FirstReadResult};
use utoipa::IntoParams;
use uuid::Uuid;

use super::tenants::PageParams;
use crate::api::{ConversationDetail, ConversationOut, List, TurnOut};
use crate::app::AppState;
use crate::auth::{Credential, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery, page_request};

/// The conversation list's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListConversationsParams {
    /// Rows per page (1 to 100, default 20).
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Admins: one user's conversations.
    pub user_id: Option<String>,
    /// Admins: `true` for every conversation of the tenant.
    pub all: Option<String>,
}

/// The caller's conversations, latest activity first; admins may ask for one user's
/// (`user_id`) or the whole tenant's (`all=true`).
#[utoipa::path(
    get,
    path = "/v1/conversations",
    tag = "conversations",
    security(("bearer" = [])),
    params(ListConversationsParams),
    responses(
        (status = 200, body = List<ConversationOut>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_conversations(
    credential: Credential,
    State(state): State<AppState>,
    params: Result<ApiQuery<ListConversationsParams>, ApiError>,
) -> ApiResult<Json<List<ConversationOut>>> {
    let params = match params {
        Ok(ApiQuery(params)) => params,
        Err(refusal) => return credential.refuse(&state, refusal).await,
    };
    // The caller's own list, the common case, is read with the authentication.
    if params.all.is_none() && params.user_id.is_none() {
        let page = match page_request(params.limit.as_deref(), params.cursor.as_deref()) {
            Ok(page) => page,
            Err(refusal) => return credential.refuse(&state, refusal).await,
        };
        let (_, read) = credential
            .authenticate_and_read(&state, FirstRead::OwnConversations(page))
            .await?;
        let conversations = read.and_then(FirstReadResult::into_conversations)?;
        return Ok(Json(List::from_page(conversations, ConversationOut::from)));
    }
    let principal = credential.authenticate(&state).await?;
    // A member may not ask about others' conversations at all, whatever the value (DESIGN
    // §3): checked before the values are read, so a malformed one is a 403 too.
    if !principal.scope.is_admin() {
        return Err(ApiError::forbidden(
            "only admins may list other users' conversations",
        ));
    }
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let all = match params.all.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`all` must be true or false, got {other:?}"
            )));
        }
    };
    let user = match params.user_id.as_deref() {
        None => None,
        Some(text) => {
            Some(UserId::from(Uuid::try_parse(text).map_err(|_| {
                ApiError::bad_request("`user_id` must be a UUID")
            })?))
        }
    };
    let filter = match (all, user) {
        (true, Some(_)) => return Err(ApiError::bad_request("give `all` or `user_id`, not both")),
        (true, None) => ConversationFilter::All,
        (false, Some(user)) => {
            // A user who is not in the tenant is not found, like any other foreign id.
            state.store.get_user(&principal.scope, user).await?;
            ConversationFilter::User(user)
        }
        (false, None) => ConversationFilter::Own,
    };
    let conversations = state
        .store
        .list_conversations(&principal.scope, filter, page)
        .await?;
    Ok(Json(List::from_page(conversations, ConversationOut::from)))
}

/// A conversation with the first page of its turns, oldest first (`limit` sizes the page).
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id"), PageParams),
    responses((status = 200, body = ConversationDetail), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn get_conversation(
    credential: Credential,
    State(state): State<AppState>,
    id: Result<ApiPath<Uuid>, ApiError>,
    params: Result<ApiQuery<PageParams>, ApiError>,
) -> ApiResult<Json<ConversationDetail>> {
    let request = id.and_then(|ApiPath(id)| {
        let ApiQuery(params) = params?;
        let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
        Ok((ConversationId::from(id), page))
    });
    let (id, page) = match request {
        Ok(request) => request,
        Err(refusal) => return credential.refuse(&state, refusal).await,
    };
    let (_, read) = credential
        .authenticate_and_read(&state, FirstRead::Turns(id, page))
        .await?;
    let (conversation, turns) = read.and_then(FirstReadResult::into_turns)?;
    Ok(Json(ConversationDetail {
        conversation: conversation.into(),
        messages: List::from_page(turns, TurnOut::from),
    }))
}

/// More turns of a conversation, oldest first.
#[utoipa::path(
    get,
    path = "/v1/conversations/{id}/messages",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id"), PageParams),
    responses((status = 200, body = List<TurnOut>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn list_messages(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<List<TurnOut>>> {
    let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
    let (_, turns) = state
        .store
        .list_turns(&principal.scope, ConversationId::from(id), page)
        .await?;
    Ok(Json(List::from_page(turns, TurnOut::from)))
}

/// Deletes a conversation and its turns.
#[utoipa::path(
    delete,
    path = "/v1/conversations/{id}",
    tag = "conversations",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
pub async fn delete_conversation(
    principal: Principal,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_conversation(&principal.scope, ConversationId::from(id))
        .await?;
    Ok(super::no_content())
}

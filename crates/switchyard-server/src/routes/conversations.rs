//! Conversations and their turns.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use switchyard_core::model::{Conversation, Turn};
use switchyard_core::page::{Page, PageRequest};
use switchyard_core::{ConversationId, UserId};
use switchyard_store::{ConversationFilter, FirstRead, FirstReadResult, StoreResult};
use uuid::Uuid;

use crate::api::{
    ConversationDetail, ConversationOut, List, ListConversationsParams, PageParams, TurnOut,
};
use crate::app::AppState;
use crate::auth::{Authed, AuthedRead, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiPath, ApiQuery, page_request};

/// Which conversations a list shows, as the request asks.
pub enum AskedList {
    /// The caller's own, the common case: read with the authentication.
    Own(PageRequest),
    /// Another user's, or the whole tenant's (admins only): read after it.
    Others(ListConversationsParams),
}

/// A conversation list: the caller's own page, read with the authentication, or what an
/// admin asked for.
pub enum ConversationList {
    /// The caller's own conversations.
    Own(Page<Conversation>),
    /// Which others' to list, and the page.
    Others(ConversationFilter, PageRequest),
}

impl AuthedRead for ConversationList {
    type Asked = AskedList;

    async fn parse(req: Request, state: &AppState) -> Result<AskedList, ApiError> {
        let (mut parts, _) = req.into_parts();
        let ApiQuery(params) =
            ApiQuery::<ListConversationsParams>::from_request_parts(&mut parts, state).await?;
        if params.all.is_none() && params.user_id.is_none() {
            let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
            return Ok(AskedList::Own(page));
        }
        Ok(AskedList::Others(params))
    }

    fn first_read(asked: &AskedList, _: &AppState) -> Option<FirstRead> {
        match asked {
            AskedList::Own(page) => Some(FirstRead::OwnConversations(*page)),
            AskedList::Others(_) => None,
        }
    }

    fn finish(
        asked: AskedList,
        principal: &Principal,
        read: Option<StoreResult<FirstReadResult>>,
    ) -> Result<Self, ApiError> {
        let params = match (asked, read) {
            (AskedList::Own(_), Some(read)) => return Ok(Self::Own(read?.into_conversations()?)),
            (AskedList::Own(_), None) => {
                return Err(ApiError::internal("the conversation list was not read"));
            }
            (AskedList::Others(params), _) => params,
        };
        // A member may not ask about others' conversations at all, whatever the value:
        // checked before the values are read, so a malformed one is a 403 too.
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
            (true, Some(_)) => {
                return Err(ApiError::bad_request("give `all` or `user_id`, not both"));
            }
            (true, None) => ConversationFilter::All,
            (false, Some(user)) => ConversationFilter::User(user),
            (false, None) => ConversationFilter::Own,
        };
        Ok(Self::Others(filter, page))
    }
}

/// A conversation the caller may see, with a page of its turns, read with the
/// authentication.
pub struct ConversationPage(Conversation, Page<Turn>);

impl AuthedRead for ConversationPage {
    type Asked = (ConversationId, PageRequest);

    async fn parse(req: Request, state: &AppState) -> Result<Self::Asked, ApiError> {
        let (mut parts, _) = req.into_parts();
        let ApiPath(id) = ApiPath::<Uuid>::from_request_parts(&mut parts, state).await?;
        let ApiQuery(params) =
            ApiQuery::<PageParams>::from_request_parts(&mut parts, state).await?;
        let page = page_request(params.limit.as_deref(), params.cursor.as_deref())?;
        Ok((ConversationId::from(id), page))
    }

    fn first_read(&(id, page): &Self::Asked, _: &AppState) -> Option<FirstRead> {
        Some(FirstRead::Turns(id, page))
    }

    fn finish(
        _: Self::Asked,
        _: &Principal,
        read: Option<StoreResult<FirstReadResult>>,
    ) -> Result<Self, ApiError> {
        let read = read.ok_or_else(|| ApiError::internal("the conversation was not read"))?;
        let (conversation, turns) = read?.into_turns()?;
        Ok(Self(conversation, turns))
    }
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
    State(state): State<AppState>,
    Authed { principal, read }: Authed<ConversationList>,
) -> ApiResult<Json<List<ConversationOut>>> {
    let conversations = match read {
        ConversationList::Own(page) => page,
        ConversationList::Others(filter, page) => {
            if let ConversationFilter::User(user) = filter {
                // A user who is not in the tenant is not found, like any other foreign id.
                state.store.get_user(&principal.scope, user).await?;
            }
            state
                .store
                .list_conversations(&principal.scope, filter, page)
                .await?
        }
    };
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
    Authed { read, .. }: Authed<ConversationPage>,
) -> ApiResult<Json<ConversationDetail>> {
    let ConversationPage(conversation, turns) = read;
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

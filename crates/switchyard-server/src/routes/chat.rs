//! `POST /v1/chat` (one orchestrated turn, whole or streamed) and `POST /v1/route` (the
//! decision alone).

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchyard_core::model::IdempotencyStart;
use switchyard_core::{AgentId, ConversationId};
use switchyard_store::{FirstRead, FirstReadResult};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::{Credential, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiJsonWithBytes};
use crate::orchestrator::{
    self, ChatAnswer, ChatEvent, ChatInput, EventSink, RouteAnswer, TurnItem,
};

/// A chat message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// 1 to 32,768 characters.
    pub message: String,
    /// The conversation to continue; a new one when absent.
    pub conversation_id: Option<Uuid>,
    /// Pin this agent of the tenant (no routing, no failover).
    pub agent_id: Option<Uuid>,
    /// Passed to `http` agents as is.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A routing question.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteRequest {
    /// 1 to 32,768 characters.
    pub message: String,
    /// A conversation whose last agent a follow-up would stay with.
    pub conversation_id: Option<Uuid>,
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|part| part.trim().starts_with("text/event-stream"))
        })
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::bad_request("`Idempotency-Key` must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_string()))
}

/// Runs a turn, recording its answer under the idempotency key (or releasing the key if
/// the turn failed, so that a retry runs again).
async fn run(
    state: AppState,
    principal: Principal,
    input: ChatInput,
    key: Option<String>,
    events: Option<EventSink>,
) -> ApiResult<serde_json::Value> {
    // A panic inside the turn (a bug) must still settle the idempotency key below: the turn
    // runs in its own task, out of reach of the server's panic guard.
    let result =
        std::panic::AssertUnwindSafe(orchestrator::chat(&state, &principal, input, events))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("the turn failed unexpectedly")));
    let result = result.and_then(|answer| {
        serde_json::to_value(answer).map_err(|e| ApiError::internal(e.to_string()))
    });
    if let Some(key) = key {
        let recorded = match &result {
            Ok(answer) => {
                state
                    .store
                    .idempotency_complete(&principal.scope, &key, answer)
                    .await
            }
            Err(_) => {
                state
                    .store
                    .idempotency_release(&principal.scope, &key)
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "recording an idempotency key failed");
        }
    }
    result
}

fn sse_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event(name))
}

/// The `routing` event of a stored answer (`{agent, intent, routing}`), for a replay.
fn routing_of(answer: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "agent": answer.get("agent"),
        "intent": answer.get("intent"),
        "routing": answer.get("routing"),
    })
}

/// A stream of `routing`, `delta`… and `done` (or `error`) events. The turn runs in its own
/// task; what fails before its routing decision is out fails here, as a plain problem.
async fn stream(
    state: AppState,
    principal: Principal,
    input: ChatInput,
    key: Option<String>,
) -> ApiResult<Response> {
    let turn = orchestrator::start_streamed(&state.clone(), move |events| {
        run(state, principal, input, key, Some(events))
    })
    .await?;
    let events = futures_util::stream::unfold(turn, |mut turn| async move {
        let event = match turn.next().await? {
            TurnItem::Event(ChatEvent::Routing(routing)) => sse_event("routing", &routing),
            TurnItem::Event(ChatEvent::Delta(text)) => {
                sse_event("delta", &serde_json::json!({ "text": text }))
            }
            TurnItem::Done(Ok(answer)) => sse_event("done", &answer),
            TurnItem::Done(Err(error)) => sse_event("error", &error.problem()),
        };
        Some((Ok::<_, Infallible>(event), turn))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One orchestrated turn: analyse the message, route it to the best of the tenant's agents,
/// call it (failing over if it fails), store the turn and answer.
///
/// With `Accept: text/event-stream` the answer streams as server-sent events: `routing`
/// (`{agent, intent, routing}`), then `delta` (`{text}`) as the answer arrives, then `done`
/// (the whole answer) or `error` (a problem). A retry with the same `Idempotency-Key` and
/// body returns the first answer and writes nothing; the same key with another body is a
/// `422`, and while the first is still running a `409`.
#[utoipa::path(
    post,
    path = "/v1/chat",
    tag = "chat",
    security(("bearer" = [])),
    request_body = ChatRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first answer")),
    responses(
        (status = 200, body = ChatAnswer, description = "The answer (or, with Accept: text/event-stream, a stream of routing, delta and done events)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A conversation limit is reached, or the same Idempotency-Key is still running"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 502, body = Problem, content_type = "application/problem+json", description = "The agent failed and no other could answer"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "The agent's circuit is open, or the tenant has no agent"),
        (status = 504, body = Problem, content_type = "application/problem+json", description = "The agent timed out and no other could answer"),
    )
)]
pub async fn create_chat(
    credential: Credential,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJsonWithBytes<ChatRequest>, ApiError>,
) -> ApiResult<Response> {
    let checked = body.and_then(|ApiJsonWithBytes(body, raw)| {
        orchestrator::check_message(&body.message)?;
        Ok((body, raw, idempotency_key(&headers)?))
    });
    let (body, raw, key) = match checked {
        Ok(checked) => checked,
        Err(refusal) => return credential.refuse(&state, refusal).await,
    };
    let conversation_id = body.conversation_id.map(ConversationId::from);
    // A turn of an existing conversation reads it (and its history) with the
    // authentication, in one round trip where the store can.
    let (principal, context) = match conversation_id {
        Some(id) => {
            let read = FirstRead::ChatContext(id, state.config.history_turns);
            let (principal, read) = credential.authenticate_and_read(&state, read).await?;
            (
                principal,
                Some(read.and_then(FirstReadResult::into_chat_context)),
            )
        }
        None => (credential.authenticate(&state).await?, None),
    };
    let input = ChatInput {
        message: body.message,
        conversation_id,
        agent_id: body.agent_id.map(AgentId::from),
        metadata: body.metadata.map(serde_json::Value::Object),
        new_conversation_id: ConversationId::new(),
        context,
    };
    let streamed = wants_stream(&headers);
    if let Some(key) = &key {
        let hash = Sha256::digest(&raw);
        match state
            .store
            .idempotency_start(&principal.scope, key, &hash, chrono::Utc::now())
            .await?
        {
            IdempotencyStart::Started => {}
            IdempotencyStart::Completed(answer) if streamed => {
                // The first answer again, shaped as its stream was: routing, the answer
                // whole as one piece, done.
                let replay = [
                    sse_event("routing", &routing_of(&answer)),
                    sse_event(
                        "delta",
                        &serde_json::json!({ "text": answer.get("response") }),
                    ),
                    sse_event("done", &answer),
                ];
                let events = futures_util::stream::iter(replay.map(Ok::<_, Infallible>));
                return Ok(Sse::new(events).into_response());
            }
            IdempotencyStart::Completed(answer) => return Ok(Json(answer).into_response()),
            IdempotencyStart::InFlight => {
                return Err(ApiError::conflict(
                    "a request with this Idempotency-Key is still running",
                ));
            }
            IdempotencyStart::Mismatch => {
                return Err(ApiError::unprocessable(
                    "this Idempotency-Key was used for a different request",
                ));
            }
        }
    }
    if streamed {
        return stream(state, principal, input, key).await;
    }
    let done = orchestrator::spawn_turn(&state.clone(), run(state, principal, input, key, None));
    let answer = orchestrator::finished(done).await?;
    Ok(Json(answer).into_response())
}

/// The routing decision for a message — `{agent, intent, routing}` as in a chat answer —
/// without calling an agent or storing anything.
#[utoipa::path(
    post,
    path = "/v1/route",
    tag = "chat",
    security(("bearer" = [])),
    request_body = RouteRequest,
    responses(
        (status = 200, body = RouteAnswer),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_route(
    principal: Principal,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RouteRequest>,
) -> ApiResult<Json<RouteAnswer>> {
    let answer = orchestrator::route(
        &state,
        &principal,
        &body.message,
        body.conversation_id.map(ConversationId::from),
    )
    .await?;
    Ok(Json(answer))
}

//! `POST /v1/chat` (one orchestrated turn, whole or streamed) and `POST /v1/route` (the
//! decision alone).

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use switchyard_core::model::IdempotencyStart;
use switchyard_core::{AgentId, ConversationId};
use switchyard_store::{FirstRead, FirstReadResult, StoreResult};

use crate::api::{AgentSummary, ChatAnswer, ChatRequest, RouteAnswer, RouteRequest};
use crate::app::AppState;
use crate::auth::{Authed, AuthedRead, Principal};
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiJson, ApiJsonWithBytes};
use crate::turn::task::{StreamedTurn, TurnItem, TurnTask, finished};
use crate::turn::{ChatContext, Message, Target, TurnEvent, TurnInput, TurnOutcome};

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

/// A chat request as the turn takes it: the body checked, with the conversation's context
/// read with the authentication (one round trip where the store can).
pub struct ChatCall {
    input: TurnInput,
    /// SHA-256 of the body, which an idempotency key is bound to.
    body_hash: Vec<u8>,
    idempotency_key: Option<String>,
    streamed: bool,
}

/// What a chat request asks, before its authentication.
pub struct AskedChat {
    body: ChatRequest,
    message: Message,
    body_hash: Vec<u8>,
    idempotency_key: Option<String>,
    streamed: bool,
}

impl AuthedRead for ChatCall {
    type Asked = AskedChat;

    async fn parse(req: Request, state: &AppState) -> Result<AskedChat, ApiError> {
        let streamed = wants_stream(req.headers());
        let idempotency_key = idempotency_key(req.headers());
        let ApiJsonWithBytes(body, raw) =
            ApiJsonWithBytes::<ChatRequest>::from_request(req, state).await?;
        let message = Message::parse(body.message.clone())?;
        Ok(AskedChat {
            body,
            message,
            body_hash: Sha256::digest(&raw).to_vec(),
            idempotency_key: idempotency_key?,
            streamed,
        })
    }

    fn first_read(asked: &AskedChat, state: &AppState) -> Option<FirstRead> {
        let id = ConversationId::from(asked.body.conversation_id?);
        Some(FirstRead::ChatContext(id, state.config.history_turns))
    }

    fn finish(
        asked: AskedChat,
        _: &Principal,
        read: Option<StoreResult<FirstReadResult>>,
    ) -> Result<Self, ApiError> {
        let AskedChat { body, .. } = &asked;
        let target = match body.conversation_id {
            Some(id) => {
                let context: Option<ChatContext> =
                    read.map(|r| r.and_then(FirstReadResult::into_chat_context));
                Target::Existing(ConversationId::from(id), context)
            }
            None => Target::New(ConversationId::new()),
        };
        Ok(Self {
            input: TurnInput {
                message: asked.message,
                target,
                agent_id: asked.body.agent_id.map(AgentId::from),
                metadata: asked.body.metadata.map(serde_json::Value::Object),
                thread: None,
            },
            body_hash: asked.body_hash,
            idempotency_key: asked.idempotency_key,
            streamed: asked.streamed,
        })
    }
}

fn sse_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event(name))
}

fn render(state: &AppState, outcome: TurnOutcome) -> ChatAnswer {
    ChatAnswer::new(outcome, state.config.enable_debug_info)
}

/// A stored answer replayed for a retried request with its `Idempotency-Key`: whole, or
/// shaped as its stream was (routing, the answer as one piece, done).
fn replay(answer: serde_json::Value, streamed: bool) -> Response {
    if !streamed {
        return Json(answer).into_response();
    }
    let routing = serde_json::json!({
        "agent": answer.get("agent"),
        "intent": answer.get("intent"),
        "routing": answer.get("routing"),
    });
    let events = [
        sse_event("routing", &routing),
        sse_event(
            "delta",
            &serde_json::json!({ "text": answer.get("response") }),
        ),
        sse_event("done", &answer),
    ];
    Sse::new(futures_util::stream::iter(events.map(Ok::<_, Infallible>))).into_response()
}

/// A stream of `routing`, `delta`… and `done` (or `error`) events, with a `failover` event
/// before the next agent's deltas when the agent called fails.
fn stream(turn: StreamedTurn<ChatAnswer>) -> Response {
    let events = futures_util::stream::unfold(turn, |mut turn| async move {
        let event = match turn.next().await? {
            TurnItem::Event(TurnEvent::Routed(routed)) => sse_event(
                "routing",
                &RouteAnswer::new(
                    AgentSummary::from(&routed.agent),
                    &routed.intent,
                    &routed.decision,
                ),
            ),
            TurnItem::Event(TurnEvent::FailedOver(failed)) => sse_event(
                "failover",
                &serde_json::json!({
                    "from": failed.from,
                    "to": AgentSummary::from(&failed.to),
                }),
            ),
            TurnItem::Event(TurnEvent::Delta(text)) => {
                sse_event("delta", &serde_json::json!({ "text": text }))
            }
            TurnItem::Done(Ok(answer)) => sse_event("done", &answer),
            TurnItem::Done(Err(error)) => sse_event("error", &ApiError::from(error).problem()),
        };
        Some((Ok::<_, Infallible>(event), turn))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One orchestrated turn: analyse the message, route it to the best of the tenant's agents,
/// call it (failing over if it fails), store the turn and answer.
///
/// With `Accept: text/event-stream` the answer streams as server-sent events: `routing`
/// (`{agent, intent, routing}`), then `delta` (`{text}`) as the answer arrives, then `done`
/// (the whole answer) or `error` (a problem). When the agent called fails before answering
/// and another takes over, a `failover` event (`{from: {agent_id, name, error}, to: {id,
/// name}}`) comes before the new agent's deltas. A retry with the same `Idempotency-Key` and
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
        (status = 200, description = "The answer; with Accept: text/event-stream, a stream of server-sent events (routing, failover, delta, done or error)", content(
            (ChatAnswer = "application/json"),
            (String = "text/event-stream"),
        )),
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
    State(state): State<AppState>,
    Authed { principal, read }: Authed<ChatCall>,
) -> ApiResult<Response> {
    if let Some(key) = &read.idempotency_key {
        let started = state
            .store
            .idempotency_start(&principal.scope, key, &read.body_hash, chrono::Utc::now())
            .await?;
        match started {
            IdempotencyStart::Started => {}
            IdempotencyStart::Completed(answer) => return Ok(replay(answer, read.streamed)),
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
    let task = TurnTask {
        principal,
        input: read.input,
        idempotency_key: read.idempotency_key,
        render,
    };
    if read.streamed {
        return Ok(stream(task.start_streamed(&state).await?));
    }
    let answer = finished(task.spawn(&state)).await?;
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
    let message = Message::parse(body.message)?;
    let last_agent = match body.conversation_id {
        Some(id) => {
            let id = ConversationId::from(id);
            let (conversation, _) = state.store.chat_context(&principal.scope, id, 0).await?;
            conversation.last_agent_id
        }
        None => None,
    };
    let mut plan =
        crate::routing::plan(&state, &principal, message.as_str(), last_agent, None).await?;
    plan.attribute_intent(plan.decision.agent_id);
    Ok(Json(RouteAnswer::new(
        AgentSummary::from(&plan.decision),
        &plan.analysis.intent,
        &plan.decision,
    )))
}

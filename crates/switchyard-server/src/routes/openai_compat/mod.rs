//! The OpenAI chat-completions dialect, so that existing OpenAI clients and chat
//! front ends can talk to Switchyard with an API key: `GET /v1/models`, `GET
//! /v1/models/{model}` and `POST /v1/chat/completions` (streaming too).
//!
//! - Model `switchyard` routes each message; a model equal to one of the tenant's agent
//!   names pins that agent.
//! - The client holds the conversation, as these clients do: the message routed is the
//!   request's last `user` message, and the messages before it (`system`, `user`,
//!   `assistant`, in order) are the history the agent gets, whatever is stored. A client that
//!   resends the growing thread continues one stored conversation, found by a hash of the
//!   thread as it was after the last answer ([`crate::turn::thread_key`]); the header
//!   `X-Switchyard-Conversation-Id` names one explicitly, and every answer carries it.
//! - Conversations made here count toward no conversation limit and make room for none:
//!   a script's many calls are never refused for a limit, and never lock its user out of
//!   `/v1/chat`, which keeps its limits (docs/integrations.md).
//! - `usage` on every answer, estimated (one token per four characters);
//!   `stream_options.include_usage` adds the last chunk with it.
//! - Errors use OpenAI's shape, `{"error": {"message", "type", "code", "param"}}`, with the
//!   same status codes as the rest of the API.
//! - OpenAI's other request fields (temperature, max_tokens, …) are accepted and ignored:
//!   the agents decide how they answer; those that would change the answer's shape (`n`,
//!   `tools`, `response_format`…) are refused naming the field. Owner fields (`tenant_id`)
//!   are refused.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::{AgentId, ConversationId};
use uuid::Uuid;

use crate::api::ChatAnswer;
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::turn::task::{StreamedTurn, TurnItem, TurnTask, finished};
use crate::turn::{
    Message, Target, Thread, TurnEvent, TurnInput, TurnOutcome, history_role, thread_key,
};
use switchyard_agents::HistoryEntry;

mod errors;

pub use errors::{OpenAiError, error_for};
use errors::{invalid_param, turn_failure};

/// The header that names (and returns) the conversation.
pub static CONVERSATION_HEADER: HeaderName =
    HeaderName::from_static("x-switchyard-conversation-id");

/// The model that routes.
pub const ROUTING_MODEL: &str = "switchyard";

/// The authenticated principal, with authentication failures in OpenAI's shape.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = OpenAiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Principal::from_request_parts(parts, state)
            .await
            .map(Caller)
            .map_err(OpenAiError::from)
    }
}

/// A chat message of the OpenAI format: `content` is text or a list of parts.
#[derive(Debug, Deserialize)]
pub struct InMessage {
    /// `system`, `user`, `assistant`, …
    pub role: String,
    /// The text, or parts of which the `text` ones count.
    #[serde(default)]
    pub content: Option<Value>,
}

/// The request body (fields Switchyard does not use are accepted and ignored).
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    /// `switchyard`, or an agent's name.
    pub model: String,
    /// The messages; the last `user` one is routed.
    pub messages: Vec<InMessage>,
    /// Stream the answer as chunks.
    #[serde(default)]
    pub stream: bool,
    /// Everything else.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// The JSON body, with rejections in OpenAI's shape.
pub struct Body(pub CompletionRequest);

impl FromRequest<AppState> for Body {
    type Rejection = OpenAiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        crate::extract::ApiJson::<CompletionRequest>::from_request(req, state)
            .await
            .map(|j| Body(j.0))
            .map_err(OpenAiError::from)
    }
}

fn text_of(content: &Option<Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn unix(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp()
}

/// The models a caller may use: `switchyard` (routes) and each enabled agent (pins it).
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "openai",
    security(("bearer" = [])),
    responses((status = 200, description = "An OpenAI model list", body = Object))
)]
pub async fn list_models(
    Caller(principal): Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, OpenAiError> {
    let data = models(&state, &principal).await?;
    Ok(Json(json!({"object": "list", "data": data})))
}

/// One model of [`list_models`]; any other name is an OpenAI-shaped `404 model_not_found`.
#[utoipa::path(
    get,
    path = "/v1/models/{model}",
    tag = "openai",
    security(("bearer" = [])),
    params(("model" = String, Path, description = "`switchyard` or one of the tenant's enabled agents' names (another tenant's agents are unknown models)")),
    responses(
        (status = 200, description = "An OpenAI model object", body = Object),
        (status = 404, description = "No such model (an OpenAI error)", body = Object),
    )
)]
pub async fn get_model(
    Caller(principal): Caller,
    State(state): State<AppState>,
    id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, OpenAiError> {
    let id = id.map(|p| p.0).unwrap_or_default();
    models(&state, &principal)
        .await?
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .map(Json)
        .ok_or_else(|| OpenAiError::about(unknown_model(&id), "model"))
}

/// The models the caller may name: the routing model, then the enabled agents by name.
async fn models(state: &AppState, principal: &Principal) -> Result<Vec<Value>, OpenAiError> {
    let routing = state
        .tenant_routing(principal)
        .await
        .map_err(ApiError::from)?;
    let mut data = vec![
        json!({"id": ROUTING_MODEL, "object": "model", "created": unix(principal.tenant.created_at), "owned_by": principal.tenant.slug}),
    ];
    let mut agents: Vec<_> = routing.agents.values().collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    for agent in agents {
        data.push(json!({"id": agent.name, "object": "model", "created": unix(agent.created_at), "owned_by": principal.tenant.slug}));
    }
    Ok(data)
}

fn unknown_model(model: &str) -> ApiError {
    ApiError::custom(
        StatusCode::NOT_FOUND,
        "model_not_found",
        "Not found",
        format!(
            "the model `{model}` does not exist; use `{ROUTING_MODEL}` or one of your agents' names"
        ),
    )
}

/// Refuses what the request asks and Switchyard cannot do, rather than ignoring it: more
/// than one choice, tools (and the older functions), a response format other than text.
fn refuse_unsupported(rest: &serde_json::Map<String, Value>) -> Result<(), OpenAiError> {
    if let Some(n) = rest
        .get("n")
        .filter(|n| !n.is_null() && n.as_u64() != Some(1))
    {
        return Err(invalid_param(
            "n",
            &format!("`n` must be 1 (one answer per request), not {n}"),
        ));
    }
    for param in ["tools", "functions", "tool_choice", "function_call"] {
        let asked = rest.get(param).is_some_and(|v| match v {
            Value::Null => false,
            Value::Array(items) => !items.is_empty(),
            Value::String(choice) => choice != "none",
            _ => true,
        });
        if asked {
            return Err(invalid_param(
                param,
                &format!("`{param}` is not supported: Switchyard's agents answer with text"),
            ));
        }
    }
    if let Some(format) = rest.get("response_format").filter(|f| !f.is_null())
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(invalid_param(
            "response_format",
            "only `{\"type\": \"text\"}` is supported as `response_format`",
        ));
    }
    Ok(())
}

fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Event {
    let data = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    Event::default().data(data.to_string())
}

/// An OpenAI chat completion: the last user message is routed (model `switchyard`) or sent
/// to the agent named by `model`; with `stream: true` the answer comes as chunks.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "openai",
    security(("bearer" = [])),
    request_body(content = Object, description = "An OpenAI chat-completions request"),
    params(("X-Switchyard-Conversation-Id" = Option<String>, Header, description = "Continue this conversation")),
    responses(
        (status = 200, description = "An OpenAI chat completion, or a stream of chunks; the X-Switchyard-Conversation-Id header names the conversation", body = Object),
        (status = 404, description = "No such model or conversation", body = Object),
    )
)]
pub async fn create_chat_completion(
    Caller(principal): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    Body(request): Body,
) -> Result<Response, OpenAiError> {
    if let Some(owner) = ["tenant_id", "user_id"]
        .iter()
        .find(|f| request.rest.contains_key(**f))
    {
        return Err(ApiError::unprocessable(format!("unknown field `{owner}`")).into());
    }
    refuse_unsupported(&request.rest)?;
    let include_usage = request
        .rest
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The thread as the client sent it: the last user message is routed, the ones before
    // it are the history the agent gets.
    let messages: Vec<(&'static str, String)> = request
        .messages
        .iter()
        .filter_map(|m| history_role(&m.role).map(|role| (role, text_of(&m.content))))
        .collect();
    let last_user = messages
        .iter()
        .rposition(|(role, _)| *role == "user")
        .ok_or_else(|| ApiError::unprocessable("`messages` has no user message"))?;
    let message = Message::parse(messages[last_user].1.clone()).map_err(ApiError::from)?;
    let earlier = &messages[..last_user];
    let agent_id = pinned_agent(&state, &principal, &request.model).await?;
    let pinned = agent_id.is_some();
    let (target, header_id) = match conversation_header(&headers)? {
        Some(id) => (Target::Existing(id, None), id),
        // A client that resends the thread it had after an answer continues that
        // conversation; a thread with no answer in it yet starts one.
        None => match continued(&state, &principal, earlier).await? {
            Some(id) => (Target::Existing(id, None), id),
            None => {
                let id = ConversationId::new();
                (Target::New(id), id)
            }
        },
    };
    let prompt_tokens = estimated_tokens(messages.iter().map(|(_, text)| text.as_str()));
    let thread = Thread {
        history: earlier
            .iter()
            .map(|(role, text)| HistoryEntry {
                role,
                content: text.clone(),
            })
            .collect(),
        messages,
    };
    let task = TurnTask {
        principal,
        input: TurnInput {
            message,
            target,
            agent_id,
            metadata: None,
            thread: Some(thread),
        },
        idempotency_key: None,
        render,
    };
    let model = request.model;
    let created = chrono::Utc::now().timestamp();
    let header = HeaderValue::from_str(&header_id.to_string())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if !request.stream {
        let answer = finished(task.spawn(&state))
            .await
            .map_err(|e| turn_failure(&state, e, pinned))?;
        // The model's own count where the answering agent reports one, else estimated.
        let (prompt_tokens, completion_tokens) = answer.usage.map_or_else(
            || (prompt_tokens, estimated_tokens([answer.response.as_str()])),
            |u| (u.prompt_tokens, u.completion_tokens),
        );
        let body = json!({
            "id": format!("chatcmpl-{}", answer.message_id.simple()),
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.response}, "finish_reason": "stop"}],
            "usage": usage(prompt_tokens, completion_tokens),
        });
        let mut response = Json(body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONVERSATION_HEADER.clone(), header);
        agent_header(headers, &answer.agent.name);
        routing_headers(headers, &answer.routing);
        return Ok(response);
    }
    // Streamed: the turn runs in its own task and reaches its end (and is stored) even if
    // the client goes away; what fails before its routing decision is a plain error.
    let turn = task
        .start_streamed(&state)
        .await
        .map_err(|e| turn_failure(&state, e, pinned))?;
    let routed_agent = turn.routed().map(|r| r.decision.agent_name.clone());
    let routing = turn
        .routed()
        .and_then(|r| serde_json::to_value(&r.decision).ok());
    let id = format!("chatcmpl-{}", Uuid::now_v7().simple());
    let usage = include_usage.then_some(prompt_tokens);
    let stream = completion_stream(id, created, model, turn, usage);
    // Comment lines while an agent thinks, so idle proxies keep the stream open (clients
    // skip them, as the SSE format says).
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    let headers = response.headers_mut();
    headers.insert(CONVERSATION_HEADER.clone(), header);
    if let Some(agent) = &routed_agent {
        agent_header(headers, agent);
    }
    if let Some(routing) = &routing {
        routing_headers(headers, routing);
    }
    Ok(response)
}

/// The conversation a thread continues: the caller's whose thread, after its last answer,
/// was `earlier` (none when `earlier` holds no answer: a new thread).
async fn continued(
    state: &AppState,
    principal: &Principal,
    earlier: &[(&'static str, String)],
) -> Result<Option<ConversationId>, ApiError> {
    if !earlier.iter().any(|(role, _)| *role == "assistant") {
        return Ok(None);
    }
    let key = thread_key(
        principal.user.id,
        earlier.iter().map(|(role, text)| (*role, text.as_str())),
    );
    Ok(state.store.find_thread(&principal.scope, &key).await?)
}

/// Tokens of texts, estimated as OpenAI's guidance for English text has it: about one
/// token per four characters, rounded up (docs/integrations.md). Agents are not all
/// models, and models count with their own tokenizers: the figure is for a client's
/// bookkeeping, not billing.
fn estimated_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    texts
        .into_iter()
        .map(|t| (t.chars().count() as u64).div_ceil(4))
        .sum()
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens.saturating_add(completion_tokens),
    })
}

/// The header that names the agent that answers (`model` stays the name the request gave).
static AGENT_HEADER: HeaderName = HeaderName::from_static("x-switchyard-agent");

/// Names the answering agent in `X-Switchyard-Agent` (percent-encoded where a header cannot
/// carry the name as is). A streamed answer names the agent routing chose; should it fail
/// and another take over, the stream cannot change its headers.
fn agent_header(headers: &mut HeaderMap, name: &str) {
    if let Ok(value) = HeaderValue::from_str(&header_text(name)) {
        headers.insert(AGENT_HEADER.clone(), value);
    }
}

/// The header that names the agents routing passed over as unavailable.
static SKIPPED_HEADER: HeaderName = HeaderName::from_static("x-switchyard-skipped");

/// Adds what this dialect has no field for: `X-Switchyard-Skipped`, the agents passed over
/// as unavailable (`name; reason` each, comma-separated, percent-encoded where a header
/// cannot carry the text as is).
fn routing_headers(headers: &mut HeaderMap, routing: &serde_json::Value) {
    let Some(skipped) = routing.get("skipped").and_then(|s| s.as_array()) else {
        return;
    };
    if skipped.is_empty() {
        return;
    }
    let listed: Vec<String> = skipped
        .iter()
        .map(|s| {
            let field = |k: &str| header_text(s.get(k).and_then(|v| v.as_str()).unwrap_or(""));
            format!("{}; {}", field("name"), field("reason"))
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&listed.join(", ")) {
        headers.insert(SKIPPED_HEADER.clone(), value);
    }
}

/// Text a header can carry: visible ASCII and spaces as they are, `%`, `,`, `;` and
/// everything else percent-encoded (UTF-8).
fn header_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (b == b' ' || b.is_ascii_graphic()) && !matches!(b, b'%' | b',' | b';') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The conversation the header names, if any (a header that names none is a `404`).
fn conversation_header(headers: &HeaderMap) -> Result<Option<ConversationId>, ApiError> {
    let Some(value) = headers.get(&CONVERSATION_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|s| Uuid::try_parse(s.trim()).ok())
        .map(|id| Some(ConversationId::from(id)))
        .ok_or_else(ApiError::not_found)
}

/// The agent a model name pins: none for the routing model, else the tenant's enabled agent
/// of that name (any other name, another tenant's agents' included, is an unknown model).
async fn pinned_agent(
    state: &AppState,
    principal: &Principal,
    model: &str,
) -> Result<Option<AgentId>, ApiError> {
    if model == ROUTING_MODEL {
        return Ok(None);
    }
    let routing = state.tenant_routing(principal).await?;
    let agent = routing
        .agents
        .values()
        .find(|a| a.name == model)
        .ok_or_else(|| unknown_model(model))?;
    Ok(Some(agent.id))
}

fn render(_: &AppState, outcome: TurnOutcome) -> ChatAnswer {
    ChatAnswer::new(outcome, false)
}

/// The chunks of a streamed completion: the role, each piece of the answer, the end (or
/// an error), then `[DONE]`.
fn completion_stream(
    id: String,
    created: i64,
    model: String,
    turn: StreamedTurn<ChatAnswer>,
    prompt_tokens: Option<u64>,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let role = chunk(
        &id,
        created,
        &model,
        json!({"role": "assistant", "content": ""}),
        None,
    );
    // With `stream_options.include_usage`, a last chunk with no choices and the usage.
    let usage_chunk = move |id: &str, model: &str, answer: &ChatAnswer| {
        prompt_tokens.map(|prompt| {
            let (prompt, completion) = answer.usage.map_or_else(
                || (prompt, estimated_tokens([answer.response.as_str()])),
                |u| (u.prompt_tokens, u.completion_tokens),
            );
            let data = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                              "model": model, "choices": [],
                              "usage": usage(prompt, completion)});
            Event::default().data(data.to_string())
        })
    };
    let pieces = futures_util::stream::unfold(Some(turn), move |turn| {
        let (id, model) = (id.clone(), model.clone());
        async move {
            let mut turn = turn?;
            loop {
                match turn.next().await? {
                    // The routing decision has no place in this dialect; only the pieces.
                    TurnItem::Event(TurnEvent::Routed(_) | TurnEvent::FailedOver(_)) => {}
                    TurnItem::Event(TurnEvent::Delta(text)) => {
                        let piece = chunk(&id, created, &model, json!({"content": text}), None);
                        return Some((vec![Ok(piece)], Some(turn)));
                    }
                    TurnItem::Done(Ok(answer)) => {
                        let mut last =
                            vec![Ok(chunk(&id, created, &model, json!({}), Some("stop")))];
                        last.extend(usage_chunk(&id, &model, &answer).map(Ok));
                        return Some((last, None));
                    }
                    TurnItem::Done(Err(error)) => {
                        let error = OpenAiError::from(ApiError::from(error));
                        let last = Event::default().data(error.body().to_string());
                        return Some((vec![Ok(last)], None));
                    }
                }
            }
        }
    })
    .flat_map(futures_util::stream::iter);
    futures_util::stream::once(async move { Ok(role) })
        .chain(pieces)
        .chain(futures_util::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }))
}

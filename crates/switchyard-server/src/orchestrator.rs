//! One chat turn (DESIGN §6): load the conversation, analyse the message, choose an agent,
//! call it (failing over when it fails), store the turn with its conversation update, and
//! answer. `/v1/route` runs the same analysis and decision without calling or storing.
//!
//! The turn is one pipeline of swappable stages: the tenant's [`IntentAnalyzer`]s (lexical
//! first, a model in the ambiguous band if the tenant chose one), an
//! [`AgentMatcher`](switchyard_core::routing::AgentMatcher) that applies the routing policy,
//! and an [`AgentInvoker`](switchyard_agents::AgentInvoker) per agent kind.
//!
//! No database transaction is held while an agent is called: the conversation is read in
//! one short transaction before, and the turn written in one after. A turn runs in a task of
//! its own ([`spawn_turn`]), tracked for graceful shutdown: it reaches its end and is stored
//! whatever the client does, so a client that goes away, or reads a stream slowly, can
//! neither cut a turn in half nor hold one up.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use switchyard_agents::{AgentError, AgentRequest, HistoryEntry};
use switchyard_core::model::{Conversation, HistoryTurn, NewTurn, Tenant, TurnTarget};
use switchyard_core::routing::{
    Analysis, Decision, FailoverFrom, Method, RouteError, RouteInput, RoutingPolicy,
};
use switchyard_core::settings::ModelEndpoint;
use switchyard_core::{AgentId, ConversationId, MessageId};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::analyzers::{AnalyzerInput, IntentAnalyzer};
use crate::app::AppState;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::routing_cache::TenantRouting;

/// The longest message, in Unicode scalar values.
pub const MAX_MESSAGE_CHARS: usize = 32_768;

/// A chat turn's conversation and history, read before the turn (with the authentication).
pub type ChatContext = switchyard_store::StoreResult<(Conversation, Vec<HistoryTurn>)>;

/// What a chat turn is asked.
#[derive(Debug)]
pub struct ChatInput {
    /// The user's message.
    pub message: String,
    /// The conversation to continue; a new one when absent.
    pub conversation_id: Option<ConversationId>,
    /// An agent of the tenant to pin.
    pub agent_id: Option<AgentId>,
    /// Passed to the agent as is.
    pub metadata: Option<Value>,
    /// The id a new conversation gets (chosen by the caller, who may need it before the
    /// answer, e.g. for a response header).
    pub new_conversation_id: ConversationId,
    /// `conversation_id`'s context with `history_turns` turns, when the caller read it
    /// already; otherwise the turn reads it.
    pub context: Option<ChatContext>,
}

/// Where a streamed turn's events go. Unbounded on purpose: the turn must never wait for a
/// slow reader, and what it can hold is bounded anyway (one routing event and the pieces of
/// one answer, which agents' answers are limited in size).
pub type EventSink = mpsc::UnboundedSender<ChatEvent>;

/// What a streamed turn emits before its final answer.
#[derive(Clone, Debug)]
pub enum ChatEvent {
    /// The routing decision (`{agent, intent, routing}`), before the agent is called.
    Routing(Value),
    /// A piece of the agent's answer.
    Delta(String),
}

/// The agent in an answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgentSummary {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

/// The intent in an answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IntentOut {
    /// The intent label (the chosen agent's).
    pub category: Option<String>,
    /// How sure the analysis is (calibrated).
    pub confidence: f64,
    /// The message's words that pointed to the agent.
    pub keywords: Vec<String>,
}

/// Where the time of a turn went, in milliseconds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Timings {
    /// Intent analysis.
    pub analyze: f64,
    /// Choosing the agent.
    pub route: f64,
    /// The agent call(s).
    pub agent: f64,
    /// Storing the turn.
    pub store: f64,
}

/// Debug information (with `ORCHESTRATOR_ENABLE_DEBUG_INFO=true`).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Debug {
    /// Where the time went.
    pub timings_ms: Timings,
}

/// The answer to a chat turn.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChatAnswer {
    /// The conversation (new or continued).
    pub conversation_id: Uuid,
    /// The stored turn.
    pub message_id: Uuid,
    /// The agent's answer.
    pub response: String,
    /// The agent that answered.
    pub agent: AgentSummary,
    /// The analysed intent.
    pub intent: IntentOut,
    /// The routing decision.
    #[schema(value_type = Object)]
    pub routing: Value,
    /// Timings, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<Debug>,
}

/// The answer to `/v1/route`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RouteAnswer {
    /// The agent that would answer.
    pub agent: AgentSummary,
    /// The analysed intent.
    pub intent: IntentOut,
    /// The routing decision.
    #[schema(value_type = Object)]
    pub routing: Value,
}

/// A decision and what it was made from.
struct Plan {
    routing: Arc<TenantRouting>,
    analysis: Analysis,
    decision: Decision,
    analyze_ms: f64,
    route_ms: f64,
    /// Analysis and decision, without a model's call in the cascade: Switchyard's own time.
    own_ms: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn intent_out(analysis: &Analysis) -> IntentOut {
    IntentOut {
        category: analysis.intent.category.clone(),
        confidence: analysis.intent.confidence,
        keywords: analysis.intent.keywords.clone(),
    }
}

/// Checks the message length (1 to 32,768 characters).
pub fn check_message(message: &str) -> ApiResult<()> {
    let chars = message.chars().count();
    if chars == 0 {
        return Err(ApiError::unprocessable("`message` must not be empty"));
    }
    if chars > MAX_MESSAGE_CHARS {
        return Err(ApiError::unprocessable(format!(
            "`message` has at most {MAX_MESSAGE_CHARS} characters"
        )));
    }
    Ok(())
}

/// The tenant's routing thresholds: its own settings over the global ones.
pub fn policy(state: &AppState, tenant: &Tenant) -> RoutingPolicy {
    let s = &tenant.settings;
    RoutingPolicy {
        min_confidence: s.min_confidence.unwrap_or(state.config.min_confidence),
        min_margin: s.min_margin.unwrap_or(state.config.min_margin),
        switch_margin: s.switch_margin.unwrap_or(state.config.switch_margin),
    }
}

fn route_error(e: RouteError) -> ApiError {
    use axum::http::StatusCode;
    match e {
        // A pinned agent that is not one of this tenant's enabled agents is not found,
        // whatever tenant it belongs to.
        RouteError::UnknownAgent(_) => ApiError::not_found(),
        RouteError::NoAgents => ApiError::custom(
            StatusCode::SERVICE_UNAVAILABLE,
            "no-agent",
            "No agent available",
            "the tenant has no enabled agent to answer",
        ),
        RouteError::NoneAvailable => ApiError::custom(
            StatusCode::SERVICE_UNAVAILABLE,
            "circuit-open",
            "Agents unavailable",
            "every agent that could answer is failing; retry later",
        ),
    }
}

/// The model-backed analyzer the tenant chose, with its model, if any.
fn model_analyzer<'a>(
    state: &'a AppState,
    tenant: &Tenant,
) -> Option<(&'a dyn IntentAnalyzer, ModelEndpoint)> {
    let choice = tenant
        .settings
        .analyzer
        .as_deref()
        .unwrap_or(state.config.analyzer.as_str());
    match choice {
        "llm" => Some((
            &state.llm as &dyn IntentAnalyzer,
            tenant
                .settings
                .llm
                .clone()
                .or_else(|| state.config.global_llm())?,
        )),
        "embedding" => Some((
            &state.embedding as &dyn IntentAnalyzer,
            tenant
                .settings
                .embedding
                .clone()
                .or_else(|| state.config.global_embedding())?,
        )),
        _ => None,
    }
}

async fn plan(
    state: &AppState,
    principal: &Principal,
    message: &str,
    last_agent: Option<AgentId>,
    pinned: Option<AgentId>,
) -> ApiResult<Plan> {
    let routing = state
        .routing
        .get(
            &state.store,
            &principal.scope,
            principal.tenant.agents_version,
        )
        .await?;
    state
        .routing
        .train_in_background(principal.scope.tenant_id());
    let tenant = principal.scope.tenant_id();
    let started = Instant::now();
    let mut analysis = state
        .lexical
        .analyze(&AnalyzerInput {
            tenant,
            routing: &routing,
            message,
            lexical: None,
            endpoint: None,
        })
        .await
        .map_err(ApiError::internal)?;
    let analyze_ms = ms(started);
    let started = Instant::now();
    let policy = policy(state, &principal.tenant);
    // (A function rather than one value: the route input borrows a closure that is not
    // Sync, and must not live across the model call's await.)
    let decide = |analysis: &Analysis| {
        let breakers = &state.breakers;
        let unavailable = |agent: AgentId| breakers.is_open(tenant, agent);
        let input = RouteInput {
            pinned,
            last_agent,
            unavailable: &unavailable,
        };
        state
            .matcher
            .decide(routing.index.agent_set(), analysis, &policy, &input)
    };
    let mut decision = decide(&analysis).map_err(route_error)?;
    let mut route_ms = ms(started);
    let own_ms = analyze_ms + route_ms;
    // The cascade: a model is asked only in the ambiguous band, and never for a pinned
    // agent or a conversation that sticks with its agent.
    if pinned.is_none()
        && decision.method != Method::Sticky
        && let Some((analyzer, endpoint)) = model_analyzer(state, &principal.tenant)
    {
        let [low, high] = principal.tenant.settings.cascade_band.unwrap_or([
            state.config.cascade_band_low,
            state.config.cascade_band_high,
        ]);
        let confidence = analysis.intent.confidence;
        if confidence >= low && confidence < high {
            let started = Instant::now();
            let verdict = analyzer
                .analyze(&AnalyzerInput {
                    tenant,
                    routing: &routing,
                    message,
                    lexical: Some(&analysis),
                    endpoint: Some(&endpoint),
                })
                .await;
            let method = analyzer.method();
            let outcome = match verdict {
                Ok(model_analysis) => match decide(&model_analysis) {
                    Ok(model_decision) => {
                        decision = model_decision;
                        analysis = model_analysis;
                        "used"
                    }
                    Err(e) => {
                        decision.reason = format!(
                            "{}; the {} verdict could not be used: {e}",
                            decision.reason,
                            method.as_str()
                        );
                        "unusable"
                    }
                },
                Err(why) => {
                    decision.reason = format!(
                        "{}; the {} analyzer gave no verdict ({why})",
                        decision.reason,
                        method.as_str()
                    );
                    "failed"
                }
            };
            crate::metrics::model_call(
                &principal.tenant.slug,
                method.as_str(),
                outcome,
                started.elapsed(),
            );
            route_ms += ms(started);
        }
    }
    Ok(Plan {
        routing,
        analysis,
        decision,
        analyze_ms,
        route_ms,
        own_ms,
    })
}

fn summary(decision: &Decision) -> AgentSummary {
    AgentSummary {
        id: decision.agent_id.as_uuid(),
        name: decision.agent_name.clone(),
    }
}

/// `/v1/route`: the decision a chat turn would make, without calling or storing anything.
pub async fn route(
    state: &AppState,
    principal: &Principal,
    message: &str,
    conversation: Option<ConversationId>,
) -> ApiResult<RouteAnswer> {
    check_message(message)?;
    let last_agent = match conversation {
        Some(id) => {
            state
                .store
                .chat_context(&principal.scope, id, 0)
                .await?
                .0
                .last_agent_id
        }
        None => None,
    };
    let plan = plan(state, principal, message, last_agent, None).await?;
    Ok(RouteAnswer {
        agent: summary(&plan.decision),
        intent: intent_out(&plan.analysis),
        routing: serde_json::to_value(&plan.decision).unwrap_or_default(),
    })
}

fn agent_failure(agent: &str, e: &AgentError) -> ApiError {
    use axum::http::StatusCode;
    let detail = format!("agent {agent:?} could not answer: {e}");
    match e {
        AgentError::Failed(_) => ApiError::custom(
            StatusCode::BAD_GATEWAY,
            "agent-failed",
            "Agent failed",
            detail,
        ),
        AgentError::Timeout(_) => ApiError::custom(
            StatusCode::GATEWAY_TIMEOUT,
            "agent-timeout",
            "Agent timed out",
            detail,
        ),
        AgentError::CircuitOpen => ApiError::custom(
            StatusCode::SERVICE_UNAVAILABLE,
            "circuit-open",
            "Agent unavailable",
            detail,
        ),
    }
}

fn history(turns: &[HistoryTurn]) -> Vec<HistoryEntry> {
    let mut entries = Vec::with_capacity(turns.len() * 2);
    for turn in turns {
        entries.push(HistoryEntry {
            role: "user",
            content: turn.user_message.clone(),
        });
        if let Some(answer) = &turn.agent_response {
            entries.push(HistoryEntry {
                role: "assistant",
                content: answer.clone(),
            });
        }
    }
    entries
}

/// Calls one agent, forwarding its answer's pieces to `events`; also says whether any piece
/// reached the client (after which no other agent may take over: the answer is begun).
async fn call(
    state: &AppState,
    agent: &switchyard_core::model::Agent,
    request: &AgentRequest<'_>,
    events: Option<&EventSink>,
) -> (Result<String, AgentError>, bool) {
    let Some(events) = events else {
        return (state.invoker.invoke(agent, request, None).await, false);
    };
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let mut forwarded = false;
    let result = {
        let invocation = state.invoker.invoke(agent, request, Some(&tx));
        tokio::pin!(invocation);
        loop {
            tokio::select! {
                result = &mut invocation => break result,
                Some(piece) = rx.recv() => {
                    forwarded = true;
                    let _ = events.send(ChatEvent::Delta(piece));
                }
            }
        }
    };
    while let Ok(piece) = rx.try_recv() {
        forwarded = true;
        let _ = events.send(ChatEvent::Delta(piece));
    }
    (result, forwarded)
}

/// One chat turn. With `events`, the decision and the answer's pieces are sent there as
/// they happen (for a streamed answer).
pub async fn chat(
    state: &AppState,
    principal: &Principal,
    input: ChatInput,
    events: Option<EventSink>,
) -> ApiResult<ChatAnswer> {
    let started = Instant::now();
    check_message(&input.message)?;
    let scope = &principal.scope;
    let settings = &principal.tenant.settings;
    let max_per_user = settings
        .max_conversations_per_user
        .unwrap_or(state.config.max_conversations_per_user);
    let max_per_tenant = settings
        .max_conversations_per_tenant
        .unwrap_or(state.config.max_conversations_per_tenant);

    // 1. The conversation, or the room for a new one (checked again when it is written).
    let (conversation, turns): (Option<Conversation>, Vec<HistoryTurn>) =
        match input.conversation_id {
            Some(id) => {
                let (c, t) = match input.context {
                    Some(context) => context?,
                    None => {
                        state
                            .store
                            .chat_context(scope, id, state.config.history_turns)
                            .await?
                    }
                };
                (Some(c), t)
            }
            None => {
                let (per_user, per_tenant) = state
                    .store
                    .count_conversations(scope, max_per_user, max_per_tenant)
                    .await?;
                if per_user >= max_per_user {
                    return Err(switchyard_store::StoreError::LimitReached {
                        which: "per_user",
                        limit: max_per_user,
                    }
                    .into());
                }
                if per_tenant >= max_per_tenant {
                    return Err(switchyard_store::StoreError::LimitReached {
                        which: "per_tenant",
                        limit: max_per_tenant,
                    }
                    .into());
                }
                (None, Vec::new())
            }
        };

    // 2-3. Intent and agent.
    let last_agent = conversation.as_ref().and_then(|c| c.last_agent_id);
    let mut plan = plan(state, principal, &input.message, last_agent, input.agent_id).await?;
    let slug = principal.tenant.slug.as_str();
    crate::metrics::decision(
        slug,
        plan.decision.method.as_str(),
        plan.decision.fallback_used,
        std::time::Duration::from_secs_f64(plan.own_ms / 1000.0),
    );
    let intent = intent_out(&plan.analysis);
    // One of the tenant's in-flight agent call slots, held for this turn's calls; taken
    // before anything is streamed, so that a full tenant is a plain `429`.
    let _slot = state
        .limits
        .agent_slot(&state.config, &principal.tenant)
        .inspect_err(|_| {
            crate::metrics::limited(slug, "inflight");
        })?;
    if let Some(events) = &events {
        let routing = serde_json::json!({
            "agent": summary(&plan.decision),
            "intent": intent,
            "routing": plan.decision,
        });
        let _ = events.send(ChatEvent::Routing(routing));
    }

    // 4. The agent, then those who take over if it fails.
    let conversation_id = conversation
        .as_ref()
        .map_or(input.new_conversation_id, |c| c.id);
    let message_id = MessageId::new();
    let history = history(&turns);
    let allowed_key_envs = state.key_envs_for(&principal.tenant);
    let request = AgentRequest {
        conversation_id,
        message_id,
        message: &input.message,
        history: &history,
        intent: intent.category.as_deref(),
        metadata: input.metadata.as_ref(),
        allowed_key_envs: &allowed_key_envs,
    };
    let agent_started = Instant::now();
    // The turn's agent calls, failovers included, end within the request's time limit, so
    // that a turn running on after its client went away is bounded too, well inside the
    // time after which its idempotency claim could be taken over.
    // A little before the request's own limit, which counts from a little earlier (the
    // authentication), so that the turn's 504 is what the client gets.
    let limit = std::time::Duration::from_millis(state.config.request_timeout_ms);
    let deadline = tokio::time::Instant::from_std(started) + limit
        - (limit / 10).min(std::time::Duration::from_secs(2));
    let mut candidates = vec![switchyard_core::routing::AgentRef {
        agent_id: plan.decision.agent_id,
        name: plan.decision.agent_name.clone(),
    }];
    candidates.extend(plan.decision.failover.iter().cloned());
    let mut first_failure: Option<(String, AgentError)> = None;
    let mut called_before = false;
    let mut answered: Option<(AgentId, String, String)> = None;
    for candidate in &candidates {
        let Some(agent) = plan.routing.agents.get(&candidate.agent_id) else {
            continue;
        };
        let call_started = Instant::now();
        let outcome = match state.breakers.permit(scope.tenant_id(), agent.id) {
            None => (Err(AgentError::CircuitOpen), false),
            Some(permit) => {
                let had_the_whole_turn = !called_before;
                called_before = true;
                let call = call(state, agent, &request, events.as_ref());
                match tokio::time::timeout_at(deadline, call).await {
                    Ok(outcome) => {
                        permit.record(outcome.0.is_ok());
                        outcome
                    }
                    // The turn's time is up: this agent timed out, and no one else may
                    // start (so the turn counts as begun). It counts against the agent's
                    // circuit only if it had the turn's whole time; an agent that was
                    // left only what others did not use is not to blame.
                    Err(_) => {
                        if had_the_whole_turn {
                            permit.record(false);
                        }
                        let spent =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                        (Err(AgentError::Timeout(spent)), true)
                    }
                }
            }
        };
        crate::metrics::agent_call(
            slug,
            &agent.name,
            outcome.0.as_ref().err().map(AgentError::kind),
            call_started.elapsed(),
        );
        if let Err(e) = &outcome.0 {
            let record = switchyard_core::model::AgentCallError {
                agent_id: agent.id,
                agent_name: agent.name.clone(),
                kind: e.kind().to_string(),
                at: Utc::now(),
            };
            if let Err(store_error) = state.store.record_agent_error(scope, record).await {
                tracing::warn!(error = %store_error, "recording an agent error failed");
            }
        }
        match outcome {
            (Ok(text), _) => {
                answered = Some((agent.id, agent.name.clone(), text));
                break;
            }
            (Err(e), began) => {
                tracing::warn!(agent.name = %agent.name, error = %e, "agent call failed");
                if first_failure.is_none() {
                    plan.decision.failover_from = Some(FailoverFrom {
                        agent_id: agent.id,
                        name: agent.name.clone(),
                        error: e.to_string(),
                    });
                    first_failure = Some((agent.name.clone(), e));
                }
                if began {
                    // Part of this answer already reached the client; another agent's
                    // answer cannot be spliced onto it.
                    break;
                }
            }
        }
    }
    let agent_ms = ms(agent_started);
    let Some((agent_id, agent_name, response)) = answered else {
        let (name, error) = first_failure
            .unwrap_or_else(|| (plan.decision.agent_name.clone(), AgentError::CircuitOpen));
        return Err(agent_failure(&name, &error));
    };
    if let Some((failed, _)) = &first_failure {
        crate::metrics::failover(slug, failed);
    }

    // 5. The turn and its conversation, in one transaction.
    let store_started = Instant::now();
    let routing_json = serde_json::to_value(&plan.decision).unwrap_or_default();
    let target = match conversation {
        Some(c) => TurnTarget::Existing(c.id),
        None => TurnTarget::New {
            id: conversation_id,
            title: Some(input.message.clone()),
            max_per_user,
            max_per_tenant,
        },
    };
    let (_, turn) = state
        .store
        .append_turn(
            scope,
            NewTurn {
                id: message_id,
                target,
                user_message: input.message,
                agent_response: response.clone(),
                intent_category: intent.category.clone(),
                intent_confidence: Some(intent.confidence),
                selected_agent_id: Some(agent_id),
                routing: routing_json.clone(),
                routing_method: Some(plan.decision.method.as_str().to_string()),
                routing_confidence: Some(plan.decision.confidence),
                fallback_used: Some(plan.decision.fallback_used),
                latency_ms: Some(ms(started)),
                created_at: Utc::now(),
            },
        )
        .await?;
    let store_ms = ms(store_started);
    crate::metrics::turn(
        slug,
        &agent_name,
        store_started.elapsed(),
        started.elapsed(),
    );

    Ok(ChatAnswer {
        conversation_id: conversation_id.as_uuid(),
        message_id: turn.id.as_uuid(),
        response,
        agent: AgentSummary {
            id: agent_id.as_uuid(),
            name: agent_name,
        },
        intent,
        routing: routing_json,
        debug: state.config.enable_debug_info.then_some(Debug {
            timings_ms: Timings {
                analyze: plan.analyze_ms,
                route: plan.route_ms,
                agent: agent_ms,
                store: store_ms,
            },
        }),
    })
}

/// Runs `work` (a turn) in a task of its own, tracked so that a graceful shutdown waits for
/// it; the answer comes back on the receiver. The task runs to its end even if the receiver
/// is dropped — the client went away — so a turn is never cut between its agent call and
/// its write, and its idempotency record is always settled.
pub fn spawn_turn<T: Send + 'static>(
    state: &AppState,
    work: impl Future<Output = T> + Send + 'static,
) -> oneshot::Receiver<T> {
    let (tx, rx) = oneshot::channel();
    state.turns.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx
}

/// A turn's answer, awaited from its task.
pub async fn finished<T>(done: oneshot::Receiver<ApiResult<T>>) -> ApiResult<T> {
    done.await
        .unwrap_or_else(|_| Err(ApiError::internal("the turn ended unexpectedly")))
}

/// What a streamed turn yields: its events, then its outcome.
pub enum TurnItem<T> {
    /// The routing decision or a piece of the answer.
    Event(ChatEvent),
    /// The outcome, last.
    Done(ApiResult<T>),
}

enum Outcome<T> {
    Waiting(oneshot::Receiver<ApiResult<T>>),
    Ready(ApiResult<T>),
    Taken,
}

/// A streamed turn that has begun: its first event is there (or it already ended well).
/// Whatever fails before the first event — a conversation that is not found, a limit, no
/// agent to answer — fails [`start_streamed`] instead, so it is answered with its own HTTP
/// status rather than inside a stream that says `200`.
pub struct StreamedTurn<T> {
    first: Option<ChatEvent>,
    events: mpsc::UnboundedReceiver<ChatEvent>,
    outcome: Outcome<T>,
}

impl<T> StreamedTurn<T> {
    /// The next event, then the outcome, then `None`.
    pub async fn next(&mut self) -> Option<TurnItem<T>> {
        if let Some(first) = self.first.take() {
            return Some(TurnItem::Event(first));
        }
        // The sender lives as long as the turn: `None` means every event has been read.
        if let Some(event) = self.events.recv().await {
            return Some(TurnItem::Event(event));
        }
        match std::mem::replace(&mut self.outcome, Outcome::Taken) {
            Outcome::Waiting(done) => Some(TurnItem::Done(finished(done).await)),
            Outcome::Ready(result) => Some(TurnItem::Done(result)),
            Outcome::Taken => None,
        }
    }
}

/// Starts a streamed turn in its own task ([`spawn_turn`]) and waits until it has begun.
pub async fn start_streamed<T, F>(
    state: &AppState,
    work: impl FnOnce(EventSink) -> F,
) -> ApiResult<StreamedTurn<T>>
where
    T: Send + 'static,
    F: Future<Output = ApiResult<T>> + Send + 'static,
{
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut done = spawn_turn(state, work(tx));
    // Events first: once the routing decision is out, a later failure belongs in the stream.
    tokio::select! {
        biased;
        Some(first) = events.recv() => Ok(StreamedTurn {
            first: Some(first),
            events,
            outcome: Outcome::Waiting(done),
        }),
        result = &mut done => match result {
            Ok(Ok(answer)) => Ok(StreamedTurn {
                first: None,
                events,
                outcome: Outcome::Ready(Ok(answer)),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ApiError::internal("the turn ended unexpectedly")),
        },
    }
}

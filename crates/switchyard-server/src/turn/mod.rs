//! One chat turn, top to bottom: read the conversation (or make room for a new one), plan
//! the routing, call the agent (failing over when it fails), store the turn with its
//! conversation update, and answer ([`run`]).
//!
//! No database transaction is held while an agent is called: the conversation is read in
//! one short transaction before, and the turn written in one after. A turn runs in a task of
//! its own ([`task`]), tracked for graceful shutdown: it reaches its end and is stored
//! whatever the client does, so a client that goes away, or reads a stream slowly, can
//! neither cut a turn in half nor hold one up. `/v1/chat` and the OpenAI door both run turns
//! through [`task`]; neither knows how a turn works inside.

mod failover;
mod outcome;
pub mod task;

use std::time::{Duration, Instant};

use chrono::Utc;
use switchyard_agents::{AgentRequest, HistoryEntry};
use switchyard_core::model::{Conversation, HistoryTurn, NewTurn, Tenant, TurnTarget};
use switchyard_core::routing::AgentRef;
use switchyard_core::{ConversationId, MessageId};
use switchyard_store::StoreError;
use tracing::Instrument as _;

pub use outcome::{
    ChatContext, FailedOver, Message, MessageError, Routed, Target, Thread, Timings, TurnError,
    TurnEvent, TurnInput, TurnOutcome, history_role, thread_key,
};
pub use task::EventSink;

use crate::app::AppState;
use crate::auth::Principal;
use crate::config::Config;
use crate::routing::{self, Plan};

/// One chat turn. With `events`, the decision and the answer's pieces are sent there as
/// they happen (for a streamed answer).
pub async fn run(
    state: &AppState,
    principal: &Principal,
    input: TurnInput,
    events: Option<&EventSink>,
) -> Result<TurnOutcome, TurnError> {
    let started = Instant::now();
    // The OpenAI door's conversations count toward no limit, and make room for none.
    let limits = if input.thread.is_some() {
        ConversationLimits::NONE
    } else {
        ConversationLimits::of(&state.config, &principal.tenant)
    };

    // 1. The conversation, or the room for a new one (checked again when it is written).
    let context = context(state, principal, input.target, limits).await?;

    tracing::Span::current().record("conversation.id", tracing::field::display(context.id));

    // 2–3. Intent and agent.
    let last_agent = context.conversation.as_ref().and_then(|c| c.last_agent_id);
    let message = input.message.as_str();
    let mut plan = routing::plan(state, principal, message, last_agent, input.agent_id).await?;
    plan.attribute_intent(plan.decision.agent_id);
    let _slot = admit(state, principal, &plan)?;
    if let Some(events) = events {
        let _ = events.send(TurnEvent::Routed(Box::new(Routed {
            agent: chosen(&plan),
            intent: plan.analysis.intent.clone(),
            decision: plan.decision.clone(),
        })));
    }

    // 4. The agent, then those who take over if it fails.
    let message_id = MessageId::new();
    let history = match &input.thread {
        Some(thread) => thread.history.clone(),
        None => history(&context.turns),
    };
    let allowed_key_envs = state.key_envs_for(&principal.tenant);
    let usage = switchyard_agents::UsageSink::default();
    let intent = plan.analysis.intent.category.clone();
    let request = AgentRequest {
        conversation_id: context.id,
        message_id,
        message,
        history: &history,
        intent: intent.as_deref(),
        metadata: input.metadata.as_ref(),
        allowed_key_envs: &allowed_key_envs,
        usage: Some(&usage),
        traceparent: None,
    };
    let deadline = deadline(&state.config, started);
    let answered =
        failover::answer(state, principal, &mut plan, &request, events, deadline).await?;
    plan.attribute_intent(answered.agent.agent_id);

    // 5. The turn and its conversation, in one transaction.
    let store_started = Instant::now();
    let record = Record {
        id: message_id,
        message: input.message,
        context: &context,
        limits,
        plan: &plan,
        agent: &answered.agent,
        response: &answered.text,
        started,
    };
    let write = tracing::debug_span!(
        "store.write",
        tenant.id = %principal.scope.tenant_id(),
        conversation.id = %context.id,
    );
    record.write(state, principal).instrument(write).await?;
    if let Some(thread) = &input.thread {
        // The thread as the client holds it now: its messages and this answer.
        let key = thread_key(
            principal.user.id,
            thread
                .messages
                .iter()
                .map(|(role, text)| (*role, text.as_str()))
                .chain([("assistant", answered.text.as_str())]),
        );
        if let Err(e) = state
            .store
            .set_thread_key(&principal.scope, context.id, &key)
            .await
        {
            // The turn is stored; the client's next call starts another conversation.
            tracing::warn!(error = %e, "the OpenAI door's thread key was not stored");
        }
    }
    let store_ms = ms(store_started);
    let (slug, agent) = (&principal.tenant.slug, &answered.agent.name);
    crate::metrics::turn(slug, agent, store_started.elapsed(), started.elapsed());
    Ok(TurnOutcome {
        conversation_id: context.id,
        message_id,
        response: answered.text,
        agent: answered.agent,
        intent: plan.analysis.intent,
        decision: plan.decision,
        timings: Timings {
            analyze: plan.analyze_ms,
            route: plan.route_ms,
            agent: answered.agent_ms,
            store: store_ms,
        },
        usage: usage.into_inner().unwrap_or_else(|p| p.into_inner()),
    })
}

/// Counts the decision, and takes one of the tenant's in-flight agent call slots for this
/// turn's calls: before anything is streamed, so that a full tenant is a plain `429`.
fn admit(
    state: &AppState,
    principal: &Principal,
    plan: &Plan,
) -> Result<tokio::sync::OwnedSemaphorePermit, TurnError> {
    let slug = principal.tenant.slug.as_str();
    crate::metrics::decision(
        slug,
        plan.decision.method.as_str(),
        plan.decision.fallback_used,
        Duration::from_secs_f64(plan.own_ms / 1000.0),
    );
    state
        .limits
        .agent_slot(&state.config, &principal.tenant)
        .ok_or_else(|| {
            crate::metrics::limited(slug, "inflight");
            TurnError::Busy
        })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn chosen(plan: &Plan) -> AgentRef {
    AgentRef {
        agent_id: plan.decision.agent_id,
        name: plan.decision.agent_name.clone(),
    }
}

/// The conversation limits of the tenant: its own settings over the global ones.
#[derive(Clone, Copy, Debug)]
struct ConversationLimits {
    per_user: i64,
    per_tenant: i64,
}

impl ConversationLimits {
    /// No limit: the OpenAI door's conversations, which are not counted (the store takes
    /// limits below zero so).
    const NONE: Self = Self {
        per_user: -1,
        per_tenant: -1,
    };

    fn of(config: &Config, tenant: &Tenant) -> Self {
        let s = &tenant.settings;
        Self {
            per_user: s
                .max_conversations_per_user
                .unwrap_or(config.max_conversations_per_user),
            per_tenant: s
                .max_conversations_per_tenant
                .unwrap_or(config.max_conversations_per_tenant),
        }
    }
}

/// A turn's conversation: the one continued (with its last turns), or the id of a new one.
struct Context {
    id: ConversationId,
    conversation: Option<Conversation>,
    turns: Vec<HistoryTurn>,
}

async fn context(
    state: &AppState,
    principal: &Principal,
    target: Target,
    limits: ConversationLimits,
) -> Result<Context, TurnError> {
    let scope = &principal.scope;
    match target {
        Target::Existing(id, read) => {
            let (conversation, turns) = match read {
                Some(read) => read?,
                None => {
                    state
                        .store
                        .chat_context(scope, id, state.config.history_turns)
                        .await?
                }
            };
            Ok(Context {
                id,
                conversation: Some(conversation),
                turns,
            })
        }
        Target::New(id) if limits.per_user < 0 => Ok(Context {
            id,
            conversation: None,
            turns: Vec::new(),
        }),
        Target::New(id) => {
            let (per_user, per_tenant) = state
                .store
                .count_conversations(scope, limits.per_user, limits.per_tenant)
                .await?;
            let reached =
                |which, limit| TurnError::Store(StoreError::LimitReached { which, limit });
            if per_user >= limits.per_user {
                return Err(reached("per_user", limits.per_user));
            }
            if per_tenant >= limits.per_tenant {
                return Err(reached("per_tenant", limits.per_tenant));
            }
            Ok(Context {
                id,
                conversation: None,
                turns: Vec::new(),
            })
        }
    }
}

/// The conversation's earlier messages as agents receive them.
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

/// When the turn's agent calls, failovers included, must have ended: within the request's
/// time limit, so that a turn running on after its client went away is bounded too, well
/// inside the time after which its idempotency claim could be taken over. A little before
/// the request's own limit, which counts from a little earlier (the authentication), so
/// that the turn's `504` is what the client gets.
fn deadline(config: &Config, started: Instant) -> tokio::time::Instant {
    let limit = Duration::from_millis(config.request_timeout_ms);
    tokio::time::Instant::from_std(started) + limit - (limit / 10).min(Duration::from_secs(2))
}

/// The turn as it is stored.
struct Record<'a> {
    id: MessageId,
    message: Message,
    context: &'a Context,
    limits: ConversationLimits,
    plan: &'a Plan,
    agent: &'a AgentRef,
    response: &'a str,
    started: Instant,
}

impl Record<'_> {
    async fn write(self, state: &AppState, principal: &Principal) -> Result<(), TurnError> {
        let decision = &self.plan.decision;
        let intent = &self.plan.analysis.intent;
        let target = match &self.context.conversation {
            Some(c) => TurnTarget::Existing(c.id),
            None => TurnTarget::New {
                id: self.context.id,
                title: Some(self.message.as_str().to_owned()),
                max_per_user: self.limits.per_user,
                max_per_tenant: self.limits.per_tenant,
            },
        };
        let turn = NewTurn {
            id: self.id,
            target,
            user_message: self.message.into_string(),
            agent_response: self.response.to_owned(),
            intent_category: intent.category.clone(),
            intent_confidence: Some(intent.confidence),
            selected_agent_id: Some(self.agent.agent_id),
            routing: serde_json::to_value(decision).unwrap_or_default(),
            routing_method: Some(decision.method.as_str().to_owned()),
            routing_confidence: Some(decision.confidence),
            fallback_used: Some(decision.fallback_used),
            latency_ms: Some(ms(self.started)),
            created_at: Utc::now(),
        };
        state.store.append_turn(&principal.scope, turn).await?;
        Ok(())
    }
}

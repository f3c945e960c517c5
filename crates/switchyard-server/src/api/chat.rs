//! The shapes of `POST /v1/chat` and `POST /v1/route`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::routing::{AgentRef, Decision, Intent};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::turn::{Timings, TurnOutcome};

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
    pub metadata: Option<serde_json::Map<String, Value>>,
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

/// The agent in an answer.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgentSummary {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
}

impl From<&AgentRef> for AgentSummary {
    fn from(agent: &AgentRef) -> Self {
        Self {
            id: agent.agent_id.as_uuid(),
            name: agent.name.clone(),
        }
    }
}

impl From<&Decision> for AgentSummary {
    fn from(decision: &Decision) -> Self {
        Self {
            id: decision.agent_id.as_uuid(),
            name: decision.agent_name.clone(),
        }
    }
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

impl From<&Intent> for IntentOut {
    fn from(intent: &Intent) -> Self {
        Self {
            category: intent.category.clone(),
            confidence: intent.confidence,
            keywords: intent.keywords.clone(),
        }
    }
}

/// Where the time of a turn went, in milliseconds.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Timings)]
pub struct TimingsOut {
    /// Intent analysis.
    pub analyze: f64,
    /// Choosing the agent.
    pub route: f64,
    /// The agent call(s).
    pub agent: f64,
    /// Storing the turn.
    pub store: f64,
}

impl From<Timings> for TimingsOut {
    fn from(t: Timings) -> Self {
        Self {
            analyze: t.analyze,
            route: t.route,
            agent: t.agent,
            store: t.store,
        }
    }
}

/// Debug information (with `ORCHESTRATOR_ENABLE_DEBUG_INFO=true`).
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = Debug)]
pub struct DebugInfo {
    /// Where the time went.
    pub timings_ms: TimingsOut,
}

/// The routing decision of a turn, as answered and stored (docs/routing.md). Turns stored
/// before a field existed lack it. (The shape `Decision` serialises to, for the document.)
#[derive(Clone, Debug, ToSchema)]
pub struct RoutingRecord {
    /// `pinned`, `sticky`, `lexical`, `embedding`, `llm` or `fallback`.
    #[schema(example = "lexical")]
    pub method: String,
    /// The calibrated score of the agent the rules chose, before any unavailable agent was
    /// passed over (1 when pinned).
    pub confidence: f64,
    /// Best minus second-best score over all the tenant's agents.
    pub margin: f64,
    /// Whether the fallback agent answers.
    pub fallback_used: bool,
    /// The first agent that failed or was passed over before the one that answered.
    pub failover_from: Option<FailedAgent>,
    /// Agents passed over because they were unavailable, in the order tried.
    pub skipped: Vec<SkippedAgent>,
    /// The analysis's own intent label, when the turn's intent is the answering agent's
    /// (absent otherwise).
    pub guessed_intent: Option<String>,
    /// Why, in a few words.
    pub reason: String,
    /// The next best available candidates.
    pub alternatives: Vec<AlternativeAgent>,
}

/// An agent that failed (or was passed over) before the one that answered.
#[derive(Clone, Debug, ToSchema)]
pub struct FailedAgent {
    /// Its id.
    pub agent_id: Uuid,
    /// Its name.
    pub name: String,
    /// What went wrong, in a few words.
    pub error: String,
}

/// An agent routing passed over because it was unavailable.
#[derive(Clone, Debug, ToSchema)]
pub struct SkippedAgent {
    /// Its id.
    pub agent_id: Uuid,
    /// Its name.
    pub name: String,
    /// Why ("circuit open after 5 failures in a row").
    pub reason: String,
}

/// Another candidate of a decision.
#[derive(Clone, Debug, ToSchema)]
pub struct AlternativeAgent {
    /// Its id.
    pub agent_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its calibrated score.
    pub score: f64,
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
    #[schema(value_type = RoutingRecord)]
    pub routing: Value,
    /// Timings, when enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<DebugInfo>,
    /// What the answering agent's model said the answer cost (the OpenAI door shows it).
    #[serde(skip)]
    #[schema(ignore)]
    pub usage: Option<switchyard_agents::Usage>,
}

impl ChatAnswer {
    /// The answer to a turn; `debug` adds its timings.
    pub fn new(outcome: TurnOutcome, debug: bool) -> Self {
        Self {
            conversation_id: outcome.conversation_id.as_uuid(),
            message_id: outcome.message_id.as_uuid(),
            agent: AgentSummary::from(&outcome.agent),
            intent: IntentOut::from(&outcome.intent),
            routing: serde_json::to_value(&outcome.decision).unwrap_or_default(),
            debug: debug.then(|| DebugInfo {
                timings_ms: outcome.timings.into(),
            }),
            response: outcome.response,
            usage: outcome.usage,
        }
    }
}

// Also the data of a streamed chat answer's `routing` event.
/// The answer to `/v1/route`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RouteAnswer {
    /// The agent that would answer.
    pub agent: AgentSummary,
    /// The analysed intent.
    pub intent: IntentOut,
    /// The routing decision.
    #[schema(value_type = RoutingRecord)]
    pub routing: Value,
}

impl RouteAnswer {
    /// The routing of a decision.
    pub fn new(agent: AgentSummary, intent: &Intent, decision: &Decision) -> Self {
        Self {
            agent,
            intent: IntentOut::from(intent),
            routing: serde_json::to_value(decision).unwrap_or_default(),
        }
    }
}

//! A tenant's agents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_agents::Health;
use switchyard_core::agent_config::AgentConfig;
use switchyard_core::model::{Agent, AgentFields, AgentKind};
use utoipa::ToSchema;
use uuid::Uuid;

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentOut {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the tenant.
    pub name: String,
    /// What it does.
    pub description: String,
    /// `echo`, `http`, `openai` or `a2a`.
    #[schema(example = "echo")]
    pub kind: String,
    /// Its settings; secrets and header values show as `***`.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// The intents it serves.
    pub intents: Vec<String>,
    /// Words that point to it.
    pub keywords: Vec<String>,
    /// Sample messages.
    pub examples: Vec<String>,
    /// Whether it takes part in routing.
    pub enabled: bool,
    /// Tie-breaker (higher wins).
    pub priority: i32,
    /// Whether it answers when nothing else fits.
    pub is_fallback: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// How its calls have gone lately, as this replica saw them.
    pub health: HealthOut,
}

/// An agent's health: its circuit, and how its last calls (or health checks) went.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// `closed` (calls go through), `open` (passed over until its time is up) or
    /// `half_open` (the next call is a trial).
    #[schema(example = "closed")]
    pub state: &'static str,
    /// Failed calls (or checks) in a row; 0 after a success.
    pub consecutive_failures: u32,
    /// What went wrong last, in a few words (admins only: `null` for members, as the text
    /// may name addresses the server reached).
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When it last answered (or passed a health check).
    pub last_success_at: Option<DateTime<Utc>>,
}

impl From<Health> for HealthOut {
    fn from(h: Health) -> Self {
        Self {
            state: h.state.as_str(),
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error,
            last_error_at: h.last_error_at,
            last_success_at: h.last_success_at,
        }
    }
}

/// The outcome of `POST /v1/agents/{id}/test`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgentTestOut {
    /// Whether the agent answered.
    pub ok: bool,
    /// The HTTP status of the agent's answer, when it answered over HTTP at all.
    pub status: Option<u16>,
    /// How long the call took, in milliseconds.
    pub latency_ms: f64,
    /// What went wrong, in a few words (the text routing shows); `null` when `ok`.
    pub error: Option<String>,
}

impl From<Agent> for AgentOut {
    /// An agent no call has told anything of yet (just made or changed).
    fn from(a: Agent) -> Self {
        Self::new(a, Health::UNKNOWN)
    }
}

impl AgentOut {
    /// The agent as shown, with its health.
    pub fn new(a: Agent, health: Health) -> Self {
        Self {
            id: a.id.as_uuid(),
            name: a.name,
            description: a.description,
            kind: a.kind.as_str().into(),
            config: AgentConfig::redacted(&a.config),
            intents: a.intents,
            keywords: a.keywords,
            examples: a.examples,
            enabled: a.enabled,
            priority: a.priority,
            is_fallback: a.is_fallback,
            created_at: a.created_at,
            updated_at: a.updated_at,
            health: health.into(),
        }
    }
}

/// How an agent is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Built in: answers from a template.
    Echo,
    /// An HTTP service.
    Http,
    /// An OpenAI-compatible chat-completions model.
    Openai,
    /// An Agent2Agent protocol agent.
    A2a,
}

impl From<Kind> for AgentKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Echo => AgentKind::Echo,
            Kind::Http => AgentKind::Http,
            Kind::Openai => AgentKind::Openai,
            Kind::A2a => AgentKind::A2a,
        }
    }
}

/// A new agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    /// 1 to 64 characters, unique in the tenant.
    pub name: String,
    /// What it does (used for routing).
    #[serde(default)]
    pub description: String,
    /// `echo`, `http`, `openai` or `a2a`.
    pub kind: Kind,
    /// The kind's settings.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Intent labels.
    #[serde(default)]
    pub intents: Vec<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Sample messages.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Default false.
    #[serde(default)]
    pub is_fallback: bool,
}

impl From<CreateAgent> for AgentFields {
    fn from(body: CreateAgent) -> Self {
        Self {
            name: body.name,
            description: body.description,
            kind: body.kind.into(),
            config: body.config,
            intents: body.intents,
            keywords: body.keywords,
            examples: body.examples,
            enabled: body.enabled,
            priority: body.priority,
            is_fallback: body.is_fallback,
        }
    }
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

fn yes() -> bool {
    true
}

/// A change to an agent: the fields given replace the current ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAgent {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new kind (give its config too).
    pub kind: Option<Kind>,
    /// A new config; secrets shown as `***` are kept.
    #[schema(value_type = Option<Object>)]
    pub config: Option<serde_json::Value>,
    /// New intents.
    pub intents: Option<Vec<String>>,
    /// New keywords.
    pub keywords: Option<Vec<String>>,
    /// New examples.
    pub examples: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// A new priority.
    pub priority: Option<i32>,
    /// Make it (or stop it being) the fallback.
    pub is_fallback: Option<bool>,
}

/// An agent to import from its A2A Agent Card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportAgent {
    /// Where the card is (e.g. `https://agent.example.com/.well-known/agent-card.json`).
    pub card_url: String,
    /// A name (default: the card's).
    pub name: Option<String>,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Default false.
    #[serde(default)]
    pub is_fallback: bool,
}

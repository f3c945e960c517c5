//! The resources Switchyard keeps: tenants, users, API keys, agents, conversations and turns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::settings::TenantSettings;
use crate::{AgentId, ApiKeyId, ConversationId, MessageId, Role, TenantId, UserId};

/// Whether a tenant may use the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// In service.
    Active,
    /// Every request of its users is refused until an operator reactivates it.
    Suspended,
}

impl TenantStatus {
    /// The status as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// Whether a user may sign in and act.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// May sign in.
    Active,
    /// Refused at once, whatever credential they present.
    Disabled,
}

impl UserStatus {
    /// The status as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// A tenant: the one global resource; everything else belongs to exactly one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique, URL-safe name, used at login.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// Per-tenant overrides of the global settings.
    pub settings: TenantSettings,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Bumped whenever the tenant's agents change, so every replica knows when its cached
    /// routing index is stale.
    #[serde(skip)]
    pub agents_version: i64,
}

/// A new tenant.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Its slug (already validated).
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Initial settings.
    pub settings: TenantSettings,
}

/// A change to a tenant.
#[derive(Clone, Debug, Default)]
pub struct TenantPatch {
    /// A new display name.
    pub name: Option<String>,
    /// A new status.
    pub status: Option<TenantStatus>,
    /// Changes to the settings, merged into the current ones by the store while it holds
    /// the tenant's row (so concurrent patches cannot lose each other's keys): each key
    /// given replaces that key, `null` removes it ([`TenantSettings::merged`]).
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A user of one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// The tenant it belongs to.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Its e-mail address, lower-cased; unique within the tenant.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// Member or admin.
    pub role: Role,
    /// Active or disabled.
    pub status: UserStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A new user.
#[derive(Clone, Debug)]
pub struct NewUser {
    /// E-mail address (lower-cased by the caller).
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// Member or admin.
    pub role: Role,
    /// An argon2 PHC string, or none for users who only get tokens from the operator.
    pub password_hash: Option<String>,
}

/// A change to a user. Outer `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// A new display name (`Some(None)` clears it).
    pub display_name: Option<Option<String>>,
    /// A new role.
    pub role: Option<Role>,
    /// A new status.
    pub status: Option<UserStatus>,
    /// A new password hash.
    pub password_hash: Option<String>,
}

/// An API key: a long random secret stored only as its SHA-256 hash.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiKey {
    /// Its id.
    pub id: ApiKeyId,
    /// The user the key acts as.
    pub user_id: UserId,
    /// A name to recognise it by.
    pub name: String,
    /// The first 12 characters of the secret.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new API key, its secret already hashed.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// The id, which the secret embeds.
    pub id: ApiKeyId,
    /// The user the key acts as.
    pub user_id: UserId,
    /// A name to recognise it by.
    pub name: String,
    /// The first 12 characters of the secret.
    pub prefix: String,
    /// SHA-256 of the whole secret.
    pub secret_hash: Vec<u8>,
}

/// How an agent is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Built in: answers from a template.
    Echo,
    /// An HTTP service.
    Http,
    /// An OpenAI-compatible chat-completions model.
    Openai,
    /// An Agent2Agent protocol agent.
    A2a,
}

impl AgentKind {
    /// The kind as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentKind::Echo => "echo",
            AgentKind::Http => "http",
            AgentKind::Openai => "openai",
            AgentKind::A2a => "a2a",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "echo" => Some(Self::Echo),
            "http" => Some(Self::Http),
            "openai" => Some(Self::Openai),
            "a2a" => Some(Self::A2a),
            _ => None,
        }
    }
}

/// An agent of one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agent {
    /// Its id.
    pub id: AgentId,
    /// The tenant it belongs to.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Its name, unique within the tenant.
    pub name: String,
    /// What it does, in words; used for routing.
    pub description: String,
    /// How it is reached.
    pub kind: AgentKind,
    /// Kind-specific settings.
    pub config: serde_json::Value,
    /// The intent labels it serves.
    pub intents: Vec<String>,
    /// Words that point to it.
    pub keywords: Vec<String>,
    /// Sample user messages it should receive.
    pub examples: Vec<String>,
    /// Whether it takes part in routing.
    pub enabled: bool,
    /// Breaks ties between equally good candidates (higher wins).
    pub priority: i32,
    /// Whether it answers when nothing else fits (at most one enabled per tenant).
    pub is_fallback: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The fields of an agent a tenant admin sets (for creating, or the whole state after an
/// update).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentFields {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// How it is reached.
    pub kind: AgentKind,
    /// Kind-specific settings.
    pub config: serde_json::Value,
    /// Intent labels.
    pub intents: Vec<String>,
    /// Keywords.
    pub keywords: Vec<String>,
    /// Sample messages.
    pub examples: Vec<String>,
    /// Whether it takes part in routing.
    pub enabled: bool,
    /// Tie-breaker.
    pub priority: i32,
    /// Whether it is the fallback.
    pub is_fallback: bool,
}

impl From<Agent> for AgentFields {
    fn from(a: Agent) -> Self {
        Self {
            name: a.name,
            description: a.description,
            kind: a.kind,
            config: a.config,
            intents: a.intents,
            keywords: a.keywords,
            examples: a.examples,
            enabled: a.enabled,
            priority: a.priority,
            is_fallback: a.is_fallback,
        }
    }
}

/// A conversation of one user.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// The tenant it belongs to.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// The user whose conversation it is.
    pub user_id: UserId,
    /// A title (the start of the first message).
    pub title: Option<String>,
    /// The intent seen most in its turns.
    pub primary_intent: Option<String>,
    /// The agent that answered last.
    pub last_agent_id: Option<AgentId>,
    /// How many turns it has.
    pub message_count: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its last turn was stored.
    pub last_activity: DateTime<Utc>,
}

/// One turn: the user's message, the agent's answer and the routing decision.
#[derive(Clone, Debug, Serialize)]
pub struct Turn {
    /// Its id.
    pub id: MessageId,
    /// The tenant it belongs to.
    #[serde(skip)]
    pub tenant_id: TenantId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// What the user wrote.
    pub user_message: String,
    /// What the agent answered (absent only in turns upgraded from the legacy layout).
    pub agent_response: Option<String>,
    /// The analysed intent.
    pub intent_category: Option<String>,
    /// The intent's confidence.
    pub intent_confidence: Option<f64>,
    /// The agent that answered.
    pub selected_agent_id: Option<AgentId>,
    /// The routing decision, as shown in the chat answer: kept as the JSON text stored,
    /// since it is only ever passed on (reading it into a tree and writing it out again
    /// would cost every conversation read).
    pub routing: Box<serde_json::value::RawValue>,
    /// How long the whole turn took.
    pub latency_ms: Option<f64>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl PartialEq for Turn {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.tenant_id == other.tenant_id
            && self.conversation_id == other.conversation_id
            && self.user_message == other.user_message
            && self.agent_response == other.agent_response
            && self.intent_category == other.intent_category
            && self.intent_confidence == other.intent_confidence
            && self.selected_agent_id == other.selected_agent_id
            && self.routing.get() == other.routing.get()
            && self.latency_ms == other.latency_ms
            && self.created_at == other.created_at
    }
}

/// One earlier turn of a conversation, as far as an agent's history needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryTurn {
    /// The turn's id.
    pub id: MessageId,
    /// What the user wrote.
    pub user_message: String,
    /// What the agent answered.
    pub agent_response: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// Where a new turn goes.
#[derive(Clone, Debug)]
pub enum TurnTarget {
    /// An existing conversation of the scope's user.
    Existing(ConversationId),
    /// A conversation created together with its first turn, if the limits allow.
    New {
        /// The new conversation's id.
        id: ConversationId,
        /// Its title.
        title: Option<String>,
        /// The most conversations the user may have (below zero: none, for a conversation
        /// of the OpenAI door, which counts toward no limit).
        max_per_user: i64,
        /// The most conversations the tenant may have.
        max_per_tenant: i64,
    },
}

/// A turn to store.
#[derive(Clone, Debug)]
pub struct NewTurn {
    /// The turn's id.
    pub id: MessageId,
    /// Its conversation.
    pub target: TurnTarget,
    /// What the user wrote.
    pub user_message: String,
    /// What the agent answered.
    pub agent_response: String,
    /// The analysed intent.
    pub intent_category: Option<String>,
    /// The intent's confidence.
    pub intent_confidence: Option<f64>,
    /// The agent that answered.
    pub selected_agent_id: Option<AgentId>,
    /// The routing decision.
    pub routing: serde_json::Value,
    /// The decision's method (`lexical`, `sticky`, …), kept as a column for analytics.
    pub routing_method: Option<String>,
    /// The decision's confidence.
    pub routing_confidence: Option<f64>,
    /// Whether the fallback agent answered because nothing was clear enough or its own
    /// examples matched best.
    pub fallback_used: Option<bool>,
    /// How long the turn took.
    pub latency_ms: Option<f64>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// A failed agent call, kept for the error rates of analytics.
#[derive(Clone, Debug)]
pub struct AgentCallError {
    /// The agent.
    pub agent_id: AgentId,
    /// Its name at the time.
    pub agent_name: String,
    /// `failed`, `timeout` or `circuit_open`.
    pub kind: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One agent's figures in a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentFigures {
    /// The agent.
    pub agent_id: AgentId,
    /// Its name (absent if it has been deleted and never failed in the period).
    pub name: Option<String>,
    /// Turns it answered.
    pub turns: i64,
    /// Calls to it that failed.
    pub errors: i64,
}

/// A tenant's routing figures over a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoutingAnalytics {
    /// Turns stored in the period.
    pub turns: i64,
    /// Conversations with a turn in the period.
    pub conversations: i64,
    /// Turns per intent (`None`: no intent recorded), most first.
    pub by_intent: Vec<(Option<String>, i64)>,
    /// Per agent, most turns first.
    pub by_agent: Vec<AgentFigures>,
    /// The mean routing confidence.
    pub mean_confidence: Option<f64>,
    /// The share of turns the fallback agent answered because nothing was clear enough or
    /// its own examples matched best.
    pub fallback_rate: Option<f64>,
    /// Failed agent calls (failovers included) over all agent calls.
    pub agent_error_rate: Option<f64>,
    /// The whole turn's latency: median, 95th and 99th percentile (nearest rank).
    pub latency_ms: [Option<f64>; 3],
}

/// A tenant's routing figures over one stretch of a period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// Its start.
    pub from: DateTime<Utc>,
    /// Its end (exclusive).
    pub to: DateTime<Utc>,
    /// Turns stored in it.
    pub turns: i64,
    /// The share of them the fallback answered because nothing was clear enough or its own
    /// examples matched best.
    pub fallback_rate: Option<f64>,
    /// Their whole-turn latency's 95th percentile (nearest rank).
    pub latency_p95_ms: Option<f64>,
}

/// A stored turn as the routing lab replays it (docs/routing.md, "The routing lab").
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedDecision {
    /// The turn.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// What the user wrote.
    pub user_message: String,
    /// The agent the routing rules chose: the first one that failed or was passed over, or
    /// else the one that answered (`None` in turns upgraded from the legacy layout).
    pub agent_id: Option<AgentId>,
    /// How it was decided (`lexical`, `pinned`, `sticky`, …), if recorded.
    pub method: Option<String>,
    /// The agent that answered the conversation's turn before this one: the agent a
    /// follow-up sticks with.
    pub previous_agent_id: Option<AgentId>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// What one retention batch removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionBatch {
    /// Turns deleted.
    pub turns: u64,
    /// Conversations deleted because they were left empty.
    pub conversations: u64,
}

/// How many rows of each kind a tenant holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantUsage {
    /// Users.
    pub users: i64,
    /// API keys, revoked ones included.
    pub api_keys: i64,
    /// Agents.
    pub agents: i64,
    /// Conversations.
    pub conversations: i64,
    /// Turns.
    pub turns: i64,
    /// Idempotency records.
    pub idempotency_keys: i64,
    /// Failed agent calls kept for analytics.
    pub agent_call_errors: i64,
}

/// What starting an idempotent request found.
#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyStart {
    /// The key is new: the request runs, and its answer is recorded when it completes.
    Started,
    /// The same key and request already completed: this is its answer.
    Completed(serde_json::Value),
    /// The same key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

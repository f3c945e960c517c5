//! The shapes of the v1 API: what requests carry and answers show. They are the contract
//! (DESIGN §3), kept apart from the domain types so that a change inside cannot change the
//! API by accident, and they carry the OpenAPI schemas.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use switchyard_core::agent_config::AgentConfig;
use switchyard_core::model::{Agent, AgentKind, ApiKey, Conversation, Tenant, Turn, User};
use switchyard_core::page::Page;
use utoipa::ToSchema;
use uuid::Uuid;

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> List<T> {
    /// The API form of a store page.
    pub fn from_page<D>(page: Page<D>, f: impl FnMut(D) -> T) -> Self {
        let next_cursor = page.next.map(|c| c.encode());
        Self {
            items: page.items.into_iter().map(f).collect(),
            next_cursor,
        }
    }
}

/// Reads a field that may be absent (`None`), null (`Some(None)`) or set.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ----- tenants -----

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantOut {
    /// Its id.
    pub id: Uuid,
    /// Its unique slug (used at login).
    pub slug: String,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    #[schema(example = "active")]
    pub status: String,
    /// Per-tenant overrides of the global settings.
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<Tenant> for TenantOut {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.as_uuid(),
            slug: t.slug,
            name: t.name,
            status: t.status.as_str().into(),
            settings: serde_json::to_value(&t.settings).unwrap_or_default(),
            created_at: t.created_at,
        }
    }
}

/// A new tenant, optionally with its first admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 2 to 63 of a-z, 0-9 and `-`, starting with a letter or digit.
    pub slug: String,
    /// A display name.
    pub name: String,
    /// Initial settings.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// The first admin's e-mail address.
    pub admin_email: Option<String>,
    /// The first admin's password (at least 12 characters).
    pub admin_password: Option<String>,
}

/// The tenant created, with its first admin if one was asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    /// The tenant.
    pub tenant: TenantOut,
    /// The first admin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<UserOut>,
}

/// A change to a tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    /// A new name.
    pub name: Option<String>,
    /// `active` or `suspended`.
    pub status: Option<String>,
    /// Settings to change: each key given replaces that key, `null` removes it.
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
}

// ----- users -----

/// A user of the tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Its id.
    pub id: Uuid,
    /// Its e-mail address.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    #[schema(example = "member")]
    pub role: String,
    /// `active` or `disabled`.
    #[schema(example = "active")]
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email,
            display_name: u.display_name,
            role: u.role.as_str().into(),
            status: u.status.as_str().into(),
            created_at: u.created_at,
        }
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique within the tenant.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    pub role: String,
    /// At least 12 characters; without one the user signs in only with tokens or keys.
    pub password: Option<String>,
}

/// A change to a user.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// A new name (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// `member` or `admin`.
    pub role: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    /// A new password.
    pub password: Option<String>,
}

/// Who is asking.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The user.
    pub user: MeUser,
    /// Their tenant.
    pub tenant: MeTenant,
}

/// The user in `/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeUser {
    /// Its id.
    pub id: Uuid,
    /// Its e-mail address.
    pub email: String,
    /// A name to show.
    pub display_name: Option<String>,
    /// `member` or `admin`.
    pub role: String,
    /// `active`.
    pub status: String,
}

/// The tenant in `/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeTenant {
    /// Its id.
    pub id: Uuid,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// `active`.
    pub status: String,
}

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The tenant's slug.
    pub tenant: String,
    /// The user's e-mail address.
    pub email: String,
    /// The password.
    pub password: String,
}

/// A token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenOut {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

// ----- API keys -----

/// An API key (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyOut {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The user it acts as.
    pub user_id: Uuid,
    /// The first 12 characters of the secret, to recognise it.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyOut {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id.as_uuid(),
            name: k.name,
            user_id: k.user_id.as_uuid(),
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// A new API key, with its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// The user it acts as.
    pub user_id: Uuid,
    /// The first 12 characters of the secret.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// The key (`sy_…`): shown only now.
    pub secret: String,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// A name to recognise it by.
    pub name: String,
    /// The user of the tenant it acts as (default: the caller).
    pub user_id: Option<Uuid>,
}

// ----- agents -----

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
}

impl From<Agent> for AgentOut {
    fn from(a: Agent) -> Self {
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

// ----- conversations -----

/// A conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationOut {
    /// Its id.
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// The start of its first message.
    pub title: Option<String>,
    /// The intent of its first turn.
    pub primary_intent: Option<String>,
    /// The agent that answered last.
    pub last_agent_id: Option<Uuid>,
    /// How many turns it has.
    pub message_count: i64,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// When its last turn was stored.
    pub last_activity: DateTime<Utc>,
}

impl From<Conversation> for ConversationOut {
    fn from(c: Conversation) -> Self {
        Self {
            id: c.id.as_uuid(),
            user_id: c.user_id.as_uuid(),
            title: c.title,
            primary_intent: c.primary_intent,
            last_agent_id: c.last_agent_id.map(|a| a.as_uuid()),
            message_count: c.message_count,
            created_at: c.created_at,
            last_activity: c.last_activity,
        }
    }
}

/// One turn of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnOut {
    /// Its id.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// What the user wrote.
    pub user_message: String,
    /// What the agent answered.
    pub agent_response: Option<String>,
    /// The analysed intent.
    pub intent_category: Option<String>,
    /// The intent's confidence.
    pub intent_confidence: Option<f64>,
    /// The agent that answered.
    pub selected_agent_id: Option<Uuid>,
    /// The routing decision.
    #[schema(value_type = Object)]
    pub routing: Box<serde_json::value::RawValue>,
    /// How long the turn took.
    pub latency_ms: Option<f64>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl From<Turn> for TurnOut {
    fn from(t: Turn) -> Self {
        Self {
            id: t.id.as_uuid(),
            conversation_id: t.conversation_id.as_uuid(),
            user_message: t.user_message,
            agent_response: t.agent_response,
            intent_category: t.intent_category,
            intent_confidence: t.intent_confidence,
            selected_agent_id: t.selected_agent_id.map(|a| a.as_uuid()),
            routing: t.routing,
            latency_ms: t.latency_ms,
            created_at: t.created_at,
        }
    }
}

/// A conversation with the first page of its turns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationDetail {
    /// The conversation.
    #[serde(flatten)]
    pub conversation: ConversationOut,
    /// Its turns, oldest first.
    pub messages: List<TurnOut>,
}

// ----- health -----

/// Health of the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: &'static str,
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

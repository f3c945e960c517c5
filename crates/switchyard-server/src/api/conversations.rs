//! Conversations and their turns.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::model::{Conversation, Turn};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::List;

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
    /// The routing decision as it was stored: the fields of `RoutingRecord` (a turn stored
    /// before a field existed lacks it; a migrated turn has the fields it came with).
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

/// The conversation list's parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListConversationsParams {
    /// Rows per page (1 to 100, default 20).
    pub limit: Option<String>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Admins: one user's conversations.
    pub user_id: Option<String>,
    /// Admins: `true` for every conversation of the tenant.
    pub all: Option<String>,
}

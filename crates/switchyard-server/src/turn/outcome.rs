//! What a chat turn is asked and what it answers, as plain data: the HTTP routes turn these
//! into their own shapes (`/v1/chat`'s answer and events, the OpenAI door's completion).

use serde_json::Value;
use switchyard_agents::AgentError;
use switchyard_core::model::{Conversation, HistoryTurn};
use switchyard_core::routing::{AgentRef, Decision, FailoverFrom, Intent, RouteError};
use switchyard_core::{AgentId, ConversationId, MessageId};
use switchyard_store::{StoreError, StoreResult};

use crate::routing::RoutingError;

/// The longest message, in Unicode scalar values.
pub const MAX_MESSAGE_CHARS: usize = 32_768;

/// A user's message, checked: 1 to [`MAX_MESSAGE_CHARS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message(String);

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// No visible characters.
    #[error("`message` must not be empty (or only spaces and invisible characters)")]
    Empty,
    /// Too many.
    #[error("`message` has at most {MAX_MESSAGE_CHARS} characters")]
    TooLong,
}

impl Message {
    /// Checks a message: at least one visible character, at most [`MAX_MESSAGE_CHARS`].
    pub fn parse(text: String) -> Result<Self, MessageError> {
        if text.chars().all(invisible) {
            return Err(MessageError::Empty);
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Err(MessageError::TooLong);
        }
        Ok(Self(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether a character shows nothing: white space, a control character, or a zero-width
/// one (zero-width space, joiners, word joiner, byte order mark).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// A conversation and its last turns, read before a turn (with the authentication, where
/// the request named the conversation).
pub type ChatContext = StoreResult<(Conversation, Vec<HistoryTurn>)>;

/// Which conversation a turn belongs to.
#[derive(Debug)]
pub enum Target {
    /// A new one, with this id (chosen by the caller, who may need it before the answer,
    /// for a response header).
    New(ConversationId),
    /// An existing one of the caller's, with its context if it was read already.
    Existing(ConversationId, Option<ChatContext>),
}

/// What a chat turn is asked.
#[derive(Debug)]
pub struct TurnInput {
    /// The user's message.
    pub message: Message,
    /// Its conversation.
    pub target: Target,
    /// An agent of the tenant to pin (no routing, no failover).
    pub agent_id: Option<AgentId>,
    /// Passed to the agent as is.
    pub metadata: Option<Value>,
    /// A turn of the OpenAI door: the thread as its client sent it.
    pub thread: Option<Thread>,
}

/// The thread of an OpenAI-door turn, as its client holds and sends it whole
/// (docs/integrations.md): the agent gets its earlier messages as the history, whatever is
/// stored, and the conversation is known afterwards by [`thread_key`] of the messages with
/// the answer. Such a conversation counts toward no conversation limit.
#[derive(Debug, Default)]
pub struct Thread {
    /// The messages before the one routed, as the agent gets them.
    pub history: Vec<switchyard_agents::HistoryEntry>,
    /// Every message of the request (role, text), the one routed included.
    pub messages: Vec<(&'static str, String)>,
}

/// A message role as an agent's history and a thread's key know it: `system` (also
/// OpenAI's newer `developer`), `user` or `assistant`; other roles (tool results) are not
/// part of the conversation an agent sees.
pub fn history_role(role: &str) -> Option<&'static str> {
    match role {
        "system" | "developer" => Some("system"),
        "user" => Some("user"),
        "assistant" => Some("assistant"),
        _ => None,
    }
}

/// The key of a thread: a hash of its user and its messages (role and text, in order). A
/// client that resends a thread with the answer it got continues the conversation stored
/// under the key of the thread then.
pub fn thread_key<'a>(
    user: switchyard_core::UserId,
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(user.as_uuid().as_bytes());
    for (role, text) in messages {
        // Lengths first, so that no two threads run into one text.
        hash.update((role.len() as u64).to_le_bytes());
        hash.update(role.as_bytes());
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hex::encode(&hash.finalize()[..16])
}

/// Where a turn's time went, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timings {
    /// Intent analysis.
    pub analyze: f64,
    /// Choosing the agent (with a model's verdict in the cascade).
    pub route: f64,
    /// The agent call(s).
    pub agent: f64,
    /// Storing the turn.
    pub store: f64,
}

/// A turn that answered, and was stored.
#[derive(Clone, Debug)]
pub struct TurnOutcome {
    /// The conversation (new or continued).
    pub conversation_id: ConversationId,
    /// The stored turn.
    pub message_id: MessageId,
    /// The agent's answer.
    pub response: String,
    /// The agent that answered.
    pub agent: AgentRef,
    /// The analysed intent.
    pub intent: Intent,
    /// The routing decision, with `failover_from` set if another agent failed first.
    pub decision: Decision,
    /// Where the time went.
    pub timings: Timings,
    /// What the answering agent's model said the answer cost, if it said.
    pub usage: Option<switchyard_agents::Usage>,
}

/// The routing decision of a turn, as told before the agent is called.
#[derive(Clone, Debug)]
pub struct Routed {
    /// The agent chosen.
    pub agent: AgentRef,
    /// The analysed intent.
    pub intent: Intent,
    /// The decision.
    pub decision: Decision,
}

/// A turn moving to another agent after the one called failed.
#[derive(Clone, Debug)]
pub struct FailedOver {
    /// The agent that failed, and how.
    pub from: FailoverFrom,
    /// The agent called next.
    pub to: AgentRef,
}

/// What a streamed turn tells as it happens, before its outcome.
#[derive(Clone, Debug)]
pub enum TurnEvent {
    /// The routing decision, before the agent is called.
    Routed(Box<Routed>),
    /// The agent called failed before answering anything: the next one is called (sent
    /// before its answer's pieces).
    FailedOver(Box<FailedOver>),
    /// A piece of the agent's answer.
    Delta(String),
}

/// Why a turn gave no answer (nothing was stored).
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The store refused or failed: the conversation is not found, a limit is reached, the
    /// database is unavailable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No agent could be chosen.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The tenant has as many agent calls in flight as it may.
    #[error("the tenant has too many agent calls in flight")]
    Busy,
    /// The agent (and every one that could take over) failed.
    #[error("agent {agent:?} could not answer: {error}")]
    Agent {
        /// The agent that failed first.
        agent: String,
        /// How.
        error: AgentError,
    },
    /// A bug.
    #[error("{0}")]
    Internal(String),
}

impl From<RoutingError> for TurnError {
    fn from(e: RoutingError) -> Self {
        match e {
            RoutingError::Store(e) => Self::Store(e),
            RoutingError::Route(e) => Self::Route(e),
            RoutingError::Internal(e) => Self::Internal(e),
        }
    }
}

//! The routing lab (docs/routing.md, "The routing lab"): a tenant's routing measured on its
//! own labelled messages, and a proposed change to its agents tried on them and on its
//! stored turns, in memory only.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{CreateAgent, PatchAgent};

/// A change to the tenant's agents, applied in memory only.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDraft {
    /// Agents to add, as `POST /v1/agents` takes them.
    #[serde(default)]
    pub add: Vec<CreateAgent>,
    /// Agents to change: the id, and the fields to replace, as `PATCH /v1/agents/{id}` takes
    /// them.
    #[serde(default)]
    pub update: Vec<AgentDraftUpdate>,
    /// Ids of agents to remove.
    #[serde(default)]
    pub remove: Vec<Uuid>,
}

impl AgentDraft {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.update.is_empty() && self.remove.is_empty()
    }
}

/// A change to one agent in a draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct AgentDraftUpdate {
    /// The agent.
    pub id: Uuid,
    /// The fields to replace.
    #[serde(flatten)]
    pub fields: PatchAgent,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for AgentDraftUpdate {
    type Error = String;

    /// The id, and the other fields read as `PATCH /v1/agents/{id}` reads its body (an
    /// unknown field refused: `flatten` alone would drop it).
    fn try_from(mut map: serde_json::Map<String, serde_json::Value>) -> Result<Self, String> {
        let id = map.remove("id").ok_or("missing field `id`")?;
        Ok(Self {
            id: serde_json::from_value(id).map_err(|e| format!("`id`: {e}"))?,
            fields: serde_json::from_value(serde_json::Value::Object(map))
                .map_err(|e| e.to_string())?,
        })
    }
}

/// One labelled message: the agent that should answer it.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabeledMessage {
    /// The message.
    pub message: String,
    /// The agent that should answer: its name or id, or `fallback` for a message no agent
    /// serves.
    pub agent: String,
}

/// What `POST /v1/routing/evaluate` measures.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRouting {
    /// The labelled messages (1 to 5,000); or give `csv` instead.
    #[serde(default)]
    pub examples: Option<Vec<LabeledMessage>>,
    /// The labelled messages as CSV text, one `message,agent` row per line (a first row
    /// `message,agent` is a header); instead of `examples`.
    #[serde(default)]
    pub csv: Option<String>,
    /// A change to the agents to measure instead of the live ones.
    #[serde(default)]
    pub agents: Option<AgentDraft>,
}

/// How routing did on labelled messages.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Evaluation {
    /// Messages routed.
    pub total: usize,
    /// Messages that went where their label says.
    pub correct: usize,
    /// `correct / total`.
    pub accuracy: f64,
    /// The share of messages that went to the fallback.
    pub fallback_rate: f64,
    /// Per agent (the fallback included), most expected first.
    pub by_agent: Vec<AgentScore>,
    /// Where messages went against where they should have, every pair that occurred.
    pub confusion: Vec<Confusion>,
    /// Per tenth of the analysis' confidence in its best agent (a chat answer's
    /// `intent.confidence`), how often that agent was the right one.
    pub calibration: Vec<CalibrationBin>,
    /// The messages that went elsewhere, the most confident first (at most 100).
    pub misrouted: Vec<Misrouted>,
}

/// One agent's figures in an evaluation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AgentScore {
    /// The agent (`null` for `fallback` when the tenant has no fallback agent).
    pub agent_id: Option<Uuid>,
    /// Its name.
    pub name: String,
    /// Of the messages routed to it, the share that should have been (`null` when none was).
    pub precision: Option<f64>,
    /// Of the messages that should have gone to it, the share that did (`null` when none
    /// should have).
    pub recall: Option<f64>,
    /// Messages that should have gone to it.
    pub support: usize,
}

/// A cell of the confusion table.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Confusion {
    /// The agent the label names.
    pub expected: String,
    /// The agent routing chose.
    pub got: String,
    /// How many messages.
    pub count: usize,
}

/// Messages whose best agent had a confidence in `[confidence_from, confidence_to)` (the
/// last bin includes 1).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CalibrationBin {
    /// The bin's lower bound.
    pub confidence_from: f64,
    /// Its upper bound.
    pub confidence_to: f64,
    /// Messages in it.
    pub decisions: usize,
    /// The share of them whose best agent was the right one (`null` when there is none).
    pub accuracy: Option<f64>,
}

/// A message that went elsewhere than its label says.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Misrouted {
    /// The message.
    pub message: String,
    /// The agent the label names.
    pub expected: String,
    /// The agent routing chose.
    pub got: String,
    /// The decision's confidence.
    pub confidence: f64,
    /// Why routing chose it, as a chat answer's `routing.reason` says.
    pub reason: String,
}

/// What `POST /v1/routing/replay` re-routes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRouting {
    /// The change to the agents (an empty one replays the live agents).
    #[serde(default)]
    pub agents: AgentDraft,
    /// How many of the most recent turns (default 1,000, at most 10,000).
    #[serde(default)]
    pub last: Option<u32>,
}

/// What a change to the agents would have changed in the stored turns.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Replay {
    /// Turns replayed.
    pub turns: usize,
    /// Turns that would now go to another agent.
    pub changed: usize,
    /// The moves, most first.
    pub changes: Vec<ReplayChange>,
    /// Some of the changed turns, newest first (at most 50).
    pub samples: Vec<ReplaySample>,
}

/// An agent in a replay (`agent_id` and `name` are `null` where there is none: a pinned
/// agent no longer there, or a turn upgraded without a record of its agent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub struct ReplayAgent {
    /// Its id.
    pub agent_id: Option<Uuid>,
    /// Its name (`null` for an agent deleted since).
    pub name: Option<String>,
}

/// Turns that move from one agent to another.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplayChange {
    /// The agent that was chosen.
    pub from: ReplayAgent,
    /// The agent that would be chosen now.
    pub to: ReplayAgent,
    /// How many turns.
    pub count: usize,
}

/// A turn that would now go elsewhere.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReplaySample {
    /// The turn.
    pub message_id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// The agent that was chosen.
    pub from: ReplayAgent,
    /// The agent that would be chosen now.
    pub to: ReplayAgent,
    /// The new decision's confidence.
    pub confidence: f64,
}

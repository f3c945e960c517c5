//! What an analyzer says about a message: the intent and every agent ranked.

use serde::{Deserialize, Serialize};

use super::decision::Method;
use crate::AgentId;

/// The analysed intent of a message, as shown in a chat answer's `intent` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The intent label of the best agent (its best-matching intent, or its name if it
    /// declares none); `None` when no agent could be ranked.
    pub category: Option<String>,
    /// The calibrated probability that the best agent is the right one, in `[0, 1]`.
    pub confidence: f64,
    /// Words of the message that matched the best agent.
    pub keywords: Vec<String>,
}

/// One ranked agent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The agent.
    pub agent_id: AgentId,
    /// Its calibrated, probability-like score in `[0, 1]`; scores of one analysis sum to at
    /// most 1, the rest being the chance that no agent fits.
    pub score: f64,
}

/// An analyzer's verdict on one message: the intent and all agents ranked, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// Which analyzer produced it ([`Method::Lexical`], [`Method::Embedding`] or
    /// [`Method::Llm`]); a decision made on it reports this method.
    pub analyzer: Method,
    /// The intent.
    pub intent: Intent,
    /// Every agent of the set, best first (ties: higher priority, then set order).
    pub candidates: Vec<Candidate>,
}

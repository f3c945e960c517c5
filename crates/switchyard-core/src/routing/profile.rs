//! What routing knows of an agent, and the set of a tenant's agents a decision is made over.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::AgentId;
use crate::model::Agent;

/// The routing-relevant part of an agent: what it is called, what it handles, how it ranks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// The agent's id.
    pub id: AgentId,
    /// Its name, unique within the tenant; its words count as evidence too.
    pub name: String,
    /// What it does, in words.
    pub description: String,
    /// The intent labels it serves; the best-matching one becomes the analysed category.
    pub intents: Vec<String>,
    /// Words or short phrases that point to it.
    pub keywords: Vec<String>,
    /// Sample user messages it should receive.
    pub examples: Vec<String>,
    /// Breaks ties between equally good candidates (higher wins).
    pub priority: i32,
    /// Whether it answers when nothing else fits.
    pub is_fallback: bool,
}

impl AgentProfile {
    /// The agent's profile, its texts (description, intents, keywords, examples) moved out
    /// of it, so that whoever keeps both holds the texts once.
    pub fn take_from(a: &mut Agent) -> Self {
        Self {
            id: a.id,
            name: a.name.clone(),
            description: std::mem::take(&mut a.description),
            intents: std::mem::take(&mut a.intents),
            keywords: std::mem::take(&mut a.keywords),
            examples: std::mem::take(&mut a.examples),
            priority: a.priority,
            is_fallback: a.is_fallback,
        }
    }
}

/// A tenant's routable agents, in a fixed order, with lookups a decision needs.
///
/// Any analyzer (lexical, embedding, LLM) ranks agents of such a set, and
/// [`decide`](super::decide) turns the ranking into a decision over it.
#[derive(Clone, Debug)]
pub struct AgentSet {
    agents: Vec<AgentProfile>,
    by_id: HashMap<AgentId, usize>,
    fallback: Option<usize>,
}

impl AgentSet {
    /// Makes the set. Should more than one agent claim to be the fallback (the store
    /// prevents it), the one with the highest priority, then the first, is used.
    pub fn new(agents: Vec<AgentProfile>) -> Self {
        let by_id = agents.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
        let fallback = agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_fallback)
            .max_by(|(ia, a), (ib, b)| a.priority.cmp(&b.priority).then(ib.cmp(ia)))
            .map(|(i, _)| i);
        Self {
            agents,
            by_id,
            fallback,
        }
    }

    /// The agents, in the order given.
    pub fn agents(&self) -> &[AgentProfile] {
        &self.agents
    }

    /// How many agents there are.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The position of an agent, if it belongs to the set.
    pub fn position(&self, id: AgentId) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// An agent by id, if it belongs to the set.
    pub fn get(&self, id: AgentId) -> Option<&AgentProfile> {
        self.position(id).map(|i| &self.agents[i])
    }

    /// The fallback agent's position, if the tenant has one.
    pub fn fallback_position(&self) -> Option<usize> {
        self.fallback
    }

    /// The fallback agent, if the tenant has one.
    pub fn fallback(&self) -> Option<&AgentProfile> {
        self.fallback.map(|i| &self.agents[i])
    }

    /// Approximate heap bytes held, for cache bounds.
    pub fn heap_size_bytes(&self) -> usize {
        let strings: usize = self
            .agents
            .iter()
            .map(|a| {
                a.name.capacity()
                    + a.description.capacity()
                    + [&a.intents, &a.keywords, &a.examples]
                        .iter()
                        .map(|v| {
                            v.capacity() * size_of::<String>()
                                + v.iter().map(String::capacity).sum::<usize>()
                        })
                        .sum::<usize>()
            })
            .sum();
        self.agents.capacity() * size_of::<AgentProfile>()
            + strings
            + self.by_id.capacity() * (size_of::<(AgentId, usize)>() + 1)
    }
}

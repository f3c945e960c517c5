//! The routing decision (docs/routing.md): pinned, sticky, the analyzer's best candidate,
//! or the fallback agent — and who answers if the chosen agent fails.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::analysis::Analysis;
use super::profile::AgentSet;
use crate::AgentId;

/// What decided the agent, as recorded in a turn's `routing.method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The request named the agent.
    Pinned,
    /// A follow-up stayed with the conversation's last agent.
    Sticky,
    /// The lexical analyzer's best candidate.
    Lexical,
    /// The embedding analyzer's best candidate.
    Embedding,
    /// The LLM analyzer's choice.
    Llm,
    /// Nothing was clear enough, or the message is closest to the fallback agent's own
    /// examples (messages to refuse): the tenant's fallback agent answers.
    Fallback,
}

impl Method {
    /// The method as stored and shown.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Pinned => "pinned",
            Method::Sticky => "sticky",
            Method::Lexical => "lexical",
            Method::Embedding => "embedding",
            Method::Llm => "llm",
            Method::Fallback => "fallback",
        }
    }
}

/// A tenant's routing thresholds, all on the calibrated `[0, 1]` score scale.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingPolicy {
    /// Below this confidence the fallback agent answers.
    pub min_confidence: f64,
    /// When the two best candidates are closer than this, the fallback agent answers.
    pub min_margin: f64,
    /// A follow-up leaves its last agent only for a confident candidate ahead of the last
    /// agent by more than this.
    pub switch_margin: f64,
}

impl Default for RoutingPolicy {
    /// `min_confidence` 0.5: scores are calibrated, so below it the best agent is more
    /// likely wrong than right. `min_margin` 0.1: a near tie is a guess whichever way it
    /// goes. `switch_margin` 0.3: a follow-up only moves when the new agent is clearly
    /// better, so a conversation does not flap between two close agents.
    fn default() -> Self {
        Self {
            min_confidence: 0.5,
            min_margin: 0.1,
            switch_margin: 0.3,
        }
    }
}

fn never_unavailable(_: AgentId) -> Option<String> {
    None
}

/// The per-request facts a decision depends on besides the message.
#[derive(Clone, Copy)]
pub struct RouteInput<'a> {
    /// An agent the request named explicitly.
    pub pinned: Option<AgentId>,
    /// The agent that answered the conversation's last turn.
    pub last_agent: Option<AgentId>,
    /// Why an agent cannot take a call now (circuit open, failing its health check), or
    /// `None` when it can.
    pub unavailable: &'a dyn Fn(AgentId) -> Option<String>,
}

impl Default for RouteInput<'_> {
    fn default() -> Self {
        Self {
            pinned: None,
            last_agent: None,
            unavailable: &never_unavailable,
        }
    }
}

impl std::fmt::Debug for RouteInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteInput")
            .field("pinned", &self.pinned)
            .field("last_agent", &self.last_agent)
            .finish_non_exhaustive()
    }
}

/// An agent named in a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// Its id.
    pub agent_id: AgentId,
    /// Its name.
    pub name: String,
}

/// Another candidate shown with a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// Its id.
    pub agent_id: AgentId,
    /// Its name.
    pub name: String,
    /// Its calibrated score.
    pub score: f64,
}

/// An agent that failed before the one that answered (set by the server on failover), or
/// that routing passed over because it was unavailable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverFrom {
    /// The agent that failed.
    pub agent_id: AgentId,
    /// Its name.
    pub name: String,
    /// What went wrong, in words.
    pub error: String,
}

/// An agent the decision would have used but passed over because it was unavailable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The agent.
    pub agent_id: AgentId,
    /// Its name.
    pub name: String,
    /// Why, in a few words ("circuit open after 5 failures in a row").
    pub reason: String,
}

/// The outcome of routing one message. Serialises to the `routing` object of a chat answer
/// (docs/routing.md); the chosen agent and the failover list are for the server, not the JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// The agent chosen.
    #[serde(skip)]
    pub agent_id: AgentId,
    /// Its name.
    #[serde(skip)]
    pub agent_name: String,
    /// What decided it.
    pub method: Method,
    /// The calibrated score of the agent the rules chose — the best match, the sticky
    /// agent, or the fallback — before any unavailable agent was passed over (1 when
    /// pinned).
    pub confidence: f64,
    /// Best minus second-best calibrated score over all the tenant's agents (1 when pinned).
    pub margin: f64,
    /// Whether the fallback agent answers (nothing was clear enough, the message is closest
    /// to the fallback agent's own examples, or the agents that were are unavailable).
    pub fallback_used: bool,
    /// The agent that failed (or was passed over as unavailable) before this one answered.
    pub failover_from: Option<FailoverFrom>,
    /// Agents passed over because they were unavailable, in the order they were tried.
    pub skipped: Vec<Skipped>,
    /// The analysis' own intent label when the turn's stored intent is another (a sticky,
    /// pinned, fallback or failed-over turn stores the answering agent's intent); set by
    /// the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guessed_intent: Option<String>,
    /// Why, in a few words (never the message text).
    pub reason: String,
    /// The next best available candidates (at most [`MAX_ALTERNATIVES`]).
    pub alternatives: Vec<Alternative>,
    /// Whom to try, in order, if the chosen agent fails: the next available candidates at or
    /// above `min_confidence`, then the fallback agent. Empty when pinned.
    #[serde(skip)]
    pub failover: Vec<AgentRef>,
}

/// How many alternatives a decision lists.
pub const MAX_ALTERNATIVES: usize = 3;

/// Why no decision could be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The tenant has no enabled agent.
    #[error("the tenant has no agents to route to")]
    NoAgents,
    /// The request pinned an agent that is not one of the tenant's routable agents.
    #[error("agent {0} is not one of this tenant's agents")]
    UnknownAgent(AgentId),
    /// Every agent is unavailable (circuits open).
    #[error("no agent is available")]
    NoneAvailable,
}

/// A candidate with what ranking needs.
#[derive(Clone, Copy)]
struct Ranked {
    pos: usize,
    score: f64,
}

/// Decides which agent answers, from an analysis of the message over `agents`.
///
/// Works with an [`Analysis`] from any analyzer; candidates it names that are not in
/// `agents` are ignored, and agents it does not name count as scoring 0.
///
/// The rules are applied as if every agent were available: an unavailable agent does not
/// make a weaker one look like the best match, nor keep a follow-up with its last agent.
/// Then, when the agent the rules chose is unavailable, the turn goes down the failover
/// list (the next candidates at or above `min_confidence`, then the fallback agent), and
/// each agent passed over is named in [`Decision::skipped`].
pub fn decide(
    agents: &AgentSet,
    analysis: &Analysis,
    policy: &RoutingPolicy,
    input: &RouteInput<'_>,
) -> Result<Decision, RouteError> {
    if agents.is_empty() {
        return Err(RouteError::NoAgents);
    }
    let profiles = agents.agents();
    let agent_ref = |pos: usize| AgentRef {
        agent_id: profiles[pos].id,
        name: profiles[pos].name.clone(),
    };
    // Asked once per agent: the answer may take a lock.
    let down: Vec<Option<String>> = profiles.iter().map(|p| (input.unavailable)(p.id)).collect();
    let available = |pos: usize| down[pos].is_none();

    // Rank every agent; an analysis normally arrives sorted, which makes this sort linear,
    // but re-ranking here keeps the tie rules in one place.
    let mut ranked: Vec<Ranked> = Vec::with_capacity(agents.len());
    let mut named = vec![false; agents.len()];
    for c in &analysis.candidates {
        if let Some(pos) = agents.position(c.agent_id)
            && !named[pos]
        {
            named[pos] = true;
            ranked.push(Ranked {
                pos,
                score: sanitize(c.score),
            });
        }
    }
    for (pos, seen) in named.iter().enumerate() {
        if !seen {
            ranked.push(Ranked { pos, score: 0.0 });
        }
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(profiles[b.pos].priority.cmp(&profiles[a.pos].priority))
            .then(a.pos.cmp(&b.pos))
    });
    let score_of = |pos: usize| {
        ranked
            .iter()
            .find(|r| r.pos == pos)
            .map_or(0.0, |r| r.score)
    };
    let alternatives = |chosen: usize| -> Vec<Alternative> {
        ranked
            .iter()
            .filter(|r| r.pos != chosen && available(r.pos))
            .take(MAX_ALTERNATIVES)
            .map(|r| Alternative {
                agent_id: profiles[r.pos].id,
                name: profiles[r.pos].name.clone(),
                score: r.score,
            })
            .collect()
    };

    if let Some(id) = input.pinned {
        let pos = agents.position(id).ok_or(RouteError::UnknownAgent(id))?;
        // A pinned agent is used even when its circuit is open: the caller asked for that
        // one, and the server reports its failure rather than silently substituting.
        return Ok(Decision {
            agent_id: id,
            agent_name: profiles[pos].name.clone(),
            method: Method::Pinned,
            confidence: 1.0,
            margin: 1.0,
            fallback_used: false,
            failover_from: None,
            skipped: Vec::new(),
            guessed_intent: None,
            reason: "pinned by the request".to_owned(),
            alternatives: alternatives(pos),
            failover: Vec::new(),
        });
    }

    if !ranked.iter().any(|r| available(r.pos)) {
        return Err(RouteError::NoneAvailable);
    }
    let top = ranked[0];
    let second = ranked.get(1).map_or(0.0, |r| r.score);
    let margin = top.score - second;
    let fallback = agents.fallback_position();

    // What the analyzer alone would decide.
    let low_confidence = top.score < policy.min_confidence;
    let close = ranked.len() > 1 && margin < policy.min_margin;
    let mut reason = String::new();
    let (mut intended, mut method) = if !low_confidence && !close && Some(top.pos) == fallback {
        // The fallback agent's own examples are the messages a tenant wants refused
        // (docs/routing.md, "Messages to refuse"): matching them best is a fallback.
        let why = if analysis.analyzer == Method::Llm {
            "the model chose the fallback agent"
        } else {
            "closest to the fallback agent's own examples"
        };
        let _ = write!(
            reason,
            "{why} (confidence {:.2}, margin {:.2}): fallback agent answers",
            top.score, margin
        );
        (top.pos, Method::Fallback)
    } else if !low_confidence && !close {
        let _ = write!(
            reason,
            "best {} match (confidence {:.2}, margin {:.2})",
            analysis.analyzer.as_str(),
            top.score,
            margin
        );
        (top.pos, analysis.analyzer)
    } else {
        if low_confidence {
            let _ = write!(
                reason,
                "confidence {:.2} below min_confidence {:.2}",
                top.score, policy.min_confidence
            );
        } else {
            let _ = write!(
                reason,
                "top two within {:.2} (min_margin {:.2})",
                margin, policy.min_margin
            );
        }
        match fallback {
            Some(f) => {
                reason.push_str(": fallback agent answers");
                (f, Method::Fallback)
            }
            None => {
                reason.push_str(
                    ", but the tenant has no available fallback agent: best candidate answers",
                );
                (top.pos, analysis.analyzer)
            }
        }
    };
    let mut confidence = score_of(intended);
    let mut decided_margin = margin;

    // Hysteresis: a follow-up stays unless the analyzer's own pick is a different agent
    // that is confident and clearly ahead of the last one.
    if let Some(last) = input.last_agent.and_then(|id| agents.position(id))
        && intended != last
    {
        let switch = !low_confidence && !close && top.score - score_of(last) > policy.switch_margin;
        if switch {
            let _ = write!(reason, "; switched from the last agent");
        } else {
            let last_score = score_of(last);
            reason = format!(
                "follow-up stays with its agent (best other {:.2}, needs {:.2} over {:.2})",
                top.score, policy.switch_margin, last_score
            );
            intended = last;
            method = Method::Sticky;
            confidence = last_score;
            decided_margin = last_score
                - ranked
                    .iter()
                    .find(|r| r.pos != last)
                    .map_or(0.0, |r| r.score);
        }
    }

    // The agents to try, in order: the one the rules chose, then the next candidates at or
    // above `min_confidence`, then the fallback agent.
    let mut order = vec![intended];
    order.extend(
        ranked
            .iter()
            .filter(|r| r.pos != intended && r.score >= policy.min_confidence)
            .filter(|r| Some(r.pos) != fallback)
            .map(|r| r.pos),
    );
    if let Some(f) = fallback
        && f != intended
    {
        order.push(f);
    }
    let mut skipped = Vec::new();
    let mut tried = order.iter().copied();
    let chosen = loop {
        match tried.next() {
            Some(pos) => match &down[pos] {
                None => break pos,
                Some(why) => skipped.push(Skipped {
                    agent_id: profiles[pos].id,
                    name: profiles[pos].name.clone(),
                    reason: why.clone(),
                }),
            },
            // Everyone on the list is down: the best available candidate answers.
            None => {
                break ranked
                    .iter()
                    .find(|r| available(r.pos))
                    .map(|r| r.pos)
                    .ok_or(RouteError::NoneAvailable)?;
            }
        }
    };
    let failover: Vec<AgentRef> = tried.filter(|&pos| available(pos)).map(agent_ref).collect();
    if chosen != intended {
        for s in &skipped {
            let _ = write!(reason, "; {} skipped: {}", s.name, s.reason);
        }
        if Some(chosen) == fallback {
            reason.push_str(": fallback agent answers");
            method = Method::Fallback;
        } else {
            let _ = write!(reason, ": {} answers instead", profiles[chosen].name);
            if method == Method::Fallback || method == Method::Sticky {
                method = analysis.analyzer;
            }
        }
    }
    let failover_from = skipped.first().map(|s| FailoverFrom {
        agent_id: s.agent_id,
        name: s.name.clone(),
        error: s.reason.clone(),
    });
    Ok(Decision {
        agent_id: profiles[chosen].id,
        agent_name: profiles[chosen].name.clone(),
        method,
        confidence,
        margin: decided_margin,
        fallback_used: method == Method::Fallback,
        failover_from,
        skipped,
        guessed_intent: None,
        reason,
        alternatives: alternatives(chosen),
        failover,
    })
}

/// Scores from outside analyzers may be anything; keep them in `[0, 1]`, NaN as 0.
fn sanitize(s: f64) -> f64 {
    if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) }
}

//! The routing lab (docs/routing.md, "The routing lab"): a tenant measures its routing on
//! its own labelled messages, and sees what a change to its agents would do — on those
//! messages and on its stored turns — before making it. Nothing is stored.
//!
//! Every message goes through the chat turn's own code: the in-process analysis
//! ([`super::plan::analyze`]), the tenant's policy ([`super::policy`]) and the server's
//! matcher. Two things of a live turn are left out, so that a measurement is repeatable and
//! free: no agent counts as unavailable (circuits are a moment's state, not routing), and
//! the model cascade (`llm`, `embedding` analyzers) is not asked — up to 5,000 paid model
//! calls per evaluation would be a surprise.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use switchyard_core::AgentId;
use switchyard_core::model::{Agent, AgentFields, Tenant};
use switchyard_core::page::PageRequest;
use switchyard_core::routing::{
    AgentMatcher, AgentSet, Analysis, Decision, Method, RouteError, RouteInput,
};
use switchyard_store::{Store, TenantScope};
use uuid::Uuid;

use super::encoder::InProcessEncoder;
use super::{TenantRouting, index_build, plan, policy};
use crate::api::{
    AgentDraft, AgentScore, CalibrationBin, Confusion, Evaluation, LabeledMessage, Misrouted,
    Replay, ReplayAgent, ReplayChange, ReplaySample,
};
use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::routes::agents::{check_fields, patched};
use crate::turn::Message;

/// The most labelled messages one evaluation routes.
pub const MAX_EXAMPLES: usize = 5_000;
/// The most stored turns one replay re-routes.
pub const MAX_REPLAY: u32 = 10_000;
/// The stored turns a replay re-routes unless told.
pub const DEFAULT_REPLAY: u32 = 1_000;
/// The most misrouted messages an evaluation lists.
const MAX_MISROUTED: usize = 100;
/// The most changed turns a replay shows.
const MAX_SAMPLES: usize = 50;
/// Stored turns a replay reads at a time.
const REPLAY_PAGE: usize = 500;
/// The most changes (added, updated and removed agents) a draft holds.
const MAX_DRAFT_CHANGES: usize = 1_000;

/// Where a message goes: an agent, or the tenant's fallback (however it got there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// An agent other than the fallback.
    Agent(AgentId),
    /// The fallback agent.
    Fallback,
}

impl Destination {
    /// Where `decision` sends a message: the fallback when the decision is one or the
    /// chosen agent is the fallback agent. Whether a routed message is right is whether
    /// this equals its label's destination — the rule of the lab and of `routing-eval`'s
    /// `accuracy`.
    pub fn of(decision: &Decision, agents: &AgentSet) -> Self {
        let fallback_agent = agents.get(decision.agent_id).is_some_and(|a| a.is_fallback);
        if decision.method == Method::Fallback || decision.fallback_used || fallback_agent {
            Self::Fallback
        } else {
            Self::Agent(decision.agent_id)
        }
    }

    /// Where a label (an agent's name or id, or `fallback`) sends a message in `agents`.
    pub fn named(label: &str, agents: &AgentSet) -> Option<Self> {
        let label = label.trim();
        if label.eq_ignore_ascii_case("fallback") {
            return Some(Self::Fallback);
        }
        let agent = label
            .parse::<Uuid>()
            .ok()
            .and_then(|id| agents.get(AgentId::from_uuid(id)))
            .or_else(|| agents.agents().iter().find(|a| a.name == label))?;
        Some(if agent.is_fallback {
            Self::Fallback
        } else {
            Self::Agent(agent.id)
        })
    }

    /// Its name in figures: the agent's, or the fallback agent's (`fallback` without one).
    fn name(self, agents: &AgentSet) -> String {
        match self {
            Self::Agent(id) => agents.get(id).map_or_else(String::new, |a| a.name.clone()),
            Self::Fallback => agents
                .fallback()
                .map_or_else(|| "fallback".to_owned(), |a| a.name.clone()),
        }
    }

    fn agent_id(self, agents: &AgentSet) -> Option<Uuid> {
        match self {
            Self::Agent(id) => Some(id.as_uuid()),
            Self::Fallback => agents.fallback().map(|a| a.id.as_uuid()),
        }
    }
}

/// A labelled message and where it came from (for errors: `examples[3]`, `csv` line 4).
#[derive(Clone, Debug)]
pub struct Labeled {
    /// The message.
    pub message: String,
    /// The agent it should go to.
    pub agent: String,
    origin: String,
}

/// A labelled message whose text is checked (1 to 32,768 visible characters).
#[derive(Debug)]
pub struct Checked {
    message: Message,
    agent: String,
    origin: String,
}

/// Checks every message's text, before anything costly: a message that chat would refuse
/// is named by where it is.
pub fn checked(rows: Vec<Labeled>) -> ApiResult<Vec<Checked>> {
    rows.into_iter()
        .map(|row| {
            Ok(Checked {
                message: Message::parse(row.message)
                    .map_err(|e| ApiError::unprocessable(format!("{}: {e}", row.origin)))?,
                agent: row.agent,
                origin: row.origin,
            })
        })
        .collect()
}

/// The labelled messages of a request: `examples`, or `csv` text — one of them.
pub fn labeled(
    examples: Option<Vec<LabeledMessage>>,
    csv: Option<String>,
) -> ApiResult<Vec<Labeled>> {
    let rows = match (examples, csv) {
        (Some(examples), None) => examples
            .into_iter()
            .enumerate()
            .map(|(i, e)| Labeled {
                message: e.message,
                agent: e.agent,
                origin: format!("`examples[{i}]`"),
            })
            .collect(),
        (None, Some(csv)) => parse_csv(&csv)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give the labelled messages as `examples` or as `csv`, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::unprocessable(
                "give the labelled messages as `examples` (`[{message, agent}]`) or `csv`",
            ));
        }
    };
    if rows.is_empty() {
        return Err(ApiError::unprocessable(
            "there are no labelled messages to evaluate",
        ));
    }
    if rows.len() > MAX_EXAMPLES {
        return Err(ApiError::unprocessable(format!(
            "at most {MAX_EXAMPLES} labelled messages per evaluation ({} given)",
            rows.len()
        )));
    }
    Ok(rows)
}

/// Reads `message,agent` rows (RFC 4180 quoting; a first row `message,agent` is a header;
/// blank lines are skipped).
pub fn parse_csv(text: &str) -> ApiResult<Vec<Labeled>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| ApiError::unprocessable(format!("`csv`: {e}")))?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        // Trailing empty fields (`message,agent,` from a spreadsheet) are nothing.
        let all: Vec<&str> = record.iter().collect();
        let fields = all.iter().rposition(|f| !f.is_empty()).map_or(0, |i| i + 1);
        let (2, Some(message), Some(agent)) = (fields, record.get(0), record.get(1)) else {
            return Err(ApiError::unprocessable(format!(
                "`csv` line {line}: a row is `message,agent` (quote a message that holds a \
                 comma), this one has {} field{}",
                fields,
                if fields == 1 { "" } else { "s" }
            )));
        };
        if i == 0
            && message.trim().eq_ignore_ascii_case("message")
            && agent.trim().eq_ignore_ascii_case("agent")
        {
            continue;
        }
        rows.push(Labeled {
            message: message.to_owned(),
            agent: agent.to_owned(),
            origin: format!("`csv` line {line}"),
        });
    }
    Ok(rows)
}

/// Refuses a replay of no turns or of more than [`MAX_REPLAY`].
pub fn check_last(last: u32) -> ApiResult<()> {
    if (1..=MAX_REPLAY).contains(&last) {
        Ok(())
    } else {
        Err(ApiError::unprocessable(format!(
            "`last` is 1 to {MAX_REPLAY} turns ({last} given)"
        )))
    }
}

/// A tenant's routing lab: what it reads and routes with.
pub struct Lab<'a> {
    /// The store.
    pub store: &'a dyn Store,
    /// An admin's scope of the tenant.
    pub scope: &'a TenantScope,
    /// The tenant, with its settings.
    pub tenant: &'a Tenant,
    /// The server's settings.
    pub config: &'a Config,
    /// The in-process encoder, if the server has one.
    pub encoder: Option<&'a Arc<InProcessEncoder>>,
    /// The decision over an analysis.
    pub matcher: &'a dyn AgentMatcher,
}

impl Lab<'_> {
    /// The routing to measure, completed (trained and calibrated, as chat routes once the
    /// index is built): the draft applied to the tenant's agents, or, for no draft or an
    /// empty one, the live agents (`live`, the server's cached routing, if given).
    pub async fn routing(
        &self,
        live: Option<Arc<TenantRouting>>,
        draft: Option<AgentDraft>,
    ) -> ApiResult<Arc<TenantRouting>> {
        let build = index_build(self.config, self.encoder, &self.tenant.settings);
        let routing = match (draft.filter(|d| !d.is_empty()), live) {
            (Some(draft), _) => {
                let agents = self.drafted(draft).await?;
                Arc::new(
                    TenantRouting::build_off_thread(self.tenant.agents_version, agents, &build)
                        .await?,
                )
            }
            (None, Some(live)) => live,
            (None, None) => {
                let (version, agents) = self.store.routable_agents(self.scope).await?;
                Arc::new(TenantRouting::build_off_thread(version, agents, &build).await?)
            }
        };
        if routing.index.is_complete() {
            return Ok(routing);
        }
        let completed = tokio::task::spawn_blocking(move || routing.completed_in_turn())
            .await
            .map_err(|e| ApiError::internal(format!("completing a routing index: {e}")))?;
        Ok(Arc::new(completed))
    }

    /// Every agent of the tenant, enabled or not, oldest first.
    async fn all_agents(&self) -> ApiResult<Vec<Agent>> {
        let mut agents = Vec::new();
        let mut page = PageRequest::first(100);
        loop {
            let got = self.store.list_agents(self.scope, page).await?;
            agents.extend(got.items);
            match got.next {
                Some(cursor) => page = PageRequest::after(100, cursor),
                None => return Ok(agents),
            }
        }
    }

    /// The routable agents (enabled, in id order, as the store reads them for routing) the
    /// tenant would have with `draft` applied, each change checked as the agent routes
    /// check it.
    async fn drafted(&self, draft: AgentDraft) -> ApiResult<Vec<Agent>> {
        let changes = draft.add.len() + draft.update.len() + draft.remove.len();
        if changes > MAX_DRAFT_CHANGES {
            return Err(ApiError::unprocessable(format!(
                "`agents` holds at most {MAX_DRAFT_CHANGES} changes ({changes} given)"
            )));
        }
        let mut agents = self.all_agents().await?;
        let allowed = self.config.key_envs_for(self.tenant);
        let unknown = |field: String, id: Uuid| {
            ApiError::unprocessable(format!(
                "`{field}`: agent {id} is not one of this tenant's agents"
            ))
        };
        let at = |field: String| {
            move |e: ApiError| ApiError::unprocessable(format!("`{field}`: {}", e.detail))
        };
        for (i, id) in draft.remove.into_iter().enumerate() {
            let pos = agents
                .iter()
                .position(|a| a.id.as_uuid() == id)
                .ok_or_else(|| unknown(format!("agents.remove[{i}]"), id))?;
            agents.remove(pos);
        }
        for (i, change) in draft.update.into_iter().enumerate() {
            let field = format!("agents.update[{i}]");
            let agent = agents
                .iter_mut()
                .find(|a| a.id.as_uuid() == change.id)
                .ok_or_else(|| unknown(field.clone(), change.id))?;
            let fields = patched(agent.clone(), change.fields).map_err(at(field.clone()))?;
            check_fields(&allowed, &fields).map_err(at(field))?;
            set_fields(agent, fields);
        }
        let now = Utc::now();
        for (i, body) in draft.add.into_iter().enumerate() {
            let fields = AgentFields::from(body);
            check_fields(&allowed, &fields).map_err(at(format!("agents.add[{i}]")))?;
            let mut agent = Agent {
                id: AgentId::new(),
                tenant_id: self.scope.tenant_id(),
                name: String::new(),
                description: String::new(),
                kind: fields.kind,
                config: serde_json::Value::Null,
                intents: Vec::new(),
                keywords: Vec::new(),
                examples: Vec::new(),
                enabled: true,
                priority: 0,
                is_fallback: false,
                created_at: now,
                updated_at: now,
            };
            set_fields(&mut agent, fields);
            agents.push(agent);
        }
        self.check_set(&agents)?;
        agents.retain(|a| a.enabled);
        agents.sort_by_key(|a| a.id.as_uuid());
        Ok(agents)
    }

    /// What the store would refuse of a set of agents: a name twice, two enabled fallbacks,
    /// more agents than the tenant may have.
    fn check_set(&self, agents: &[Agent]) -> ApiResult<()> {
        let mut names = HashSet::new();
        if let Some(twice) = agents.iter().find(|a| !names.insert(a.name.as_str())) {
            return Err(ApiError::unprocessable(format!(
                "`agents`: the draft has two agents named {:?}",
                twice.name
            )));
        }
        if agents.iter().filter(|a| a.enabled && a.is_fallback).count() > 1 {
            return Err(ApiError::unprocessable(
                "`agents`: the draft has more than one enabled fallback agent",
            ));
        }
        let limit = self
            .tenant
            .settings
            .max_agents
            .unwrap_or(self.config.max_agents_per_tenant);
        if agents.len() as i64 > limit {
            return Err(ApiError::unprocessable(format!(
                "`agents`: the draft has {} agents; the tenant may have at most {limit}",
                agents.len()
            )));
        }
        Ok(())
    }

    /// Routes a message over `routing` as a chat turn would (see the module's note): the
    /// analysis, and the decision made from it.
    pub async fn route(
        &self,
        routing: &TenantRouting,
        message: &str,
        pinned: Option<AgentId>,
        last_agent: Option<AgentId>,
    ) -> (Analysis, Result<Decision, RouteError>) {
        let (analysis, _) = plan::analyze(self.encoder, routing, message, pinned.is_some()).await;
        let policy = policy(self.config, &self.tenant.settings, &routing.index);
        let decision = self.matcher.decide(
            routing.index.agent_set(),
            &analysis,
            &policy,
            &RouteInput {
                pinned,
                last_agent,
                ..RouteInput::default()
            },
        );
        (analysis, decision)
    }

    /// Routes every labelled message over `routing` and scores where it went. The messages
    /// are checked first ([`checked`]), before any index is built.
    pub async fn evaluate(
        &self,
        routing: &TenantRouting,
        rows: Vec<Checked>,
    ) -> ApiResult<Evaluation> {
        let agents = routing.index.agent_set();
        if agents.is_empty() {
            return Err(ApiError::unprocessable(
                "the set evaluated has no enabled agent to route to",
            ));
        }
        let mut labeled = Vec::with_capacity(rows.len());
        for row in rows {
            let expected = Destination::named(&row.agent, agents).ok_or_else(|| {
                ApiError::unprocessable(format!(
                    "{}: {:?} is not an enabled agent of the set evaluated (give an agent's \
                     name or id, or `fallback`)",
                    row.origin,
                    row.agent.trim()
                ))
            })?;
            labeled.push((row.message, expected));
        }
        let mut outcomes = Vec::with_capacity(labeled.len());
        for (i, (message, expected)) in labeled.into_iter().enumerate() {
            yield_every_64(i).await;
            let (analysis, decision) = self.route(routing, message.as_str(), None, None).await;
            let decision = decision?;
            // The analysis' best agent, as a destination (the fallback agent is `Fallback`).
            let best = analysis.candidates.first().map(|c| {
                if agents.get(c.agent_id).is_some_and(|a| a.is_fallback) {
                    Destination::Fallback
                } else {
                    Destination::Agent(c.agent_id)
                }
            });
            outcomes.push(Outcome {
                got: Destination::of(&decision, agents),
                best_right: best == Some(expected),
                best_confidence: analysis.intent.confidence,
                message: message.into_string(),
                expected,
                decision,
            });
        }
        Ok(figures(&outcomes, agents))
    }

    /// Re-routes the tenant's `last` most recent turns over `routing` and compares each
    /// with what was decided: a pinned turn is pinned again, a follow-up may stick with the
    /// agent of the conversation's turn before it.
    pub async fn replay(&self, routing: &TenantRouting, last: Option<u32>) -> ApiResult<Replay> {
        let last = last.unwrap_or(DEFAULT_REPLAY);
        check_last(last)?;
        // Names as the tenant knows them now: its agents (enabled or not), then the draft's.
        let mut names: HashMap<AgentId, String> = self
            .all_agents()
            .await?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect();
        for a in routing.index.agent_set().agents() {
            names.insert(a.id, a.name.clone());
        }
        let shown = |id: Option<AgentId>| ReplayAgent {
            agent_id: id.map(|id| id.as_uuid()),
            name: id.and_then(|id| names.get(&id).cloned()),
        };
        let mut replayed = 0;
        let mut changed = 0;
        let mut moves: HashMap<(Option<AgentId>, Option<AgentId>), usize> = HashMap::new();
        let mut samples = Vec::new();
        // Page by page, so that a replay holds a page of messages, not all of them.
        let mut before = None;
        while replayed < last as usize {
            let want = (last as usize - replayed).min(REPLAY_PAGE);
            let page = self
                .store
                .recent_decisions(self.scope, before, want as u32)
                .await?;
            let Some(end) = page.last() else {
                break;
            };
            before = Some((end.created_at, end.id));
            let full = page.len() == want;
            for turn in page {
                yield_every_64(replayed).await;
                replayed += 1;
                // A turn with no record of its agent (upgraded from the legacy layout) has
                // nothing to compare with.
                let Some(from) = turn.agent_id else {
                    continue;
                };
                let pinned = turn.method.as_deref() == Some(Method::Pinned.as_str());
                let (_, decision) = self
                    .route(
                        routing,
                        &turn.user_message,
                        pinned.then_some(from),
                        turn.previous_agent_id,
                    )
                    .await;
                let decision = decision.ok();
                let to = decision.as_ref().map(|d| d.agent_id);
                if to == Some(from) {
                    continue;
                }
                changed += 1;
                *moves.entry((Some(from), to)).or_default() += 1;
                if samples.len() < MAX_SAMPLES {
                    samples.push(ReplaySample {
                        message_id: turn.id.as_uuid(),
                        conversation_id: turn.conversation_id.as_uuid(),
                        from: shown(Some(from)),
                        to: shown(to),
                        confidence: decision.map_or(0.0, |d| d.confidence),
                    });
                }
            }
            if !full {
                break;
            }
        }
        let mut changes: Vec<ReplayChange> = moves
            .into_iter()
            .map(|((from, to), count)| ReplayChange {
                from: shown(from),
                to: shown(to),
                count,
            })
            .collect();
        changes.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.from.name.cmp(&b.from.name))
                .then_with(|| a.to.name.cmp(&b.to.name))
                .then_with(|| a.from.agent_id.cmp(&b.from.agent_id))
                .then_with(|| a.to.agent_id.cmp(&b.to.agent_id))
        });
        Ok(Replay {
            turns: replayed,
            changed,
            changes,
            samples,
        })
    }
}

/// Lets the runtime's other tasks run every 64 messages: thousands of analyses in a row
/// would otherwise hold a worker thread for a noticeable time.
async fn yield_every_64(i: usize) {
    if i % 64 == 63 {
        tokio::task::yield_now().await;
    }
}

fn set_fields(agent: &mut Agent, f: AgentFields) {
    agent.name = f.name;
    agent.description = f.description;
    agent.kind = f.kind;
    agent.config = f.config;
    agent.intents = f.intents;
    agent.keywords = f.keywords;
    agent.examples = f.examples;
    agent.enabled = f.enabled;
    agent.priority = f.priority;
    agent.is_fallback = f.is_fallback;
}

/// One routed labelled message.
struct Outcome {
    message: String,
    expected: Destination,
    got: Destination,
    /// Whether the analysis' best agent was the expected one, and its confidence.
    best_right: bool,
    best_confidence: f64,
    decision: Decision,
}

/// The evaluation's figures.
fn figures(outcomes: &[Outcome], agents: &AgentSet) -> Evaluation {
    let total = outcomes.len();
    let correct = outcomes.iter().filter(|o| o.expected == o.got).count();
    let fell_back = outcomes
        .iter()
        .filter(|o| o.got == Destination::Fallback)
        .count();
    let share = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);

    let mut pairs: HashMap<(Destination, Destination), usize> = HashMap::new();
    for o in outcomes {
        *pairs.entry((o.expected, o.got)).or_default() += 1;
    }
    // Every agent of the set, and the fallback, with what was expected of and given to it.
    let mut destinations: Vec<Destination> = agents
        .agents()
        .iter()
        .filter(|a| !a.is_fallback)
        .map(|a| Destination::Agent(a.id))
        .collect();
    destinations.push(Destination::Fallback);
    let mut by_agent: Vec<AgentScore> = destinations
        .into_iter()
        .map(|d| {
            let support = outcomes.iter().filter(|o| o.expected == d).count();
            let given = outcomes.iter().filter(|o| o.got == d).count();
            let right = pairs.get(&(d, d)).copied().unwrap_or(0);
            AgentScore {
                agent_id: d.agent_id(agents),
                name: d.name(agents),
                precision: share(right, given),
                recall: share(right, support),
                support,
            }
        })
        .collect();
    by_agent.sort_by(|a, b| b.support.cmp(&a.support).then_with(|| a.name.cmp(&b.name)));

    let mut confusion: Vec<Confusion> = pairs
        .iter()
        .map(|((expected, got), count)| Confusion {
            expected: expected.name(agents),
            got: got.name(agents),
            count: *count,
        })
        .collect();
    confusion.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.expected.cmp(&b.expected))
            .then_with(|| a.got.cmp(&b.got))
    });

    let mut bins = [(0usize, 0usize); 10];
    for o in outcomes {
        let b = ((o.best_confidence * 10.0) as usize).min(9);
        bins[b].0 += 1;
        bins[b].1 += usize::from(o.best_right);
    }
    let calibration = bins
        .iter()
        .enumerate()
        .map(|(i, &(decisions, right))| CalibrationBin {
            confidence_from: i as f64 / 10.0,
            confidence_to: (i + 1) as f64 / 10.0,
            decisions,
            accuracy: share(right, decisions),
        })
        .collect();

    let mut wrong: Vec<&Outcome> = outcomes.iter().filter(|o| o.expected != o.got).collect();
    wrong.sort_by(|a, b| b.decision.confidence.total_cmp(&a.decision.confidence));
    let misrouted = wrong
        .into_iter()
        .take(MAX_MISROUTED)
        .map(|o| Misrouted {
            message: o.message.clone(),
            expected: o.expected.name(agents),
            got: o.got.name(agents),
            confidence: o.decision.confidence,
            reason: o.decision.reason.clone(),
        })
        .collect();

    Evaluation {
        total,
        correct,
        accuracy: share(correct, total).unwrap_or(0.0),
        fallback_rate: share(fell_back, total).unwrap_or(0.0),
        by_agent,
        confusion,
        calibration,
        misrouted,
    }
}

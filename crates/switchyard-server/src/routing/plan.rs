//! The routing plan of one message: the lexical analysis, the decision under the tenant's
//! policy, and the cascade.
//!
//! The cascade: a tenant whose `analyzer` is `llm` or `embedding` asks that model only when
//! the lexical verdict is in the ambiguous band (`cascade_band`, default `[0, 0.8)`) — not
//! for a pinned agent, not when the conversation sticks with its agent, not when the
//! lexical verdict is confident — so most turns make no model call. A model that times out,
//! fails or answers something unusable leaves the lexical decision in place, and the
//! routing reason says why.

use std::sync::Arc;
use std::time::Instant;

use switchyard_agents::Names;
use switchyard_core::routing::{Analysis, Decision, Method, RouteInput, RoutingPolicy};
use switchyard_core::settings::ModelEndpoint;
use switchyard_core::{AgentId, TenantId};
use tracing::Instrument as _;

use super::analyzers::{AnalyzerInput, IntentAnalyzer, LexicalAnalyzer};
use super::encoder::InProcessEncoder;
use super::{RoutingError, TenantRouting, policy};
use crate::app::AppState;
use crate::auth::Principal;

/// A decision and what it was made from.
#[derive(Debug)]
pub struct Plan {
    /// The tenant's routing (its agents and index) the decision was made over.
    pub routing: Arc<TenantRouting>,
    /// The analysis the decision used (the model's, when the cascade used it).
    pub analysis: Analysis,
    /// The decision.
    pub decision: Decision,
    /// Milliseconds spent in the lexical analysis.
    pub analyze_ms: f64,
    /// Milliseconds spent deciding, a model's call in the cascade included.
    pub route_ms: f64,
    /// Analysis and decision without a model's call: Switchyard's own time.
    pub own_ms: f64,
}

impl Plan {
    /// Makes the turn's intent the one of the agent that answers (docs/routing.md): the
    /// analysis' label where its best candidate answers, else the answering agent's first
    /// intent (or its name), with the analysis' own label kept in the routing record.
    pub fn attribute_intent(&mut self, answering: AgentId) {
        let best = self.analysis.candidates.first().map(|c| c.agent_id);
        let guess = match self.decision.guessed_intent.take() {
            Some(guess) => Some(guess),
            None => self.analysis.intent.category.clone(),
        };
        if best == Some(answering) {
            self.analysis.intent.category = guess;
            return;
        }
        let Some(agent) = self.routing.index.agent_set().get(answering) else {
            return;
        };
        let own = agent
            .intents
            .first()
            .cloned()
            .unwrap_or_else(|| agent.name.clone());
        if guess.as_deref() != Some(own.as_str()) {
            self.decision.guessed_intent = guess;
        }
        self.analysis.intent.category = Some(own);
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Routes `message` for `principal`: a follow-up of `last_agent`'s conversation, or pinned
/// to `pinned`.
pub async fn plan(
    state: &AppState,
    principal: &Principal,
    message: &str,
    last_agent: Option<AgentId>,
    pinned: Option<AgentId>,
) -> Result<Plan, RoutingError> {
    let routing = state.tenant_routing(principal).await?;
    let agents = routing.index.agent_set();
    state
        .shared
        .sync_circuits(&state.breakers, principal.scope.tenant_id(), |id| {
            agents.get(id).map(|a| Names {
                tenant: &principal.tenant.slug,
                agent: &a.name,
            })
        })
        .await;
    let started = Instant::now();
    let tenant = principal.scope.tenant_id();
    let (analysis, own) = analyze(state.encoder.as_ref(), &routing, message, pinned.is_some())
        .instrument(tracing::debug_span!("routing.analyze", tenant.id = %tenant))
        .await;
    let analyze_ms = ms(started);
    let started = Instant::now();
    let policy = policy(&state.config, &principal.tenant.settings, &routing.index);
    let facts = Facts {
        state,
        tenant: principal.scope.tenant_id(),
        routing: &routing,
        policy: &policy,
        pinned,
        last_agent,
    };
    let decide = tracing::debug_span!(
        "routing.decide",
        tenant.id = %tenant,
        routing.method = tracing::field::Empty,
        agent.name = tracing::field::Empty,
    );
    let decision = decide.in_scope(|| facts.decide(&analysis))?;
    if !decide.is_disabled() {
        decide.record("routing.method", decision.method.as_str());
        if let Some(agent) = agents.get(decision.agent_id) {
            decide.record("agent.name", agent.name.as_str());
        }
    }
    let route_ms = ms(started);
    let mut plan = Plan {
        routing: routing.clone(),
        analysis,
        decision,
        analyze_ms,
        route_ms,
        own_ms: own.as_secs_f64() * 1000.0 + route_ms,
    };
    if pinned.is_none() && plan.decision.method != Method::Sticky {
        cascade(&facts, principal, message, &mut plan).await;
    }
    Ok(plan)
}

/// The in-process analysis of a message, as every turn makes it (the routing lab too): the
/// lexical analyzer, then the whole encoder where it is not sure (never for a pinned
/// agent); and the time the lexical analysis took.
pub(crate) async fn analyze(
    encoder: Option<&Arc<InProcessEncoder>>,
    routing: &TenantRouting,
    message: &str,
    pinned: bool,
) -> (Analysis, std::time::Duration) {
    let started = Instant::now();
    let analysis = LexicalAnalyzer.analyze_now(routing, message);
    let own = started.elapsed();
    if pinned {
        return (analysis, own);
    }
    (refine(encoder, routing, message, analysis).await, own)
}

/// The full head's analysis of a message the fast analysis is not sure of, with its
/// embedding by the whole encoder (cached, or computed on a blocking thread).
async fn refine(
    encoder: Option<&Arc<InProcessEncoder>>,
    routing: &TenantRouting,
    message: &str,
    fast: Analysis,
) -> Analysis {
    let Some(encoder) = encoder else {
        return fast;
    };
    if !routing.index.wants_full(&fast) {
        return fast;
    }
    let started = Instant::now();
    let Some((embedding, computed)) = encoder.embed_message(message).await else {
        return fast;
    };
    crate::metrics::encoder_turn(!computed, started.elapsed());
    routing
        .index
        .analyze_full(message, &embedding)
        .unwrap_or(fast)
}

/// What a decision is made from besides the analysis.
struct Facts<'a> {
    state: &'a AppState,
    tenant: TenantId,
    routing: &'a TenantRouting,
    policy: &'a RoutingPolicy,
    pinned: Option<AgentId>,
    last_agent: Option<AgentId>,
}

impl Facts<'_> {
    fn decide(
        &self,
        analysis: &Analysis,
    ) -> Result<Decision, switchyard_core::routing::RouteError> {
        // Only agents that failed lately have circuits, so this is nearly always empty.
        let down = self.state.breakers.unavailable(self.tenant);
        let unavailable = |agent: AgentId| {
            down.iter()
                .find(|(id, _)| *id == agent)
                .map(|(_, why)| why.clone())
        };
        let input = RouteInput {
            pinned: self.pinned,
            last_agent: self.last_agent,
            unavailable: &unavailable,
        };
        self.state.analyzers.matcher.decide(
            self.routing.index.agent_set(),
            analysis,
            self.policy,
            &input,
        )
    }
}

/// The model-backed analyzer the tenant chose, with its model, if any.
fn model_analyzer<'a>(
    state: &'a AppState,
    principal: &Principal,
) -> Option<(&'a dyn IntentAnalyzer, ModelEndpoint)> {
    let settings = &principal.tenant.settings;
    let choice = settings
        .analyzer
        .as_deref()
        .unwrap_or(state.config.analyzer.as_str());
    // A tenant's own model without its own key takes the server-wide key setting, but only
    // where the operator granted that variable to the tenant: otherwise the operator's key
    // would go to whatever address the tenant named.
    let with_key = |own: Option<ModelEndpoint>, server_key: &Option<String>| {
        own.map(|mut endpoint| {
            if endpoint.api_key_env.is_none()
                && let Some(var) = server_key
                && state
                    .key_envs_for(&principal.tenant)
                    .contains(&var.as_str())
            {
                endpoint.api_key_env = Some(var.clone());
            }
            endpoint
        })
    };
    let config = &state.config;
    match choice {
        "llm" => Some((
            &state.analyzers.llm as &dyn IntentAnalyzer,
            with_key(settings.llm.clone(), &config.llm_api_key_env)
                .or_else(|| config.global_llm())?,
        )),
        "embedding" => Some((
            &state.analyzers.embedding as &dyn IntentAnalyzer,
            with_key(settings.embedding.clone(), &config.embedding_api_key_env)
                .or_else(|| config.global_embedding())?,
        )),
        _ => None,
    }
}

/// Asks the tenant's model when the lexical verdict is in the ambiguous band, and takes its
/// verdict if a decision can be made on it.
async fn cascade(facts: &Facts<'_>, principal: &Principal, message: &str, plan: &mut Plan) {
    let state = facts.state;
    let Some((analyzer, endpoint)) = model_analyzer(state, principal) else {
        return;
    };
    let [low, high] = principal.tenant.settings.cascade_band.unwrap_or([
        state.config.cascade_band_low,
        state.config.cascade_band_high,
    ]);
    let confidence = plan.analysis.intent.confidence;
    if confidence < low || confidence >= high {
        return;
    }
    let started = Instant::now();
    let verdict = analyzer
        .analyze(&AnalyzerInput {
            tenant: principal.scope.tenant_id(),
            routing: &plan.routing,
            message,
            lexical: Some(&plan.analysis),
            endpoint: Some(&endpoint),
        })
        .await;
    let method = analyzer.method().as_str();
    let outcome = match verdict {
        Ok(model_analysis) => match facts.decide(&model_analysis) {
            Ok(model_decision) => {
                plan.decision = model_decision;
                plan.analysis = model_analysis;
                "used"
            }
            Err(e) => {
                let reason = &mut plan.decision.reason;
                *reason = format!("{reason}; the {method} verdict could not be used: {e}");
                "unusable"
            }
        },
        Err(why) => {
            let reason = &mut plan.decision.reason;
            *reason = format!("{reason}; the {method} analyzer gave no verdict ({why})");
            "failed"
        }
    };
    crate::metrics::model_call(&principal.tenant.slug, method, outcome, started.elapsed());
    plan.route_ms += ms(started);
}

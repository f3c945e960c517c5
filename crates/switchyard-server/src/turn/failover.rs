//! Calling the chosen agent, and the next candidates when it fails: each call through the
//! agent's circuit, all of them within the turn's deadline, every failure counted and
//! recorded, the first one named in the decision's `failover_from`.

use std::time::Instant;

use chrono::Utc;
use switchyard_agents::{AgentError, AgentInvoker as _, AgentRequest, Names};
use switchyard_core::model::{Agent, AgentCallError};
use switchyard_core::routing::{AgentRef, Decision, FailoverFrom, Skipped};
use switchyard_core::{AgentId, TenantId};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::{EventSink, FailedOver, TurnError, TurnEvent, ms};
use crate::app::AppState;
use crate::auth::Principal;
use crate::routing::Plan;
use crate::shared::Outcome;

/// The agent that answered, and its answer.
pub(super) struct Answered {
    /// Who answered.
    pub agent: AgentRef,
    /// The answer.
    pub text: String,
    /// Milliseconds spent on agent calls, failed ones included.
    pub agent_ms: f64,
}

/// One call's outcome, and whether any piece of its answer reached the client (after which
/// no other agent may take over: the answer is begun).
type CallOutcome = (Result<String, AgentError>, bool);

/// Calls the plan's agent and then, while they fail and nothing was streamed yet, the
/// decision's failover list in order. The first failure is recorded in the decision.
pub(super) async fn answer(
    state: &AppState,
    principal: &Principal,
    plan: &mut Plan,
    request: &AgentRequest<'_>,
    events: Option<&EventSink>,
    deadline: tokio::time::Instant,
) -> Result<Answered, TurnError> {
    let started = Instant::now();
    let mut candidates = vec![AgentRef {
        agent_id: plan.decision.agent_id,
        name: plan.decision.agent_name.clone(),
    }];
    candidates.extend(plan.decision.failover.iter().cloned());
    let mut first_failure: Option<(String, AgentError)> = None;
    let mut last_failure: Option<FailoverFrom> = None;
    let mut called = false;
    for candidate in &candidates {
        let Some(agent) = plan.routing.agents.get(&candidate.agent_id) else {
            continue;
        };
        if let (Some(events), Some(from)) = (events, last_failure.take()) {
            let _ = events.send(TurnEvent::FailedOver(Box::new(FailedOver {
                from,
                to: candidate.clone(),
            })));
        }
        let (result, began) = call_within(
            state,
            principal,
            agent,
            request,
            events,
            deadline,
            &mut called,
        )
        .await;
        match result {
            Ok(text) => {
                if let Some((failed, _)) = &first_failure {
                    crate::metrics::failover(&principal.tenant.slug, failed);
                }
                return Ok(Answered {
                    agent: candidate.clone(),
                    text,
                    agent_ms: ms(started),
                });
            }
            // Its circuit opened since the decision (another turn's failure): passed over
            // like the agents the decision skipped.
            Err(AgentError::CircuitOpen) => {
                let health = state.breakers.health(principal.scope.tenant_id(), agent.id);
                let reason = health
                    .unavailable_reason()
                    .unwrap_or_else(|| AgentError::CircuitOpen.to_string());
                note_failover(&mut plan.decision, agent, &reason);
                last_failure = Some(failed(agent, &reason));
                plan.decision.skipped.push(Skipped {
                    agent_id: agent.id,
                    name: agent.name.clone(),
                    reason,
                });
                if first_failure.is_none() {
                    first_failure = Some((agent.name.clone(), AgentError::CircuitOpen));
                }
            }
            Err(e) => {
                tracing::warn!(agent.name = %agent.name, error = %e, "agent call failed");
                // The routing record and the failover event reach members: the kind only.
                let error = e.without_detail().to_string();
                note_failover(&mut plan.decision, agent, &error);
                last_failure = Some(failed(agent, &error));
                if first_failure.is_none() {
                    first_failure = Some((agent.name.clone(), e));
                }
                if began {
                    // Part of this answer already reached the client; another agent's
                    // answer cannot be spliced onto it.
                    break;
                }
            }
        }
    }
    let (agent, error) = first_failure
        .unwrap_or_else(|| (plan.decision.agent_name.clone(), AgentError::CircuitOpen));
    // Admins get the detail; members the kind of failure.
    let error = if principal.scope.is_admin() {
        error
    } else {
        error.without_detail()
    };
    Err(TurnError::Agent { agent, error })
}

fn failed(agent: &Agent, error: &str) -> FailoverFrom {
    FailoverFrom {
        agent_id: agent.id,
        name: agent.name.clone(),
        error: error.to_owned(),
    }
}

/// Names the first agent that failed (or was passed over) in the decision's `failover_from`,
/// unless one is named already.
fn note_failover(decision: &mut Decision, agent: &Agent, error: &str) {
    if decision.failover_from.is_none() {
        decision.failover_from = Some(failed(agent, error));
    }
}

/// Calls one agent through its circuit, within the turn's deadline, and counts and records
/// the outcome, in a span of its own (whose `traceparent` the call carries). `called` says
/// whether an earlier candidate was called already.
async fn call_within(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    request: &AgentRequest<'_>,
    events: Option<&EventSink>,
    deadline: tokio::time::Instant,
    called: &mut bool,
) -> CallOutcome {
    let span = tracing::debug_span!(
        "agent.call",
        tenant.id = %principal.scope.tenant_id(),
        agent.id = %agent.id,
        agent.name = %agent.name,
        error.kind = tracing::field::Empty,
    );
    let traceparent = crate::traces::traceparent(&span);
    let mut request = request.clone();
    request.traceparent = traceparent.as_deref();
    let outcome = call_in_span(state, principal, agent, &request, events, deadline, called)
        .instrument(span.clone())
        .await;
    if let Err(e) = &outcome.0 {
        span.record("error.kind", e.kind());
    }
    outcome
}

async fn call_in_span(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    request: &AgentRequest<'_>,
    events: Option<&EventSink>,
    deadline: tokio::time::Instant,
    called: &mut bool,
) -> CallOutcome {
    let scope = &principal.scope;
    let started = Instant::now();
    let names = Names {
        tenant: &principal.tenant.slug,
        agent: &agent.name,
    };
    let outcome = match state.breakers.permit(scope.tenant_id(), agent.id, names) {
        None => return (Err(AgentError::CircuitOpen), false),
        Some(permit) => {
            let had_the_whole_turn = !*called;
            *called = true;
            // Only the answering agent's usage counts: forget one that failed after telling.
            if let Some(usage) = request.usage {
                *usage.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
            match tokio::time::timeout_at(deadline, call(state, agent, request, events)).await {
                Ok(outcome) => {
                    let trial = permit.is_trial();
                    let shared = match &outcome.0 {
                        Ok(_) => Outcome::Answered {
                            cleared: permit.succeeded(),
                        },
                        Err(e) => {
                            permit.failed(&e.to_string());
                            Outcome::Failed { trial }
                        }
                    };
                    share(state, scope.tenant_id(), agent.id, names, shared);
                    outcome
                }
                // The turn's time is up: this agent timed out, and no one else may start
                // (so the turn counts as begun). It counts against the agent's circuit only
                // if it had the turn's whole time; an agent left only what others did not
                // use is not to blame.
                Err(_) => {
                    let spent = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let error = AgentError::Timeout(spent);
                    if had_the_whole_turn {
                        let trial = permit.is_trial();
                        permit.failed(&error.to_string());
                        share(
                            state,
                            scope.tenant_id(),
                            agent.id,
                            names,
                            Outcome::Failed { trial },
                        );
                    }
                    (Err(error), true)
                }
            }
        }
    };
    crate::metrics::agent_call(
        &principal.tenant.slug,
        &agent.name,
        outcome.0.as_ref().err().map(AgentError::kind),
        started.elapsed(),
    );
    if let Err(e) = &outcome.0 {
        let record = AgentCallError {
            agent_id: agent.id,
            agent_name: agent.name.clone(),
            kind: e.kind().to_string(),
            at: Utc::now(),
        };
        if let Err(store_error) = state.store.record_agent_error(scope, record).await {
            tracing::warn!(error = %store_error, "recording an agent error failed");
        }
    }
    outcome
}

/// Tells the other replicas (if any) what became of a call, in a task of its own: the turn
/// does not wait on Redis for it.
fn share(state: &AppState, tenant: TenantId, agent: AgentId, names: Names<'_>, outcome: Outcome) {
    if !state.shared.is_configured() || !outcome.is_news() {
        return;
    }
    let state = state.clone();
    let (slug, name) = (names.tenant.to_owned(), names.agent.to_owned());
    tokio::spawn(async move {
        let names = Names {
            tenant: &slug,
            agent: &name,
        };
        state
            .shared
            .share_outcome(&state.breakers, tenant, agent, names, outcome)
            .await;
    });
}

/// Calls one agent, forwarding its answer's pieces to `events`.
async fn call(
    state: &AppState,
    agent: &Agent,
    request: &AgentRequest<'_>,
    events: Option<&EventSink>,
) -> CallOutcome {
    let Some(events) = events else {
        return (state.agents.invoke(agent, request, None).await, false);
    };
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let mut forwarded = false;
    let result = {
        let invocation = state.agents.invoke(agent, request, Some(&tx));
        tokio::pin!(invocation);
        loop {
            tokio::select! {
                result = &mut invocation => break result,
                Some(piece) = rx.recv() => {
                    forwarded = true;
                    let _ = events.send(TurnEvent::Delta(piece));
                }
            }
        }
    };
    while let Ok(piece) = rx.try_recv() {
        forwarded = true;
        let _ = events.send(TurnEvent::Delta(piece));
    }
    (result, forwarded)
}

//! Active health checks (docs/routing.md): agents whose configuration has a `health_check`
//! are probed off the request path, every `interval_s` seconds, and their circuits opened or
//! closed from the result, so that a dead agent is passed over before a user meets it.
//!
//! A replica checks the agents of the tenants it has routed for since it started: each time
//! a tenant's routing is (re)built from the store, its enabled agents with a check are
//! registered here (replacing what was registered before, so a changed or deleted agent is
//! checked as it now is, or no more). Checks run a few at a time, so a burst of them
//! neither floods the agents nor takes the server's threads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_agents::{CircuitBreakers, Invokers, Names};
use switchyard_core::agent_config::AgentConfig;
use switchyard_core::model::Agent;
use switchyard_core::{AgentId, TenantId};
use tokio::task::JoinHandle;

use crate::shared::{Outcome, Shared};
use tokio::time::Instant;

/// Checks running at once, at most.
const CONCURRENT_CHECKS: usize = 16;

struct Check {
    agent: Arc<Agent>,
    every: Duration,
    next: Instant,
}

struct TenantChecks {
    slug: Arc<str>,
    checks: HashMap<AgentId, Check>,
}

type Registry = Mutex<HashMap<TenantId, TenantChecks>>;

/// The registered checks and the task that makes them (stopped when this is dropped).
pub struct HealthChecks {
    registry: Arc<Registry>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HealthChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecks").finish_non_exhaustive()
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HealthChecks {
    /// Starts the task that makes the checks, through `agents`, into `breakers`.
    pub fn start(
        agents: Arc<Invokers>,
        breakers: Arc<CircuitBreakers>,
        shared: Arc<Shared>,
    ) -> Self {
        let registry: Arc<Registry> = Arc::default();
        let task = tokio::spawn(run(registry.clone(), agents, breakers, shared));
        Self { registry, task }
    }

    /// Registers the tenant's agents as they are now: those with a health check are checked
    /// from now on (the first check at once), and no other of the tenant's.
    pub fn register<'a>(
        &self,
        tenant: TenantId,
        slug: &str,
        agents: impl Iterator<Item = &'a Agent>,
    ) {
        let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let old = registry.remove(&tenant);
        let now = Instant::now();
        let mut checks = HashMap::new();
        for agent in agents.filter(|a| a.enabled) {
            let Some(every) = AgentConfig::parse(agent.kind, &agent.config)
                .ok()
                .and_then(|c| {
                    c.health_check()
                        .map(|(h, _)| Duration::from_secs(h.interval_s))
                })
            else {
                continue;
            };
            // An unchanged agent keeps its schedule; a new or changed one is checked now.
            let next = old
                .as_ref()
                .and_then(|o| o.checks.get(&agent.id))
                .filter(|c| c.agent.updated_at == agent.updated_at && c.every == every)
                .map_or(now, |c| c.next);
            checks.insert(
                agent.id,
                Check {
                    agent: Arc::new(agent.clone()),
                    every,
                    next,
                },
            );
        }
        if !checks.is_empty() {
            registry.insert(
                tenant,
                TenantChecks {
                    slug: slug.into(),
                    checks,
                },
            );
        }
    }

    /// How many agents are checked.
    pub fn len(&self) -> usize {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        registry.values().map(|t| t.checks.len()).sum()
    }

    /// Whether no agent is checked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every second, starts the checks that are due.
async fn run(
    registry: Arc<Registry>,
    agents: Arc<Invokers>,
    breakers: Arc<CircuitBreakers>,
    shared: Arc<Shared>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CHECKS));
    let mut ticks = tokio::time::interval(Duration::from_millis(250));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let due: Vec<(TenantId, Arc<str>, Arc<Agent>)> = {
            let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
            let mut due = Vec::new();
            for (tenant, t) in registry.iter_mut() {
                for check in t.checks.values_mut().filter(|c| c.next <= now) {
                    check.next = now + check.every;
                    due.push((*tenant, t.slug.clone(), check.agent.clone()));
                }
            }
            due
        };
        for (tenant, slug, agent) in due {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (agents, breakers, shared) = (agents.clone(), breakers.clone(), shared.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let Some(outcome) = agents.probe(&agent).await else {
                    return;
                };
                let error = outcome.as_ref().err().map(ToString::to_string);
                if let Some(e) = &error {
                    tracing::debug!(tenant.id = %tenant, agent.name = %agent.name, error = %e, "health check failed");
                }
                let names = Names {
                    tenant: &slug,
                    agent: &agent.name,
                };
                breakers.checked(
                    tenant,
                    agent.id,
                    names,
                    error.as_deref().map_or(Ok(()), Err),
                );
                let outcome = match error {
                    None => Outcome::CheckPassed,
                    Some(_) => Outcome::CheckFailed,
                };
                shared
                    .share_outcome(&breakers, tenant, agent.id, names, outcome)
                    .await;
            });
        }
    }
}

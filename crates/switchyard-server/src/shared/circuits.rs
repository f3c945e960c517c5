//! The agents' circuits across replicas: each replica keeps its circuits in process
//! ([`switchyard_agents::CircuitBreakers`]) and, with Redis, brings a tenant's up to what the
//! replicas share before routing looks at them, and tells the others of every failure and
//! of every circuit a success closes. Without Redis (or while it does not answer) each
//! replica's circuits are its own.

use switchyard_agents::{CircuitBreakers, Names};
use switchyard_core::{AgentId, TenantId};

use super::Shared;

/// What became of a call or check of an agent, for the other replicas.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    /// A call answered; `cleared`: it closed the circuit or cleared failures.
    Answered {
        /// Whether there was anything to clear.
        cleared: bool,
    },
    /// A call failed; `trial`: it was a half-open circuit's trial, whose failure reopens it.
    Failed {
        /// Whether it was the trial call.
        trial: bool,
    },
    /// An active health check passed.
    CheckPassed,
    /// An active health check failed, which opens the circuit at once.
    CheckFailed,
}

impl Outcome {
    /// Whether the other replicas need to hear of it: not of a call that answered with
    /// nothing to clear (nearly every call).
    pub(crate) fn is_news(self) -> bool {
        !matches!(self, Outcome::Answered { cleared: false })
    }
}

impl Shared {
    /// Brings the tenant's circuits up to what the replicas share (nothing without Redis).
    pub(crate) async fn sync_circuits<'n>(
        &self,
        breakers: &CircuitBreakers,
        tenant: TenantId,
        names: impl Fn(AgentId) -> Option<Names<'n>>,
    ) {
        if let Some(shared) = self.circuits(tenant).await {
            breakers.adopt_all(tenant, &shared, names);
        }
    }

    /// Tells the other replicas what became of a call or check of the tenant's agent, and
    /// takes the shared circuit a failure leaves.
    pub(crate) async fn share_outcome(
        &self,
        breakers: &CircuitBreakers,
        tenant: TenantId,
        agent: AgentId,
        names: Names<'_>,
        outcome: Outcome,
    ) {
        let opens = match outcome {
            Outcome::Answered { cleared: false } => return,
            Outcome::Answered { cleared: true } | Outcome::CheckPassed => {
                self.circuit_closed(tenant, agent).await;
                return;
            }
            Outcome::Failed { trial } => trial,
            Outcome::CheckFailed => true,
        };
        let config = breakers.config();
        if let Some(circuit) = self
            .circuit_failed(
                tenant,
                agent,
                config.failure_threshold,
                config.open_for,
                opens,
            )
            .await
        {
            breakers.adopt(tenant, names, circuit);
        }
    }
}

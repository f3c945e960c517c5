//! Circuit breakers, one per agent: after `failure_threshold` failures in a row an agent's
//! circuit opens for `open_for`; then one trial call is let through, and its outcome closes
//! the circuit again or reopens it.
//!
//! Circuits are keyed by tenant and agent: agent ids are unique only within a tenant (an
//! import keeps its ids), and one tenant's failing agent must never close off another's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchyard_core::{AgentId, TenantId};

/// When circuits open and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Failures in a row that open a circuit.
    pub failure_threshold: u32,
    /// How long a circuit stays open before a trial call.
    pub open_for: Duration,
}

#[derive(Debug)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

type Key = (TenantId, AgentId);

/// Every agent's circuit. Only agents that have failed recently have an entry, so the map
/// stays as small as the set of troubled agents.
#[derive(Debug)]
pub struct CircuitBreakers {
    config: BreakerConfig,
    states: Mutex<HashMap<Key, State>>,
}

/// Leave to call an agent; report its outcome with [`Permit::record`]. A permit dropped
/// unreported (the call was cancelled) counts as neither success nor failure, and frees a
/// half-open circuit's trial slot so that the next call can try.
#[derive(Debug)]
#[must_use = "report the call's outcome with `record`"]
pub struct Permit<'a> {
    breakers: &'a CircuitBreakers,
    key: Key,
    trial: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Whether this is the one trial call of a half-open circuit.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// Records the call's outcome.
    pub fn record(mut self, success: bool) {
        self.recorded = true;
        self.breakers.record(self.key, self.trial, success);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.trial {
            let mut states = self.breakers.lock();
            if let Some(state) = states.get_mut(&self.key) {
                state.trial_in_flight = false;
            }
        }
    }
}

impl CircuitBreakers {
    /// No circuit open yet.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, State>> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the tenant's agent's circuit is open now (for routing: such agents are
    /// skipped).
    pub fn is_open(&self, tenant: TenantId, agent: AgentId) -> bool {
        self.lock()
            .get(&(tenant, agent))
            .is_some_and(|s| match s.open_until {
                Some(until) => Instant::now() < until || s.trial_in_flight,
                None => false,
            })
    }

    /// Asks to call the tenant's agent: `None` while its circuit is open (or its trial
    /// call runs).
    pub fn permit(&self, tenant: TenantId, agent: AgentId) -> Option<Permit<'_>> {
        let key = (tenant, agent);
        let permit = |trial| Permit {
            breakers: self,
            key,
            trial,
            recorded: false,
        };
        let mut states = self.lock();
        let Some(state) = states.get_mut(&key) else {
            return Some(permit(false));
        };
        match state.open_until {
            None => Some(permit(false)),
            Some(until) if Instant::now() < until => None,
            Some(_) if state.trial_in_flight => None,
            Some(_) => {
                state.trial_in_flight = true;
                Some(permit(true))
            }
        }
    }

    fn record(&self, key: Key, trial: bool, success: bool) {
        let mut states = self.lock();
        if success {
            states.remove(&key);
            return;
        }
        let state = states.entry(key).or_insert(State {
            failures: 0,
            open_until: None,
            trial_in_flight: false,
        });
        state.failures = state.failures.saturating_add(1);
        if trial {
            state.trial_in_flight = false;
            state.open_until = Some(Instant::now() + self.config.open_for);
        } else if state.failures >= self.config.failure_threshold && state.open_until.is_none() {
            state.open_until = Some(Instant::now() + self.config.open_for);
            tracing::warn!(tenant.id = %key.0, agent.id = %key.1, failures = state.failures, "circuit opened");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &CircuitBreakers, t: TenantId, a: AgentId) {
        b.permit(t, a).expect("a permit").record(false);
    }

    #[test]
    fn opens_after_the_threshold_then_lets_one_trial_through() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(40),
        });
        let (t, a) = (TenantId::new(), AgentId::new());
        for _ in 0..2 {
            fail(&b, t, a);
        }
        assert!(!b.is_open(t, a));
        fail(&b, t, a);
        assert!(b.is_open(t, a));
        assert!(b.permit(t, a).is_none());
        std::thread::sleep(Duration::from_millis(50));
        let trial = b.permit(t, a).expect("the trial");
        assert!(trial.is_trial());
        assert!(b.permit(t, a).is_none(), "only one trial at a time");
        trial.record(false);
        assert!(b.permit(t, a).is_none(), "a failed trial reopens");
        std::thread::sleep(Duration::from_millis(50));
        b.permit(t, a).expect("a second trial").record(true);
        let closed = b.permit(t, a).expect("closed");
        assert!(!closed.is_trial(), "a good trial closes");
        assert!(!b.is_open(t, a));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(30),
        });
        let (t, a) = (TenantId::new(), AgentId::new());
        fail(&b, t, a);
        b.permit(t, a).expect("closed").record(true);
        fail(&b, t, a);
        assert!(!b.is_open(t, a));
    }

    #[test]
    fn a_cancelled_trial_frees_the_circuit_for_the_next_call() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(20),
        });
        let (t, a) = (TenantId::new(), AgentId::new());
        fail(&b, t, a);
        std::thread::sleep(Duration::from_millis(30));
        let trial = b.permit(t, a).expect("the trial");
        drop(trial); // the caller went away mid-call
        let next = b
            .permit(t, a)
            .expect("another trial, not a circuit stuck open");
        assert!(next.is_trial());
    }

    #[test]
    fn the_same_agent_id_in_two_tenants_has_two_circuits() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(30),
        });
        let (mine, theirs, a) = (TenantId::new(), TenantId::new(), AgentId::new());
        fail(&b, theirs, a);
        assert!(b.is_open(theirs, a));
        assert!(!b.is_open(mine, a));
        assert!(b.permit(mine, a).is_some());
    }
}

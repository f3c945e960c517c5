//! Circuit breakers, one per agent: after `failure_threshold` failures in a row an agent's
//! circuit opens for `open_for`; then one trial call is let through, and its outcome closes
//! the circuit again or reopens it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchyard_core::AgentId;

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

/// Every agent's circuit. Only agents that have failed recently have an entry, so the map
/// stays as small as the set of troubled agents.
#[derive(Debug)]
pub struct CircuitBreakers {
    config: BreakerConfig,
    states: Mutex<HashMap<AgentId, State>>,
}

/// Leave to call an agent; report its outcome with [`CircuitBreakers::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The circuit is closed.
    Closed,
    /// This is the one trial call of a half-open circuit.
    Trial,
}

impl CircuitBreakers {
    /// No circuit open yet.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the agent's circuit is open now (for routing: such agents are skipped).
    pub fn is_open(&self, agent: AgentId) -> bool {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(&agent).is_some_and(|s| match s.open_until {
            Some(until) => Instant::now() < until || s.trial_in_flight,
            None => false,
        })
    }

    /// Asks to call the agent: `None` while its circuit is open (or its trial call runs).
    pub fn permit(&self, agent: AgentId) -> Option<Permit> {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = states.get_mut(&agent) else {
            return Some(Permit::Closed);
        };
        match state.open_until {
            None => Some(Permit::Closed),
            Some(until) if Instant::now() < until => None,
            Some(_) if state.trial_in_flight => None,
            Some(_) => {
                state.trial_in_flight = true;
                Some(Permit::Trial)
            }
        }
    }

    /// Records a call's outcome.
    pub fn record(&self, agent: AgentId, permit: Permit, success: bool) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        if success {
            states.remove(&agent);
            return;
        }
        let state = states.entry(agent).or_insert(State {
            failures: 0,
            open_until: None,
            trial_in_flight: false,
        });
        state.failures = state.failures.saturating_add(1);
        if permit == Permit::Trial {
            state.trial_in_flight = false;
            state.open_until = Some(Instant::now() + self.config.open_for);
        } else if state.failures >= self.config.failure_threshold && state.open_until.is_none() {
            state.open_until = Some(Instant::now() + self.config.open_for);
            tracing::warn!(agent.id = %agent, failures = state.failures, "circuit opened");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_lets_one_trial_through() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(40),
        });
        let a = AgentId::new();
        for _ in 0..2 {
            let p = b.permit(a).unwrap();
            b.record(a, p, false);
        }
        assert!(!b.is_open(a));
        let p = b.permit(a).unwrap();
        b.record(a, p, false);
        assert!(b.is_open(a));
        assert_eq!(b.permit(a), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.permit(a), Some(Permit::Trial));
        assert_eq!(b.permit(a), None, "only one trial at a time");
        b.record(a, Permit::Trial, false);
        assert_eq!(b.permit(a), None, "a failed trial reopens");
        std::thread::sleep(Duration::from_millis(50));
        let p = b.permit(a).unwrap();
        b.record(a, p, true);
        assert_eq!(b.permit(a), Some(Permit::Closed), "a good trial closes");
        assert!(!b.is_open(a));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(30),
        });
        let a = AgentId::new();
        b.record(a, Permit::Closed, false);
        b.record(a, Permit::Closed, true);
        b.record(a, Permit::Closed, false);
        assert!(!b.is_open(a));
    }
}

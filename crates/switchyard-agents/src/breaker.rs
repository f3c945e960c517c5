//! Circuit breakers, one per agent: after `failure_threshold` failures in a row an agent's
//! circuit opens for `open_for`; then one trial call is let through, and its outcome closes
//! the circuit again or reopens it. An active health check (docs/routing.md) opens and
//! closes circuits too, off the request path.
//!
//! Each circuit also keeps its agent's health as the API shows it: the state, the failures
//! in a row, the last error (the same short text the routing shows) and when the agent last
//! failed and last answered.
//!
//! Circuits are keyed by tenant and agent: agent ids are unique only within a tenant (an
//! import keeps its ids), and one tenant's failing agent must never close off another's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchyard_core::{AgentId, TenantId};

/// When circuits open and for how long.
#[derive(Clone, Copy, Debug)]
pub struct BreakerConfig {
    /// Failures in a row that open a circuit.
    pub failure_threshold: u32,
    /// How long a circuit stays open before a trial call.
    pub open_for: Duration,
}

/// Where a circuit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the circuit's time is up.
    Open,
    /// The time is up: the next call is a trial (or one is running).
    HalfOpen,
}

impl CircuitState {
    /// The state as the API shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }

    /// The state as a gauge: 0 closed, 1 half-open, 2 open.
    pub const fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

/// An agent's health, as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// The circuit's state.
    pub state: CircuitState,
    /// Failures in a row (0 after a success).
    pub consecutive_failures: u32,
    /// What went wrong last, in a few words.
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_error_at: Option<DateTime<Utc>>,
    /// When it last answered.
    pub last_success_at: Option<DateTime<Utc>>,
}

impl Health {
    /// An agent never called (or forgotten): closed, nothing known.
    pub const UNKNOWN: Health = Health {
        state: CircuitState::Closed,
        consecutive_failures: 0,
        last_error: None,
        last_error_at: None,
        last_success_at: None,
    };

    /// Why routing passes the agent over, or `None` while its circuit lets calls through.
    pub fn unavailable_reason(&self) -> Option<String> {
        if self.state == CircuitState::Closed {
            return None;
        }
        // Without the last error's text: routing's reasons reach members, the detail is in
        // the agent's health for admins.
        Some(format!(
            "circuit open after {} failure{} in a row",
            self.consecutive_failures,
            if self.consecutive_failures == 1 {
                ""
            } else {
                "s"
            }
        ))
    }
}

/// What the metrics name a circuit by: the tenant's slug and the agent's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labels {
    /// The tenant's slug.
    pub tenant: Arc<str>,
    /// The agent's name.
    pub agent: Arc<str>,
}

/// What a circuit is named by when it is called: borrowed, so that a call allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct Names<'a> {
    /// The tenant's slug.
    pub tenant: &'a str,
    /// The agent's name.
    pub agent: &'a str,
}

impl From<Names<'_>> for Labels {
    fn from(n: Names<'_>) -> Self {
        Labels {
            tenant: n.tenant.into(),
            agent: n.agent.into(),
        }
    }
}

#[derive(Debug)]
struct State {
    labels: Labels,
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
    last_error: Option<String>,
    last_error_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
}

impl State {
    fn new(labels: Labels) -> Self {
        Self {
            labels,
            failures: 0,
            open_until: None,
            trial_in_flight: false,
            last_error: None,
            last_error_at: None,
            last_success_at: None,
        }
    }

    fn circuit(&self, now: Instant) -> CircuitState {
        match self.open_until {
            None => CircuitState::Closed,
            Some(until) if now < until => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    fn health(&self, now: Instant) -> Health {
        Health {
            state: self.circuit(now),
            consecutive_failures: self.failures,
            last_error: self.last_error.clone(),
            last_error_at: self.last_error_at,
            last_success_at: self.last_success_at,
        }
    }

    /// Whether a call would be refused now (open, or half-open with its trial running).
    fn refuses(&self, now: Instant) -> bool {
        match self.open_until {
            Some(until) => now < until || self.trial_in_flight,
            None => false,
        }
    }
}

/// A circuit as the replicas share it (docs/scaling.md): the failures in a row every replica
/// counted, and whether it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedCircuit {
    /// The agent.
    pub agent: AgentId,
    /// Failures in a row.
    pub failures: u32,
    /// `None`: closed; else how long it stays open from now (zero: its time is up, the next
    /// call is a trial).
    pub open_for: Option<Duration>,
}

impl State {
    /// Takes the shared state; a trial call running here keeps its slot and its outcome
    /// decides.
    fn adopt(&mut self, key: Key, failures: u32, open_for: Option<Duration>, now: Instant) {
        self.failures = failures;
        if self.trial_in_flight {
            return;
        }
        let was_open = self.open_until.is_some();
        self.open_until = open_for.map(|d| now + d);
        match (was_open, self.open_until.is_some()) {
            (false, true) => {
                tracing::warn!(tenant.id = %key.0, agent.id = %key.1, failures, "circuit opened by another replica")
            }
            (true, false) => {
                tracing::info!(tenant.id = %key.0, agent.id = %key.1, "circuit closed by another replica")
            }
            _ => {}
        }
    }
}

type Key = (TenantId, AgentId);

/// Each tenant's circuits, by agent.
type Tenants = HashMap<TenantId, HashMap<AgentId, State>>;

/// Every agent's circuit: an entry for each agent called (or checked) since the start, until
/// it is forgotten. Kept per tenant, so that routing looks only at the tenant's own.
#[derive(Debug)]
pub struct CircuitBreakers {
    config: BreakerConfig,
    states: Mutex<Tenants>,
}

fn entry<'a>(tenants: &'a mut Tenants, key: Key, names: Names<'_>) -> &'a mut State {
    tenants
        .entry(key.0)
        .or_default()
        .entry(key.1)
        .or_insert_with(|| State::new(names.into()))
}

fn get_mut(tenants: &mut Tenants, key: Key) -> Option<&mut State> {
    tenants.get_mut(&key.0)?.get_mut(&key.1)
}

/// Leave to call an agent; report its outcome with [`Permit::succeeded`] or
/// [`Permit::failed`]. A permit dropped unreported (the call was cancelled) counts as
/// neither success nor failure, and frees a half-open circuit's trial slot so that the next
/// call can try.
#[derive(Debug)]
#[must_use = "report the call's outcome with `succeeded` or `failed`"]
pub struct Permit<'a> {
    breakers: &'a CircuitBreakers,
    key: Key,
    names: Names<'a>,
    trial: bool,
    recorded: bool,
}

impl Permit<'_> {
    /// Whether this is the one trial call of a half-open circuit.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    /// The call answered. Returns whether that closed a circuit or cleared failures (which
    /// the replicas then need to hear of).
    pub fn succeeded(mut self) -> bool {
        self.recorded = true;
        self.breakers.success(self.key, self.names)
    }

    /// The call failed; `error` says how, in a few words.
    pub fn failed(mut self, error: &str) {
        self.recorded = true;
        self.breakers
            .failure(self.key, self.names, self.trial, error);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.trial {
            let mut states = self.breakers.lock();
            if let Some(state) = get_mut(&mut states, self.key) {
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

    /// When its circuits open and for how long.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tenants> {
        self.states.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the tenant's agent's circuit refuses calls now (for routing: such agents are
    /// skipped).
    pub fn is_open(&self, tenant: TenantId, agent: AgentId) -> bool {
        self.lock()
            .get(&tenant)
            .and_then(|agents| agents.get(&agent))
            .is_some_and(|s| s.refuses(Instant::now()))
    }

    /// The tenant's agent's health.
    pub fn health(&self, tenant: TenantId, agent: AgentId) -> Health {
        self.lock()
            .get(&tenant)
            .and_then(|agents| agents.get(&agent))
            .map_or(Health::UNKNOWN, |s| s.health(Instant::now()))
    }

    /// The tenant's agents whose circuits refuse calls now, each with why (for routing).
    pub fn unavailable(&self, tenant: TenantId) -> Vec<(AgentId, String)> {
        let now = Instant::now();
        let states = self.lock();
        let Some(agents) = states.get(&tenant) else {
            return Vec::new();
        };
        agents
            .iter()
            .filter(|(_, s)| s.refuses(now))
            .filter_map(|(a, s)| Some((*a, s.health(now).unavailable_reason()?)))
            .collect()
    }

    /// Every circuit's labels and state (for the metrics' gauges).
    pub fn states(&self) -> Vec<(Labels, CircuitState)> {
        let now = Instant::now();
        self.lock()
            .values()
            .flat_map(|agents| agents.values())
            .map(|s| (s.labels.clone(), s.circuit(now)))
            .collect()
    }

    /// Forgets an agent's circuit (it was deleted); returns its labels if it had one.
    pub fn forget(&self, tenant: TenantId, agent: AgentId) -> Option<Labels> {
        let mut states = self.lock();
        let agents = states.get_mut(&tenant)?;
        let forgotten = agents.remove(&agent).map(|s| s.labels);
        if agents.is_empty() {
            states.remove(&tenant);
        }
        forgotten
    }

    /// Asks to call the tenant's agent: `None` while its circuit is open (or its trial
    /// call runs).
    pub fn permit<'a>(
        &'a self,
        tenant: TenantId,
        agent: AgentId,
        names: Names<'a>,
    ) -> Option<Permit<'a>> {
        let key = (tenant, agent);
        let permit = |trial| Permit {
            breakers: self,
            key,
            names,
            trial,
            recorded: false,
        };
        let mut states = self.lock();
        let Some(state) = get_mut(&mut states, key) else {
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

    fn success(&self, key: Key, names: Names<'_>) -> bool {
        let mut states = self.lock();
        let state = entry(&mut states, key, names);
        let cleared = state.open_until.is_some() || state.failures > 0;
        if state.open_until.is_some() {
            tracing::info!(tenant.id = %key.0, agent.id = %key.1, "circuit closed");
        }
        state.failures = 0;
        state.open_until = None;
        state.trial_in_flight = false;
        state.last_success_at = Some(Utc::now());
        cleared
    }

    /// Takes one circuit's state as the replicas share it (after this replica reported a
    /// failure to them).
    pub fn adopt(&self, tenant: TenantId, names: Names<'_>, shared: SharedCircuit) {
        let key = (tenant, shared.agent);
        let mut states = self.lock();
        entry(&mut states, key, names).adopt(key, shared.failures, shared.open_for, Instant::now());
    }

    /// Takes all the tenant's circuits as the replicas share them: a circuit not among
    /// `shared` is closed. `names` names the tenant's agents (an agent it does not name,
    /// one deleted meanwhile, is left out).
    pub fn adopt_all<'n>(
        &self,
        tenant: TenantId,
        shared: &[SharedCircuit],
        names: impl Fn(AgentId) -> Option<Names<'n>>,
    ) {
        let now = Instant::now();
        let mut states = self.lock();
        for circuit in shared {
            let key = (tenant, circuit.agent);
            let state = match get_mut(&mut states, key) {
                Some(state) => state,
                None => match names(circuit.agent) {
                    Some(n) => entry(&mut states, key, n),
                    None => continue,
                },
            };
            state.adopt(key, circuit.failures, circuit.open_for, now);
        }
        if let Some(agents) = states.get_mut(&tenant) {
            for (agent, state) in agents.iter_mut() {
                if !shared.iter().any(|c| c.agent == *agent) {
                    state.adopt((tenant, *agent), 0, None, now);
                }
            }
        }
    }

    fn failure(&self, key: Key, names: Names<'_>, trial: bool, error: &str) {
        let mut states = self.lock();
        let state = entry(&mut states, key, names);
        state.failures = state.failures.saturating_add(1);
        state.last_error = Some(error.to_owned());
        state.last_error_at = Some(Utc::now());
        if trial {
            state.trial_in_flight = false;
            state.open_until = Some(Instant::now() + self.config.open_for);
        } else if state.failures >= self.config.failure_threshold && state.open_until.is_none() {
            state.open_until = Some(Instant::now() + self.config.open_for);
            tracing::warn!(tenant.id = %key.0, agent.id = %key.1, failures = state.failures, "circuit opened");
        }
    }

    /// A test call's outcome (`POST /v1/agents/{id}/test`), counted like a call's: a
    /// success closes the circuit, a failure counts towards opening it.
    pub fn tested(
        &self,
        tenant: TenantId,
        agent: AgentId,
        names: Names<'_>,
        outcome: Result<(), &str>,
    ) {
        match outcome {
            Ok(()) => {
                self.success((tenant, agent), names);
            }
            Err(error) => self.failure((tenant, agent), names, false, error),
        }
    }

    /// An active health check's result: a failed check opens the circuit at once (for
    /// `open_for`, or until a check passes), a passing one closes it. Checks do not wait for
    /// the failure threshold: a check is not a user's call, and the next one comes soon.
    pub fn checked(
        &self,
        tenant: TenantId,
        agent: AgentId,
        names: Names<'_>,
        outcome: Result<(), &str>,
    ) {
        let key = (tenant, agent);
        match outcome {
            Ok(()) => {
                self.success(key, names);
            }
            Err(error) => {
                let mut states = self.lock();
                let state = entry(&mut states, key, names);
                state.failures = state.failures.saturating_add(1);
                state.last_error = Some(format!("health check: {error}"));
                state.last_error_at = Some(Utc::now());
                if !state.trial_in_flight {
                    if state.open_until.is_none() {
                        tracing::warn!(tenant.id = %tenant, agent.id = %agent, "circuit opened by a health check");
                    }
                    state.open_until = Some(Instant::now() + self.config.open_for);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Names<'static> {
        Names {
            tenant: "acme",
            agent: "billing",
        }
    }

    fn fail(b: &CircuitBreakers, t: TenantId, a: AgentId) {
        b.permit(t, a, labels())
            .expect("a permit")
            .failed("connection refused");
    }

    #[test]
    fn opens_after_the_threshold_then_lets_one_trial_through() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 3,
            open_for: Duration::from_millis(40),
        });
        let (t, a, l) = (TenantId::new(), AgentId::new(), labels());
        for _ in 0..2 {
            fail(&b, t, a);
        }
        assert!(!b.is_open(t, a));
        assert_eq!(b.health(t, a).state, CircuitState::Closed);
        assert_eq!(b.health(t, a).consecutive_failures, 2);
        fail(&b, t, a);
        assert!(b.is_open(t, a));
        assert_eq!(b.health(t, a).state, CircuitState::Open);
        assert!(b.permit(t, a, l).is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.health(t, a).state, CircuitState::HalfOpen);
        let trial = b.permit(t, a, l).expect("the trial");
        assert!(trial.is_trial());
        assert!(b.permit(t, a, l).is_none(), "only one trial at a time");
        trial.failed("timed out");
        assert!(b.permit(t, a, l).is_none(), "a failed trial reopens");
        assert_eq!(b.health(t, a).last_error.as_deref(), Some("timed out"));
        std::thread::sleep(Duration::from_millis(50));
        b.permit(t, a, l).expect("a second trial").succeeded();
        let closed = b.permit(t, a, l).expect("closed");
        assert!(!closed.is_trial(), "a good trial closes");
        closed.succeeded();
        assert!(!b.is_open(t, a));
        let health = b.health(t, a);
        assert_eq!(health.state, CircuitState::Closed);
        assert_eq!(health.consecutive_failures, 0);
        assert!(health.last_success_at.is_some());
        assert_eq!(
            health.last_error.as_deref(),
            Some("timed out"),
            "the last error stays known after a success"
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(30),
        });
        let (t, a, l) = (TenantId::new(), AgentId::new(), labels());
        fail(&b, t, a);
        b.permit(t, a, l).expect("closed").succeeded();
        fail(&b, t, a);
        assert!(!b.is_open(t, a));
    }

    #[test]
    fn a_cancelled_trial_frees_the_circuit_for_the_next_call() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(20),
        });
        let (t, a, l) = (TenantId::new(), AgentId::new(), labels());
        fail(&b, t, a);
        std::thread::sleep(Duration::from_millis(30));
        let trial = b.permit(t, a, l).expect("the trial");
        drop(trial); // the caller went away mid-call
        let next = b
            .permit(t, a, l)
            .expect("another trial, not a circuit stuck open");
        assert!(next.is_trial());
    }

    #[test]
    fn the_same_agent_id_in_two_tenants_has_two_circuits() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_secs(30),
        });
        let (mine, theirs, a, l) = (TenantId::new(), TenantId::new(), AgentId::new(), labels());
        fail(&b, theirs, a);
        assert!(b.is_open(theirs, a));
        assert!(!b.is_open(mine, a));
        assert!(b.permit(mine, a, l).is_some());
        assert!(b.unavailable(mine).is_empty());
        assert_eq!(b.unavailable(theirs).len(), 1);
        assert_eq!(b.health(mine, a), Health::UNKNOWN);
    }

    #[test]
    fn health_checks_open_and_close_at_once_and_say_why() {
        let b = CircuitBreakers::new(BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        });
        let (t, a, l) = (TenantId::new(), AgentId::new(), labels());
        b.checked(t, a, l, Err("HTTP 500"));
        assert!(b.is_open(t, a), "one failed check is enough");
        let (id, why) = b.unavailable(t).pop().expect("unavailable");
        assert_eq!(id, a);
        assert_eq!(why, "circuit open after 1 failure in a row");
        assert_eq!(
            b.health(t, a).last_error.as_deref(),
            Some("health check: HTTP 500"),
            "the detail stays in the health admins read"
        );
        b.checked(t, a, l, Ok(()));
        assert!(!b.is_open(t, a));
        assert_eq!(b.health(t, a).state, CircuitState::Closed);
        assert!(b.forget(t, a).is_some());
        assert_eq!(b.health(t, a), Health::UNKNOWN);
    }
}

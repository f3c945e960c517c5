//! Prometheus metrics. They name tenants (by slug) and agents (by name), never message
//! text; only the operator sees them (or anyone who can reach `SWITCHYARD_METRICS_BIND`,
//! which is meant to be a private address).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

/// How long a series may go without an update before a scrape leaves it out, unless
/// [`install`] said otherwise.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(3600);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder (one per process: the `metrics` facade is global), installed
/// with [`DEFAULT_IDLE`] if [`install`] was not called first.
pub fn handle() -> &'static PrometheusHandle {
    install(DEFAULT_IDLE)
}

/// Installs the process's recorder, whose series are dropped from the scrape once they have
/// not been updated for `idle` (so the series of a deleted agent or tenant go, and a busy
/// server's series do not pile up for ever; a series used again starts afresh, which
/// Prometheus reads as a counter reset). The first call decides; later ones return the
/// recorder as it is.
pub fn install(idle: Duration) -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let seconds = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0, 30.0,
        ];
        let builder = PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::ALL, Some(idle))
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        match builder.install_recorder() {
            Ok(handle) => handle,
            // Another recorder was installed first (a test harness): keep one of our own
            // that simply records nothing.
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// Every `period`, folds the histograms' recent samples into their buckets. The recorder
/// keeps each sample until then: without this (or a scrape, which does the same), a server
/// nobody scrapes would hold every request's timings forever.
///
/// The recorder holds a histogram's recent samples in a block of 64 that it allocates on
/// the first sample after a fold, so between folds every histogram used holds about 600
/// bytes: with 10,000 busy tenants and a 5 s period, resident memory rose by about 40 MiB
/// before each fold. A fold visits every histogram, so it runs on a blocking thread, not
/// on one of the threads serving requests.
pub fn spawn_upkeep(period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let _ = tokio::task::spawn_blocking(|| handle().run_upkeep()).await;
        }
    })
}

/// How many tenants' routing indexes are cached, and the memory they take (as they count
/// it), after each change to the cache.
pub fn routing_cache(tenants: usize, bytes: usize) {
    metrics::gauge!("switchyard_routing_cache_tenants").set(tenants as f64);
    metrics::gauge!("switchyard_routing_cache_bytes").set(bytes as f64);
}

/// Counts one request that finished with `status` on `route`, and its duration.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_string()),
        ("route", route.to_string()),
        ("status", status.to_string()),
    ];
    metrics::counter!("switchyard_http_requests_total", &labels).increment(1);
    metrics::histogram!("switchyard_http_request_duration_seconds", "route" => route.to_string())
        .record(elapsed.as_secs_f64());
}

/// Counts an authenticated request of a tenant.
pub fn tenant_request(tenant: &str) {
    metrics::counter!("switchyard_tenant_requests_total", "tenant" => tenant.to_string())
        .increment(1);
}

/// Counts a request refused by a tenant's limits (`rate` or `inflight`).
pub fn limited(tenant: &str, which: &'static str) {
    metrics::counter!("switchyard_limited_total", "tenant" => tenant.to_string(), "limit" => which)
        .increment(1);
}

/// Records a routing decision. `elapsed` is Switchyard's own work (the lexical analysis and
/// the decision, without a model's call in the cascade, which [`model_call`] times per
/// tenant), so its histogram is the process's, not the tenant's: a labelled histogram
/// holds nearly two kilobytes, which 10,000 tenants make 17 MiB.
pub fn decision(tenant: &str, method: &str, fallback: bool, elapsed: Duration) {
    metrics::counter!("switchyard_routing_decisions_total", "tenant" => tenant.to_string(), "method" => method.to_string())
        .increment(1);
    if fallback {
        metrics::counter!("switchyard_fallbacks_total", "tenant" => tenant.to_string())
            .increment(1);
    }
    metrics::histogram!("switchyard_routing_duration_seconds").record(elapsed.as_secs_f64());
}

/// Records one agent call.
pub fn agent_call(tenant: &str, agent: &str, error: Option<&'static str>, elapsed: Duration) {
    let (t, a) = (tenant.to_string(), agent.to_string());
    metrics::histogram!("switchyard_agent_duration_seconds", "tenant" => t.clone(), "agent" => a.clone())
        .record(elapsed.as_secs_f64());
    if let Some(kind) = error {
        metrics::counter!("switchyard_agent_errors_total", "tenant" => t, "agent" => a, "kind" => kind).increment(1);
    }
}

/// Records a failover away from `agent`.
pub fn failover(tenant: &str, agent: &str) {
    metrics::counter!("switchyard_failovers_total", "tenant" => tenant.to_string(), "agent" => agent.to_string()).increment(1);
}

/// Records a stored turn: who answered, how long storing (the database's time, so the
/// process's histogram, like routing's) and the whole turn took.
pub fn turn(tenant: &str, agent: &str, store: Duration, total: Duration) {
    metrics::counter!("switchyard_turns_total", "tenant" => tenant.to_string(), "agent" => agent.to_string()).increment(1);
    metrics::histogram!("switchyard_store_duration_seconds").record(store.as_secs_f64());
    metrics::histogram!("switchyard_turn_duration_seconds", "tenant" => tenant.to_string())
        .record(total.as_secs_f64());
}

/// Counts texts the in-process encoder's whole model embedded (not from its cache).
pub fn encoder_runs(texts: usize) {
    metrics::counter!("switchyard_encoder_texts_total").increment(texts as u64);
}

/// Records a turn the whole encoder decided (`cached`: its embedding was in the cache) and
/// how long getting the embedding took.
pub fn encoder_turn(cached: bool, elapsed: Duration) {
    metrics::counter!("switchyard_encoder_turns_total", "embedding" => if cached { "cached" } else { "computed" })
        .increment(1);
    metrics::histogram!("switchyard_encoder_duration_seconds").record(elapsed.as_secs_f64());
}

/// Records a call to a routing model (`llm` or `embedding`) in the cascade, and what came
/// of it (`used`, `unusable`, `failed`).
pub fn model_call(tenant: &str, analyzer: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!("switchyard_model_calls_total", "tenant" => tenant.to_string(), "analyzer" => analyzer.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("switchyard_model_duration_seconds", "tenant" => tenant.to_string(), "analyzer" => analyzer.to_string())
        .record(elapsed.as_secs_f64());
}

/// Sets each agent's circuit gauge, `switchyard_agent_circuit_state{tenant, agent}`: 0
/// closed, 1 half-open, 2 open (every agent called or checked since the start).
pub fn circuits(breakers: &switchyard_agents::CircuitBreakers) {
    for (labels, state) in breakers.states() {
        let labels = [
            ("tenant", labels.tenant.to_string()),
            ("agent", labels.agent.to_string()),
        ];
        metrics::gauge!("switchyard_agent_circuit_state", &labels).set(state.gauge());
    }
}

/// Marks a deleted agent's circuit gauge closed; like the agent's other series, it leaves
/// the scrape once idle for `SWITCHYARD_METRICS_IDLE_SECONDS`.
pub fn forget_circuit(labels: &switchyard_agents::Labels) {
    let labels = [
        ("tenant", labels.tenant.to_string()),
        ("agent", labels.agent.to_string()),
    ];
    metrics::gauge!("switchyard_agent_circuit_state", &labels).set(0.0);
}

/// Sets `switchyard_redis_up`: 1 while the replicas' shared Redis answers, 0 while this
/// replica uses its own limits because it does not (set at each scrape and each change).
pub fn redis_up(up: bool) {
    metrics::gauge!("switchyard_redis_up").set(if up { 1.0 } else { 0.0 });
}

/// Counts an operation (`rate`, `login`, `circuits`, `connect`) that used this replica's
/// own limits because Redis did not answer.
pub fn redis_fallback(operation: &'static str) {
    metrics::counter!("switchyard_redis_fallbacks_total", "operation" => operation).increment(1);
}

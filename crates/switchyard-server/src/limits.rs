//! Per-tenant limits, so that one tenant cannot starve the others: a token bucket over
//! every authenticated request, and a cap on the tenant's agent calls in flight. Both take
//! the tenant's own settings over the global ones, and follow changes to them. With Redis
//! (`SWITCHYARD_REDIS_URL`) the bucket is shared by every replica, and this process's own
//! bucket counts only while Redis does not answer (docs/scaling.md); the in-flight cap is
//! per replica.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use switchyard_core::TenantId;
use switchyard_core::model::Tenant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::error::ApiError;
use crate::shared::Shared;

struct TenantLimits {
    /// The tenant's slug as last seen, for the metrics of a request refused before the
    /// tenant is loaded.
    slug: String,
    rate: (u32, u32),
    limiter: Option<DefaultDirectRateLimiter>,
    inflight_size: u32,
    inflight: Arc<Semaphore>,
}

/// Every tenant's buckets and in-flight caps.
pub struct Limits {
    tenants: Mutex<HashMap<TenantId, TenantLimits>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tenants: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }
}

fn settings(config: &Config, tenant: &Tenant) -> ((u32, u32), u32) {
    let s = &tenant.settings;
    let rate = s
        .rate_limit_per_second
        .unwrap_or(config.rate_limit_per_second);
    let burst = s.rate_limit_burst.unwrap_or(config.rate_limit_burst).max(1);
    let inflight = s
        .max_inflight_agent_calls
        .unwrap_or(config.max_inflight_agent_calls)
        .max(1);
    ((rate, burst), inflight)
}

fn bucket(rate: u32, burst: u32) -> Option<DefaultDirectRateLimiter> {
    let per_second = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(per_second);
    Some(RateLimiter::direct(
        Quota::per_second(per_second).allow_burst(burst),
    ))
}

impl Limits {
    fn with<T>(&self, config: &Config, tenant: &Tenant, f: impl FnOnce(&TenantLimits) -> T) -> T {
        let (rate, inflight) = settings(config, tenant);
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let entry = tenants.entry(tenant.id).or_insert_with(|| TenantLimits {
            slug: tenant.slug.clone(),
            rate,
            limiter: bucket(rate.0, rate.1),
            inflight_size: inflight,
            inflight: Arc::new(Semaphore::new(inflight as usize)),
        });
        if entry.slug != tenant.slug {
            entry.slug.clone_from(&tenant.slug);
        }
        if entry.rate != rate {
            entry.rate = rate;
            entry.limiter = bucket(rate.0, rate.1);
        }
        if entry.inflight_size != inflight {
            // Calls in flight keep their permits from the old semaphore; new ones use the
            // new size.
            entry.inflight_size = inflight;
            entry.inflight = Arc::new(Semaphore::new(inflight as usize));
        }
        f(entry)
    }

    fn check(&self, limits: &TenantLimits) -> Result<(), ApiError> {
        match &limits.limiter {
            None => Ok(()),
            Some(limiter) => limiter.check().map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                ApiError::too_many_requests(
                    "the tenant's request rate limit is reached",
                    wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                )
            }),
        }
    }

    /// Counts one request of the tenant against its bucket (the replicas' shared one when
    /// there is one): `429` with `Retry-After` (whole seconds, at least 1) when the bucket is
    /// empty.
    pub async fn admit(
        &self,
        config: &Config,
        shared: &Shared,
        tenant: &Tenant,
    ) -> Result<(), ApiError> {
        if shared.is_configured() {
            let rate = self.with(config, tenant, |limits| limits.rate);
            if let Some(outcome) = shared_check(shared, tenant.id, rate).await {
                return outcome;
            }
        }
        self.with(config, tenant, |limits| self.check(limits))
    }

    /// Counts one request of a tenant known only by its id (from a verified token), before
    /// anything is read from the database, so that a tenant far over its limit costs the
    /// others no database work. `Ok(false)`: the tenant has no bucket yet (its first
    /// request; [`Limits::admit`] counts it once its settings are loaded).
    pub async fn admit_early(&self, shared: &Shared, tenant: TenantId) -> Result<bool, ApiError> {
        if shared.is_configured() {
            let rate = {
                let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
                match tenants.get(&tenant) {
                    Some(limits) => limits.rate,
                    None => return Ok(false),
                }
            };
            if let Some(outcome) = shared_check(shared, tenant, rate).await {
                return outcome
                    .map(|()| true)
                    .inspect_err(|_| self.count_refusal(tenant));
            }
        }
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        match tenants.get(&tenant) {
            Some(limits) => self.check(limits).map(|()| true).inspect_err(|_| {
                crate::metrics::tenant_request(&limits.slug);
                crate::metrics::limited(&limits.slug, "rate");
            }),
            None => Ok(false),
        }
    }

    /// Counts a request of the tenant refused by its rate limit.
    fn count_refusal(&self, tenant: TenantId) {
        let tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(limits) = tenants.get(&tenant) {
            crate::metrics::tenant_request(&limits.slug);
            crate::metrics::limited(&limits.slug, "rate");
        }
    }

    /// Follows changes to the tenant's settings without counting a request (for one
    /// already counted by [`Limits::admit_early`]).
    pub fn refresh(&self, config: &Config, tenant: &Tenant) {
        self.with(config, tenant, |_| ());
    }

    /// Takes one of the tenant's in-flight agent call slots; `None` when all are taken.
    pub fn agent_slot(&self, config: &Config, tenant: &Tenant) -> Option<OwnedSemaphorePermit> {
        let semaphore = self.with(config, tenant, |limits| limits.inflight.clone());
        semaphore.try_acquire_owned().ok()
    }
}

/// The replicas' shared bucket's answer; `None` when there is none or Redis did not answer
/// (the process's own bucket decides). A rate of 0 is no limit.
async fn shared_check(
    shared: &Shared,
    tenant: TenantId,
    (rate, burst): (u32, u32),
) -> Option<Result<(), ApiError>> {
    if rate == 0 {
        return Some(Ok(()));
    }
    let outcome = shared.rate(tenant, (rate, burst)).await?;
    Some(outcome.map_err(|wait| {
        ApiError::too_many_requests(
            "the tenant's request rate limit is reached",
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::model::TenantStatus;
    use switchyard_core::settings::TenantSettings;

    fn tenant(rate: u32, burst: u32) -> Tenant {
        Tenant {
            id: TenantId::new(),
            slug: "t".into(),
            name: "t".into(),
            status: TenantStatus::Active,
            settings: TenantSettings {
                rate_limit_per_second: Some(rate),
                rate_limit_burst: Some(burst),
                ..TenantSettings::default()
            },
            created_at: chrono::Utc::now(),
            agents_version: 0,
        }
    }

    #[tokio::test]
    async fn the_bucket_holds_the_burst_then_refuses() {
        let limits = Limits::default();
        let config = Config::default();
        let shared = Shared::local();
        let t = tenant(2, 5);
        let mut admitted = 0;
        for _ in 0..20 {
            admitted += usize::from(limits.admit(&config, &shared, &t).await.is_ok());
        }
        assert_eq!(admitted, 5);
        let err = limits.admit(&config, &shared, &t).await.unwrap_err();
        assert_eq!(err.status, 429);
        assert_eq!(err.retry_after, Some(1));
        // Another tenant has its own bucket; 0 means no limit.
        let free = tenant(0, 0);
        for _ in 0..1000 {
            assert!(limits.admit(&config, &shared, &free).await.is_ok());
        }
    }
}

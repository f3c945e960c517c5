//! Retention: each tenant's turns older than its retention (`retention_days`, else
//! `ORCHESTRATOR_MESSAGE_RETENTION_DAYS`) are deleted in batches, conversations left empty
//! with them, and expired idempotency and agent-error records too. Every batch is its own
//! transaction, so a run can be interrupted at any point and simply run again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use switchyard_core::page::PageRequest;
use switchyard_store::{OperatorScope, Store, StoreResult};

use crate::config::Config;

/// How many turns one transaction deletes at most.
pub const BATCH: u32 = 1000;

/// What a retention run removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Tenants visited.
    pub tenants: u64,
    /// Turns deleted.
    pub turns: u64,
    /// Conversations deleted because they were left empty.
    pub conversations: u64,
    /// Expired idempotency and agent-error records deleted.
    pub records: u64,
}

/// One pass over every tenant (or the one given).
pub async fn run_once(
    store: &Arc<dyn Store>,
    operator: &OperatorScope,
    config: &Config,
    only: Option<&str>,
) -> StoreResult<RetentionReport> {
    let mut report = RetentionReport::default();
    let mut page = PageRequest::first(100);
    loop {
        let tenants = store.list_tenants(operator, page).await?;
        for tenant in tenants
            .items
            .iter()
            .filter(|t| only.is_none_or(|slug| t.slug == slug))
        {
            let days = tenant
                .settings
                .retention_days
                .unwrap_or(config.message_retention_days);
            let now = Utc::now();
            let cutoff = now - TimeDelta::days(days);
            let scope = operator.admin_of(tenant.id);
            loop {
                let batch = store.retention_batch(&scope, cutoff, BATCH).await?;
                report.turns += batch.turns;
                report.conversations += batch.conversations;
                if batch.turns < u64::from(BATCH) {
                    break;
                }
            }
            report.records += store
                .purge_expired(&scope, now - switchyard_store::IDEMPOTENCY_TTL, cutoff)
                .await?;
            report.tenants += 1;
        }
        match tenants.next {
            Some(cursor) => page = PageRequest::after(100, cursor),
            None => break,
        }
    }
    Ok(report)
}

/// Runs retention every `interval`, starting shortly after start; failures are logged and
/// retried at the next interval.
pub fn spawn(
    store: Arc<dyn Store>,
    operator: OperatorScope,
    config: Config,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30).min(interval)).await;
        loop {
            match run_once(&store, &operator, &config, None).await {
                Ok(r) if r.turns + r.conversations + r.records > 0 => {
                    tracing::info!(
                        turns = r.turns,
                        conversations = r.conversations,
                        records = r.records,
                        "retention removed expired data"
                    );
                }
                Ok(_) => tracing::debug!("retention: nothing expired"),
                Err(e) => {
                    tracing::warn!(error = %e, "retention failed; retrying at the next interval")
                }
            }
            tokio::time::sleep(interval).await;
        }
    })
}

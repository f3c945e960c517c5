//! Operations on a tenant's data as a whole (admins only): routing analytics, retention,
//! expiry of records, and imports.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::types::Json;
use switchyard_core::model::{RecordedDecision, RetentionBatch, RoutingAnalytics, SeriesPoint};
use switchyard_core::{AgentId, ConversationId, MessageId};
use uuid::Uuid;

use super::{agents, analytics, require_admin, statements};
use crate::backend::{Args, SqlBackend, Tx};
use crate::rows::Ts;
use crate::{StoreResult, TenantData, TenantScope};

/// The tenant's routing figures over `[from, to)`, computed in the database.
pub(crate) async fn routing_analytics<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<RoutingAnalytics> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    let period = || Args::new().bind(tenant).bind(from).bind(to);
    let mut tx = db.read(tenant).await?;
    let (turns, conversations, mean_confidence, fallback_rate): (
        i64,
        i64,
        Option<f64>,
        Option<f64>,
    ) = tx.fetch_one(statements::ANALYTICS_TOTALS, period()).await?;
    let by_intent: Vec<(Option<String>, i64)> = tx
        .fetch_all(statements::ANALYTICS_BY_INTENT, period())
        .await?;
    let answered: Vec<(Uuid, Option<String>, i64)> = tx
        .fetch_all(statements::ANALYTICS_BY_AGENT, period())
        .await?;
    let failed: Vec<(Uuid, String, i64)> = tx
        .fetch_all(statements::ANALYTICS_FAILED_CALLS, period())
        .await?;
    let latency_ms = tx.latency_percentiles(tenant, from, to).await?;
    tx.commit().await?;
    Ok(analytics(
        turns,
        conversations,
        by_intent,
        answered,
        failed,
        mean_confidence,
        fallback_rate,
        latency_ms,
    ))
}

/// What the replay reads of a routing record: how it was decided (for turns stored before
/// the method had its own column), and the agent that failed or was passed over first —
/// the rules' choice, when it is there.
#[derive(Default, Deserialize)]
struct Recorded {
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    failover_from: Option<AgentRef>,
}

#[derive(Deserialize)]
struct AgentRef {
    agent_id: Uuid,
}

/// A stored decision row: id, conversation, message, answering agent, method, routing
/// record, time, and the agent of the turn before.
type DecisionRow = (
    Uuid,
    Uuid,
    String,
    Option<Uuid>,
    Option<String>,
    Option<Json<Recorded>>,
    Ts,
    Option<Uuid>,
);

/// A page of the tenant's turns stored before `before` (time and id; `None`: the latest),
/// newest first, as the routing lab replays them.
pub(crate) async fn recent_decisions<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    before: Option<(DateTime<Utc>, MessageId)>,
    limit: u32,
) -> StoreResult<Vec<RecordedDecision>> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    // The first page is the page before the end of time (a time both databases order
    // right: SQLite compares times as text, which a five-digit year would not keep).
    let end_of_time = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc());
    let (at, id) = before.map_or((end_of_time, Uuid::max()), |(at, id)| (at, id.as_uuid()));
    let mut tx = db.read(tenant).await?;
    let rows: Vec<DecisionRow> = tx
        .fetch_all(
            statements::RECENT_DECISIONS,
            Args::new()
                .bind(tenant)
                .bind(at)
                .bind(id)
                .bind(i64::from(limit)),
        )
        .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, conversation, message, answered, method, routing, created_at, previous)| {
                let recorded = routing.map(|Json(r)| r).unwrap_or_default();
                RecordedDecision {
                    id: MessageId::from_uuid(id),
                    conversation_id: ConversationId::from_uuid(conversation),
                    user_message: message,
                    // The first agent that failed or was passed over is the one the rules
                    // chose (the server records it so); else the one that answered.
                    agent_id: recorded
                        .failover_from
                        .map(|a| a.agent_id)
                        .or(answered)
                        .map(AgentId::from_uuid),
                    method: method.or(recorded.method),
                    previous_agent_id: previous.map(AgentId::from_uuid),
                    created_at: created_at.0,
                }
            },
        )
        .collect())
}

/// The tenant's turns, fallback rate and p95 latency per `step` of `[from, to)` (whole UTC
/// hours or days), in one read transaction (the same statements as the totals, stretch by
/// stretch).
pub(crate) async fn routing_series<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step: chrono::TimeDelta,
) -> StoreResult<Vec<SeriesPoint>> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    let mut tx = db.read(tenant).await?;
    let mut points = Vec::new();
    // Stretches end on whole multiples of `step` since the epoch: whole UTC hours and days
    // (the first and the last may be partial).
    let step_seconds = step.num_seconds().max(1);
    let mut start = from;
    while start < to {
        let boundary = (start.timestamp().div_euclid(step_seconds) + 1) * step_seconds;
        let end = DateTime::from_timestamp(boundary, 0).map_or(to, |b| b.min(to));
        let (turns, _, _, fallback_rate): (i64, i64, Option<f64>, Option<f64>) = tx
            .fetch_one(
                statements::ANALYTICS_TOTALS,
                Args::new().bind(tenant).bind(start).bind(end),
            )
            .await?;
        let latency = if turns > 0 {
            tx.latency_percentiles(tenant, start, end).await?[1]
        } else {
            None
        };
        points.push(SeriesPoint {
            from: start,
            to: end,
            turns,
            fallback_rate,
            latency_p95_ms: latency,
        });
        start = end;
    }
    tx.commit().await?;
    Ok(points)
}

/// Deletes up to `batch` of the tenant's turns older than `cutoff`, updates their
/// conversations' counts and deletes the conversations left empty, in one transaction.
pub(crate) async fn retention_batch<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    cutoff: DateTime<Utc>,
    batch: u32,
) -> StoreResult<RetentionBatch> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    let mut tx = db.write(tenant).await?;
    let emptied: Vec<(Uuid,)> = tx
        .fetch_all(
            statements::RETENTION_DELETE_TURNS,
            Args::new().bind(tenant).bind(cutoff).bind(i64::from(batch)),
        )
        .await?;
    let mut outcome = RetentionBatch {
        turns: emptied.len() as u64,
        conversations: 0,
    };
    let mut touched: Vec<Uuid> = emptied.into_iter().map(|(c,)| c).collect();
    touched.sort();
    touched.dedup();
    for conversation in touched {
        tx.execute(
            "UPDATE conversations SET message_count = (SELECT count(*) FROM conversation_messages m \
             WHERE m.tenant_id = $1 AND m.conversation_id = $2) WHERE tenant_id = $1 AND id = $2",
            Args::new().bind(tenant).bind(conversation),
        )
        .await?;
        outcome.conversations += tx
            .execute(
                "DELETE FROM conversations WHERE tenant_id = $1 AND id = $2 AND message_count = 0",
                Args::new().bind(tenant).bind(conversation),
            )
            .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Deletes the tenant's idempotency records and agent-error records older than their
/// cutoffs.
pub(crate) async fn purge_expired<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    idempotency_cutoff: DateTime<Utc>,
    errors_cutoff: DateTime<Utc>,
) -> StoreResult<u64> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    let mut tx = db.write(tenant).await?;
    let keys = tx
        .execute(
            "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2",
            Args::new().bind(tenant).bind(idempotency_cutoff),
        )
        .await?;
    let errors = tx
        .execute(
            "DELETE FROM agent_call_errors WHERE tenant_id = $1 AND created_at < $2",
            Args::new().bind(tenant).bind(errors_cutoff),
        )
        .await?;
    tx.commit().await?;
    Ok(keys + errors)
}

/// Loads another database's export into the scope's tenant in one transaction, keeping ids
/// and times; anything that already exists refuses the whole import.
pub(crate) async fn import_tenant_data<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    data: &TenantData,
) -> StoreResult<()> {
    require_admin(scope)?;
    let tenant = scope.tenant_id();
    let mut tx = db.write(tenant).await?;
    for u in &data.users {
        tx.execute(
            "INSERT INTO users (tenant_id, id, email, display_name, role, password_hash, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
            Args::new()
                .bind(tenant)
                .bind(u.id)
                .bind(&u.email)
                .bind(u.display_name.as_deref())
                .bind(u.role.as_str())
                .bind(u.status.as_str())
                .bind(u.created_at),
        )
        .await?;
    }
    for a in &data.agents {
        tx.execute(
            "INSERT INTO agents (tenant_id, id, name, description, kind, config, intents, keywords, \
             examples, enabled, priority, is_fallback, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            Args::new()
                .bind(tenant)
                .bind(a.id)
                .bind(&a.name)
                .bind(&a.description)
                .bind(a.kind.as_str())
                .json(&a.config)
                .json(&a.intents)
                .json(&a.keywords)
                .json(&a.examples)
                .bind(a.enabled)
                .bind(a.priority)
                .bind(a.is_fallback)
                .bind(a.created_at)
                .bind(a.updated_at),
        )
        .await?;
    }
    if !data.agents.is_empty() {
        agents::bump_version(&mut tx, tenant).await?;
    }
    for c in &data.conversations {
        tx.execute(
            "INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, \
             message_count, created_at, last_activity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            Args::new()
                .bind(tenant)
                .bind(c.id)
                .bind(c.user_id)
                .bind(c.title.as_deref())
                .bind(c.primary_intent.as_deref())
                .bind(c.last_agent_id)
                .bind(c.message_count)
                .bind(c.created_at)
                .bind(c.last_activity),
        )
        .await?;
    }
    for t in &data.turns {
        import_turn(&mut tx, scope, t).await?;
    }
    // The counts are derived: they follow the turns actually imported, whatever the file
    // said.
    if !data.conversations.is_empty() {
        tx.execute(
            "UPDATE conversations SET message_count = (SELECT count(*) FROM conversation_messages m \
             WHERE m.tenant_id = conversations.tenant_id AND m.conversation_id = conversations.id) \
             WHERE tenant_id = $1",
            Args::new().bind(tenant),
        )
        .await?;
    }
    tx.commit().await
}

async fn import_turn<T: Tx>(
    tx: &mut T,
    scope: &TenantScope,
    t: &switchyard_core::model::Turn,
) -> StoreResult<()> {
    // The analytics columns come from the routing record they summarise.
    let routing: serde_json::Value = serde_json::from_str(t.routing.get()).unwrap_or_default();
    let method = routing.get("method").and_then(|m| m.as_str());
    let confidence = routing.get("confidence").and_then(|c| c.as_f64());
    let fallback = routing.get("fallback_used").and_then(|f| f.as_bool());
    tx.execute(
        "INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
         intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
         routing_method, routing_confidence, fallback_used) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        Args::new()
            .bind(scope.tenant_id())
            .bind(t.id)
            .bind(t.conversation_id)
            .bind(&t.user_message)
            .bind(t.agent_response.as_deref())
            .bind(t.intent_category.as_deref())
            .bind(t.intent_confidence)
            .bind(t.selected_agent_id)
            .json(&routing)
            .bind(t.latency_ms)
            .bind(t.created_at)
            .bind(method)
            .bind(confidence)
            .bind(fallback),
    )
    .await?;
    Ok(())
}

//! PostgreSQL's transactions and how parameters are bound there.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::PgArguments;
use sqlx::types::Json;
use sqlx::{Arguments as _, Postgres};
use switchyard_core::TenantId;

use super::map_err;
use crate::backend::{Args, Param, Row, Tx};
use crate::{StoreError, StoreResult};

/// A transaction on PostgreSQL; confined to a tenant when it began with
/// `set_config('app.tenant_id', …, true)`.
pub(crate) struct PgTx(pub sqlx::Transaction<'static, Postgres>);

/// The driver's arguments for `args`.
fn arguments(args: Args) -> StoreResult<PgArguments> {
    let mut out = PgArguments::default();
    for param in args.0 {
        match param {
            Param::Uuid(v) => out.add(v).map_err(bind_failed)?,
            Param::Text(v) => out.add(v).map_err(bind_failed)?,
            Param::Int(v) => out.add(v).map_err(bind_failed)?,
            Param::Int32(v) => out.add(v).map_err(bind_failed)?,
            Param::Float(v) => out.add(v).map_err(bind_failed)?,
            Param::Bool(v) => out.add(v).map_err(bind_failed)?,
            Param::Json(v) => out.add(v.map(Json)).map_err(bind_failed)?,
            Param::Time(v) => out.add(v).map_err(bind_failed)?,
            Param::Bytes(v) => out.add(v).map_err(bind_failed)?,
        }
    }
    Ok(out)
}

fn bind_failed(e: BoxDynError) -> StoreError {
    StoreError::Other(format!("a statement parameter could not be bound: {e}"))
}

impl Tx for PgTx {
    async fn fetch_one<R: Row>(&mut self, sql: &'static str, args: Args) -> StoreResult<R> {
        sqlx::query_as_with::<Postgres, R, PgArguments>(sql, arguments(args)?)
            .fetch_one(&mut *self.0)
            .await
            .map_err(map_err)
    }

    async fn fetch_all<R: Row>(&mut self, sql: &'static str, args: Args) -> StoreResult<Vec<R>> {
        sqlx::query_as_with::<Postgres, R, PgArguments>(sql, arguments(args)?)
            .fetch_all(&mut *self.0)
            .await
            .map_err(map_err)
    }

    async fn execute(&mut self, sql: &'static str, args: Args) -> StoreResult<u64> {
        sqlx::query_with::<Postgres, PgArguments>(sql, arguments(args)?)
            .execute(&mut *self.0)
            .await
            .map(|done| done.rows_affected())
            .map_err(map_err)
    }

    async fn enter_tenant(&mut self, tenant: TenantId) -> StoreResult<()> {
        self.execute(
            "SELECT set_config('app.tenant_id', $1, true)",
            Args::new().bind(tenant.as_uuid().to_string()),
        )
        .await?;
        Ok(())
    }

    async fn latency_percentiles(
        &mut self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<[Option<f64>; 3]> {
        let (p50, p95, p99): (Option<f64>, Option<f64>, Option<f64>) = self
            .fetch_one(
                "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), \
                        percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms), \
                        percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) \
                 FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 \
                 AND created_at < $3 AND latency_ms IS NOT NULL",
                Args::new().bind(tenant).bind(from).bind(to),
            )
            .await?;
        Ok([p50, p95, p99])
    }

    async fn commit(self) -> StoreResult<()> {
        self.0.commit().await.map_err(map_err)
    }
}

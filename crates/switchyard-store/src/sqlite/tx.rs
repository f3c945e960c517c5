//! SQLite's transactions and how parameters are bound there: timestamps as integer
//! microseconds since the epoch (so that they sort and compare as numbers), UUIDs as their
//! 16 bytes.

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::sqlite::SqliteArguments;
use sqlx::types::Json;
use sqlx::{Arguments as _, Sqlite};
use switchyard_core::TenantId;

use super::map_err;
use crate::backend::{Args, Param, Row, Tx};
use crate::{StoreError, StoreResult};

/// A transaction on SQLite (no row-level security: the statements' tenant filters confine
/// it).
pub(crate) struct SqliteTx(pub sqlx::Transaction<'static, Sqlite>);

fn arguments(args: Args) -> StoreResult<SqliteArguments> {
    let mut out = SqliteArguments::default();
    for param in args.0 {
        match param {
            Param::Uuid(v) => out.add(v).map_err(bind_failed)?,
            Param::Text(v) => out.add(v).map_err(bind_failed)?,
            Param::Int(v) => out.add(v).map_err(bind_failed)?,
            Param::Int32(v) => out.add(v).map_err(bind_failed)?,
            Param::Float(v) => out.add(v).map_err(bind_failed)?,
            Param::Bool(v) => out.add(v).map_err(bind_failed)?,
            Param::Json(v) => out.add(v.map(Json)).map_err(bind_failed)?,
            Param::Time(v) => out.add(v.timestamp_micros()).map_err(bind_failed)?,
            Param::Bytes(v) => out.add(v).map_err(bind_failed)?,
        }
    }
    Ok(out)
}

fn bind_failed(e: BoxDynError) -> StoreError {
    StoreError::Other(format!("a statement parameter could not be bound: {e}"))
}

impl Tx for SqliteTx {
    async fn fetch_one<R: Row>(&mut self, sql: &'static str, args: Args) -> StoreResult<R> {
        sqlx::query_as_with::<Sqlite, R, SqliteArguments>(sql, arguments(args)?)
            .fetch_one(&mut *self.0)
            .await
            .map_err(map_err)
    }

    async fn fetch_all<R: Row>(&mut self, sql: &'static str, args: Args) -> StoreResult<Vec<R>> {
        sqlx::query_as_with::<Sqlite, R, SqliteArguments>(sql, arguments(args)?)
            .fetch_all(&mut *self.0)
            .await
            .map_err(map_err)
    }

    async fn execute(&mut self, sql: &'static str, args: Args) -> StoreResult<u64> {
        sqlx::query_with::<Sqlite, SqliteArguments>(sql, arguments(args)?)
            .execute(&mut *self.0)
            .await
            .map(|done| done.rows_affected())
            .map_err(map_err)
    }

    async fn enter_tenant(&mut self, _tenant: TenantId) -> StoreResult<()> {
        Ok(())
    }

    /// Nearest rank: the value at position ceil(p·n) in order, as PostgreSQL's
    /// `percentile_disc`.
    async fn latency_percentiles(
        &mut self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<[Option<f64>; 3]> {
        let period = || Args::new().bind(tenant).bind(from).bind(to);
        let (n,): (i64,) = self
            .fetch_one(
                "SELECT count(*) FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 \
                 AND created_at < $3 AND latency_ms IS NOT NULL",
                period(),
            )
            .await?;
        let mut out = [None; 3];
        if n == 0 {
            return Ok(out);
        }
        for (slot, p) in out.iter_mut().zip([0.5_f64, 0.95, 0.99]) {
            let offset = ((p * n as f64).ceil() as i64 - 1).clamp(0, n - 1);
            let (value,): (f64,) = self
                .fetch_one(
                    "SELECT latency_ms FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 \
                     AND created_at < $3 AND latency_ms IS NOT NULL ORDER BY latency_ms LIMIT 1 OFFSET $4",
                    period().bind(offset),
                )
                .await?;
            *slot = Some(value);
        }
        Ok(out)
    }

    async fn commit(self) -> StoreResult<()> {
        self.0.commit().await.map_err(map_err)
    }
}

//! Migrations on PostgreSQL: applied as the owner under an advisory lock, each in its own
//! transaction with its record, and the upgrade of the earlier single-tenant layout.

use sqlx::{ConnectOptions, Connection, PgConnection};

use super::{connect_options, map_err, roles};
use crate::migrate::{self, POSTGRES};
use crate::{MigrationReport, StoreConfig, StoreError, StoreResult};

/// Applies pending migrations as the owner (`migration_url`, else `url`), then makes sure
/// the application role exists and holds exactly its privileges. Concurrent runs (several
/// replicas starting at once) wait for each other on an advisory lock.
pub(crate) async fn migrate(config: &StoreConfig) -> StoreResult<MigrationReport> {
    let url = config.migration_url.as_deref().unwrap_or(&config.url);
    let mut conn: PgConnection = connect_options(url)?.connect().await.map_err(map_err)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
    let result = migrate_locked(&mut conn, &config.default_tenant_slug).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut conn)
        .await;
    let report = result?;
    unlock.map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(report)
}

/// The advisory lock that serialises migration runs ("switchyd" in ASCII).
const MIGRATION_LOCK: i64 = 0x7377_6974_6368_7964;

/// Whether the database has the earlier single-tenant layout: conversations with string
/// ids and no tenant.
async fn is_legacy(conn: &mut PgConnection) -> StoreResult<bool> {
    let (legacy,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
           AND table_name = 'conversations' AND column_name = 'id' AND data_type = 'character varying') \
         AND NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
           AND table_name = 'conversations' AND column_name = 'tenant_id')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(legacy)
}

/// Upgrades the earlier single-tenant layout in place and applies every migration, in one
/// transaction: a failure leaves the database as it was.
async fn upgrade_legacy(
    conn: &mut PgConnection,
    default_tenant: &str,
) -> StoreResult<MigrationReport> {
    if default_tenant.is_empty()
        || !default_tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(StoreError::Config(format!(
            "the default tenant slug {default_tenant:?} is not a slug"
        )));
    }
    let mut tx = conn.begin().await.map_err(map_err)?;
    // The slug is checked above to be a-z, 0-9 and -: it cannot close the quotes.
    let upgrade =
        migrate::POSTGRES_LEGACY_UPGRADE.replace(":default_tenant", &format!("'{default_tenant}'"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(upgrade))
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::Other(format!(
                "upgrading the single-tenant layout failed (nothing was changed): {}",
                map_err(e)
            ))
        })?;
    sqlx::raw_sql(migrate::POSTGRES_V1_REST)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    let mut report = MigrationReport {
        upgraded_legacy: true,
        ..MigrationReport::default()
    };
    for m in POSTGRES {
        if m.version > 1 {
            sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| {
                StoreError::Other(format!(
                    "migration {} ({}) failed: {}",
                    m.version,
                    m.name,
                    map_err(e)
                ))
            })?;
        }
        sqlx::query(
            "INSERT INTO switchyard_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        report.applied.push(m.version);
    }
    tx.commit().await.map_err(map_err)?;
    tracing::info!(
        default_tenant,
        "upgraded a database of the single-tenant layout"
    );
    Ok(report)
}

async fn migrate_locked(
    conn: &mut PgConnection,
    default_tenant: &str,
) -> StoreResult<MigrationReport> {
    roles::ensure_app_role(conn).await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS switchyard_migrations (
            version     BIGINT PRIMARY KEY,
            name        TEXT NOT NULL,
            checksum    TEXT NOT NULL,
            applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM switchyard_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await
            .map_err(map_err)?;
    if applied.is_empty() && is_legacy(conn).await? {
        let report = upgrade_legacy(conn, default_tenant).await?;
        roles::grant_app_privileges(conn).await?;
        return Ok(report);
    }
    let mut report = MigrationReport::default();
    for m in migrate::pending(POSTGRES, &applied)? {
        let mut tx = conn.begin().await.map_err(map_err)?;
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(|e| {
            StoreError::Other(format!(
                "migration {} ({}) failed: {}",
                m.version,
                m.name,
                map_err(e)
            ))
        })?;
        sqlx::query(
            "INSERT INTO switchyard_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(m.checksum())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        report.applied.push(m.version);
    }
    roles::grant_app_privileges(conn).await?;
    Ok(report)
}

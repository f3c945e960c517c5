//! The PostgreSQL backend.
//!
//! Every scoped operation runs in one transaction that starts with
//! `SELECT set_config('app.tenant_id', <tenant>, true)` (sent in the same round trip as the
//! `BEGIN`); the setting ends with the transaction, so a pooled connection never carries a
//! tenant into its next use. Row-level security, enabled and forced on every tenant-owned
//! table, then confines every statement to that tenant a second time. Pooled connections
//! always run as the application role `switchyard_app` (`NOSUPERUSER NOBYPASSRLS`, not the
//! tables' owner, no `TRUNCATE` or `REFERENCES`): when the URL names another role (the owner,
//! in the one-URL form), each connection runs `SET ROLE switchyard_app` as it connects.

use std::time::Duration;

use futures_util::FutureExt as _;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::QueryAs;
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool, Postgres};
use switchyard_core::{TenantId, TenantScope, UserId};

use crate::migrate::{self, POSTGRES};
use crate::rows::{
    AuthedRow, ConversationHistoryRow, ConversationRow, ConversationTurnRow, PrincipalRow, Ts,
    WrittenTurnRow,
};
use crate::statements;
use crate::{Backend, MigrationReport, StoreConfig, StoreError, StoreResult};
use switchyard_core::ConversationId;
use switchyard_core::model::{Conversation, NewTurn, Turn, TurnTarget};

mod roles;
mod warm;

use warm::Conns;

pub use roles::APP_ROLE;

type Tx = sqlx::Transaction<'static, Postgres>;

/// The store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    conns: Conns,
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(err, |db| match db.constraint() {
        Some("tenants_slug_key") => "tenant_slug",
        Some("users_tenant_id_email_key") => "user_email",
        Some("agents_tenant_id_name_key") => "agent_name",
        Some("agents_one_fallback") => "agent_fallback",
        Some(name) if name.ends_with("_pkey") => "primary_key",
        _ => "unique",
    })
}

/// A routing record as the JSON text the turn functions store (their `json` parameter is
/// bound as text and cast, so the record is kept as written, not re-parsed into `jsonb`).
fn routing_text(routing: &serde_json::Value) -> String {
    routing.to_string()
}

fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    let options: PgConnectOptions = url.parse().map_err(|e| {
        StoreError::Config(format!(
            "invalid database URL {}: {e}",
            crate::redact_url(url)
        ))
    })?;
    Ok(options
        .application_name("switchyard")
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500)))
}

impl PgStore {
    const BACKEND: Backend = Backend::Postgres;
    /// A tenant's settings, its row locked until the transaction ends.
    const TENANT_SETTINGS_FOR_UPDATE: &str =
        "SELECT settings FROM tenants WHERE id = $1 FOR UPDATE";

    /// Connects (migrating first when configured) and checks that pooled connections run
    /// as the application role, without any way around row-level security.
    pub async fn connect(config: &StoreConfig) -> StoreResult<Self> {
        if config.migrate {
            migrate(config).await?;
        }
        let options = connect_options(&config.url)?;
        let switch_role = {
            let mut conn = options.connect().await.map_err(map_err)?;
            let (user,): (String,) = sqlx::query_as("SELECT current_user::text")
                .fetch_one(&mut conn)
                .await
                .map_err(map_err)?;
            conn.close().await.map_err(map_err)?;
            user != APP_ROLE
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            // No ping before each use: a broken connection fails its request (a 503) and is
            // dropped, and every request saves a round trip.
            .test_before_acquire(false)
            .after_connect(move |conn, _meta| {
                async move {
                    if switch_role {
                        sqlx::raw_sql(concat!("SET ROLE ", "switchyard_app")).execute(&mut *conn).await?;
                    }
                    Ok(())
                }
                .boxed()
            })
            .connect_with(options)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => StoreError::Config(format!(
                    "cannot run as the application role `{APP_ROLE}`: the database user must be a member \
                     of it (run `switchyard migrate` with the owner's URL, or GRANT {APP_ROLE} TO the user): {db}"
                )),
                other => map_err(other),
            })?;
        roles::check_serving_role(&pool).await?;
        Ok(Self {
            conns: Conns::new(pool),
        })
    }

    /// The pool, for tools and tests that inspect the database as the application role.
    pub fn pool(&self) -> &PgPool {
        self.conns.pool()
    }

    async fn begin(&self, statement: String) -> StoreResult<Tx> {
        self.conns.begin(statement).await.map_err(map_err)
    }

    /// A read-only transaction confined to `tenant`.
    async fn read(&self, tenant: TenantId) -> StoreResult<Tx> {
        // The id is formatted from a typed UUID, so it cannot carry SQL.
        self.begin(format!(
            "BEGIN READ ONLY; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.as_uuid()
        ))
        .await
    }

    /// A read-write transaction confined to `tenant`.
    async fn write(&self, tenant: TenantId) -> StoreResult<Tx> {
        self.begin(format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.as_uuid()
        ))
        .await
    }

    /// A read-only transaction in no tenant: only the global tables are visible.
    async fn global_read(&self) -> StoreResult<Tx> {
        self.begin("BEGIN READ ONLY".to_string()).await
    }

    /// A read-write transaction in no tenant.
    async fn global_write(&self) -> StoreResult<Tx> {
        self.begin("BEGIN".to_string()).await
    }

    /// Confines the rest of a global transaction to `tenant` (a tenant's first admin is
    /// created in the transaction that creates the tenant).
    async fn enter_tenant(tx: &mut Tx, tenant: TenantId) -> StoreResult<()> {
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.as_uuid().to_string())
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The median, 95th and 99th percentile of the turns' latency (nearest rank).
    async fn latency_percentiles(
        tx: &mut Tx,
        tenant: uuid::Uuid,
        from: Ts,
        to: Ts,
    ) -> StoreResult<[Option<f64>; 3]> {
        let (p50, p95, p99): (Option<f64>, Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), \
                    percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms), \
                    percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) \
             FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
             AND latency_ms IS NOT NULL",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
        Ok([p50, p95, p99])
    }

    /// The tenant and user an authentication names, in one round trip.
    async fn fetch_principal(&self, tenant: TenantId, user: UserId) -> StoreResult<PrincipalRow> {
        self.conns
            .fetch_one(
                sqlx::query_as::<_, PrincipalRow>(
                    "SELECT * FROM switchyard_find_principal($1, $2)",
                )
                .bind(tenant.as_uuid())
                .bind(user.as_uuid()),
            )
            .await
            .map_err(map_err)
    }

    /// The principal and, for an active user of an active tenant, the first read, in one
    /// round trip (the `switchyard_authed_…` functions of migration 7).
    async fn principal_and_read(
        &self,
        tenant: TenantId,
        user: UserId,
        read: &crate::FirstRead,
    ) -> StoreResult<crate::PrincipalAndRead> {
        use crate::FirstRead as Read;
        use crate::FirstReadResult as Result;
        let (tenant_id, user_id) = (tenant.as_uuid(), user.as_uuid());
        match read {
            Read::Turns(id, page) => {
                let (at, after) = crate::sql::asc_after(page);
                let query = sqlx::query_as(
                    "SELECT * FROM switchyard_authed_conversation_with_turns($1, $2, NULL, $3, $4, $5, $6)",
                )
                .bind(tenant_id)
                .bind(id.as_uuid())
                .bind(user_id)
                .bind(Ts(at))
                .bind(after)
                .bind(page.fetch_limit());
                self.authed_read(query, |rows: Vec<ConversationTurnRow>| {
                    let (conversation, turns) = ConversationTurnRow::page(rows, page)?;
                    Ok(Result::Turns(conversation, turns))
                })
                .await
            }
            Read::OwnConversations(page) => {
                let (at, after) = crate::sql::desc_after(page);
                let query = sqlx::query_as(
                    "SELECT * FROM switchyard_authed_list_user_conversations($1, $2, $3, $4, $5)",
                )
                .bind(tenant_id)
                .bind(user_id)
                .bind(Ts(at))
                .bind(after)
                .bind(page.fetch_limit());
                self.authed_read(query, |rows: Vec<ConversationRow>| {
                    Ok(Result::Conversations(ConversationRow::page(rows, page)))
                })
                .await
            }
            Read::ChatContext(id, history) => {
                let query =
                    sqlx::query_as("SELECT * FROM switchyard_authed_chat_context($1, $2, $3, $4)")
                        .bind(tenant_id)
                        .bind(id.as_uuid())
                        .bind(user_id)
                        .bind(i64::from(*history));
                self.authed_read(query, |rows: Vec<ConversationHistoryRow>| {
                    let (conversation, turns) = ConversationHistoryRow::collect(rows)?;
                    Ok(Result::ChatContext(conversation, turns))
                })
                .await
            }
        }
    }

    /// Runs an authenticated read: the principal from its first row and, if the function
    /// ran the read, `finish` made of the rest.
    async fn authed_read<T>(
        &self,
        query: QueryAs<'_, Postgres, AuthedRow<T>, PgArguments>,
        finish: impl FnOnce(Vec<T>) -> StoreResult<crate::FirstReadResult>,
    ) -> StoreResult<crate::PrincipalAndRead>
    where
        AuthedRow<T>: Send + Unpin + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        let rows = self.conns.fetch_all(query).await.map_err(map_err)?;
        let (principal, rows) = AuthedRow::split(rows)?;
        Ok((principal, rows.map(finish)))
    }

    /// A page of one user's (or, with no user, the tenant's) conversations, in one round trip.
    async fn fetch_conversations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        at: Ts,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationRow>> {
        let query = match user {
            Some(user) => sqlx::query_as::<_, ConversationRow>(
                "SELECT * FROM switchyard_list_user_conversations($1, $2, $3, $4, $5)",
            )
            .bind(scope.tenant_id().as_uuid())
            .bind(user.as_uuid()),
            None => sqlx::query_as::<_, ConversationRow>(
                "SELECT * FROM switchyard_list_all_conversations($1, $2, $3, $4)",
            )
            .bind(scope.tenant_id().as_uuid()),
        }
        .bind(at)
        .bind(after)
        .bind(limit);
        self.conns.fetch_all(query).await.map_err(map_err)
    }

    /// A visible conversation with a page of its turns, in one round trip.
    async fn fetch_conversation_with_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        at: Ts,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationTurnRow>> {
        self.conns
            .fetch_all(
                sqlx::query_as::<_, ConversationTurnRow>(
                    "SELECT * FROM switchyard_conversation_with_turns($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(id.as_uuid())
                .bind(scope.is_admin())
                .bind(scope.user_id().as_uuid())
                .bind(at)
                .bind(after)
                .bind(limit),
            )
            .await
            .map_err(map_err)
    }

    /// The user's conversation with its last turns, in one round trip.
    async fn fetch_chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: i64,
    ) -> StoreResult<Vec<ConversationHistoryRow>> {
        self.conns
            .fetch_all(
                sqlx::query_as::<_, ConversationHistoryRow>(
                    "SELECT * FROM switchyard_chat_context($1, $2, $3, $4)",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(id.as_uuid())
                .bind(scope.user_id().as_uuid())
                .bind(history),
            )
            .await
            .map_err(map_err)
    }

    /// The tenant's agents-version and enabled agents, in one round trip.
    async fn fetch_routable_agents(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Vec<crate::rows::RoutableAgentRow>> {
        self.conns
            .fetch_all(
                sqlx::query_as("SELECT * FROM switchyard_routable_agents($1)")
                    .bind(scope.tenant_id().as_uuid()),
            )
            .await
            .map_err(map_err)
    }

    /// The user's and the tenant's conversations, each counted up to its limit, in one
    /// round trip.
    async fn count_for_limits(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        self.conns
            .fetch_one(
                sqlx::query_as("SELECT * FROM switchyard_count_for_limits($1, $2, $3, $4)")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(scope.user_id().as_uuid())
                    .bind(max_per_user)
                    .bind(max_per_tenant),
            )
            .await
            .map_err(map_err)
    }

    /// A new conversation with its first turn, in one round trip: the function checks the
    /// limits under the tenant's advisory lock (held until the statement commits, so
    /// counting and inserting cannot race past a limit), inserts the conversation and
    /// writes the turn.
    async fn write_new_turn(
        &self,
        scope: &TenantScope,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let TurnTarget::New {
            id,
            title,
            max_per_user,
            max_per_tenant,
        } = &turn.target
        else {
            return Err(StoreError::Other(
                "a new conversation's turn without a new conversation".into(),
            ));
        };
        let (high, low) = scope.tenant_id().as_uuid().as_u64_pair();
        let query = sqlx::query_as::<_, WrittenTurnRow>(statements::WRITE_NEW_TURN)
            .bind(scope.tenant_id().as_uuid())
            .bind(id.as_uuid())
            .bind(scope.user_id().as_uuid())
            .bind(Ts(turn.created_at))
            .bind(turn.intent_category.as_deref())
            .bind(turn.selected_agent_id.map(|a| a.as_uuid()))
            .bind(turn.id.as_uuid())
            .bind(&turn.user_message)
            .bind(&turn.agent_response)
            .bind(turn.intent_confidence)
            .bind(routing_text(&turn.routing))
            .bind(turn.latency_ms)
            .bind(turn.routing_method.as_deref())
            .bind(turn.routing_confidence)
            .bind(turn.fallback_used)
            .bind(crate::sql::clamp_title(title.clone()))
            .bind((*max_per_user).max(0))
            .bind((*max_per_tenant).max(0))
            .bind((high ^ low) as i64);
        let row = self.conns.fetch_one(query).await.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("SYL01") => {
                if db.message() == "per_user" {
                    StoreError::LimitReached {
                        which: "per_user",
                        limit: *max_per_user,
                    }
                } else {
                    StoreError::LimitReached {
                        which: "per_tenant",
                        limit: *max_per_tenant,
                    }
                }
            }
            _ => map_err(e),
        })?;
        Ok(row.into_written(turn))
    }

    /// A turn of an existing conversation with the conversation's update, in one round trip
    /// (one statement, so one transaction).
    async fn write_existing_turn(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let query = sqlx::query_as::<_, WrittenTurnRow>(
            "SELECT * FROM switchyard_write_turn($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12, $13, $14, $15)",
        )
        .bind(scope.tenant_id().as_uuid())
        .bind(conversation.as_uuid())
        .bind(scope.user_id().as_uuid())
        .bind(Ts(turn.created_at))
        .bind(turn.intent_category.as_deref())
        .bind(turn.selected_agent_id.map(|a| a.as_uuid()))
        .bind(turn.id.as_uuid())
        .bind(&turn.user_message)
        .bind(&turn.agent_response)
        .bind(turn.intent_confidence)
        .bind(routing_text(&turn.routing))
        .bind(turn.latency_ms)
        .bind(turn.routing_method.as_deref())
        .bind(turn.routing_confidence)
        .bind(turn.fallback_used);
        let row = self.conns.fetch_one(query).await.map_err(map_err)?;
        Ok(row.into_written(turn))
    }

    async fn ping_impl(&self) -> StoreResult<()> {
        self.conns
            .fetch_one(sqlx::query_as::<_, (i32,)>("SELECT 1"))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_tenant_impl(&self, id: TenantId) -> StoreResult<()> {
        // The foreign keys cascade from the tenant to everything it owns (referential
        // actions are not subject to row-level security).
        let mut tx = self.global_write().await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    }
}

mod store_impl {
    use super::{PgStore, Tx, map_err};
    use crate::sql::{impl_store, store_prelude};
    store_prelude!();
    impl_store!(PgStore);
}

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

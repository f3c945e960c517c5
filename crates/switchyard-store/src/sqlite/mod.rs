//! The SQLite backend, the embedded default: one file, WAL journal, foreign keys on, a
//! busy timeout. SQLite has no row-level security, so the tenant filter that every
//! statement carries (see [`crate::sql`]) is the database-side guarantee, with `tenant_id`
//! leading every key as on PostgreSQL. Writes take the database lock at `BEGIN IMMEDIATE`,
//! so concurrent writers queue on the busy timeout instead of failing on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Sqlite, SqliteConnection};
use switchyard_core::{TenantId, TenantScope, UserId};

use crate::migrate::{self, SQLITE};
use crate::rows::{
    ConversationHistoryRow, ConversationRow, ConversationTurnRow, PrincipalRow, Ts, TurnRow,
};
use crate::statements;
use crate::{Backend, MigrationReport, StoreConfig, StoreError, StoreResult};
use sqlx::types::Json;
use switchyard_core::ConversationId;
use switchyard_core::model::{Conversation, NewTurn, Turn, TurnTarget};

type Tx = sqlx::Transaction<'static, Sqlite>;

/// The store on SQLite.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

pub(crate) fn map_err(err: sqlx::Error) -> StoreError {
    StoreError::from_sqlx(err, |db| {
        // SQLite names the columns, not the constraint: "UNIQUE constraint failed: t.a, t.b".
        let message = db.message();
        let columns = message.rsplit(": ").next().unwrap_or("");
        match columns {
            "tenants.slug" => "tenant_slug",
            "users.tenant_id, users.email" => "user_email",
            "agents.tenant_id, agents.name" => "agent_name",
            "agents.tenant_id" => "agent_fallback",
            c if c.ends_with(".id") || c.ends_with(".key") || c.ends_with(".name") => "primary_key",
            _ => "unique",
        }
    })
}

fn connect_options(url: &str) -> StoreResult<SqliteConnectOptions> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("invalid database URL {url}: {e}")))?;
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5)))
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl SqliteStore {
    const BACKEND: Backend = Backend::Sqlite;
    /// A tenant's settings (`BEGIN IMMEDIATE` already serialises writers: no row lock).
    const TENANT_SETTINGS_FOR_UPDATE: &str = "SELECT settings FROM tenants WHERE id = $1";

    /// Opens (creating if missing) and migrates the database.
    pub async fn connect(config: &StoreConfig) -> StoreResult<Self> {
        let options = connect_options(&config.url)?;
        // A private in-memory database lives as long as its one connection.
        let memory = is_memory(&config.url);
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { config.max_connections })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        let store = Self { pool };
        if config.migrate {
            let mut conn = store.pool.acquire().await.map_err(map_err)?;
            migrate_conn(&mut conn).await?;
        }
        Ok(store)
    }

    /// The pool, for tools and tests that inspect the database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn read(&self, _tenant: TenantId) -> StoreResult<Tx> {
        self.pool.begin().await.map_err(map_err)
    }

    async fn write(&self, _tenant: TenantId) -> StoreResult<Tx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }

    async fn global_read(&self) -> StoreResult<Tx> {
        self.pool.begin().await.map_err(map_err)
    }

    async fn global_write(&self) -> StoreResult<Tx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }

    async fn enter_tenant(_tx: &mut Tx, _tenant: TenantId) -> StoreResult<()> {
        Ok(())
    }

    /// The median, 95th and 99th percentile of the turns' latency (nearest rank: the
    /// value at position ceil(p·n) in order, as PostgreSQL's `percentile_disc`).
    async fn latency_percentiles(
        tx: &mut Tx,
        tenant: uuid::Uuid,
        from: Ts,
        to: Ts,
    ) -> StoreResult<[Option<f64>; 3]> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 \
             AND created_at < $3 AND latency_ms IS NOT NULL",
        )
        .bind(tenant)
        .bind(from)
        .bind(to)
        .fetch_one(&mut **tx)
        .await
        .map_err(map_err)?;
        let mut out = [None; 3];
        if n == 0 {
            return Ok(out);
        }
        for (slot, p) in out.iter_mut().zip([0.5_f64, 0.95, 0.99]) {
            let offset = ((p * n as f64).ceil() as i64 - 1).clamp(0, n - 1);
            let (value,): (f64,) = sqlx::query_as(
                "SELECT latency_ms FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 \
                 AND created_at < $3 AND latency_ms IS NOT NULL ORDER BY latency_ms LIMIT 1 OFFSET $4",
            )
            .bind(tenant)
            .bind(from)
            .bind(to)
            .bind(offset)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?;
            *slot = Some(value);
        }
        Ok(out)
    }

    /// The conversation update and the turn insert of a turn write. The update comes
    /// first: it checks the conversation is the user's and, inside the write transaction,
    /// counts concurrent turns one by one.
    async fn write_turn(
        tx: &mut Tx,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let tenant = scope.tenant_id().as_uuid();
        let at = Ts(turn.created_at);
        let updated: Conversation =
            sqlx::query_as::<_, ConversationRow>(statements::UPDATE_CONVERSATION_FOR_TURN)
                .bind(tenant)
                .bind(conversation.as_uuid())
                .bind(scope.user_id().as_uuid())
                .bind(at)
                .bind(turn.intent_category.as_deref())
                .bind(turn.selected_agent_id.map(|a| a.as_uuid()))
                .fetch_one(&mut **tx)
                .await
                .map_err(map_err)?
                .into();
        let stored: Turn = sqlx::query_as::<_, TurnRow>(statements::INSERT_TURN)
            .bind(tenant)
            .bind(turn.id.as_uuid())
            .bind(conversation.as_uuid())
            .bind(&turn.user_message)
            .bind(&turn.agent_response)
            .bind(turn.intent_category.as_deref())
            .bind(turn.intent_confidence)
            .bind(turn.selected_agent_id.map(|a| a.as_uuid()))
            .bind(Json(&turn.routing))
            .bind(turn.latency_ms)
            .bind(at)
            .bind(turn.routing_method.as_deref())
            .bind(turn.routing_confidence)
            .bind(turn.fallback_used)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?
            .into();
        Ok((updated, stored))
    }

    /// The principal alone: SQLite answers each statement in the process, with no round trip
    /// to save, so the caller runs the read on its own.
    async fn principal_and_read(
        &self,
        tenant: TenantId,
        user: UserId,
        _read: &crate::FirstRead,
    ) -> StoreResult<crate::PrincipalAndRead> {
        Ok((
            self.fetch_principal(tenant, user).await?.into_parts()?.0,
            None,
        ))
    }

    /// The tenant and user an authentication names.
    async fn fetch_principal(&self, tenant: TenantId, user: UserId) -> StoreResult<PrincipalRow> {
        let mut tx = self.read(tenant).await?;
        let row = sqlx::query_as::<_, PrincipalRow>(statements::FIND_PRINCIPAL)
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(row)
    }

    /// A page of one user's (or, with no user, the tenant's) conversations.
    async fn fetch_conversations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        at: Ts,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationRow>> {
        let mut tx = self.read(scope.tenant_id()).await?;
        let rows = match user {
            Some(user) => sqlx::query_as::<_, ConversationRow>(statements::LIST_USER_CONVERSATIONS)
                .bind(scope.tenant_id().as_uuid())
                .bind(user.as_uuid()),
            None => sqlx::query_as::<_, ConversationRow>(statements::LIST_ALL_CONVERSATIONS)
                .bind(scope.tenant_id().as_uuid()),
        }
        .bind(at)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }

    /// A visible conversation with a page of its turns.
    async fn fetch_conversation_with_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        at: Ts,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationTurnRow>> {
        let mut tx = self.read(scope.tenant_id()).await?;
        let rows = sqlx::query_as::<_, ConversationTurnRow>(statements::CONVERSATION_WITH_TURNS)
            .bind(scope.tenant_id().as_uuid())
            .bind(id.as_uuid())
            .bind(scope.is_admin())
            .bind(scope.user_id().as_uuid())
            .bind(at)
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }

    /// The user's conversation with its last turns.
    async fn fetch_chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: i64,
    ) -> StoreResult<Vec<ConversationHistoryRow>> {
        let mut tx = self.read(scope.tenant_id()).await?;
        let rows = sqlx::query_as::<_, ConversationHistoryRow>(statements::CHAT_CONTEXT)
            .bind(scope.tenant_id().as_uuid())
            .bind(id.as_uuid())
            .bind(scope.user_id().as_uuid())
            .bind(history)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows)
    }

    /// The tenant's agents-version and enabled agents, in one statement.
    async fn fetch_routable_agents(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Vec<crate::rows::RoutableAgentRow>> {
        sqlx::query_as(statements::ROUTABLE_AGENTS)
            .bind(scope.tenant_id().as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)
    }

    /// The user's and the tenant's conversations, each counted up to its limit.
    async fn counts_for_limits(
        tx: &mut Tx,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        sqlx::query_as(statements::COUNT_FOR_LIMITS)
            .bind(scope.tenant_id().as_uuid())
            .bind(scope.user_id().as_uuid())
            .bind(max_per_user.max(0))
            .bind(max_per_tenant.max(0))
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)
    }

    /// [`Self::counts_for_limits`] in a read transaction of its own.
    async fn count_for_limits(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        let mut tx = self.read(scope.tenant_id()).await?;
        let counts = Self::counts_for_limits(&mut tx, scope, max_per_user, max_per_tenant).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(counts)
    }

    /// A new conversation with its first turn. The limits are counted in the write
    /// transaction (`BEGIN IMMEDIATE` serialises every writer, so nothing can race past
    /// them), each side only up to its limit.
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
        let mut tx = self.write(scope.tenant_id()).await?;
        let (per_user, per_tenant) =
            Self::counts_for_limits(&mut tx, scope, *max_per_user, *max_per_tenant).await?;
        if per_user >= *max_per_user {
            return Err(StoreError::LimitReached {
                which: "per_user",
                limit: *max_per_user,
            });
        }
        if per_tenant >= *max_per_tenant {
            return Err(StoreError::LimitReached {
                which: "per_tenant",
                limit: *max_per_tenant,
            });
        }
        let at = Ts(turn.created_at);
        sqlx::query(
            "INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, \
             message_count, created_at, last_activity) VALUES ($1, $2, $3, $4, NULL, NULL, 0, $5, $5)",
        )
        .bind(scope.tenant_id().as_uuid())
        .bind(id.as_uuid())
        .bind(scope.user_id().as_uuid())
        .bind(crate::sql::clamp_title(title.clone()))
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let written = Self::write_turn(&mut tx, scope, *id, turn).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }

    /// A turn of an existing conversation, with the conversation's update.
    async fn write_existing_turn(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let mut tx = self.write(scope.tenant_id()).await?;
        let written = Self::write_turn(&mut tx, scope, conversation, turn).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }

    async fn ping_impl(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_tenant_impl(&self, id: TenantId) -> StoreResult<()> {
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
    use super::{SqliteStore, Tx, map_err};
    use crate::sql::{impl_store, store_prelude};
    store_prelude!();
    impl_store!(SqliteStore);
}

/// Applies pending migrations to the database at `config.url`.
pub(crate) async fn migrate(config: &StoreConfig) -> StoreResult<MigrationReport> {
    let mut conn = connect_options(&config.url)?
        .connect_with_defaults()
        .await?;
    let report = migrate_conn(&mut conn).await;
    conn.close().await.map_err(map_err)?;
    report
}

trait ConnectWithDefaults {
    async fn connect_with_defaults(self) -> StoreResult<SqliteConnection>;
}

impl ConnectWithDefaults for SqliteConnectOptions {
    async fn connect_with_defaults(self) -> StoreResult<SqliteConnection> {
        sqlx::ConnectOptions::connect(&self).await.map_err(map_err)
    }
}

async fn migrate_conn(conn: &mut SqliteConnection) -> StoreResult<MigrationReport> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS switchyard_migrations (
            version     INTEGER PRIMARY KEY,
            name        TEXT NOT NULL,
            checksum    TEXT NOT NULL,
            applied_at  INTEGER NOT NULL DEFAULT (unixepoch())
        ) STRICT",
    )
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    let mut report = MigrationReport::default();
    // One IMMEDIATE transaction for the whole run: a second process migrating at the same
    // time waits, then finds nothing left to do.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM switchyard_migrations ORDER BY version")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
    for m in migrate::pending(SQLITE, &applied)? {
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
        tracing::info!(version = m.version, name = m.name, "applied migration");
        report.applied.push(m.version);
    }
    tx.commit().await.map_err(map_err)?;
    Ok(report)
}

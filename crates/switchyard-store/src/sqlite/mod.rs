//! The SQLite backend, the embedded default: one file, WAL journal, foreign keys on, a
//! busy timeout. SQLite has no row-level security, so the tenant filter that every
//! statement carries (see [`crate::sql`]) is the database-side guarantee, with `tenant_id`
//! leading every key as on PostgreSQL. Writes take the database lock at `BEGIN IMMEDIATE`,
//! so concurrent writers queue on the busy timeout instead of failing on a lock upgrade.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};
use switchyard_core::model::{Conversation, NewTurn, Turn, TurnTarget};
use switchyard_core::{ConversationId, TenantId, UserId};

use crate::backend::{Args, SqlBackend, Tx as _};
use crate::migrate::{self, SQLITE};
use crate::rows::{
    ConversationHistoryRow, ConversationRow, ConversationTurnRow, PrincipalRow, RoutableAgentRow,
    TurnRow,
};
use crate::{
    Backend, FirstRead, MigrationReport, OperatorScope, PrincipalAndRead, PrincipalRecord,
    StoreConfig, StoreError, StoreResult, TenantScope, TokenClaim, statements,
};

mod tx;

use tx::SqliteTx;

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

/// Creates a database file that does not exist yet readable and writable by its owner only
/// (0600): it holds every tenant's conversations and the server's signing secret. SQLite
/// gives its `-wal` and `-shm` files the same permissions. An existing file keeps its own.
fn create_private(path: &std::path::Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Config(format!(
            "cannot create the SQLite database {}: {e}",
            path.display()
        ))),
    }
}

fn is_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database.
    /// Opens the store, with the operator's proof that comes with it (as [`crate::connect`],
    /// for tools and tests that need the concrete backend).
    pub async fn open(config: &StoreConfig) -> StoreResult<(Self, OperatorScope)> {
        Ok((Self::connect(config).await?, OperatorScope::new()))
    }

    async fn connect(config: &StoreConfig) -> StoreResult<Self> {
        let options = connect_options(&config.url)?;
        // A private in-memory database lives as long as its one connection.
        let memory = is_memory(&config.url);
        if !memory {
            create_private(options.get_filename())?;
        }
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

    /// The conversation update and the turn insert of a turn write. The update comes
    /// first: it checks the conversation is the user's and, inside the write transaction,
    /// counts concurrent turns one by one.
    async fn write_turn(
        tx: &mut SqliteTx,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let updated: ConversationRow = tx
            .fetch_one(
                statements::UPDATE_CONVERSATION_FOR_TURN,
                Args::new()
                    .bind(scope.tenant_id())
                    .bind(conversation)
                    .bind(scope.user_id())
                    .bind(turn.created_at)
                    .bind(turn.intent_category.as_deref())
                    .bind(turn.selected_agent_id),
            )
            .await?;
        let stored: TurnRow = tx
            .fetch_one(
                statements::INSERT_TURN,
                Args::new()
                    .bind(scope.tenant_id())
                    .bind(turn.id)
                    .bind(conversation)
                    .bind(&turn.user_message)
                    .bind(&turn.agent_response)
                    .bind(turn.intent_category.as_deref())
                    .bind(turn.intent_confidence)
                    .bind(turn.selected_agent_id)
                    .json(&turn.routing)
                    .bind(turn.latency_ms)
                    .bind(turn.created_at)
                    .bind(turn.routing_method.as_deref())
                    .bind(turn.routing_confidence)
                    .bind(turn.fallback_used),
            )
            .await?;
        Ok((updated.into(), stored.into()))
    }

    /// The user's and the tenant's conversations, each counted up to its limit.
    async fn counts_for_limits(
        tx: &mut SqliteTx,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        tx.fetch_one(
            statements::COUNT_FOR_LIMITS,
            Args::new()
                .bind(scope.tenant_id())
                .bind(scope.user_id())
                .bind(max_per_user.max(0))
                .bind(max_per_tenant.max(0)),
        )
        .await
    }

    /// Runs one statement in a read transaction of its own.
    async fn read_all<R: crate::backend::Row>(
        &self,
        tenant: TenantId,
        sql: &'static str,
        args: Args,
    ) -> StoreResult<Vec<R>> {
        let mut tx = self.read(tenant).await?;
        let rows = tx.fetch_all(sql, args).await?;
        tx.commit().await?;
        Ok(rows)
    }
}

impl SqlBackend for SqliteStore {
    type Tx = SqliteTx;
    const KIND: Backend = Backend::Sqlite;
    /// `BEGIN IMMEDIATE` already serialises writers: no row lock.
    const TENANT_SETTINGS_FOR_UPDATE: &'static str = "SELECT settings FROM tenants WHERE id = $1";

    async fn read(&self, _tenant: TenantId) -> StoreResult<SqliteTx> {
        self.pool.begin().await.map(SqliteTx).map_err(map_err)
    }

    async fn write(&self, _tenant: TenantId) -> StoreResult<SqliteTx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map(SqliteTx)
            .map_err(map_err)
    }

    async fn global_read(&self) -> StoreResult<SqliteTx> {
        self.pool.begin().await.map(SqliteTx).map_err(map_err)
    }

    async fn secrets_write(&self) -> StoreResult<SqliteTx> {
        // The file is the owner's alone (mode 0600): nothing to keep apart here.
        self.global_write().await
    }

    async fn global_write(&self) -> StoreResult<SqliteTx> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map(SqliteTx)
            .map_err(map_err)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_principal(&self, claim: TokenClaim) -> StoreResult<PrincipalRecord> {
        let mut rows: Vec<PrincipalRow> = self
            .read_all(
                claim.tenant,
                statements::FIND_PRINCIPAL,
                Args::new().bind(claim.tenant).bind(claim.user),
            )
            .await?;
        let row = rows.pop().ok_or(StoreError::NotFound)?;
        Ok(row.into_parts()?.0)
    }

    /// SQLite answers each statement in the process, with no round trip to save: the
    /// principal, then the read in its scope.
    async fn find_principal_and_read(
        &self,
        claim: TokenClaim,
        read: &FirstRead,
    ) -> StoreResult<PrincipalAndRead> {
        let principal = SqlBackend::find_principal(self, claim).await?;
        let result = match principal.active_scope() {
            Some(scope) => Some(read.run(self, &scope).await),
            None => None,
        };
        Ok((principal, result))
    }

    async fn fetch_conversations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        at: DateTime<Utc>,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationRow>> {
        let (sql, args) = match user {
            Some(user) => (
                statements::LIST_USER_CONVERSATIONS,
                Args::new().bind(scope.tenant_id()).bind(user),
            ),
            None => (
                statements::LIST_ALL_CONVERSATIONS,
                Args::new().bind(scope.tenant_id()),
            ),
        };
        self.read_all(
            scope.tenant_id(),
            sql,
            args.bind(at).bind(after).bind(limit),
        )
        .await
    }

    async fn fetch_conversation_with_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        at: DateTime<Utc>,
        after: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<ConversationTurnRow>> {
        self.read_all(
            scope.tenant_id(),
            statements::CONVERSATION_WITH_TURNS,
            Args::new()
                .bind(scope.tenant_id())
                .bind(id)
                .bind(scope.is_admin())
                .bind(scope.user_id())
                .bind(at)
                .bind(after)
                .bind(limit),
        )
        .await
    }

    async fn fetch_chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: i64,
    ) -> StoreResult<Vec<ConversationHistoryRow>> {
        self.read_all(
            scope.tenant_id(),
            statements::CHAT_CONTEXT,
            Args::new()
                .bind(scope.tenant_id())
                .bind(id)
                .bind(scope.user_id())
                .bind(history),
        )
        .await
    }

    async fn fetch_routable_agents(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Vec<RoutableAgentRow>> {
        self.read_all(
            scope.tenant_id(),
            statements::ROUTABLE_AGENTS,
            Args::new().bind(scope.tenant_id()),
        )
        .await
    }

    async fn count_for_limits(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        let mut tx = self.read(scope.tenant_id()).await?;
        let counts = Self::counts_for_limits(&mut tx, scope, max_per_user, max_per_tenant).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// The limits are counted in the write transaction (`BEGIN IMMEDIATE` serialises every
    /// writer, so nothing can race past them), each side only up to its limit.
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
        // Limits below zero: the OpenAI door's conversation, which no limit counts.
        let door = *max_per_user < 0;
        if !door {
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
        }
        tx.execute(
            "INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, \
             message_count, created_at, last_activity, thread_key) \
             VALUES ($1, $2, $3, $4, NULL, NULL, 0, $5, $5, $6)",
            Args::new()
                .bind(scope.tenant_id())
                .bind(*id)
                .bind(scope.user_id())
                .bind(crate::sql::clamp_title(title.clone()))
                .bind(turn.created_at)
                .bind(door.then_some("")),
        )
        .await?;
        let written = Self::write_turn(&mut tx, scope, *id, turn).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn write_existing_turn(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        let mut tx = self.write(scope.tenant_id()).await?;
        let written = Self::write_turn(&mut tx, scope, conversation, turn).await?;
        tx.commit().await?;
        Ok(written)
    }
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

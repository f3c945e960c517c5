//! The PostgreSQL backend.
//!
//! Every scoped operation runs in one transaction that starts with
//! `SELECT set_config('app.tenant_id', <tenant>, true)` (sent in the same round trip as the
//! `BEGIN`); the setting ends with the transaction, so a pooled connection never carries a
//! tenant into its next use. Row-level security, enabled and forced on every tenant-owned
//! table, then confines every statement to that tenant a second time. Pooled connections
//! always run as the application role `switchyard_app` (`NOSUPERUSER NOBYPASSRLS`, not the
//! tables' owner, no `TRUNCATE` or `REFERENCES`): when the URL names another role (the owner,
//! in the one-URL form, or a login member of the role in the two-URL form), each connection
//! starts with `role=switchyard_app` as a startup parameter, so the role is the session's
//! own (`RESET ROLE` returns to it).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::QueryAs;
use sqlx::{ConnectOptions, Connection, PgPool, Postgres};
use switchyard_core::model::{Conversation, NewTurn, Turn, TurnTarget};
use switchyard_core::{ConversationId, TenantId, UserId};

use crate::backend::SqlBackend;
use crate::rows::{
    AuthedRow, ConversationHistoryRow, ConversationRow, ConversationTurnRow, PrincipalRow,
    RoutableAgentRow, Ts, WrittenTurnRow,
};
use crate::{
    Backend, FirstRead, FirstReadResult, OperatorScope, PrincipalAndRead, PrincipalRecord,
    StoreConfig, StoreError, StoreResult, TenantScope, TokenClaim, statements,
};

mod migrate;
mod roles;
mod tx;
mod warm;

pub(crate) use migrate::migrate;
pub use roles::{APP_ROLE, check_serving_role};
use tx::PgTx;
use warm::Conns;

/// The store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgStore {
    conns: Conns,
    /// How to connect as the owner, for `server_secrets` (the migration URL, else the URL).
    owner: PgConnectOptions,
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
    /// Connects (migrating first when configured) and checks that pooled connections run
    /// as the application role, without any way around row-level security.
    /// Opens the store, with the operator's proof that comes with it (as [`crate::connect`],
    /// for tools and tests that need the concrete backend).
    pub async fn open(config: &StoreConfig) -> StoreResult<(Self, OperatorScope)> {
        Ok((Self::connect(config).await?, OperatorScope::new()))
    }

    async fn connect(config: &StoreConfig) -> StoreResult<Self> {
        if config.migrate {
            migrate(config).await?;
        }
        let options = connect_options(&config.url)?;
        let options_for_owner = options.clone();
        let switch_role = {
            let mut conn = options.connect().await.map_err(map_err)?;
            let (user,): (String,) = sqlx::query_as("SELECT current_user::text")
                .fetch_one(&mut conn)
                .await
                .map_err(map_err)?;
            conn.close().await.map_err(map_err)?;
            user != APP_ROLE
        };
        // The role is a startup parameter, the session's own from its first statement:
        // `RESET ROLE` returns to it, and a transaction pooler cannot apply it to one server
        // connection and not the next (one that drops the parameter leaves every connection
        // as the owner, which the check below refuses).
        let options = if switch_role {
            if config.migration_url.is_none() {
                tracing::warn!(
                    "the database URL names `{}`, not the application role: every connection switches \
                 to `{APP_ROLE}`, but this process holds the owner's login; in production give \
                 SWITCHYARD_DATABASE_URL a login role that is only a member of `{APP_ROLE}` and \
                 SWITCHYARD_MIGRATION_DATABASE_URL the owner (docs/operations.md, PostgreSQL roles)",
                    options.get_username()
                );
            }
            options.options([("role", APP_ROLE)])
        } else {
            options
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            // No ping before each use: a broken connection fails its request (a 503) and is
            // dropped, and every request saves a round trip.
            .test_before_acquire(false)
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
        let owner = match &config.migration_url {
            Some(url) => connect_options(url)?,
            None => options_for_owner,
        };
        Ok(Self {
            conns: Conns::new(pool),
            owner,
        })
    }

    /// The pool, for tools and tests that inspect the database as the application role.
    pub fn pool(&self) -> &PgPool {
        self.conns.pool()
    }

    async fn begin(&self, statement: String) -> StoreResult<PgTx> {
        self.conns.begin(statement).await.map(PgTx).map_err(map_err)
    }

    /// Runs an authenticated read (the `switchyard_authed_…` functions of migration 7): the
    /// principal from its first row and, if the function ran the read, `finish` made of the
    /// rest.
    async fn authed_read<T>(
        &self,
        query: QueryAs<'_, Postgres, AuthedRow<T>, PgArguments>,
        finish: impl FnOnce(Vec<T>) -> StoreResult<FirstReadResult>,
    ) -> StoreResult<PrincipalAndRead>
    where
        AuthedRow<T>: Send + Unpin + for<'r> sqlx::FromRow<'r, PgRow>,
    {
        let rows = self.conns.fetch_all(query).await.map_err(map_err)?;
        let (principal, rows) = AuthedRow::split(rows)?;
        Ok((principal, rows.map(finish)))
    }
}

impl SqlBackend for PgStore {
    type Tx = PgTx;
    const KIND: Backend = Backend::Postgres;
    const TENANT_SETTINGS_FOR_UPDATE: &'static str =
        "SELECT settings FROM tenants WHERE id = $1 FOR UPDATE";

    async fn read(&self, tenant: TenantId) -> StoreResult<PgTx> {
        // The id is formatted from a typed UUID, so it cannot carry SQL.
        self.begin(format!(
            "BEGIN READ ONLY; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.as_uuid()
        ))
        .await
    }

    async fn write(&self, tenant: TenantId) -> StoreResult<PgTx> {
        self.begin(format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{}', true)",
            tenant.as_uuid()
        ))
        .await
    }

    async fn global_read(&self) -> StoreResult<PgTx> {
        self.begin("BEGIN READ ONLY".to_string()).await
    }

    async fn global_write(&self) -> StoreResult<PgTx> {
        self.begin("BEGIN".to_string()).await
    }

    async fn secrets_write(&self) -> StoreResult<PgTx> {
        // A connection of its own, without `SET ROLE`: rare (the server's start), so not
        // pooled.
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.owner.clone())
            .await
            .map_err(map_err)?;
        let mut tx = pool.begin().await.map_err(map_err)?;
        // Whoever this is must be able to read the table: the owner can, the application
        // role and its login members cannot.
        let (readable,): (bool,) = sqlx::query_as(
            "SELECT has_table_privilege(current_user, 'server_secrets', 'SELECT') \
             AND has_table_privilege(current_user, 'server_secrets', 'INSERT')",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if !readable {
            return Err(StoreError::Config(format!(
                "the server's database user may not read the generated JWT secret (the \
                 application role `{APP_ROLE}` has no access to `server_secrets`): set \
                 SWITCHYARD_JWT_SECRET, or SWITCHYARD_MIGRATION_DATABASE_URL to the owner's URL"
            )));
        }
        Ok(PgTx(tx))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.conns
            .fetch_one(sqlx::query_as::<_, (i32,)>("SELECT 1"))
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn find_principal(&self, claim: TokenClaim) -> StoreResult<PrincipalRecord> {
        let row = self
            .conns
            .fetch_one(
                sqlx::query_as::<_, PrincipalRow>(
                    "SELECT * FROM switchyard_find_principal($1, $2)",
                )
                .bind(claim.tenant.as_uuid())
                .bind(claim.user.as_uuid()),
            )
            .await
            .map_err(map_err)?;
        Ok(row.into_parts()?.0)
    }

    async fn find_principal_and_read(
        &self,
        claim: TokenClaim,
        read: &FirstRead,
    ) -> StoreResult<PrincipalAndRead> {
        let (tenant_id, user_id) = (claim.tenant.as_uuid(), claim.user.as_uuid());
        match read {
            FirstRead::Turns(id, page) => {
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
                    Ok(FirstReadResult::Turns(conversation, turns))
                })
                .await
            }
            FirstRead::OwnConversations(page) => {
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
                    Ok(FirstReadResult::Conversations(ConversationRow::page(
                        rows, page,
                    )))
                })
                .await
            }
            FirstRead::ChatContext(id, history) => {
                let query =
                    sqlx::query_as("SELECT * FROM switchyard_authed_chat_context($1, $2, $3, $4)")
                        .bind(tenant_id)
                        .bind(id.as_uuid())
                        .bind(user_id)
                        .bind(i64::from(*history));
                self.authed_read(query, |rows: Vec<ConversationHistoryRow>| {
                    let (conversation, turns) = ConversationHistoryRow::collect(rows)?;
                    Ok(FirstReadResult::ChatContext(conversation, turns))
                })
                .await
            }
        }
    }

    async fn fetch_conversations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        at: DateTime<Utc>,
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
        .bind(Ts(at))
        .bind(after)
        .bind(limit);
        self.conns.fetch_all(query).await.map_err(map_err)
    }

    async fn fetch_conversation_with_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        at: DateTime<Utc>,
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
                .bind(Ts(at))
                .bind(after)
                .bind(limit),
            )
            .await
            .map_err(map_err)
    }

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

    async fn fetch_routable_agents(
        &self,
        scope: &TenantScope,
    ) -> StoreResult<Vec<RoutableAgentRow>> {
        self.conns
            .fetch_all(
                sqlx::query_as("SELECT * FROM switchyard_routable_agents($1)")
                    .bind(scope.tenant_id().as_uuid()),
            )
            .await
            .map_err(map_err)
    }

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

    /// One round trip: the function checks the limits under the tenant's advisory lock
    /// (held until the statement commits, so counting and inserting cannot race past a
    /// limit), inserts the conversation and writes the turn.
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
            // Below zero: the OpenAI door's conversation, which no limit counts.
            .bind((*max_per_user).max(-1))
            .bind((*max_per_tenant).max(-1))
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

    /// One round trip (one statement, so one transaction).
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
}

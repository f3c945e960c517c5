//! What each database backend provides, so that the statements of [`crate::sql`] are written
//! once for both.
//!
//! A backend ([`SqlBackend`]) opens transactions — confined to a tenant, or global — and
//! runs the hot path's statements its own way (PostgreSQL as one round trip each, through
//! functions and kept connections; SQLite in process). A transaction ([`Tx`]) runs a
//! statement with its parameters ([`Args`]) and maps the rows. The [`Store`](crate::Store)
//! itself is implemented once, in [`crate::sql`], for every [`SqlBackend`].
//!
//! Parameters travel as plain values ([`Param`]) that each backend binds as its driver
//! wants (a timestamp is `timestamptz` on PostgreSQL and integer microseconds on SQLite):
//! this keeps sqlx's per-database trait bounds out of the shared code.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use switchyard_core::model::{Conversation, NewTurn, Turn};
use switchyard_core::{AgentId, ApiKeyId, ConversationId, MessageId, TenantId, UserId};
use uuid::Uuid;

use crate::rows::{ConversationHistoryRow, ConversationRow, ConversationTurnRow, RoutableAgentRow};
use crate::{
    Backend, FirstRead, FirstReadResult, PrincipalRecord, StoreResult, TenantScope, TokenClaim,
};

/// A row type both backends can read.
pub(crate) trait Row:
    for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin
{
}

impl<T> Row for T where
    T: for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> + Send + Unpin
{
}

/// One statement parameter.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    /// A UUID, or NULL.
    Uuid(Option<Uuid>),
    /// Text, or NULL.
    Text(Option<String>),
    /// A 64-bit integer.
    Int(i64),
    /// A 32-bit integer.
    Int32(i32),
    /// A float, or NULL.
    Float(Option<f64>),
    /// A boolean, or NULL.
    Bool(Option<bool>),
    /// A JSON document, or NULL.
    Json(Option<serde_json::Value>),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// A statement's parameters, `$1` first.
#[derive(Clone, Debug, Default)]
pub(crate) struct Args(pub Vec<Param>);

impl Args {
    /// No parameters yet.
    pub fn new() -> Self {
        Self(Vec::with_capacity(8))
    }

    /// Adds the next parameter.
    pub fn bind(mut self, value: impl Into<Param>) -> Self {
        self.0.push(value.into());
        self
    }

    /// Adds a JSON document.
    pub fn json(mut self, value: &impl serde::Serialize) -> Self {
        self.0.push(Param::Json(serde_json::to_value(value).ok()));
        self
    }

    /// Adds a JSON document, or NULL for `None`.
    pub fn json_or_null(mut self, value: Option<&impl serde::Serialize>) -> Self {
        self.0.push(Param::Json(
            value.and_then(|v| serde_json::to_value(v).ok()),
        ));
        self
    }
}

macro_rules! param_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Param {
            fn from($v: $t) -> Self {
                $e
            }
        })*
    };
}

param_from! {
    Uuid => |v| Param::Uuid(Some(v)),
    Option<Uuid> => |v| Param::Uuid(v),
    TenantId => |v| Param::Uuid(Some(v.as_uuid())),
    UserId => |v| Param::Uuid(Some(v.as_uuid())),
    AgentId => |v| Param::Uuid(Some(v.as_uuid())),
    ApiKeyId => |v| Param::Uuid(Some(v.as_uuid())),
    ConversationId => |v| Param::Uuid(Some(v.as_uuid())),
    MessageId => |v| Param::Uuid(Some(v.as_uuid())),
    Option<AgentId> => |v| Param::Uuid(v.map(|a| a.as_uuid())),
    &str => |v| Param::Text(Some(v.to_owned())),
    String => |v| Param::Text(Some(v)),
    &String => |v| Param::Text(Some(v.clone())),
    Option<&str> => |v| Param::Text(v.map(str::to_owned)),
    Option<String> => |v| Param::Text(v),
    i64 => |v| Param::Int(v),
    i32 => |v| Param::Int32(v),
    f64 => |v| Param::Float(Some(v)),
    Option<f64> => |v| Param::Float(v),
    bool => |v| Param::Bool(Some(v)),
    Option<bool> => |v| Param::Bool(v),
    DateTime<Utc> => |v| Param::Time(v),
    &[u8] => |v| Param::Bytes(v.to_vec()),
    Vec<u8> => |v| Param::Bytes(v),
}

/// A transaction of a backend: statements run in it until it commits; dropped, it rolls
/// back.
pub(crate) trait Tx: Send {
    /// Runs a statement that answers exactly one row (none: [`crate::StoreError::NotFound`]).
    fn fetch_one<R: Row>(
        &mut self,
        sql: &'static str,
        args: Args,
    ) -> impl Future<Output = StoreResult<R>> + Send;

    /// Runs a statement that answers rows.
    fn fetch_all<R: Row>(
        &mut self,
        sql: &'static str,
        args: Args,
    ) -> impl Future<Output = StoreResult<Vec<R>>> + Send;

    /// Runs a statement; answers how many rows it changed.
    fn execute(
        &mut self,
        sql: &'static str,
        args: Args,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Confines the rest of a global transaction to `tenant` (a tenant's first admin is
    /// created in the transaction that creates the tenant).
    fn enter_tenant(&mut self, tenant: TenantId) -> impl Future<Output = StoreResult<()>> + Send;

    /// The median, 95th and 99th percentile of the tenant's turns' latency in
    /// `[from, to)` (nearest rank, as PostgreSQL's `percentile_disc`).
    fn latency_percentiles(
        &mut self,
        tenant: TenantId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = StoreResult<[Option<f64>; 3]>> + Send;

    /// Commits.
    fn commit(self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// What a database backend provides; the [`Store`](crate::Store) is built on it
/// ([`crate::sql`]). Every method on tenant data is confined to the scope's tenant.
pub(crate) trait SqlBackend: Send + Sync + 'static {
    /// Its transactions.
    type Tx: Tx;

    /// Which database this is.
    const KIND: Backend;

    /// A tenant's settings, its row locked until the transaction ends where the database
    /// needs it: `$1` the tenant.
    const TENANT_SETTINGS_FOR_UPDATE: &'static str;

    /// A read-only transaction confined to `tenant`.
    fn read(&self, tenant: TenantId) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// A read-write transaction confined to `tenant`.
    fn write(&self, tenant: TenantId) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// A read-only transaction in no tenant: only the global tables are visible.
    fn global_read(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// A read-write transaction in no tenant.
    fn global_write(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// A read-write transaction that may read and write `server_secrets`, which the
    /// application role on PostgreSQL may not: there it runs on a connection of its own as
    /// the database's owner.
    fn secrets_write(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send;

    /// Checks the database answers.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;

    /// The tenant and user a verified credential names.
    fn find_principal(
        &self,
        claim: TokenClaim,
    ) -> impl Future<Output = StoreResult<PrincipalRecord>> + Send;

    /// [`Self::find_principal`] and, for an active principal, `read` in its scope, in one
    /// round trip where the backend can (`None` when it did not run).
    fn find_principal_and_read(
        &self,
        claim: TokenClaim,
        read: &FirstRead,
    ) -> impl Future<Output = StoreResult<(PrincipalRecord, Option<StoreResult<FirstReadResult>>)>> + Send;

    /// A page of one user's (or, with no user, the tenant's) conversations, latest first,
    /// after the keyset position `(at, after)`.
    fn fetch_conversations(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        at: DateTime<Utc>,
        after: Uuid,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<ConversationRow>>> + Send;

    /// A conversation the scope may see with a page of its turns, oldest first.
    fn fetch_conversation_with_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        at: DateTime<Utc>,
        after: Uuid,
        limit: i64,
    ) -> impl Future<Output = StoreResult<Vec<ConversationTurnRow>>> + Send;

    /// The scope's user's conversation with its last `history` turns.
    fn fetch_chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: i64,
    ) -> impl Future<Output = StoreResult<Vec<ConversationHistoryRow>>> + Send;

    /// The tenant's agents-version and enabled agents.
    fn fetch_routable_agents(
        &self,
        scope: &TenantScope,
    ) -> impl Future<Output = StoreResult<Vec<RoutableAgentRow>>> + Send;

    /// The scope's user's and tenant's conversations, each counted up to its limit.
    fn count_for_limits(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> impl Future<Output = StoreResult<(i64, i64)>> + Send;

    /// A new conversation with its first turn, the limits checked atomically.
    fn write_new_turn(
        &self,
        scope: &TenantScope,
        turn: &NewTurn,
    ) -> impl Future<Output = StoreResult<(Conversation, Turn)>> + Send;

    /// A turn of an existing conversation with the conversation's update.
    fn write_existing_turn(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        turn: &NewTurn,
    ) -> impl Future<Output = StoreResult<(Conversation, Turn)>> + Send;
}

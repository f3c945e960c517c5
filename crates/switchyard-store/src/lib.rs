//! Switchyard's storage: the [`Store`] trait, through which every read and write of
//! tenant-owned data goes, and its two backends.
//!
//! - PostgreSQL ([`postgres`]): each scoped operation runs in a transaction that first sets
//!   `app.tenant_id`; row-level security policies, forced on every tenant-owned table,
//!   apply the tenant filter a second time, under an application role that is neither
//!   superuser nor owner and has no `BYPASSRLS`.
//! - SQLite ([`sqlite`]), the embedded default: WAL, foreign keys on, a busy timeout; the
//!   tenant filter is in every statement.
//!
//! Every method on tenant-owned data takes a [`TenantScope`] first; the tenant of the
//! operation is the scope's, never a parameter. The platform-wide methods (tenants, server
//! secrets, and the authentication look-ups that issue scopes) take the [`OperatorScope`],
//! which only opening the store hands out ([`connect`]); see [`scope`].
//!
//! The [`Store`] is implemented once, in `sql/`, over what each backend provides (a
//! [`SqlBackend`](backend::SqlBackend): its transactions and its one-round-trip hot paths).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchyard_core::model::{
    Agent, AgentCallError, AgentFields, ApiKey, Conversation, HistoryTurn, IdempotencyStart,
    NewApiKey, NewTenant, NewTurn, NewUser, RecordedDecision, RetentionBatch, RoutingAnalytics,
    SeriesPoint, Tenant, TenantPatch, TenantStatus, TenantUsage, Turn, User, UserPatch, UserStatus,
};
use switchyard_core::page::{Page, PageRequest};
use switchyard_core::{AgentId, ApiKeyId, ConversationId, MessageId, TenantId, UserId};

mod backend;
mod error;
mod migrate;
pub mod postgres;
mod rows;
pub mod scope;
mod sql;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{StoreError, StoreResult};
pub use scope::{OperatorScope, TenantScope};
pub use sql::statements;

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL with row-level security.
    Postgres,
    /// Embedded SQLite.
    Sqlite,
}

/// How to reach the database.
#[derive(Clone)]
pub struct StoreConfig {
    /// `postgres://…` or `sqlite://…` (`sqlite::memory:` for a private in-memory database).
    pub url: String,
    /// PostgreSQL only: the owner's URL for migrations, when `url` names the application role.
    pub migration_url: Option<String>,
    /// The pool's size.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before it fails as unavailable.
    pub acquire_timeout: Duration,
    /// Whether to apply pending migrations when connecting.
    pub migrate: bool,
    /// Where a legacy upgrade puts users who have no tenant.
    pub default_tenant_slug: String,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field(
                "migration_url",
                &self.migration_url.as_deref().map(redact_url),
            )
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("migrate", &self.migrate)
            .field("default_tenant_slug", &self.default_tenant_slug)
            .finish()
    }
}

impl StoreConfig {
    /// A configuration with the defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            migration_url: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            migrate: true,
            default_tenant_slug: "default".into(),
        }
    }
}

/// A database URL with its password hidden, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// An open store, and the operator's proof that goes with it.
#[derive(Clone)]
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The one proof of acting as the platform's operator: hand it only to what acts for
    /// the platform (authentication, the operator's routes and tools, maintenance).
    pub operator: OperatorScope,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Opens the store named by the URL's scheme, applying migrations first if configured.
pub async fn connect(config: &StoreConfig) -> StoreResult<Opened> {
    let (store, operator): (Arc<dyn Store>, OperatorScope) =
        if config.url.starts_with("postgres://") || config.url.starts_with("postgresql://") {
            let (store, operator) = postgres::PgStore::open(config).await?;
            (Arc::new(store), operator)
        } else if config.url.starts_with("sqlite:") {
            let (store, operator) = sqlite::SqliteStore::open(config).await?;
            (Arc::new(store), operator)
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL {:?}: expected postgres:// or sqlite:",
                redact_url(&config.url)
            )));
        };
    Ok(Opened { store, operator })
}

/// Applies pending migrations to the database named by the configuration (the owner's
/// URL on PostgreSQL) and, on PostgreSQL, makes sure the application role exists and has
/// exactly the privileges it needs. Safe to run again: it then changes nothing.
pub async fn migrate(config: &StoreConfig) -> StoreResult<MigrationReport> {
    if config.url.starts_with("sqlite:") {
        sqlite::migrate(config).await
    } else {
        postgres::migrate(config).await
    }
}

/// What a migration run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// The versions applied by this run.
    pub applied: Vec<i64>,
    /// Whether a database of the earlier single-tenant layout was upgraded.
    pub upgraded_legacy: bool,
}

/// What a tenant owns that is counted against its quotas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owned {
    /// Its agents.
    Agents,
    /// Its users.
    Users,
    /// Its API keys (revoked ones included until deleted).
    ApiKeys,
}

/// Which conversations a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationFilter {
    /// The scope's own user's.
    Own,
    /// One user's of the scope's tenant (admins only).
    User(UserId),
    /// Every conversation of the scope's tenant (admins only).
    All,
}

/// The tenant and user a verified credential names (a token's `tid` and `sub`), not yet
/// looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenClaim {
    /// The tenant.
    pub tenant: TenantId,
    /// The user.
    pub user: UserId,
}

/// A principal found by authentication: the tenant and the user, both loaded, and the scope
/// they act in. Only the store's look-ups make one.
#[derive(Clone, Debug)]
pub struct PrincipalRecord {
    /// The tenant.
    pub tenant: Tenant,
    /// The user.
    pub user: User,
    /// When the user's tokens were last revoked (a password change, a logout): a token
    /// issued before it is refused.
    pub tokens_valid_after: Option<DateTime<Utc>>,
    scope: TenantScope,
}

impl PrincipalRecord {
    /// The record of a loaded user and their tenant, acting with the role as stored.
    pub(crate) fn new(
        tenant: Tenant,
        user: User,
        tokens_valid_after: Option<DateTime<Utc>>,
    ) -> Self {
        let scope = TenantScope::new(tenant.id, user.id, user.role);
        Self {
            tenant,
            user,
            tokens_valid_after,
            scope,
        }
    }

    /// Whether the user and the tenant are both active: only then may the principal act.
    pub fn is_active(&self) -> bool {
        self.user.status == UserStatus::Active && self.tenant.status == TenantStatus::Active
    }

    /// The scope the principal acts in, if it may act.
    pub fn active_scope(&self) -> Option<TenantScope> {
        self.is_active().then(|| self.scope.clone())
    }
}

/// An API key found by its hash, with its user and tenant.
#[derive(Clone, Debug)]
pub struct ApiKeyRecord {
    /// The key's tenant and user.
    pub principal: PrincipalRecord,
    /// The key's id.
    pub key_id: ApiKeyId,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A user found for a login attempt, with the password hash to check.
#[derive(Clone, Debug)]
pub struct LoginRecord {
    /// The tenant and the user.
    pub principal: PrincipalRecord,
    /// The user's argon2 hash, if they have a password.
    pub password_hash: Option<String>,
}

/// What a request reads right after its authentication, in the scope of the principal it
/// authenticates as: with a verified token, [`Store::find_principal_and_read`] reads it in
/// the round trip that looks the principal up where the backend can (PostgreSQL), else
/// right after it in the scope the look-up issued ([`FirstRead::run`]).
#[derive(Clone, Debug)]
pub enum FirstRead {
    /// A conversation with a page of its turns ([`Store::list_turns`]).
    Turns(ConversationId, PageRequest),
    /// The caller's own conversations ([`Store::list_conversations`] with
    /// [`ConversationFilter::Own`]).
    OwnConversations(PageRequest),
    /// A chat turn's conversation and its last turns ([`Store::chat_context`]).
    ChatContext(ConversationId, u32),
}

/// What a [`FirstRead`] read, one variant for each of its own.
#[derive(Clone, Debug)]
pub enum FirstReadResult {
    /// [`FirstRead::Turns`]'s conversation and page of turns.
    Turns(Conversation, Page<Turn>),
    /// [`FirstRead::OwnConversations`]'s page.
    Conversations(Page<Conversation>),
    /// [`FirstRead::ChatContext`]'s conversation and history.
    ChatContext(Conversation, Vec<HistoryTurn>),
}

impl FirstReadResult {
    fn mismatch(&self) -> StoreError {
        let kind = match self {
            Self::Turns(..) => "turns",
            Self::Conversations(..) => "conversations",
            Self::ChatContext(..) => "a chat context",
        };
        StoreError::Other(format!(
            "a first read answered with {kind}, not what was asked"
        ))
    }

    /// [`FirstRead::Turns`]'s answer.
    pub fn into_turns(self) -> StoreResult<(Conversation, Page<Turn>)> {
        match self {
            Self::Turns(conversation, turns) => Ok((conversation, turns)),
            other => Err(other.mismatch()),
        }
    }

    /// [`FirstRead::OwnConversations`]'s answer.
    pub fn into_conversations(self) -> StoreResult<Page<Conversation>> {
        match self {
            Self::Conversations(page) => Ok(page),
            other => Err(other.mismatch()),
        }
    }

    /// [`FirstRead::ChatContext`]'s answer.
    pub fn into_chat_context(self) -> StoreResult<(Conversation, Vec<HistoryTurn>)> {
        match self {
            Self::ChatContext(conversation, history) => Ok((conversation, history)),
            other => Err(other.mismatch()),
        }
    }
}

impl FirstRead {
    /// Reads it in `scope`, on its own (after an API key's look-up, say).
    pub async fn run(
        &self,
        store: &dyn Store,
        scope: &TenantScope,
    ) -> StoreResult<FirstReadResult> {
        Ok(match self {
            Self::Turns(id, page) => {
                let (conversation, turns) = store.list_turns(scope, *id, *page).await?;
                FirstReadResult::Turns(conversation, turns)
            }
            Self::OwnConversations(page) => FirstReadResult::Conversations(
                store
                    .list_conversations(scope, ConversationFilter::Own, *page)
                    .await?,
            ),
            Self::ChatContext(id, history) => {
                let (conversation, turns) = store.chat_context(scope, *id, *history).await?;
                FirstReadResult::ChatContext(conversation, turns)
            }
        })
    }
}

/// What [`Store::find_principal_and_read`] found: the principal and, if the backend read it
/// in the same round trip, the first read's result.
pub type PrincipalAndRead = (PrincipalRecord, Option<StoreResult<FirstReadResult>>);

/// The storage of everything Switchyard keeps.
///
/// Methods on tenant-owned data take the [`TenantScope`] first. The platform's methods take
/// the [`OperatorScope`]: tenants, server secrets, and the authentication look-ups, which
/// take the tenant the credential names and answer the principal with the scope it acts in
/// ([`PrincipalRecord::active_scope`]). [`Store::find_principal_and_read`] also reads the
/// request's [`FirstRead`], only for a principal that may act, in the scope it is issued.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;

    // ----- the platform operator's: tenants -----

    /// Creates a tenant, and its first admin when given, in one transaction.
    async fn create_tenant(
        &self,
        operator: &OperatorScope,
        new: NewTenant,
        first_admin: Option<NewUser>,
    ) -> StoreResult<(Tenant, Option<User>)>;
    /// Reads a tenant.
    async fn get_tenant(&self, operator: &OperatorScope, id: TenantId) -> StoreResult<Tenant>;
    /// Reads a tenant by slug.
    async fn find_tenant_by_slug(
        &self,
        operator: &OperatorScope,
        slug: &str,
    ) -> StoreResult<Tenant>;
    /// Lists tenants, oldest first.
    async fn list_tenants(
        &self,
        operator: &OperatorScope,
        page: PageRequest,
    ) -> StoreResult<Page<Tenant>>;
    /// Changes a tenant's name, status or settings.
    async fn update_tenant(
        &self,
        operator: &OperatorScope,
        id: TenantId,
        patch: TenantPatch,
    ) -> StoreResult<Tenant>;
    /// Erases a tenant and every row it owns.
    async fn delete_tenant(&self, operator: &OperatorScope, id: TenantId) -> StoreResult<()>;
    /// How many rows of each kind a tenant holds.
    async fn tenant_usage(
        &self,
        operator: &OperatorScope,
        id: TenantId,
    ) -> StoreResult<TenantUsage>;
    /// The server secret `name`, made by `generate` and kept if it does not exist yet.
    async fn server_secret(
        &self,
        operator: &OperatorScope,
        name: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<String>;

    // ----- authentication look-ups -----

    /// The tenant and user a verified token names.
    async fn find_principal(
        &self,
        operator: &OperatorScope,
        claim: TokenClaim,
    ) -> StoreResult<PrincipalRecord>;
    /// [`Store::find_principal`] and `read` in the scope it issues (the visibility of the
    /// user's role as stored), in the same round trip where the backend can. The read runs
    /// only for an active user of an active tenant; `None` when it did not run.
    async fn find_principal_and_read(
        &self,
        operator: &OperatorScope,
        claim: TokenClaim,
        read: &FirstRead,
    ) -> StoreResult<PrincipalAndRead>;
    /// The API key with this secret hash in the tenant the key names, with its user;
    /// records its use (at most once a minute).
    async fn find_api_key(
        &self,
        operator: &OperatorScope,
        tenant: TenantId,
        secret_hash: &[u8],
    ) -> StoreResult<ApiKeyRecord>;
    /// The user of the tenant with this e-mail address, for a login.
    async fn find_login(
        &self,
        operator: &OperatorScope,
        tenant_slug: &str,
        email: &str,
    ) -> StoreResult<LoginRecord>;

    // ----- users (admins) -----

    /// Creates a user in the scope's tenant.
    async fn create_user(&self, scope: &TenantScope, new: NewUser) -> StoreResult<User>;
    /// Reads a user of the scope's tenant.
    async fn get_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<User>;
    /// Lists the scope's tenant's users, oldest first.
    async fn list_users(&self, scope: &TenantScope, page: PageRequest) -> StoreResult<Page<User>>;
    /// Changes a user of the scope's tenant.
    async fn update_user(
        &self,
        scope: &TenantScope,
        id: UserId,
        patch: UserPatch,
    ) -> StoreResult<User>;
    /// Deletes a user of the scope's tenant with their conversations, keys and records.
    async fn delete_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<()>;

    // ----- API keys (admins) -----

    /// Stores a new API key for a user of the scope's tenant.
    async fn create_api_key(&self, scope: &TenantScope, new: NewApiKey) -> StoreResult<ApiKey>;
    /// Lists the tenant's keys that are not revoked, oldest first.
    async fn list_api_keys(
        &self,
        scope: &TenantScope,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>>;
    /// Revokes a key of the scope's tenant.
    async fn revoke_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> StoreResult<()>;
    /// Revokes every token the scope's own user was issued until `at` (a logout).
    async fn revoke_own_tokens(&self, scope: &TenantScope, at: DateTime<Utc>) -> StoreResult<()>;

    // ----- agents (admins write, members read) -----

    /// Creates an agent in the scope's tenant.
    async fn create_agent(&self, scope: &TenantScope, fields: AgentFields) -> StoreResult<Agent>;
    /// Reads an agent of the scope's tenant.
    async fn get_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<Agent>;
    /// Lists the tenant's agents, oldest first.
    async fn list_agents(&self, scope: &TenantScope, page: PageRequest)
    -> StoreResult<Page<Agent>>;
    /// Replaces an agent's fields.
    async fn update_agent(
        &self,
        scope: &TenantScope,
        id: AgentId,
        fields: AgentFields,
    ) -> StoreResult<Agent>;
    /// Deletes an agent (its turns keep their record of it).
    async fn delete_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<()>;
    /// Every enabled agent of the tenant, for routing, with the tenant's agent-set version
    /// read in the same transaction.
    async fn routable_agents(&self, scope: &TenantScope) -> StoreResult<(i64, Vec<Agent>)>;

    // ----- conversations and turns -----

    /// Reads a conversation: members their own, admins any of the tenant's.
    async fn get_conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> StoreResult<Conversation>;
    /// Lists conversations, latest activity first.
    async fn list_conversations(
        &self,
        scope: &TenantScope,
        filter: ConversationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Conversation>>;
    /// Deletes a conversation and its turns: members their own, admins any of the tenant's.
    async fn delete_conversation(&self, scope: &TenantScope, id: ConversationId)
    -> StoreResult<()>;
    /// A conversation (with the same visibility as [`Store::get_conversation`]) and a page
    /// of its turns, oldest first, read together.
    async fn list_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        page: PageRequest,
    ) -> StoreResult<(Conversation, Page<Turn>)>;
    /// The conversation of the scope's own user, and its last `history` turns, oldest
    /// first: what a chat turn needs before it calls an agent.
    async fn chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: u32,
    ) -> StoreResult<(Conversation, Vec<HistoryTurn>)>;
    /// The scope's own conversation whose thread, as the OpenAI door's client holds it, has
    /// the hash `key`, if any.
    async fn find_thread(
        &self,
        scope: &TenantScope,
        key: &str,
    ) -> StoreResult<Option<ConversationId>>;
    /// Records the hash of the scope's own conversation's thread after a turn through the
    /// OpenAI door; a conversation with one counts toward no conversation limit.
    async fn set_thread_key(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        key: &str,
    ) -> StoreResult<()>;
    /// How many conversations the scope's user and the scope's tenant have, each counted
    /// only up to the limit given (the check before a new conversation's agent call; the
    /// write checks again, atomically).
    async fn count_conversations(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)>;
    /// How many of `kind` the scope's tenant has (for its quotas).
    async fn count_owned(&self, scope: &TenantScope, kind: Owned) -> StoreResult<i64>;
    /// Stores a turn and updates its conversation (`last_activity`, `message_count`,
    /// `primary_intent`, `last_agent_id`) in one transaction; a new conversation is
    /// created in the same transaction if the limits allow.
    async fn append_turn(
        &self,
        scope: &TenantScope,
        turn: NewTurn,
    ) -> StoreResult<(Conversation, Turn)>;

    /// Records a failed agent call (for analytics' error rates).
    async fn record_agent_error(
        &self,
        scope: &TenantScope,
        error: AgentCallError,
    ) -> StoreResult<()>;

    // ----- operations -----

    /// The tenant's routing figures over `[from, to)` (admins only), computed in the
    /// database.
    async fn routing_analytics(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<RoutingAnalytics>;
    /// The tenant's turns, fallback rate and p95 latency per `step` of `[from, to)`, oldest
    /// first (admins only): stretches end on whole multiples of `step` since the epoch (UTC
    /// hours, days), the first starting at `from` and the last ending at `to`.
    async fn routing_series(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: chrono::TimeDelta,
    ) -> StoreResult<Vec<SeriesPoint>>;
    /// A page of at most `limit` of the tenant's turns stored before `before` (the time and
    /// id of the last turn of the previous page; `None`: from the latest), newest first,
    /// with what routing decided for each (admins only): what the routing lab replays.
    async fn recent_decisions(
        &self,
        scope: &TenantScope,
        before: Option<(DateTime<Utc>, MessageId)>,
        limit: u32,
    ) -> StoreResult<Vec<RecordedDecision>>;
    /// Deletes up to `batch` of the tenant's turns older than `cutoff`, updates their
    /// conversations' counts and deletes the conversations left empty, in one
    /// transaction (admins only). Run until it deletes nothing.
    async fn retention_batch(
        &self,
        scope: &TenantScope,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<RetentionBatch>;
    /// Deletes the tenant's idempotency records and agent-error records older than
    /// `cutoff` (admins only).
    async fn purge_expired(
        &self,
        scope: &TenantScope,
        idempotency_cutoff: DateTime<Utc>,
        errors_cutoff: DateTime<Utc>,
    ) -> StoreResult<u64>;

    /// Loads another database's export into the scope's tenant in one transaction, keeping
    /// ids and times (admins only). An id or e-mail address or agent name that already
    /// exists in the tenant refuses the whole import (nothing is written).
    async fn import_tenant_data(&self, scope: &TenantScope, data: &TenantData) -> StoreResult<()>;

    // ----- idempotency -----

    /// Claims an idempotency key of the scope's user for a request with this hash.
    async fn idempotency_start(
        &self,
        scope: &TenantScope,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyStart>;
    /// Records the answer of a claimed key.
    async fn idempotency_complete(
        &self,
        scope: &TenantScope,
        key: &str,
        response: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Releases a claimed key whose request failed, so that a retry runs again.
    async fn idempotency_release(&self, scope: &TenantScope, key: &str) -> StoreResult<()>;
}

impl std::fmt::Debug for dyn Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend())
    }
}

/// A tenant's data as exported and imported: users (without password hashes), agents,
/// conversations and their turns.
#[derive(Clone, Debug, Default)]
pub struct TenantData {
    /// Users.
    pub users: Vec<User>,
    /// Agents.
    pub agents: Vec<Agent>,
    /// Conversations.
    pub conversations: Vec<Conversation>,
    /// Turns.
    pub turns: Vec<Turn>,
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// How long a claimed key without an answer blocks retries: a request that has not
/// answered by then has died with its server.
pub const IDEMPOTENCY_STALE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

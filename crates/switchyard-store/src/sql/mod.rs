//! The SQL both backends share, and the one [`Store`] implementation built on it, for every
//! [`SqlBackend`].
//!
//! The SQL is written once and is valid on PostgreSQL and SQLite alike (`$n` parameters,
//! row-value comparisons, `RETURNING`, `ON CONFLICT`). What differs — how a scoped
//! transaction starts (on PostgreSQL it sets `app.tenant_id` for row-level security), the
//! hot path's one-round-trip statements, serialising conversation creation for the limits,
//! and naming constraint violations — each backend provides through [`SqlBackend`]. One
//! file per resource holds its statements; the implementation of [`Store`] at the end of
//! this file only says which function serves which method.
//!
//! Every statement on a tenant-owned table names `tenant_id = $1` itself, whatever the
//! database enforces besides.

mod agents;
mod conversations;
mod operations;
pub mod statements;
mod tenants;
mod users;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchyard_core::model::{
    Agent, AgentCallError, AgentFields, ApiKey, Conversation, HistoryTurn, IdempotencyStart,
    NewApiKey, NewTenant, NewTurn, NewUser, RecordedDecision, RetentionBatch, RoutingAnalytics,
    SeriesPoint, Tenant, TenantPatch, TenantUsage, Turn, TurnTarget, User, UserPatch,
};
use switchyard_core::page::{Page, PageRequest};
use switchyard_core::{AgentId, ApiKeyId, ConversationId, MessageId, TenantId, UserId};
use uuid::Uuid;

use crate::backend::SqlBackend;
use crate::{
    ApiKeyRecord, Backend, ConversationFilter, FirstRead, LoginRecord, OperatorScope,
    PrincipalAndRead, PrincipalRecord, Store, StoreError, StoreResult, TenantData, TenantScope,
    TokenClaim,
};

macro_rules! tenant_cols {
    () => {
        "id, slug, name, status, settings, agents_version, created_at"
    };
}
macro_rules! user_cols {
    () => {
        "tenant_id, id, email, display_name, role, status, created_at"
    };
}
macro_rules! principal_cols {
    () => {
        "u.tenant_id, u.id, u.email, u.display_name, u.role, u.status, u.created_at, \
         t.slug AS t_slug, t.name AS t_name, t.status AS t_status, t.settings AS t_settings, \
         t.agents_version AS t_agents_version, t.created_at AS t_created_at, u.tokens_valid_after"
    };
}
macro_rules! api_key_cols {
    () => {
        "id, user_id, name, prefix, created_at, last_used_at, revoked_at"
    };
}
macro_rules! agent_cols {
    () => {
        "tenant_id, id, name, description, kind, config, intents, keywords, examples, enabled, \
         priority, is_fallback, created_at, updated_at"
    };
}
macro_rules! conversation_cols {
    () => {
        "tenant_id, id, user_id, title, primary_intent, last_agent_id, message_count, created_at, \
         last_activity"
    };
}
macro_rules! turn_cols {
    () => {
        "tenant_id, id, conversation_id, user_message, agent_response, intent_category, \
         intent_confidence, selected_agent_id, routing, latency_ms, created_at"
    };
}

/// A turn's columns read through the alias `t`, renamed `t_…` beside a conversation's.
macro_rules! joined_turn_cols {
    () => {
        "t.id AS t_id, t.user_message AS t_user_message, t.agent_response AS t_agent_response, \
         t.intent_category AS t_intent_category, t.intent_confidence AS t_intent_confidence, \
         t.selected_agent_id AS t_selected_agent_id, t.routing AS t_routing, t.latency_ms AS t_latency_ms, \
         t.created_at AS t_created_at"
    };
}

pub(crate) use {
    agent_cols, api_key_cols, conversation_cols, joined_turn_cols, principal_cols, tenant_cols,
    turn_cols, user_cols,
};

/// The keyset position before the first row of a list sorted by id ascending.
pub(crate) const ID_START: Uuid = Uuid::nil();
/// The keyset position before the first row of a list sorted by time and id descending.
pub(crate) const DESC_START_ID: Uuid = Uuid::max();

/// The timestamp sorting after every real one (the start of a descending list): the end
/// of year 9999, within the range of both databases.
pub(crate) fn desc_start_at() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The timestamp sorting before every real one (the start of an ascending list): the
/// start of year 1.
pub(crate) fn asc_start_at() -> DateTime<Utc> {
    DateTime::from_timestamp(-62_135_596_800, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Keyset position of a list sorted by id: (after id).
pub(crate) fn id_after(page: &switchyard_core::page::PageRequest) -> Uuid {
    page.after.map_or(ID_START, |c| c.id)
}

/// Keyset position of a list sorted by (time, id) descending.
pub(crate) fn desc_after(page: &switchyard_core::page::PageRequest) -> (DateTime<Utc>, Uuid) {
    match page.after {
        Some(c) => (c.at.unwrap_or_else(desc_start_at), c.id),
        None => (desc_start_at(), DESC_START_ID),
    }
}

/// Keyset position of a list sorted by (time, id) ascending.
pub(crate) fn asc_after(page: &switchyard_core::page::PageRequest) -> (DateTime<Utc>, Uuid) {
    match page.after {
        Some(c) => (c.at.unwrap_or_else(asc_start_at), c.id),
        None => (asc_start_at(), ID_START),
    }
}

/// Assembles the analytics from the database's aggregates.
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per aggregate query"
)]
pub(crate) fn analytics(
    turns: i64,
    conversations: i64,
    by_intent: Vec<(Option<String>, i64)>,
    answered: Vec<(Uuid, Option<String>, i64)>,
    failed: Vec<(Uuid, String, i64)>,
    mean_confidence: Option<f64>,
    fallback_rate: Option<f64>,
    latency_ms: [Option<f64>; 3],
) -> switchyard_core::model::RoutingAnalytics {
    use switchyard_core::model::AgentFigures;
    let mut by_agent: Vec<AgentFigures> = answered
        .into_iter()
        .map(|(id, name, n)| AgentFigures {
            agent_id: id.into(),
            name,
            turns: n,
            errors: 0,
        })
        .collect();
    let mut errors = 0;
    for (id, name, n) in failed {
        errors += n;
        match by_agent.iter_mut().find(|a| a.agent_id.as_uuid() == id) {
            Some(agent) => {
                agent.errors = n;
                agent.name.get_or_insert(name);
            }
            None => by_agent.push(AgentFigures {
                agent_id: id.into(),
                name: Some(name),
                turns: 0,
                errors: n,
            }),
        }
    }
    by_agent.sort_by(|a, b| {
        b.turns
            .cmp(&a.turns)
            .then(b.errors.cmp(&a.errors))
            .then(a.agent_id.cmp(&b.agent_id))
    });
    // Every stored turn had one successful call; every error record is one failed call.
    let calls = turns + errors;
    switchyard_core::model::RoutingAnalytics {
        turns,
        conversations,
        by_intent,
        by_agent,
        mean_confidence,
        fallback_rate,
        agent_error_rate: (calls > 0).then(|| errors as f64 / calls as f64),
        latency_ms,
    }
}

/// The title of a conversation: the start of its first message.
pub(crate) fn clamp_title(title: Option<String>) -> Option<String> {
    title.map(|t| match t.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", t[..cut].trim_end()),
        None => t,
    })
}

/// Refuses a member where only admins may act.
pub(crate) fn require_admin(scope: &TenantScope) -> StoreResult<()> {
    if scope.is_admin() {
        Ok(())
    } else {
        Err(StoreError::Forbidden)
    }
}

#[async_trait]
impl<B: SqlBackend> Store for B {
    fn backend(&self) -> Backend {
        B::KIND
    }

    async fn ping(&self) -> StoreResult<()> {
        SqlBackend::ping(self).await
    }

    async fn create_tenant(
        &self,
        _: &OperatorScope,
        new: NewTenant,
        first_admin: Option<NewUser>,
    ) -> StoreResult<(Tenant, Option<User>)> {
        tenants::create(self, new, first_admin).await
    }

    async fn get_tenant(&self, _: &OperatorScope, id: TenantId) -> StoreResult<Tenant> {
        tenants::get(self, id).await
    }

    async fn find_tenant_by_slug(&self, _: &OperatorScope, slug: &str) -> StoreResult<Tenant> {
        tenants::find_by_slug(self, slug).await
    }

    async fn list_tenants(
        &self,
        _: &OperatorScope,
        page: PageRequest,
    ) -> StoreResult<Page<Tenant>> {
        tenants::list(self, page).await
    }

    async fn update_tenant(
        &self,
        _: &OperatorScope,
        id: TenantId,
        patch: TenantPatch,
    ) -> StoreResult<Tenant> {
        tenants::update(self, id, patch).await
    }

    async fn delete_tenant(&self, _: &OperatorScope, id: TenantId) -> StoreResult<()> {
        tenants::delete(self, id).await
    }

    async fn tenant_usage(&self, _: &OperatorScope, id: TenantId) -> StoreResult<TenantUsage> {
        tenants::usage(self, id).await
    }

    async fn server_secret(
        &self,
        _: &OperatorScope,
        name: &str,
        generate: &(dyn Fn() -> String + Send + Sync),
    ) -> StoreResult<String> {
        tenants::server_secret(self, name, generate).await
    }

    async fn find_principal(
        &self,
        _: &OperatorScope,
        claim: TokenClaim,
    ) -> StoreResult<PrincipalRecord> {
        SqlBackend::find_principal(self, claim).await
    }

    async fn find_principal_and_read(
        &self,
        _: &OperatorScope,
        claim: TokenClaim,
        read: &FirstRead,
    ) -> StoreResult<PrincipalAndRead> {
        SqlBackend::find_principal_and_read(self, claim, read).await
    }

    async fn find_api_key(
        &self,
        _: &OperatorScope,
        tenant: TenantId,
        secret_hash: &[u8],
    ) -> StoreResult<ApiKeyRecord> {
        users::find_api_key(self, tenant, secret_hash).await
    }

    async fn find_login(
        &self,
        _: &OperatorScope,
        tenant_slug: &str,
        email: &str,
    ) -> StoreResult<LoginRecord> {
        users::find_login(self, tenant_slug, email).await
    }

    async fn create_user(&self, scope: &TenantScope, new: NewUser) -> StoreResult<User> {
        users::create(self, scope, new).await
    }

    async fn get_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<User> {
        users::get(self, scope, id).await
    }

    async fn list_users(&self, scope: &TenantScope, page: PageRequest) -> StoreResult<Page<User>> {
        users::list(self, scope, page).await
    }

    async fn update_user(
        &self,
        scope: &TenantScope,
        id: UserId,
        patch: UserPatch,
    ) -> StoreResult<User> {
        users::update(self, scope, id, patch).await
    }

    async fn delete_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<()> {
        users::delete(self, scope, id).await
    }

    async fn create_api_key(&self, scope: &TenantScope, new: NewApiKey) -> StoreResult<ApiKey> {
        users::create_api_key(self, scope, new).await
    }

    async fn list_api_keys(
        &self,
        scope: &TenantScope,
        page: PageRequest,
    ) -> StoreResult<Page<ApiKey>> {
        users::list_api_keys(self, scope, page).await
    }

    async fn revoke_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> StoreResult<()> {
        users::revoke_api_key(self, scope, id).await
    }

    async fn revoke_own_tokens(&self, scope: &TenantScope, at: DateTime<Utc>) -> StoreResult<()> {
        users::revoke_own_tokens(self, scope, at).await
    }

    async fn create_agent(&self, scope: &TenantScope, fields: AgentFields) -> StoreResult<Agent> {
        agents::create(self, scope, fields).await
    }

    async fn get_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<Agent> {
        agents::get(self, scope, id).await
    }

    async fn list_agents(
        &self,
        scope: &TenantScope,
        page: PageRequest,
    ) -> StoreResult<Page<Agent>> {
        agents::list(self, scope, page).await
    }

    async fn update_agent(
        &self,
        scope: &TenantScope,
        id: AgentId,
        fields: AgentFields,
    ) -> StoreResult<Agent> {
        agents::update(self, scope, id, fields).await
    }

    async fn delete_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<()> {
        agents::delete(self, scope, id).await
    }

    async fn routable_agents(&self, scope: &TenantScope) -> StoreResult<(i64, Vec<Agent>)> {
        agents::routable(self, scope).await
    }

    async fn get_conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> StoreResult<Conversation> {
        conversations::get(self, scope, id).await
    }

    async fn list_conversations(
        &self,
        scope: &TenantScope,
        filter: ConversationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Conversation>> {
        conversations::list(self, scope, filter, page).await
    }

    async fn delete_conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> StoreResult<()> {
        conversations::delete(self, scope, id).await
    }

    async fn list_turns(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        page: PageRequest,
    ) -> StoreResult<(Conversation, Page<Turn>)> {
        conversations::list_turns(self, scope, id, page).await
    }

    async fn chat_context(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        history: u32,
    ) -> StoreResult<(Conversation, Vec<HistoryTurn>)> {
        conversations::chat_context(self, scope, id, history).await
    }

    async fn count_owned(&self, scope: &TenantScope, kind: crate::Owned) -> StoreResult<i64> {
        tenants::count_owned(self, scope, kind).await
    }

    async fn find_thread(
        &self,
        scope: &TenantScope,
        key: &str,
    ) -> StoreResult<Option<ConversationId>> {
        conversations::find_thread(self, scope, key).await
    }

    async fn set_thread_key(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        key: &str,
    ) -> StoreResult<()> {
        conversations::set_thread_key(self, scope, id, key).await
    }

    async fn count_conversations(
        &self,
        scope: &TenantScope,
        max_per_user: i64,
        max_per_tenant: i64,
    ) -> StoreResult<(i64, i64)> {
        self.count_for_limits(scope, max_per_user.max(0), max_per_tenant.max(0))
            .await
    }

    async fn append_turn(
        &self,
        scope: &TenantScope,
        turn: NewTurn,
    ) -> StoreResult<(Conversation, Turn)> {
        match &turn.target {
            TurnTarget::Existing(id) => self.write_existing_turn(scope, *id, &turn).await,
            TurnTarget::New { .. } => self.write_new_turn(scope, &turn).await,
        }
    }

    async fn record_agent_error(
        &self,
        scope: &TenantScope,
        error: AgentCallError,
    ) -> StoreResult<()> {
        conversations::record_agent_error(self, scope, error).await
    }

    async fn routing_analytics(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<RoutingAnalytics> {
        operations::routing_analytics(self, scope, from, to).await
    }

    async fn routing_series(
        &self,
        scope: &TenantScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        step: chrono::TimeDelta,
    ) -> StoreResult<Vec<SeriesPoint>> {
        operations::routing_series(self, scope, from, to, step).await
    }

    async fn recent_decisions(
        &self,
        scope: &TenantScope,
        before: Option<(DateTime<Utc>, MessageId)>,
        limit: u32,
    ) -> StoreResult<Vec<RecordedDecision>> {
        operations::recent_decisions(self, scope, before, limit).await
    }

    async fn retention_batch(
        &self,
        scope: &TenantScope,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> StoreResult<RetentionBatch> {
        operations::retention_batch(self, scope, cutoff, batch).await
    }

    async fn purge_expired(
        &self,
        scope: &TenantScope,
        idempotency_cutoff: DateTime<Utc>,
        errors_cutoff: DateTime<Utc>,
    ) -> StoreResult<u64> {
        operations::purge_expired(self, scope, idempotency_cutoff, errors_cutoff).await
    }

    async fn import_tenant_data(&self, scope: &TenantScope, data: &TenantData) -> StoreResult<()> {
        operations::import_tenant_data(self, scope, data).await
    }

    async fn idempotency_start(
        &self,
        scope: &TenantScope,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyStart> {
        conversations::idempotency_start(self, scope, key, request_hash, now).await
    }

    async fn idempotency_complete(
        &self,
        scope: &TenantScope,
        key: &str,
        response: &serde_json::Value,
    ) -> StoreResult<()> {
        conversations::idempotency_complete(self, scope, key, response).await
    }

    async fn idempotency_release(&self, scope: &TenantScope, key: &str) -> StoreResult<()> {
        conversations::idempotency_release(self, scope, key).await
    }
}

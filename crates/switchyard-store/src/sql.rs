//! The statements both backends share, and the [`Store`](crate::Store) implementation
//! built from them.
//!
//! The SQL is written once and is valid on PostgreSQL and SQLite alike (`$n` parameters,
//! row-value comparisons, `RETURNING`, `ON CONFLICT`). What differs — how a scoped
//! transaction starts (on PostgreSQL it sets `app.tenant_id` for row-level security),
//! serialising conversation creation for the limits, and naming constraint violations —
//! each backend provides as inherent methods that the implementation below calls. The
//! implementation is a macro rather than a generic over `sqlx::Database` because sqlx's
//! executor bounds make such generics unreadable; each expansion is plain concrete code.
//!
//! Every statement on a tenant-owned table names `tenant_id = $1` itself, whatever the
//! database enforces besides.

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
         t.agents_version AS t_agents_version, t.created_at AS t_created_at"
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

pub(crate) use {agent_cols, api_key_cols, principal_cols, tenant_cols, user_cols};

/// The statements of the hot paths — the conversation list, a conversation read, a history
/// load and a turn write — named so that the query-plan tests check exactly what runs.
pub mod statements {
    /// A tenant and one of its users, for authentication: `$1` tenant, `$2` user.
    pub const FIND_PRINCIPAL: &str = concat!(
        "SELECT ",
        principal_cols!(),
        ", CAST(NULL AS TEXT) AS password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
         WHERE u.tenant_id = $1 AND u.id = $2"
    );

    /// A user's conversations, latest activity first: `$1` tenant, `$2` user, `($3, $4)` the
    /// keyset position, `$5` the row count.
    pub const LIST_USER_CONVERSATIONS: &str = concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE tenant_id = $1 AND user_id = $2 \
         AND (last_activity, id) < ($3, $4) ORDER BY last_activity DESC, id DESC LIMIT $5"
    );

    /// A tenant's conversations, latest activity first: `$1` tenant, `($2, $3)` position,
    /// `$4` count.
    pub const LIST_ALL_CONVERSATIONS: &str = concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE tenant_id = $1 \
         AND (last_activity, id) < ($2, $3) ORDER BY last_activity DESC, id DESC LIMIT $4"
    );

    /// A conversation the scope may see: `$1` tenant, `$2` id, `$3` whether the scope is an
    /// admin, `$4` the scope's user.
    pub const VISIBLE_CONVERSATION: &str = concat!(
        "SELECT ",
        conversation_cols!(),
        " FROM conversations WHERE tenant_id = $1 AND id = $2 AND ($3 OR user_id = $4)"
    );

    /// The scope's own conversation with the last messages an agent needs as history (not
    /// the whole turns: their routing records are not sent anywhere), for a chat turn, in
    /// one statement: `$1` tenant, `$2` id, `$3` user, `$4` how many turns. One row per turn,
    /// oldest first (one row without a turn when there is none); no row when the
    /// conversation is not the user's.
    pub const CHAT_CONTEXT: &str = "SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, \
         c.last_agent_id, c.message_count, c.created_at, c.last_activity, t.id AS h_id, \
         t.user_message AS h_user_message, t.agent_response AS h_agent_response, t.created_at AS h_created_at \
         FROM conversations c LEFT JOIN (SELECT id, user_message, agent_response, created_at \
         FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 \
         ORDER BY created_at DESC, id DESC LIMIT $4) t ON 1 = 1 \
         WHERE c.tenant_id = $1 AND c.id = $2 AND c.user_id = $3 ORDER BY t.created_at, t.id";

    /// A conversation the scope may see with a page of its turns, oldest first, in one
    /// statement: `$1` tenant, `$2` id, `$3` whether the scope is an admin, `$4` the scope's
    /// user, `($5, $6)` the keyset position, `$7` how many turns.
    pub const CONVERSATION_WITH_TURNS: &str = concat!(
        "SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, \
         c.created_at, c.last_activity, ",
        joined_turn_cols!(),
        " FROM conversations c LEFT JOIN (SELECT ",
        turn_cols!(),
        " FROM conversation_messages WHERE tenant_id = $1 AND conversation_id = $2 \
         AND (created_at, id) > ($5, $6) ORDER BY created_at, id LIMIT $7) t ON 1 = 1 \
         WHERE c.tenant_id = $1 AND c.id = $2 AND ($3 OR c.user_id = $4) ORDER BY t.created_at, t.id"
    );

    /// The tenant's agents-version and its enabled agents, in one statement: `$1` tenant.
    /// One row per agent, by id (one row with null agent columns when there is none): what a
    /// routing index is built from, on every miss of the index cache.
    pub const ROUTABLE_AGENTS: &str = "SELECT t.agents_version AS t_agents_version, a.tenant_id, a.id, \
         a.name, a.description, a.kind, a.config, a.intents, a.keywords, a.examples, a.enabled, a.priority, \
         a.is_fallback, a.created_at, a.updated_at FROM tenants t LEFT JOIN agents a \
         ON a.tenant_id = $1 AND a.tenant_id = t.id AND a.enabled WHERE t.id = $1 ORDER BY a.id";

    /// The conversation update of a turn write: `$1` tenant, `$2` conversation, `$3` user,
    /// `$4` the turn's time, `$5` its intent, `$6` its agent.
    pub const UPDATE_CONVERSATION_FOR_TURN: &str = concat!(
        "UPDATE conversations SET \
         last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, \
         message_count = message_count + 1, \
         primary_intent = COALESCE(primary_intent, $5), \
         last_agent_id = COALESCE($6, last_agent_id) \
         WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING ",
        conversation_cols!()
    );

    /// PostgreSQL: the conversation update and the turn insert as one statement (one round
    /// trip), answering the updated conversation and the turn's id (the rest of the turn is
    /// what was written): `$1`–`$6` as [`UPDATE_CONVERSATION_FOR_TURN`], then `$7` the turn's id, `$8` the
    /// message, `$9` the answer, `$10` the intent's confidence, `$11` the routing, `$12` the
    /// latency, `$13` the method, `$14` the routing confidence, `$15` whether the fallback
    /// answered. No row when the conversation is not the user's.
    pub const WRITE_TURN: &str = concat!(
        "WITH c AS (UPDATE conversations SET \
         last_activity = CASE WHEN last_activity > $4 THEN last_activity ELSE $4 END, \
         message_count = message_count + 1, \
         primary_intent = COALESCE(primary_intent, $5), \
         last_agent_id = COALESCE($6, last_agent_id) \
         WHERE tenant_id = $1 AND id = $2 AND user_id = $3 RETURNING ",
        conversation_cols!(),
        "), t AS (INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
         intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
         routing_method, routing_confidence, fallback_used) \
         SELECT c.tenant_id, $7, c.id, $8, $9, $5, $10, $6, $11, $12, $4, $13, $14, $15 FROM c RETURNING id) \
         SELECT c.tenant_id, c.id, c.user_id, c.title, c.primary_intent, c.last_agent_id, c.message_count, \
         c.created_at, c.last_activity, t.id AS t_id FROM c CROSS JOIN t"
    );

    /// A new conversation's limits, each side counted only up to its limit: `$1` tenant,
    /// `$2` user, `$3` the per-user and `$4` the per-tenant limit. A limit check so costs at
    /// most the limit's index entries, however many conversations a tenant with a raised
    /// limit has. On PostgreSQL it is the body of `switchyard_count_for_limits` (migration
    /// 4), which [`WRITE_NEW_TURN`]'s function calls under the tenant's lock.
    pub const COUNT_FOR_LIMITS: &str = "SELECT \
         (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 AND user_id = $2 LIMIT $3) u), \
         (SELECT count(*) FROM (SELECT 1 FROM conversations WHERE tenant_id = $1 LIMIT $4) t)";

    /// A new conversation's row: `$1` tenant, `$2` id, `$3` user, `$4` its time (that of its
    /// first turn), `$16` its title.
    pub const INSERT_CONVERSATION: &str = "INSERT INTO conversations (tenant_id, id, user_id, title, \
         primary_intent, last_agent_id, message_count, created_at, last_activity) \
         VALUES ($1, $2, $3, $16, NULL, NULL, 0, $4, $4)";

    /// PostgreSQL: a new conversation with its first turn in one round trip, the function
    /// `switchyard_write_new_turn` (migration 4): `$1`–`$15` as [`WRITE_TURN`], `$16` the
    /// title, `$17`/`$18` the per-user/per-tenant limits, `$19` the tenant's advisory lock
    /// key. Under the lock it counts ([`COUNT_FOR_LIMITS`]), raises SQLSTATE `SYL01` with
    /// the message `per_user` or `per_tenant` at a limit, inserts
    /// ([`INSERT_CONVERSATION`]) and runs [`WRITE_TURN`]; the lock is held only while
    /// the function runs and commits, not across round trips.
    pub const WRITE_NEW_TURN: &str = "SELECT * FROM switchyard_write_new_turn(\
         $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::json, $12, $13, $14, $15, $16, $17, $18, $19)";

    /// Analytics (`$1` tenant, `$2`..`$3` the period): turns, conversations, mean routing
    /// confidence and fallback rate.
    pub const ANALYTICS_TOTALS: &str = "SELECT count(*), count(DISTINCT conversation_id), avg(routing_confidence), \
         avg(CAST(CASE WHEN fallback_used THEN 1 WHEN fallback_used IS NULL THEN NULL ELSE 0 END AS DOUBLE PRECISION)) \
         FROM conversation_messages WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3";

    /// Analytics: turns by intent.
    pub const ANALYTICS_BY_INTENT: &str = "SELECT intent_category, count(*) AS n FROM conversation_messages \
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
         GROUP BY intent_category ORDER BY n DESC, intent_category";

    /// Analytics: turns by the agent that answered, with its name.
    pub const ANALYTICS_BY_AGENT: &str = "SELECT m.selected_agent_id, max(a.name), count(*) FROM conversation_messages m \
         LEFT JOIN agents a ON a.tenant_id = m.tenant_id AND a.id = m.selected_agent_id \
         WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3 \
         AND m.selected_agent_id IS NOT NULL GROUP BY m.selected_agent_id";

    /// Analytics: failed agent calls by agent.
    pub const ANALYTICS_FAILED_CALLS: &str = "SELECT agent_id, max(agent_name), count(*) FROM agent_call_errors \
         WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 GROUP BY agent_id";

    /// Retention: deletes up to `$3` of the tenant's turns older than `$2`, oldest first,
    /// answering their conversations.
    pub const RETENTION_DELETE_TURNS: &str = "DELETE FROM conversation_messages WHERE tenant_id = $1 AND id IN \
         (SELECT id FROM conversation_messages WHERE tenant_id = $1 AND created_at < $2 \
          ORDER BY created_at LIMIT $3) RETURNING conversation_id";

    /// The turn insert: the columns in order.
    pub const INSERT_TURN: &str = concat!(
        "INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
         intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
         routing_method, routing_confidence, fallback_used) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING ",
        turn_cols!()
    );
}

use chrono::{DateTime, Utc};
use uuid::Uuid;

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

/// Implements [`Store`](crate::Store) for a backend type that provides, as inherent
/// methods: `read(tenant)` and `write(tenant)` (a scoped transaction), `global_read()` and
/// `global_write()` (a transaction outside any tenant), `enter_tenant(&mut tx, tenant)`
/// (switch a global transaction into a tenant), `write_existing_turn` and `write_new_turn`
/// (a chat turn's write), `count_for_limits`, `fetch_routable_agents`, `ping_impl()`,
/// `TENANT_SETTINGS_FOR_UPDATE` and `BACKEND`; and, in its module,
/// `fn map_err(sqlx::Error) -> StoreError`.
macro_rules! impl_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> $crate::Backend {
                Self::BACKEND
            }

            async fn ping(&self) -> StoreResult<()> {
                self.ping_impl().await
            }

            // ----- tenants -----

            async fn create_tenant(
                &self,
                new: NewTenant,
                first_admin: Option<NewUser>,
            ) -> StoreResult<(Tenant, Option<User>)> {
                let now = Ts(chrono::Utc::now());
                let id = TenantId::new();
                let mut tx = self.global_write().await?;
                let tenant: Tenant = sqlx::query_as::<_, TenantRow>(concat!(
                    "INSERT INTO tenants (id, slug, name, status, settings, agents_version, created_at) \
                     VALUES ($1, $2, $3, 'active', $4, 0, $5) RETURNING ",
                    tenant_cols!()
                ))
                .bind(id.as_uuid())
                .bind(&new.slug)
                .bind(&new.name)
                .bind(Json(&new.settings))
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?
                .try_into()?;
                let admin = match first_admin {
                    Some(user) => {
                        Self::enter_tenant(&mut tx, id).await?;
                        Some(insert_user(&mut tx, id, user, now).await?)
                    }
                    None => None,
                };
                tx.commit().await.map_err(map_err)?;
                Ok((tenant, admin))
            }

            async fn get_tenant(&self, id: TenantId) -> StoreResult<Tenant> {
                let mut tx = self.global_read().await?;
                let row = sqlx::query_as::<_, TenantRow>(concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1"))
                    .bind(id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn find_tenant_by_slug(&self, slug: &str) -> StoreResult<Tenant> {
                let mut tx = self.global_read().await?;
                let row = sqlx::query_as::<_, TenantRow>(concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE slug = $1"))
                    .bind(slug)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn list_tenants(&self, page: PageRequest) -> StoreResult<Page<Tenant>> {
                let mut tx = self.global_read().await?;
                let rows = sqlx::query_as::<_, TenantRow>(concat!(
                    "SELECT ",
                    tenant_cols!(),
                    " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2"
                ))
                .bind($crate::sql::id_after(&page))
                .bind(page.fetch_limit())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let tenants: Vec<Tenant> = convert_all(rows)?;
                Ok(Page::from_rows(tenants, &page, |t| Cursor::after_id(t.id)))
            }

            async fn update_tenant(&self, id: TenantId, patch: TenantPatch) -> StoreResult<Tenant> {
                let mut tx = self.global_write().await?;
                let settings = match &patch.settings {
                    None => None,
                    Some(changes) => {
                        // Merged under the row's lock, so that a concurrent patch's keys
                        // are not lost.
                        let (current,): (Json<TenantSettings>,) =
                            sqlx::query_as(Self::TENANT_SETTINGS_FOR_UPDATE)
                                .bind(id.as_uuid())
                                .fetch_one(&mut *tx)
                                .await
                                .map_err(map_err)?;
                        Some(current.0.merged(changes).map_err(|e| StoreError::Invalid(e.to_string()))?)
                    }
                };
                let row = sqlx::query_as::<_, TenantRow>(concat!(
                    "UPDATE tenants SET name = COALESCE($2, name), status = COALESCE($3, status), \
                     settings = COALESCE($4, settings) WHERE id = $1 RETURNING ",
                    tenant_cols!()
                ))
                .bind(id.as_uuid())
                .bind(patch.name.as_deref())
                .bind(patch.status.map(|s| s.as_str()))
                .bind(settings.as_ref().map(Json))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn delete_tenant(&self, id: TenantId) -> StoreResult<()> {
                self.delete_tenant_impl(id).await
            }

            async fn server_secret(
                &self,
                name: &str,
                generate: &(dyn Fn() -> String + Send + Sync),
            ) -> StoreResult<String> {
                let mut tx = self.global_write().await?;
                sqlx::query("INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
                    .bind(name)
                    .bind(generate())
                    .bind(Ts(chrono::Utc::now()))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let (value,): (String,) = sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(value)
            }

            // ----- authentication look-ups -----

            async fn find_principal(&self, tenant: TenantId, user: UserId) -> StoreResult<PrincipalRecord> {
                Ok(self.fetch_principal(tenant, user).await?.into_parts()?.0)
            }

            async fn find_principal_and_read(
                &self,
                tenant: TenantId,
                user: UserId,
                read: &$crate::FirstRead,
            ) -> StoreResult<$crate::PrincipalAndRead> {
                self.principal_and_read(tenant, user, read).await
            }

            async fn find_api_key(&self, tenant: TenantId, secret_hash: &[u8]) -> StoreResult<ApiKeyRecord> {
                let mut tx = self.read(tenant).await?;
                let row = sqlx::query_as::<_, ApiKeyAuthRow>(concat!(
                    "SELECT ",
                    principal_cols!(),
                    ", CAST(NULL AS TEXT) AS password_hash, k.id AS key_id, k.last_used_at AS key_last_used_at, \
                     k.revoked_at AS key_revoked_at \
                     FROM api_keys k JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id \
                     JOIN tenants t ON t.id = k.tenant_id \
                     WHERE k.tenant_id = $1 AND k.secret_hash = $2"
                ))
                .bind(tenant.as_uuid())
                .bind(secret_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let now = chrono::Utc::now();
                let stale = row.key_last_used_at.is_none_or(|t| now - t.0 > chrono::TimeDelta::minutes(1));
                if stale && row.key_revoked_at.is_none() {
                    let mut tx = self.write(tenant).await?;
                    sqlx::query("UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2")
                        .bind(tenant.as_uuid())
                        .bind(row.key_id)
                        .bind(Ts(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                }
                Ok(ApiKeyRecord {
                    key_id: row.key_id.into(),
                    revoked: row.key_revoked_at.is_some(),
                    principal: row.principal.into_parts()?.0,
                })
            }

            async fn find_login(&self, tenant_slug: &str, email: &str) -> StoreResult<LoginRecord> {
                let tenant = self.find_tenant_by_slug(tenant_slug).await?;
                let mut tx = self.read(tenant.id).await?;
                let row = sqlx::query_as::<_, PrincipalRow>(concat!(
                    "SELECT ",
                    principal_cols!(),
                    ", u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
                     WHERE u.tenant_id = $1 AND u.email = $2"
                ))
                .bind(tenant.id.as_uuid())
                .bind(email)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let (principal, password_hash) = row.into_parts()?;
                Ok(LoginRecord { principal, password_hash })
            }

            // ----- users -----

            async fn create_user(&self, scope: &TenantScope, new: NewUser) -> StoreResult<User> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let user = insert_user(&mut tx, scope.tenant_id(), new, Ts(chrono::Utc::now())).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(user)
            }

            async fn get_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<User> {
                require_admin(scope)?;
                let mut tx = self.read(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, UserRow>(concat!("SELECT ", user_cols!(), " FROM users WHERE tenant_id = $1 AND id = $2"))
                    .bind(scope.tenant_id().as_uuid())
                    .bind(id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn list_users(&self, scope: &TenantScope, page: PageRequest) -> StoreResult<Page<User>> {
                require_admin(scope)?;
                let mut tx = self.read(scope.tenant_id()).await?;
                let rows = sqlx::query_as::<_, UserRow>(concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind($crate::sql::id_after(&page))
                .bind(page.fetch_limit())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let users: Vec<User> = convert_all(rows)?;
                Ok(Page::from_rows(users, &page, |u| Cursor::after_id(u.id)))
            }

            async fn update_user(&self, scope: &TenantScope, id: UserId, patch: UserPatch) -> StoreResult<User> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, UserRow>(concat!(
                    "UPDATE users SET display_name = CASE WHEN $3 THEN $4 ELSE display_name END, \
                     role = COALESCE($5, role), status = COALESCE($6, status), \
                     password_hash = COALESCE($7, password_hash) \
                     WHERE tenant_id = $1 AND id = $2 RETURNING ",
                    user_cols!()
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind(id.as_uuid())
                .bind(patch.display_name.is_some())
                .bind(patch.display_name.flatten())
                .bind(patch.role.map(|r| r.as_str()))
                .bind(patch.status.map(|s| s.as_str()))
                .bind(patch.password_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn delete_user(&self, scope: &TenantScope, id: UserId) -> StoreResult<()> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let done = sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await.map_err(map_err)
            }

            // ----- API keys -----

            async fn create_api_key(&self, scope: &TenantScope, new: NewApiKey) -> StoreResult<ApiKey> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, ApiKeyRow>(concat!(
                    "INSERT INTO api_keys (tenant_id, id, user_id, name, prefix, secret_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                    api_key_cols!()
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind(new.id.as_uuid())
                .bind(new.user_id.as_uuid())
                .bind(&new.name)
                .bind(&new.prefix)
                .bind(&new.secret_hash)
                .bind(Ts(chrono::Utc::now()))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(row.into())
            }

            async fn list_api_keys(&self, scope: &TenantScope, page: PageRequest) -> StoreResult<Page<ApiKey>> {
                require_admin(scope)?;
                let mut tx = self.read(scope.tenant_id()).await?;
                let rows = sqlx::query_as::<_, ApiKeyRow>(concat!(
                    "SELECT ",
                    api_key_cols!(),
                    " FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind($crate::sql::id_after(&page))
                .bind(page.fetch_limit())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let keys: Vec<ApiKey> = rows.into_iter().map(Into::into).collect();
                Ok(Page::from_rows(keys, &page, |k| Cursor::after_id(k.id)))
            }

            async fn revoke_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> StoreResult<()> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(id.as_uuid())
                .bind(Ts(chrono::Utc::now()))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await.map_err(map_err)
            }

            // ----- agents -----

            async fn create_agent(&self, scope: &TenantScope, fields: AgentFields) -> StoreResult<Agent> {
                require_admin(scope)?;
                let now = Ts(chrono::Utc::now());
                let mut tx = self.write(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, AgentRow>(concat!(
                    "INSERT INTO agents (tenant_id, id, name, description, kind, config, intents, keywords, \
                     examples, enabled, priority, is_fallback, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING ",
                    agent_cols!()
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind(AgentId::new().as_uuid())
                .bind(&fields.name)
                .bind(&fields.description)
                .bind(fields.kind.as_str())
                .bind(Json(&fields.config))
                .bind(Json(&fields.intents))
                .bind(Json(&fields.keywords))
                .bind(Json(&fields.examples))
                .bind(fields.enabled)
                .bind(fields.priority)
                .bind(fields.is_fallback)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                bump_agents_version(&mut tx, scope.tenant_id()).await?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn get_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<Agent> {
                let mut tx = self.read(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, AgentRow>(concat!("SELECT ", agent_cols!(), " FROM agents WHERE tenant_id = $1 AND id = $2"))
                    .bind(scope.tenant_id().as_uuid())
                    .bind(id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn list_agents(&self, scope: &TenantScope, page: PageRequest) -> StoreResult<Page<Agent>> {
                let mut tx = self.read(scope.tenant_id()).await?;
                let rows = sqlx::query_as::<_, AgentRow>(concat!(
                    "SELECT ",
                    agent_cols!(),
                    " FROM agents WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind($crate::sql::id_after(&page))
                .bind(page.fetch_limit())
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                let agents: Vec<Agent> = convert_all(rows)?;
                Ok(Page::from_rows(agents, &page, |a| Cursor::after_id(a.id)))
            }

            async fn update_agent(&self, scope: &TenantScope, id: AgentId, fields: AgentFields) -> StoreResult<Agent> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let row = sqlx::query_as::<_, AgentRow>(concat!(
                    "UPDATE agents SET name = $3, description = $4, kind = $5, config = $6, intents = $7, \
                     keywords = $8, examples = $9, enabled = $10, priority = $11, is_fallback = $12, \
                     updated_at = $13 WHERE tenant_id = $1 AND id = $2 RETURNING ",
                    agent_cols!()
                ))
                .bind(scope.tenant_id().as_uuid())
                .bind(id.as_uuid())
                .bind(&fields.name)
                .bind(&fields.description)
                .bind(fields.kind.as_str())
                .bind(Json(&fields.config))
                .bind(Json(&fields.intents))
                .bind(Json(&fields.keywords))
                .bind(Json(&fields.examples))
                .bind(fields.enabled)
                .bind(fields.priority)
                .bind(fields.is_fallback)
                .bind(Ts(chrono::Utc::now()))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
                bump_agents_version(&mut tx, scope.tenant_id()).await?;
                tx.commit().await.map_err(map_err)?;
                row.try_into()
            }

            async fn delete_agent(&self, scope: &TenantScope, id: AgentId) -> StoreResult<()> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let done = sqlx::query("DELETE FROM agents WHERE tenant_id = $1 AND id = $2")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(id.as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                bump_agents_version(&mut tx, scope.tenant_id()).await?;
                tx.commit().await.map_err(map_err)
            }

            async fn routable_agents(&self, scope: &TenantScope) -> StoreResult<(i64, Vec<Agent>)> {
                let rows = self.fetch_routable_agents(scope).await?;
                let version = rows.first().map(|r| r.version).ok_or(StoreError::NotFound)?;
                Ok((version, convert_all(rows.into_iter().filter_map(|r| r.agent).collect())?))
            }

            // ----- conversations and turns -----

            async fn get_conversation(&self, scope: &TenantScope, id: ConversationId) -> StoreResult<Conversation> {
                let mut tx = self.read(scope.tenant_id()).await?;
                let conversation = visible_conversation(&mut tx, scope, id).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(conversation)
            }

            async fn list_conversations(
                &self,
                scope: &TenantScope,
                filter: ConversationFilter,
                page: PageRequest,
            ) -> StoreResult<Page<Conversation>> {
                let user = match filter {
                    ConversationFilter::Own => Some(scope.user_id()),
                    ConversationFilter::User(user) => {
                        require_admin(scope)?;
                        Some(user)
                    }
                    ConversationFilter::All => {
                        require_admin(scope)?;
                        None
                    }
                };
                let (at, after) = $crate::sql::desc_after(&page);
                let rows = self.fetch_conversations(scope, user, Ts(at), after, page.fetch_limit()).await?;
                Ok(ConversationRow::page(rows, &page))
            }

            async fn delete_conversation(&self, scope: &TenantScope, id: ConversationId) -> StoreResult<()> {
                let mut tx = self.write(scope.tenant_id()).await?;
                let done = sqlx::query("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2 AND ($3 OR user_id = $4)")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(id.as_uuid())
                    .bind(scope.is_admin())
                    .bind(scope.user_id().as_uuid())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.commit().await.map_err(map_err)
            }

            async fn list_turns(
                &self,
                scope: &TenantScope,
                id: ConversationId,
                page: PageRequest,
            ) -> StoreResult<(Conversation, Page<Turn>)> {
                let (at, after) = $crate::sql::asc_after(&page);
                let rows = self.fetch_conversation_with_turns(scope, id, Ts(at), after, page.fetch_limit()).await?;
                ConversationTurnRow::page(rows, &page)
            }

            async fn chat_context(
                &self,
                scope: &TenantScope,
                id: ConversationId,
                history: u32,
            ) -> StoreResult<(Conversation, Vec<HistoryTurn>)> {
                let rows = self.fetch_chat_context(scope, id, i64::from(history)).await?;
                ConversationHistoryRow::collect(rows)
            }

            async fn count_conversations(
                &self,
                scope: &TenantScope,
                max_per_user: i64,
                max_per_tenant: i64,
            ) -> StoreResult<(i64, i64)> {
                self.count_for_limits(scope, max_per_user.max(0), max_per_tenant.max(0)).await
            }

            async fn append_turn(&self, scope: &TenantScope, turn: NewTurn) -> StoreResult<(Conversation, Turn)> {
                match &turn.target {
                    TurnTarget::Existing(id) => self.write_existing_turn(scope, *id, &turn).await,
                    TurnTarget::New { .. } => self.write_new_turn(scope, &turn).await,
                }
            }

            async fn record_agent_error(&self, scope: &TenantScope, error: AgentCallError) -> StoreResult<()> {
                let mut tx = self.write(scope.tenant_id()).await?;
                sqlx::query(
                    "INSERT INTO agent_call_errors (tenant_id, id, agent_id, agent_name, kind, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(uuid::Uuid::now_v7())
                .bind(error.agent_id.as_uuid())
                .bind(&error.agent_name)
                .bind(&error.kind)
                .bind(Ts(error.at))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            // ----- operations -----

            async fn routing_analytics(
                &self,
                scope: &TenantScope,
                from: chrono::DateTime<chrono::Utc>,
                to: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<RoutingAnalytics> {
                require_admin(scope)?;
                let tenant = scope.tenant_id().as_uuid();
                let mut tx = self.read(scope.tenant_id()).await?;
                let (turns, conversations, mean_confidence, fallback_rate): (i64, i64, Option<f64>, Option<f64>) =
                    sqlx::query_as($crate::statements::ANALYTICS_TOTALS)
                    .bind(tenant)
                    .bind(Ts(from))
                    .bind(Ts(to))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let by_intent: Vec<(Option<String>, i64)> = sqlx::query_as($crate::statements::ANALYTICS_BY_INTENT)
                .bind(tenant)
                .bind(Ts(from))
                .bind(Ts(to))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let answered: Vec<(uuid::Uuid, Option<String>, i64)> = sqlx::query_as($crate::statements::ANALYTICS_BY_AGENT)
                .bind(tenant)
                .bind(Ts(from))
                .bind(Ts(to))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let failed: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as($crate::statements::ANALYTICS_FAILED_CALLS)
                .bind(tenant)
                .bind(Ts(from))
                .bind(Ts(to))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let latency_ms = Self::latency_percentiles(&mut tx, tenant, Ts(from), Ts(to)).await?;
                tx.commit().await.map_err(map_err)?;
                Ok($crate::sql::analytics(turns, conversations, by_intent, answered, failed, mean_confidence, fallback_rate, latency_ms))
            }

            async fn retention_batch(
                &self,
                scope: &TenantScope,
                cutoff: chrono::DateTime<chrono::Utc>,
                batch: u32,
            ) -> StoreResult<RetentionBatch> {
                require_admin(scope)?;
                let tenant = scope.tenant_id().as_uuid();
                let mut tx = self.write(scope.tenant_id()).await?;
                let emptied: Vec<(uuid::Uuid,)> = sqlx::query_as($crate::statements::RETENTION_DELETE_TURNS)
                .bind(tenant)
                .bind(Ts(cutoff))
                .bind(i64::from(batch))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
                let mut outcome = RetentionBatch { turns: emptied.len() as u64, conversations: 0 };
                let mut touched: Vec<uuid::Uuid> = emptied.into_iter().map(|(c,)| c).collect();
                touched.sort();
                touched.dedup();
                for conversation in touched {
                    sqlx::query(
                        "UPDATE conversations SET message_count = (SELECT count(*) FROM conversation_messages m \
                         WHERE m.tenant_id = $1 AND m.conversation_id = $2) WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant)
                    .bind(conversation)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    outcome.conversations += sqlx::query(
                        "DELETE FROM conversations WHERE tenant_id = $1 AND id = $2 AND message_count = 0",
                    )
                    .bind(tenant)
                    .bind(conversation)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                }
                tx.commit().await.map_err(map_err)?;
                Ok(outcome)
            }

            async fn purge_expired(
                &self,
                scope: &TenantScope,
                idempotency_cutoff: chrono::DateTime<chrono::Utc>,
                errors_cutoff: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<u64> {
                require_admin(scope)?;
                let mut tx = self.write(scope.tenant_id()).await?;
                let keys = sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND created_at < $2")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(Ts(idempotency_cutoff))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                let errors = sqlx::query("DELETE FROM agent_call_errors WHERE tenant_id = $1 AND created_at < $2")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(Ts(errors_cutoff))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                tx.commit().await.map_err(map_err)?;
                Ok(keys + errors)
            }

            async fn import_tenant_data(&self, scope: &TenantScope, data: &$crate::TenantData) -> StoreResult<()> {
                require_admin(scope)?;
                let tenant = scope.tenant_id().as_uuid();
                let mut tx = self.write(scope.tenant_id()).await?;
                for u in &data.users {
                    sqlx::query(
                        "INSERT INTO users (tenant_id, id, email, display_name, role, password_hash, status, created_at) \
                         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7)",
                    )
                    .bind(tenant)
                    .bind(u.id.as_uuid())
                    .bind(&u.email)
                    .bind(u.display_name.as_deref())
                    .bind(u.role.as_str())
                    .bind(u.status.as_str())
                    .bind(Ts(u.created_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                for a in &data.agents {
                    sqlx::query(
                        "INSERT INTO agents (tenant_id, id, name, description, kind, config, intents, keywords, \
                         examples, enabled, priority, is_fallback, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(tenant)
                    .bind(a.id.as_uuid())
                    .bind(&a.name)
                    .bind(&a.description)
                    .bind(a.kind.as_str())
                    .bind(Json(&a.config))
                    .bind(Json(&a.intents))
                    .bind(Json(&a.keywords))
                    .bind(Json(&a.examples))
                    .bind(a.enabled)
                    .bind(a.priority)
                    .bind(a.is_fallback)
                    .bind(Ts(a.created_at))
                    .bind(Ts(a.updated_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                if !data.agents.is_empty() {
                    bump_agents_version(&mut tx, scope.tenant_id()).await?;
                }
                for c in &data.conversations {
                    sqlx::query(
                        "INSERT INTO conversations (tenant_id, id, user_id, title, primary_intent, last_agent_id, \
                         message_count, created_at, last_activity) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(tenant)
                    .bind(c.id.as_uuid())
                    .bind(c.user_id.as_uuid())
                    .bind(c.title.as_deref())
                    .bind(c.primary_intent.as_deref())
                    .bind(c.last_agent_id.map(|a| a.as_uuid()))
                    .bind(c.message_count)
                    .bind(Ts(c.created_at))
                    .bind(Ts(c.last_activity))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                for t in &data.turns {
                    // The analytics columns come from the routing record they summarise.
                    let routing: serde_json::Value = serde_json::from_str(t.routing.get()).unwrap_or_default();
                    let method = routing.get("method").and_then(|m| m.as_str());
                    let confidence = routing.get("confidence").and_then(|c| c.as_f64());
                    let fallback = routing.get("fallback_used").and_then(|f| f.as_bool());
                    sqlx::query(
                        "INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, \
                         intent_category, intent_confidence, selected_agent_id, routing, latency_ms, created_at, \
                         routing_method, routing_confidence, fallback_used) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    )
                    .bind(tenant)
                    .bind(t.id.as_uuid())
                    .bind(t.conversation_id.as_uuid())
                    .bind(&t.user_message)
                    .bind(t.agent_response.as_deref())
                    .bind(t.intent_category.as_deref())
                    .bind(t.intent_confidence)
                    .bind(t.selected_agent_id.map(|a| a.as_uuid()))
                    .bind(Json(&routing))
                    .bind(t.latency_ms)
                    .bind(Ts(t.created_at))
                    .bind(method)
                    .bind(confidence)
                    .bind(fallback)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                // The counts are derived: they follow the turns actually imported, whatever
                // the file said.
                if !data.conversations.is_empty() {
                    sqlx::query(
                        "UPDATE conversations SET message_count = (SELECT count(*) FROM conversation_messages m \
                         WHERE m.tenant_id = conversations.tenant_id AND m.conversation_id = conversations.id) \
                         WHERE tenant_id = $1",
                    )
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)
            }

            // ----- idempotency -----

            async fn idempotency_start(
                &self,
                scope: &TenantScope,
                key: &str,
                request_hash: &[u8],
                now: chrono::DateTime<chrono::Utc>,
            ) -> StoreResult<IdempotencyStart> {
                let mut tx = self.write(scope.tenant_id()).await?;
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (tenant_id, user_id, key, request_hash, response, created_at) \
                     VALUES ($1, $2, $3, $4, NULL, $5) ON CONFLICT (tenant_id, user_id, key) DO NOTHING",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(scope.user_id().as_uuid())
                .bind(key)
                .bind(request_hash)
                .bind(Ts(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?
                .rows_affected();
                let outcome = if inserted == 1 {
                    IdempotencyStart::Started
                } else {
                    let (hash, response, created_at): (Vec<u8>, Option<Json<serde_json::Value>>, Ts) = sqlx::query_as(
                        "SELECT request_hash, response, created_at FROM idempotency_keys \
                         WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
                    )
                    .bind(scope.tenant_id().as_uuid())
                    .bind(scope.user_id().as_uuid())
                    .bind(key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    let age = now - created_at.0;
                    let abandoned = response.is_none() && age > $crate::IDEMPOTENCY_STALE;
                    if age > $crate::IDEMPOTENCY_TTL || abandoned {
                        sqlx::query(
                            "UPDATE idempotency_keys SET request_hash = $4, response = NULL, created_at = $5 \
                             WHERE tenant_id = $1 AND user_id = $2 AND key = $3",
                        )
                        .bind(scope.tenant_id().as_uuid())
                        .bind(scope.user_id().as_uuid())
                        .bind(key)
                        .bind(request_hash)
                        .bind(Ts(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                        IdempotencyStart::Started
                    } else if hash != request_hash {
                        IdempotencyStart::Mismatch
                    } else {
                        match response {
                            Some(Json(answer)) => IdempotencyStart::Completed(answer),
                            None => IdempotencyStart::InFlight,
                        }
                    }
                };
                tx.commit().await.map_err(map_err)?;
                Ok(outcome)
            }

            async fn idempotency_complete(&self, scope: &TenantScope, key: &str, response: &serde_json::Value) -> StoreResult<()> {
                let mut tx = self.write(scope.tenant_id()).await?;
                sqlx::query("UPDATE idempotency_keys SET response = $4 WHERE tenant_id = $1 AND user_id = $2 AND key = $3")
                    .bind(scope.tenant_id().as_uuid())
                    .bind(scope.user_id().as_uuid())
                    .bind(key)
                    .bind(Json(response))
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }

            async fn idempotency_release(&self, scope: &TenantScope, key: &str) -> StoreResult<()> {
                let mut tx = self.write(scope.tenant_id()).await?;
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND user_id = $2 AND key = $3 AND response IS NULL",
                )
                .bind(scope.tenant_id().as_uuid())
                .bind(scope.user_id().as_uuid())
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)
            }
        }

        fn require_admin(scope: &TenantScope) -> StoreResult<()> {
            if scope.is_admin() { Ok(()) } else { Err(StoreError::Forbidden) }
        }

        async fn insert_user(tx: &mut Tx, tenant: TenantId, new: NewUser, now: Ts) -> StoreResult<User> {
            sqlx::query_as::<_, UserRow>(concat!(
                "INSERT INTO users (tenant_id, id, email, display_name, role, password_hash, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING ",
                user_cols!()
            ))
            .bind(tenant.as_uuid())
            .bind(UserId::new().as_uuid())
            .bind(&new.email)
            .bind(new.display_name.as_deref())
            .bind(new.role.as_str())
            .bind(new.password_hash.as_deref())
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?
            .try_into()
        }

        async fn bump_agents_version(tx: &mut Tx, tenant: TenantId) -> StoreResult<()> {
            sqlx::query("UPDATE tenants SET agents_version = agents_version + 1 WHERE id = $1")
                .bind(tenant.as_uuid())
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
            Ok(())
        }

        /// The conversation if the scope may see it: members their own, admins any of the
        /// tenant's.
        async fn visible_conversation(tx: &mut Tx, scope: &TenantScope, id: ConversationId) -> StoreResult<Conversation> {
            Ok(sqlx::query_as::<_, ConversationRow>($crate::sql::statements::VISIBLE_CONVERSATION)
            .bind(scope.tenant_id().as_uuid())
            .bind(id.as_uuid())
            .bind(scope.is_admin())
            .bind(scope.user_id().as_uuid())
            .fetch_one(&mut **tx)
            .await
            .map_err(map_err)?
            .into())
        }

        #[derive(sqlx::FromRow)]
        struct ApiKeyAuthRow {
            #[sqlx(flatten)]
            principal: PrincipalRow,
            key_id: uuid::Uuid,
            key_last_used_at: Option<Ts>,
            key_revoked_at: Option<Ts>,
        }
    };
}

pub(crate) use impl_store;

/// What every expansion of [`impl_store`] needs in scope.
macro_rules! store_prelude {
    () => {
        use sqlx::types::Json;
        use switchyard_core::model::{
            Agent, AgentCallError, AgentFields, ApiKey, Conversation, HistoryTurn,
            IdempotencyStart, NewApiKey, NewTenant, NewTurn, NewUser, RetentionBatch,
            RoutingAnalytics, Tenant, TenantPatch, Turn, TurnTarget, User, UserPatch,
        };
        use switchyard_core::page::{Cursor, Page, PageRequest};
        use switchyard_core::settings::TenantSettings;
        use switchyard_core::{AgentId, ApiKeyId, ConversationId, TenantId, TenantScope, UserId};

        use $crate::rows::{
            AgentRow, ApiKeyRow, ConversationHistoryRow, ConversationRow, ConversationTurnRow,
            PrincipalRow, TenantRow, Ts, UserRow, convert_all,
        };
        use $crate::sql::{agent_cols, api_key_cols, principal_cols, tenant_cols, user_cols};
        use $crate::{
            ApiKeyRecord, ConversationFilter, LoginRecord, PrincipalRecord, StoreError, StoreResult,
        };
    };
}

pub(crate) use store_prelude;

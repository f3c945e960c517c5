//! Tenants and the server's secrets: the platform operator's.

use chrono::Utc;
use sqlx::types::Json;
use switchyard_core::TenantId;
use switchyard_core::model::{NewTenant, NewUser, Tenant, TenantPatch, TenantUsage, User};
use switchyard_core::page::{Cursor, Page, PageRequest};
use switchyard_core::settings::TenantSettings;

use super::{id_after, tenant_cols, users};
use crate::backend::{Args, SqlBackend, Tx};
use crate::rows::{TenantRow, convert_all};
use crate::{StoreError, StoreResult, TenantScope};

/// Creates a tenant, and its first admin when given, in one transaction.
pub(crate) async fn create<B: SqlBackend>(
    db: &B,
    new: NewTenant,
    first_admin: Option<NewUser>,
) -> StoreResult<(Tenant, Option<User>)> {
    let now = Utc::now();
    let id = TenantId::new();
    let mut tx = db.global_write().await?;
    let tenant: Tenant = tx
        .fetch_one::<TenantRow>(
            concat!(
                "INSERT INTO tenants (id, slug, name, status, settings, agents_version, created_at) \
                 VALUES ($1, $2, $3, 'active', $4, 0, $5) RETURNING ",
                tenant_cols!()
            ),
            Args::new()
                .bind(id)
                .bind(&new.slug)
                .bind(&new.name)
                .json(&new.settings)
                .bind(now),
        )
        .await?
        .try_into()?;
    let admin = match first_admin {
        Some(user) => {
            tx.enter_tenant(id).await?;
            Some(users::insert(&mut tx, id, user, now).await?)
        }
        None => None,
    };
    tx.commit().await?;
    Ok((tenant, admin))
}

/// Reads a tenant.
pub(crate) async fn get<B: SqlBackend>(db: &B, id: TenantId) -> StoreResult<Tenant> {
    let mut tx = db.global_read().await?;
    let row: TenantRow = tx
        .fetch_one(
            concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE id = $1"),
            Args::new().bind(id),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Reads a tenant by slug.
pub(crate) async fn find_by_slug<B: SqlBackend>(db: &B, slug: &str) -> StoreResult<Tenant> {
    let mut tx = db.global_read().await?;
    let row: TenantRow = tx
        .fetch_one(
            concat!("SELECT ", tenant_cols!(), " FROM tenants WHERE slug = $1"),
            Args::new().bind(slug),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Lists tenants, oldest first.
pub(crate) async fn list<B: SqlBackend>(db: &B, page: PageRequest) -> StoreResult<Page<Tenant>> {
    let mut tx = db.global_read().await?;
    let rows: Vec<TenantRow> = tx
        .fetch_all(
            concat!(
                "SELECT ",
                tenant_cols!(),
                " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2"
            ),
            Args::new().bind(id_after(&page)).bind(page.fetch_limit()),
        )
        .await?;
    tx.commit().await?;
    let tenants: Vec<Tenant> = convert_all(rows)?;
    Ok(Page::from_rows(tenants, &page, |t| Cursor::after_id(t.id)))
}

/// Changes a tenant's name, status or settings; settings merge under the row's lock, so
/// that a concurrent patch's keys are not lost.
pub(crate) async fn update<B: SqlBackend>(
    db: &B,
    id: TenantId,
    patch: TenantPatch,
) -> StoreResult<Tenant> {
    let mut tx = db.global_write().await?;
    let settings = match &patch.settings {
        None => None,
        Some(changes) => {
            let (current,): (Json<TenantSettings>,) = tx
                .fetch_one(B::TENANT_SETTINGS_FOR_UPDATE, Args::new().bind(id))
                .await?;
            Some(
                current
                    .0
                    .merged(changes)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            )
        }
    };
    let row: TenantRow = tx
        .fetch_one(
            concat!(
                "UPDATE tenants SET name = COALESCE($2, name), status = COALESCE($3, status), \
                 settings = COALESCE($4, settings) WHERE id = $1 RETURNING ",
                tenant_cols!()
            ),
            Args::new()
                .bind(id)
                .bind(patch.name.as_deref())
                .bind(patch.status.map(|s| s.as_str()))
                .json_or_null(settings.as_ref()),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Erases a tenant: the foreign keys cascade from it to everything it owns (referential
/// actions are not subject to row-level security).
pub(crate) async fn delete<B: SqlBackend>(db: &B, id: TenantId) -> StoreResult<()> {
    let mut tx = db.global_write().await?;
    let done = tx
        .execute("DELETE FROM tenants WHERE id = $1", Args::new().bind(id))
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await
}

/// The server secret `name`, made by `generate` and kept if it does not exist yet.
pub(crate) async fn server_secret<B: SqlBackend>(
    db: &B,
    name: &str,
    generate: &(dyn Fn() -> String + Send + Sync),
) -> StoreResult<String> {
    let mut tx = db.secrets_write().await?;
    tx.execute(
        "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
        Args::new().bind(name).bind(generate()).bind(Utc::now()),
    )
    .await?;
    let (value,): (String,) = tx
        .fetch_one(
            "SELECT value FROM server_secrets WHERE name = $1",
            Args::new().bind(name),
        )
        .await?;
    tx.commit().await?;
    Ok(value)
}

/// How many rows of each kind the tenant holds, read in the tenant's scope.
pub(crate) async fn usage<B: SqlBackend>(db: &B, id: TenantId) -> StoreResult<TenantUsage> {
    let mut tx = db.read(id).await?;
    let counts: (i64, i64, i64, i64, i64, i64, i64) = tx
        .fetch_one(
            "SELECT (SELECT count(*) FROM users WHERE tenant_id = $1), \
                    (SELECT count(*) FROM api_keys WHERE tenant_id = $1), \
                    (SELECT count(*) FROM agents WHERE tenant_id = $1), \
                    (SELECT count(*) FROM conversations WHERE tenant_id = $1), \
                    (SELECT count(*) FROM conversation_messages WHERE tenant_id = $1), \
                    (SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1), \
                    (SELECT count(*) FROM agent_call_errors WHERE tenant_id = $1)",
            Args::new().bind(id),
        )
        .await?;
    tx.commit().await?;
    let (users, api_keys, agents, conversations, turns, idempotency_keys, agent_call_errors) =
        counts;
    Ok(TenantUsage {
        users,
        api_keys,
        agents,
        conversations,
        turns,
        idempotency_keys,
        agent_call_errors,
    })
}

/// How many of `kind` the scope's tenant has.
pub(crate) async fn count_owned<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    kind: crate::Owned,
) -> StoreResult<i64> {
    let sql = match kind {
        crate::Owned::Agents => "SELECT count(*) FROM agents WHERE tenant_id = $1",
        crate::Owned::Users => "SELECT count(*) FROM users WHERE tenant_id = $1",
        crate::Owned::ApiKeys => "SELECT count(*) FROM api_keys WHERE tenant_id = $1",
    };
    let mut tx = db.read(scope.tenant_id()).await?;
    let (n,): (i64,) = tx
        .fetch_one(sql, Args::new().bind(scope.tenant_id()))
        .await?;
    tx.commit().await?;
    Ok(n)
}

//! A tenant's agents: admins write them, members read them. Every change bumps the tenant's
//! `agents_version` in the same transaction, which is how every replica's routing cache
//! learns of it.

use chrono::Utc;
use switchyard_core::model::{Agent, AgentFields};
use switchyard_core::page::{Cursor, Page, PageRequest};
use switchyard_core::{AgentId, TenantId};

use super::{agent_cols, id_after, require_admin};
use crate::backend::{Args, SqlBackend, Tx};
use crate::rows::{AgentRow, convert_all};
use crate::{StoreError, StoreResult, TenantScope};

/// Marks the tenant's agents as changed.
pub(crate) async fn bump_version<T: Tx>(tx: &mut T, tenant: TenantId) -> StoreResult<()> {
    tx.execute(
        "UPDATE tenants SET agents_version = agents_version + 1 WHERE id = $1",
        Args::new().bind(tenant),
    )
    .await?;
    Ok(())
}

/// An agent's fields as statement parameters `$3` to `$12`.
fn fields_args(args: Args, fields: &AgentFields) -> Args {
    args.bind(&fields.name)
        .bind(&fields.description)
        .bind(fields.kind.as_str())
        .json(&fields.config)
        .json(&fields.intents)
        .json(&fields.keywords)
        .json(&fields.examples)
        .bind(fields.enabled)
        .bind(fields.priority)
        .bind(fields.is_fallback)
}

/// Creates an agent in the scope's tenant.
pub(crate) async fn create<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    fields: AgentFields,
) -> StoreResult<Agent> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let args = Args::new().bind(scope.tenant_id()).bind(AgentId::new());
    let row: AgentRow = tx
        .fetch_one(
            concat!(
                "INSERT INTO agents (tenant_id, id, name, description, kind, config, intents, keywords, \
                 examples, enabled, priority, is_fallback, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING ",
                agent_cols!()
            ),
            fields_args(args, &fields).bind(Utc::now()),
        )
        .await?;
    bump_version(&mut tx, scope.tenant_id()).await?;
    tx.commit().await?;
    row.try_into()
}

/// Reads an agent of the scope's tenant.
pub(crate) async fn get<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: AgentId,
) -> StoreResult<Agent> {
    let mut tx = db.read(scope.tenant_id()).await?;
    let row: AgentRow = tx
        .fetch_one(
            concat!(
                "SELECT ",
                agent_cols!(),
                " FROM agents WHERE tenant_id = $1 AND id = $2"
            ),
            Args::new().bind(scope.tenant_id()).bind(id),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Lists the tenant's agents, oldest first.
pub(crate) async fn list<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    page: PageRequest,
) -> StoreResult<Page<Agent>> {
    let mut tx = db.read(scope.tenant_id()).await?;
    let rows: Vec<AgentRow> = tx
        .fetch_all(
            concat!(
                "SELECT ",
                agent_cols!(),
                " FROM agents WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ),
            Args::new()
                .bind(scope.tenant_id())
                .bind(id_after(&page))
                .bind(page.fetch_limit()),
        )
        .await?;
    tx.commit().await?;
    let agents: Vec<Agent> = convert_all(rows)?;
    Ok(Page::from_rows(agents, &page, |a| Cursor::after_id(a.id)))
}

/// Replaces an agent's fields.
pub(crate) async fn update<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: AgentId,
    fields: AgentFields,
) -> StoreResult<Agent> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let args = Args::new().bind(scope.tenant_id()).bind(id);
    let row: AgentRow = tx
        .fetch_one(
            concat!(
                "UPDATE agents SET name = $3, description = $4, kind = $5, config = $6, intents = $7, \
                 keywords = $8, examples = $9, enabled = $10, priority = $11, is_fallback = $12, \
                 updated_at = $13 WHERE tenant_id = $1 AND id = $2 RETURNING ",
                agent_cols!()
            ),
            fields_args(args, &fields).bind(Utc::now()),
        )
        .await?;
    bump_version(&mut tx, scope.tenant_id()).await?;
    tx.commit().await?;
    row.try_into()
}

/// Deletes an agent; its turns keep their record of it.
pub(crate) async fn delete<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: AgentId,
) -> StoreResult<()> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let done = tx
        .execute(
            "DELETE FROM agents WHERE tenant_id = $1 AND id = $2",
            Args::new().bind(scope.tenant_id()).bind(id),
        )
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    bump_version(&mut tx, scope.tenant_id()).await?;
    tx.commit().await
}

/// Every enabled agent of the tenant, with the agents-version read in the same statement.
pub(crate) async fn routable<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
) -> StoreResult<(i64, Vec<Agent>)> {
    let rows = db.fetch_routable_agents(scope).await?;
    let version = rows
        .first()
        .map(|r| r.version)
        .ok_or(StoreError::NotFound)?;
    Ok((
        version,
        convert_all(rows.into_iter().filter_map(|r| r.agent).collect())?,
    ))
}

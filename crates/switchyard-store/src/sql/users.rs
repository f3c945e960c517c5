//! Users and API keys (admins), and the look-ups that authenticate them.

use chrono::{DateTime, TimeDelta, Utc};
use switchyard_core::model::{ApiKey, NewApiKey, NewUser, User, UserPatch};
use switchyard_core::page::{Cursor, Page, PageRequest};
use switchyard_core::{ApiKeyId, TenantId, UserId};

use super::{api_key_cols, id_after, principal_cols, require_admin, tenants, user_cols};
use crate::backend::{Args, SqlBackend, Tx};
use crate::rows::{ApiKeyRow, PrincipalRow, Ts, UserRow, convert_all};
use crate::{ApiKeyRecord, LoginRecord, StoreError, StoreResult, TenantScope};

/// Inserts a user of `tenant` in an open transaction.
pub(crate) async fn insert<T: Tx>(
    tx: &mut T,
    tenant: TenantId,
    new: NewUser,
    now: DateTime<Utc>,
) -> StoreResult<User> {
    tx.fetch_one::<UserRow>(
        concat!(
            "INSERT INTO users (tenant_id, id, email, display_name, role, password_hash, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7) RETURNING ",
            user_cols!()
        ),
        Args::new()
            .bind(tenant)
            .bind(UserId::new())
            .bind(new.email)
            .bind(new.display_name)
            .bind(new.role.as_str())
            .bind(new.password_hash)
            .bind(now),
    )
    .await?
    .try_into()
}

/// Creates a user in the scope's tenant.
pub(crate) async fn create<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    new: NewUser,
) -> StoreResult<User> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let user = insert(&mut tx, scope.tenant_id(), new, Utc::now()).await?;
    tx.commit().await?;
    Ok(user)
}

/// Reads a user of the scope's tenant.
pub(crate) async fn get<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: UserId,
) -> StoreResult<User> {
    require_admin(scope)?;
    let mut tx = db.read(scope.tenant_id()).await?;
    let row: UserRow = tx
        .fetch_one(
            concat!(
                "SELECT ",
                user_cols!(),
                " FROM users WHERE tenant_id = $1 AND id = $2"
            ),
            Args::new().bind(scope.tenant_id()).bind(id),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Lists the scope's tenant's users, oldest first.
pub(crate) async fn list<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    page: PageRequest,
) -> StoreResult<Page<User>> {
    require_admin(scope)?;
    let mut tx = db.read(scope.tenant_id()).await?;
    let rows: Vec<UserRow> = tx
        .fetch_all(
            concat!(
                "SELECT ",
                user_cols!(),
                " FROM users WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            ),
            Args::new()
                .bind(scope.tenant_id())
                .bind(id_after(&page))
                .bind(page.fetch_limit()),
        )
        .await?;
    tx.commit().await?;
    let users: Vec<User> = convert_all(rows)?;
    Ok(Page::from_rows(users, &page, |u| Cursor::after_id(u.id)))
}

/// Changes a user of the scope's tenant.
pub(crate) async fn update<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: UserId,
    patch: UserPatch,
) -> StoreResult<User> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let row: UserRow = tx
        .fetch_one(
            concat!(
                "UPDATE users SET display_name = CASE WHEN $3 THEN $4 ELSE display_name END, \
                 role = COALESCE($5, role), status = COALESCE($6, status), \
                 password_hash = COALESCE($7, password_hash), \
                 tokens_valid_after = CASE WHEN $7 IS NULL THEN tokens_valid_after ELSE $8 END \
                 WHERE tenant_id = $1 AND id = $2 RETURNING ",
                user_cols!()
            ),
            Args::new()
                .bind(scope.tenant_id())
                .bind(id)
                .bind(patch.display_name.is_some())
                .bind(patch.display_name.flatten())
                .bind(patch.role.map(|r| r.as_str()))
                .bind(patch.status.map(|s| s.as_str()))
                .bind(patch.password_hash)
                // A new password revokes the tokens issued before it.
                .bind(Utc::now()),
        )
        .await?;
    tx.commit().await?;
    row.try_into()
}

/// Deletes a user of the scope's tenant; their conversations, keys and records go with
/// them (the foreign keys cascade).
pub(crate) async fn delete<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: UserId,
) -> StoreResult<()> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let done = tx
        .execute(
            "DELETE FROM users WHERE tenant_id = $1 AND id = $2",
            Args::new().bind(scope.tenant_id()).bind(id),
        )
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await
}

/// Stores a new API key for a user of the scope's tenant.
pub(crate) async fn create_api_key<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    new: NewApiKey,
) -> StoreResult<ApiKey> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let row: ApiKeyRow = tx
        .fetch_one(
            concat!(
                "INSERT INTO api_keys (tenant_id, id, user_id, name, prefix, secret_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
                api_key_cols!()
            ),
            Args::new()
                .bind(scope.tenant_id())
                .bind(new.id)
                .bind(new.user_id)
                .bind(new.name)
                .bind(new.prefix)
                .bind(new.secret_hash)
                .bind(Utc::now()),
        )
        .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// Lists the tenant's keys that are not revoked, oldest first.
pub(crate) async fn list_api_keys<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    page: PageRequest,
) -> StoreResult<Page<ApiKey>> {
    require_admin(scope)?;
    let mut tx = db.read(scope.tenant_id()).await?;
    let rows: Vec<ApiKeyRow> = tx
        .fetch_all(
            concat!(
                "SELECT ",
                api_key_cols!(),
                " FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL AND id > $2 \
                 ORDER BY id LIMIT $3"
            ),
            Args::new()
                .bind(scope.tenant_id())
                .bind(id_after(&page))
                .bind(page.fetch_limit()),
        )
        .await?;
    tx.commit().await?;
    let keys: Vec<ApiKey> = rows.into_iter().map(Into::into).collect();
    Ok(Page::from_rows(keys, &page, |k| Cursor::after_id(k.id)))
}

/// Revokes a key of the scope's tenant (it keeps its row).
pub(crate) async fn revoke_api_key<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    id: ApiKeyId,
) -> StoreResult<()> {
    require_admin(scope)?;
    let mut tx = db.write(scope.tenant_id()).await?;
    let done = tx
        .execute(
            "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            Args::new()
                .bind(scope.tenant_id())
                .bind(id)
                .bind(Utc::now()),
        )
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await
}

/// Revokes the tokens the scope's own user was issued until `at`.
pub(crate) async fn revoke_own_tokens<B: SqlBackend>(
    db: &B,
    scope: &TenantScope,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let mut tx = db.write(scope.tenant_id()).await?;
    let done = tx
        .execute(
            "UPDATE users SET tokens_valid_after = $3 WHERE tenant_id = $1 AND id = $2",
            Args::new()
                .bind(scope.tenant_id())
                .bind(scope.user_id())
                .bind(at),
        )
        .await?;
    if done == 0 {
        return Err(StoreError::NotFound);
    }
    tx.commit().await
}

/// A key found by its hash, with its user and tenant.
#[derive(sqlx::FromRow)]
struct ApiKeyAuthRow {
    #[sqlx(flatten)]
    principal: PrincipalRow,
    key_id: uuid::Uuid,
    key_last_used_at: Option<Ts>,
    key_revoked_at: Option<Ts>,
}

/// The API key with this hash in the tenant the key names, with its user; records its use
/// at most once a minute.
pub(crate) async fn find_api_key<B: SqlBackend>(
    db: &B,
    tenant: TenantId,
    secret_hash: &[u8],
) -> StoreResult<ApiKeyRecord> {
    let mut tx = db.read(tenant).await?;
    let row: ApiKeyAuthRow = tx
        .fetch_one(
            concat!(
                "SELECT ",
                principal_cols!(),
                ", CAST(NULL AS TEXT) AS password_hash, k.id AS key_id, k.last_used_at AS key_last_used_at, \
                 k.revoked_at AS key_revoked_at \
                 FROM api_keys k JOIN users u ON u.tenant_id = k.tenant_id AND u.id = k.user_id \
                 JOIN tenants t ON t.id = k.tenant_id \
                 WHERE k.tenant_id = $1 AND k.secret_hash = $2"
            ),
            Args::new().bind(tenant).bind(secret_hash),
        )
        .await?;
    tx.commit().await?;
    let now = Utc::now();
    let stale = row
        .key_last_used_at
        .is_none_or(|t| now - t.0 > TimeDelta::minutes(1));
    if stale && row.key_revoked_at.is_none() {
        let mut tx = db.write(tenant).await?;
        tx.execute(
            "UPDATE api_keys SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2",
            Args::new().bind(tenant).bind(row.key_id).bind(now),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(ApiKeyRecord {
        key_id: row.key_id.into(),
        revoked: row.key_revoked_at.is_some(),
        principal: row.principal.into_parts()?.0,
    })
}

/// The user of the tenant with this e-mail address, with the password hash, for a login.
pub(crate) async fn find_login<B: SqlBackend>(
    db: &B,
    tenant_slug: &str,
    email: &str,
) -> StoreResult<LoginRecord> {
    let tenant = tenants::find_by_slug(db, tenant_slug).await?;
    let mut tx = db.read(tenant.id).await?;
    let row: PrincipalRow = tx
        .fetch_one(
            concat!(
                "SELECT ",
                principal_cols!(),
                ", u.password_hash FROM users u JOIN tenants t ON t.id = u.tenant_id \
                 WHERE u.tenant_id = $1 AND u.email = $2"
            ),
            Args::new().bind(tenant.id).bind(email),
        )
        .await?;
    tx.commit().await?;
    let (principal, password_hash) = row.into_parts()?;
    Ok(LoginRecord {
        principal,
        password_hash,
    })
}

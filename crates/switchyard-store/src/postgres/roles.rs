//! The application role: created when missing, given exactly the privileges the server
//! needs, and checked before the server uses a pool.

use sqlx::{PgConnection, PgPool};

use super::map_err;
use crate::{StoreError, StoreResult};

/// The role every pooled connection runs as.
pub const APP_ROLE: &str = "switchyard_app";

/// The tables the application role reads and writes. It gets no `TRUNCATE`, `REFERENCES`
/// or `TRIGGER`, and nothing on [`OWNER_TABLES`].
const APP_TABLES: &str = "tenants, users, api_keys, agents, conversations, \
                          conversation_messages, idempotency_keys, agent_call_errors";

/// The tables the application role may not touch at all: the JWT signing secret the server
/// generates is read as the owner, at start, so that no statement the role runs (a
/// mistake, an injection) can read it and sign tokens for any tenant.
const OWNER_TABLES: &str = "switchyard_migrations, server_secrets";

/// Creates the application role if missing (`NOLOGIN`: it is reached by `SET ROLE` from
/// the owner's connection, or given `LOGIN` by an operator for the two-URL form), and
/// refuses a pre-existing one that could bypass row-level security.
pub(super) async fn ensure_app_role(conn: &mut PgConnection) -> StoreResult<()> {
    // Several databases of one cluster (tests, or tenants' installations) may create the
    // role at the same moment; whoever loses the race finds it made.
    sqlx::raw_sql(
        "DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchyard_app') THEN
                CREATE ROLE switchyard_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END
        $$",
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("42501") => StoreError::Config(format!(
            "the role `{APP_ROLE}` does not exist and the migrating user may not create it: create it \
             (CREATE ROLE {APP_ROLE} NOLOGIN NOBYPASSRLS) or migrate as a user with CREATEROLE"
        )),
        other => map_err(other),
    })?;
    let (superuser, bypass): (bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'switchyard_app'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    if superuser || bypass {
        return Err(StoreError::Config(format!(
            "the role `{APP_ROLE}` is a superuser or has BYPASSRLS: row-level security would not apply \
             (ALTER ROLE {APP_ROLE} NOSUPERUSER NOBYPASSRLS)"
        )));
    }
    Ok(())
}

/// Grants the application role what it needs and nothing more; run after every migration
/// run, so tables added later are covered and hand-made grants are undone.
pub(super) async fn grant_app_privileges(conn: &mut PgConnection) -> StoreResult<()> {
    // One transaction: servers using the role never see it between the revoke and the grant.
    let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
    let statements = [
        "GRANT USAGE ON SCHEMA public TO switchyard_app".to_string(),
        format!("REVOKE ALL ON TABLE {APP_TABLES}, {OWNER_TABLES} FROM switchyard_app"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {APP_TABLES} TO switchyard_app"),
    ];
    for statement in statements {
        // Built only from the constants above.
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    // In the one-URL form the owner's connections switch to the application role, which
    // needs membership (a superuser needs none; a user without CREATEROLE cannot grant it,
    // and then needs the two-URL form).
    sqlx::raw_sql(
        "DO $$
        BEGIN
            IF NOT pg_has_role(current_user, 'switchyard_app', 'MEMBER') THEN
                EXECUTE format('GRANT switchyard_app TO %I', current_user);
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'cannot grant switchyard_app to %', current_user;
        END
        $$",
    )
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}

/// Refuses to serve from a pool whose connections could see past row-level security: a
/// superuser, a role with `BYPASSRLS`, or the tables' owner. The store runs it on its pool
/// before serving.
pub async fn check_serving_role(pool: &PgPool) -> StoreResult<()> {
    let (role, superuser, bypass, owns): (String, bool, bool, bool) = sqlx::query_as(
        "SELECT r.rolname::text, r.rolsuper, r.rolbypassrls, \
                EXISTS (SELECT 1 FROM pg_tables t WHERE t.tableowner = r.rolname AND t.tablename = 'conversations') \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .map_err(map_err)?;
    if superuser || bypass || owns {
        return Err(StoreError::Config(format!(
            "the server's database role `{role}` is a superuser, has BYPASSRLS or owns the tables: \
             row-level security would not hold; serve as `{APP_ROLE}`"
        )));
    }
    Ok(())
}

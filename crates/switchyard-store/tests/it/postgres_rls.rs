//! PostgreSQL only: what the database itself enforces, checked as the application role
//! the server runs as — row-level security with no tenant set, the policy on writes, the
//! composite foreign keys, the privileges — plus the catalog and the hot query plans.

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use switchyard_store::postgres::{APP_ROLE, PgStore, check_serving_role};
use switchyard_store::{OperatorScope, Store, StoreConfig, StoreError, testing};

use crate::common::{TENANT_TABLES, agent, start_conversation, tenant};

/// The concrete PostgreSQL store of this test process's database, with `connections`
/// pooled connections; `None` when PostgreSQL is skipped.
async fn pg(connections: u32) -> Option<(Arc<dyn Store>, OperatorScope, PgPool, String)> {
    let url = testing::postgres_database_url().await?;
    let mut config = StoreConfig::new(&url);
    config.max_connections = connections;
    let (store, operator) = PgStore::open(&config).await.unwrap();
    let pool = store.pool().clone();
    Some((Arc::new(store), operator, pool, url))
}

/// The owner's connection (the test user, a superuser), for setting up and inspecting.
async fn owner(url: &str) -> sqlx::PgConnection {
    url.parse::<PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn sql_state(err: sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.code().map(|c| c.to_string()).unwrap_or_default(),
        other => panic!("expected a database error, got {other}"),
    }
}

#[tokio::test]
async fn the_pool_runs_as_the_application_role() {
    let Some((_, _, pool, _)) = pg(2).await else {
        return;
    };
    let (user, superuser, bypass): (String, bool, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(user, APP_ROLE);
    assert!(!superuser && !bypass);
}

#[tokio::test]
async fn with_no_tenant_set_every_tenant_table_reads_empty() {
    let Some((store, operator, pool, url)) = pg(1).await else {
        return;
    };
    // Data in every table, for two tenants, through a pool of one connection: the same
    // connection then reads with no tenant set.
    for _ in 0..2 {
        let a = tenant(&store, &operator).await;
        store
            .create_agent(&a.admin, agent("billing"))
            .await
            .unwrap();
        start_conversation(&store, &a.member, "hello").await;
        store
            .idempotency_start(&a.member, "k", b"h", chrono::Utc::now())
            .await
            .unwrap();
        store
            .create_api_key(
                &a.admin,
                switchyard_core::model::NewApiKey {
                    id: Default::default(),
                    user_id: a.member.user_id(),
                    name: "k".into(),
                    prefix: "sy_000000000".into(),
                    secret_hash: rand::random::<[u8; 32]>().to_vec(),
                },
            )
            .await
            .unwrap();
        store
            .record_agent_error(
                &a.member,
                switchyard_core::model::AgentCallError {
                    agent_id: switchyard_core::AgentId::new(),
                    agent_name: "billing".into(),
                    kind: "failed".into(),
                    at: chrono::Utc::now(),
                },
            )
            .await
            .unwrap();
    }
    // Every table has rows (the owner, who bypasses row security, sees them), so that an
    // empty read below means the policy hid them.
    let mut as_owner = owner(&url).await;
    for table in TENANT_TABLES {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut as_owner)
                .await
                .unwrap();
        assert!(
            n >= 2,
            "{table} has {n} rows: the check below would prove nothing"
        );
    }
    let mut conn = pool.acquire().await.unwrap();
    for table in TENANT_TABLES {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table} shows rows with no tenant set");
    }
    // Nor in a transaction whose setting is the empty string (what a finished local
    // setting leaves behind).
    let (n,): (i64,) = sqlx::query_as(
        "WITH s AS (SELECT set_config('app.tenant_id', '', true)) SELECT count(*) FROM conversations, s",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_policy_refuses_rows_of_another_tenant() {
    let Some((store, operator, pool, _)) = pg(2).await else {
        return;
    };
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let (b_conversation, _) = start_conversation(&store, &b.member, "b's").await;

    // Inserting a row that names another tenant fails on the policy.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO agents (tenant_id, id, name, kind, created_at, updated_at) VALUES ($1, $2, 'x', 'echo', now(), now())",
    )
    .bind(b.tenant.id.as_uuid())
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        sql_state(err),
        "42501",
        "new row violates row-level security policy"
    );
    tx.rollback().await.unwrap();

    // Moving a row to another tenant fails on the policy too.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    start_conversation(&store, &a.member, "a's").await;
    let err = sqlx::query("UPDATE conversations SET tenant_id = $2 WHERE tenant_id = $1")
        .bind(a.tenant.id.as_uuid())
        .bind(b.tenant.id.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(sql_state(err), "42501");
    tx.rollback().await.unwrap();

    // A turn of tenant A that points at tenant B's conversation fails on the foreign key.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let err = sqlx::query(
        "INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, created_at) \
         VALUES ($1, $2, $3, 'sneaky', now())",
    )
    .bind(a.tenant.id.as_uuid())
    .bind(uuid::Uuid::now_v7())
    .bind(b_conversation.as_uuid())
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(sql_state(err), "23503", "foreign key violation");
    tx.rollback().await.unwrap();

    // Reading with A's tenant set never shows B's rows, even when asked for by id.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(a.tenant.id.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM conversations WHERE tenant_id = $1")
        .bind(b.tenant.id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 0);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn the_application_role_cannot_truncate_or_reach_the_migrations() {
    let Some((_, _, pool, _)) = pg(1).await else {
        return;
    };
    for table in TENANT_TABLES.iter().chain(&["tenants"]) {
        let err = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("TRUNCATE {table} CASCADE")))
            .execute(&pool)
            .await
            .unwrap_err();
        assert_eq!(sql_state(err), "42501", "TRUNCATE {table} must be denied");
    }
    let err = sqlx::query("SELECT count(*) FROM switchyard_migrations")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(sql_state(err), "42501");
    let err = sqlx::raw_sql("ALTER TABLE conversations DISABLE ROW LEVEL SECURITY")
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(
        sql_state(err),
        "42501",
        "only the owner may change row security"
    );
}

#[tokio::test]
async fn catalog_row_security_roles_and_keys() {
    let Some((_, _, _, url)) = pg(1).await else {
        return;
    };
    let mut conn = owner(&url).await;

    // Every table but the global ones is tenant-owned, and has a tenant_id.
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind = 'r' \
         AND c.relname NOT IN ('tenants', 'server_secrets', 'switchyard_migrations') ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut tables: Vec<String> = tables.into_iter().map(|(t,)| t).collect();
    tables.sort();
    let mut expected: Vec<String> = TENANT_TABLES.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(
        tables, expected,
        "a new table must be tenant-owned (or declared global here)"
    );

    for table in TENANT_TABLES {
        let (enabled, forced, owner): (bool, bool, String) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner)::text FROM pg_class \
             WHERE oid = $1::regclass",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(
            enabled && forced,
            "{table}: row security enabled {enabled}, forced {forced}"
        );
        assert_ne!(
            owner, APP_ROLE,
            "{table} must not be owned by the application role"
        );
        let (policies,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_policies WHERE tablename = $1 AND qual LIKE '%app.tenant_id%' \
             AND with_check LIKE '%app.tenant_id%'",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            policies, 1,
            "{table} has the tenant policy on reads and writes"
        );

        // Every primary key, unique constraint and foreign key includes tenant_id; so does
        // every unique index.
        let constraints: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT con.conname::text, con.contype::text, \
                    (SELECT attnum FROM pg_attribute WHERE attrelid = con.conrelid AND attname = 'tenant_id') = ANY (con.conkey) \
             FROM pg_constraint con WHERE con.conrelid = $1::regclass AND con.contype IN ('p', 'u', 'f')",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(
            constraints.iter().any(|(_, kind, _)| kind == "p"),
            "{table} has a primary key"
        );
        for (name, kind, has_tenant) in &constraints {
            assert!(
                has_tenant,
                "{table}: constraint {name} ({kind}) must include tenant_id"
            );
        }
        let (pk_first,): (bool,) = sqlx::query_as(
            "SELECT con.conkey[1] = (SELECT attnum FROM pg_attribute WHERE attrelid = con.conrelid AND attname = 'tenant_id') \
             FROM pg_constraint con WHERE con.conrelid = $1::regclass AND con.contype = 'p'",
        )
        .bind(table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(pk_first, "{table}: the primary key starts with tenant_id");
        let unique_indexes: Vec<(String, bool)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, \
                    (SELECT attnum FROM pg_attribute WHERE attrelid = i.indrelid AND attname = 'tenant_id') = ANY (i.indkey::int2[]) \
             FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for (name, has_tenant) in unique_indexes {
            assert!(
                has_tenant,
                "{table}: unique index {name} must include tenant_id"
            );
        }
    }

    // The application role: not a superuser, no BYPASSRLS, no table of its own, and no
    // TRUNCATE or REFERENCES anywhere.
    let (superuser, bypass, owned): (bool, bool, i64) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, (SELECT count(*) FROM pg_tables WHERE tableowner = rolname) \
         FROM pg_roles WHERE rolname = $1",
    )
    .bind(APP_ROLE)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!superuser && !bypass && owned == 0);
    for table in TENANT_TABLES.iter().chain(&["tenants"]) {
        let (truncate, references, select): (bool, bool, bool) = sqlx::query_as(
            "SELECT has_table_privilege($1, $2, 'TRUNCATE'), has_table_privilege($1, $2, 'REFERENCES'), \
                    has_table_privilege($1, $2, 'SELECT')",
        )
        .bind(APP_ROLE)
        .bind(*table)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(
            !truncate && !references && select,
            "{table}: truncate {truncate}, references {references}"
        );
    }
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let Some((_, _, _, url)) = pg(1).await else {
        return;
    };
    let report = switchyard_store::migrate(&StoreConfig::new(&url))
        .await
        .unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
    assert!(!report.upgraded_legacy);
}

#[tokio::test]
async fn two_url_form_serves_as_a_login_member_of_the_application_role() {
    let Some((_, _, _, url)) = pg(1).await else {
        return;
    };
    let mut conn = owner(&url).await;
    // A login role for the server, as an operator would make it for production.
    let login = format!("switchyard_login_{:08x}", rand::random::<u32>());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {login} LOGIN NOINHERIT IN ROLE {APP_ROLE}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let options: PgConnectOptions = url.parse().unwrap();
    let app_url = format!(
        "postgres://{login}@{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap()
    );
    let mut config = StoreConfig::new(&app_url);
    config.migration_url = Some(url.clone());
    let (store, operator) = PgStore::open(&config).await.unwrap();
    let (user,): (String,) = sqlx::query_as("SELECT current_user::text")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(user, APP_ROLE);
    // The generated JWT secret is out of the application role's reach; the store reads it
    // as the owner (the migration URL).
    let err = sqlx::query("SELECT value FROM server_secrets")
        .execute(store.pool())
        .await
        .unwrap_err();
    assert_eq!(sql_state(err), "42501");
    let store: Arc<dyn Store> = Arc::new(store);
    let name = format!("two-url-{}", rand::random::<u32>());
    let secret = store
        .server_secret(&operator, &name, &|| "made once".to_string())
        .await
        .unwrap();
    assert_eq!(secret, "made once");
    let a = tenant(&store, &operator).await;
    start_conversation(&store, &a.member, "works").await;
    drop(store);
    // Without the owner's URL the server cannot read it, and says what to set.
    let (store, operator) = PgStore::open(&StoreConfig {
        migrate: false,
        ..StoreConfig::new(&app_url)
    })
    .await
    .unwrap();
    let refused = store
        .server_secret(&operator, &name, &|| "another".to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Config(why) if why.contains("SWITCHYARD_JWT_SECRET")),
        "{refused:?}"
    );
    drop(store);

    // Logged in as that role, a connection cannot become anyone more powerful, and
    // without the application role it has no privileges at all.
    let mut login_conn = app_url
        .parse::<PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap();
    let err = sqlx::raw_sql("SET ROLE postgres")
        .execute(&mut login_conn)
        .await
        .unwrap_err();
    assert_eq!(sql_state(err), "42501");
    let err = sqlx::query("SELECT count(*) FROM conversations")
        .execute(&mut login_conn)
        .await
        .unwrap_err();
    assert_eq!(sql_state(err), "42501");
    drop(login_conn);

    // Serving straight from the owner's (superuser's) URL without SET ROLE is refused.
    let superuser_pool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let (superuser,): (bool,) =
        sqlx::query_as("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&superuser_pool)
            .await
            .unwrap();
    assert!(superuser, "the test connects as a superuser");
    let refused = check_serving_role(&superuser_pool).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::Config(why) if why.contains("row-level security would not hold")),
        "{refused:?}"
    );
    // The store's own pool, from the same owner's URL, switched to the application role,
    // passes the same check.
    let one_url = PgStore::open(&StoreConfig::new(&url)).await.unwrap().0;
    check_serving_role(one_url.pool()).await.unwrap();
    // The role is the session's own from its start (a startup parameter, not a `SET ROLE`
    // after connecting): `RESET ROLE` returns to it, not to the owner, and a pooler that
    // dropped the parameter would leave every connection as the owner, which the check
    // above refuses — the one-URL form cannot run half-switched behind a transaction pooler.
    let mut pooled = one_url.pool().acquire().await.unwrap();
    sqlx::raw_sql("RESET ROLE")
        .execute(&mut *pooled)
        .await
        .unwrap();
    let (after_reset,): (String,) = sqlx::query_as("SELECT current_user::text")
        .fetch_one(&mut *pooled)
        .await
        .unwrap();
    assert_eq!(after_reset, APP_ROLE);
    drop(pooled);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {login}")))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// `EXPLAIN` of the hot statements, exactly as the store runs them, on tables big enough
/// for the planner to prefer a sequential scan if no index fitted.
#[tokio::test]
async fn hot_queries_use_indexes() {
    let Some((_, _, pool, url)) = pg(2).await else {
        return;
    };
    let mut conn = owner(&url).await;
    // 40 tenants x 50 users x 10 conversations x 5 turns = 20,000 conversations and
    // 100,000 turns, written as the owner (a superuser, which row security does not bind).
    sqlx::raw_sql(
        "CREATE TEMP TABLE bulk_tenants AS SELECT gen_random_uuid() AS id, g FROM generate_series(1, 40) g;
         INSERT INTO tenants (id, slug, name, created_at) SELECT id, 'bulk-' || id, 'bulk', now() FROM bulk_tenants;
         CREATE TEMP TABLE bulk_users AS
            SELECT t.id AS tenant_id, gen_random_uuid() AS id, u FROM bulk_tenants t, generate_series(1, 50) u;
         INSERT INTO users (tenant_id, id, email, role, created_at)
            SELECT tenant_id, id, id || '@bulk.test', 'member', now() FROM bulk_users;
         CREATE TEMP TABLE bulk_conversations AS
            SELECT u.tenant_id, u.id AS user_id, gen_random_uuid() AS id, c FROM bulk_users u, generate_series(1, 10) c;
         INSERT INTO conversations (tenant_id, id, user_id, message_count, created_at, last_activity)
            SELECT tenant_id, id, user_id, 5, now() - c * interval '1 hour', now() - c * interval '1 hour' FROM bulk_conversations;
         INSERT INTO conversation_messages (tenant_id, id, conversation_id, user_message, agent_response, created_at)
            SELECT tenant_id, gen_random_uuid(), id, 'message ' || m, 'answer', now() - m * interval '1 minute'
            FROM bulk_conversations, generate_series(1, 5) m;
         ANALYZE tenants, users, conversations, conversation_messages;",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // One of the bulk tenants: 500 conversations, 2,500 turns, 50 users.
    let (t, u, c): (uuid::Uuid, uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT tenant_id, user_id, id FROM bulk_conversations ORDER BY random() LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    use switchyard_store::statements as s;
    let far = chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap();
    let start = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(t.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    // (name, the indexes the plan must use, whether a final sort of the few rows joined is
    // expected, the plan)
    let mut plans: Vec<(&str, Vec<&str>, bool, String)> = Vec::new();
    macro_rules! explain {
        ($name:expr, [$($index:expr),*], $sorts:expr, $sql:expr, $($bind:expr),*) => {{
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {}", $sql)))
                $(.bind($bind))*
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            plans.push(($name, vec![$($index),*], $sorts, rows.into_iter().map(|(l,)| l).collect::<Vec<_>>().join("\n")));
        }};
    }
    let now = chrono::Utc::now();
    explain!(
        "conversation list",
        ["conversations_user_activity"],
        false,
        s::LIST_USER_CONVERSATIONS,
        t,
        u,
        far,
        uuid::Uuid::max(),
        21_i64
    );
    explain!(
        "admin conversation list",
        ["conversations_activity"],
        false,
        s::LIST_ALL_CONVERSATIONS,
        t,
        far,
        uuid::Uuid::max(),
        21_i64
    );
    explain!(
        "conversation get",
        ["conversations_pkey"],
        false,
        s::VISIBLE_CONVERSATION,
        t,
        c,
        false,
        u
    );
    explain!(
        "conversation read with its turns",
        ["conversations_pkey", "conversation_messages_conversation"],
        true,
        s::CONVERSATION_WITH_TURNS,
        t,
        c,
        false,
        u,
        start,
        uuid::Uuid::nil(),
        21_i64
    );
    explain!(
        "history load (chat context)",
        ["conversations_pkey", "conversation_messages_conversation"],
        true,
        s::CHAT_CONTEXT,
        t,
        c,
        u,
        10_i64
    );
    explain!(
        "turn write",
        ["conversations_pkey"],
        false,
        s::WRITE_TURN,
        t,
        c,
        u,
        now,
        Some("billing"),
        None::<uuid::Uuid>,
        uuid::Uuid::now_v7(),
        "m",
        "r",
        None::<f64>,
        sqlx::types::Json(serde_json::json!({})),
        None::<f64>,
        Some("lexical"),
        Some(0.9_f64),
        Some(false)
    );
    explain!(
        "conversation limits",
        ["conversations_chat_user"],
        false,
        s::COUNT_FOR_LIMITS,
        t,
        u,
        100_i64,
        10_000_i64
    );
    explain!(
        "the OpenAI door's thread",
        ["conversations_thread"],
        true,
        s::FIND_THREAD,
        t,
        u,
        "0123456789abcdef"
    );
    // The analytics and retention statements read the tenant's turns of a period; which
    // tenant-led index suits depends on how much of the tenant the period covers, so these
    // are held to reading no whole table.
    let week_ago = now - chrono::TimeDelta::days(7);
    explain!(
        "analytics totals",
        [],
        true,
        s::ANALYTICS_TOTALS,
        t,
        week_ago,
        now
    );
    explain!(
        "analytics by intent",
        [],
        true,
        s::ANALYTICS_BY_INTENT,
        t,
        week_ago,
        now
    );
    explain!(
        "analytics by agent",
        [],
        true,
        s::ANALYTICS_BY_AGENT,
        t,
        week_ago,
        now
    );
    explain!(
        "analytics failed calls",
        ["agent_call_errors_created"],
        true,
        s::ANALYTICS_FAILED_CALLS,
        t,
        week_ago,
        now
    );
    explain!(
        "retention batch",
        [],
        true,
        s::RETENTION_DELETE_TURNS,
        t,
        now - chrono::TimeDelta::minutes(3),
        1000_i64
    );
    tx.rollback().await.unwrap();
    // Tables small enough that a scan is right whatever the indexes (a tenant's agents, and
    // here an agent_call_errors table with no rows at all).
    let small = ["Seq Scan on agents", "Seq Scan on agent_call_errors"];
    for (name, indexes, sorts, plan) in &plans {
        let big_scans: Vec<&str> = plan
            .lines()
            .filter(|l| l.contains("Seq Scan") && !small.iter().any(|s| l.contains(s)))
            .collect();
        assert!(big_scans.is_empty(), "{name} scans a whole table:\n{plan}");
        for index in indexes {
            assert!(
                plan.contains(&format!("using {index} on")),
                "{name} does not use {index}:\n{plan}"
            );
        }
        if !sorts {
            assert!(
                !plan.contains("Sort"),
                "{name} sorts instead of reading the index in order:\n{plan}"
            );
        }
    }
}

//! PostgreSQL: a database of the earlier single-tenant layout is upgraded in place by
//! `migrate`, losing nothing, and ends exactly as a fresh database would be.

use std::collections::BTreeSet;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};
use switchyard_store::{StoreConfig, testing};

async fn connect(url: &str) -> PgConnection {
    url.parse::<PgConnectOptions>()
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(conn)
        .await
        .unwrap()
        .0
}

/// The schema as a set of lines: columns, constraints, indexes, policies, row security.
async fn catalog(conn: &mut PgConnection) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    let columns: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text \
         FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for c in columns {
        lines.insert(format!("column {c:?}"));
    }
    let constraints: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE connamespace = 'public'::regnamespace",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for c in constraints {
        lines.insert(format!("constraint {c:?}"));
    }
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for i in indexes {
        lines.insert(format!("index {i:?}"));
    }
    let policies: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT tablename::text, policyname::text, qual, with_check FROM pg_policies",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for p in policies {
        lines.insert(format!("policy {p:?}"));
    }
    let security: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT relname::text, relrowsecurity, relforcerowsecurity FROM pg_class \
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for s in security {
        lines.insert(format!("table {s:?}"));
    }
    lines
}

#[tokio::test]
async fn the_single_tenant_layout_is_upgraded_in_place_losing_nothing() {
    let Some(url) = testing::legacy_postgres_database().await else {
        return;
    };
    let mut conn = connect(&url).await;
    let before: Vec<i64> = {
        let mut v = Vec::new();
        for t in ["tenants", "users", "conversations", "conversation_messages"] {
            v.push(count(&mut conn, t).await);
        }
        v
    };
    assert_eq!(before, vec![2, 4, 4, 5]);

    let report = switchyard_store::migrate(&StoreConfig::new(&url))
        .await
        .unwrap();
    assert!(report.upgraded_legacy);
    assert_eq!(report.applied, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Running again changes nothing.
    let again = switchyard_store::migrate(&StoreConfig::new(&url))
        .await
        .unwrap();
    assert!(!again.upgraded_legacy && again.applied.is_empty());

    // Every count unchanged (plus the default tenant, made for the user who had none).
    assert_eq!(count(&mut conn, "tenants").await, 3);
    assert_eq!(count(&mut conn, "users").await, 4);
    assert_eq!(count(&mut conn, "conversations").await, 4);
    assert_eq!(count(&mut conn, "conversation_messages").await, 5);

    // Each conversation and message in its user's tenant; the tenant-less user's in the
    // default tenant.
    let placed: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.id::text, u.email, t.slug FROM conversations c JOIN users u ON u.tenant_id = c.tenant_id AND u.id = c.user_id \
         JOIN tenants t ON t.id = c.tenant_id ORDER BY c.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        placed,
        vec![
            (
                "0b6e2f9e-8f3a-4c1e-9d2a-000000000001".into(),
                "alice@acme.test".into(),
                "acme".into()
            ),
            (
                "0b6e2f9e-8f3a-4c1e-9d2a-000000000002".into(),
                "bob@acme.test".into(),
                "acme".into()
            ),
            (
                "0b6e2f9e-8f3a-4c1e-9d2a-000000000003".into(),
                "gina@globex.test".into(),
                "globex".into()
            ),
            (
                "0b6e2f9e-8f3a-4c1e-9d2a-000000000004".into(),
                "old@legacy.test".into(),
                "default".into()
            ),
        ]
    );
    let misplaced: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM conversation_messages m JOIN conversations c ON c.id = m.conversation_id \
         WHERE m.tenant_id <> c.tenant_id",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(misplaced.0, 0);
    // The derived columns, the legacy agent names, the users.
    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT id::text, message_count FROM conversations ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        counts.iter().map(|c| c.1).collect::<Vec<_>>(),
        vec![2, 1, 1, 1]
    );
    let routing: (serde_json::Value, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT routing, selected_agent_id FROM conversation_messages WHERE id = '6a1c0d1e-0000-4000-8000-000000000001'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        routing.0,
        serde_json::json!({"alternatives": [], "legacy_agent": "billing-agent"})
    );
    assert_eq!(routing.1, None);
    type UserLine = (String, String, String, Option<String>, Option<String>);
    let users: Vec<UserLine> = sqlx::query_as(
        "SELECT email, role, status, display_name, password_hash FROM users ORDER BY email",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        users
            .iter()
            .all(|u| u.1 == "member" && u.2 == "active" && u.4.is_none()),
        "{users:?}"
    );
    assert_eq!(users[0].3.as_deref(), Some("Alice"));
    let texts: Vec<(String,)> =
        sqlx::query_as("SELECT user_message FROM conversation_messages ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(texts[0].0, "Why was I charged twice on my invoice?");

    // tenant_id NOT NULL everywhere, and the schema exactly as a fresh database's.
    let nullable: (i64,) = sqlx::query_as(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id' AND is_nullable = 'YES'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(nullable.0, 0);
    let fresh_url = testing::postgres_database_url().await.unwrap();
    switchyard_store::migrate(&StoreConfig::new(&fresh_url))
        .await
        .unwrap();
    let mut fresh = connect(&fresh_url).await;
    let (upgraded, expected) = (catalog(&mut conn).await, catalog(&mut fresh).await);
    assert!(
        expected.len() > 100,
        "the comparison covers the whole schema ({} lines)",
        expected.len()
    );
    let missing: Vec<_> = expected.difference(&upgraded).collect();
    let extra: Vec<_> = upgraded.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "schema differs:\nmissing {missing:#?}\nextra {extra:#?}"
    );
}

#[tokio::test]
async fn a_failed_upgrade_changes_nothing() {
    let Some(url) = testing::legacy_postgres_database().await else {
        return;
    };
    let mut conn = connect(&url).await;
    // A conversation id that is not a UUID cannot be kept as one: the upgrade must refuse,
    // and leave the legacy database as it was.
    sqlx::raw_sql(
        "INSERT INTO conversations (id, user_id, title) VALUES ('not-a-uuid', 'aaaaaaaa-0000-4000-8000-000000000001', 'odd')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = switchyard_store::migrate(&StoreConfig::new(&url))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(count(&mut conn, "conversations").await, 5);
    let (has_tenant,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'conversations' AND column_name = 'tenant_id')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(!has_tenant);
}

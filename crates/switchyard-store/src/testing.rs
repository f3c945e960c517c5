//! Fresh databases for tests, on both backends.
//!
//! PostgreSQL is found through `SWITCHYARD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, a user that may create databases). Each
//! test process creates its own database and its tests share it, each making fresh tenants
//! with random ids. Where PostgreSQL cannot be reached the PostgreSQL tests say so loudly
//! and skip — unless `SWITCHYARD_REQUIRE_POSTGRES=1` (CI sets it), which makes that a
//! failure.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{ConnectOptions, Connection};
use tokio::sync::OnceCell;

use crate::{Opened, StoreConfig};

/// Says, where it will be seen, that tests are skipped: straight to the process's standard
/// error, which the test harness does not capture (it hides what passing tests print).
pub fn loud_skip(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "\n!!!!! {message} !!!!!\n");
}

/// The URL tests use to reach PostgreSQL as a user that may create databases.
pub fn postgres_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Whether a missing PostgreSQL fails the tests instead of skipping them.
pub fn postgres_required() -> bool {
    std::env::var("SWITCHYARD_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

static DATABASE: OnceCell<Option<String>> = OnceCell::const_new();

/// The URL (as the owner, in the one-URL form) of this test process's PostgreSQL database,
/// created on first use; `None` when PostgreSQL cannot be reached and is not required.
pub async fn postgres_database_url() -> Option<String> {
    DATABASE.get_or_init(create_database).await.clone()
}

/// This process's database URL, with the database name replaced.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..]
        .find('/')
        .map_or(base.len(), |i| i + authority_end);
    let mut url = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

async fn create_database() -> Option<String> {
    let admin_url = postgres_admin_url();
    let options: sqlx::postgres::PgConnectOptions = match admin_url.parse() {
        Ok(o) => o,
        Err(e) => panic!("SWITCHYARD_TEST_DATABASE_URL is not a PostgreSQL URL: {e}"),
    };
    let mut conn = match options.connect().await {
        Ok(c) => c,
        Err(e) => {
            if postgres_required() {
                panic!(
                    "PostgreSQL is required (SWITCHYARD_REQUIRE_POSTGRES) but not reachable at {}: {e}",
                    crate::redact_url(&admin_url)
                );
            }
            loud_skip(&format!(
                "PostgreSQL not reachable at {} ({e}): PostgreSQL tests are SKIPPED. \
                 Set SWITCHYARD_TEST_DATABASE_URL, or SWITCHYARD_REQUIRE_POSTGRES=1 to fail instead.",
                crate::redact_url(&admin_url)
            ));
            return None;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Databases of earlier runs that were not dropped (a test process cannot drop its own
    // database on exit): remove those older than two hours, if no one is using them.
    let old: Vec<(String,)> = sqlx::query_as(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'switchyard_test_%'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for (name,) in old {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        if created < now.saturating_sub(7200) {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\""
            )))
            .execute(&mut conn)
            .await;
        }
    }
    let name = format!(
        "switchyard_test_{now}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
    {
        panic!("cannot create the test database {name}: {e}");
    }
    let _ = conn.close().await;
    Some(with_database(&admin_url, &name))
}

/// The earlier single-tenant layout with its sample rows (tenants acme and globex, a user
/// without a tenant, four conversations, five messages).
pub const LEGACY_FIXTURE: &str = include_str!("../tests/fixtures/legacy_single_tenant.sql");

/// A new PostgreSQL database holding the earlier single-tenant layout, not migrated;
/// `None` when PostgreSQL is skipped.
pub async fn legacy_postgres_database() -> Option<String> {
    postgres_database_url().await?;
    let admin_url = postgres_admin_url();
    let mut conn = match admin_url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(o) => o
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL: {e}")),
        Err(e) => panic!("bad SWITCHYARD_TEST_DATABASE_URL: {e}"),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!(
        "switchyard_test_{now}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
    {
        panic!("cannot create {name}: {e}");
    }
    let _ = conn.close().await;
    let url = with_database(&admin_url, &name);
    let mut conn = match url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(o) => o
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot reach {name}: {e}")),
        Err(e) => panic!("{e}"),
    };
    if let Err(e) = sqlx::raw_sql(LEGACY_FIXTURE).execute(&mut conn).await {
        panic!("cannot load the legacy fixture: {e}");
    }
    let _ = conn.close().await;
    Some(url)
}

/// A store on this process's PostgreSQL test database, migrated, with its operator's
/// proof; `None` when skipped.
pub async fn postgres_store() -> Option<Opened> {
    let url = postgres_database_url().await?;
    let mut config = StoreConfig::new(url);
    config.max_connections = 4;
    match crate::connect(&config).await {
        Ok(store) => Some(store),
        Err(e) => panic!("cannot open the PostgreSQL test store: {e}"),
    }
}

/// A fresh SQLite database file under the system's temporary directory.
pub fn sqlite_path() -> PathBuf {
    let dir = std::env::temp_dir().join("switchyard-tests");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!(
        "{}-{}-{:08x}.db",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// A store on a fresh SQLite database file, migrated, with its operator's proof.
pub async fn sqlite_store() -> Opened {
    let mut config = StoreConfig::new(format!("sqlite://{}", sqlite_path().display()));
    config.max_connections = 4;
    match crate::connect(&config).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open the SQLite test store: {e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
    }
}

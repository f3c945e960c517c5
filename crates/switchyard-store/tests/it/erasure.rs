//! Erasing a tenant deletes every row it owns, in every table, and nothing of any other
//! tenant: row counts per table, before and after, straight from the database.

use std::collections::BTreeMap;
use std::sync::Arc;

use switchyard_core::TenantId;
use switchyard_core::model::{AgentCallError, NewApiKey};
use switchyard_store::{Opened, Store, StoreConfig, testing};

use crate::common::{Actors, TENANT_TABLES, agent, follow_up_turn, start_conversation, tenant};

/// Data in every table.
async fn fill(store: &Arc<dyn Store>, t: &Actors) {
    let a = store
        .create_agent(&t.admin, agent("billing"))
        .await
        .unwrap();
    let (c, _) = start_conversation(store, &t.member, "hello").await;
    store
        .append_turn(&t.member, follow_up_turn(c, "again"))
        .await
        .unwrap();
    store
        .create_api_key(
            &t.admin,
            NewApiKey {
                id: Default::default(),
                user_id: t.member.user_id(),
                name: "k".into(),
                prefix: "sy_0".into(),
                secret_hash: rand::random::<[u8; 32]>().to_vec(),
            },
        )
        .await
        .unwrap();
    store
        .idempotency_start(&t.member, "k", b"h", chrono::Utc::now())
        .await
        .unwrap();
    store
        .record_agent_error(
            &t.member,
            AgentCallError {
                agent_id: a.id,
                agent_name: a.name,
                kind: "failed".into(),
                at: chrono::Utc::now(),
            },
        )
        .await
        .unwrap();
}

type Counts = BTreeMap<&'static str, i64>;

async fn erase_and_count<F, Fut>(Opened { store, operator }: Opened, counts: F)
where
    F: Fn(TenantId) -> Fut,
    Fut: std::future::Future<Output = Counts>,
{
    let doomed = tenant(&store, &operator).await;
    let kept = tenant(&store, &operator).await;
    fill(&store, &doomed).await;
    fill(&store, &kept).await;
    let doomed_before = counts(doomed.tenant.id).await;
    let kept_before = counts(kept.tenant.id).await;
    assert!(
        doomed_before.values().all(|n| *n > 0),
        "every table has rows of the tenant: {doomed_before:?}"
    );
    store
        .delete_tenant(&operator, doomed.tenant.id)
        .await
        .unwrap();
    let doomed_after = counts(doomed.tenant.id).await;
    assert!(doomed_after.values().all(|n| *n == 0), "{doomed_after:?}");
    assert_eq!(
        counts(kept.tenant.id).await,
        kept_before,
        "the other tenant is untouched"
    );
    assert!(store.get_tenant(&operator, doomed.tenant.id).await.is_err());
    assert!(store.get_tenant(&operator, kept.tenant.id).await.is_ok());
}

#[tokio::test]
async fn sqlite_erasure() {
    let mut config = StoreConfig::new(format!("sqlite://{}", testing::sqlite_path().display()));
    config.max_connections = 2;
    let (store, operator) = switchyard_store::sqlite::SqliteStore::open(&config)
        .await
        .unwrap();
    let pool = store.pool().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    erase_and_count(Opened { store, operator }, |tenant| {
        let pool = pool.clone();
        async move {
            let mut counts = Counts::new();
            for table in TENANT_TABLES {
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {table} WHERE tenant_id = $1"
                )))
                .bind(tenant.as_uuid())
                .fetch_one(&pool)
                .await
                .unwrap();
                counts.insert(table, n);
            }
            counts
        }
    })
    .await;
}

#[tokio::test]
async fn postgres_erasure() {
    let Some(url) = testing::postgres_database_url().await else {
        return;
    };
    let store = switchyard_store::connect(&StoreConfig::new(&url))
        .await
        .unwrap();
    // Counted as the owner (a superuser here), whom row-level security does not hide rows from.
    let owner = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    erase_and_count(store, |tenant| {
        let owner = owner.clone();
        async move {
            let mut counts = Counts::new();
            for table in TENANT_TABLES {
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {table} WHERE tenant_id = $1"
                )))
                .bind(tenant.as_uuid())
                .fetch_one(&owner)
                .await
                .unwrap();
                counts.insert(table, n);
            }
            counts
        }
    })
    .await;
}

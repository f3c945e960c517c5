//! PostgreSQL keeps a connection whose single statement completed and hands it to the next
//! call without sqlx's release round trip. A connection must only be kept clean: a call
//! cancelled while its statement runs leaves its connection to sqlx, which waits out the
//! answer, and the next call on a pool of one connection reads its own answer. And kept
//! connections must never starve a caller: transactions and single statements on a pool of
//! two, two hundred at once, all finish.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use switchyard_core::page::PageRequest;
use switchyard_store::postgres::PgStore;
use switchyard_store::{
    ConversationFilter, OperatorScope, Store, StoreConfig, TokenClaim, testing,
};

use crate::common::{agent, follow_up_turn, start_conversation, tenant};

async fn store_with_pool(url: &str, connections: u32) -> (PgStore, OperatorScope) {
    let mut config = StoreConfig::new(url.to_owned());
    config.max_connections = connections;
    config.acquire_timeout = Duration::from_secs(10);
    PgStore::open(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_mid_statement_leaves_its_connection_clean() {
    let Some(url) = testing::postgres_database_url().await else {
        return;
    };
    let (pg, operator) = store_with_pool(&url, 1).await;
    let store: Arc<dyn Store> = Arc::new(pg.clone());
    let actors = tenant(&store, &operator).await;
    let (conversation, _) = start_conversation(&store, &actors.member, "first").await;

    // The owner locks the conversation's row, so the next turn's write waits inside its
    // statement; the call is cancelled while it waits.
    let mut owner = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut lock = owner.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE")
        .bind(conversation.as_uuid())
        .execute(&mut *lock)
        .await
        .unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(300),
        store.append_turn(
            &actors.member,
            follow_up_turn(conversation, "cancelled while it waits"),
        ),
    )
    .await;
    assert!(
        cancelled.is_err(),
        "the write should have waited for the lock"
    );
    lock.rollback().await.unwrap();

    // The only connection answers the next calls with their own rows: the cancelled write's
    // answer was read off it before it was used again.
    let (read, history) = store
        .chat_context(&actors.member, conversation, 10)
        .await
        .unwrap();
    assert_eq!(read.id, conversation);
    let messages: Vec<&str> = history.iter().map(|t| t.user_message.as_str()).collect();
    // The statement had been sent, so the database finished it once the lock was gone.
    assert_eq!(messages, ["first", "cancelled while it waits"]);
    let (updated, turn) = store
        .append_turn(&actors.member, follow_up_turn(conversation, "third"))
        .await
        .unwrap();
    assert_eq!(updated.message_count, 3);
    assert_eq!(turn.user_message, "third");
    let principal = store
        .find_principal(
            &operator,
            TokenClaim {
                tenant: actors.tenant.id,
                user: actors.member_user.id,
            },
        )
        .await
        .unwrap();
    assert_eq!(principal.user.id, actors.member_user.id);

    // The pool itself can still be used directly: the kept connection goes back to it.
    let (one,): (i32,) = sqlx::query_as("SELECT 1")
        .fetch_one(pg.pool())
        .await
        .unwrap();
    assert_eq!(one, 1);
    owner.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_connections_starve_no_one_on_a_small_pool() {
    let Some(url) = testing::postgres_database_url().await else {
        return;
    };
    let (store, operator) = store_with_pool(&url, 2).await;
    let store: Arc<dyn Store> = Arc::new(store);
    let actors = tenant(&store, &operator).await;
    store
        .create_agent(&actors.admin, agent("billing"))
        .await
        .unwrap();
    let (conversation, _) = start_conversation(&store, &actors.member, "hello").await;

    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        let member = actors.member.clone();
        let admin = actors.admin.clone();
        let operator = operator.clone();
        let (tenant_id, user_id) = (actors.tenant.id, actors.member_user.id);
        tasks.push(tokio::spawn(async move {
            match i % 4 {
                // Single statements, kept warm between calls.
                0 => {
                    store
                        .find_principal(
                            &operator,
                            TokenClaim {
                                tenant: tenant_id,
                                user: user_id,
                            },
                        )
                        .await
                        .unwrap();
                }
                1 => {
                    store
                        .append_turn(&member, follow_up_turn(conversation, "again"))
                        .await
                        .unwrap();
                }
                // Transactions, which take their connection from sqlx.
                2 => {
                    store
                        .list_users(&admin, PageRequest::first(10))
                        .await
                        .unwrap();
                }
                _ => {
                    store
                        .list_conversations(
                            &member,
                            ConversationFilter::Own,
                            PageRequest::first(10),
                        )
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let read = store
        .get_conversation(&actors.member, conversation)
        .await
        .unwrap();
    assert_eq!(read.message_count, 51);
}

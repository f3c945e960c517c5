//! Connections are reused across tenants: 1,000 interleaved operations of two tenants on a
//! pool of two connections, some failing mid-transaction and some cancelled mid-flight,
//! leave every tenant seeing exactly its own rows — no tenant setting survives on a
//! pooled connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_core::ConversationId;
use switchyard_core::model::TurnTarget;
use switchyard_core::page::PageRequest;
use switchyard_store::{
    ConversationFilter, Opened, Store, StoreConfig, StoreError, TenantScope, testing,
};

use crate::common::{Actors, agent, follow_up_turn, new_conversation_turn, tenant};

#[derive(Default)]
struct Ledger {
    /// Conversations known to exist, with their turn count.
    confirmed: HashMap<ConversationId, i64>,
    /// Conversations whose creation was cancelled: they may or may not exist.
    maybe: HashSet<ConversationId>,
}

/// What each tenant should see at the end: its id and its ledger.
type Expected = Vec<(
    switchyard_core::TenantId,
    HashMap<ConversationId, i64>,
    HashSet<ConversationId>,
)>;

async fn run(Opened { store, operator }: Opened) -> Expected {
    let tenants = [
        tenant(&store, &operator).await,
        tenant(&store, &operator).await,
    ];
    for t in &tenants {
        store
            .create_agent(&t.admin, agent("billing"))
            .await
            .unwrap();
    }
    let ledgers: Arc<[Mutex<Ledger>; 2]> = Arc::new([Mutex::default(), Mutex::default()]);
    // Seed one conversation each so that follow-ups always have a target.
    for (i, t) in tenants.iter().enumerate() {
        let (c, _) = store
            .append_turn(&t.member, new_conversation_turn("seed"))
            .await
            .unwrap();
        ledgers[i].lock().unwrap().confirmed.insert(c.id, 1);
    }
    let scopes: Arc<Vec<(TenantScope, TenantScope)>> = Arc::new(
        tenants
            .iter()
            .map(|t: &Actors| (t.admin.clone(), t.member.clone()))
            .collect(),
    );

    for round in 0..20 {
        let mut tasks = Vec::new();
        for j in 0..50 {
            let i = round * 50 + j;
            let store = store.clone();
            let scopes = scopes.clone();
            let ledgers = ledgers.clone();
            tasks.push(tokio::spawn(async move {
                let me = i % 2;
                let other = 1 - me;
                let (admin, member) = &scopes[me];
                let pick = |ledger: &Mutex<Ledger>| -> ConversationId {
                    let l = ledger.lock().unwrap();
                    let mut ids: Vec<_> = l.confirmed.keys().copied().collect();
                    ids.sort();
                    ids[i % ids.len()]
                };
                match (i / 2) % 8 {
                    0 => {
                        let turn = new_conversation_turn("new");
                        let TurnTarget::New { id, .. } = turn.target else {
                            unreachable!()
                        };
                        let (c, _) = store.append_turn(member, turn).await.unwrap();
                        assert_eq!(c.id, id);
                        ledgers[me].lock().unwrap().confirmed.insert(id, 1);
                    }
                    1 => {
                        let target = pick(&ledgers[me]);
                        // Count before the await: the ledger must not undercount if the
                        // end check runs later.
                        store
                            .append_turn(member, follow_up_turn(target, "more"))
                            .await
                            .unwrap();
                        *ledgers[me]
                            .lock()
                            .unwrap()
                            .confirmed
                            .get_mut(&target)
                            .unwrap() += 1;
                    }
                    2 => {
                        // Fails mid-transaction: the conversation is another tenant's.
                        let target = pick(&ledgers[other]);
                        let err = store
                            .append_turn(member, follow_up_turn(target, "sneaky"))
                            .await;
                        assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
                    }
                    3 => {
                        // Fails mid-transaction on the unique name.
                        let err = store.create_agent(admin, agent("billing")).await;
                        assert!(matches!(err, Err(StoreError::Conflict { .. })), "{err:?}");
                    }
                    4 => {
                        let page = store
                            .list_conversations(
                                admin,
                                ConversationFilter::All,
                                PageRequest::first(100),
                            )
                            .await
                            .unwrap();
                        // Rows being created concurrently may not be in the ledger yet, so
                        // the check here is the negative one; the exact one runs at the end.
                        let theirs = ledgers[other].lock().unwrap();
                        for c in page.items {
                            assert_eq!(c.tenant_id, scopes[me].0.tenant_id());
                            assert!(
                                !theirs.confirmed.contains_key(&c.id)
                                    && !theirs.maybe.contains(&c.id),
                                "a conversation of another tenant showed up"
                            );
                        }
                    }
                    5 => {
                        let target = pick(&ledgers[other]);
                        assert!(matches!(
                            store.get_conversation(admin, target).await,
                            Err(StoreError::NotFound)
                        ));
                    }
                    6 => {
                        // Fails mid-transaction after taking the limits lock.
                        let mut turn = new_conversation_turn("over");
                        if let TurnTarget::New { max_per_user, .. } = &mut turn.target {
                            *max_per_user = 0;
                        }
                        assert!(matches!(
                            store.append_turn(member, turn).await,
                            Err(StoreError::LimitReached { .. })
                        ));
                    }
                    _ => {
                        // Cancelled somewhere inside its transaction.
                        let turn = new_conversation_turn("cancelled");
                        let TurnTarget::New { id, .. } = turn.target else {
                            unreachable!()
                        };
                        ledgers[me].lock().unwrap().maybe.insert(id);
                        let delay = Duration::from_micros(50 + (i as u64 * 37) % 900);
                        if let Ok(result) =
                            tokio::time::timeout(delay, store.append_turn(member, turn)).await
                        {
                            result.unwrap();
                            let mut l = ledgers[me].lock().unwrap();
                            l.maybe.remove(&id);
                            l.confirmed.insert(id, 1);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }

    // Each tenant sees its own conversations exactly, with their turns, and nothing else.
    for (me, t) in tenants.iter().enumerate() {
        let mut seen = HashMap::new();
        let mut page = PageRequest::first(100);
        loop {
            let result = store
                .list_conversations(&t.admin, ConversationFilter::All, page)
                .await
                .unwrap();
            for c in &result.items {
                seen.insert(c.id, c.message_count);
            }
            match result.next {
                Some(cursor) => page = PageRequest::after(100, cursor),
                None => break,
            }
        }
        {
            let l = ledgers[me].lock().unwrap();
            for (id, count) in &l.confirmed {
                assert_eq!(
                    seen.get(id),
                    Some(count),
                    "conversation {id} of tenant {me}"
                );
            }
            for id in seen.keys() {
                assert!(
                    l.confirmed.contains_key(id) || l.maybe.contains(id),
                    "foreign conversation {id} in tenant {me}"
                );
            }
        }
        let (_, agents) = store.routable_agents(&t.member).await.unwrap();
        assert_eq!(agents.len(), 1);
    }
    tenants
        .iter()
        .enumerate()
        .map(|(me, t)| {
            let l = ledgers[me].lock().unwrap();
            (t.admin.tenant_id(), l.confirmed.clone(), l.maybe.clone())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pool_of_two() {
    let mut config = StoreConfig::new(format!("sqlite://{}", testing::sqlite_path().display()));
    config.max_connections = 2;
    run(switchyard_store::connect(&config).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_of_two() {
    let Some(url) = testing::postgres_database_url().await else {
        return;
    };
    let mut config = StoreConfig::new(url);
    config.max_connections = 2;
    let (store, operator) = switchyard_store::postgres::PgStore::open(&config)
        .await
        .unwrap();
    let pool = store.pool().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let expected = run(Opened { store, operator }).await;
    // Row security alone — statements that name no tenant — shows each tenant exactly its
    // own conversations and turns, on the same two connections.
    for (tenant, confirmed, maybe) in &expected {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
        let conversations: Vec<(uuid::Uuid, uuid::Uuid, i64)> =
            sqlx::query_as("SELECT tenant_id, id, message_count FROM conversations")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
        let turns: Vec<(uuid::Uuid, uuid::Uuid, i64)> = sqlx::query_as(
            "SELECT tenant_id, conversation_id, count(*) FROM conversation_messages GROUP BY tenant_id, conversation_id",
        )
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let by_row: HashMap<ConversationId, i64> = conversations
            .iter()
            .map(|(t, id, n)| {
                assert_eq!(*t, tenant.as_uuid(), "a row of another tenant");
                (ConversationId::from(*id), *n)
            })
            .collect();
        for (id, count) in confirmed {
            assert_eq!(by_row.get(id), Some(count), "conversation {id}");
        }
        for id in by_row.keys() {
            assert!(
                confirmed.contains_key(id) || maybe.contains(id),
                "foreign {id}"
            );
        }
        for (t, conversation, n) in &turns {
            assert_eq!(*t, tenant.as_uuid(), "a turn of another tenant");
            assert_eq!(
                by_row.get(&ConversationId::from(*conversation)),
                Some(n),
                "turns of {conversation}"
            );
        }
        assert_eq!(
            turns.len(),
            by_row.len(),
            "every conversation has its turns"
        );
    }
    // And both connections, used by both tenants and by failed and cancelled
    // transactions, carry no tenant now.
    let mut conns = vec![pool.acquire().await.unwrap(), pool.acquire().await.unwrap()];
    for conn in &mut conns {
        let (setting, rows): (Option<String>, i64) = sqlx::query_as(
            "SELECT NULLIF(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM conversations)",
        )
        .fetch_one(&mut **conn)
        .await
        .unwrap();
        assert_eq!((setting, rows), (None, 0));
    }
}

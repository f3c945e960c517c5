//! A property: for random sequences of operations by several tenants — including
//! attempts on each other's rows — the set each tenant can see equals the set it created.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use switchyard_core::page::PageRequest;
use switchyard_core::{AgentId, ConversationId};
use switchyard_store::{ConversationFilter, Opened, StoreError};

use crate::common::{Actors, agent, follow_up_turn, new_conversation_turn, tenant};

const TENANTS: usize = 3;

#[derive(Clone, Debug)]
enum Op {
    /// Tenant `t` starts a conversation.
    Start { t: usize },
    /// Tenant `t` appends to the `n`-th conversation made by tenant `owner` (so far).
    Append { t: usize, owner: usize, n: usize },
    /// Tenant `t` deletes the `n`-th conversation made by tenant `owner`.
    Delete { t: usize, owner: usize, n: usize },
    /// Tenant `t` creates an agent.
    CreateAgent { t: usize },
    /// Tenant `t` deletes the `n`-th agent made by tenant `owner`.
    DeleteAgent { t: usize, owner: usize, n: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TENANTS;
    prop_oneof![
        3 => t.clone().prop_map(|t| Op::Start { t }),
        4 => (t.clone(), 0..TENANTS, 0..8usize).prop_map(|(t, owner, n)| Op::Append { t, owner, n }),
        1 => (t.clone(), 0..TENANTS, 0..8usize).prop_map(|(t, owner, n)| Op::Delete { t, owner, n }),
        2 => t.clone().prop_map(|t| Op::CreateAgent { t }),
        1 => (t, 0..TENANTS, 0..8usize).prop_map(|(t, owner, n)| Op::DeleteAgent { t, owner, n }),
    ]
}

/// What each tenant made, in order (deleted ones stay listed, marked gone).
#[derive(Default)]
struct Model {
    conversations: Vec<Vec<(ConversationId, bool)>>,
    turns: BTreeMap<ConversationId, i64>,
    agents: Vec<Vec<(AgentId, bool)>>,
}

async fn check(Opened { store, operator }: &Opened, ops: Vec<Op>) {
    let mut actors: Vec<Actors> = Vec::new();
    for _ in 0..TENANTS {
        actors.push(tenant(store, operator).await);
    }
    let mut m = Model {
        conversations: vec![Vec::new(); TENANTS],
        agents: vec![Vec::new(); TENANTS],
        ..Model::default()
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Start { t } => {
                let (c, _) = store
                    .append_turn(&actors[t].member, new_conversation_turn("hi"))
                    .await
                    .unwrap();
                m.conversations[t].push((c.id, true));
                m.turns.insert(c.id, 1);
            }
            Op::Append { t, owner, n } => {
                let Some(&(id, alive)) = m.conversations[owner].get(n) else {
                    continue;
                };
                let result = store
                    .append_turn(&actors[t].member, follow_up_turn(id, "more"))
                    .await;
                if t == owner && alive {
                    result.unwrap();
                    *m.turns.entry(id).or_default() += 1;
                } else {
                    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
                }
            }
            Op::Delete { t, owner, n } => {
                let Some(&(id, alive)) = m.conversations[owner].get(n) else {
                    continue;
                };
                let result = store.delete_conversation(&actors[t].admin, id).await;
                if t == owner && alive {
                    result.unwrap();
                    m.conversations[owner][n].1 = false;
                } else {
                    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
                }
            }
            Op::CreateAgent { t } => {
                let a = store
                    .create_agent(&actors[t].admin, agent(&format!("agent-{step}")))
                    .await
                    .unwrap();
                m.agents[t].push((a.id, true));
            }
            Op::DeleteAgent { t, owner, n } => {
                let Some(&(id, alive)) = m.agents[owner].get(n) else {
                    continue;
                };
                let result = store.delete_agent(&actors[t].admin, id).await;
                if t == owner && alive {
                    result.unwrap();
                    m.agents[owner][n].1 = false;
                } else {
                    assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}");
                }
            }
        }
    }
    for (t, a) in actors.iter().enumerate() {
        let expected: BTreeSet<_> = m.conversations[t]
            .iter()
            .filter(|c| c.1)
            .map(|c| c.0)
            .collect();
        let seen = store
            .list_conversations(&a.admin, ConversationFilter::All, PageRequest::first(100))
            .await
            .unwrap();
        let seen_set: BTreeSet<_> = seen.items.iter().map(|c| c.id).collect();
        assert_eq!(seen_set, expected, "tenant {t} conversations");
        for c in &seen.items {
            assert_eq!(c.message_count, m.turns[&c.id], "turns of {}", c.id);
            let turns = store
                .list_turns(&a.admin, c.id, PageRequest::first(100))
                .await
                .unwrap()
                .1;
            assert_eq!(turns.items.len() as i64, m.turns[&c.id]);
        }
        let expected_agents: BTreeSet<_> =
            m.agents[t].iter().filter(|x| x.1).map(|x| x.0).collect();
        let agents = store
            .list_agents(&a.member, PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(
            agents.items.iter().map(|x| x.id).collect::<BTreeSet<_>>(),
            expected_agents,
            "tenant {t} agents"
        );
        let (per_user, per_tenant) = store
            .count_conversations(&a.member, i64::MAX, i64::MAX)
            .await
            .unwrap();
        assert_eq!(per_user, expected.len() as i64);
        assert_eq!(per_tenant, expected.len() as i64);
    }
}

fn run_property(store: impl Fn(&tokio::runtime::Runtime) -> Option<Opened>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(store) = store(&rt) else { return };
    let config = ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..40))| {
        rt.block_on(check(&store, ops));
    });
}

#[test]
fn sqlite_each_tenant_sees_what_it_created() {
    run_property(|rt| Some(rt.block_on(switchyard_store::testing::sqlite_store())));
}

#[test]
fn postgres_each_tenant_sees_what_it_created() {
    run_property(|rt| rt.block_on(switchyard_store::testing::postgres_store()));
}

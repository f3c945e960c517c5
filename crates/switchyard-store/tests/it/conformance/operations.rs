//! Analytics and retention over known traffic, each tenant's own.

use chrono::{TimeDelta, Utc};
use switchyard_core::model::{AgentCallError, TurnTarget};
use switchyard_store::{ConversationFilter, Opened};

use crate::common::{agent, follow_up_turn, new_conversation_turn, on_both_backends, tenant};
use switchyard_core::page::PageRequest;

/// Analytics over known traffic: two tenants, exact figures, each tenant's own.
async fn analytics_match_the_turns_made(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let billing = store
        .create_agent(&a.admin, agent("billing"))
        .await
        .unwrap();
    let general = store
        .create_agent(&a.admin, agent("general"))
        .await
        .unwrap();
    let now = Utc::now();
    let turn = |intent: &str,
                agent: &switchyard_core::model::Agent,
                confidence: f64,
                fallback: bool,
                latency: f64| {
        let mut t = new_conversation_turn("m");
        t.intent_category = Some(intent.into());
        t.selected_agent_id = Some(agent.id);
        t.routing_confidence = Some(confidence);
        t.fallback_used = Some(fallback);
        t.latency_ms = Some(latency);
        t.created_at = now - TimeDelta::minutes(5);
        t
    };
    let (c1, _) = store
        .append_turn(&a.member, turn("billing", &billing, 0.9, false, 10.0))
        .await
        .unwrap();
    let mut t2 = turn("billing", &billing, 0.7, false, 20.0);
    t2.target = TurnTarget::Existing(c1.id);
    store.append_turn(&a.member, t2).await.unwrap();
    store
        .append_turn(&a.member, turn("general", &general, 0.2, true, 30.0))
        .await
        .unwrap();
    store
        .append_turn(&a.member, turn("billing", &billing, 0.8, false, 40.0))
        .await
        .unwrap();
    // Outside the period.
    let mut old = turn("billing", &billing, 0.1, true, 1000.0);
    old.created_at = now - TimeDelta::days(30);
    store.append_turn(&a.member, old).await.unwrap();
    // Another tenant's traffic, which must not count.
    let b_agent = store
        .create_agent(&b.admin, agent("billing"))
        .await
        .unwrap();
    let mut foreign = turn("billing", &b_agent, 0.5, true, 5000.0);
    foreign.selected_agent_id = Some(b_agent.id);
    store.append_turn(&b.member, foreign).await.unwrap();
    for _ in 0..2 {
        store
            .record_agent_error(
                &a.member,
                AgentCallError {
                    agent_id: billing.id,
                    agent_name: "billing".into(),
                    kind: "failed".into(),
                    at: now - TimeDelta::minutes(1),
                },
            )
            .await
            .unwrap();
    }
    store
        .record_agent_error(
            &b.member,
            AgentCallError {
                agent_id: b_agent.id,
                agent_name: "billing".into(),
                kind: "timeout".into(),
                at: now,
            },
        )
        .await
        .unwrap();

    let stats = store
        .routing_analytics(
            &a.admin,
            now - TimeDelta::days(7),
            now + TimeDelta::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(stats.turns, 4);
    assert_eq!(stats.conversations, 3);
    assert_eq!(
        stats.by_intent,
        vec![(Some("billing".into()), 3), (Some("general".into()), 1)]
    );
    assert_eq!(stats.by_agent.len(), 2);
    assert_eq!(
        (
            stats.by_agent[0].agent_id,
            stats.by_agent[0].turns,
            stats.by_agent[0].errors
        ),
        (billing.id, 3, 2)
    );
    assert_eq!(stats.by_agent[0].name.as_deref(), Some("billing"));
    assert_eq!(
        (
            stats.by_agent[1].agent_id,
            stats.by_agent[1].turns,
            stats.by_agent[1].errors
        ),
        (general.id, 1, 0)
    );
    assert!((stats.mean_confidence.unwrap() - 0.65).abs() < 1e-9);
    assert!((stats.fallback_rate.unwrap() - 0.25).abs() < 1e-9);
    assert!((stats.agent_error_rate.unwrap() - 2.0 / 6.0).abs() < 1e-9);
    assert_eq!(stats.latency_ms, [Some(20.0), Some(40.0), Some(40.0)]);
    // Members may not see the figures; an empty period has none.
    assert!(
        store
            .routing_analytics(&a.member, now - TimeDelta::days(7), now)
            .await
            .is_err()
    );
    let empty = store
        .routing_analytics(&a.admin, now + TimeDelta::days(1), now + TimeDelta::days(2))
        .await
        .unwrap();
    assert_eq!(
        (empty.turns, empty.agent_error_rate, empty.latency_ms),
        (0, None, [None, None, None])
    );
}

/// Retention deletes exactly the expired turns of the tenant it is run for, updates the
/// counts, removes conversations left empty, and running it again changes nothing.
async fn retention_deletes_exactly_the_expired_rows(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let now = Utc::now();
    let at = |days: i64| now - TimeDelta::days(days);
    // A: one conversation entirely old, one mixed, one new.
    let mut old = new_conversation_turn("old");
    old.created_at = at(100);
    let (all_old, _) = store.append_turn(&a.member, old.clone()).await.unwrap();
    let mut older = follow_up_turn(all_old.id, "older");
    older.created_at = at(90);
    store.append_turn(&a.member, older).await.unwrap();
    let mut mixed_first = new_conversation_turn("mixed old");
    mixed_first.created_at = at(60);
    let (mixed, _) = store.append_turn(&a.member, mixed_first).await.unwrap();
    store
        .append_turn(&a.member, follow_up_turn(mixed.id, "mixed new"))
        .await
        .unwrap();
    let (fresh, _) = store
        .append_turn(&a.member, new_conversation_turn("fresh"))
        .await
        .unwrap();
    // B: old turns, which A's retention must not touch.
    let mut b_old = new_conversation_turn("b old");
    b_old.created_at = at(100);
    let (b_conv, _) = store.append_turn(&b.member, b_old).await.unwrap();
    store
        .idempotency_start(&a.member, "old-key", b"h", at(2))
        .await
        .unwrap();
    store
        .idempotency_start(&a.member, "new-key", b"h", now)
        .await
        .unwrap();

    let scope = operator.admin_of(a.tenant.id);
    let cutoff = at(30);
    let mut total = switchyard_core::model::RetentionBatch::default();
    loop {
        // Small batches: the run is many short transactions, each consistent.
        let batch = store.retention_batch(&scope, cutoff, 1).await.unwrap();
        if batch.turns == 0 {
            break;
        }
        total.turns += batch.turns;
        total.conversations += batch.conversations;
    }
    assert_eq!((total.turns, total.conversations), (3, 1));
    let left = store
        .list_conversations(&a.admin, ConversationFilter::All, PageRequest::first(10))
        .await
        .unwrap();
    let mut ids: Vec<_> = left.items.iter().map(|c| (c.id, c.message_count)).collect();
    ids.sort();
    let mut expected = vec![(mixed.id, 1), (fresh.id, 1)];
    expected.sort();
    assert_eq!(ids, expected);
    let (_, turns) = store
        .list_turns(&a.admin, mixed.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        turns
            .items
            .iter()
            .map(|t| t.user_message.as_str())
            .collect::<Vec<_>>(),
        vec!["mixed new"]
    );
    assert_eq!(
        store
            .get_conversation(&b.admin, b_conv.id)
            .await
            .unwrap()
            .message_count,
        1,
        "B untouched"
    );
    // Expired idempotency records go; fresh ones stay.
    assert_eq!(
        store
            .purge_expired(
                &scope,
                now - TimeDelta::hours(24),
                now - TimeDelta::days(30)
            )
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .idempotency_start(&a.member, "new-key", b"h", now)
            .await
            .unwrap(),
        switchyard_core::model::IdempotencyStart::InFlight
    );
    // Again: nothing to do.
    assert_eq!(
        store.retention_batch(&scope, cutoff, 100).await.unwrap(),
        Default::default()
    );
    assert_eq!(
        store
            .purge_expired(
                &scope,
                now - TimeDelta::hours(24),
                now - TimeDelta::days(30)
            )
            .await
            .unwrap(),
        0
    );
}

on_both_backends!(
    analytics_match_the_turns_made,
    retention_deletes_exactly_the_expired_rows
);

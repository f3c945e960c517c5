//! Turns stored with their conversation: counts, limits under concurrency, pages that
//! stay correct while rows are inserted, routing records kept as written.

use chrono::TimeDelta;
use std::collections::HashSet;
use switchyard_core::ConversationId;
use switchyard_core::model::TurnTarget;
use switchyard_core::page::PageRequest;
use switchyard_store::{ConversationFilter, Opened, StoreError};

use crate::common::{
    agent, follow_up_turn, new_conversation_turn, on_both_backends, start_conversation, tenant,
};

async fn turns_update_their_conversation(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let billing = store
        .create_agent(&a.admin, agent("billing"))
        .await
        .unwrap();
    let mut first = new_conversation_turn(
        "Why was I charged twice on my invoice this month, and can you refund the second charge please?",
    );
    first.selected_agent_id = Some(billing.id);
    let (conversation, turn) = store.append_turn(&a.member, first).await.unwrap();
    assert_eq!(conversation.message_count, 1);
    assert_eq!(conversation.primary_intent.as_deref(), Some("billing"));
    assert_eq!(conversation.last_agent_id, Some(billing.id));
    assert_eq!(conversation.user_id, a.member.user_id());
    let title = conversation.title.clone().unwrap();
    assert!(
        title.chars().count() <= 81 && title.ends_with('…'),
        "{title}"
    );
    assert_eq!(turn.conversation_id, conversation.id);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(turn.routing.get()).unwrap(),
        serde_json::json!({"method": "lexical"})
    );

    let mut next = follow_up_turn(conversation.id, "thanks");
    next.intent_category = Some("general".into());
    next.selected_agent_id = None;
    next.created_at = turn.created_at + TimeDelta::seconds(5);
    let (after, _) = store.append_turn(&a.member, next).await.unwrap();
    assert_eq!(after.message_count, 2);
    assert_eq!(
        after.primary_intent.as_deref(),
        Some("billing"),
        "the first intent stays primary"
    );
    assert_eq!(
        after.last_agent_id,
        Some(billing.id),
        "a turn without an agent keeps the last one"
    );
    assert_eq!(after.last_activity, turn.created_at + TimeDelta::seconds(5));

    // A turn stamped earlier (a slow concurrent request) never moves last_activity back.
    let mut late = follow_up_turn(conversation.id, "late");
    late.created_at = turn.created_at;
    let (after_late, _) = store.append_turn(&a.member, late).await.unwrap();
    assert_eq!(after_late.last_activity, after.last_activity);
    assert_eq!(after_late.message_count, 3);

    // A turn for a conversation that does not exist writes nothing.
    let missing = store
        .append_turn(&a.member, follow_up_turn(ConversationId::new(), "x"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound)));
    assert_eq!(
        store
            .count_conversations(&a.member, i64::MAX, i64::MAX)
            .await
            .unwrap(),
        (1, 1)
    );

    // History is the last N turns, oldest first.
    let (_, history) = store
        .chat_context(&a.member, conversation.id, 2)
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .map(|t| t.user_message.as_str())
            .collect::<Vec<_>>(),
        vec!["late", "thanks"]
    );

    store
        .delete_conversation(&a.member, conversation.id)
        .await
        .unwrap();
    assert!(matches!(
        store
            .list_turns(&a.admin, conversation.id, PageRequest::first(5))
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn conversation_limits_write_nothing(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let limited = |max_per_user, max_per_tenant| {
        let mut turn = new_conversation_turn("hello");
        if let TurnTarget::New {
            max_per_user: u,
            max_per_tenant: t,
            ..
        } = &mut turn.target
        {
            *u = max_per_user;
            *t = max_per_tenant;
        }
        turn
    };
    store.append_turn(&a.member, limited(2, 10)).await.unwrap();
    store.append_turn(&a.member, limited(2, 10)).await.unwrap();
    let over = store.append_turn(&a.member, limited(2, 10)).await;
    assert!(
        matches!(
            over,
            Err(StoreError::LimitReached {
                which: "per_user",
                limit: 2
            })
        ),
        "{over:?}"
    );
    let over_tenant = store.append_turn(&a.admin, limited(10, 2)).await;
    assert!(
        matches!(
            over_tenant,
            Err(StoreError::LimitReached {
                which: "per_tenant",
                limit: 2
            })
        ),
        "{over_tenant:?}"
    );
    assert_eq!(
        store
            .count_conversations(&a.member, i64::MAX, i64::MAX)
            .await
            .unwrap(),
        (2, 2)
    );
    // Follow-ups are not new conversations: they pass at the limit.
    let own = store
        .list_conversations(&a.member, ConversationFilter::Own, PageRequest::first(10))
        .await
        .unwrap();
    store
        .append_turn(&a.member, follow_up_turn(own.items[0].id, "more"))
        .await
        .unwrap();
}

async fn concurrent_new_conversations_respect_the_limit(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        let scope = a.member.clone();
        tasks.push(tokio::spawn(async move {
            let mut turn = new_conversation_turn("race");
            if let TurnTarget::New { max_per_user, .. } = &mut turn.target {
                *max_per_user = 5;
            }
            store.append_turn(&scope, turn).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::LimitReached { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(
        store
            .count_conversations(&a.member, i64::MAX, i64::MAX)
            .await
            .unwrap()
            .0,
        5
    );
    // Each side is counted only up to the limit asked about.
    assert_eq!(
        store.count_conversations(&a.member, 3, 4).await.unwrap(),
        (3, 4)
    );
    assert_eq!(
        store.count_conversations(&a.member, 0, 0).await.unwrap(),
        (0, 0)
    );
}

async fn concurrent_turns_count_exactly(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let (conv, _) = start_conversation(&store, &a.member, "start").await;
    let mut tasks = Vec::new();
    for i in 0..25 {
        let store = store.clone();
        let scope = a.member.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append_turn(&scope, follow_up_turn(conv, &format!("turn {i}")))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let conversation = store.get_conversation(&a.member, conv).await.unwrap();
    assert_eq!(conversation.message_count, 26);
    let mut all = 0;
    let mut page = PageRequest::first(7);
    loop {
        let result = store.list_turns(&a.member, conv, page).await.unwrap().1;
        all += result.items.len();
        match result.next {
            Some(c) => page = PageRequest::after(7, c),
            None => break,
        }
    }
    assert_eq!(all, 26);
}

/// Pages of the conversation list stay correct while new conversations arrive: every
/// conversation that existed when paging began is seen exactly once.
async fn conversation_pages_stay_correct_while_rows_are_inserted(
    Opened { store, operator }: Opened,
) {
    let a = tenant(&store, &operator).await;
    let mut existing = HashSet::new();
    for i in 0..9 {
        existing.insert(
            start_conversation(&store, &a.member, &format!("c{i}"))
                .await
                .0,
        );
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let result = store
            .list_conversations(&a.member, ConversationFilter::Own, page)
            .await
            .unwrap();
        seen.extend(result.items.iter().map(|c| c.id));
        // New activity lands at the top, before the cursor: it does not shift later pages.
        start_conversation(&store, &a.member, "newcomer").await;
        match result.next {
            Some(c) => page = PageRequest::after(4, c),
            None => break,
        }
    }
    let seen_set: HashSet<_> = seen.iter().copied().collect();
    assert_eq!(seen.len(), seen_set.len(), "no conversation twice");
    assert!(
        existing.is_subset(&seen_set),
        "every conversation that existed is seen"
    );
    // Latest activity first.
    let listed = store
        .list_conversations(&a.member, ConversationFilter::Own, PageRequest::first(100))
        .await
        .unwrap();
    assert!(
        listed
            .items
            .windows(2)
            .all(|w| (w[0].last_activity, w[0].id) > (w[1].last_activity, w[1].id))
    );
}

/// A routing record reads back exactly as the server wrote it — the same text, keys in the
/// same order, numbers as written — for a new conversation's turn and a follow-up alike.
async fn routing_records_read_back_as_written(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let routing = serde_json::json!({
        "method": "lexical",
        "confidence": 0.873_421_907_654_321_1,
        "alternatives": [{"name": "billing", "score": 1e-7}, {"name": "it", "score": 0.5}],
        "reason": "best match: \"refund\" — ünïcode",
        "failover_from": null,
    });
    let written = routing.to_string();
    let mut first = new_conversation_turn("refund please");
    first.routing = routing.clone();
    let (conversation, _) = store.append_turn(&a.member, first).await.unwrap();
    let mut next = follow_up_turn(conversation.id, "and the invoice");
    next.routing = routing;
    next.created_at += TimeDelta::seconds(1);
    store.append_turn(&a.member, next).await.unwrap();

    let (_, turns) = store
        .list_turns(&a.member, conversation.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(turns.items.len(), 2);
    for turn in &turns.items {
        assert_eq!(turn.routing.get(), written, "{}", turn.user_message);
    }
}

on_both_backends!(
    turns_update_their_conversation,
    conversation_limits_write_nothing,
    concurrent_new_conversations_respect_the_limit,
    concurrent_turns_count_exactly,
    conversation_pages_stay_correct_while_rows_are_inserted,
    routing_records_read_back_as_written,
);

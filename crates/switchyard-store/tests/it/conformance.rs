//! The store's behaviour, the same on both backends: create, read, list, update and delete
//! of every resource, turns stored with their conversation, limits, pagination and
//! idempotency records.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use switchyard_core::model::{
    AgentFields, IdempotencyStart, NewApiKey, NewTenant, NewUser, TenantPatch, TenantStatus,
    TurnTarget, UserPatch, UserStatus,
};
use switchyard_core::page::PageRequest;
use switchyard_core::settings::TenantSettings;
use switchyard_core::{AgentId, ApiKeyId, ConversationId, Role};
use switchyard_store::{ConversationFilter, FirstRead, FirstReadResult, Store, StoreError};

use crate::common::{
    agent, follow_up_turn, new_conversation_turn, on_both_backends, start_conversation, tenant,
};

async fn tenants(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    assert_eq!(store.get_tenant(a.tenant.id).await.unwrap(), a.tenant);
    assert_eq!(
        store.find_tenant_by_slug(&a.tenant.slug).await.unwrap().id,
        a.tenant.id
    );
    let clash = store
        .create_tenant(
            NewTenant {
                slug: a.tenant.slug.clone(),
                name: "Again".into(),
                settings: TenantSettings::default(),
            },
            None,
        )
        .await;
    assert!(
        matches!(
            clash,
            Err(StoreError::Conflict {
                constraint: "tenant_slug"
            })
        ),
        "{clash:?}"
    );

    let settings = TenantSettings {
        min_confidence: Some(0.5),
        ..TenantSettings::default()
    };
    let updated = store
        .update_tenant(
            a.tenant.id,
            TenantPatch {
                name: Some("Renamed".into()),
                status: Some(TenantStatus::Suspended),
                settings: Some(
                    serde_json::json!({"min_confidence": 0.5, "unknown": null})
                        .as_object()
                        .cloned()
                        .unwrap(),
                ),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.status),
        ("Renamed", TenantStatus::Suspended)
    );
    assert_eq!(updated.settings, settings);
    // Settings merge key by key in the store (`null` removes a key); a bad value is refused
    // and changes nothing.
    let patch = |v: serde_json::Value| TenantPatch {
        settings: v.as_object().cloned(),
        ..TenantPatch::default()
    };
    let merged = store
        .update_tenant(a.tenant.id, patch(serde_json::json!({"min_margin": 0.2})))
        .await
        .unwrap();
    assert_eq!(
        (merged.settings.min_confidence, merged.settings.min_margin),
        (Some(0.5), Some(0.2))
    );
    assert!(matches!(
        store
            .update_tenant(a.tenant.id, patch(serde_json::json!({"min_margin": 7})))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let updated = store
        .update_tenant(a.tenant.id, patch(serde_json::json!({"min_margin": null})))
        .await
        .unwrap();
    assert_eq!(updated.settings, settings);
    // Concurrent patches of different keys all land.
    let keys = [
        ("min_margin", serde_json::json!(0.25)),
        ("switch_margin", serde_json::json!(0.35)),
        ("retention_days", serde_json::json!(30)),
        ("max_conversations_per_user", serde_json::json!(9)),
        ("rate_limit_per_second", serde_json::json!(7)),
        ("rate_limit_burst", serde_json::json!(11)),
    ];
    let mut tasks = Vec::new();
    for (key, value) in keys.clone() {
        let store = store.clone();
        let id = a.tenant.id;
        tasks.push(tokio::spawn(async move {
            store
                .update_tenant(id, patch(serde_json::json!({ key: value })))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = serde_json::to_value(&store.get_tenant(a.tenant.id).await.unwrap().settings).unwrap();
    for (key, value) in keys {
        assert_eq!(all[key], value, "{key} was lost: {all}");
    }
    let keys_only: serde_json::Map<String, serde_json::Value> = all
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.as_str() != "min_confidence")
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let updated = store
        .update_tenant(
            a.tenant.id,
            TenantPatch {
                settings: Some(keys_only),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.settings, settings);
    // An empty patch changes nothing.
    let same = store
        .update_tenant(a.tenant.id, TenantPatch::default())
        .await
        .unwrap();
    assert_eq!(same, updated);

    // Paging through all tenants finds this one exactly once.
    let mut seen = HashSet::new();
    let mut page = PageRequest::first(2);
    loop {
        let result = store.list_tenants(page).await.unwrap();
        for t in &result.items {
            assert!(seen.insert(t.id), "a tenant appeared twice");
        }
        match result.next {
            Some(cursor) => page = PageRequest::after(2, cursor),
            None => break,
        }
    }
    assert!(seen.contains(&a.tenant.id));

    store.delete_tenant(a.tenant.id).await.unwrap();
    assert!(matches!(
        store.get_tenant(a.tenant.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_tenant(a.tenant.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn deleting_a_tenant_erases_its_rows_and_nothing_else(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let b = tenant(&store).await;
    for actors in [&a, &b] {
        store
            .create_agent(&actors.admin, agent("billing"))
            .await
            .unwrap();
        let (conv, _) = start_conversation(&store, &actors.member, "hello").await;
        store
            .append_turn(&actors.member, follow_up_turn(conv, "again"))
            .await
            .unwrap();
    }
    store.delete_tenant(a.tenant.id).await.unwrap();
    assert!(matches!(
        store.find_principal(a.tenant.id, a.member.user_id()).await,
        Err(StoreError::NotFound)
    ));
    let b_conversations = store
        .list_conversations(&b.admin, ConversationFilter::All, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(b_conversations.items.len(), 1);
    assert_eq!(b_conversations.items[0].message_count, 2);
    assert_eq!(store.routable_agents(&b.member).await.unwrap().1.len(), 1);
}

async fn users(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let email = a.member_user.email.clone();
    let clash = store
        .create_user(
            &a.admin,
            NewUser {
                email,
                display_name: None,
                role: Role::Member,
                password_hash: None,
            },
        )
        .await;
    assert!(
        matches!(
            clash,
            Err(StoreError::Conflict {
                constraint: "user_email"
            })
        ),
        "{clash:?}"
    );

    let user = store.get_user(&a.admin, a.member.user_id()).await.unwrap();
    assert_eq!(user, a.member_user);
    let changed = store
        .update_user(
            &a.admin,
            user.id,
            UserPatch {
                display_name: Some(Some("Mia".into())),
                role: Some(Role::Admin),
                status: Some(UserStatus::Disabled),
                password_hash: Some("$argon2id$fake".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.display_name.as_deref(), Some("Mia"));
    assert_eq!(
        (changed.role, changed.status),
        (Role::Admin, UserStatus::Disabled)
    );
    let login = store.find_login(&a.tenant.slug, &user.email).await.unwrap();
    assert_eq!(login.password_hash.as_deref(), Some("$argon2id$fake"));
    assert_eq!(login.principal.tenant.id, a.tenant.id);
    // Clearing the name, leaving the rest.
    let cleared = store
        .update_user(
            &a.admin,
            user.id,
            UserPatch {
                display_name: Some(None),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.display_name, None);
    assert_eq!(cleared.role, Role::Admin);

    let listed = store
        .list_users(&a.admin, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.next, None);

    // Deleting a user takes their conversations along.
    let (conv, _) = start_conversation(&store, &a.member, "bye").await;
    store.delete_user(&a.admin, user.id).await.unwrap();
    assert!(matches!(
        store.get_conversation(&a.admin, conv).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.get_user(&a.admin, user.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.find_login(&a.tenant.slug, &user.email).await,
        Err(StoreError::NotFound)
    ));
}

async fn api_keys(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let key = store
        .create_api_key(
            &a.admin,
            NewApiKey {
                id: ApiKeyId::new(),
                user_id: a.member.user_id(),
                name: "ci".into(),
                prefix: "sy_123456789".into(),
                secret_hash: vec![7; 32],
            },
        )
        .await
        .unwrap();
    assert_eq!(key.last_used_at, None);
    let found = store.find_api_key(a.tenant.id, &[7; 32]).await.unwrap();
    assert_eq!(found.key_id, key.id);
    assert_eq!(found.principal.user.role, Role::Member);
    let listed = store
        .list_api_keys(&a.admin, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].last_used_at.is_some(), "use is recorded");

    store.revoke_api_key(&a.admin, key.id).await.unwrap();
    assert!(
        store
            .find_api_key(a.tenant.id, &[7; 32])
            .await
            .unwrap()
            .revoked
    );
    assert!(
        store
            .list_api_keys(&a.admin, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(matches!(
        store.revoke_api_key(&a.admin, key.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn agents(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let (v0, none) = store.routable_agents(&a.member).await.unwrap();
    assert!(none.is_empty());
    let billing = store
        .create_agent(&a.admin, agent("billing"))
        .await
        .unwrap();
    assert_eq!(billing.intents, vec!["billing"]);
    let clash = store.create_agent(&a.admin, agent("billing")).await;
    assert!(
        matches!(
            clash,
            Err(StoreError::Conflict {
                constraint: "agent_name"
            })
        ),
        "{clash:?}"
    );

    let fallback = store
        .create_agent(
            &a.admin,
            AgentFields {
                is_fallback: true,
                ..agent("general")
            },
        )
        .await
        .unwrap();
    let second_fallback = store
        .create_agent(
            &a.admin,
            AgentFields {
                is_fallback: true,
                ..agent("other")
            },
        )
        .await;
    assert!(
        matches!(
            second_fallback,
            Err(StoreError::Conflict {
                constraint: "agent_fallback"
            })
        ),
        "{second_fallback:?}"
    );
    // A disabled agent may be marked fallback; only one enabled fallback is allowed.
    store
        .create_agent(
            &a.admin,
            AgentFields {
                is_fallback: true,
                enabled: false,
                ..agent("spare")
            },
        )
        .await
        .unwrap();

    let (v1, routable) = store.routable_agents(&a.member).await.unwrap();
    assert!(v1 > v0, "creating agents bumps the version");
    assert_eq!(
        routable.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![billing.id, fallback.id]
    );

    let updated = store
        .update_agent(
            &a.admin,
            billing.id,
            AgentFields {
                enabled: false,
                keywords: vec!["invoice".into()],
                ..AgentFields::from(billing.clone())
            },
        )
        .await
        .unwrap();
    assert!(!updated.enabled);
    assert_eq!(updated.keywords, vec!["invoice"]);
    assert!(updated.updated_at >= billing.updated_at);
    let (v2, routable) = store.routable_agents(&a.member).await.unwrap();
    assert!(v2 > v1);
    assert_eq!(routable.len(), 1);

    // Members read agents; the list pages.
    let first = store
        .list_agents(&a.member, PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let rest = store
        .list_agents(&a.member, PageRequest::after(2, first.next.unwrap()))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next, None);

    store.delete_agent(&a.admin, fallback.id).await.unwrap();
    assert!(matches!(
        store.get_agent(&a.member, fallback.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.routable_agents(&a.member).await.unwrap().0 > v2);
    assert!(matches!(
        store.get_agent(&a.member, AgentId::new()).await,
        Err(StoreError::NotFound)
    ));
}

async fn turns_update_their_conversation(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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

async fn conversation_limits_write_nothing(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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

async fn concurrent_new_conversations_respect_the_limit(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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

async fn concurrent_turns_count_exactly(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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
async fn conversation_pages_stay_correct_while_rows_are_inserted(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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

async fn idempotency_records(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let now = Utc::now();
    assert_eq!(
        store
            .idempotency_start(&a.member, "key", b"h1", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    assert_eq!(
        store
            .idempotency_start(&a.member, "key", b"h1", now)
            .await
            .unwrap(),
        IdempotencyStart::InFlight
    );
    assert_eq!(
        store
            .idempotency_start(&a.member, "key", b"h2", now)
            .await
            .unwrap(),
        IdempotencyStart::Mismatch
    );
    let answer = serde_json::json!({"response": "hi"});
    store
        .idempotency_complete(&a.member, "key", &answer)
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_start(&a.member, "key", b"h1", now)
            .await
            .unwrap(),
        IdempotencyStart::Completed(answer.clone())
    );
    // Another user of the tenant has their own keys.
    assert_eq!(
        store
            .idempotency_start(&a.admin, "key", b"h2", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    // After 24 hours a key is forgotten.
    let tomorrow = now + TimeDelta::hours(25);
    assert_eq!(
        store
            .idempotency_start(&a.member, "key", b"h2", tomorrow)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    // A released key (its request failed) runs again.
    assert_eq!(
        store
            .idempotency_start(&a.member, "k2", b"h", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    store.idempotency_release(&a.member, "k2").await.unwrap();
    assert_eq!(
        store
            .idempotency_start(&a.member, "k2", b"h", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    // A claim whose server died (no answer for minutes) is taken over.
    let later = now + TimeDelta::minutes(10);
    assert_eq!(
        store
            .idempotency_start(&a.member, "k2", b"h", later)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
}

async fn server_secrets_are_made_once(store: Arc<dyn Store>) {
    let name = format!("test-{}", rand::random::<u64>());
    let first = store
        .server_secret(&name, &|| "first".to_string())
        .await
        .unwrap();
    let second = store
        .server_secret(&name, &|| "second".to_string())
        .await
        .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("first", "first"));
}

/// A routing record reads back exactly as the server wrote it — the same text, keys in the
/// same order, numbers as written — for a new conversation's turn and a follow-up alike.
async fn routing_records_read_back_as_written(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
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

/// The principal with a first read: the same as the principal and the read on their own;
/// on PostgreSQL read in the same round trip for an active user of an active tenant, with
/// the role as stored; never for a disabled user or a suspended tenant.
async fn principal_and_first_read(store: Arc<dyn Store>) {
    let a = tenant(&store).await;
    let b = tenant(&store).await;
    let (conversation, _) = start_conversation(&store, &a.member, "first").await;
    let mut next = follow_up_turn(conversation, "second");
    next.created_at += TimeDelta::seconds(1);
    store.append_turn(&a.member, next).await.unwrap();
    let combined = store.backend() == switchyard_store::Backend::Postgres;
    let page = PageRequest::first(1);
    let reads = [
        FirstRead::Turns(conversation, page),
        FirstRead::OwnConversations(page),
        FirstRead::ChatContext(conversation, 5),
    ];
    for (scope, sees) in [(&a.member, true), (&a.admin, true)] {
        for read in &reads {
            let (principal, done) = store
                .find_principal_and_read(scope.tenant_id(), scope.user_id(), read)
                .await
                .unwrap();
            assert_eq!(
                principal.user,
                store
                    .find_principal(scope.tenant_id(), scope.user_id())
                    .await
                    .unwrap()
                    .user
            );
            assert_eq!(done.is_some(), combined, "{read:?}");
            let alone = read.run(store.as_ref(), scope).await;
            let Some(done) = done else { continue };
            match (done, alone) {
                (Ok(FirstReadResult::Turns(c, t)), Ok(FirstReadResult::Turns(c2, t2))) => {
                    assert!(sees);
                    assert_eq!((c, t), (c2, t2));
                }
                (Ok(FirstReadResult::Conversations(p)), Ok(FirstReadResult::Conversations(p2))) => {
                    assert_eq!(p, p2);
                }
                (
                    Ok(FirstReadResult::ChatContext(c, h)),
                    Ok(FirstReadResult::ChatContext(c2, h2)),
                ) => {
                    assert_eq!((c, h), (c2, h2));
                    assert_eq!(scope.user_id(), a.member.user_id());
                }
                (Err(StoreError::NotFound), Err(StoreError::NotFound)) => {
                    // The admin's chat context of the member's conversation: chats are
                    // the owner's alone.
                    assert!(matches!(read, FirstRead::ChatContext(..)));
                    assert_eq!(scope.user_id(), a.admin.user_id());
                }
                (done, alone) => panic!("{read:?}: {done:?} against {alone:?}"),
            }
        }
    }
    let (_, turns) = store
        .find_principal_and_read(a.member.tenant_id(), a.member.user_id(), &reads[0])
        .await
        .unwrap();
    if let Some(Ok(FirstReadResult::Turns(_, turns))) = turns {
        assert_eq!(turns.items.len(), 1);
        assert!(turns.next.is_some(), "the second turn is on the next page");
    } else {
        assert!(!combined, "{turns:?}");
    }

    // Another tenant's member names this tenant: nobody; a foreign conversation: not found.
    assert!(matches!(
        store
            .find_principal_and_read(a.member.tenant_id(), b.member.user_id(), &reads[0])
            .await,
        Err(StoreError::NotFound)
    ));
    let (_, foreign) = store
        .find_principal_and_read(b.member.tenant_id(), b.member.user_id(), &reads[0])
        .await
        .unwrap();
    assert!(matches!(foreign, Some(Err(StoreError::NotFound))) || (!combined && foreign.is_none()));

    // A disabled user, a suspended tenant: the principal, and nothing read.
    store
        .update_user(
            &a.admin,
            a.member.user_id(),
            UserPatch {
                status: Some(UserStatus::Disabled),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    for read in &reads {
        let (principal, done) = store
            .find_principal_and_read(a.member.tenant_id(), a.member.user_id(), read)
            .await
            .unwrap();
        assert_eq!(principal.user.status, UserStatus::Disabled);
        assert!(done.is_none(), "{read:?}");
    }
    store
        .update_tenant(
            b.tenant.id,
            TenantPatch {
                status: Some(TenantStatus::Suspended),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    let (principal, done) = store
        .find_principal_and_read(b.member.tenant_id(), b.member.user_id(), &reads[1])
        .await
        .unwrap();
    assert_eq!(principal.tenant.status, TenantStatus::Suspended);
    assert!(done.is_none());
}

on_both_backends!(
    tenants,
    deleting_a_tenant_erases_its_rows_and_nothing_else,
    users,
    api_keys,
    agents,
    turns_update_their_conversation,
    conversation_limits_write_nothing,
    concurrent_new_conversations_respect_the_limit,
    concurrent_turns_count_exactly,
    conversation_pages_stay_correct_while_rows_are_inserted,
    idempotency_records,
    server_secrets_are_made_once,
    routing_records_read_back_as_written,
    principal_and_first_read,
);

mod operations {
    use std::sync::Arc;

    use chrono::{TimeDelta, Utc};
    use switchyard_core::model::{AgentCallError, TurnTarget};
    use switchyard_store::{ConversationFilter, Store};

    use crate::common::{agent, follow_up_turn, new_conversation_turn, on_both_backends, tenant};
    use switchyard_core::page::PageRequest;

    /// Analytics over known traffic: two tenants, exact figures, each tenant's own.
    async fn analytics_match_the_turns_made(store: Arc<dyn Store>) {
        let a = tenant(&store).await;
        let b = tenant(&store).await;
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
    async fn retention_deletes_exactly_the_expired_rows(store: Arc<dyn Store>) {
        let a = tenant(&store).await;
        let b = tenant(&store).await;
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

        let scope = switchyard_core::TenantScope::for_maintenance(a.tenant.id);
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
}

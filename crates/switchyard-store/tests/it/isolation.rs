//! The original design's isolation groups — conversation isolation, message-history
//! isolation, service-level isolation, cross-tenant prevention — on both backends.

use switchyard_core::model::{AgentFields, NewApiKey, NewUser, UserPatch};
use switchyard_core::page::PageRequest;
use switchyard_core::{ApiKeyId, Role};
use switchyard_store::{ConversationFilter, Opened, StoreError, TokenClaim};

use crate::common::{agent, follow_up_turn, on_both_backends, start_conversation, tenant};

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

/// Tenant B can neither list, read nor delete tenant A's conversations.
async fn conversation_isolation(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let (a_conv, _) = start_conversation(&store, &a.member, "my invoice is wrong").await;
    let (b_conv, _) = start_conversation(&store, &b.member, "vpn is down").await;

    for scope in [&b.member, &b.admin] {
        assert_not_found(
            store.get_conversation(scope, a_conv).await,
            "read another tenant's conversation",
        );
        assert_not_found(
            store.delete_conversation(scope, a_conv).await,
            "delete another tenant's conversation",
        );
    }
    let b_all = store
        .list_conversations(&b.admin, ConversationFilter::All, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        b_all.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![b_conv]
    );
    // Naming A's member as the user filter finds nothing in B.
    let by_foreign_user = store
        .list_conversations(
            &b.admin,
            ConversationFilter::User(a.member.user_id()),
            PageRequest::first(100),
        )
        .await
        .unwrap();
    assert!(by_foreign_user.items.is_empty());
    // A's conversation is untouched.
    let still = store.get_conversation(&a.member, a_conv).await.unwrap();
    assert_eq!(still.message_count, 1);
    assert_eq!(
        store
            .count_conversations(&b.member, i64::MAX, i64::MAX)
            .await
            .unwrap(),
        (1, 1)
    );
}

/// Tenant B cannot read A's turns, load them as history, or append to A's conversation.
async fn message_history_isolation(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let (a_conv, _) = start_conversation(&store, &a.member, "first").await;
    store
        .append_turn(&a.member, follow_up_turn(a_conv, "second"))
        .await
        .unwrap();

    assert_not_found(
        store
            .list_turns(&b.admin, a_conv, PageRequest::first(10))
            .await,
        "page another tenant's turns",
    );
    assert_not_found(
        store.chat_context(&b.member, a_conv, 10).await,
        "load another tenant's history",
    );
    assert_not_found(
        store
            .append_turn(&b.member, follow_up_turn(a_conv, "sneaky"))
            .await,
        "append to another tenant's conversation",
    );
    let turns = store
        .list_turns(&a.member, a_conv, PageRequest::first(10))
        .await
        .unwrap()
        .1;
    assert_eq!(
        turns
            .items
            .iter()
            .map(|t| t.user_message.as_str())
            .collect::<Vec<_>>(),
        vec!["first", "second"]
    );
    let (conversation, history) = store.chat_context(&a.member, a_conv, 10).await.unwrap();
    assert_eq!(conversation.message_count, 2);
    assert_eq!(history.len(), 2);
    let turn_ids: Vec<_> = turns.items.iter().map(|t| t.id).collect();
    assert!(
        history.iter().all(|h| turn_ids.contains(&h.id)),
        "the history is this conversation's turns"
    );
}

/// Within one tenant: members see only their own conversations; admins see all; members
/// may not ask for other users' lists.
async fn service_level_isolation(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let other = crate::common::another_member(&store, &a).await;
    let (mine, _) = start_conversation(&store, &a.member, "mine").await;
    let (theirs, _) = start_conversation(&store, &other, "theirs").await;

    assert_not_found(
        store.get_conversation(&a.member, theirs).await,
        "read a colleague's conversation",
    );
    assert_not_found(
        store
            .list_turns(&a.member, theirs, PageRequest::first(5))
            .await,
        "read a colleague's turns",
    );
    assert_not_found(
        store.delete_conversation(&a.member, theirs).await,
        "delete a colleague's conversation",
    );
    assert_not_found(
        store.chat_context(&a.member, theirs, 5).await,
        "chat in a colleague's conversation",
    );
    assert_not_found(
        store
            .append_turn(&a.member, follow_up_turn(theirs, "hi"))
            .await,
        "append to a colleague's conversation",
    );
    // Admins do not chat in other users' conversations either.
    assert_not_found(
        store
            .append_turn(&a.admin, follow_up_turn(theirs, "hi"))
            .await,
        "admin appends to a user's conversation",
    );
    let own = store
        .list_conversations(&a.member, ConversationFilter::Own, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        own.items.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![mine]
    );
    for filter in [
        ConversationFilter::All,
        ConversationFilter::User(other.user_id()),
    ] {
        assert!(matches!(
            store
                .list_conversations(&a.member, filter, PageRequest::first(10))
                .await,
            Err(StoreError::Forbidden)
        ));
    }
    assert_eq!(
        store
            .get_conversation(&a.admin, theirs)
            .await
            .unwrap()
            .user_id,
        other.user_id()
    );
    let all = store
        .list_conversations(&a.admin, ConversationFilter::All, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    // Member-only scopes cannot manage the tenant.
    assert!(matches!(
        store.list_users(&a.member, PageRequest::first(10)).await,
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        store.create_agent(&a.member, agent("x")).await,
        Err(StoreError::Forbidden)
    ));
}

/// Nothing of tenant A can be reached, changed or referenced from tenant B's scope.
async fn cross_tenant_prevention(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let a_agent = store
        .create_agent(&a.admin, agent("billing"))
        .await
        .unwrap();

    // Agents.
    assert_not_found(
        store.get_agent(&b.admin, a_agent.id).await,
        "read another tenant's agent",
    );
    assert_not_found(
        store
            .update_agent(
                &b.admin,
                a_agent.id,
                AgentFields {
                    name: "pwned".into(),
                    ..agent("billing")
                },
            )
            .await,
        "update another tenant's agent",
    );
    assert_not_found(
        store.delete_agent(&b.admin, a_agent.id).await,
        "delete another tenant's agent",
    );
    let (_, b_routable) = store.routable_agents(&b.member).await.unwrap();
    assert!(
        b_routable.is_empty(),
        "another tenant's agents are never routable"
    );
    // The same agent name is free in another tenant.
    store
        .create_agent(&b.admin, agent("billing"))
        .await
        .unwrap();
    assert_eq!(
        store.get_agent(&a.member, a_agent.id).await.unwrap().name,
        "billing"
    );

    // Users.
    assert_not_found(
        store.get_user(&b.admin, a.member.user_id()).await,
        "read another tenant's user",
    );
    assert_not_found(
        store
            .update_user(
                &b.admin,
                a.member.user_id(),
                UserPatch {
                    role: Some(Role::Admin),
                    ..UserPatch::default()
                },
            )
            .await,
        "promote another tenant's user",
    );
    assert_not_found(
        store.delete_user(&b.admin, a.member.user_id()).await,
        "delete another tenant's user",
    );
    // The same e-mail address is free in another tenant.
    store
        .create_user(
            &b.admin,
            NewUser {
                email: a.member_user.email.clone(),
                display_name: None,
                role: Role::Member,
                password_hash: None,
            },
        )
        .await
        .unwrap();

    // API keys: one cannot be made for a user of another tenant, nor revoked across.
    assert_not_found(
        store
            .create_api_key(
                &b.admin,
                NewApiKey {
                    id: ApiKeyId::new(),
                    user_id: a.member.user_id(),
                    name: "stolen".into(),
                    prefix: "sy_abcdefghi".into(),
                    secret_hash: vec![1; 32],
                },
            )
            .await,
        "make a key for another tenant's user",
    );
    let a_key = store
        .create_api_key(
            &a.admin,
            NewApiKey {
                id: ApiKeyId::new(),
                user_id: a.member.user_id(),
                name: "ci".into(),
                prefix: "sy_abcdefghi".into(),
                secret_hash: vec![2; 32],
            },
        )
        .await
        .unwrap();
    assert_not_found(
        store.revoke_api_key(&b.admin, a_key.id).await,
        "revoke another tenant's key",
    );
    // A key is only found in its own tenant.
    assert_not_found(
        store.find_api_key(&operator, b.tenant.id, &[2; 32]).await,
        "find a key through another tenant",
    );
    let found = store
        .find_api_key(&operator, a.tenant.id, &[2; 32])
        .await
        .unwrap();
    assert_eq!(found.principal.user.id, a.member.user_id());
    assert!(!found.revoked);
    // And a principal only in its own tenant.
    assert_not_found(
        store
            .find_principal(
                &operator,
                TokenClaim {
                    tenant: b.tenant.id,
                    user: a.member.user_id(),
                },
            )
            .await,
        "a user through another tenant",
    );

    // Idempotency keys are per tenant and user: B's use of the same key is independent.
    let now = chrono::Utc::now();
    use switchyard_core::model::IdempotencyStart;
    assert_eq!(
        store
            .idempotency_start(&a.member, "k1", b"req", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    assert_eq!(
        store
            .idempotency_start(&b.member, "k1", b"other", now)
            .await
            .unwrap(),
        IdempotencyStart::Started
    );
    store
        .idempotency_complete(&b.member, "k1", &serde_json::json!({"b": 1}))
        .await
        .unwrap();
    assert_eq!(
        store
            .idempotency_start(&a.member, "k1", b"req", now)
            .await
            .unwrap(),
        IdempotencyStart::InFlight
    );

    // Counts are per tenant.
    start_conversation(&store, &a.member, "one").await;
    assert_eq!(
        store
            .count_conversations(&b.member, i64::MAX, i64::MAX)
            .await
            .unwrap(),
        (0, 0)
    );

    // A made-up scope naming a tenant that does not exist sees nothing.
    let ghost = operator.act_as(Default::default(), Default::default(), Role::Admin);
    assert!(
        store
            .list_agents(&ghost, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

on_both_backends!(
    conversation_isolation,
    message_history_isolation,
    service_level_isolation,
    cross_tenant_prevention
);

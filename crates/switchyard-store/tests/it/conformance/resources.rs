//! Tenants, users, API keys, agents and server secrets: create, read, list, update and
//! delete, the same on both backends.

use std::collections::HashSet;
use switchyard_core::model::{
    AgentFields, NewApiKey, NewTenant, NewUser, TenantPatch, TenantStatus, UserPatch, UserStatus,
};
use switchyard_core::page::PageRequest;
use switchyard_core::settings::TenantSettings;
use switchyard_core::{AgentId, ApiKeyId, Role};
use switchyard_store::{ConversationFilter, Opened, StoreError, TokenClaim};

use crate::common::{agent, follow_up_turn, on_both_backends, start_conversation, tenant};

async fn tenants(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    assert_eq!(
        store.get_tenant(&operator, a.tenant.id).await.unwrap(),
        a.tenant
    );
    assert_eq!(
        store
            .find_tenant_by_slug(&operator, &a.tenant.slug)
            .await
            .unwrap()
            .id,
        a.tenant.id
    );
    let clash = store
        .create_tenant(
            &operator,
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
            &operator,
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
        .update_tenant(
            &operator,
            a.tenant.id,
            patch(serde_json::json!({"min_margin": 0.2})),
        )
        .await
        .unwrap();
    assert_eq!(
        (merged.settings.min_confidence, merged.settings.min_margin),
        (Some(0.5), Some(0.2))
    );
    assert!(matches!(
        store
            .update_tenant(
                &operator,
                a.tenant.id,
                patch(serde_json::json!({"min_margin": 7}))
            )
            .await,
        Err(StoreError::Invalid(_))
    ));
    let updated = store
        .update_tenant(
            &operator,
            a.tenant.id,
            patch(serde_json::json!({"min_margin": null})),
        )
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
        let operator = operator.clone();
        let id = a.tenant.id;
        tasks.push(tokio::spawn(async move {
            store
                .update_tenant(&operator, id, patch(serde_json::json!({ key: value })))
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let all = serde_json::to_value(
        &store
            .get_tenant(&operator, a.tenant.id)
            .await
            .unwrap()
            .settings,
    )
    .unwrap();
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
            &operator,
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
        .update_tenant(&operator, a.tenant.id, TenantPatch::default())
        .await
        .unwrap();
    assert_eq!(same, updated);

    // Paging through all tenants finds this one exactly once.
    let mut seen = HashSet::new();
    let mut page = PageRequest::first(2);
    loop {
        let result = store.list_tenants(&operator, page).await.unwrap();
        for t in &result.items {
            assert!(seen.insert(t.id), "a tenant appeared twice");
        }
        match result.next {
            Some(cursor) => page = PageRequest::after(2, cursor),
            None => break,
        }
    }
    assert!(seen.contains(&a.tenant.id));

    store.delete_tenant(&operator, a.tenant.id).await.unwrap();
    assert!(matches!(
        store.get_tenant(&operator, a.tenant.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_tenant(&operator, a.tenant.id).await,
        Err(StoreError::NotFound)
    ));
}

async fn deleting_a_tenant_erases_its_rows_and_nothing_else(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
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
    store.delete_tenant(&operator, a.tenant.id).await.unwrap();
    assert!(matches!(
        store
            .find_principal(
                &operator,
                TokenClaim {
                    tenant: a.tenant.id,
                    user: a.member.user_id()
                }
            )
            .await,
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

async fn users(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
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
    let login = store
        .find_login(&operator, &a.tenant.slug, &user.email)
        .await
        .unwrap();
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
        store
            .find_login(&operator, &a.tenant.slug, &user.email)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn api_keys(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
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
    let found = store
        .find_api_key(&operator, a.tenant.id, &[7; 32])
        .await
        .unwrap();
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
            .find_api_key(&operator, a.tenant.id, &[7; 32])
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

async fn agents(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
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

async fn server_secrets_are_made_once(Opened { store, operator }: Opened) {
    let name = format!("test-{}", rand::random::<u64>());
    let first = store
        .server_secret(&operator, &name, &|| "first".to_string())
        .await
        .unwrap();
    let second = store
        .server_secret(&operator, &name, &|| "second".to_string())
        .await
        .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("first", "first"));
}

on_both_backends!(
    tenants,
    deleting_a_tenant_erases_its_rows_and_nothing_else,
    users,
    api_keys,
    agents,
    server_secrets_are_made_once,
);

//! What requests rely on: the principal with its first read, and idempotency records.

use chrono::{TimeDelta, Utc};
use switchyard_core::model::{IdempotencyStart, TenantPatch, TenantStatus, UserPatch, UserStatus};
use switchyard_core::page::PageRequest;
use switchyard_store::{FirstRead, FirstReadResult, Opened, StoreError, TokenClaim};

use crate::common::{follow_up_turn, on_both_backends, start_conversation, tenant};

/// The principal with a first read: the same as the principal and the read on their own,
/// read for an active user of an active tenant in the scope the look-up issues, with the
/// role as stored (on PostgreSQL in the same round trip); never for a disabled user or a
/// suspended tenant.
async fn principal_and_first_read(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
    let b = tenant(&store, &operator).await;
    let (conversation, _) = start_conversation(&store, &a.member, "first").await;
    let mut next = follow_up_turn(conversation, "second");
    next.created_at += TimeDelta::seconds(1);
    store.append_turn(&a.member, next).await.unwrap();
    let page = PageRequest::first(1);
    let reads = [
        FirstRead::Turns(conversation, page),
        FirstRead::OwnConversations(page),
        FirstRead::ChatContext(conversation, 5),
    ];
    for (scope, sees) in [(&a.member, true), (&a.admin, true)] {
        for read in &reads {
            let (principal, done) = store
                .find_principal_and_read(
                    &operator,
                    TokenClaim {
                        tenant: scope.tenant_id(),
                        user: scope.user_id(),
                    },
                    read,
                )
                .await
                .unwrap();
            assert_eq!(
                principal.user,
                store
                    .find_principal(
                        &operator,
                        TokenClaim {
                            tenant: scope.tenant_id(),
                            user: scope.user_id()
                        }
                    )
                    .await
                    .unwrap()
                    .user
            );
            let alone = read.run(store.as_ref(), scope).await;
            let done = done.unwrap_or_else(|| panic!("{read:?} was read"));
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
        .find_principal_and_read(
            &operator,
            TokenClaim {
                tenant: a.member.tenant_id(),
                user: a.member.user_id(),
            },
            &reads[0],
        )
        .await
        .unwrap();
    let Some(Ok(FirstReadResult::Turns(_, turns))) = turns else {
        panic!("{turns:?}");
    };
    assert_eq!(turns.items.len(), 1);
    assert!(turns.next.is_some(), "the second turn is on the next page");

    // Another tenant's member names this tenant: nobody; a foreign conversation: not found.
    assert!(matches!(
        store
            .find_principal_and_read(
                &operator,
                TokenClaim {
                    tenant: a.member.tenant_id(),
                    user: b.member.user_id()
                },
                &reads[0]
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let (_, foreign) = store
        .find_principal_and_read(
            &operator,
            TokenClaim {
                tenant: b.member.tenant_id(),
                user: b.member.user_id(),
            },
            &reads[0],
        )
        .await
        .unwrap();
    assert!(
        matches!(foreign, Some(Err(StoreError::NotFound))),
        "{foreign:?}"
    );

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
            .find_principal_and_read(
                &operator,
                TokenClaim {
                    tenant: a.member.tenant_id(),
                    user: a.member.user_id(),
                },
                read,
            )
            .await
            .unwrap();
        assert_eq!(principal.user.status, UserStatus::Disabled);
        assert!(done.is_none(), "{read:?}");
    }
    store
        .update_tenant(
            &operator,
            b.tenant.id,
            TenantPatch {
                status: Some(TenantStatus::Suspended),
                ..TenantPatch::default()
            },
        )
        .await
        .unwrap();
    let (principal, done) = store
        .find_principal_and_read(
            &operator,
            TokenClaim {
                tenant: b.member.tenant_id(),
                user: b.member.user_id(),
            },
            &reads[1],
        )
        .await
        .unwrap();
    assert_eq!(principal.tenant.status, TenantStatus::Suspended);
    assert!(done.is_none());
}

async fn idempotency_records(Opened { store, operator }: Opened) {
    let a = tenant(&store, &operator).await;
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

on_both_backends!(principal_and_first_read, idempotency_records,);

//! A workload that calls every method of the store, every branch that runs a statement of
//! its own (a key's first use, a stale idempotency claim taken over, retention that
//! empties a conversation, …), as the server, the retention task and the command line do.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use switchyard_core::model::{
    AgentCallError, IdempotencyStart, NewApiKey, TenantPatch, TurnTarget, UserPatch,
};
use switchyard_core::page::PageRequest;
use switchyard_core::{ApiKeyId, ConversationId};
use switchyard_store::{
    ConversationFilter, FirstRead, OperatorScope, Owned, Store, TenantData, TokenClaim,
};

use crate::common::{agent, another_member, follow_up_turn, new_conversation_turn, tenant};

/// Runs the workload on `store`.
pub async fn run(store: &Arc<dyn Store>, operator: &OperatorScope) {
    let page = || PageRequest::first(10);
    let now = Utc::now();
    store.ping().await.unwrap();

    // The operator's: tenants (the first made with its first admin), the server's secrets.
    let a = tenant(store, operator).await;
    let b = tenant(store, operator).await;
    store.get_tenant(operator, a.tenant.id).await.unwrap();
    store
        .find_tenant_by_slug(operator, &a.tenant.slug)
        .await
        .unwrap();
    store.list_tenants(operator, page()).await.unwrap();
    let settings = json!({"max_agents": 50});
    store
        .update_tenant(
            operator,
            a.tenant.id,
            TenantPatch {
                name: Some("Renamed".into()),
                status: None,
                settings: settings.as_object().cloned(),
            },
        )
        .await
        .unwrap();
    store.tenant_usage(operator, a.tenant.id).await.unwrap();
    let secret = format!("single-shard-{:016x}", rand::random::<u64>());
    store
        .server_secret(operator, &secret, &|| "made once".to_string())
        .await
        .unwrap();

    // Users and API keys (admins), and the look-ups that authenticate them.
    let admin = store.get_user(&a.admin, a.admin.user_id()).await.unwrap();
    store.list_users(&a.admin, page()).await.unwrap();
    store
        .update_user(
            &a.admin,
            a.member_user.id,
            UserPatch {
                display_name: Some(Some("Member".into())),
                role: None,
                status: None,
                password_hash: Some("not-a-real-hash".into()),
            },
        )
        .await
        .unwrap();
    let leaving = another_member(store, &a).await;
    store
        .delete_user(&a.admin, leaving.user_id())
        .await
        .unwrap();
    let hash = vec![0x5a; 32];
    let key = store
        .create_api_key(
            &a.admin,
            NewApiKey {
                id: ApiKeyId::new(),
                user_id: a.member_user.id,
                name: "ci".into(),
                prefix: "sy_012345678".into(),
                secret_hash: hash.clone(),
            },
        )
        .await
        .unwrap();
    store.list_api_keys(&a.admin, page()).await.unwrap();
    // Its first use records the time.
    store
        .find_api_key(operator, a.tenant.id, &hash)
        .await
        .unwrap();
    store.revoke_api_key(&a.admin, key.id).await.unwrap();
    store
        .find_login(operator, &a.tenant.slug, &admin.email)
        .await
        .unwrap();
    let claim = TokenClaim {
        tenant: a.tenant.id,
        user: a.member_user.id,
    };
    store.find_principal(operator, claim).await.unwrap();
    store.revoke_own_tokens(&a.member, now).await.unwrap();
    for kind in [Owned::Agents, Owned::Users, Owned::ApiKeys] {
        store.count_owned(&a.admin, kind).await.unwrap();
    }

    // Agents.
    let billing = store
        .create_agent(&a.admin, agent("billing"))
        .await
        .unwrap();
    let spare = store.create_agent(&a.admin, agent("spare")).await.unwrap();
    store.get_agent(&a.member, billing.id).await.unwrap();
    store.list_agents(&a.member, page()).await.unwrap();
    store
        .update_agent(&a.admin, billing.id, agent("billing"))
        .await
        .unwrap();
    store.delete_agent(&a.admin, spare.id).await.unwrap();
    store.routable_agents(&a.member).await.unwrap();

    // Chat turns: the limits, a new conversation, a follow-up, the OpenAI door's thread.
    store
        .count_conversations(&a.member, 100, 10_000)
        .await
        .unwrap();
    let mut first = new_conversation_turn("my invoice");
    first.selected_agent_id = Some(billing.id);
    first.created_at = now - TimeDelta::minutes(10);
    let (conversation, _) = store.append_turn(&a.member, first).await.unwrap();
    let mut second = follow_up_turn(conversation.id, "and the refund?");
    second.selected_agent_id = Some(billing.id);
    second.created_at = now - TimeDelta::minutes(9);
    store.append_turn(&a.member, second).await.unwrap();
    let mut door = new_conversation_turn("through the door");
    door.target = TurnTarget::New {
        id: ConversationId::new(),
        title: None,
        max_per_user: -1,
        max_per_tenant: -1,
    };
    let (thread, _) = store.append_turn(&a.member, door).await.unwrap();
    store
        .set_thread_key(&a.member, thread.id, "thread-hash")
        .await
        .unwrap();
    store.find_thread(&a.member, "thread-hash").await.unwrap();
    store
        .record_agent_error(
            &a.member,
            AgentCallError {
                agent_id: billing.id,
                agent_name: "billing".into(),
                kind: "timeout".into(),
                at: now - TimeDelta::minutes(8),
            },
        )
        .await
        .unwrap();

    // Reads: with the principal in one round trip, and on their own.
    for read in [
        FirstRead::Turns(conversation.id, page()),
        FirstRead::OwnConversations(page()),
        FirstRead::ChatContext(conversation.id, 5),
    ] {
        store
            .find_principal_and_read(operator, claim, &read)
            .await
            .unwrap();
    }
    store
        .get_conversation(&a.member, conversation.id)
        .await
        .unwrap();
    for (scope, filter) in [
        (&a.member, ConversationFilter::Own),
        (&a.admin, ConversationFilter::User(a.member_user.id)),
        (&a.admin, ConversationFilter::All),
    ] {
        store
            .list_conversations(scope, filter, page())
            .await
            .unwrap();
    }
    let (read, turns) = store
        .list_turns(&a.member, conversation.id, page())
        .await
        .unwrap();
    store
        .chat_context(&a.member, conversation.id, 5)
        .await
        .unwrap();

    // Idempotency records: a claim, a retry that finds it, its answer, a stale record taken
    // over, a released claim.
    let claimed = store
        .idempotency_start(&a.member, "key-1", b"request", now)
        .await
        .unwrap();
    assert!(matches!(claimed, IdempotencyStart::Started));
    store
        .idempotency_start(&a.member, "key-1", b"request", now)
        .await
        .unwrap();
    store
        .idempotency_complete(
            &a.member,
            "key-1",
            &json!({"conversation_id": thread.id.to_string()}),
        )
        .await
        .unwrap();
    let taken_over = store
        .idempotency_start(&a.member, "key-1", b"request", now + TimeDelta::days(2))
        .await
        .unwrap();
    assert!(matches!(taken_over, IdempotencyStart::Started));
    store
        .idempotency_start(&a.member, "key-2", b"request", now)
        .await
        .unwrap();
    store.idempotency_release(&a.member, "key-2").await.unwrap();
    store
        .delete_conversation(&a.member, thread.id)
        .await
        .unwrap();

    // Operations (admins): analytics, the routing lab's replay, an import into another
    // tenant, retention and expiry (which the retention task runs tenant by tenant).
    let (from, to) = (now - TimeDelta::days(1), now + TimeDelta::minutes(1));
    store.routing_analytics(&a.admin, from, to).await.unwrap();
    store
        .routing_series(&a.admin, from, to, TimeDelta::hours(1))
        .await
        .unwrap();
    store.recent_decisions(&a.admin, None, 10).await.unwrap();
    let member = store.get_user(&a.admin, a.member_user.id).await.unwrap();
    let data = TenantData {
        users: vec![member],
        agents: vec![billing],
        conversations: vec![read],
        turns: turns.items,
    };
    store.import_tenant_data(&b.admin, &data).await.unwrap();
    let batch = store
        .retention_batch(&a.admin, now + TimeDelta::days(1), 100)
        .await
        .unwrap();
    assert!(batch.conversations > 0, "retention emptied no conversation");
    store
        .purge_expired(&a.admin, now + TimeDelta::days(3), now + TimeDelta::days(3))
        .await
        .unwrap();

    // A tenant's erasure.
    let gone = tenant(store, operator).await;
    store.delete_tenant(operator, gone.tenant.id).await.unwrap();
}

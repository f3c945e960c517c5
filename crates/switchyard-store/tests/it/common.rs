//! What the store's integration tests share: fresh tenants and users, and a macro that
//! runs one scenario on both backends.

use std::sync::Arc;

use chrono::Utc;
use switchyard_core::model::{
    AgentFields, AgentKind, NewTenant, NewTurn, NewUser, Tenant, Turn, TurnTarget, User,
};
use switchyard_core::settings::TenantSettings;
use switchyard_core::{ConversationId, MessageId, Role};
use switchyard_store::{OperatorScope, Store, TenantScope};

/// The tables whose rows belong to a tenant (row-level security on PostgreSQL; on Citus,
/// distributed by `tenant_id`).
pub const TENANT_TABLES: [&str; 7] = [
    "users",
    "api_keys",
    "agents",
    "conversations",
    "conversation_messages",
    "idempotency_keys",
    "agent_call_errors",
];

/// A tenant with an admin and a member, ready to act.
pub struct Actors {
    pub operator: OperatorScope,
    pub tenant: Tenant,
    pub admin: TenantScope,
    pub member: TenantScope,
    pub member_user: User,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A new tenant with a random slug, its first admin and one member.
pub async fn tenant(store: &Arc<dyn Store>, operator: &OperatorScope) -> Actors {
    let (tenant, admin) = store
        .create_tenant(
            operator,
            NewTenant {
                slug: unique("t"),
                name: "Test tenant".into(),
                settings: TenantSettings::default(),
            },
            Some(NewUser {
                email: format!("{}@example.test", unique("admin")),
                display_name: Some("Admin".into()),
                role: Role::Admin,
                password_hash: None,
            }),
        )
        .await
        .unwrap();
    let admin = admin.unwrap();
    let admin = operator.act_as(tenant.id, admin.id, Role::Admin);
    let member_user = store
        .create_user(
            &admin,
            NewUser {
                email: format!("{}@example.test", unique("member")),
                display_name: None,
                role: Role::Member,
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let member = operator.act_as(tenant.id, member_user.id, Role::Member);
    Actors {
        operator: operator.clone(),
        tenant,
        admin,
        member,
        member_user,
    }
}

/// Another member of the same tenant.
pub async fn another_member(store: &Arc<dyn Store>, actors: &Actors) -> TenantScope {
    let user = store
        .create_user(
            &actors.admin,
            NewUser {
                email: format!("{}@example.test", unique("member")),
                display_name: None,
                role: Role::Member,
                password_hash: None,
            },
        )
        .await
        .unwrap();
    actors
        .operator
        .act_as(actors.tenant.id, user.id, Role::Member)
}

/// An echo agent's fields.
pub fn agent(name: &str) -> AgentFields {
    AgentFields {
        name: name.into(),
        description: format!("{name} questions"),
        kind: AgentKind::Echo,
        config: serde_json::json!({}),
        intents: vec![name.into()],
        keywords: vec![name.into()],
        examples: vec![format!("a question about {name}")],
        enabled: true,
        priority: 0,
        is_fallback: false,
    }
}

/// A turn for a new conversation, with generous limits.
pub fn new_conversation_turn(message: &str) -> NewTurn {
    NewTurn {
        id: MessageId::new(),
        target: TurnTarget::New {
            id: ConversationId::new(),
            title: Some(message.into()),
            max_per_user: 1000,
            max_per_tenant: 100_000,
        },
        user_message: message.into(),
        agent_response: format!("echo: {message}"),
        intent_category: Some("billing".into()),
        intent_confidence: Some(0.9),
        selected_agent_id: None,
        routing: serde_json::json!({"method": "lexical"}),
        routing_method: Some("lexical".into()),
        routing_confidence: Some(0.9),
        fallback_used: Some(false),
        latency_ms: Some(1.5),
        created_at: Utc::now(),
    }
}

/// A turn for an existing conversation.
pub fn follow_up_turn(conversation: ConversationId, message: &str) -> NewTurn {
    NewTurn {
        target: TurnTarget::Existing(conversation),
        ..new_conversation_turn(message)
    }
}

/// Starts a conversation with one turn.
pub async fn start_conversation(
    store: &Arc<dyn Store>,
    scope: &TenantScope,
    message: &str,
) -> (ConversationId, Turn) {
    let (conversation, turn) = store
        .append_turn(scope, new_conversation_turn(message))
        .await
        .unwrap();
    (conversation.id, turn)
}

/// Runs each named async scenario `fn(Opened)` once on SQLite and once on
/// PostgreSQL (skipped loudly when PostgreSQL is not reachable and not required).
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(switchyard_store::testing::sqlite_store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if let Some(store) = switchyard_store::testing::postgres_store().await {
                        super::$scenario(store).await;
                    }
                }
            )*
        }
    };
}

pub(crate) use on_both_backends;

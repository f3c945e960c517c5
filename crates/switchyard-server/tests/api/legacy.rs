//! A database of the earlier single-tenant layout, upgraded by the server's start: through
//! the API each legacy user sees exactly their own conversations, with their turns.

use serde_json::Value;
use switchyard_core::{TenantId, UserId};

use crate::common::{TestApp, assert_problem};

#[tokio::test]
async fn each_legacy_user_sees_exactly_their_own_conversations() {
    let Some(url) = switchyard_store::testing::legacy_postgres_database().await else {
        return;
    };
    let mut config = switchyard_store::StoreConfig::new(&url);
    config.max_connections = 4;
    let store = switchyard_store::connect(&config).await.unwrap();
    let app = TestApp::new(store).await;
    let acme = app
        .store
        .find_tenant_by_slug(&app.operator, "acme")
        .await
        .unwrap()
        .id;
    let globex = app
        .store
        .find_tenant_by_slug(&app.operator, "globex")
        .await
        .unwrap()
        .id;
    let default = app
        .store
        .find_tenant_by_slug(&app.operator, "default")
        .await
        .unwrap()
        .id;
    let user = |id: &str| id.parse::<UserId>().unwrap();
    let cases: [(TenantId, &str, &[&str]); 4] = [
        (
            acme,
            "aaaaaaaa-0000-4000-8000-000000000001",
            &["0b6e2f9e-8f3a-4c1e-9d2a-000000000001"],
        ),
        (
            acme,
            "aaaaaaaa-0000-4000-8000-000000000002",
            &["0b6e2f9e-8f3a-4c1e-9d2a-000000000002"],
        ),
        (
            globex,
            "bbbbbbbb-0000-4000-8000-000000000001",
            &["0b6e2f9e-8f3a-4c1e-9d2a-000000000003"],
        ),
        (
            default,
            "cccccccc-0000-4000-8000-000000000001",
            &["0b6e2f9e-8f3a-4c1e-9d2a-000000000004"],
        ),
    ];
    for (tenant, id, expected) in cases {
        let token = app.token(tenant, user(id));
        let me = app.get("/v1/me", &token).await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        assert_eq!(me.body["user"]["role"], "member");
        let list = app.get("/v1/conversations", &token).await;
        let ids: Vec<&str> = list.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "user {id}");
        // Every other conversation is not found for this user.
        for (_, _, others) in cases.iter() {
            for other in others.iter().filter(|o| !expected.contains(o)) {
                assert_problem(
                    &app.get(&format!("/v1/conversations/{other}"), &token).await,
                    404,
                );
            }
        }
    }
    // Alice's conversation, with its two turns in order and the legacy agent kept.
    let alice = app.token(acme, user("aaaaaaaa-0000-4000-8000-000000000001"));
    let detail = app
        .get(
            "/v1/conversations/0b6e2f9e-8f3a-4c1e-9d2a-000000000001",
            &alice,
        )
        .await;
    assert_eq!(detail.body["message_count"], 2);
    assert_eq!(detail.body["title"], "Invoice question");
    assert_eq!(detail.body["primary_intent"], "billing");
    let turns: Vec<&Value> = detail.body["messages"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        turns[0]["user_message"],
        "Why was I charged twice on my invoice?"
    );
    assert_eq!(turns[1]["agent_response"], "Found it; refund issued.");
    assert_eq!(turns[0]["routing"]["legacy_agent"], "billing-agent");
    assert_eq!(turns[0]["selected_agent_id"], Value::Null);
    // A legacy conversation can be continued once the tenant has agents.
    let admin = app
        .store
        .create_user(
            &app.operator.act_as(
                acme,
                UserId::from(uuid::Uuid::nil()),
                switchyard_core::Role::Admin,
            ),
            switchyard_core::model::NewUser {
                email: "admin@acme.test".into(),
                display_name: None,
                role: switchyard_core::Role::Admin,
                password_hash: None,
            },
        )
        .await
        .unwrap();
    let admin_token = app.token(acme, admin.id);
    app.post(
        "/v1/agents",
        &admin_token,
        serde_json::json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let more = app
        .post("/v1/chat", &alice, serde_json::json!({"message": "any news?", "conversation_id": "0b6e2f9e-8f3a-4c1e-9d2a-000000000001"}))
        .await;
    assert_eq!(more.status, 200, "{:?}", more.body);
    assert_eq!(
        app.get(
            "/v1/conversations/0b6e2f9e-8f3a-4c1e-9d2a-000000000001",
            &alice
        )
        .await
        .body["message_count"],
        3
    );
}

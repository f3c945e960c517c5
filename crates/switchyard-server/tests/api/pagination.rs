//! Keyset pagination over HTTP: cursors stay correct while rows are inserted, `limit` is
//! bounded, bad parameters are `400`.

use serde_json::Value;
use switchyard_core::Role;

use crate::common::{TestApp, assert_problem};
use crate::resources::new_turn;

#[tokio::test]
async fn cursors_hold_while_conversations_arrive() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let scope = app.operator.act_as(t.tenant, t.member, Role::Member);
    let mut existing = Vec::new();
    for i in 0..25 {
        existing.push(
            app.store
                .append_turn(&scope, new_turn(&format!("c{i}")))
                .await
                .unwrap()
                .0
                .id
                .to_string(),
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/v1/conversations?limit=10".to_string();
    loop {
        let page = app.get(&path, &t.member_token).await;
        assert_eq!(page.status, 200);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_string()));
        app.store
            .append_turn(&scope, new_turn("arrives while paging"))
            .await
            .unwrap();
        match &page.body["next_cursor"] {
            Value::String(cursor) => path = format!("/v1/conversations?limit=10&cursor={cursor}"),
            _ => break,
        }
    }
    for id in &existing {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} is seen exactly once"
        );
    }

    for i in 0..80 {
        app.store
            .append_turn(&scope, new_turn(&format!("more {i}")))
            .await
            .unwrap();
    }
    let big = app
        .get("/v1/conversations?limit=1000", &t.member_token)
        .await;
    assert_eq!(
        big.body["items"].as_array().unwrap().len(),
        100,
        "limit is clamped to 100"
    );
    let default = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(default.body["items"].as_array().unwrap().len(), 20);
    for bad in [
        "limit=0",
        "limit=-5",
        "limit=2.5",
        "limit=many",
        "cursor=%%%",
        "cursor=bm9wZQ",
        "page=2",
    ] {
        assert_problem(
            &app.get(&format!("/v1/conversations?{bad}"), &t.member_token)
                .await,
            400,
        );
    }
}

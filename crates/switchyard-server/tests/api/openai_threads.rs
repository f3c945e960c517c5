//! The OpenAI door as its clients expect (docs/integrations.md): the client's thread is the
//! history, a resent thread continues one conversation, and calls through the door never
//! meet a conversation limit — while `/v1/chat` keeps its own, counting only its own.

use serde_json::{Value, json};

use crate::chat::service_agents;
use crate::common::{Actors, TestApp, assert_problem, on_both_backends};

async fn key_of_member(app: &TestApp, t: &Actors) -> String {
    let key = app
        .post(
            "/v1/api-keys",
            &t.admin_token,
            json!({"name": "script", "user_id": t.member}),
        )
        .await;
    assert_eq!(key.status, 201, "{:?}", key.body);
    key.body["secret"].as_str().unwrap().to_owned()
}

async fn complete(app: &TestApp, key: &str, messages: Value) -> crate::common::Resp {
    let resp = app
        .post(
            "/v1/chat/completions",
            key,
            json!({"model": "switchyard", "messages": messages}),
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    resp
}

fn conversation_of(resp: &crate::common::Resp) -> String {
    resp.headers["x-switchyard-conversation-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn a_resent_thread_continues_one_conversation(app: TestApp) {
    let t = app.tenant().await;
    service_agents(&app, &t).await;
    let key = key_of_member(&app, &t).await;
    let first_message = json!({"role": "user", "content": "I was charged twice on my card"});
    let first = complete(&app, &key, json!([first_message])).await;
    let answer = first.body["choices"][0]["message"]["content"].clone();
    assert_eq!(first.body["usage"]["prompt_tokens"], 8);
    assert_eq!(first.body["usage"]["total_tokens"], 8 + 10);
    let thread = json!([first_message, {"role": "assistant", "content": answer},
                        {"role": "user", "content": "and where is the refund?"}]);
    let second = complete(&app, &key, thread.clone()).await;
    assert_eq!(conversation_of(&first), conversation_of(&second));
    let stored = app
        .get(
            &format!("/v1/conversations/{}", conversation_of(&first)),
            &t.member_token,
        )
        .await;
    assert_eq!(stored.body["message_count"], 2);

    // The same thread with another answer than the one given (edited in the client) is
    // another conversation; so is a new thread with the same first message.
    let mut edited = thread.clone();
    edited[1]["content"] = json!("an answer Switchyard never gave");
    let other = complete(&app, &key, edited).await;
    assert_ne!(conversation_of(&other), conversation_of(&first));
    let again = complete(&app, &key, json!([first_message])).await;
    assert_ne!(conversation_of(&again), conversation_of(&first));

    // Another user's key that resends the same thread does not reach the first one's
    // conversation.
    let admin_key = app
        .post(
            "/v1/api-keys",
            &t.admin_token,
            json!({"name": "admin script", "user_id": t.admin}),
        )
        .await;
    let admin_key = admin_key.body["secret"].as_str().unwrap().to_owned();
    let theirs = complete(&app, &admin_key, thread).await;
    assert_ne!(conversation_of(&theirs), conversation_of(&first));
}

async fn the_door_never_locks_a_user_out_and_chat_keeps_its_limits(app: TestApp) {
    let t = app.tenant().await;
    let patched = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            crate::common::OPERATOR,
            json!({"settings": {"max_conversations_per_user": 2}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    service_agents(&app, &t).await;
    let key = key_of_member(&app, &t).await;
    // Five one-message calls, each its own conversation: none refused.
    let mut seen = Vec::new();
    for i in 0..5 {
        let resp = complete(
            &app,
            &key,
            json!([{"role": "user", "content": format!("my package number {i} is late")}]),
        )
        .await;
        seen.push(conversation_of(&resp));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    // The member's own chat still has its two conversations, and then the limit.
    for _ in 0..2 {
        let chat = app
            .post(
                "/v1/chat",
                &t.member_token,
                json!({"message": "hello there"}),
            )
            .await;
        assert_eq!(chat.status, 200, "{:?}", chat.body);
    }
    let third = app
        .post(
            "/v1/chat",
            &t.member_token,
            json!({"message": "hello again"}),
        )
        .await;
    assert_problem(&third, 409);
    // A conversation of /v1/chat continued through the door by its header stays one of
    // /v1/chat's, and stays counted: the limit cannot be freed that way.
    let listed = app.get("/v1/conversations", &t.member_token).await;
    let chat_one = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "hello there")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = axum::http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("x-switchyard-conversation-id", &chat_one)
        .body(axum::body::Body::from(
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "and more"}]})
                .to_string(),
        ))
        .unwrap();
    let continued = app.send(request).await;
    assert_eq!(continued.status, 200, "{:?}", continued.body);
    assert_problem(
        &app.post(
            "/v1/chat",
            &t.member_token,
            json!({"message": "one more try"}),
        )
        .await,
        409,
    );
    // And the door still answers, and nothing of the chat was deleted to make room.
    complete(
        &app,
        &key,
        json!([{"role": "user", "content": "one more question"}]),
    )
    .await;
    let listed = app.get("/v1/conversations", &t.member_token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 8);
}

async fn a_streamed_answer_ends_with_its_usage_when_asked(app: TestApp) {
    let t = app.tenant().await;
    service_agents(&app, &t).await;
    let key = key_of_member(&app, &t).await;
    let request = axum::http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"model": "switchyard", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "I was charged twice on my card"}]})
            .to_string(),
        ))
        .unwrap();
    let raw = String::from_utf8(app.send(request).await.raw).unwrap();
    let chunks: Vec<Value> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]), "{raw}");
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 10, "total_tokens": 18})
    );
    assert!(raw.trim_end().ends_with("data: [DONE]"));
    // Not asked: no usage chunk.
    let plain = axum::http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"model": "switchyard", "stream": true,
                   "messages": [{"role": "user", "content": "I was charged twice on my card"}]})
            .to_string(),
        ))
        .unwrap();
    let raw = String::from_utf8(app.send(plain).await.raw).unwrap();
    assert!(!raw.contains("\"usage\""), "{raw}");
}

/// An `openai` agent's model counts its tokens itself: the door passes its count on, whole
/// and streamed.
async fn a_models_own_token_count_is_passed_on(app: TestApp) {
    let model = crate::agent_server::start_openai().await;
    let t = app.tenant().await;
    let created = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "assistant", "kind": "openai", "is_fallback": true,
                   "config": {"base_url": model.url("/v1"), "model": "tiny"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let key = key_of_member(&app, &t).await;
    let whole = app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "assistant", "messages": [{"role": "user", "content": "hello"}]}),
        )
        .await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert_eq!(
        whole.body["usage"],
        json!({"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26})
    );
    let request = axum::http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"model": "assistant", "stream": true, "stream_options": {"include_usage": true},
                   "messages": [{"role": "user", "content": "hello"}]})
            .to_string(),
        ))
        .unwrap();
    let raw = String::from_utf8(app.send(request).await.raw).unwrap();
    let last: Value = raw
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .rfind(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .unwrap();
    assert_eq!(last["usage"]["total_tokens"], 26, "{raw}");
}

/// Every error under the door's paths is OpenAI-shaped — an unknown path, a wrong method,
/// an unknown model, a missing key — and the rest of the API keeps its problem documents.
#[tokio::test]
async fn every_error_of_the_door_is_openai_shaped() {
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let key = key_of_member(&app, &t).await;
    let openai = |resp: &crate::common::Resp, status: u16, code: &str| {
        assert_eq!(resp.status.as_u16(), status, "{:?}", resp.body);
        assert_eq!(resp.headers["content-type"], "application/json");
        let error = &resp.body["error"];
        assert_eq!(error["code"], code, "{:?}", resp.body);
        assert!(error["message"].is_string() && error["type"].is_string());
        assert!(error.get("param").is_some(), "{:?}", resp.body);
    };
    openai(
        &app.get("/v1/chat/completions", &key).await,
        405,
        "method-not-allowed",
    );
    openai(
        &app.post("/v1/chat/completions/extra", &key, json!({}))
            .await,
        404,
        "not-found",
    );
    openai(&app.get("/v1/models/a/b", &key).await, 404, "not-found");
    openai(
        &app.get("/v1/models/no-such-model", &key).await,
        404,
        "model_not_found",
    );
    openai(
        &app.get("/v1/models", "sy_wrong").await,
        401,
        "invalid_api_key",
    );
    let elsewhere = app.get("/v1/no-such-route", &key).await;
    assert_problem(&elsewhere, 404);
    // A path that only starts like the door's is not the door.
    assert_problem(&app.get("/v1/modelsx", &key).await, 404);
}

on_both_backends!(
    a_models_own_token_count_is_passed_on,
    a_resent_thread_continues_one_conversation,
    the_door_never_locks_a_user_out_and_chat_keeps_its_limits,
    a_streamed_answer_ends_with_its_usage_when_asked,
);

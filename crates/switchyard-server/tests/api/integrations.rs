//! Where Switchyard meets the rest of the ecosystem: A2A agents (imported from their
//! Agent Card), the `llm` and `embedding` analyzers in the cascade, and the OpenAI
//! chat-completions dialect — against small fake services over real HTTP.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::agent_server::{self, sse_events};
use crate::common::{Actors, OPERATOR, TestApp, assert_problem};

async fn chat(app: &TestApp, token: &str, body: Value) -> crate::common::Resp {
    app.post("/v1/chat", token, body).await
}

async fn streamed(app: &TestApp, token: &str, body: Value) -> Vec<(String, Value)> {
    let request = Request::post("/v1/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(body.to_string()))
        .unwrap();
    sse_events(&app.send(request).await.raw)
}

#[tokio::test]
async fn a2a_agents_are_imported_from_their_card_and_answer() {
    let a2a = agent_server::start_a2a().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let imported = app
        .post(
            "/v1/agents/import",
            &t.admin_token,
            json!({"card_url": a2a.url("/.well-known/agent-card.json")}),
        )
        .await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    let agent = &imported.body;
    assert_eq!(agent["name"], "Travel Desk");
    assert_eq!(agent["kind"], "a2a");
    assert_eq!(agent["intents"], json!(["flights", "hotels"]));
    assert_eq!(
        agent["keywords"],
        json!(["flight", "plane", "booking", "hotel", "room"])
    );
    assert_eq!(agent["examples"].as_array().unwrap().len(), 3);
    assert_eq!(
        agent["config"]["url"],
        a2a.url("/a2a"),
        "a relative endpoint is resolved against the card"
    );
    assert_eq!(agent["config"]["streaming"], true);
    // An unreachable or unreadable card is refused clearly.
    assert_problem(
        &app.post(
            "/v1/agents/import",
            &t.admin_token,
            json!({"card_url": a2a.url("/a2a-error")}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/agents/import",
            &t.admin_token,
            json!({"card_url": "http://169.254.169.254/card"}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/v1/agents/import",
            &t.member_token,
            json!({"card_url": a2a.url("/.well-known/agent-card.json")}),
        )
        .await,
        403,
    );

    // Whole: message/send, the conversation as the context.
    let whole = chat(
        &app,
        &t.member_token,
        json!({"message": "Book me a flight to Paris"}),
    )
    .await;
    assert_eq!(whole.status, 200, "{:?}", whole.body);
    assert_eq!(whole.body["agent"]["name"], "Travel Desk");
    assert_eq!(
        whole.body["response"],
        "a2a says: Book me a flight to Paris"
    );
    let sent = a2a.received("/a2a")[0].json();
    assert_eq!(sent["method"], "message/send");
    assert_eq!(
        sent["params"]["message"]["contextId"],
        whole.body["conversation_id"]
    );
    // Streamed: message/stream, the artifact updates as pieces.
    let events = streamed(&app, &t.member_token, json!({"message": "I need a hotel room in Rome", "conversation_id": whole.body["conversation_id"]})).await;
    let pieces: Vec<&str> = events
        .iter()
        .filter(|(e, _)| e == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect();
    assert!(pieces.len() > 3, "{pieces:?}");
    assert_eq!(pieces.concat(), "a2a says: I need a hotel room in Rome");
    assert_eq!(events.last().unwrap().1["response"], pieces.concat());
    assert_eq!(a2a.received("/a2a")[1].json()["method"], "message/stream");
    // A JSON-RPC error is a failed agent.
    let broken = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "broken-a2a", "kind": "a2a", "config": {"url": a2a.url("/a2a-error")}}),
        )
        .await;
    let failed = chat(
        &app,
        &t.member_token,
        json!({"message": "hi", "agent_id": broken.body["id"]}),
    )
    .await;
    assert_problem(&failed, 502);
    assert!(
        failed.body["detail"]
            .as_str()
            .unwrap()
            .contains("JSON-RPC error"),
        "{:?}",
        failed.body
    );
}

async fn cascade_tenant(app: &TestApp) -> (Actors, String, String) {
    let t = app.tenant().await;
    let billing = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "billing", "kind": "echo", "description": "Invoices, payments and refunds", "intents": ["billing"],
                   "keywords": ["invoice", "refund", "charged"], "examples": ["I was charged twice", "where is my invoice"]}),
        )
        .await;
    let travel = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "travel", "kind": "echo", "description": "Trips, flights and hotels", "intents": ["travel"],
                   "keywords": ["flight", "hotel", "trip"], "examples": ["book a flight", "find me a hotel"]}),
        )
        .await;
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    (
        t,
        billing.body["id"].as_str().unwrap().to_string(),
        travel.body["id"].as_str().unwrap().to_string(),
    )
}

fn count(server: &agent_server::AgentServer, path: &str) -> usize {
    server.received(path).len()
}

#[tokio::test]
async fn the_llm_analyzer_is_asked_only_in_the_ambiguous_band_and_only_trusted_for_candidates() {
    let models = agent_server::start_models().await;
    let app = TestApp::sqlite().await;
    let (t, billing, travel) = cascade_tenant(&app).await;
    let other = app.tenant().await;
    let foreign = app
        .post(
            "/v1/agents",
            &other.admin_token,
            json!({"name": "x", "kind": "echo"}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = models.addr;
    let set_model = |mode: String| {
        let app = app.clone();
        let tenant = t.tenant;
        async move {
            let resp = app
                .patch(
                    &format!("/v1/tenants/{tenant}"),
                    OPERATOR,
                    json!({"settings": {"analyzer": "llm", "llm": {"base_url": format!("http://{addr}/{mode}/v1"), "model": "router", "timeout_ms": 500}}}),
                )
                .await;
            assert_eq!(resp.status, 200, "{:?}", resp.body);
        }
    };
    set_model(format!("pick-{travel}")).await;
    let path = format!("/pick-{travel}/chat");

    // Confident lexical verdicts make no model call.
    let clear = chat(
        &app,
        &t.member_token,
        json!({"message": "I was charged twice, where is my invoice refund?"}),
    )
    .await;
    assert_eq!(
        clear.body["routing"]["method"], "lexical",
        "{:?}",
        clear.body["routing"]
    );
    assert_eq!(clear.body["agent"]["id"], billing.as_str());
    assert_eq!(count(&models, &path), 0);
    // An ambiguous message asks the model, whose pick (one of the candidates) is used.
    let vague = chat(
        &app,
        &t.member_token,
        json!({"message": "can you help me with something about next week?"}),
    )
    .await;
    assert_eq!(vague.status, 200, "{:?}", vague.body);
    assert_eq!(
        vague.body["routing"]["method"], "llm",
        "{:?}",
        vague.body["routing"]
    );
    assert_eq!(vague.body["agent"]["id"], travel.as_str());
    assert_eq!(vague.body["intent"]["category"], "picked");
    assert_eq!(count(&models, &path), 1);
    let prompt = models.received(&path)[0].json();
    assert!(
        prompt["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains(&billing),
        "the prompt lists the candidates"
    );
    // The same message again: answered from the cache.
    chat(
        &app,
        &t.member_token,
        json!({"message": "can you help me with something about next week?"}),
    )
    .await;
    assert_eq!(count(&models, &path), 1);
    // A follow-up that sticks asks no model.
    let follow = chat(
        &app,
        &t.member_token,
        json!({"message": "yes please", "conversation_id": clear.body["conversation_id"]}),
    )
    .await;
    assert_eq!(follow.body["routing"]["method"], "sticky");
    assert_eq!(count(&models, &path), 1);

    // A model naming another tenant's agent, a made-up agent, prose, or too slow: the
    // lexical decision stands, and the reason says why.
    for (mode, why) in [
        (format!("pick-{foreign}"), "not one of the candidates"),
        ("made-up".to_string(), "not one of the candidates"),
        ("garbage".to_string(), "not the JSON"),
        ("slow".to_string(), "timed out"),
    ] {
        set_model(mode.clone()).await;
        let resp = chat(
            &app,
            &t.member_token,
            json!({"message": format!("something vague about {mode}")}),
        )
        .await;
        assert_eq!(resp.status, 200, "{mode}: {:?}", resp.body);
        assert_ne!(resp.body["routing"]["method"], "llm", "{mode}");
        assert_ne!(resp.body["agent"]["id"], foreign.as_str());
        assert!(
            resp.body["routing"]["reason"]
                .as_str()
                .unwrap()
                .contains(why),
            "{mode}: {:?}",
            resp.body["routing"]["reason"]
        );
    }
}

#[tokio::test]
async fn the_embedding_analyzer_routes_by_similarity_and_survives_a_dimension_mismatch() {
    let models = agent_server::start_models().await;
    let app = TestApp::sqlite().await;
    let (t, _billing, travel) = cascade_tenant(&app).await;
    let settings = |mode: &str| {
        json!({"settings": {"analyzer": "embedding", "cascade_band": [0.0, 1.0],
                            "embedding": {"base_url": format!("http://{}/{mode}/v1", models.addr), "model": "embed"}}})
    };
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        settings("bow"),
    )
    .await;
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "find me a hotel for the trip"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(
        resp.body["routing"]["method"], "embedding",
        "{:?}",
        resp.body["routing"]
    );
    assert_eq!(resp.body["agent"]["id"], travel.as_str());
    let calls = count(&models, "/bow/embeddings");
    assert_eq!(calls, 2, "the agents' examples once, then the message");
    chat(&app, &t.member_token, json!({"message": "book a flight"})).await;
    assert_eq!(
        count(&models, "/bow/embeddings"),
        3,
        "the agents' vectors are cached"
    );
    // Changing the agents recomputes them.
    app.post(
        "/v1/agents",
        &t.admin_token,
        json!({"name": "hr", "kind": "echo", "examples": ["my payslip is missing"]}),
    )
    .await;
    chat(&app, &t.member_token, json!({"message": "book a flight"})).await;
    assert_eq!(count(&models, "/bow/embeddings"), 5);
    // The message's vector has other dimensions than the agents': lexical decides.
    app.patch(
        &format!("/v1/tenants/{}", t.tenant),
        OPERATOR,
        settings("bad-dims"),
    )
    .await;
    let resp = chat(
        &app,
        &t.member_token,
        json!({"message": "find me a hotel for the trip"}),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_ne!(resp.body["routing"]["method"], "embedding");
    assert!(
        resp.body["routing"]["reason"]
            .as_str()
            .unwrap()
            .contains("dimensions"),
        "{:?}",
        resp.body["routing"]
    );
}

#[tokio::test]
async fn the_openai_dialect_lists_models_completes_and_streams() {
    let app = TestApp::sqlite().await;
    let (t, _, _) = cascade_tenant(&app).await;
    let key = app
        .post(
            "/v1/api-keys",
            &t.admin_token,
            json!({"name": "openai-client", "user_id": t.member}),
        )
        .await;
    let key = key.body["secret"].as_str().unwrap().to_string();

    let models = app.get("/v1/models", &key).await;
    assert_eq!(models.status, 200);
    let ids: Vec<&str> = models.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["switchyard", "billing", "general", "travel"]);

    let completion = app
        .post("/v1/chat/completions", &key, json!({"model": "switchyard", "temperature": 0.2,
              "messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "I was charged twice on my invoice"}]}))
        .await;
    assert_eq!(completion.status, 200, "{:?}", completion.body);
    assert_eq!(completion.body["object"], "chat.completion");
    assert_eq!(
        completion.body["choices"][0]["message"]["role"],
        "assistant"
    );
    assert_eq!(
        completion.body["choices"][0]["message"]["content"],
        "billing: I was charged twice on my invoice"
    );
    let conversation = completion.headers["x-switchyard-conversation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let stored = app
        .get(&format!("/v1/conversations/{conversation}"), &key)
        .await;
    assert_eq!(stored.body["message_count"], 1);

    // The header continues the conversation; a model named after an agent pins it; parts
    // of content count.
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("x-switchyard-conversation-id", &conversation)
        .body(Body::from(json!({"model": "travel", "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "and a hotel"}]}]}).to_string()))
        .unwrap();
    let resp = app.send(request).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.headers["x-switchyard-conversation-id"],
        conversation.as_str()
    );
    let text = String::from_utf8(resp.raw).unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "travel: and a hotel");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "travel")
    );
    let stored = app
        .get(&format!("/v1/conversations/{conversation}"), &key)
        .await;
    assert_eq!(stored.body["message_count"], 2);

    // Errors in OpenAI's shape.
    let unknown = app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["error"]["code"], "model_not_found");
    assert_eq!(unknown.body["error"]["type"], "invalid_request_error");
    let unauthorised = app
        .post(
            "/v1/chat/completions",
            "sk-wrong",
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(unauthorised.status, 401);
    assert_eq!(unauthorised.body["error"]["type"], "authentication_error");
    let no_user = app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "switchyard", "messages": [{"role": "system", "content": "hi"}]}),
        )
        .await;
    assert_eq!(no_user.status, 422);
    assert!(no_user.body["error"]["message"].is_string());
    let owner = app.post("/v1/chat/completions", &key, json!({"model": "switchyard", "tenant_id": t.tenant, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(owner.status, 422);
    // Another tenant's conversation is not found.
    let other = app.tenant().await;
    app.post(
        "/v1/agents",
        &other.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let foreign = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {}", other.member_token))
        .header("content-type", "application/json")
        .header("x-switchyard-conversation-id", &conversation)
        .body(Body::from(
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "hi"}]})
                .to_string(),
        ))
        .unwrap();
    let foreign = app.send(foreign).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(foreign.body["error"]["code"], "not-found");
}

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
    // JSON that is not an Agent Card, and a card of an agent that speaks no text.
    for (path, says) in [
        (
            "/not-a-card.json",
            "the Agent Card is not valid: missing field",
        ),
        ("/image-card.json", "must include text"),
    ] {
        let refused = app
            .post(
                "/v1/agents/import",
                &t.admin_token,
                json!({"card_url": a2a.url(path)}),
            )
            .await;
        assert_problem(&refused, 422);
        let detail = refused.body["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{path}: {detail}");
    }
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
        &t.admin_token,
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
            // A slow model never answers within a short timeout; any other answers at once,
            // so its long timeout cannot run out on a busy machine.
            let timeout_ms = if mode == "slow" { 300 } else { 5000 };
            let resp = app
                .patch(
                    &format!("/v1/tenants/{tenant}"),
                    OPERATOR,
                    json!({"settings": {"analyzer": "llm", "llm": {"base_url": format!("http://{addr}/{mode}/v1"), "model": "router", "timeout_ms": timeout_ms}}}),
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
    assert_eq!(
        vague.body["intent"]["category"], "travel",
        "the model's label, as the tenant spells it"
    );
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
        (
            format!("label-{travel}"),
            "\"travel_llm\" is not one of the tenant's intents or agent names",
        ),
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
    // `model` stays the name asked for; the header names the agent that answered.
    assert_eq!(completion.body["model"], "switchyard");
    assert_eq!(completion.headers["x-switchyard-agent"], "billing");
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
    assert_eq!(resp.headers["x-switchyard-agent"], "travel");
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
    // One model by its id, as the SDKs' `models.retrieve` asks; an unknown one is an
    // OpenAI-shaped 404 too.
    for id in ["switchyard", "travel"] {
        let model = app.get(&format!("/v1/models/{id}"), &key).await;
        assert_eq!(model.status, 200, "{:?}", model.body);
        assert_eq!(model.body["id"], id);
        assert_eq!(model.body["object"], "model");
    }
    let missing = app.get("/v1/models/gpt-4", &key).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"]["code"], "model_not_found");
    assert_eq!(missing.body["error"]["param"], "model");
    // What Switchyard cannot do is refused, naming the field, never silently ignored; and
    // nothing is stored for it.
    let before = app.get("/v1/conversations", &key).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    for (field, value) in [
        ("n", json!(2)),
        (
            "tools",
            json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ),
        ("functions", json!([{"name": "f"}])),
        ("tool_choice", json!("required")),
        ("response_format", json!({"type": "json_object"})),
    ] {
        let mut body =
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "hi"}]});
        body[field] = value;
        let refused = app.post("/v1/chat/completions", &key, body).await;
        assert_eq!(refused.status, 400, "{field}: {:?}", refused.body);
        assert_eq!(
            refused.body["error"]["type"], "invalid_request_error",
            "{field}"
        );
        assert_eq!(refused.body["error"]["param"], field);
    }
    // The values that ask for nothing more are accepted.
    let plain = app
        .post(
            "/v1/chat/completions",
            &key,
            json!({"model": "switchyard", "n": 1, "tools": [],
              "tool_choice": "none", "response_format": {"type": "text"},
              "messages": [{"role": "user", "content": "I was charged twice on my invoice"}]}),
        )
        .await;
    assert_eq!(plain.status, 200, "{:?}", plain.body);
    let after = app.get("/v1/conversations", &key).await.body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 1, "only the accepted request was stored");
    assert!(
        unknown.body["error"].get("param").is_some(),
        "`param` is always there"
    );
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

/// What the lexical analyzer alone decides for `message`: `(agent id, method)`.
async fn lexical_decision(app: &TestApp, t: &Actors, message: &str) -> (Value, Value) {
    let lexical = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"analyzer": "lexical"}}),
        )
        .await;
    assert_eq!(lexical.status, 200, "{:?}", lexical.body);
    let route = app
        .post("/v1/route", &t.member_token, json!({"message": message}))
        .await;
    assert_eq!(route.status, 200, "{:?}", route.body);
    (
        route.body["agent"]["id"].clone(),
        route.body["routing"]["method"].clone(),
    )
}

/// The turn of `resp` was stored: its conversation holds one message, the answer given.
async fn stored_alone(app: &TestApp, t: &Actors, resp: &crate::common::Resp) {
    let stored = app
        .get(
            &format!(
                "/v1/conversations/{}",
                resp.body["conversation_id"].as_str().unwrap()
            ),
            &t.member_token,
        )
        .await;
    assert_eq!(stored.body["message_count"], 1, "{:?}", stored.body);
    assert_eq!(
        stored.body["messages"]["items"][0]["agent_response"],
        resp.body["response"]
    );
}

#[tokio::test]
async fn an_llm_answering_malformed_json_or_http_500_leaves_the_lexical_decision() {
    let models = agent_server::start_broken_models().await;
    let app = TestApp::sqlite().await;
    let (t, _, _) = cascade_tenant(&app).await;
    for (mode, why) in [
        ("not-json", "not JSON"),
        ("truncated", "not JSON"),
        ("status-500", "HTTP 500"),
    ] {
        let message = format!("can you help me with something about {mode}?");
        let (agent, method) = lexical_decision(&app, &t, &message).await;
        let llm = app
            .patch(
                &format!("/v1/tenants/{}", t.tenant),
                OPERATOR,
                json!({"settings": {"analyzer": "llm", "llm": {"base_url": models.url(&format!("/{mode}/v1")), "model": "router", "timeout_ms": 2000}}}),
            )
            .await;
        assert_eq!(llm.status, 200, "{:?}", llm.body);
        let resp = chat(&app, &t.member_token, json!({"message": message})).await;
        assert_eq!(resp.status, 200, "{mode}: {:?}", resp.body);
        assert_eq!(
            count(&models, &format!("/{mode}/chat")),
            1,
            "{mode}: the model was asked"
        );
        assert_eq!(resp.body["agent"]["id"], agent, "{mode}: {:?}", resp.body);
        assert_eq!(resp.body["routing"]["method"], method, "{mode}");
        assert_eq!(
            resp.body["response"],
            format!(
                "{}: {message}",
                resp.body["agent"]["name"].as_str().unwrap()
            )
        );
        let reason = resp.body["routing"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("the llm analyzer gave no verdict") && reason.contains(why),
            "{mode}: {reason}"
        );
        stored_alone(&app, &t, &resp).await;
    }
}

#[tokio::test]
async fn an_embeddings_model_that_hangs_or_answers_malformed_json_leaves_the_lexical_decision() {
    let models = agent_server::start_broken_models().await;
    let app = TestApp::sqlite().await;
    let (t, _, travel) = cascade_tenant(&app).await;
    let message = "find me a hotel for the trip";
    let (agent, method) = lexical_decision(&app, &t, message).await;
    assert_eq!(agent, travel.as_str());
    for (mode, why) in [
        ("hang", "timed out after 200 ms"),
        ("truncated", "not JSON"),
    ] {
        // Only the model that hangs gets a short timeout: one answering at once must not
        // run out of time on a busy machine.
        let timeout_ms = if mode == "hang" { 200 } else { 5000 };
        let embedding = app
            .patch(
                &format!("/v1/tenants/{}", t.tenant),
                OPERATOR,
                json!({"settings": {"analyzer": "embedding", "cascade_band": [0.0, 1.0],
                                    "embedding": {"base_url": models.url(&format!("/{mode}/v1")), "model": "embed", "timeout_ms": timeout_ms}}}),
            )
            .await;
        assert_eq!(embedding.status, 200, "{:?}", embedding.body);
        let resp = chat(&app, &t.member_token, json!({"message": message})).await;
        assert_eq!(resp.status, 200, "{mode}: {:?}", resp.body);
        assert_eq!(
            count(&models, &format!("/{mode}/embeddings")),
            1,
            "{mode}: the model was asked"
        );
        assert_eq!(resp.body["agent"]["id"], agent, "{mode}");
        assert_eq!(resp.body["routing"]["method"], method, "{mode}");
        let reason = resp.body["routing"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("the embedding analyzer gave no verdict") && reason.contains(why),
            "{mode}: {reason}"
        );
        stored_alone(&app, &t, &resp).await;
    }
}

async fn conversations(app: &TestApp, token: &str) -> Vec<Value> {
    let list = app.get("/v1/conversations", token).await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    list.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_a2a_stream_cut_off_half_way_or_an_a2a_agent_that_hangs_stores_nothing() {
    let cut = agent_server::start_cut_streams().await;
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    let mut ids = Vec::new();
    for agent in [
        json!({"name": "cut-a2a", "kind": "a2a", "config": {"url": cut.url("/a2a"), "streaming": true}}),
        json!({"name": "hung-a2a", "kind": "a2a", "config": {"url": agents.url("/hang"), "streaming": true, "timeout_ms": 200}}),
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    ] {
        let created = app.post("/v1/agents", &t.admin_token, agent).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        ids.push(created.body["id"].clone());
    }
    let (cut_id, hung_id) = (ids[0].clone(), ids[1].clone());
    let first = chat(&app, &t.member_token, json!({"message": "hello"})).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let conversation = first.body["conversation_id"].clone();
    let message_count = || async {
        app.get(
            &format!("/v1/conversations/{}", conversation.as_str().unwrap()),
            &t.member_token,
        )
        .await
        .body["message_count"]
            .clone()
    };

    // Cut off half-way, in a conversation and in a new one: the pieces, then an error.
    for body in [
        json!({"message": "tell me more", "agent_id": cut_id, "conversation_id": conversation}),
        json!({"message": "tell me more", "agent_id": cut_id}),
    ] {
        let events = streamed(&app, &t.member_token, body).await;
        let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(names.first(), Some(&"routing"), "{names:?}");
        let pieces: String = events
            .iter()
            .filter(|(e, _)| e == "delta")
            .map(|(_, d)| d["text"].as_str().unwrap())
            .collect();
        assert_eq!(pieces, "half an answer", "the pieces before the cut");
        let (last, problem) = events.last().unwrap();
        assert_eq!(last, "error", "{names:?}");
        assert_eq!(problem["status"], 502, "{problem:?}");
        assert!(!names.contains(&"done"));
    }
    assert!(
        cut.received("/a2a")
            .iter()
            .all(|r| r.json()["method"] == "message/stream")
    );
    assert_eq!(cut.received("/a2a").len(), 2);
    assert_eq!(message_count().await, 1);
    assert_eq!(conversations(&app, &t.member_token).await.len(), 1);

    // Hanging past its timeout: whole, a 504 problem; streamed, an error event.
    let hung = chat(
        &app,
        &t.member_token,
        json!({"message": "are you there?", "agent_id": hung_id, "conversation_id": conversation}),
    )
    .await;
    assert_problem(&hung, 504);
    let events = streamed(
        &app,
        &t.member_token,
        json!({"message": "are you there?", "agent_id": hung_id}),
    )
    .await;
    let (last, problem) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(problem["status"], 504, "{problem:?}");
    assert_eq!(agents.received("/hang").len(), 2, "the agent was called");
    assert_eq!(message_count().await, 1);
    assert_eq!(conversations(&app, &t.member_token).await.len(), 1);
}

fn completion_request(token: &str, conversation: Option<&str>, body: Value) -> Request<Body> {
    let mut request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(id) = conversation {
        request = request.header("x-switchyard-conversation-id", id);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn streamed_completions_refuse_unknown_conversations_plainly_and_end_a_broken_answer_with_an_error()
 {
    let cut = agent_server::start_cut_streams().await;
    let app = TestApp::sqlite().await;
    let (t, _, _) = cascade_tenant(&app).await;
    let created = app
        .post(
            "/v1/agents",
            &t.admin_token,
            json!({"name": "cut", "kind": "openai", "config": {"base_url": cut.url("/v1"), "model": "tiny"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let first = app
        .post(
            "/v1/chat/completions",
            &t.member_token,
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "I was charged twice on my invoice"}]}),
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let mine = first.headers["x-switchyard-conversation-id"]
        .to_str()
        .unwrap()
        .to_string();
    let other = app.tenant().await;
    app.post(
        "/v1/agents",
        &other.admin_token,
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    )
    .await;
    let theirs = app
        .post(
            "/v1/chat/completions",
            &other.member_token,
            json!({"model": "switchyard", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    let theirs = theirs.headers["x-switchyard-conversation-id"]
        .to_str()
        .unwrap()
        .to_string();

    // Another tenant's, an unknown, or an unreadable conversation: a plain 404 in OpenAI's
    // shape, not a stream.
    let unknown = switchyard_core::ConversationId::new().to_string();
    for (what, id) in [
        ("foreign", theirs.as_str()),
        ("unknown", unknown.as_str()),
        ("not an id", "not-a-conversation"),
    ] {
        let resp = app
            .send(completion_request(
                &t.member_token,
                Some(id),
                json!({"model": "switchyard", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
            ))
            .await;
        assert_eq!(resp.status, 404, "{what}: {:?}", resp.raw);
        assert_eq!(
            resp.headers["content-type"], "application/json",
            "{what}: not a stream"
        );
        let error = &resp.body["error"];
        assert!(error["message"].is_string(), "{what}: {:?}", resp.body);
        assert_eq!(error["type"], "invalid_request_error", "{what}");
        assert_eq!(error["code"], "not-found", "{what}");
    }
    assert_eq!(conversations(&app, &t.member_token).await.len(), 1);
    let stored = app
        .get(&format!("/v1/conversations/{theirs}"), &other.member_token)
        .await;
    assert_eq!(stored.body["message_count"], 1, "theirs untouched");

    // An agent failing mid-answer: the pieces, an error chunk, then [DONE]; nothing stored,
    // in a continued conversation or a new one.
    for conversation in [Some(mine.as_str()), None] {
        let resp = app
            .send(completion_request(
                &t.member_token,
                conversation,
                json!({"model": "cut", "stream": true, "messages": [{"role": "user", "content": "tell me everything"}]}),
            ))
            .await;
        assert_eq!(resp.status, 200);
        let header = resp.headers["x-switchyard-conversation-id"]
            .to_str()
            .unwrap()
            .to_string();
        let text = String::from_utf8(resp.raw).unwrap();
        let data: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect();
        assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let content: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(content, "half an answer", "the pieces before the cut");
        let error = &chunks.last().unwrap()["error"];
        assert_eq!(error["type"], "server_error", "{text}");
        assert_eq!(error["code"], "agent-failed", "{text}");
        assert!(error["message"].is_string());
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["finish_reason"] != "stop"),
            "a broken answer does not say it stopped"
        );
        match conversation {
            Some(id) => assert_eq!(header, id),
            None => assert_problem(
                &app.get(&format!("/v1/conversations/{header}"), &t.member_token)
                    .await,
                404,
            ),
        }
    }
    assert_eq!(cut.received("/v1/chat/completions").len(), 2);
    let stored = app
        .get(&format!("/v1/conversations/{mine}"), &t.member_token)
        .await;
    assert_eq!(stored.body["message_count"], 1);
    assert_eq!(conversations(&app, &t.member_token).await.len(), 1);
}

#[tokio::test]
async fn the_openai_door_tells_clients_not_to_retry_what_a_retry_cannot_mend() {
    let agents = agent_server::start().await;
    let app = TestApp::sqlite().await;
    let t = app.tenant().await;
    for body in [
        json!({"name": "slow", "kind": "http", "config": {"url": agents.url("/hang"), "timeout_ms": 300}}),
        json!({"name": "general", "kind": "echo", "is_fallback": true}),
    ] {
        let made = app.post("/v1/agents", &t.admin_token, body).await;
        assert_eq!(made.status, 201, "{:?}", made.body);
    }
    let ask = |model: &'static str| {
        let (app, token) = (app.clone(), t.member_token.clone());
        async move {
            app.post(
                "/v1/chat/completions",
                &token,
                json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await
        }
    };
    // A pinned agent that times out: no other may answer for it, so a retry at once would
    // only time out again.
    let timed_out = ask("slow").await;
    assert_eq!(timed_out.status, 504, "{:?}", timed_out.body);
    assert_eq!(timed_out.body["error"]["code"], "agent-timeout");
    assert_eq!(timed_out.headers["x-should-retry"], "false");
    // Its circuit opens after the threshold; then the answer says how long it stays open.
    let mut open = None;
    for _ in 0..10 {
        let resp = ask("slow").await;
        if resp.status == 503 {
            open = Some(resp);
            break;
        }
        assert_eq!(resp.status, 504, "{:?}", resp.body);
    }
    let open = open.expect("the circuit opens");
    assert_eq!(open.body["error"]["code"], "circuit-open");
    assert_eq!(open.headers["x-should-retry"], "false");
    let config = crate::common::test_config();
    assert_eq!(
        open.headers["retry-after"],
        config.circuit_open_seconds.to_string().as_str()
    );
    // A turn that routing answers is not told anything of the kind.
    let fine = ask("switchyard").await;
    assert_eq!(fine.status, 200, "{:?}", fine.body);
    assert!(!fine.headers.contains_key("x-should-retry"));
}

//! Routing with the in-process sentence encoder (the real model, `SWITCHYARD_ENCODER_DIR`):
//! a paraphrase that shares no word with an agent's examples is decided by the whole encoder,
//! counted in the metrics, explained with words from the message; a tenant that turns the
//! encoder off routes lexically again. Without the model this says so and passes, unless
//! `SWITCHYARD_REQUIRE_ENCODER` is set (as CI sets it).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{OPERATOR, TestApp, test_config};

fn model_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("SWITCHYARD_ENCODER_DIR") {
        Some(dir) => Some(dir.into()),
        None => {
            assert!(
                std::env::var_os("SWITCHYARD_REQUIRE_ENCODER").is_none(),
                "SWITCHYARD_REQUIRE_ENCODER is set but SWITCHYARD_ENCODER_DIR is not"
            );
            eprintln!("skipped: set SWITCHYARD_ENCODER_DIR=$(scripts/fetch-encoder) to run");
            None
        }
    }
}

/// Three agents with ten examples each (enough for the tenant's own calibration), and a
/// fallback.
fn agents() -> [Value; 4] {
    [
        json!({"name": "billing", "description": "Invoices, payments and refunds", "kind": "echo", "examples": [
            "I was charged twice on my card", "Where is my invoice for March?", "I want a refund for my subscription",
            "Why did my payment fail?", "Update the credit card on file", "How much is the monthly plan?",
            "Cancel my subscription and refund me", "The invoice amount is wrong", "Can I pay by bank transfer?",
            "I need a receipt for my last payment"]}),
        json!({"name": "tech_support", "description": "Errors, crashes and login problems", "kind": "echo", "examples": [
            "The app crashes when I log in", "How do I reset my password?", "I get an error when installing",
            "The website will not load", "My account is locked after too many attempts", "The page shows error 500",
            "Sync stopped working on my phone", "How do I update the app?", "The login button does nothing",
            "The two-factor code never arrives"]}),
        json!({"name": "shipping", "description": "Deliveries and order tracking", "kind": "echo", "examples": [
            "My package is late", "Can I get a tracking number for my order?", "Where is my delivery?",
            "The courier left my parcel at the wrong address", "How long does shipping take?",
            "Can I change the delivery address?", "My order arrived damaged", "Do you ship internationally?",
            "The tracking page has not updated in days", "I missed the delivery, can it be redelivered?"]}),
        json!({"name": "general", "description": "Anything else", "kind": "echo", "is_fallback": true,
               "examples": ["Hello, I have a question"]}),
    ]
}

/// Messages that share no content word with their agent's texts.
const PARAPHRASES: [(&str, &str); 3] = [
    ("the postman lost my stuff", "shipping"),
    ("you took money from me two times", "billing"),
    ("I cannot sign in to my profile", "tech_support"),
];

#[tokio::test]
async fn paraphrases_are_decided_by_the_encoder_until_the_tenant_turns_it_off() {
    let Some(dir) = model_dir() else { return };
    let config = switchyard_server::Config {
        encoder_dir: Some(dir),
        ..test_config()
    };
    let app = TestApp::with_config(switchyard_store::testing::sqlite_store().await, config).await;
    let t = app.tenant().await;
    for agent in agents() {
        let created = app.post("/v1/agents", &t.admin_token, agent).await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let route = |message: &'static str| {
        let app = app.clone();
        let token = t.member_token.clone();
        async move {
            let routed = app
                .post("/v1/route", &token, json!({"message": message}))
                .await;
            assert_eq!(routed.status, 200, "{:?}", routed.body);
            routed.body
        }
    };

    // The index's whole-encoder head is built off the request path: wait until it decides.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut by_encoder = Vec::new();
    while by_encoder.is_empty() {
        for (message, agent) in PARAPHRASES {
            let body = route(message).await;
            if body["routing"]["method"] == "embedding" {
                by_encoder.push((message, agent, body));
            }
        }
        assert!(
            Instant::now() < deadline,
            "no paraphrase was ever decided by the encoder"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (message, agent, body) in &by_encoder {
        assert_eq!(body["agent"]["name"], *agent, "{message}: {body}");
        // The words shown are the message's own, never its stop words.
        for word in body["intent"]["keywords"].as_array().unwrap() {
            let word = word.as_str().unwrap();
            assert!(message.contains(word), "{word} is not in {message}");
            assert!(
                !["the", "my", "from", "me", "you", "to", "in", "i"].contains(&word),
                "{word}"
            );
        }
    }
    let metrics = app.get("/metrics", OPERATOR).await;
    let text = String::from_utf8_lossy(&metrics.raw);
    assert!(text.contains("switchyard_encoder_turns_total"), "{text}");
    assert!(text.contains("switchyard_encoder_texts_total"), "{text}");

    // Every paraphrase lands on its agent (by either head) and none falls back.
    for (message, agent) in PARAPHRASES {
        let body = route(message).await;
        assert_eq!(body["agent"]["name"], agent, "{message}: {body}");
    }

    // The tenant turns the encoder off: the same message is analysed lexically again.
    let off = app
        .patch(
            &format!("/v1/tenants/{}", t.tenant),
            OPERATOR,
            json!({"settings": {"encoder": false}}),
        )
        .await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    let (message, _, _) = by_encoder[0];
    let body = route(message).await;
    assert_ne!(body["routing"]["method"], "embedding", "{body}");
}

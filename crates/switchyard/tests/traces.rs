//! OpenTelemetry traces from the server as a user runs it: `switchyard serve` with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` naming a small OTLP/HTTP collector in the test. One trace
//! per chat turn with its spans and attributes, an incoming `traceparent` honoured and passed
//! on to the agent, no message text anywhere, a tenant's own endpoint getting its spans and
//! no one else's; and with the variables unset, nothing at all.

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message as _;
use serde_json::{Value, json};

#[path = "support/serve.rs"]
mod serve;
#[path = "support/tenant.rs"]
mod tenant;

use serve::Server;

const OPERATOR: &str = "operator-token-for-trace-tests";

/// The server on a fresh SQLite file, with the operator's token and `env`.
fn server(env: &[(&str, String)]) -> Server {
    let mut all = vec![
        (
            "SWITCHYARD_DATABASE_URL",
            format!(
                "sqlite://{}",
                switchyard_store::testing::sqlite_path().display()
            ),
        ),
        ("SWITCHYARD_ADMIN_TOKEN", OPERATOR.to_owned()),
    ];
    all.extend(env.iter().cloned());
    Server::start(&all)
}

/// What reached a listener: OTLP export bodies, or agent calls' headers.
#[derive(Clone, Default)]
struct Received {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    headers: Arc<Mutex<Vec<HeaderMap>>>,
}

/// An OTLP/HTTP collector (`POST {prefix}/v1/traces`), and what it received.
async fn collector(prefix: &str) -> (String, Received) {
    let received = Received::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        &format!("{prefix}/v1/traces"),
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            kept.bodies.lock().unwrap().push(body.to_vec());
            kept.headers.lock().unwrap().push(headers);
            async { "" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}{prefix}"), received)
}

/// An agent that answers every call, keeping the headers it got.
async fn agent() -> (String, Received) {
    let received = Received::default();
    let kept = received.clone();
    let app = axum::Router::new().route(
        "/ok",
        axum::routing::post(move |headers: HeaderMap| {
            kept.headers.lock().unwrap().push(headers);
            async { axum::Json(json!({"response": "done"})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/ok"), received)
}

fn client() -> reqwest::Client {
    switchyard_agents::install_tls_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A tenant with `settings` and an http agent at `agent_url` that answers everything: its id
/// and its admin's token.
async fn tenant(
    client: &reqwest::Client,
    url: &str,
    settings: Value,
    agent_url: &str,
) -> (String, String) {
    let agent = json!({"name": "helper", "kind": "http", "is_fallback": true,
                       "config": {"url": agent_url}});
    tenant_with(client, url, settings, agent).await
}

/// A tenant with `settings` and `agent`: its id and its admin's token.
async fn tenant_with(
    client: &reqwest::Client,
    url: &str,
    settings: Value,
    agent: Value,
) -> (String, String) {
    let slug = format!("tr-{:08x}", rand::random::<u32>());
    let (id, token) = tenant::tenant(client, url, OPERATOR, &slug, settings).await;
    tenant::agent(client, url, &token, &agent).await;
    (id, token)
}

/// A span as the collector decoded it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
}

fn spans(received: &Received) -> Vec<Span> {
    let mut out = Vec::new();
    for body in received.bodies.lock().unwrap().iter() {
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for scope in request.resource_spans.iter().flat_map(|r| &r.scope_spans) {
            for span in &scope.spans {
                let attributes = span
                    .attributes
                    .iter()
                    .map(|kv| {
                        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Any::StringValue(s)) => s.clone(),
                            Some(Any::IntValue(i)) => i.to_string(),
                            Some(Any::BoolValue(b)) => b.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), value)
                    })
                    .collect();
                out.push(Span {
                    trace: hex(&span.trace_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    attributes,
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn chat(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    message: &str,
    traceparent: Option<&str>,
) -> Value {
    let mut request = client
        .post(format!("{url}/v1/chat"))
        .bearer_auth(token)
        .json(&json!({"message": message}));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The trace id in a `traceparent` header.
fn trace_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    value.split('-').nth(1).map(str::to_owned)
}

const TURN_SPANS: [&str; 6] = [
    "request",
    "authenticate",
    "routing.analyze",
    "routing.decide",
    "agent.call",
    "store.write",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_chat_turn_is_one_trace_with_its_spans_and_no_message_text() {
    let (operator_url, operator) = collector("").await;
    let (tenant_url, own) = collector("/acme-otel").await;
    let (agent_url, calls) = agent().await;
    let server = server(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", operator_url),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("OTEL_SERVICE_NAME", "switchyard-under-test".into()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-operator-secret=only-for-the-operator".into(),
        ),
    ]);
    let client = client();
    let (acme, acme_token) = tenant(
        &client,
        &server.url,
        json!({"otlp_endpoint": tenant_url}),
        &agent_url,
    )
    .await;
    let (globex, globex_token) = tenant(&client, &server.url, json!({}), &agent_url).await;

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let acme_answer = chat(
        &client,
        &server.url,
        &acme_token,
        "my card number is purple elephant",
        Some(&format!("00-{caller_trace}-{caller_span}-01")),
    )
    .await;
    chat(
        &client,
        &server.url,
        &globex_token,
        "the giraffe password is tangerine",
        None,
    )
    .await;

    // Both turns' traces arrive (the batch goes every 100 ms).
    let deadline = Instant::now() + Duration::from_secs(15);
    let turn_spans = |tenant: &str| {
        spans(&operator)
            .into_iter()
            .filter(|s| {
                s.name == "store.write"
                    && s.attributes.get("tenant.id").map(String::as_str) == Some(tenant)
            })
            .count()
    };
    while turn_spans(&acme) == 0 || turn_spans(&globex) == 0 {
        assert!(Instant::now() < deadline, "the turns' spans did not arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The request spans end after their turns: give the last batch its time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = spans(&operator);

    // The caller's trace continues: acme's turn is one trace, under the caller's span.
    let acme_trace: Vec<&Span> = all.iter().filter(|s| s.trace == caller_trace).collect();
    let names: HashSet<&str> = acme_trace.iter().map(|s| s.name.as_str()).collect();
    for name in TURN_SPANS {
        assert!(names.contains(name), "{name} in {names:?}");
    }
    let request = acme_trace.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(
        request.parent, caller_span,
        "the caller's span is the parent"
    );
    assert_eq!(request.attributes["tenant.id"], acme);
    assert_eq!(
        request.attributes["conversation.id"],
        acme_answer["conversation_id"].as_str().unwrap()
    );
    let decide = acme_trace
        .iter()
        .find(|s| s.name == "routing.decide")
        .unwrap();
    assert!(
        decide.attributes.contains_key("routing.method"),
        "{decide:?}"
    );
    let call = acme_trace.iter().find(|s| s.name == "agent.call").unwrap();
    assert_eq!(call.attributes["agent.name"], "helper");
    for span in &acme_trace {
        assert_eq!(span.attributes.get("tenant.id"), Some(&acme), "{span:?}");
    }

    // globex's turn is a trace of its own, with one request span.
    let globex_traces: HashSet<&str> = all
        .iter()
        .filter(|s| s.name == "agent.call" && s.attributes["tenant.id"] == globex)
        .map(|s| s.trace.as_str())
        .collect();
    assert_eq!(globex_traces.len(), 1);
    let globex_trace = *globex_traces.iter().next().unwrap();
    assert_ne!(globex_trace, caller_trace);
    let requests = all
        .iter()
        .filter(|s| s.trace == globex_trace && s.name == "request")
        .count();
    assert_eq!(requests, 1, "one trace per turn");

    // The agent got each turn's trace.
    let agent_traces: Vec<String> = calls
        .headers
        .lock()
        .unwrap()
        .iter()
        .filter_map(trace_of)
        .collect();
    assert_eq!(agent_traces, [caller_trace, globex_trace]);

    // No message text anywhere, to anyone.
    for received in [&operator, &own] {
        for body in received.bodies.lock().unwrap().iter() {
            let text = String::from_utf8_lossy(body);
            for secret in ["purple elephant", "giraffe", "tangerine", "card number"] {
                assert!(!text.contains(secret), "{secret} was exported");
            }
        }
    }

    // The operator's exporter headers go to the operator's collector only.
    let secret_to = |received: &Received| {
        received
            .headers
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.contains_key("x-operator-secret"))
    };
    assert!(secret_to(&operator));
    assert!(
        !secret_to(&own),
        "the operator's headers never go to a tenant"
    );

    // acme's own collector has acme's spans and nothing of globex.
    let theirs = spans(&own);
    assert!(
        theirs
            .iter()
            .any(|s| s.name == "agent.call" && s.trace == caller_trace)
    );
    for span in &theirs {
        assert_eq!(span.attributes.get("tenant.id"), Some(&acme), "{span:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_endpoint_keeps_to_the_agents_address_rules() {
    let (operator_url, operator) = collector("").await;
    let (tenant_url, own) = collector("/otel").await;
    // Private and loopback addresses refused, as for agents by default with tenants.
    let server = server(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", operator_url),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("SWITCHYARD_AGENT_DENY_PRIVATE", "true".into()),
    ]);
    let client = client();
    let echo = json!({"name": "echo", "kind": "echo", "is_fallback": true, "config": {}});
    let (_, token) = tenant_with(
        &client,
        &server.url,
        json!({"otlp_endpoint": tenant_url}),
        echo,
    )
    .await;
    chat(&client, &server.url, &token, "hello", None).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !spans(&operator).iter().any(|s| s.name == "store.write") {
        assert!(
            Instant::now() < deadline,
            "the operator's spans did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        own.bodies.lock().unwrap().is_empty(),
        "a loopback endpoint is refused like a loopback agent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_variables_nothing_is_exported() {
    let (tenant_url, own) = collector("/otel").await;
    let (agent_url, calls) = agent().await;
    let server = server(&[]);
    let client = client();
    let (_, token) = tenant(
        &client,
        &server.url,
        json!({"otlp_endpoint": tenant_url}),
        &agent_url,
    )
    .await;
    chat(
        &client,
        &server.url,
        &token,
        "hello",
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(own.bodies.lock().unwrap().is_empty(), "nothing exported");
    let headers = calls.headers.lock().unwrap();
    assert_eq!(headers.len(), 1);
    assert!(
        !headers[0].contains_key("traceparent"),
        "no trace context is made up"
    );
}

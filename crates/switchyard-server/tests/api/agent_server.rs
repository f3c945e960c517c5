//! A small agent service over real HTTP, started by the tests: it answers, fails, hangs,
//! answers garbage, redirects, or answers too much, and records what it was sent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::post;
use serde_json::{Value, json};

/// A request the agent received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
pub struct Recorder {
    pub requests: Mutex<Vec<Received>>,
    pub flaky_failures_left: AtomicUsize,
    /// `GET /health` answers 503 while set.
    pub unhealthy: std::sync::atomic::AtomicBool,
}

/// The running agent service.
pub struct AgentServer {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
}

impl AgentServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.recorder
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn record(state: &Recorder, path: &str, headers: HeaderMap, body: Bytes) -> Value {
    state.requests.lock().unwrap().push(Received {
        path: path.into(),
        headers,
        body: body.to_vec(),
    });
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

pub async fn start() -> AgentServer {
    let recorder = Arc::new(Recorder::default());
    let app = Router::new()
        .route(
            "/ok",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                let req = record(&s, "/ok", h, b);
                axum::Json(json!({"response": format!("ok: {}", req["message"].as_str().unwrap_or(""))}))
            }),
        )
        .route(
            "/fail",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/fail", h, b);
                (StatusCode::INTERNAL_SERVER_ERROR, "boom")
            }),
        )
        .route(
            "/hang",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/hang", h, b);
                tokio::time::sleep(Duration::from_secs(30)).await;
                axum::Json(json!({"response": "too late"}))
            }),
        )
        .route(
            "/slow",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/slow", h, b);
                tokio::time::sleep(Duration::from_millis(400)).await;
                axum::Json(json!({"response": "slow but sure"}))
            }),
        )
        .route(
            "/garbage",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/garbage", h, b);
                (StatusCode::OK, "<html>definitely not json</html>")
            }),
        )
        .route(
            "/wrong-shape",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/wrong-shape", h, b);
                axum::Json(json!({"answer": "where response should be"}))
            }),
        )
        .route(
            "/redirect",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/redirect", h, b);
                Redirect::temporary("/ok")
            }),
        )
        .route(
            "/huge",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/huge", h, b);
                axum::Json(json!({"response": "x".repeat(2 * 1024 * 1024)}))
            }),
        )
        .route(
            "/flaky",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                record(&s, "/flaky", h, b);
                let left = s.flaky_failures_left.load(Ordering::SeqCst);
                if left > 0 {
                    s.flaky_failures_left.store(left - 1, Ordering::SeqCst);
                    return (StatusCode::SERVICE_UNAVAILABLE, "not yet").into_response();
                }
                axum::Json(json!({"response": "flaky recovered"})).into_response()
            }),
        )
        .route(
            "/health",
            axum::routing::get(|State(s): State<Arc<Recorder>>, h: HeaderMap| async move {
                record(&s, "/health", h, Bytes::new());
                if s.unhealthy.load(Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                } else {
                    (StatusCode::OK, "up")
                }
            }),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    AgentServer { addr, recorder }
}

/// Parses a server-sent event stream into (event, data) pairs.
pub fn sse_events(raw: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut event = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
        if !event.is_empty() {
            out.push((
                event,
                serde_json::from_str(&data).unwrap_or(Value::String(data)),
            ));
        }
    }
    out
}

/// A fake OpenAI-compatible chat-completions service: answers whole or streamed, and can
/// cut its stream off half-way. Records the requests it gets.
pub async fn start_openai() -> AgentServer {
    let recorder = Arc::new(Recorder::default());
    async fn completions(
        State(s): State<Arc<Recorder>>,
        headers: HeaderMap,
        body: Bytes,
        cut: bool,
    ) -> axum::response::Response {
        let req = record(&s, "/v1/chat/completions", headers, body);
        let last = req["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let answer = format!("model says: {last}");
        if req["stream"] == json!(true) {
            let mut out = String::new();
            for word in answer.split_inclusive(' ') {
                out.push_str(&format!(
                    "data: {}\n\n",
                    json!({"choices": [{"index": 0, "delta": {"content": word}}]})
                ));
            }
            if !cut {
                // As OpenAI ends a stream asked for its usage: a chunk with none of the
                // choices and the usage.
                out.push_str(&format!(
                    "data: {}\n\n",
                    json!({"choices": [], "usage": {"prompt_tokens": 21, "completion_tokens": 5}})
                ));
                out.push_str("data: [DONE]\n\n");
            }
            return ([("content-type", "text/event-stream")], out).into_response();
        }
        axum::Json(
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}],
                   "usage": {"prompt_tokens": 21, "completion_tokens": 5, "total_tokens": 26}}),
        )
        .into_response()
    }
    let app = Router::new()
        .route(
            "/v1/chat/completions",
            post(|s: State<Arc<Recorder>>, h: HeaderMap, b: Bytes| completions(s, h, b, false)),
        )
        .route(
            "/cut/chat/completions",
            post(|s: State<Arc<Recorder>>, h: HeaderMap, b: Bytes| completions(s, h, b, true)),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    AgentServer { addr, recorder }
}

/// A fake model service for the routing analyzers, its behaviour chosen by the first path
/// segment: `/pick-<agent id>/v1/chat/completions` answers JSON naming that agent;
/// `/garbage/…` answers prose; `/slow/…` takes 30 s (longer than any timeout a test sets); `/bow/v1/embeddings` embeds texts as
/// hashed bags of words (64 dimensions); `/bad-dims/v1/embeddings` answers 32 dimensions for
/// a single text and 64 for several.
pub async fn start_models() -> AgentServer {
    use axum::extract::Path;
    let recorder = Arc::new(Recorder::default());
    fn bag_of_words(text: &str, dims: usize) -> Vec<f32> {
        let mut v = vec![0.0_f32; dims];
        for word in text
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
        {
            let h = word.bytes().fold(2166136261u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(16777619)
            });
            v[h as usize % dims] += 1.0;
        }
        v
    }
    let app = Router::new()
        .route(
            "/{mode}/v1/chat/completions",
            post(|State(s): State<Arc<Recorder>>, Path(mode): Path<String>, h: HeaderMap, b: Bytes| async move {
                record(&s, &format!("/{mode}/chat"), h, b);
                let content = if let Some(id) = mode.strip_prefix("pick-") {
                    // The agent's intent, spelled otherwise than the tenant spells it.
                    json!({"intent": "Travel", "confidence": 0.93, "agent_id": id, "reasoning": "it fits"}).to_string()
                } else if let Some(id) = mode.strip_prefix("label-") {
                    // A label of the model's own making.
                    json!({"intent": "travel_llm", "confidence": 0.93, "agent_id": id}).to_string()
                } else if mode == "made-up" {
                    json!({"intent": "x", "confidence": 0.99, "agent_id": "billing-bot"}).to_string()
                } else if mode == "slow" {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "{}".to_string()
                } else {
                    "I would route this to billing, probably.".to_string()
                };
                axum::Json(json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}))
            }),
        )
        .route(
            "/{mode}/v1/embeddings",
            post(|State(s): State<Arc<Recorder>>, Path(mode): Path<String>, h: HeaderMap, b: Bytes| async move {
                let req = record(&s, &format!("/{mode}/embeddings"), h, b);
                let inputs: Vec<String> = req["input"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
                let dims = if mode == "bad-dims" && inputs.len() == 1 { 32 } else { 64 };
                let data: Vec<Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": bag_of_words(t, dims)}))
                    .collect();
                axum::Json(json!({"object": "list", "data": data}))
            }),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    AgentServer { addr, recorder }
}

/// A fake Agent2Agent agent: its card at `/.well-known/agent-card.json`, JSON-RPC at `/a2a`
/// (`message/send` answers a completed task; `message/stream` streams artifact updates and a
/// final status), and `/a2a-error` answering a JSON-RPC error.
pub async fn start_a2a() -> AgentServer {
    use axum::routing::get;
    let recorder = Arc::new(Recorder::default());
    let app = Router::new()
        .route(
            "/.well-known/agent-card.json",
            get(|| async {
                axum::Json(json!({
                    "name": "Travel Desk",
                    "description": "Books flights and hotels",
                    "url": "/a2a",
                    "version": "1.0.0",
                    "capabilities": {"streaming": true},
                    "defaultInputModes": ["text/plain"],
                    "defaultOutputModes": ["text/plain"],
                    "skills": [
                        {"id": "flights", "name": "Flights", "description": "Books flights", "tags": ["flight", "plane", "booking"],
                         "examples": ["Book me a flight to Paris", "I need a plane ticket for Monday"]},
                        {"id": "hotels", "name": "Hotels", "description": "Books hotels", "tags": ["hotel", "room"],
                         "examples": ["I need a hotel room in Rome"]}
                    ]
                }))
            }),
        )
        // JSON with a name and a url, but no Agent Card.
        .route(
            "/not-a-card.json",
            get(|| async { axum::Json(json!({"name": "Anything", "url": "/a2a"})) }),
        )
        // A card in form, for an agent that speaks no text.
        .route(
            "/image-card.json",
            get(|| async {
                axum::Json(json!({
                    "name": "Painter", "description": "Draws", "url": "/a2a", "version": "1",
                    "capabilities": {}, "defaultInputModes": ["image/png"],
                    "defaultOutputModes": ["image/png"],
                    "skills": [{"id": "draw", "name": "Draw", "description": "Draws", "tags": []}]
                }))
            }),
        )
        .route(
            "/a2a",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                let req = record(&s, "/a2a", h, b);
                let text = req.pointer("/params/message/parts/0/text").and_then(Value::as_str).unwrap_or("").to_string();
                let context = req.pointer("/params/message/contextId").cloned().unwrap_or(Value::Null);
                let id = req["id"].clone();
                let answer = format!("a2a says: {text}");
                if req["method"] == "message/stream" {
                    let mut out = String::new();
                    let event = |result: Value| format!("data: {}\n\n", json!({"jsonrpc": "2.0", "id": id, "result": result}));
                    out.push_str(&event(json!({"kind": "status-update", "taskId": "t1", "contextId": context, "status": {"state": "working"}, "final": false})));
                    for word in answer.split_inclusive(' ') {
                        out.push_str(&event(json!({"kind": "artifact-update", "taskId": "t1", "contextId": context,
                                                  "artifact": {"artifactId": "a1", "parts": [{"kind": "text", "text": word}]}, "append": true})));
                    }
                    out.push_str(&event(json!({"kind": "status-update", "taskId": "t1", "contextId": context, "status": {"state": "completed"}, "final": true})));
                    return ([("content-type", "text/event-stream")], out).into_response();
                }
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": {
                    "kind": "task", "id": "t1", "contextId": context, "status": {"state": "completed"},
                    "artifacts": [{"artifactId": "a1", "parts": [{"kind": "text", "text": answer}]}]
                }}))
                .into_response()
            }),
        )
        .route(
            "/a2a-error",
            post(|State(s): State<Arc<Recorder>>, h: HeaderMap, b: Bytes| async move {
                let req = record(&s, "/a2a-error", h, b);
                axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32603, "message": "internal agent error"}}))
            }),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    AgentServer { addr, recorder }
}

/// Waits until `condition` holds, checking it every few milliseconds; fails the test,
/// naming `what`, if it does not hold within ten seconds.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `server` has received `n` requests at `path`.
pub async fn wait_for_requests(server: &AgentServer, path: &str, n: usize) {
    eventually(&format!("{n} requests at {path}"), || async {
        server.received(path).len() >= n
    })
    .await;
}

/// An agent service at `/gated` that records each request and answers only once its gate
/// is opened, so a test can keep agent calls in flight as long as it needs without timing.
pub struct GatedAgent {
    pub server: AgentServer,
    gate: tokio::sync::watch::Sender<bool>,
}

impl GatedAgent {
    /// Lets every waiting and later request answer.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }
}

pub async fn start_gated() -> GatedAgent {
    let recorder = Arc::new(Recorder::default());
    let (gate, opened) = tokio::sync::watch::channel(false);
    let app = Router::new()
        .route(
            "/gated",
            post(
                |State((s, opened)): State<(Arc<Recorder>, tokio::sync::watch::Receiver<bool>)>,
                 h: HeaderMap,
                 b: Bytes| async move {
                    record(&s, "/gated", h, b);
                    let _ = opened.clone().wait_for(|open| *open).await;
                    axum::Json(json!({"response": "released"}))
                },
            ),
        )
        .with_state((recorder.clone(), opened));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    GatedAgent {
        server: AgentServer { addr, recorder },
        gate,
    }
}

/// A fake model service for the analyzers that never gives a usable answer, its behaviour
/// chosen by the first path segment: `/not-json/…` answers an HTML page, `/truncated/…`
/// JSON cut off in the middle, `/status-500/…` HTTP 500, and `/hang/…` nothing for 30 s.
/// Both `/{mode}/v1/chat/completions` and `/{mode}/v1/embeddings`; requests are recorded as
/// `/{mode}/chat` and `/{mode}/embeddings`.
pub async fn start_broken_models() -> AgentServer {
    use axum::extract::Path;
    let recorder = Arc::new(Recorder::default());
    async fn answer(mode: &str, truncated: &'static str) -> axum::response::Response {
        let json = [("content-type", "application/json")];
        match mode {
            "not-json" => (
                StatusCode::OK,
                json,
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response(),
            "truncated" => (StatusCode::OK, json, truncated).into_response(),
            "status-500" => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json,
                r#"{"error": {"message": "the model is overloaded", "type": "server_error"}}"#,
            )
                .into_response(),
            "hang" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                (StatusCode::OK, json, "{}").into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = Router::new()
        .route(
            "/{mode}/v1/chat/completions",
            post(
                |State(s): State<Arc<Recorder>>,
                 Path(mode): Path<String>,
                 h: HeaderMap,
                 b: Bytes| async move {
                    record(&s, &format!("/{mode}/chat"), h, b);
                    answer(
                        &mode,
                        r#"{"choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"agent_id\": "#,
                    )
                    .await
                },
            ),
        )
        .route(
            "/{mode}/v1/embeddings",
            post(
                |State(s): State<Arc<Recorder>>,
                 Path(mode): Path<String>,
                 h: HeaderMap,
                 b: Bytes| async move {
                    record(&s, &format!("/{mode}/embeddings"), h, b);
                    answer(
                        &mode,
                        r#"{"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2,"#,
                    )
                    .await
                },
            ),
        )
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    AgentServer { addr, recorder }
}

/// A fake agent service whose streams break: it sends a few pieces and then drops the
/// connection without the stream's end — `/a2a…` as A2A `message/stream` events with no
/// final status, `…/chat/completions` as OpenAI chunks with no `[DONE]`. Written over a raw
/// socket so that the pieces surely leave before the connection goes, and the chunked body
/// is left unterminated as a crashed server would leave it. Requests are recorded by path.
pub async fn start_cut_streams() -> AgentServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let recorder = Arc::new(Recorder::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = recorder.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let body = Bytes::copy_from_slice(&buf[head_end..head_end + length]);
                let req = record(&state, &path, HeaderMap::new(), body);
                let pieces = ["half ", "an ", "answer"];
                let events: Vec<Value> = if path.starts_with("/a2a") {
                    let context = req.pointer("/params/message/contextId").cloned();
                    let update = |result: Value| json!({"jsonrpc": "2.0", "id": req["id"], "result": result});
                    let working = json!({"kind": "status-update", "taskId": "t1", "contextId": context,
                                         "status": {"state": "working"}, "final": false});
                    std::iter::once(update(working))
                        .chain(pieces.iter().map(|p| {
                            update(json!({"kind": "artifact-update", "taskId": "t1", "contextId": context, "append": true,
                                          "artifact": {"artifactId": "a1", "parts": [{"kind": "text", "text": p}]}}))
                        }))
                        .collect()
                } else {
                    pieces
                        .iter()
                        .map(|p| json!({"choices": [{"index": 0, "delta": {"content": p}}]}))
                        .collect()
                };
                let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                                transfer-encoding: chunked\r\n\r\n"
                    .to_vec();
                for event in events {
                    let data = format!("data: {event}\n\n");
                    out.extend_from_slice(format!("{:x}\r\n{data}\r\n", data.len()).as_bytes());
                }
                // No terminating chunk: the connection simply goes.
                let _ = socket.write_all(&out).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    AgentServer { addr, recorder }
}

//! Your first http agent (docs/quickstart.md): answers every message it is sent, and
//! refuses a request whose signature (HMAC-SHA256 of `timestamp.body` with the agent's
//! secret) is wrong or more than five minutes old. `AGENT_SECRET=… cargo run --example
//! first_agent -p switchyard-agents`, then register `http://127.0.0.1:9000/` with that secret.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router, routing::post};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

async fn answer(headers: HeaderMap, body: Bytes) -> Result<Json<Value>, StatusCode> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (stamp, signature) = (
        header("x-switchyard-timestamp"),
        header("x-switchyard-signature"),
    );
    let secret = std::env::var("AGENT_SECRET").unwrap_or_default();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    mac.update(format!("{stamp}.").as_bytes());
    mac.update(&body);
    let sent = hex::decode(signature.trim_start_matches("sha256=")).unwrap_or_default();
    let now = std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_secs() as i64);
    let fresh = stamp.parse::<i64>().is_ok_and(|t| (now - t).abs() <= 300);
    if !fresh || mac.verify_slice(&sent).is_err() {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let asked: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let message = asked["message"].as_str().unwrap_or_default();
    Ok(Json(json!({"response": format!("You said: {message}")})))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await?;
    axum::serve(listener, Router::new().route("/", post(answer))).await
}

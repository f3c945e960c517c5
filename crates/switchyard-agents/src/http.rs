//! `http`: `POST {conversation_id, message_id, message, history, intent}` to the agent's URL,
//! expecting `{response}`. With a `secret`, the request carries
//! `X-Switchyard-Timestamp` (Unix seconds) and
//! `X-Switchyard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use switchyard_core::agent_config::{AgentConfig, DEFAULT_TIMEOUT_MS, HttpConfig};
use switchyard_core::model::Agent;

use crate::net::bounded_body;
use crate::{AgentError, AgentRequest, DeltaSink, HistoryEntry, InvokerConfig};

/// The body an http agent receives.
#[derive(Serialize)]
struct Payload<'a> {
    conversation_id: String,
    message_id: String,
    message: &'a str,
    history: &'a [HistoryEntry],
    intent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a serde_json::Value>,
}

#[derive(Deserialize)]
struct Reply {
    response: String,
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) struct HttpInvoker {
    client: reqwest::Client,
    config: InvokerConfig,
}

impl HttpInvoker {
    pub(crate) fn new(client: reqwest::Client, config: InvokerConfig) -> Self {
        Self { client, config }
    }

    pub(crate) async fn invoke(
        &self,
        agent: &Agent,
        request: &AgentRequest<'_>,
        deltas: Option<&DeltaSink>,
    ) -> Result<String, AgentError> {
        let config: HttpConfig = match AgentConfig::parse(agent.kind, &agent.config) {
            Ok(AgentConfig::Http(c)) => c,
            Ok(_) => return Err(AgentError::Failed("not an http agent".into())),
            Err(e) => return Err(AgentError::Failed(format!("bad configuration: {e}"))),
        };
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| AgentError::Failed(format!("bad url: {e}")))?;
        self.config
            .addresses
            .check_url(&url)
            .map_err(AgentError::Failed)?;
        let timeout_ms = config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let body = serde_json::to_vec(&Payload {
            conversation_id: request.conversation_id.to_string(),
            message_id: request.message_id.to_string(),
            message: request.message,
            history: request.history,
            intent: request.intent,
            metadata: request.metadata,
        })
        .map_err(|e| AgentError::Failed(e.to_string()))?;
        let mut call = self
            .client
            .post(url)
            .timeout(Duration::from_millis(timeout_ms))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in &config.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        if let Some(traceparent) = request.traceparent {
            call = call.header("traceparent", traceparent);
        }
        if let Some(secret) = &config.secret {
            let timestamp = chrono::Utc::now().timestamp();
            call = call
                .header("X-Switchyard-Timestamp", timestamp.to_string())
                .header("X-Switchyard-Signature", sign(secret, timestamp, &body));
        }
        let limit = self.config.max_response_bytes;
        let work = async {
            let response = call
                .body(body)
                .send()
                .await
                .map_err(|e| describe(e, timeout_ms))?;
            let status = response.status();
            if !status.is_success() {
                return Err(AgentError::Status {
                    who: "agent",
                    status: status.as_u16(),
                });
            }
            let bytes = bounded_body(response, limit)
                .await
                .map_err(AgentError::Failed)?;
            let reply: Reply = serde_json::from_slice(&bytes).map_err(|e| {
                AgentError::Failed(format!(
                    "the agent's answer is not {{\"response\": string}}: {e}"
                ))
            })?;
            Ok(reply.response)
        };
        // The request timeout covers sending and the headers; this bounds the body too.
        let answer = tokio::time::timeout(Duration::from_millis(timeout_ms), work)
            .await
            .map_err(|_| AgentError::Timeout(timeout_ms))??;
        if let Some(sink) = deltas {
            let _ = sink.send(answer.clone()).await;
        }
        Ok(answer)
    }
}

/// Names a transport failure without leaking more than the kind of failure.
pub(crate) fn describe(e: reqwest::Error, timeout_ms: u64) -> AgentError {
    if e.is_timeout() {
        AgentError::Timeout(timeout_ms)
    } else if e.is_connect() {
        // The resolver's refusal of a forbidden address surfaces as a connect error.
        let mut source: Option<&dyn std::error::Error> = Some(&e);
        while let Some(err) = source {
            let text = err.to_string();
            if text.starts_with("refused to call") {
                return AgentError::Failed(text);
            }
            source = err.source();
        }
        AgentError::Failed("cannot connect to the agent".into())
    } else if e.is_redirect() || e.status().is_some_and(|s| s.is_redirection()) {
        AgentError::Failed("the agent redirected; redirects are not followed".into())
    } else {
        AgentError::Failed(format!("calling the agent failed: {}", e.without_url()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_follow_the_documented_recipe() {
        // HMAC-SHA256("0123456789abcdef", "1700000000.{}"), computed independently with
        // `printf '1700000000.{}' | openssl dgst -sha256 -hmac 0123456789abcdef`.
        assert_eq!(
            super::sign("0123456789abcdef", 1_700_000_000, b"{}"),
            "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e"
        );
    }
}

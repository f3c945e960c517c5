//! `a2a`: an agent speaking the Agent2Agent protocol — JSON-RPC 2.0 `message/send`, and
//! `message/stream` (server-sent events) when the agent streams — and the Agent Card from
//! which such an agent is imported.
//!
//! The conversation's id is the A2A `contextId`, so the agent can keep its own context; a
//! task the agent leaves `working` (asynchronous answers, to be polled) is not supported
//! and counts as a failure.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::agent_config::{A2aConfig, AgentConfig, DEFAULT_TIMEOUT_MS};
use switchyard_core::model::Agent;

use crate::http::describe;
use crate::net::bounded_body;
use crate::sse::{Step, read_answer};
use crate::{AgentError, AgentRequest, DeltaSink, InvokerConfig};

pub(crate) struct A2aInvoker {
    client: reqwest::Client,
    config: InvokerConfig,
}

/// The text parts of an A2A message or artifact, joined.
fn text_of_parts(parts: Option<&Value>) -> String {
    parts
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| {
                    p.get("kind")
                        .or_else(|| p.get("type"))
                        .and_then(Value::as_str)
                        == Some("text")
                })
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default()
}

/// The answer in a `message/send` result: a message, or a finished task's artifacts (or
/// its status message).
fn answer_of(result: &Value) -> Result<String, AgentError> {
    match result.get("kind").and_then(Value::as_str) {
        Some("message") => Ok(text_of_parts(result.get("parts"))),
        Some("task") => {
            let state = result
                .pointer("/status/state")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let artifacts: String = result
                .get("artifacts")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|art| text_of_parts(art.get("parts")))
                        .collect::<Vec<_>>()
                        .join("")
                })
                .unwrap_or_default();
            let status_text = text_of_parts(result.pointer("/status/message/parts"));
            match state {
                "completed" | "input-required" | "auth-required" => {
                    if !artifacts.is_empty() {
                        Ok(artifacts)
                    } else if !status_text.is_empty() {
                        Ok(status_text)
                    } else {
                        Err(AgentError::Failed(
                            "the agent's task finished without any text".into(),
                        ))
                    }
                }
                "failed" | "rejected" | "canceled" => {
                    Err(AgentError::Failed(format!("the agent's task {state}")))
                }
                other => Err(AgentError::Failed(format!(
                    "the agent left its task {other}; asynchronous A2A tasks are not supported"
                ))),
            }
        }
        _ => Err(AgentError::Failed(
            "the agent's result is neither a message nor a task".into(),
        )),
    }
}

/// A JSON-RPC response's result, or its error as a failure.
fn result_of(response: &Value) -> Result<&Value, AgentError> {
    if let Some(error) = response.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(AgentError::Failed(format!(
            "the agent answered a JSON-RPC error: {message}"
        )));
    }
    response
        .get("result")
        .ok_or_else(|| AgentError::Failed("the agent's answer is not a JSON-RPC response".into()))
}

impl A2aInvoker {
    pub(crate) fn new(client: reqwest::Client, config: InvokerConfig) -> Self {
        Self { client, config }
    }

    pub(crate) async fn invoke(
        &self,
        agent: &Agent,
        request: &AgentRequest<'_>,
        deltas: Option<&DeltaSink>,
    ) -> Result<String, AgentError> {
        let config: A2aConfig = match AgentConfig::parse(agent.kind, &agent.config) {
            Ok(AgentConfig::A2a(c)) => c,
            Ok(_) => return Err(AgentError::Failed("not an a2a agent".into())),
            Err(e) => return Err(AgentError::Failed(format!("bad configuration: {e}"))),
        };
        let url = reqwest::Url::parse(&config.url)
            .map_err(|e| AgentError::Failed(format!("bad url: {e}")))?;
        self.config
            .addresses
            .check_url(&url)
            .map_err(AgentError::Failed)?;
        let timeout_ms = config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let streaming = deltas.is_some() && config.streaming == Some(true);
        let body = json!({
            "jsonrpc": "2.0",
            "id": request.message_id.to_string(),
            "method": if streaming { "message/stream" } else { "message/send" },
            "params": {
                "message": {
                    "kind": "message",
                    "role": "user",
                    "messageId": request.message_id.to_string(),
                    "contextId": request.conversation_id.to_string(),
                    "parts": [{"kind": "text", "text": request.message}],
                },
                "metadata": {"intent": request.intent},
            },
        });
        let mut call = self.client.post(url).json(&body);
        for (name, value) in &config.headers {
            call = call.header(name.as_str(), value.as_str());
        }
        if streaming {
            call = call.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(traceparent) = request.traceparent {
            call = call.header("traceparent", traceparent);
        }
        let limit = self.config.max_response_bytes;
        let work = async {
            let response = call.send().await.map_err(|e| describe(e, timeout_ms))?;
            let status = response.status();
            if !status.is_success() {
                return Err(AgentError::Status {
                    who: "agent",
                    status: status.as_u16(),
                });
            }
            match (streaming, deltas) {
                (true, Some(sink)) => stream(response, limit, sink).await,
                _ => {
                    let bytes = bounded_body(response, limit)
                        .await
                        .map_err(AgentError::Failed)?;
                    let response: Value = serde_json::from_slice(&bytes).map_err(|e| {
                        AgentError::Failed(format!("the agent's answer is not JSON: {e}"))
                    })?;
                    let answer = answer_of(result_of(&response)?)?;
                    if let Some(sink) = deltas {
                        let _ = sink.send(answer.clone()).await;
                    }
                    Ok(answer)
                }
            }
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), work)
            .await
            .map_err(|_| AgentError::Timeout(timeout_ms))?
    }
}

/// Reads a `message/stream` answer: artifact updates are the pieces; a final status update
/// (or a message) ends it. A stream that ends before that is a failure.
async fn stream(
    response: reqwest::Response,
    limit: usize,
    sink: &DeltaSink,
) -> Result<String, AgentError> {
    read_answer(response, limit, "agent", sink, |event, answered| {
        let response: Value = serde_json::from_str(event)
            .map_err(|e| AgentError::Failed(format!("the agent's stream is not JSON-RPC: {e}")))?;
        step(result_of(&response)?, answered)
    })
    .await
}

/// What one event of a `message/stream` answer means.
fn step(result: &Value, answered: bool) -> Result<Step, AgentError> {
    let state = || {
        result
            .pointer("/status/state")
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    Ok(match result.get("kind").and_then(Value::as_str) {
        Some("artifact-update") => Step::Piece(text_of_parts(result.pointer("/artifact/parts"))),
        Some("message") => Step::Last(text_of_parts(result.get("parts"))),
        Some("status-update") => {
            if matches!(state(), "failed" | "rejected" | "canceled") {
                return Err(AgentError::Failed(format!("the agent's task {}", state())));
            }
            if result.get("final").and_then(Value::as_bool) != Some(true) {
                Step::Piece(String::new())
            } else if answered {
                Step::Last(String::new())
            } else {
                let text = text_of_parts(result.pointer("/status/message/parts"));
                if text.is_empty() {
                    return Err(AgentError::Failed(
                        "the agent's task finished without any text".into(),
                    ));
                }
                Step::Last(text)
            }
        }
        Some("task") if state() == "completed" => Step::Last(answer_of(result)?),
        _ => Step::Piece(String::new()),
    })
}

/// What an Agent Card says about an agent (the parts Switchyard uses).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    /// The agent's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its JSON-RPC endpoint.
    pub url: String,
    /// The agent's own version.
    pub version: String,
    /// What it can do.
    pub capabilities: Capabilities,
    /// The media types it takes.
    pub default_input_modes: Vec<String>,
    /// The media types it answers with.
    pub default_output_modes: Vec<String>,
    /// Its skills.
    pub skills: Vec<Skill>,
}

impl AgentCard {
    /// What the A2A specification requires of a card beyond its fields' presence, and what
    /// Switchyard needs: a name, at least one skill, and text in and out.
    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("the Agent Card's `name` is empty".into());
        }
        if self.skills.is_empty() {
            return Err("the Agent Card lists no skills".into());
        }
        let text = |modes: &[String]| modes.iter().any(|m| m == "text" || m.starts_with("text/"));
        if !text(&self.default_input_modes) || !text(&self.default_output_modes) {
            return Err("the Agent Card's default input and output modes must include text".into());
        }
        Ok(())
    }
}

/// An Agent Card's capabilities.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Capabilities {
    /// Whether it answers `message/stream`.
    #[serde(default)]
    pub streaming: bool,
}

/// One skill of an Agent Card.
#[derive(Clone, Debug, Deserialize)]
pub struct Skill {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Words describing it.
    pub tags: Vec<String>,
    /// Sample requests.
    #[serde(default)]
    pub examples: Vec<String>,
}

impl A2aInvoker {
    pub(crate) async fn fetch_card(&self, url: &str) -> Result<AgentCard, String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("`card_url` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("`card_url` must be an http or https URL".into());
        }
        self.config.addresses.check_url(&url)?;
        let response =
            tokio::time::timeout(Duration::from_secs(10), self.client.get(url.clone()).send())
                .await
                .map_err(|_| "the Agent Card did not arrive in time".to_string())?
                .map_err(|e| describe(e, 10_000).to_string())?;
        if !response.status().is_success() {
            return Err(format!(
                "fetching the Agent Card answered HTTP {}",
                response.status().as_u16()
            ));
        }
        let bytes = bounded_body(response, 256 * 1024).await?;
        let mut card: AgentCard = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the Agent Card is not valid: {e}"))?;
        card.check()?;
        // A relative endpoint is relative to the card.
        card.url = url
            .join(&card.url)
            .map_err(|e| format!("the Agent Card's url: {e}"))?
            .to_string();
        Ok(card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_from_messages_and_finished_tasks() {
        let message = json!({"kind": "message", "role": "agent", "parts": [{"kind": "text", "text": "hi "}, {"kind": "text", "text": "there"}]});
        assert_eq!(answer_of(&message).unwrap(), "hi there");
        let task = json!({"kind": "task", "status": {"state": "completed"}, "artifacts": [{"parts": [{"kind": "text", "text": "done"}]}]});
        assert_eq!(answer_of(&task).unwrap(), "done");
        let question = json!({"kind": "task", "status": {"state": "input-required", "message": {"parts": [{"kind": "text", "text": "which order?"}]}}});
        assert_eq!(answer_of(&question).unwrap(), "which order?");
        assert!(answer_of(&json!({"kind": "task", "status": {"state": "working"}})).is_err());
        assert!(answer_of(&json!({"kind": "task", "status": {"state": "failed"}})).is_err());
        assert!(
            result_of(
                &json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "no such method"}})
            )
            .is_err()
        );
    }
}

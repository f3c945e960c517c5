//! `openai`: an OpenAI-compatible chat-completions endpoint, whole or streamed.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use switchyard_core::agent_config::{AgentConfig, DEFAULT_TIMEOUT_MS, OpenAiConfig};
use switchyard_core::model::Agent;

use crate::http::describe;
use crate::net::bounded_body;
use crate::sse::{Step, read_answer};
use crate::{AgentError, AgentRequest, DeltaSink, InvokerConfig};

#[derive(Deserialize)]
struct ReportedUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Keeps what the model said its answer cost, where the caller asked for it.
fn report(sink: Option<&crate::UsageSink>, usage: Option<ReportedUsage>) {
    if let (Some(sink), Some(u)) = (sink, usage) {
        *sink.lock().unwrap_or_else(|p| p.into_inner()) = Some(crate::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        });
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    /// What it cost, where the model says (a whole answer; a stream's last chunk, if any).
    #[serde(default)]
    usage: Option<ReportedUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
    delta: Option<ChoiceMessage>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

pub(crate) struct OpenAiInvoker {
    client: reqwest::Client,
    config: InvokerConfig,
}

impl OpenAiInvoker {
    pub(crate) fn new(client: reqwest::Client, config: InvokerConfig) -> Self {
        Self { client, config }
    }

    pub(crate) async fn invoke(
        &self,
        agent: &Agent,
        request: &AgentRequest<'_>,
        deltas: Option<&DeltaSink>,
    ) -> Result<String, AgentError> {
        let config: OpenAiConfig = match AgentConfig::parse(agent.kind, &agent.config) {
            Ok(AgentConfig::Openai(c)) => c,
            Ok(_) => return Err(AgentError::Failed("not an openai agent".into())),
            Err(e) => return Err(AgentError::Failed(format!("bad configuration: {e}"))),
        };
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url)
            .map_err(|e| AgentError::Failed(format!("bad base_url: {e}")))?;
        self.config
            .addresses
            .check_url(&url)
            .map_err(AgentError::Failed)?;
        let timeout_ms = config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let mut messages = Vec::with_capacity(request.history.len() + 2);
        if let Some(prompt) = &config.system_prompt {
            messages.push(json!({"role": "system", "content": prompt}));
        }
        for entry in request.history {
            messages.push(json!({"role": entry.role, "content": entry.content}));
        }
        messages.push(json!({"role": "user", "content": request.message}));
        let mut body =
            json!({"model": config.model, "messages": messages, "stream": deltas.is_some()});
        if let Some(t) = config.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(m) = config.max_tokens {
            body["max_tokens"] = json!(m);
        }
        let mut call = self.client.post(url).json(&body);
        if let Some(traceparent) = request.traceparent {
            call = call.header("traceparent", traceparent);
        }
        if let Some(var) = &config.api_key_env {
            // The key lives in the environment, named by the agent; it is never stored. Only
            // a variable the operator granted this tenant is read: a tenant admin must not
            // be able to send the server's other secrets (or another tenant's key) to an
            // address of their choosing.
            if !request.allowed_key_envs.contains(&var.as_str()) {
                return Err(AgentError::Failed(format!(
                    "the environment variable {var} is not granted to this tenant's agents"
                )));
            }
            match std::env::var(var) {
                Ok(key) => call = call.bearer_auth(key),
                Err(_) => {
                    return Err(AgentError::Failed(format!(
                        "the environment variable {var} is not set"
                    )));
                }
            }
        }
        let limit = self.config.max_response_bytes;
        let work = async {
            let response = call.send().await.map_err(|e| describe(e, timeout_ms))?;
            let status = response.status();
            if !status.is_success() {
                return Err(AgentError::Status {
                    who: "model",
                    status: status.as_u16(),
                });
            }
            match deltas {
                None => {
                    let bytes = bounded_body(response, limit)
                        .await
                        .map_err(AgentError::Failed)?;
                    let completion: Completion = serde_json::from_slice(&bytes).map_err(|e| {
                        AgentError::Failed(format!(
                            "the model's answer is not a chat completion: {e}"
                        ))
                    })?;
                    let usage = completion.usage;
                    let content = completion
                        .choices
                        .into_iter()
                        .next()
                        .and_then(|c| c.message)
                        .and_then(|m| m.content)
                        .ok_or_else(|| {
                            AgentError::Failed("the model's answer has no content".into())
                        })?;
                    report(request.usage, usage);
                    Ok(content)
                }
                Some(sink) => stream(response, limit, sink, request.usage).await,
            }
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), work)
            .await
            .map_err(|_| AgentError::Timeout(timeout_ms))?
    }
}

/// Reads a streamed completion, passing each piece on, up to its `[DONE]`.
async fn stream(
    response: reqwest::Response,
    limit: usize,
    sink: &DeltaSink,
    usage: Option<&crate::UsageSink>,
) -> Result<String, AgentError> {
    read_answer(response, limit, "model", sink, |event, _| {
        if event == "[DONE]" {
            return Ok(Step::Last(String::new()));
        }
        let piece: Completion = serde_json::from_str(event).map_err(|e| {
            AgentError::Failed(format!(
                "the model's stream is not chat-completion chunks: {e}"
            ))
        })?;
        report(usage, piece.usage);
        Ok(Step::Piece(
            piece
                .choices
                .into_iter()
                .next()
                .and_then(|c| c.delta)
                .and_then(|d| d.content)
                .unwrap_or_default(),
        ))
    })
    .await
}

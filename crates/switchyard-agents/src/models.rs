//! OpenAI-compatible model endpoints used for routing (not as agents): a chat model that
//! answers JSON for the `llm` analyzer, and an embeddings model for the `embedding`
//! analyzer. Same client and address rules as agent calls; the API key comes from the
//! environment variable the endpoint names.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::settings::ModelEndpoint;

use crate::http::describe;
use crate::net::bounded_body;
use crate::{AgentError, Invokers};

/// The default time a routing model may take.
pub const DEFAULT_MODEL_TIMEOUT_MS: u64 = 3000;

#[derive(Deserialize)]
struct Embeddings {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

impl Invokers {
    async fn post_json(
        &self,
        endpoint: &ModelEndpoint,
        path: &str,
        body: &Value,
    ) -> Result<Value, AgentError> {
        let url = format!("{}/{path}", endpoint.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url)
            .map_err(|e| AgentError::Failed(format!("bad base_url: {e}")))?;
        self.config
            .addresses
            .check_url(&url)
            .map_err(AgentError::Failed)?;
        let timeout_ms = endpoint.timeout_ms.unwrap_or(DEFAULT_MODEL_TIMEOUT_MS);
        let mut call = self.client.post(url).json(body);
        if let Some(var) = &endpoint.api_key_env {
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
            if !response.status().is_success() {
                return Err(AgentError::Status {
                    who: "model",
                    status: response.status().as_u16(),
                });
            }
            let bytes = bounded_body(response, limit)
                .await
                .map_err(AgentError::Failed)?;
            serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| AgentError::Failed(format!("the model's answer is not JSON: {e}")))
        };
        tokio::time::timeout(Duration::from_millis(timeout_ms), work)
            .await
            .map_err(|_| AgentError::Timeout(timeout_ms))?
    }

    /// Asks a chat model for a JSON object; returns the answer's text (the caller parses it).
    pub async fn chat_json(
        &self,
        endpoint: &ModelEndpoint,
        system: &str,
        user: &str,
    ) -> Result<String, AgentError> {
        let body = json!({
            "model": endpoint.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        });
        let answer = self.post_json(endpoint, "chat/completions", &body).await?;
        answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| AgentError::Failed("the model's answer has no content".into()))
    }

    /// Embeds texts, in order.
    pub async fn embed(
        &self,
        endpoint: &ModelEndpoint,
        inputs: &[String],
    ) -> Result<Vec<Vec<f32>>, AgentError> {
        let body = json!({"model": endpoint.model, "input": inputs});
        let answer = self.post_json(endpoint, "embeddings", &body).await?;
        let mut parsed: Embeddings = serde_json::from_value(answer).map_err(|e| {
            AgentError::Failed(format!("the embeddings answer is not as expected: {e}"))
        })?;
        if parsed.data.len() != inputs.len() {
            return Err(AgentError::Failed(format!(
                "asked for {} embeddings, got {}",
                inputs.len(),
                parsed.data.len()
            )));
        }
        parsed.data.sort_by_key(|d| d.index.unwrap_or(0));
        Ok(parsed.data.into_iter().map(|d| d.embedding).collect())
    }
}

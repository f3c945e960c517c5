//! Calling agents: the [`AgentInvoker`] trait and its implementations for each agent kind,
//! with the safety every outbound call needs — a timeout, a bounded answer, no redirects,
//! refused link-local and metadata addresses (and private ones if configured), request
//! signing — and a [`CircuitBreakers`] registry that stops calling an agent that keeps
//! failing.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use switchyard_core::model::Agent;
use switchyard_core::{ConversationId, MessageId};
use tokio::sync::mpsc;

mod a2a;
mod breaker;
mod echo;
mod http;
mod models;
mod net;
mod openai;
mod sse;

pub use a2a::{AgentCard, Capabilities, Skill};
pub use breaker::{
    BreakerConfig, CircuitBreakers, CircuitState, Health, Labels, Names, Permit, SharedCircuit,
};
pub use http::sign;
pub use models::DEFAULT_MODEL_TIMEOUT_MS;
pub use net::AddressPolicy;
pub use sse::SseReader;

/// One earlier message of the conversation, as agents receive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

/// What a model said its answer cost, in its own tokenizer's tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens of what it was sent.
    pub prompt_tokens: u64,
    /// Tokens of its answer.
    pub completion_tokens: u64,
}

/// Where an agent that reports its usage (an `openai` agent's model) puts it.
pub type UsageSink = std::sync::Mutex<Option<Usage>>;

/// What an agent is asked.
#[derive(Clone, Debug)]
pub struct AgentRequest<'a> {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The id the turn will have.
    pub message_id: MessageId,
    /// The user's message.
    pub message: &'a str,
    /// The conversation's earlier messages, oldest first (only this conversation's).
    pub history: &'a [HistoryEntry],
    /// The analysed intent.
    pub intent: Option<&'a str>,
    /// Free-form metadata the caller attached to the chat request.
    pub metadata: Option<&'a serde_json::Value>,
    /// The environment variables this tenant's agents may read an API key from (the
    /// operator's grant); an agent naming any other is refused without reading it.
    pub allowed_key_envs: &'a [&'a str],
    /// Where the answering agent's usage goes, if it reports one.
    pub usage: Option<&'a UsageSink>,
    /// The W3C `traceparent` the call carries, so that the agent's own spans join the
    /// turn's trace (only while the server exports traces).
    pub traceparent: Option<&'a str>,
}

/// Why an agent gave no answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AgentError {
    /// It failed: an error status, a broken connection, an answer that is not what the
    /// protocol says, or an address that may not be called.
    #[error("{0}")]
    Failed(String),
    /// It answered an error status (`who` is "agent" or "model").
    #[error("the {who} answered HTTP {status}")]
    Status {
        /// Who answered.
        who: &'static str,
        /// The status.
        status: u16,
    },
    /// It did not answer in time.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// Its circuit is open after repeated failures.
    #[error("circuit open after repeated failures")]
    CircuitOpen,
}

impl AgentError {
    /// The failure without its detail — no address, resolver message, status line or piece
    /// of the answer — as a tenant's members are told it (admins get the detail): an agent's
    /// error text must not let anyone map what the server can reach.
    pub fn without_detail(&self) -> AgentError {
        match self {
            AgentError::Failed(_) | AgentError::Status { .. } => {
                AgentError::Failed("the agent could not be reached or answered an error".into())
            }
            AgentError::Timeout(ms) => AgentError::Timeout(*ms),
            AgentError::CircuitOpen => AgentError::CircuitOpen,
        }
    }

    /// A short, stable name of the kind of failure (for metrics and the routing record).
    pub fn kind(&self) -> &'static str {
        match self {
            AgentError::Failed(_) | AgentError::Status { .. } => "failed",
            AgentError::Timeout(_) => "timeout",
            AgentError::CircuitOpen => "circuit_open",
        }
    }
}

/// Where an agent's answer goes as it arrives (for streamed chat answers).
pub type DeltaSink = mpsc::Sender<String>;

/// Calls an agent.
#[async_trait]
pub trait AgentInvoker: Send + Sync + 'static {
    /// Asks `agent` and returns its whole answer. With `deltas`, pieces of the answer are
    /// sent there as they arrive (they add up to the answer returned); without, the answer
    /// comes whole.
    async fn invoke(
        &self,
        agent: &Agent,
        request: &AgentRequest<'_>,
        deltas: Option<&DeltaSink>,
    ) -> Result<String, AgentError>;
}

impl std::fmt::Debug for Invokers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Invokers")
    }
}

impl std::fmt::Debug for dyn AgentInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentInvoker")
    }
}

/// How outbound calls behave.
#[derive(Clone, Debug)]
pub struct InvokerConfig {
    /// Which addresses may be called.
    pub addresses: AddressPolicy,
    /// The largest answer accepted from an agent, in bytes.
    pub max_response_bytes: usize,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
}

impl Default for InvokerConfig {
    fn default() -> Self {
        Self {
            addresses: AddressPolicy {
                deny_private: false,
            },
            max_response_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// The invoker that serves every agent kind.
pub struct Invokers {
    http: http::HttpInvoker,
    openai: openai::OpenAiInvoker,
    a2a: a2a::A2aInvoker,
    client: reqwest::Client,
    config: InvokerConfig,
}

impl Invokers {
    /// Builds the invokers with one shared HTTP client.
    pub fn new(config: InvokerConfig) -> Result<Self, String> {
        let client = net::client(&config)?;
        Ok(Self {
            http: http::HttpInvoker::new(client.clone(), config.clone()),
            openai: openai::OpenAiInvoker::new(client.clone(), config.clone()),
            a2a: a2a::A2aInvoker::new(client.clone(), config.clone()),
            client,
            config,
        })
    }

    /// Makes the agent's active health check, if it has one: a `GET` of its path on the
    /// agent's host through the same guarded client as calls (the agent's own headers sent,
    /// redirects not followed), answered with a success status within the agent's timeout
    /// (at most 10 s).
    pub async fn probe(&self, agent: &Agent) -> Option<Result<(), AgentError>> {
        use switchyard_core::agent_config::{AgentConfig, DEFAULT_TIMEOUT_MS};
        let config = AgentConfig::parse(agent.kind, &agent.config).ok()?;
        let (check, base) = config.health_check()?;
        let (timeout_ms, headers) = match &config {
            AgentConfig::Http(c) => (c.timeout_ms, Some(&c.headers)),
            AgentConfig::Openai(c) => (c.timeout_ms, None),
            AgentConfig::Echo(_) | AgentConfig::A2a(_) => return None,
        };
        let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS).min(10_000);
        let work = async {
            let url = check.url(base).map_err(AgentError::Failed)?;
            self.config
                .addresses
                .check_url(&url)
                .map_err(AgentError::Failed)?;
            let mut call = self
                .client
                .get(url)
                .timeout(Duration::from_millis(timeout_ms));
            for (name, value) in headers.into_iter().flatten() {
                call = call.header(name.as_str(), value.as_str());
            }
            let response = call
                .send()
                .await
                .map_err(|e| http::describe(e, timeout_ms))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(AgentError::Status {
                    who: "agent",
                    status: status.as_u16(),
                })
            }
        };
        Some(work.await)
    }

    /// The guarded client agents are called with and the address rules it keeps (its
    /// resolver checks names; a URL's IP literal is the caller's to check with
    /// [`AddressPolicy::check_url`]), for other outbound calls a tenant names (its traces'
    /// endpoint).
    pub fn guarded_client(&self) -> (reqwest::Client, AddressPolicy) {
        (self.client.clone(), self.config.addresses)
    }

    /// Fetches an A2A Agent Card (through the same guarded client as agent calls).
    pub async fn fetch_agent_card(&self, url: &str) -> Result<AgentCard, String> {
        self.a2a.fetch_card(url).await
    }
}

#[async_trait]
impl AgentInvoker for Invokers {
    async fn invoke(
        &self,
        agent: &Agent,
        request: &AgentRequest<'_>,
        deltas: Option<&DeltaSink>,
    ) -> Result<String, AgentError> {
        use switchyard_core::model::AgentKind;
        match agent.kind {
            AgentKind::Echo => echo::invoke(agent, request, deltas).await,
            AgentKind::Http => self.http.invoke(agent, request, deltas).await,
            AgentKind::Openai => self.openai.invoke(agent, request, deltas).await,
            AgentKind::A2a => self.a2a.invoke(agent, request, deltas).await,
        }
    }
}

/// Installs rustls' ring provider as the process default (once; later calls do nothing).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

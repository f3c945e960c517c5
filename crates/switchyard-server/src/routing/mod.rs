//! Routing in the server: the tenant's cached index ([`cache`]), the intent analyzers
//! ([`analyzers`]), and the plan that runs them — the lexical analysis, the decision, and
//! the cascade that asks a model in the ambiguous band ([`plan`]). A chat turn and
//! `/v1/route` both route through [`plan`], so the dry run says what chat would do.

pub mod analyzers;
pub mod cache;
pub mod encoder;
pub mod lab;
pub mod offline;
mod plan;

use std::sync::Arc;

use switchyard_core::routing::{
    AgentMatcher, PolicyMatcher, RouteError, RoutingConfig, RoutingIndex, RoutingPolicy,
};
use switchyard_core::settings::TenantSettings;
use switchyard_store::StoreError;

pub use analyzers::{EmbeddingAnalyzer, LlmAnalyzer};
pub use cache::{IndexBuild, RoutingCache, TenantRouting};
pub use plan::{Plan, plan};

use crate::config::Config;
use encoder::InProcessEncoder;

/// Why no routing plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The tenant's agents could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No agent could be chosen.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A bug (an index build that panicked).
    #[error("{0}")]
    Internal(String),
}

/// The stages of the routing pipeline the server holds: the analyzers and the matcher.
pub struct Analyzers {
    /// The `llm` analyzer of the cascade.
    pub llm: LlmAnalyzer,
    /// The `embedding` analyzer of the cascade.
    pub embedding: EmbeddingAnalyzer,
    /// The decision over an analysis.
    pub matcher: Box<dyn AgentMatcher>,
}

impl std::fmt::Debug for Analyzers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzers").finish_non_exhaustive()
    }
}

impl Analyzers {
    /// The analyzers calling models through `outbound`, keeping at most `max_bytes` of
    /// agents' embeddings, with the default matcher.
    pub fn new(outbound: std::sync::Arc<switchyard_agents::Invokers>, max_bytes: usize) -> Self {
        Self {
            llm: LlmAnalyzer::new(outbound.clone()),
            embedding: EmbeddingAnalyzer::new(outbound, max_bytes),
            matcher: Box::new(PolicyMatcher),
        }
    }
}

/// The tenant's routing thresholds: its own settings over the global ones, and the
/// fallback threshold fitted to its index where neither sets `min_confidence`.
pub fn policy(config: &Config, s: &TenantSettings, index: &RoutingIndex) -> RoutingPolicy {
    RoutingPolicy {
        min_confidence: s
            .min_confidence
            .or(config.min_confidence)
            .unwrap_or_else(|| index.threshold()),
        min_margin: s.min_margin.unwrap_or(config.min_margin),
        switch_margin: s.switch_margin.unwrap_or(config.switch_margin),
    }
}

/// How a tenant's routing index is built: its settings over the global ones, and the
/// encoder unless the tenant turned it off.
pub fn index_build(
    config: &Config,
    encoder: Option<&Arc<InProcessEncoder>>,
    s: &TenantSettings,
) -> IndexBuild {
    IndexBuild {
        config: RoutingConfig {
            target_false_fallback: s
                .target_false_fallback
                .unwrap_or(config.target_false_fallback),
            full_band: config.encoder_band,
            ..RoutingConfig::default()
        },
        encoders: encoder
            .filter(|_| s.encoder != Some(false))
            .map(InProcessEncoder::encoders),
    }
}

//! Routing as a chat turn does it, without a server or a store: the fast analysis, the
//! whole encoder where the fast analysis is not sure, the decision under the tenant's
//! policy (with no pinned agent, no conversation to stick to, every agent available). The
//! evaluation command (`switchyard-bench routing-eval`, docs/routing.md) routes the public
//! sets' messages through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_core::routing::{
    AgentMatcher, AgentProfile, Analysis, Decision, PolicyMatcher, RouteError, RouteInput,
    RoutingIndex,
};
use switchyard_core::settings::TenantSettings;

use super::encoder::InProcessEncoder;
use super::{IndexBuild, index_build, policy};
use crate::config::{Config, ConfigError};

/// The server's routing configuration and encoder, loaded as the server loads them.
#[derive(Debug)]
pub struct Router {
    config: Config,
    encoder: Option<Arc<InProcessEncoder>>,
}

/// One message routed.
#[derive(Debug)]
pub struct Routed {
    /// The analysis the decision was made from.
    pub analysis: Analysis,
    /// The decision.
    pub decision: Result<Decision, RouteError>,
    /// Whether the whole encoder analysed it.
    pub full: bool,
    /// The time each stage took: the fast analysis, the whole encoder (embedding and its
    /// head's analysis, zero if it did not run), the decision.
    pub stages: [Duration; 3],
}

impl Router {
    /// Loads the encoder `config` names, as the server does at start.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        let encoder = InProcessEncoder::load(&config)?;
        Ok(Self { config, encoder })
    }

    /// The loaded encoder, if any.
    pub fn encoder(&self) -> Option<&Arc<InProcessEncoder>> {
        self.encoder.as_ref()
    }

    /// How a tenant with `settings` has its index built.
    pub fn index_build(&self, settings: &TenantSettings) -> IndexBuild {
        index_build(&self.config, self.encoder.as_ref(), settings)
    }

    /// A tenant's index, built and completed (trained, calibrated) at once.
    pub fn build_index(
        &self,
        settings: &TenantSettings,
        agents: Vec<AgentProfile>,
    ) -> RoutingIndex {
        let build = self.index_build(settings);
        let index = RoutingIndex::build(agents, build.config, build.encoders);
        if index.is_complete() {
            index
        } else {
            index.completed()
        }
    }

    /// Routes `message` over `index` for a tenant with `settings`.
    pub fn route(&self, settings: &TenantSettings, index: &RoutingIndex, message: &str) -> Routed {
        let started = Instant::now();
        let mut analysis = index.analyze(message);
        let fast = started.elapsed();
        let mut full = false;
        let started = Instant::now();
        if let Some(encoder) = &self.encoder
            && settings.encoder != Some(false)
            && index.wants_full(&analysis)
            && let Some(refined) = index.analyze_full(message, &encoder.embed_now(message))
        {
            analysis = refined;
            full = true;
        }
        let encoder = started.elapsed();
        let started = Instant::now();
        let policy = policy(&self.config, settings, index);
        let decision = PolicyMatcher.decide(
            index.agent_set(),
            &analysis,
            &policy,
            &RouteInput::default(),
        );
        Routed {
            analysis,
            decision,
            full,
            stages: [fast, encoder, started.elapsed()],
        }
    }
}

//! Routing: intent analysis and agent matching, pure and in-process.
//!
//! 1. [`LexicalIndex::build`] turns a tenant's agents ([`AgentProfile`]) into an immutable
//!    index (share it in an `Arc`, rebuild it when the agents change).
//! 2. [`LexicalIndex::analyze`] ranks every agent for a message with calibrated scores and
//!    names the intent ([`Analysis`]).
//! 3. [`decide`] applies the tenant's [`RoutingPolicy`] and the request's facts
//!    ([`RouteInput`]: pinned agent, last agent, unavailable agents) and returns a
//!    [`Decision`] that serialises to the `routing` object of a chat answer
//!    (docs/routing.md).
//!
//! Other analyzers (embedding, LLM) produce the same [`Analysis`] and go through the same
//! [`decide`]. A server composes the stages as a pipeline of traits: its intent analyzers
//! produce an [`Analysis`], an [`AgentMatcher`] (by default [`PolicyMatcher`]) turns it into
//! a [`Decision`], and an agent invoker calls the agent.
//!
//! # The lexical analyzer
//!
//! Messages and training texts (each agent's examples, each keyword, and one text made of
//! its name, intents and description) become TF-IDF vectors over word unigrams and bigrams
//! (of lightly stemmed words) and character 2–4-grams inside words, each block normalised.
//! Every agent starts at its class centroid; SGD with feature dropout then trains a
//! multinomial logistic regression whose weights exist only where an agent's own texts,
//! or texts it is most easily confused with (its "rivals"), have the feature, so memory
//! stays linear in the text (a small tenant's weights are stored as a dense matrix, with
//! zeros elsewhere, when that is smaller). A logistic calibrator maps the raw scores (softmax
//! probability, gap, top score, share of the message the index knows, number of agents) to
//! a confidence, fitted on held-out predictions from BANKING77's training set
//! (`examples/banking77_cv.rs`); messages made of words no agent has get a low confidence.
//!
//! On BANKING77 (77 intents; `examples/banking77.rs`) the trained model is right 92.2% of
//! the time with all 10,003 training examples and 77.1% with 10 per intent; the centroid
//! model that [`LexicalIndex::build`] returns for a tenant that large, 78.6% and 69.8%.
//!
//! Training costs about a nanosecond per weight update; [`LexicalIndex::build`] trains
//! inline only under [`LexicalConfig::inline_training_budget`] (a tenant of a few dozen
//! agents with a handful of examples each) and otherwise returns the centroid model at
//! once, with its own calibration. A server should then run [`LexicalIndex::trained`] off
//! the request path (e.g. `spawn_blocking`) and swap the cached `Arc` when it is done:
//!
//! ```text
//! let index = Arc::new(LexicalIndex::build(profiles));
//! cache.insert(tenant, version, index.clone());
//! if !index.is_trained() {
//!     tokio::task::spawn_blocking(move || {
//!         cache.replace_if_current(tenant, version, Arc::new(index.trained()))
//!     });
//! }
//! ```
//!
//! Both models are deterministic: replicas with the same agents route the same way.

mod analysis;
mod calibration;
mod decision;
mod embedding;
mod index;
mod lexical;
mod profile;
mod similarity;
mod text;

pub use analysis::{Analysis, Candidate, Intent};
pub use calibration::{Calibration, CalibrationFeatures};
pub use decision::{
    AgentRef, Alternative, Decision, FailoverFrom, MAX_ALTERNATIVES, Method, RouteError,
    RouteInput, RoutingPolicy, Skipped, decide,
};
pub use embedding::TextEmbedder;
pub use index::{Encoders, RoutingConfig, RoutingIndex};
pub use lexical::{LexicalConfig, LexicalIndex};
pub use profile::{AgentProfile, AgentSet};
pub use similarity::Prototypes;

/// The matching stage of the routing pipeline: from an analysis of the message (by any
/// analyzer) to the agent that answers, under the tenant's policy and the request's facts.
/// Pure and synchronous: everything it needs is in its arguments.
pub trait AgentMatcher: Send + Sync + std::fmt::Debug {
    /// Decides which of `agents` answers.
    fn decide(
        &self,
        agents: &AgentSet,
        analysis: &Analysis,
        policy: &RoutingPolicy,
        input: &RouteInput<'_>,
    ) -> Result<Decision, RouteError>;
}

/// The matcher of docs/routing.md, [`decide`]: pinned, then sticky with hysteresis, then the best
/// candidate, or the fallback agent when nothing is confident or clear enough or the
/// fallback agent's own examples match best.
#[derive(Clone, Copy, Debug, Default)]
pub struct PolicyMatcher;

impl AgentMatcher for PolicyMatcher {
    fn decide(
        &self,
        agents: &AgentSet,
        analysis: &Analysis,
        policy: &RoutingPolicy,
        input: &RouteInput<'_>,
    ) -> Result<Decision, RouteError> {
        decide(agents, analysis, policy, input)
    }
}

impl LexicalIndex {
    /// Decides over this index's agents: [`decide`] with [`LexicalIndex::agent_set`].
    pub fn decide(
        &self,
        analysis: &Analysis,
        policy: &RoutingPolicy,
        input: &RouteInput<'_>,
    ) -> Result<Decision, RouteError> {
        decide(self.agent_set(), analysis, policy, input)
    }

    /// Analyses a message and decides in one call, as `/v1/route` and `/v1/chat` do.
    pub fn route(
        &self,
        message: &str,
        policy: &RoutingPolicy,
        input: &RouteInput<'_>,
    ) -> Result<(Analysis, Decision), RouteError> {
        let analysis = self.analyze(message);
        let decision = self.decide(&analysis, policy, input)?;
        Ok((analysis, decision))
    }
}

//! A tenant's routing index: the lexical model, the sentence encoder's two heads when the
//! server has one, and the tenant's own calibration.
//!
//! - The *fast head* analyses every message: the lexical features, plus the message's
//!   static embedding (its tokens' distilled vectors averaged, microseconds) when there is
//!   an encoder.
//! - The *full head* — the lexical features plus the whole encoder's embedding — decides
//!   the messages the fast head is not sure of (its confidence below
//!   [`RoutingConfig::full_band`]); the encoder costs milliseconds, so it runs only there.
//! - *Self-calibration*: the confidence of each head is a logistic calibrator fitted on the
//!   tenant's own examples (k-fold over each agent's examples, and leaving agents out to
//!   imitate messages that belong to no agent), and the fallback threshold is set so that
//!   about [`RoutingConfig::target_false_fallback`] of the messages that an agent should
//!   answer would fall back. A tenant too small to be cross-validated keeps the defaults,
//!   which were fitted the same way on the public sets' training files
//!   (`examples/routing_cv.rs`).
//!
//! [`RoutingIndex::build`] does at once what is cheap (the lexical model, with the static
//! head when there is an encoder, trained and calibrated inline for a small tenant);
//! [`RoutingIndex::completed`] does the rest, off the request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::analysis::Analysis;
use super::calibration::{Calibration, CalibrationFeatures};
use super::decision::{Decision, Method, RouteError, RouteInput, RoutingPolicy, decide};
use super::embedding::TextEmbedder;
use super::lexical::{LexicalConfig, LexicalIndex};
use super::profile::{AgentProfile, AgentSet};
use super::similarity::Prototypes;

/// The sentence encoder's two ways to embed a text.
#[derive(Clone, Debug)]
pub struct Encoders {
    /// Microseconds a message: static token embeddings averaged.
    pub fast: Arc<dyn TextEmbedder>,
    /// Milliseconds a message: the whole model.
    pub full: Arc<dyn TextEmbedder>,
}

/// How a tenant's routing index is built and calibrated.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutingConfig {
    /// The lexical model's settings (its embedding block's weight included).
    pub lexical: LexicalConfig,
    /// The share of answerable messages the fitted fallback threshold lets fall back.
    pub target_false_fallback: f64,
    /// Folds of the self-calibration's cross-validation.
    pub folds: usize,
    /// The fast head's confidence below which the full head decides.
    pub full_band: f64,
    /// The fallback threshold of a tenant too small to calibrate.
    pub default_threshold: f64,
    /// Calibrators used before (or instead of) the tenant's own: the lexical-only model,
    /// the fast head with static embeddings, the full head.
    pub default_lexical: Calibration,
    /// See [`default_lexical`](Self::default_lexical).
    pub default_fast: Calibration,
    /// See [`default_lexical`](Self::default_lexical).
    pub default_full: Calibration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            lexical: LexicalConfig::default(),
            target_false_fallback: 0.03,
            folds: 5,
            full_band: 0.7,
            default_threshold: 0.5,
            default_lexical: Calibration::TRAINED,
            default_fast: Calibration::TRAINED,
            default_full: Calibration::TRAINED,
        }
    }
}

/// One model with its calibration.
#[derive(Debug)]
struct Head {
    index: LexicalIndex,
    prototypes: Option<Prototypes>,
    calibration: Calibration,
}

impl Head {
    /// The raw winner and the calibrator's features for a message.
    fn features(
        &self,
        message: &str,
        embedding: Option<&[f32]>,
    ) -> (Option<usize>, CalibrationFeatures) {
        let (best, mut f) = self.index.calibration_features_embedded(message, embedding);
        if let (Some(p), Some(e), Some(b)) = (&self.prototypes, embedding, best) {
            f.similarity = p.similarity(e, b);
        }
        (best, f)
    }

    fn analyze(&self, message: &str, embedding: Option<&[f32]>, method: Method) -> Analysis {
        let mut analysis = self
            .index
            .analyze_calibrated(message, embedding, &|f, best| {
                let mut f = *f;
                if let (Some(p), Some(e)) = (&self.prototypes, embedding) {
                    f.similarity = p.similarity(e, best);
                }
                self.calibration.confidence(&f)
            });
        analysis.analyzer = method;
        analysis
    }

    fn heap_size_bytes(&self) -> usize {
        self.index.heap_size_bytes()
            + self
                .prototypes
                .as_ref()
                .map_or(0, Prototypes::heap_size_bytes)
    }
}

/// A tenant's routing index. Immutable; share it in an `Arc` and rebuild it when the
/// tenant's agents change.
#[derive(Debug)]
pub struct RoutingIndex {
    fast: Head,
    full: Option<Head>,
    threshold: f64,
    calibrated: bool,
    encoders: Option<Encoders>,
    config: RoutingConfig,
}

impl RoutingIndex {
    /// Builds what is cheap now: the lexical model (with the static head when there are
    /// encoders), trained and calibrated inline for a small tenant; see
    /// [`is_complete`](Self::is_complete).
    pub fn build(
        agents: Vec<AgentProfile>,
        config: RoutingConfig,
        encoders: Option<Encoders>,
    ) -> Self {
        let fast = fast_index(agents, &config, encoders.as_ref(), false);
        let cheap = fast.is_trained();
        let prototypes = encoders
            .as_ref()
            .map(|e| Prototypes::build(fast.agent_set(), e.fast.as_ref()));
        let mut index = Self {
            fast: Head {
                prototypes,
                calibration: default_fast(&config, encoders.is_some()),
                index: fast,
            },
            full: None,
            threshold: config.default_threshold,
            calibrated: false,
            encoders,
            config,
        };
        if cheap {
            index.calibrate();
        }
        index
    }

    /// Everything [`build`](Self::build) may have left for later: the trained model, the
    /// full head, the tenant's calibration. Seconds for a large tenant: run it off the
    /// request path.
    pub fn completed(&self) -> Self {
        let agents = self.fast.index.agent_set().agents().to_vec();
        let encoders = self.encoders.as_ref().map(memoized);
        let fast = fast_index(agents.clone(), &self.config, encoders.as_ref(), true);
        let fast_prototypes = encoders
            .as_ref()
            .map(|e| Prototypes::build(fast.agent_set(), e.fast.as_ref()));
        let full = encoders.as_ref().map(|e| {
            let index = LexicalIndex::build_embedded(
                agents.clone(),
                self.config.lexical.clone(),
                e.full.clone(),
                true,
            );
            Head {
                prototypes: Some(Prototypes::build(index.agent_set(), e.full.as_ref())),
                index,
                calibration: self.config.default_full.clone(),
            }
        });
        let mut index = Self {
            fast: Head {
                index: fast,
                prototypes: fast_prototypes,
                calibration: default_fast(&self.config, encoders.is_some()),
            },
            full,
            threshold: self.config.default_threshold,
            calibrated: false,
            encoders,
            config: self.config.clone(),
        };
        index.calibrate();
        // Keep the callers' encoders, not the build's memo of them.
        index.encoders = self.encoders.clone();
        index
    }

    /// Whether nothing is left for [`completed`](Self::completed) to do.
    pub fn is_complete(&self) -> bool {
        self.calibrated
            && self.fast.index.is_trained()
            && (self.encoders.is_none() || self.full.is_some())
    }

    /// The agents it routes over.
    pub fn agent_set(&self) -> &AgentSet {
        self.fast.index.agent_set()
    }

    /// The fast head's lexical index (for the words that explain a decision, and tests).
    pub fn lexical(&self) -> &LexicalIndex {
        &self.fast.index
    }

    /// The fallback threshold fitted to the tenant (or the default): messages less
    /// confident than this fall back, unless the tenant sets its own `min_confidence`.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The heads' calibrators: the fast head's, and the full head's if there is one.
    pub fn calibrations(&self) -> (&Calibration, Option<&Calibration>) {
        (
            &self.fast.calibration,
            self.full.as_ref().map(|h| &h.calibration),
        )
    }

    /// Whether the threshold and calibrators are the tenant's own (rather than defaults).
    pub fn is_calibrated(&self) -> bool {
        self.calibrated
    }

    /// The fast analysis of a message (microseconds).
    pub fn analyze(&self, message: &str) -> Analysis {
        let embedding = self
            .encoders
            .as_ref()
            .and_then(|e| e.fast.embed(&[message]).pop());
        self.fast
            .analyze(message, embedding.as_deref(), Method::Lexical)
    }

    /// Whether the full head should decide instead of the fast analysis: it is not sure
    /// enough, and there is a full head.
    pub fn wants_full(&self, fast: &Analysis) -> bool {
        self.full.is_some() && fast.intent.confidence < self.config.full_band
    }

    /// The whole encoder, for a caller that embeds a message for
    /// [`analyze_full`](Self::analyze_full) itself (off its async threads, with a cache).
    pub fn full_encoder(&self) -> Option<&Arc<dyn TextEmbedder>> {
        self.full
            .as_ref()
            .and(self.encoders.as_ref())
            .map(|e| &e.full)
    }

    /// The full head's analysis of a message whose embedding by the whole encoder is
    /// `embedding` (`None` if there is no full head).
    pub fn analyze_full(&self, message: &str, embedding: &[f32]) -> Option<Analysis> {
        self.full
            .as_ref()
            .map(|h| h.analyze(message, Some(embedding), Method::Embedding))
    }

    /// Analyses a message as a chat turn does, in one blocking call: the fast analysis,
    /// then the full head where it is not sure.
    pub fn analyze_all(&self, message: &str) -> Analysis {
        let fast = self.analyze(message);
        if !self.wants_full(&fast) {
            return fast;
        }
        let embedding = self.full_encoder().and_then(|e| e.embed(&[message]).pop());
        match embedding.and_then(|e| self.analyze_full(message, &e)) {
            Some(full) => full,
            None => fast,
        }
    }

    /// Decides over this index's agents.
    pub fn decide(
        &self,
        analysis: &Analysis,
        policy: &RoutingPolicy,
        input: &RouteInput<'_>,
    ) -> Result<Decision, RouteError> {
        decide(self.agent_set(), analysis, policy, input)
    }

    /// The memory it holds, roughly.
    pub fn heap_size_bytes(&self) -> usize {
        self.fast.heap_size_bytes() + self.full.as_ref().map_or(0, Head::heap_size_bytes)
    }

    /// Fits the heads' calibrators and the threshold to the tenant's own examples, if it
    /// has enough of them.
    fn calibrate(&mut self) {
        let Some(samples) = self.cross_validate() else {
            self.calibrated = true;
            return;
        };
        let ridge = 1.0;
        // Messages that fit no agent weigh a fixed share of the answerable ones, whatever
        // the number of examples the folds left out.
        let in_scope = samples.iter().filter(|s| s.in_scope).count() as f64;
        let out = (samples.len() as f64 - in_scope).max(1.0);
        let weight = |s: &Sample| {
            if s.in_scope {
                1.0
            } else {
                OUT_OF_SCOPE_SHARE * in_scope / out
            }
        };
        let fast_samples: Vec<_> = samples
            .iter()
            .map(|s| (s.fast, s.fast_right, weight(s)))
            .collect();
        self.fast.calibration = Calibration::fit(&fast_samples, &self.fast.calibration, ridge);
        if let Some(full) = &mut self.full {
            let full_samples: Vec<_> = samples
                .iter()
                .filter_map(|s| s.full.map(|f| (f, s.full_right, weight(s))))
                .collect();
            full.calibration = Calibration::fit(&full_samples, &full.calibration, ridge);
        }
        // The threshold below which the target share of answerable messages falls.
        let mut confidences: Vec<f64> = samples
            .iter()
            .filter(|s| s.in_scope)
            .map(|s| {
                // A message the fallback agent's own examples take falls back at any
                // threshold: it spends the target first.
                let fast = self.fast.calibration.confidence(&s.fast);
                match (&self.full, &s.full) {
                    (Some(full), Some(f)) if fast < self.config.full_band => {
                        if s.full_fallback {
                            0.0
                        } else {
                            full.calibration.confidence(f)
                        }
                    }
                    _ if s.fast_fallback => 0.0,
                    _ => fast,
                }
            })
            .collect();
        confidences.sort_by(f64::total_cmp);
        if let Some(&t) =
            confidences.get((confidences.len() as f64 * self.config.target_false_fallback) as usize)
        {
            self.threshold = t.clamp(0.01, 0.9);
        }
        self.calibrated = true;
    }

    /// Held-out predictions on the tenant's own examples: each agent's examples in folds
    /// (answerable messages), and, in as many more folds, a share of the agents left out
    /// entirely, whose examples then stand for messages no agent fits. (Scoring answerable
    /// messages with fewer agents than the tenant has would make them look easier than they
    /// are.) `None` for a tenant too small for it.
    fn cross_validate(&self) -> Option<Vec<Sample>> {
        let set = self.agent_set();
        let eligible: Vec<usize> = set
            .agents()
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.is_fallback && a.examples.len() >= 3)
            .map(|(i, _)| i)
            .collect();
        let examples: usize = eligible
            .iter()
            .map(|&i| set.agents()[i].examples.len())
            .sum();
        if eligible.len() < 3 || examples < MIN_CALIBRATION_EXAMPLES {
            return None;
        }
        let folds = self.config.folds.max(2);
        let mut samples = Vec::new();
        for fold in 0..folds {
            // Every agent, each eligible one without its examples of this fold.
            let mut train: Vec<AgentProfile> = Vec::new();
            let mut held: Vec<(String, Option<usize>)> = Vec::new();
            for (i, a) in set.agents().iter().enumerate() {
                let in_fold = |j: usize| eligible.contains(&i) && j % folds == fold;
                let mut agent = a.clone();
                agent.examples = a
                    .examples
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| !in_fold(*j))
                    .map(|(_, e)| e.clone())
                    .collect();
                held.extend(
                    a.examples
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| in_fold(*j))
                        .map(|(_, e)| (e.clone(), Some(train.len()))),
                );
                train.push(agent);
            }
            samples.extend(self.fold_samples(train, &held));
            // The eligible agents of this fold left out, every other agent whole.
            let left_out: Vec<usize> = eligible
                .iter()
                .enumerate()
                .filter(|(rank, _)| rank % folds == fold)
                .map(|(_, &i)| i)
                .collect();
            let train: Vec<AgentProfile> = set
                .agents()
                .iter()
                .enumerate()
                .filter(|(i, _)| !left_out.contains(i))
                .map(|(_, a)| a.clone())
                .collect();
            let held: Vec<(String, Option<usize>)> = left_out
                .iter()
                .flat_map(|&i| set.agents()[i].examples.iter().map(|e| (e.clone(), None)))
                .collect();
            samples.extend(self.fold_samples(train, &held));
        }
        Some(samples)
    }

    /// Builds a fold's models and scores its held-out texts (`Some(position)`: the agent
    /// of the fold's set it belongs to; `None`: no agent of the fold).
    fn fold_samples(
        &self,
        train: Vec<AgentProfile>,
        held: &[(String, Option<usize>)],
    ) -> Vec<Sample> {
        let encoders = self.encoders.as_ref();
        let fast = fast_index(train.clone(), &self.config, encoders, true);
        let fast = Head {
            prototypes: encoders.map(|e| Prototypes::build(fast.agent_set(), e.fast.as_ref())),
            index: fast,
            calibration: self.fast.calibration.clone(),
        };
        let full = match (encoders, &self.full) {
            (Some(e), Some(_)) => {
                let index = LexicalIndex::build_embedded(
                    train,
                    self.config.lexical.clone(),
                    e.full.clone(),
                    true,
                );
                Some(Head {
                    prototypes: Some(Prototypes::build(index.agent_set(), e.full.as_ref())),
                    index,
                    calibration: self.config.default_full.clone(),
                })
            }
            _ => None,
        };
        let fallback = fast.index.agent_set().fallback_position();
        let texts: Vec<&str> = held.iter().map(|(t, _)| t.as_str()).collect();
        let fast_vectors = encoders.map(|e| e.fast.embed(&texts));
        let full_vectors = match (encoders, &full) {
            (Some(e), Some(_)) => Some(e.full.embed(&texts)),
            _ => None,
        };
        held.iter()
            .enumerate()
            .map(|(n, (text, label))| {
                let (best, f) = fast.features(text, fast_vectors.as_ref().map(|v| v[n].as_slice()));
                let full = full
                    .as_ref()
                    .zip(full_vectors.as_ref())
                    .map(|(h, v)| h.features(text, Some(&v[n])));
                // Right: the agent the text belongs to, or for a text no agent fits, the
                // fallback agent (whose own examples can take such messages).
                let to_fallback = |b: Option<usize>| b.is_some() && b == fallback;
                let right = |b: Option<usize>| match label {
                    Some(_) => b == *label,
                    None => to_fallback(b),
                };
                let full_best = full.as_ref().map(|(b, _)| *b);
                Sample {
                    in_scope: label.is_some(),
                    fast: f,
                    fast_right: right(best),
                    fast_fallback: to_fallback(best),
                    full_right: full_best.is_some_and(right),
                    full_fallback: full_best.is_some_and(to_fallback),
                    full: full.map(|(_, f)| f),
                }
            })
            .collect()
    }
}

/// The examples (of agents with at least three) a tenant needs for its own calibration.
const MIN_CALIBRATION_EXAMPLES: usize = 30;

/// How much the messages that fit no agent weigh in the calibration, against the
/// answerable ones: a tenant's traffic is mostly answerable.
const OUT_OF_SCOPE_SHARE: f64 = 0.25;

/// One held-out text of the self-calibration.
struct Sample {
    in_scope: bool,
    fast: CalibrationFeatures,
    fast_right: bool,
    /// The fast head's best agent is the fallback agent.
    fast_fallback: bool,
    full: Option<CalibrationFeatures>,
    full_right: bool,
    /// The whole encoder's best agent is the fallback agent.
    full_fallback: bool,
}

fn default_fast(config: &RoutingConfig, embedded: bool) -> Calibration {
    if embedded {
        config.default_fast.clone()
    } else {
        config.default_lexical.clone()
    }
}

fn fast_index(
    agents: Vec<AgentProfile>,
    config: &RoutingConfig,
    encoders: Option<&Encoders>,
    force: bool,
) -> LexicalIndex {
    match encoders {
        Some(e) => {
            LexicalIndex::build_embedded(agents, config.lexical.clone(), e.fast.clone(), force)
        }
        None if force => LexicalIndex::build_trained(agents, config.lexical.clone()),
        None => LexicalIndex::build_with(agents, config.lexical.clone()),
    }
}

/// Encoders that remember every text they embedded, for one build: its folds embed the same
/// examples again and again.
fn memoized(e: &Encoders) -> Encoders {
    Encoders {
        fast: Arc::new(Memo::new(e.fast.clone())),
        full: Arc::new(Memo::new(e.full.clone())),
    }
}

struct Memo {
    inner: Arc<dyn TextEmbedder>,
    seen: Mutex<HashMap<String, Vec<f32>>>,
}

impl Memo {
    fn new(inner: Arc<dyn TextEmbedder>) -> Self {
        Self {
            inner,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl TextEmbedder for Memo {
    fn dims(&self) -> usize {
        self.inner.dims()
    }

    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let missing: Vec<&str> = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let mut missing: Vec<&str> = texts
                .iter()
                .copied()
                .filter(|t| !seen.contains_key(*t))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if !missing.is_empty() {
            let vectors = self.inner.embed(&missing);
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            for (t, v) in missing.iter().zip(vectors) {
                seen.insert((*t).to_owned(), v);
            }
        }
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        texts
            .iter()
            .map(|t| {
                seen.get(*t)
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; self.dims()])
            })
            .collect()
    }
}

//! The lexical analyzer: TF-IDF features over words and character n-grams, a sparse
//! multinomial logistic regression over each agent's examples, keywords and profile, and a
//! calibrator that turns its scores into probabilities that mean what they say.
//!
//! Building is cheap (featurise, then start every agent at its class centroid); training
//! (SGD over the examples) runs inline when the tenant is small enough for it to be cheap,
//! and otherwise through [`LexicalIndex::trained`], which a server runs off the request
//! path and swaps in when done. Each mode has its own calibration, so confidence means the
//! same in both.
//!
//! Training, in order:
//! 1. *Rivals.* The centroid model scores every training text; the few other agents that
//!    score it highest (its rivals, [`LexicalConfig::rivals`]) get weight slots on its
//!    features. An agent otherwise only has weights on features of its own texts, and so
//!    cannot learn that a word of a confusable neighbour's ("yet" in "my card has not
//!    arrived yet") counts *against* it. Rivals give the accuracy of a dense weight matrix
//!    at a cost linear in the text (in cross-validation on BANKING77: +0.4 points alone,
//!    +0.1 on top of dropout, the same as dense weights).
//! 2. *SGD with feature dropout.* Each pass drops every feature of a text with probability
//!    [`LexicalConfig::dropout`] (scaling the rest up to keep the expectation), which
//!    regularises towards spreading weight over many features instead of memorising a
//!    few; with twice the passes, +0.5 points on BANKING77 in cross-validation.
//!
//! Stemming, rivals and dropout together raised accuracy in `examples/banking77_cv.rs` by
//! 0.9 points with all examples, 0.7 with 10 per intent and 0.6 for small tenants.
//!
//! The parts: [`features`] (texts to vectors, the vocabulary), [`layout`] (the weight
//! table), [`train`] (rivals and SGD), [`infer`] (a message's analysis).

use std::cell::RefCell;
use std::sync::Arc;

use super::calibration::Calibration;
use super::embedding::TextEmbedder;
use super::profile::{AgentProfile, AgentSet};
use super::text::{FeatureSpec, Scratch};

mod features;
mod infer;
mod layout;
mod train;

use features::{SparseVec, Vocabulary};
use layout::Rivals;

/// Tunables of the lexical analyzer. The defaults were chosen by cross-validation on the
/// BANKING77 training set (`examples/banking77_cv.rs`); change them only with a measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct LexicalConfig {
    /// Also use pairs of adjacent words as features.
    pub word_bigrams: bool,
    /// Strip common English suffixes (plurals, -ing, -ed, a final -e) in the word block, so
    /// that pairs like "cards arrived" and "card arrive" match; character n-grams always see
    /// the words as typed.
    pub stem: bool,
    /// Shortest character n-gram, counting the word-boundary marks.
    pub char_min: usize,
    /// Longest character n-gram.
    pub char_max: usize,
    /// Weight of the word block after each block is normalised to unit length.
    pub word_weight: f32,
    /// Weight of the character n-gram block.
    pub char_weight: f32,
    /// Weight, as a training example, of the text made of an agent's name, intents and
    /// description.
    pub profile_weight: f32,
    /// Weight, as a training example, of each keyword.
    pub keyword_weight: f32,
    /// Passes of stochastic gradient descent when training.
    pub epochs: usize,
    /// Probability that training drops a feature of a text in a pass (0 = no dropout).
    pub dropout: f32,
    /// How many of the most confusable other agents, per training text, get weights on
    /// that text's features (0 = each agent only has weights on its own texts' features).
    pub rivals: usize,
    /// Initial SGD step size (it decays linearly over the passes).
    pub learning_rate: f32,
    /// L2 regularisation strength.
    pub l2: f32,
    /// Scale applied to centroid similarities, the untrained model and training's start.
    pub centroid_scale: f32,
    /// Keep the weights as a dense features × agents matrix when that takes less memory
    /// than the sparse layout, as it does for small tenants, whose few agents each have a
    /// weight on most features. Scores are the same either way.
    pub dense_weights: bool,
    /// How much training work [`LexicalIndex::build`] may do inline, in weight updates
    /// (about a nanosecond each); a larger tenant is built untrained.
    pub inline_training_budget: u64,
    /// Weight of the embedding block (a unit-length sentence embedding) beside the word
    /// and character blocks, when the index has an embedder.
    pub embedding_weight: f32,
    /// Probability that training drops a feature of the embedding block (the word and
    /// character blocks use [`dropout`](Self::dropout)).
    pub embedding_dropout: f32,
    /// Maps a trained model's raw scores to calibrated probabilities.
    pub calibration: Calibration,
    /// Maps an untrained (centroid) model's raw scores to calibrated probabilities.
    pub calibration_untrained: Calibration,
}

impl Default for LexicalConfig {
    fn default() -> Self {
        Self {
            word_bigrams: true,
            stem: true,
            char_min: 2,
            char_max: 4,
            word_weight: 1.0,
            char_weight: 1.0,
            profile_weight: 1.0,
            keyword_weight: 1.0,
            epochs: 16,
            dropout: 0.6,
            rivals: 3,
            learning_rate: 1.0,
            l2: 1e-4,
            centroid_scale: 10.0,
            dense_weights: true,
            inline_training_budget: 1_000_000,
            embedding_weight: 1.5,
            embedding_dropout: 0.0,
            calibration: Calibration::TRAINED,
            calibration_untrained: Calibration::UNTRAINED,
        }
    }
}

impl LexicalConfig {
    fn spec(&self) -> FeatureSpec {
        FeatureSpec {
            word_bigrams: self.word_bigrams,
            char_min: self.char_min,
            char_max: self.char_max,
            stem: self.stem,
        }
    }
}

/// An immutable, per-tenant routing index over a set of agents.
///
/// Build it once per version of a tenant's agents and share it (`Arc<LexicalIndex>`): it is
/// `Send + Sync` and [`analyze`](Self::analyze) takes `&self`.
#[derive(Debug)]
pub struct LexicalIndex {
    set: AgentSet,
    config: LexicalConfig,
    /// Per feature: its key (see [`key`]), ascending; a feature's id is its position here.
    /// Four bytes a feature, a sixth of a hash map's, and the key carries the block.
    features: Vec<u32>,
    /// Where each bucket of keys (their top bits) starts in `features`, and one past the
    /// end: a bucket per four to eight features, so a look-up scans a handful of keys.
    buckets: Vec<u32>,
    bucket_shift: u32,
    /// Per feature: its inverse document frequency, as an index into `idf_values` (the IDF
    /// of each document frequency that occurs, ascending). Two bytes a feature instead of
    /// four: frequencies repeat (a small tenant has a handful). 65,536 different ones would
    /// take billions of feature occurrences; beyond that, the most frequent share the last
    /// entry.
    idf_class: Vec<u16>,
    idf_values: Vec<f32>,
    /// The IDF given to a feature no training text has: it still counts in a message's
    /// length, so a message of mostly unknown words scores low.
    unknown_idf: f32,
    /// CSR layout of the weights: feature `f`'s agents and weights are
    /// `agents[offsets[f]..offsets[f + 1]]`, agents ascending. When `dense`, `offsets` and
    /// `agents` are empty and feature `f`'s weights are `weights[f * k..(f + 1) * k]`, one
    /// per agent (0 where the sparse layout had no slot).
    offsets: Vec<u32>,
    agents: Vec<u32>,
    weights: Vec<f32>,
    dense: bool,
    /// Per agent: the category reported when it wins, and, for agents with several intents,
    /// each intent's vector (sorted by feature) to pick the best-matching one.
    categories: Vec<String>,
    intent_vectors: Vec<Vec<SparseVec>>,
    /// Whether SGD ran.
    trained: bool,
    /// The sentence encoder of the embedding block, if the index has one: its features are
    /// numbered after the word and character features, `embedding_dims` of them.
    embedder: Option<Arc<dyn TextEmbedder>>,
    embedding_dims: usize,
}

thread_local! {
    /// Per-thread buffers, so a query allocates only for what it returns.
    static SCRATCH: RefCell<QueryScratch> = RefCell::new(QueryScratch::default());
}

#[derive(Default)]
struct QueryScratch {
    text: Scratch,
    known: Vec<u32>,
    unknown: Vec<u64>,
    vector: SparseVec,
    scores: Vec<f32>,
}

impl LexicalIndex {
    /// Builds the index with the default configuration (see [`LexicalConfig`]), training
    /// its model inline only when that is cheap (small tenants); check
    /// [`is_trained`](Self::is_trained) and run [`trained`](Self::trained) off the request
    /// path otherwise.
    pub fn build(agents: Vec<AgentProfile>) -> Self {
        Self::build_with(agents, LexicalConfig::default())
    }

    /// Builds the index with a given configuration, training inline only when cheap.
    pub fn build_with(agents: Vec<AgentProfile>, config: LexicalConfig) -> Self {
        Self::build_inner(agents, config, false, None)
    }

    /// Builds the index and always trains its model, however long that takes (about two
    /// seconds for 10,000 examples): for a background task, not a request.
    pub fn build_trained(agents: Vec<AgentProfile>, config: LexicalConfig) -> Self {
        Self::build_inner(agents, config, true, None)
    }

    /// Builds the index with an embedding block: every training text, and every message
    /// analysed, is also embedded by `embedder`. Trains inline only when cheap, unless
    /// `force_training`.
    pub fn build_embedded(
        agents: Vec<AgentProfile>,
        config: LexicalConfig,
        embedder: Arc<dyn TextEmbedder>,
        force_training: bool,
    ) -> Self {
        Self::build_inner(agents, config, force_training, Some(embedder))
    }

    /// The same agents, configuration and embedder, trained (see
    /// [`build_trained`](Self::build_trained)).
    pub fn trained(&self) -> Self {
        Self::build_inner(
            self.set.agents().to_vec(),
            self.config.clone(),
            true,
            self.embedder.clone(),
        )
    }

    /// The index's sentence encoder, if it has an embedding block.
    pub fn embedder(&self) -> Option<&Arc<dyn TextEmbedder>> {
        self.embedder.as_ref()
    }

    /// Whether the model was trained (rather than scoring by class centroids).
    pub fn is_trained(&self) -> bool {
        self.trained
    }

    fn build_inner(
        agents: Vec<AgentProfile>,
        config: LexicalConfig,
        force_training: bool,
        embedder: Option<Arc<dyn TextEmbedder>>,
    ) -> Self {
        let set = AgentSet::new(agents);
        let Vocabulary {
            features,
            buckets,
            bucket_shift,
            idf_class,
            idf_values,
            unknown_idf,
            mut docs,
            texts,
        } = Vocabulary::read(&set, &config, embedder.is_some());
        let mut index = Self {
            set,
            config,
            buckets,
            bucket_shift,
            features,
            idf_class,
            idf_values,
            unknown_idf,
            offsets: Vec::new(),
            agents: Vec::new(),
            weights: Vec::new(),
            dense: false,
            categories: Vec::new(),
            intent_vectors: Vec::new(),
            trained: false,
            embedding_dims: embedder.as_ref().map_or(0, |e| e.dims()),
            embedder,
        };
        for d in &mut docs {
            index.weigh(&mut d.vector, [0.0; 2]);
        }
        if let Some(embedder) = &index.embedder {
            let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
            for (d, e) in docs.iter_mut().zip(embedder.embed(&texts)) {
                index.append_embedding(&mut d.vector, &e);
            }
        }
        index.layout(&docs, &Rivals::default());
        if force_training || index.training_work(&docs) <= index.config.inline_training_budget {
            index.train(&docs);
        }
        index.describe_intents();
        if index.config.dense_weights {
            index.densify();
        }
        index
    }

    fn describe_intents(&mut self) {
        let mut categories = Vec::with_capacity(self.set.len());
        let mut intent_vectors = Vec::with_capacity(self.set.len());
        let mut q = QueryScratch::default();
        for a in self.set.agents() {
            categories.push(a.intents.first().unwrap_or(&a.name).clone());
            let mut vs = Vec::new();
            if a.intents.len() > 1 {
                for intent in &a.intents {
                    self.vectorize(intent, &mut q);
                    q.vector.sort_unstable_by_key(|&(id, _)| id);
                    vs.push(q.vector.clone());
                }
            }
            intent_vectors.push(vs);
        }
        self.categories = categories;
        self.intent_vectors = intent_vectors;
    }

    /// The agents this index routes over.
    pub fn agent_set(&self) -> &AgentSet {
        &self.set
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &LexicalConfig {
        &self.config
    }

    /// Approximate heap bytes held, so a server can bound its cache of indexes.
    pub fn heap_size_bytes(&self) -> usize {
        let vec_bytes =
            |v: &SparseVec| size_of::<SparseVec>() + v.capacity() * size_of::<(u32, f32)>();
        self.set.heap_size_bytes()
            + self.features.capacity() * size_of::<u32>()
            + self.buckets.capacity() * size_of::<u32>()
            + self.idf_class.capacity() * size_of::<u16>()
            + self.idf_values.capacity() * size_of::<f32>()
            + self.offsets.capacity() * size_of::<u32>()
            + self.agents.capacity() * size_of::<u32>()
            + self.weights.capacity() * size_of::<f32>()
            + self
                .categories
                .iter()
                .map(|c| c.capacity() + size_of::<String>())
                .sum::<usize>()
            + self
                .intent_vectors
                .iter()
                .map(|vs| size_of::<Vec<SparseVec>>() + vs.iter().map(vec_bytes).sum::<usize>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::AgentId;
    use crate::routing::text;

    fn agent(n: u128, name: &str, examples: &[&str]) -> AgentProfile {
        AgentProfile {
            id: AgentId::from_uuid(Uuid::from_u128(n)),
            name: name.to_owned(),
            description: String::new(),
            intents: Vec::new(),
            keywords: Vec::new(),
            examples: examples.iter().map(|s| (*s).to_owned()).collect(),
            priority: 0,
            is_fallback: false,
        }
    }

    fn agents() -> Vec<AgentProfile> {
        vec![
            agent(
                1,
                "card_arrival",
                &["my card has not arrived yet", "where is my card"],
            ),
            agent(
                2,
                "card_delivery",
                &["how long does card delivery take", "card delivery time"],
            ),
            agent(
                3,
                "refund",
                &["i want a refund", "refund my payment please"],
            ),
            agent(
                4,
                "top_up",
                &["my top up failed", "how do i top up my card"],
            ),
        ]
    }

    #[test]
    fn a_dense_layout_analyses_exactly_like_the_sparse_one_in_less_memory() {
        for trained in [false, true] {
            let config = |dense_weights| LexicalConfig {
                dense_weights,
                inline_training_budget: if trained { u64::MAX } else { 0 },
                ..LexicalConfig::default()
            };
            let sparse = LexicalIndex::build_with(agents(), config(false));
            let dense = LexicalIndex::build_with(agents(), config(true));
            assert!(!sparse.dense && dense.is_trained() == trained);
            // Trained, every agent has a weight on most features (rivals), so dense is
            // smaller; untrained, each feature has few agents and the sparse layout stays.
            assert_eq!(dense.dense, trained);
            if trained {
                assert!(dense.heap_size_bytes() < sparse.heap_size_bytes());
            }
            for message in [
                "my card has not arrived yet",
                "refund please",
                "how do I top up my card",
                "card delivery",
                "something else entirely",
                "",
            ] {
                assert_eq!(dense.analyze(message), sparse.analyze(message), "{message}");
            }
        }
    }

    #[test]
    fn rivals_get_slots_and_every_feature_keeps_its_agents_sorted() {
        let untrained = LexicalIndex::build_with(
            agents(),
            LexicalConfig {
                inline_training_budget: 0,
                dense_weights: false,
                ..LexicalConfig::default()
            },
        );
        let trained = untrained.trained();
        assert!(!untrained.is_trained() && trained.is_trained());
        assert!(
            trained.weights.len() > untrained.weights.len(),
            "rivals add slots"
        );
        for index in [&untrained, &trained] {
            for f in 0..index.features.len() as u32 {
                let r = index.range(f);
                assert!(index.agents[r].windows(2).all(|w| w[0] < w[1]));
            }
        }
        // "yet" is only in card_arrival's text; card_delivery, its rival there, now has a
        // weight for it too, and training made it count against card_delivery.
        let spec = trained.config.spec();
        let yet = trained
            .feature(text::word_hash(&spec, "yet"))
            .expect("\"yet\" is a feature");
        assert_eq!(untrained.slot(yet, 1), None);
        let slot = trained
            .slot(yet, 1)
            .expect("card_delivery has a slot for \"yet\"");
        assert!(trained.weights[slot] < 0.0);
    }

    #[test]
    fn without_rivals_or_dropout_training_keeps_the_own_text_support() {
        let config = LexicalConfig {
            rivals: 0,
            dropout: 0.0,
            inline_training_budget: 0,
            dense_weights: false,
            ..LexicalConfig::default()
        };
        let untrained = LexicalIndex::build_with(agents(), config);
        let trained = untrained.trained();
        assert_eq!(trained.agents, untrained.agents);
        assert_eq!(trained.offsets, untrained.offsets);
        assert_ne!(trained.weights, untrained.weights);
    }
}

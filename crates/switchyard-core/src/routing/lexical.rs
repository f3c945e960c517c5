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

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::analysis::{Analysis, Candidate, Intent};
use super::calibration::{Calibration, CalibrationFeatures};
use super::decision::Method;
use super::profile::{AgentProfile, AgentSet};
use super::text::{self, FeatureSpec, Scratch};

/// Hashes the map that numbers features while building. Their keys are already halves of
/// mixed hashes, so one multiplication by an odd constant spreads them into the high bits
/// the map probes by; anything more would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type FeatureMap<V> = HashMap<u32, V, BuildHasherDefault<KeyHasher>>;

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

/// A feature's key: the low half of its hash (whose lowest bit is the block), half the
/// memory of the whole hash. Within a block keys have 31 free bits: two of a tenant's n
/// features share one with a chance of at most about n² / 2³² (0.6 at 50,000 features),
/// which merges the two; a message's unknown feature passes for a known one with a chance
/// of at most n / 2³¹ (about 1 in 43,000 at 50,000).
fn key(h: u64) -> u32 {
    h as u32
}

/// A sparse feature vector: (feature id, value).
type SparseVec = Vec<(u32, f32)>;

/// Per agent, the other agents' training texts it is a rival on (CSR: agent `a`'s texts are
/// `texts[offsets[a]..offsets[a + 1]]`, indexes into the training texts).
#[derive(Default)]
struct Rivals {
    offsets: Vec<u32>,
    texts: Vec<u32>,
}

impl Rivals {
    fn of(&self, agent: usize) -> &[u32] {
        match (self.offsets.get(agent), self.offsets.get(agent + 1)) {
            (Some(&a), Some(&b)) => &self.texts[a as usize..b as usize],
            _ => &[],
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

/// One training text of one agent.
struct Doc {
    agent: u32,
    weight: f32,
    vector: SparseVec,
}

/// `1 + ln(tf)`: sublinear term frequency, so a word repeated does not dominate.
fn tf_weight(tf: f32) -> f32 {
    if tf <= 1.0 { 1.0 } else { 1.0 + tf.ln() }
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
        Self::build_inner(agents, config, false)
    }

    /// Builds the index and always trains its model, however long that takes (about two
    /// seconds for 10,000 examples): for a background task, not a request.
    pub fn build_trained(agents: Vec<AgentProfile>, config: LexicalConfig) -> Self {
        Self::build_inner(agents, config, true)
    }

    /// The same agents and configuration, trained (see [`build_trained`](Self::build_trained)).
    pub fn trained(&self) -> Self {
        Self::build_trained(self.set.agents().to_vec(), self.config.clone())
    }

    /// Whether the model was trained (rather than scoring by class centroids).
    pub fn is_trained(&self) -> bool {
        self.trained
    }

    fn build_inner(agents: Vec<AgentProfile>, config: LexicalConfig, force_training: bool) -> Self {
        let spec = config.spec();
        let set = AgentSet::new(agents);
        let mut scratch = Scratch::default();
        // Distinct features per byte of example and keyword text: about 0.26 for the
        // benchmark's synthetic tenant, 0.06 for BANKING77 (words repeat across examples).
        // Reserve for the former; a tenant with more grows the map, and one with fewer gives
        // back what it left unused at the end of the build.
        let text_bytes: usize = set
            .agents()
            .iter()
            .map(|a| {
                a.examples
                    .iter()
                    .chain(&a.keywords)
                    .map(String::len)
                    .sum::<usize>()
            })
            .sum();
        let mut vocab: FeatureMap<u32> =
            FeatureMap::with_capacity_and_hasher(text_bytes / 4, Default::default());
        let mut df: Vec<u32> = Vec::new();
        let mut keys: Vec<u32> = Vec::new();
        // Per feature: 1 + the last text that had it, and where in that text's vector.
        let mut seen_in: Vec<u32> = Vec::new();
        let mut at: Vec<u32> = Vec::new();
        let mut docs: Vec<Doc> = Vec::new();
        let mut add = |agent: u32, weight: f32, text: &str, scratch: &mut Scratch| {
            text::normalize(text, scratch);
            text::extract(&spec, scratch);
            let doc_no = docs.len() as u32 + 1;
            let mut vector: SparseVec = Vec::with_capacity(scratch.hashes.len());
            for &h in &scratch.hashes {
                let next = df.len() as u32;
                let k = key(h);
                let id = *vocab.entry(k).or_insert(next);
                if id == next {
                    df.push(0);
                    keys.push(k);
                    seen_in.push(0);
                    at.push(0);
                }
                let i = id as usize;
                if seen_in[i] == doc_no {
                    vector[at[i] as usize].1 += 1.0;
                } else {
                    seen_in[i] = doc_no;
                    at[i] = vector.len() as u32;
                    vector.push((id, 1.0));
                    df[i] += 1;
                }
            }
            if !vector.is_empty() {
                docs.push(Doc {
                    agent,
                    weight,
                    vector,
                });
            }
        };
        let mut profile = String::new();
        for (i, a) in set.agents().iter().enumerate() {
            let i = i as u32;
            profile.clear();
            profile.push_str(&a.name);
            for intent in &a.intents {
                profile.push(' ');
                profile.push_str(intent);
            }
            profile.push(' ');
            profile.push_str(&a.description);
            add(i, config.profile_weight, &profile, &mut scratch);
            for k in &a.keywords {
                add(i, config.keyword_weight, k, &mut scratch);
            }
            for e in &a.examples {
                add(i, 1.0, e, &mut scratch);
            }
        }

        // Renumber the features in key order, so that a sorted array of keys maps them.
        drop(vocab);
        let mut order: Vec<u32> = (0..keys.len() as u32).collect();
        order.sort_unstable_by_key(|&i| keys[i as usize]);
        let mut rank = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            rank[old as usize] = new as u32;
        }
        for d in &mut docs {
            for (id, _) in &mut d.vector {
                *id = rank[*id as usize];
            }
        }
        let features: Vec<u32> = order.iter().map(|&i| keys[i as usize]).collect();
        // At least one bit: a shift by 32 would overflow.
        let bucket_bits = (features.len() / 4).max(2).ilog2();
        let bucket_shift = 32 - bucket_bits;
        let mut buckets = vec![0u32; (1 << bucket_bits) + 1];
        for &h in &features {
            buckets[(h >> bucket_shift) as usize + 1] += 1;
        }
        for b in 1..buckets.len() {
            buckets[b] += buckets[b - 1];
        }
        let df: Vec<u32> = order.iter().map(|&i| df[i as usize]).collect();
        drop((keys, order, rank));

        let n_docs = docs.len() as f32;
        // Document frequencies repeat a lot: one logarithm per distinct value.
        let mut frequencies = df.clone();
        frequencies.sort_unstable();
        frequencies.dedup();
        let idf_values: Vec<f32> = frequencies
            .iter()
            .map(|&d| ((1.0 + n_docs) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        let idf_class: Vec<u16> = df
            .iter()
            .map(|d| {
                let class = frequencies.binary_search(d).unwrap_or(0);
                u16::try_from(class).unwrap_or(u16::MAX)
            })
            .collect();
        drop((df, frequencies));
        let mut index = Self {
            set,
            config,
            buckets,
            bucket_shift,
            features,
            idf_class,
            idf_values,
            unknown_idf: (1.0 + n_docs).ln() + 1.0,
            offsets: Vec::new(),
            agents: Vec::new(),
            weights: Vec::new(),
            dense: false,
            categories: Vec::new(),
            intent_vectors: Vec::new(),
            trained: false,
        };
        for d in &mut docs {
            index.weigh(&mut d.vector, [0.0; 2]);
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

    /// Switches to the dense layout if it takes less memory than the sparse one.
    fn densify(&mut self) {
        let (v, k) = (self.features.len(), self.set.len());
        // In four-byte words: dense is a weight per feature and agent; sparse is an offset
        // per feature and an agent and a weight per slot.
        if v.saturating_mul(k) > v + 1 + 2 * self.weights.len() {
            return;
        }
        let mut dense = vec![0f32; v * k];
        for f in 0..v {
            for s in self.range(f as u32) {
                dense[f * k + self.agents[s] as usize] = self.weights[s];
            }
        }
        self.weights = dense;
        self.offsets = Vec::new();
        self.agents = Vec::new();
        self.dense = true;
    }

    /// The id of the feature with hash `h`, if any training text has it: a short scan of
    /// the features in its key's bucket.
    fn feature(&self, h: u64) -> Option<u32> {
        let h = key(h);
        let b = (h >> self.bucket_shift) as usize;
        let (start, end) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        self.features[start..end]
            .iter()
            .position(|&x| x == h)
            .map(|i| (start + i) as u32)
    }

    /// The block of feature `id`.
    fn block(&self, id: u32) -> usize {
        text::block_of(u64::from(self.features[id as usize]))
    }

    /// Turns term frequencies into normalised TF-IDF values in place, each block scaled to
    /// its configured length. `unknown2` is the squared weight, per block, of features the
    /// index does not know: they lengthen the vector without matching anything. Returns the
    /// share of the text's weight the index knows (1 = every feature known).
    fn weigh(&self, vector: &mut SparseVec, unknown2: [f32; 2]) -> f32 {
        let mut norm2 = unknown2;
        for (id, v) in vector.iter_mut() {
            *v = tf_weight(*v) * self.idf_values[self.idf_class[*id as usize] as usize];
            norm2[self.block(*id)] += *v * *v;
        }
        let bw = [self.config.word_weight, self.config.char_weight];
        let scale = [0, 1].map(|b| {
            if norm2[b] > 0.0 {
                bw[b] / norm2[b].sqrt()
            } else {
                0.0
            }
        });
        for (id, v) in vector.iter_mut() {
            *v *= scale[self.block(*id)];
        }
        let present: f32 = [0, 1]
            .iter()
            .filter(|&&b| norm2[b] > 0.0)
            .map(|&b| bw[b] * bw[b])
            .sum();
        if present > 0.0 {
            let unknown: f32 = [0, 1]
                .iter()
                .filter(|&&b| norm2[b] > 0.0)
                .map(|&b| bw[b] * bw[b] * unknown2[b] / norm2[b])
                .sum();
            1.0 - unknown / present
        } else {
            0.0
        }
    }

    /// Vectorises a message into `q.vector` and returns its known share.
    fn vectorize(&self, message: &str, q: &mut QueryScratch) -> f32 {
        text::normalize(message, &mut q.text);
        text::extract(&self.config.spec(), &mut q.text);
        q.known.clear();
        q.unknown.clear();
        for &h in &q.text.hashes {
            match self.feature(h) {
                Some(id) => q.known.push(id),
                None => q.unknown.push(h),
            }
        }
        q.known.sort_unstable();
        q.vector.clear();
        for &id in &q.known {
            match q.vector.last_mut() {
                Some(last) if last.0 == id => last.1 += 1.0,
                _ => q.vector.push((id, 1.0)),
            }
        }
        q.unknown.sort_unstable();
        let mut unknown2 = [0f32; 2];
        let mut i = 0;
        while i < q.unknown.len() {
            let mut j = i + 1;
            while j < q.unknown.len() && q.unknown[j] == q.unknown[i] {
                j += 1;
            }
            let v = tf_weight((j - i) as f32) * self.unknown_idf;
            unknown2[text::block_of(q.unknown[i])] += v * v;
            i = j;
        }
        self.weigh(&mut q.vector, unknown2)
    }

    /// Feature `f`'s slots in the sparse layout (training's; not for a dense index).
    fn range(&self, f: u32) -> std::ops::Range<usize> {
        debug_assert!(!self.dense, "the dense layout has no slots");
        self.offsets[f as usize] as usize..self.offsets[f as usize + 1] as usize
    }

    /// Adds a text's weighted features to the scores of the agents with weight on them;
    /// an agent first touched here starts from 0 and is recorded in `touched` (and `seen`,
    /// which the caller clears with `touched`).
    fn accumulate(
        &self,
        vector: &[(u32, f32)],
        scores: &mut [f32],
        seen: &mut [bool],
        touched: &mut Vec<u32>,
    ) {
        for &(f, x) in vector {
            for s in self.range(f) {
                let a = self.agents[s] as usize;
                if !seen[a] {
                    seen[a] = true;
                    touched.push(a as u32);
                    scores[a] = 0.0;
                }
                scores[a] += x * self.weights[s];
            }
        }
    }

    /// Lays out the weight table and fills it with every agent's (scaled) mean training
    /// vector, which alone is a nearest-centroid classifier and lets few SGD passes suffice.
    ///
    /// Each feature gets one slot per agent whose training texts contain it, and one per
    /// agent that is a rival (see [`rivals`](Self::rivals)) on a text that contains it.
    /// Restricting the model to that support keeps the index's size linear in the training
    /// text rather than features × agents, which matters at 1,000 agents.
    fn layout(&mut self, docs: &[Doc], rivals: &Rivals) {
        let v = self.features.len();
        let k = self.set.len();
        // Texts come grouped by agent in ascending order: agent `a`'s are `own[a]..own[a + 1]`.
        let mut own = vec![0u32; k + 1];
        let mut mass = vec![0f32; k];
        for d in docs {
            own[d.agent as usize + 1] += 1;
            mass[d.agent as usize] += d.weight;
        }
        for a in 0..k {
            own[a + 1] += own[a];
        }
        let texts_of = |a: usize| (own[a]..own[a + 1]).chain(rivals.of(a).iter().copied());
        let mut last = vec![u32::MAX; v];
        let mut counts = vec![0u32; v];
        for a in 0..k {
            for t in texts_of(a) {
                for &(f, _) in &docs[t as usize].vector {
                    if last[f as usize] != a as u32 {
                        last[f as usize] = a as u32;
                        counts[f as usize] += 1;
                    }
                }
            }
        }
        let mut offsets = Vec::with_capacity(v + 1);
        let mut acc = 0u32;
        for c in &counts {
            offsets.push(acc);
            acc += c;
        }
        offsets.push(acc);
        // `counts` becomes each feature's next free slot, then its slot for the agent at hand.
        counts.copy_from_slice(&offsets[..v]);
        let mut fill = counts;
        let mut slot_of = vec![0u32; v];
        let mut agents = vec![0u32; acc as usize];
        let mut weights = vec![0f32; acc as usize];
        last.fill(u32::MAX);
        // Agents in ascending order, so each feature's agents end up sorted, which `slot`
        // relies on. A rival's slots start at 0: only the agent's own texts make its centroid.
        for (a, &agent_mass) in mass.iter().enumerate() {
            for t in texts_of(a) {
                let d = &docs[t as usize];
                let scale = if d.agent as usize == a {
                    self.config.centroid_scale * d.weight / agent_mass
                } else {
                    0.0
                };
                for &(f, x) in &d.vector {
                    let f = f as usize;
                    if last[f] != a as u32 {
                        last[f] = a as u32;
                        slot_of[f] = fill[f];
                        agents[fill[f] as usize] = a as u32;
                        fill[f] += 1;
                    }
                    weights[slot_of[f] as usize] += scale * x;
                }
            }
        }
        self.offsets = offsets;
        self.weights = weights;
        self.agents = agents;
    }

    /// For every training text, the `config.rivals` other agents the current model scores
    /// highest on it (among those sharing a feature with it), grouped by agent.
    fn rivals(&self, docs: &[Doc]) -> Rivals {
        let k = self.set.len();
        let n = self.config.rivals.min(k - 1);
        let mut scores = vec![0f32; k];
        let mut seen = vec![false; k];
        let mut touched: Vec<u32> = Vec::with_capacity(k);
        // (score, agent) of the best others so far, best first.
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(n + 1);
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(docs.len() * n);
        for (t, d) in docs.iter().enumerate() {
            self.accumulate(&d.vector, &mut scores, &mut seen, &mut touched);
            best.clear();
            for &a in &touched {
                seen[a as usize] = false;
                let s = scores[a as usize];
                if a == d.agent || s <= 0.0 {
                    continue;
                }
                // Ties go to the lower agent, so the choice does not depend on `touched`'s order.
                let at = best.partition_point(|&(bs, ba)| bs > s || (bs == s && ba < a));
                if at < n {
                    best.insert(at, (s, a));
                    best.truncate(n);
                }
            }
            touched.clear();
            pairs.extend(best.iter().map(|&(_, a)| (a, t as u32)));
        }
        // Counting sort by agent; texts stay ascending within each agent.
        let mut offsets = vec![0u32; k + 1];
        for &(a, _) in &pairs {
            offsets[a as usize + 1] += 1;
        }
        for a in 0..k {
            offsets[a + 1] += offsets[a];
        }
        let mut fill = offsets.clone();
        let mut texts = vec![0u32; pairs.len()];
        for &(a, t) in &pairs {
            texts[fill[a as usize] as usize] = t;
            fill[a as usize] += 1;
        }
        Rivals { offsets, texts }
    }

    /// The slot of `agent`'s weight on feature `f`, in the sparse layout (training's).
    fn slot(&self, f: u32, agent: u32) -> Option<usize> {
        let r = self.range(f);
        let lo = r.start;
        self.agents[r].binary_search(&agent).ok().map(|i| lo + i)
    }

    /// `agent`'s weight on feature `f`, if it has one (in the dense layout: if it is not 0).
    fn weight(&self, f: u32, agent: u32) -> Option<f32> {
        if self.dense {
            let w = self.weights_of(f)[agent as usize];
            (w != 0.0).then_some(w)
        } else {
            self.slot(f, agent).map(|s| self.weights[s])
        }
    }

    /// The weights on feature `f` (in the dense layout, also the zeros of agents without).
    fn weights_of(&self, f: u32) -> &[f32] {
        if self.dense {
            let k = self.set.len();
            &self.weights[f as usize * k..(f as usize + 1) * k]
        } else {
            &self.weights[self.range(f)]
        }
    }

    /// Weight updates training would take: every kept feature of every text touches all
    /// of that feature's agents twice per pass, plus one pass to find rivals. Rivals add
    /// slots, so this underestimates somewhat; the budget is a rough bound anyway.
    fn training_work(&self, docs: &[Doc]) -> u64 {
        let per_epoch: u64 = docs
            .iter()
            .flat_map(|d| &d.vector)
            .map(|&(f, _)| (self.offsets[f as usize + 1] - self.offsets[f as usize]) as u64)
            .sum();
        let passes = 2.0 * self.config.epochs as f64 * f64::from(self.keep_probability());
        (per_epoch as f64 * (passes + 1.0)) as u64
    }

    /// The probability that training keeps a feature of a text in a pass.
    fn keep_probability(&self) -> f32 {
        // At least 5% kept, so that every text still says something.
        1.0 - self.config.dropout.clamp(0.0, 0.95)
    }

    /// Finds rivals with the centroid model, lays the weights out again with their slots,
    /// and trains.
    fn train(&mut self, docs: &[Doc]) {
        let k = self.set.len();
        if self.config.epochs == 0 || k < 2 || docs.is_empty() {
            return;
        }
        if self.config.rivals > 0 {
            let rivals = self.rivals(docs);
            self.layout(docs, &rivals);
        }
        self.sgd(docs);
    }

    /// Multinomial logistic regression by SGD, with feature dropout, over the current
    /// support.
    fn sgd(&mut self, docs: &[Doc]) {
        let k = self.set.len();
        self.trained = true;
        // Each agent's texts weigh the same in total, so an agent with many examples does
        // not win merely by having more of them.
        let mut mass = vec![0f32; k];
        for d in docs {
            mass[d.agent as usize] += d.weight;
        }
        let mean_mass = mass.iter().sum::<f32>() / k as f32;
        let mut order: Vec<u32> = (0..docs.len() as u32).collect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut scores = vec![0f32; k];
        let mut grad = vec![0f32; k];
        let mut touched: Vec<u32> = Vec::with_capacity(k);
        let mut seen = vec![false; k];
        let total_steps = (self.config.epochs * docs.len()) as f32;
        let mut step = 0f32;
        let keep = self.keep_probability();
        // A feature is kept when the next 32 random bits fall below this.
        let keep_below = (f64::from(keep) * f64::from(u32::MAX)) as u64;
        let mut kept: SparseVec = Vec::new();
        // Dropout draws from its own stream, so the shuffles stay what they were.
        let mut drop_rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..self.config.epochs {
            // Fisher–Yates with xorshift: deterministic, so an index rebuilt from the same
            // agents routes identically on every replica.
            for i in (1..order.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                order.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            for &di in &order {
                let d = &docs[di as usize];
                let lr = self.config.learning_rate * (1.0 - step / total_steps).max(0.05);
                step += 1.0;
                let vector: &[(u32, f32)] = if keep < 1.0 {
                    kept.clear();
                    for &(f, x) in &d.vector {
                        drop_rng ^= drop_rng << 13;
                        drop_rng ^= drop_rng >> 7;
                        drop_rng ^= drop_rng << 17;
                        if drop_rng >> 32 < keep_below {
                            // Scaled so that a feature's expected value is what queries see.
                            kept.push((f, x / keep));
                        }
                    }
                    &kept
                } else {
                    &d.vector
                };
                self.accumulate(vector, &mut scores, &mut seen, &mut touched);
                // Agents no feature touched score 0 and share one softmax term; they have
                // no weight on these features, so nothing of theirs is updated.
                let untouched = (k - touched.len()) as f32;
                let mut max = if untouched > 0.0 { 0.0 } else { f32::MIN };
                for &a in &touched {
                    max = max.max(scores[a as usize]);
                }
                let mut z = untouched * (-max).exp();
                for &a in &touched {
                    let e = (scores[a as usize] - max).exp();
                    grad[a as usize] = e;
                    z += e;
                }
                let w = d.weight * mean_mass / mass[d.agent as usize];
                for &a in &touched {
                    let p = grad[a as usize] / z;
                    let y = if a == d.agent { 1.0 } else { 0.0 };
                    grad[a as usize] = lr * w * (p - y);
                }
                let decay = 1.0 - lr * self.config.l2;
                for &(f, x) in vector {
                    for s in self.range(f) {
                        let a = self.agents[s] as usize;
                        self.weights[s] = self.weights[s] * decay - grad[a] * x;
                    }
                }
                for &a in &touched {
                    seen[a as usize] = false;
                }
                touched.clear();
            }
        }
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

    /// Raw model scores of every agent (in set order) into `q.scores`; returns the
    /// message's known share.
    fn raw_scores(&self, message: &str, q: &mut QueryScratch) -> f32 {
        let coverage = self.vectorize(message, q);
        q.scores.clear();
        q.scores.resize(self.set.len(), 0.0);
        if self.dense {
            for &(f, x) in &q.vector {
                for (score, w) in q.scores.iter_mut().zip(self.weights_of(f)) {
                    *score += x * w;
                }
            }
        } else {
            for &(f, x) in &q.vector {
                for s in self.range(f) {
                    q.scores[self.agents[s] as usize] += x * self.weights[s];
                }
            }
        }
        coverage
    }

    fn calibration(&self) -> &Calibration {
        if self.trained {
            &self.config.calibration
        } else {
            &self.config.calibration_untrained
        }
    }

    /// The raw winner (by position) and the features the calibrator sees for a message;
    /// for fitting a calibrator offline (`examples/banking77_cv.rs`).
    pub fn calibration_features(&self, message: &str) -> (Option<usize>, CalibrationFeatures) {
        SCRATCH.with(|q| {
            let q = &mut *q.borrow_mut();
            let coverage = self.raw_scores(message, q);
            let s = summarize(&q.scores, coverage, self.trained);
            (s.best, s.features)
        })
    }

    /// Analyses a message: its intent and every agent ranked by calibrated score.
    pub fn analyze(&self, message: &str) -> Analysis {
        SCRATCH.with(|q| {
            let q = &mut *q.borrow_mut();
            let coverage = self.raw_scores(message, q);
            let summary = summarize(&q.scores, coverage, self.trained);
            let Some(best) = summary.best else {
                return Analysis {
                    analyzer: Method::Lexical,
                    intent: Intent {
                        category: None,
                        confidence: 0.0,
                        keywords: Vec::new(),
                    },
                    candidates: Vec::new(),
                };
            };
            let confidence = self.calibration().confidence(&summary.features);
            // Softmax probabilities rescaled so that the best one equals the calibrated
            // confidence: the order is kept and the scores never sum above 1 (what is left
            // is the chance that no agent fits).
            let p_top = summary.features.p_top;
            let agents = self.set.agents();
            let mut candidates: Vec<Candidate> = q
                .scores
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let p = f64::from((s - summary.max).exp() / summary.z);
                    let score = if i == best {
                        confidence
                    } else if confidence <= p_top {
                        p * confidence / p_top
                    } else {
                        p * (1.0 - confidence) / (1.0 - p_top).max(f64::MIN_POSITIVE)
                    };
                    Candidate {
                        agent_id: agents[i].id,
                        score: score.clamp(0.0, 1.0),
                    }
                })
                .collect();
            // Candidates are built in set order, so a stable sort breaks full ties by it.
            candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
            let pos = |c: &Candidate| self.set.position(c.agent_id).unwrap_or(usize::MAX);
            let mut i = 0;
            while i < candidates.len() {
                let mut j = i + 1;
                while j < candidates.len() && candidates[j].score == candidates[i].score {
                    j += 1;
                }
                if j - i > 1 {
                    candidates[i..j].sort_by_key(|c| {
                        let p = pos(c);
                        (std::cmp::Reverse(agents[p].priority), p)
                    });
                }
                i = j;
            }
            Analysis {
                analyzer: Method::Lexical,
                intent: Intent {
                    category: Some(self.category(q, best)),
                    confidence,
                    keywords: self.matched_words(q, best),
                },
                candidates,
            }
        })
    }

    /// Message words that are evidence for the agent: its weight for the word is positive,
    /// the highest of all agents', and at least half that of its strongest matched word
    /// (so "i" and "the" do not show up next to "refund").
    fn matched_words(&self, q: &QueryScratch, agent: usize) -> Vec<String> {
        let spec = self.config.spec();
        let mut found: Vec<(&str, f32)> = Vec::new();
        for &(s, e) in &q.text.words {
            let w = &q.text.text[s..e];
            let Some(f) = self.feature(text::word_hash(&spec, w)) else {
                continue;
            };
            let Some(weight) = self.weight(f, agent as u32) else {
                continue;
            };
            let strongest = self.weights_of(f).iter().all(|&o| o <= weight);
            if weight > 0.0 && strongest && !found.iter().any(|(o, _)| *o == w) {
                found.push((w, weight));
            }
        }
        let top = found.iter().map(|&(_, w)| w).fold(0.0, f32::max);
        found
            .into_iter()
            .filter(|&(_, w)| w >= 0.5 * top)
            .map(|(w, _)| w.to_owned())
            .collect()
    }

    fn category(&self, q: &mut QueryScratch, agent: usize) -> String {
        let vs = &self.intent_vectors[agent];
        if vs.is_empty() {
            return self.categories[agent].clone();
        }
        q.vector.sort_unstable_by_key(|&(id, _)| id);
        let mut best = (0usize, f32::MIN);
        for (i, v) in vs.iter().enumerate() {
            let s = sparse_dot(v, &q.vector);
            if s > best.1 {
                best = (i, s);
            }
        }
        self.set.agents()[agent].intents[best.0].clone()
    }
}

/// Dot product of two vectors sorted by feature id.
fn sparse_dot(a: &[(u32, f32)], b: &[(u32, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}

/// What analysis needs from raw scores.
struct Summary {
    best: Option<usize>,
    /// The softmax's max and partition function.
    max: f32,
    z: f32,
    features: CalibrationFeatures,
}

fn summarize(scores: &[f32], coverage: f32, trained: bool) -> Summary {
    let k = scores.len();
    let mut best: Option<usize> = None;
    let (mut s1, mut s2) = (f32::MIN, f32::MIN);
    for (i, &s) in scores.iter().enumerate() {
        if s > s1 {
            s2 = s1;
            s1 = s;
            best = Some(i);
        } else if s > s2 {
            s2 = s;
        }
    }
    if best.is_none() {
        return Summary {
            best,
            max: 0.0,
            z: 1.0,
            features: CalibrationFeatures::new(0.0, 0.0, 0.0, 0.0, 0, trained),
        };
    }
    if k < 2 {
        s2 = 0.0;
    }
    let z: f32 = scores.iter().map(|&s| (s - s1).exp()).sum();
    Summary {
        best,
        max: s1,
        z,
        features: CalibrationFeatures::new(
            f64::from(s1),
            f64::from(s1 - s2),
            f64::from(1.0 / z),
            f64::from(coverage),
            k,
            trained,
        ),
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::AgentId;

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

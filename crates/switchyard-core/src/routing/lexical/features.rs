//! Features: how texts become TF-IDF vectors over word unigrams and bigrams (of lightly
//! stemmed words) and character n-grams, each block normalised; the index's vocabulary, as
//! a sorted array of 32-bit keys with a bucket table; and the IDF of each feature.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{LexicalConfig, LexicalIndex, QueryScratch};
use crate::routing::profile::AgentSet;
use crate::routing::text::{self, Scratch};

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

/// A feature's key: the low half of its hash (whose lowest bit is the block), half the
/// memory of the whole hash. Within a block keys have 31 free bits: two of a tenant's n
/// features share one with a chance of at most about n² / 2³² (0.6 at 50,000 features),
/// which merges the two; a message's unknown feature passes for a known one with a chance
/// of at most n / 2³¹ (about 1 in 43,000 at 50,000).
pub(super) fn key(h: u64) -> u32 {
    h as u32
}

/// A sparse feature vector: (feature id, value).
pub(super) type SparseVec = Vec<(u32, f32)>;

/// One training text of one agent.
pub(super) struct Doc {
    pub agent: u32,
    pub weight: f32,
    pub vector: SparseVec,
}

/// `1 + ln(tf)`: sublinear term frequency, so a word repeated does not dominate.
pub(super) fn tf_weight(tf: f32) -> f32 {
    if tf <= 1.0 { 1.0 } else { 1.0 + tf.ln() }
}

/// The features of a tenant's training texts, and the texts as vectors of term frequencies.
pub(super) struct Vocabulary {
    /// Every feature's key, ascending (a feature's id is its position).
    pub features: Vec<u32>,
    /// Where each bucket of keys starts in `features` (see [`LexicalIndex`]).
    pub buckets: Vec<u32>,
    pub bucket_shift: u32,
    /// Per feature, its IDF's index into `idf_values`.
    pub idf_class: Vec<u16>,
    pub idf_values: Vec<f32>,
    /// The IDF of a feature no text has.
    pub unknown_idf: f32,
    /// The training texts, grouped by agent in set order.
    pub docs: Vec<Doc>,
    /// Each doc's text, when asked for (to embed it).
    pub texts: Vec<String>,
}

/// What reading the texts gives: the texts, each feature's key and document frequency, in
/// the order first seen.
struct Texts {
    docs: Vec<Doc>,
    texts: Vec<String>,
    keys: Vec<u32>,
    df: Vec<u32>,
}

impl Vocabulary {
    /// Reads the agents' training texts (each agent's examples, its keywords, and one text
    /// of its name, intents and description) and numbers their features.
    pub fn read(set: &AgentSet, config: &LexicalConfig, keep_texts: bool) -> Self {
        let Texts {
            mut docs,
            texts,
            keys,
            df,
        } = read_texts(set, config, keep_texts);
        // Renumber the features in key order, so that a sorted array of keys maps them.
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
        Self {
            features,
            buckets,
            bucket_shift,
            idf_class,
            idf_values,
            unknown_idf: (1.0 + n_docs).ln() + 1.0,
            docs,
            texts,
        }
    }
}

/// Every training text as a vector of term frequencies over features numbered as first
/// seen.
fn read_texts(set: &AgentSet, config: &LexicalConfig, keep_texts: bool) -> Texts {
    let spec = config.spec();
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
    let mut texts: Vec<String> = Vec::new();
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
            if keep_texts {
                texts.push(text.to_owned());
            }
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

    Texts {
        docs,
        texts,
        keys,
        df,
    }
}

impl LexicalIndex {
    /// Every feature's count: the word and character features, then the embedding block's.
    pub(super) fn feature_count(&self) -> usize {
        self.features.len() + self.embedding_dims
    }

    /// Appends an embedding's coordinates to a weighted vector, as the embedding block's
    /// features (a vector of the wrong length, or none, adds nothing).
    pub(super) fn append_embedding(&self, vector: &mut SparseVec, embedding: &[f32]) {
        if embedding.len() != self.embedding_dims {
            return;
        }
        let base = self.features.len() as u32;
        let w = self.config.embedding_weight;
        vector.extend(
            embedding
                .iter()
                .enumerate()
                .filter(|(_, x)| **x != 0.0)
                .map(|(i, x)| (base + i as u32, x * w)),
        );
    }

    /// The id of the feature with hash `h`, if any training text has it: a short scan of
    /// the features in its key's bucket.
    pub(super) fn feature(&self, h: u64) -> Option<u32> {
        let h = key(h);
        let b = (h >> self.bucket_shift) as usize;
        let (start, end) = (self.buckets[b] as usize, self.buckets[b + 1] as usize);
        self.features[start..end]
            .iter()
            .position(|&x| x == h)
            .map(|i| (start + i) as u32)
    }

    /// The block of feature `id`.
    pub(super) fn block(&self, id: u32) -> usize {
        text::block_of(u64::from(self.features[id as usize]))
    }

    /// Turns term frequencies into normalised TF-IDF values in place, each block scaled to
    /// its configured length. `unknown2` is the squared weight, per block, of features the
    /// index does not know: they lengthen the vector without matching anything. Returns the
    /// share of the text's weight the index knows (1 = every feature known).
    pub(super) fn weigh(&self, vector: &mut SparseVec, unknown2: [f32; 2]) -> f32 {
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
    pub(super) fn vectorize(&self, message: &str, q: &mut QueryScratch) -> f32 {
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
}

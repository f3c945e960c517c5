//! How typical a message is of an agent: the cosine similarity of its embedding to the
//! agent's nearest example, in standard deviations of the similarities the agent's own
//! examples have to their nearest neighbour among the others. A message about something no
//! agent does is far from every agent's examples, even when the classifier must still name
//! one: this is what tells out-of-scope messages apart best (`examples/routing_cv.rs`).

use super::embedding::TextEmbedder;
use super::profile::AgentSet;

/// Each agent's example embeddings, quantised to a byte a coordinate, with their spread.
#[derive(Clone, Debug)]
pub struct Prototypes {
    dims: usize,
    /// Agent `a`'s rows are `offsets[a]..offsets[a + 1]`.
    offsets: Vec<u32>,
    /// Every row's coordinates as bytes, and the scale that turns them back.
    rows: Vec<i8>,
    scales: Vec<f32>,
    /// Per agent: the mean and standard deviation of its examples' nearest similarities.
    spread: Vec<(f32, f32)>,
}

/// The spread assumed where an agent has too few examples to measure its own: what a
/// sentence encoder's nearest neighbours within one intent typically look like.
const DEFAULT_SPREAD: (f32, f32) = (0.6, 0.12);

/// The narrowest spread used: a handful of near-identical examples must not make every
/// slightly different message look foreign.
const MIN_SD: f32 = 0.05;

impl Prototypes {
    /// Embeds every agent's examples (an agent without any: its name, intents and
    /// description) with `embed` (vectors in the set's order, of `dims` each).
    pub fn build(set: &AgentSet, embedder: &dyn TextEmbedder) -> Self {
        let mut texts: Vec<String> = Vec::new();
        let mut offsets = vec![0u32];
        for a in set.agents() {
            if a.examples.is_empty() {
                texts.push(format!(
                    "{} {} {}",
                    a.name,
                    a.intents.join(" "),
                    a.description
                ));
            } else {
                texts.extend(a.examples.iter().cloned());
            }
            offsets.push(texts.len() as u32);
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&refs);
        Self::from_vectors(embedder.dims(), offsets, &vectors)
    }

    fn from_vectors(dims: usize, offsets: Vec<u32>, vectors: &[Vec<f32>]) -> Self {
        let mut rows = Vec::with_capacity(vectors.len() * dims);
        let mut scales = Vec::with_capacity(vectors.len());
        for v in vectors {
            let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            rows.extend((0..dims).map(|i| {
                let x = v.get(i).copied().unwrap_or(0.0);
                (x / scale).round().clamp(-127.0, 127.0) as i8
            }));
        }
        let mut p = Self {
            dims,
            offsets,
            rows,
            scales,
            spread: Vec::new(),
        };
        p.spread = (0..p.offsets.len() - 1)
            .map(|a| p.own_spread(a, vectors))
            .collect();
        let measured: Vec<(f32, f32)> = p
            .spread
            .iter()
            .copied()
            .filter(|s| *s != DEFAULT_SPREAD)
            .collect();
        // Agents too small to measure take the tenant's typical spread.
        if !measured.is_empty() {
            let n = measured.len() as f32;
            let pooled = (
                measured.iter().map(|s| s.0).sum::<f32>() / n,
                measured.iter().map(|s| s.1).sum::<f32>() / n,
            );
            for s in &mut p.spread {
                if *s == DEFAULT_SPREAD {
                    *s = pooled;
                }
            }
        }
        p
    }

    /// The spread of agent `a`'s examples' nearest similarities (leave one out).
    fn own_spread(&self, a: usize, vectors: &[Vec<f32>]) -> (f32, f32) {
        let range = self.offsets[a] as usize..self.offsets[a + 1] as usize;
        if range.len() < 3 {
            return DEFAULT_SPREAD;
        }
        let nearest: Vec<f32> = range
            .clone()
            .map(|i| {
                range
                    .clone()
                    .filter(|&j| j != i)
                    .map(|j| self.dot_row(&vectors[i], j))
                    .fold(f32::MIN, f32::max)
            })
            .collect();
        let n = nearest.len() as f32;
        let mean = nearest.iter().sum::<f32>() / n;
        let var = nearest.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / (n - 1.0);
        (mean, var.sqrt().max(MIN_SD))
    }

    fn dot_row(&self, e: &[f32], row: usize) -> f32 {
        let q = &self.rows[row * self.dims..(row + 1) * self.dims];
        let s: f32 = e.iter().zip(q).map(|(x, &y)| x * f32::from(y)).sum();
        s * self.scales[row]
    }

    /// How typical embedding `e` is of agent `agent` (by position): its nearest example's
    /// similarity, standardised by the agent's spread. 0 for a vector of the wrong length.
    pub fn similarity(&self, e: &[f32], agent: usize) -> f64 {
        if e.len() != self.dims || agent + 1 >= self.offsets.len() {
            return 0.0;
        }
        let range = self.offsets[agent] as usize..self.offsets[agent + 1] as usize;
        let best = range.map(|r| self.dot_row(e, r)).fold(f32::MIN, f32::max);
        if best == f32::MIN {
            return 0.0;
        }
        let (mean, sd) = self.spread[agent];
        f64::from((best - mean) / sd)
    }

    /// The memory it holds.
    pub fn heap_size_bytes(&self) -> usize {
        self.rows.capacity()
            + self.scales.capacity() * 4
            + self.offsets.capacity() * 4
            + self.spread.capacity() * 8
    }
}

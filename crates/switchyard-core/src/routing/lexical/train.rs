//! Training: rivals found with the centroid model, then a multinomial logistic regression
//! by SGD with feature dropout over the resulting support. Deterministic, so that replicas
//! with the same agents route the same way.

use super::LexicalIndex;
use super::features::{Doc, SparseVec};
use super::layout::Rivals;

impl LexicalIndex {
    /// Weight updates training would take: every kept feature of every text touches all
    /// of that feature's agents twice per pass, plus one pass to find rivals. Rivals add
    /// slots, so this underestimates somewhat; the budget is a rough bound anyway.
    pub(super) fn training_work(&self, docs: &[Doc]) -> u64 {
        let per_epoch: u64 = docs
            .iter()
            .flat_map(|d| &d.vector)
            .map(|&(f, _)| (self.offsets[f as usize + 1] - self.offsets[f as usize]) as u64)
            .sum();
        let passes = 2.0 * self.config.epochs as f64 * f64::from(self.keep_probability());
        (per_epoch as f64 * (passes + 1.0)) as u64
    }

    /// The probability that training keeps a feature of a text in a pass.
    pub(super) fn keep_probability(&self) -> f32 {
        // At least 5% kept, so that every text still says something.
        1.0 - self.config.dropout.clamp(0.0, 0.95)
    }

    /// Finds rivals with the centroid model, lays the weights out again with their slots,
    /// and trains.
    pub(super) fn train(&mut self, docs: &[Doc]) {
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

    /// For every training text, the `config.rivals` other agents the current model scores
    /// highest on it (among those sharing a feature with it), grouped by agent.
    pub(super) fn rivals(&self, docs: &[Doc]) -> Rivals {
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

    /// Multinomial logistic regression by SGD, with feature dropout, over the current
    /// support.
    pub(super) fn sgd(&mut self, docs: &[Doc]) {
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
        // The embedding block's features have their own dropout.
        let first_embedded = self.features.len() as u32;
        let keep_embedded = 1.0 - self.config.embedding_dropout.clamp(0.0, 0.95);
        let keep_embedded_below = (f64::from(keep_embedded) * f64::from(u32::MAX)) as u64;
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
                let vector: &[(u32, f32)] = if keep < 1.0 || keep_embedded < 1.0 {
                    kept.clear();
                    for &(f, x) in &d.vector {
                        let (p, below) = if f < first_embedded {
                            (keep, keep_below)
                        } else {
                            (keep_embedded, keep_embedded_below)
                        };
                        if p >= 1.0 {
                            kept.push((f, x));
                            continue;
                        }
                        drop_rng ^= drop_rng << 13;
                        drop_rng ^= drop_rng >> 7;
                        drop_rng ^= drop_rng << 17;
                        if drop_rng >> 32 < below {
                            // Scaled so that a feature's expected value is what queries see.
                            kept.push((f, x / p));
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
}

//! Inference: a message's raw scores, their calibration into probabilities, the ranked
//! candidates, the intent label and the words that pointed to the winner.

use super::{LexicalIndex, QueryScratch, SCRATCH};
use crate::routing::analysis::{Analysis, Candidate, Intent};
use crate::routing::calibration::{Calibration, CalibrationFeatures};
use crate::routing::decision::Method;
use crate::routing::text;

impl LexicalIndex {
    /// Raw model scores of every agent (in set order) into `q.scores`; returns the
    /// message's known share.
    pub(super) fn raw_scores(
        &self,
        message: &str,
        embedding: Option<&[f32]>,
        q: &mut QueryScratch,
    ) -> f32 {
        let coverage = self.vectorize(message, q);
        match (embedding, &self.embedder) {
            (Some(e), _) => self.append_embedding(&mut q.vector, e),
            (None, Some(embedder)) => {
                if let Some(e) = embedder.embed(&[message]).first() {
                    self.append_embedding(&mut q.vector, e);
                }
            }
            (None, None) => {}
        }
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

    pub(super) fn calibration(&self) -> &Calibration {
        if self.trained {
            &self.config.calibration
        } else {
            &self.config.calibration_untrained
        }
    }

    /// The raw winner (by position) and the features the calibrator sees for a message;
    /// for fitting a calibrator offline (`examples/banking77_cv.rs`).
    pub fn calibration_features(&self, message: &str) -> (Option<usize>, CalibrationFeatures) {
        self.calibration_features_embedded(message, None)
    }

    /// [`calibration_features`](Self::calibration_features) of a message whose embedding
    /// the caller already has.
    pub fn calibration_features_embedded(
        &self,
        message: &str,
        embedding: Option<&[f32]>,
    ) -> (Option<usize>, CalibrationFeatures) {
        SCRATCH.with(|q| {
            let q = &mut *q.borrow_mut();
            let coverage = self.raw_scores(message, embedding, q);
            let s = summarize(&q.scores, coverage, self.trained);
            (s.best, s.features)
        })
    }

    /// Analyses a message: its intent and every agent ranked by calibrated score.
    pub fn analyze(&self, message: &str) -> Analysis {
        self.analyze_embedded(message, None)
    }

    /// Analyses a message whose embedding the caller already has (for an index with an
    /// embedding block; `None` embeds it with the index's own embedder).
    pub fn analyze_embedded(&self, message: &str, embedding: Option<&[f32]>) -> Analysis {
        self.analyze_calibrated(message, embedding, &|features, _| {
            self.calibration().confidence(features)
        })
    }

    /// Analyses a message with a calibrator of the caller's: `confidence` maps the raw
    /// scores' features and the best agent's position to the confidence.
    pub fn analyze_calibrated(
        &self,
        message: &str,
        embedding: Option<&[f32]>,
        confidence: &dyn Fn(&CalibrationFeatures, usize) -> f64,
    ) -> Analysis {
        SCRATCH.with(|q| {
            let q = &mut *q.borrow_mut();
            let coverage = self.raw_scores(message, embedding, q);
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
            let confidence = confidence(&summary.features, best).clamp(0.0, 1.0);
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

    /// The message's words that moved the decision: those whose features add most to the
    /// agent's score over the runner-up's (its weight minus the runner-up's, times the
    /// word's value in the message), stop words never; the strongest first, at most five,
    /// down to a quarter of the strongest.
    pub(super) fn matched_words(&self, q: &QueryScratch, agent: usize) -> Vec<String> {
        let spec = self.config.spec();
        let runner_up = q
            .scores
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != agent)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32);
        let mut found: Vec<(&str, f32)> = Vec::new();
        for &(s, e) in &q.text.words {
            let w = &q.text.text[s..e];
            if text::is_stop_word(w) || found.iter().any(|(o, _)| *o == w) {
                continue;
            }
            let Some(f) = self.feature(text::word_hash(&spec, w)) else {
                continue;
            };
            let Some(&(_, x)) = q.vector.iter().find(|(id, _)| *id == f) else {
                continue;
            };
            let own = self.weight(f, agent as u32).unwrap_or(0.0);
            let other = runner_up.and_then(|r| self.weight(f, r)).unwrap_or(0.0);
            let contribution = x * (own - other);
            if contribution > 0.0 {
                found.push((w, contribution));
            }
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top = found.first().map_or(0.0, |&(_, c)| c);
        found
            .into_iter()
            .take(5)
            .filter(|&(_, c)| c >= 0.25 * top)
            .map(|(w, _)| w.to_owned())
            .collect()
    }

    pub(super) fn category(&self, q: &mut QueryScratch, agent: usize) -> String {
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
    let mut z: f32 = scores.iter().map(|&s| (s - s1).exp()).sum();
    if k < 2 {
        // One agent has no rival to be more likely than: it competes with "no agent" at a
        // raw score of 0, so a message it does not know is not a sure match.
        z += (-s1).exp();
    }
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

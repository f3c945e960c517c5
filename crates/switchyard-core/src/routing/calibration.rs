//! Turning raw classifier scores into a confidence that is a probability of being right.

use serde::{Deserialize, Serialize};

/// What the calibrator looks at for one message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFeatures {
    /// The best agent's raw score.
    pub s_top: f64,
    /// Raw score gap between the best and the second agent.
    pub gap: f64,
    /// The best agent's softmax probability over raw scores.
    pub p_top: f64,
    /// Share of the message's TF-IDF weight made of features some training text has.
    pub coverage: f64,
    /// Number of agents.
    pub agents: usize,
    /// Whether the model was trained (scores of trained and centroid models differ in scale).
    pub trained: bool,
    /// How close the message's embedding is to the best agent's nearest example, in
    /// standard deviations of that agent's own examples' nearest similarities (0 where the
    /// index has no embeddings).
    pub similarity: f64,
}

impl CalibrationFeatures {
    /// Bundles the features.
    pub fn new(
        s_top: f64,
        gap: f64,
        p_top: f64,
        coverage: f64,
        agents: usize,
        trained: bool,
    ) -> Self {
        Self {
            s_top,
            gap,
            p_top,
            coverage,
            agents,
            trained,
            similarity: 0.0,
        }
    }

    /// The regressors of the logistic calibrator, bias first.
    pub fn regressors(&self) -> [f64; Calibration::LEN] {
        let p = self.p_top.clamp(1e-6, 1.0 - 1e-6);
        [
            1.0,
            (p / (1.0 - p)).ln(),
            self.gap,
            self.s_top,
            self.coverage,
            (self.agents.max(1) as f64).ln(),
            self.similarity,
        ]
    }
}

/// A logistic (Platt-style) calibrator: `confidence = σ(θ · regressors)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Coefficients, in the order of [`CalibrationFeatures::regressors`].
    pub theta: [f64; Calibration::LEN],
}

impl Calibration {
    /// Number of regressors.
    pub const LEN: usize = 7;

    /// The confidence for some features.
    pub fn confidence(&self, f: &CalibrationFeatures) -> f64 {
        let x = f.regressors();
        let t: f64 = self.theta.iter().zip(x).map(|(a, b)| a * b).sum();
        1.0 / (1.0 + (-t).exp())
    }
}

impl Calibration {
    /// No calibration: the softmax probability as it is.
    pub const IDENTITY: Self = Self {
        theta: [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    };

    /// For trained models: fitted by `examples/banking77_cv.rs` on held-out predictions
    /// from BANKING77's training set only (5-fold with all 77 intents, 10 examples per
    /// intent, and 300 small tenants of 3–10 intents with 2–5 examples each plus
    /// out-of-scope messages), each regime weighing the same.
    pub const TRAINED: Self = Self {
        theta: [-1.2643, 0.5145, 0.8427, -0.0493, 0.9928, 0.1654, 0.0],
    };

    /// For untrained (centroid) models: fitted the same way with training switched off
    /// (`train=never`).
    pub const UNTRAINED: Self = Self {
        theta: [-2.7498, -0.2009, 1.7262, 0.1538, 2.1127, -0.1125, 0.0],
    };
}

impl Calibration {
    /// Fits the calibrator to labelled samples (features, whether the decision was right,
    /// the sample's weight) by Newton's method on the L2-penalised log-likelihood, starting
    /// from `prior` and pulled towards it (`ridge` per coefficient): few samples move it
    /// little.
    pub fn fit(samples: &[(CalibrationFeatures, bool, f64)], prior: &Self, ridge: f64) -> Self {
        const N: usize = Calibration::LEN;
        let xs: Vec<([f64; N], f64, f64)> = samples
            .iter()
            .map(|(f, y, w)| (f.regressors(), f64::from(u8::from(*y)), *w))
            .collect();
        let loss = |theta: &[f64; N]| -> f64 {
            let mut l: f64 = (0..N)
                .map(|j| 0.5 * ridge * (theta[j] - prior.theta[j]).powi(2))
                .sum();
            for (x, y, w) in &xs {
                let t: f64 = theta.iter().zip(x).map(|(a, b)| a * b).sum();
                // log(1 + e^t) - y t, computed without overflow.
                let softplus = if t > 0.0 {
                    t + (-t).exp().ln_1p()
                } else {
                    t.exp().ln_1p()
                };
                l += w * (softplus - y * t);
            }
            l
        };
        let mut theta = prior.theta;
        let mut current = loss(&theta);
        for _ in 0..50 {
            let mut grad = [0f64; N];
            let mut hess = [[0f64; N]; N];
            for j in 0..N {
                grad[j] = ridge * (theta[j] - prior.theta[j]);
                hess[j][j] = ridge;
            }
            for (x, y, w) in &xs {
                let t: f64 = theta.iter().zip(x).map(|(a, b)| a * b).sum();
                let p = 1.0 / (1.0 + (-t).exp());
                for j in 0..N {
                    grad[j] += w * (p - y) * x[j];
                    for k in 0..N {
                        hess[j][k] += w * p * (1.0 - p) * x[j] * x[k];
                    }
                }
            }
            let Some(step) = solve(hess, grad) else { break };
            // Backtracking: Newton's full step can overshoot where the data are nearly
            // separable.
            let mut alpha = 1.0;
            let mut improved = false;
            for _ in 0..30 {
                let mut next = theta;
                for j in 0..N {
                    next[j] -= alpha * step[j];
                }
                let l = loss(&next);
                if l.is_finite() && l < current {
                    theta = next;
                    improved = current - l > 1e-9 * current.abs().max(1.0);
                    current = l;
                    break;
                }
                alpha *= 0.5;
            }
            if !improved {
                break;
            }
        }
        Self { theta }
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve<const N: usize>(mut a: [[f64; N]; N], mut b: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..N {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = [0f64; N];
    for row in (0..N).rev() {
        let s: f64 = (row + 1..N).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

impl Default for Calibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_recovers_a_calibrator_and_stays_finite_on_separable_data() {
        let truth = Calibration {
            theta: [-1.0, 1.5, 0.5, 0.0, 1.0, 0.0, 0.8],
        };
        let mut samples = Vec::new();
        let mut seed = 7u64;
        for i in 0..4000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            let mut f = CalibrationFeatures::new(
                1.0,
                (i % 7) as f64 / 7.0,
                0.1 + 0.8 * u,
                (i % 5) as f64 / 5.0,
                10,
                true,
            );
            f.similarity = ((i % 11) as f64 - 5.0) / 3.0;
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (seed >> 11) as f64 / (1u64 << 53) as f64;
            samples.push((f, v < truth.confidence(&f), 1.0));
        }
        let fitted = Calibration::fit(&samples, &Calibration::TRAINED, 1.0);
        for (a, b) in fitted.theta.iter().zip(truth.theta) {
            assert!(a.is_finite());
            assert!(
                (a - b).abs() < 0.6,
                "{:?} vs {:?}",
                fitted.theta,
                truth.theta
            );
        }
        // Perfectly separable: the pull towards the prior keeps it finite.
        let separable: Vec<_> = samples
            .iter()
            .map(|(f, _, w)| (*f, f.p_top > 0.5, *w))
            .collect();
        let fitted = Calibration::fit(&separable, &Calibration::TRAINED, 1.0);
        assert!(
            fitted.theta.iter().all(|t| t.is_finite()),
            "{:?}",
            fitted.theta
        );
    }
}

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
    pub const LEN: usize = 6;

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
        theta: [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    };

    /// For trained models: fitted by `examples/banking77_cv.rs` on held-out predictions
    /// from BANKING77's training set only (5-fold with all 77 intents, 10 examples per
    /// intent, and 300 small tenants of 3–10 intents with 2–5 examples each plus
    /// out-of-scope messages), each regime weighing the same.
    pub const TRAINED: Self = Self {
        theta: [-1.2643, 0.5145, 0.8427, -0.0493, 0.9928, 0.1654],
    };

    /// For untrained (centroid) models: fitted the same way with training switched off
    /// (`train=never`).
    pub const UNTRAINED: Self = Self {
        theta: [-2.7498, -0.2009, 1.7262, 0.1538, 2.1127, -0.1125],
    };
}

impl Default for Calibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

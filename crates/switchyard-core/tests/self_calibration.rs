//! A tenant's routing index fits its own fallback threshold and confidence (docs/routing.md,
//! "Self-calibration"), measured on BANKING77 rows the tenant never saw; and the two heads of
//! an index with an encoder, with a stand-in encoder (the real model is tested in
//! switchyard-encoder and through the server).

#![expect(clippy::unwrap_used, reason = "tests")]

#[path = "../examples/support/banking77.rs"]
mod banking77;

use std::sync::Arc;

use switchyard_core::routing::{
    AgentProfile, Encoders, Method, RouteInput, RoutingConfig, RoutingIndex, RoutingPolicy,
    TextEmbedder,
};

/// A tenant of `intents` BANKING77 intents (every 3rd of the 77, for variety) with `shots`
/// examples each, and a fallback; with the test rows of its intents.
fn tenant(intents: usize, shots: usize) -> (Vec<AgentProfile>, Vec<banking77::Row>) {
    let dir = banking77::default_dir();
    let train = banking77::read(&dir, "train.csv").unwrap();
    let test = banking77::read(&dir, "test.csv").unwrap();
    let categories: Vec<String> = banking77::categories(&dir)
        .unwrap()
        .into_iter()
        .step_by(3)
        .take(intents)
        .collect();
    let mut agents = banking77::agents(&categories, &train, Some(shots));
    agents.push(banking77::fallback_agent());
    let test = test
        .into_iter()
        .filter(|r| categories.contains(&r.category))
        .collect();
    (agents, test)
}

/// The share of `rows` (all answerable) the index sends to the fallback, and the accuracy of
/// its decisions at confidence ≥ 0.8.
fn fallback_rate(index: &RoutingIndex, rows: &[banking77::Row]) -> (f64, f64) {
    let policy = RoutingPolicy {
        min_confidence: index.threshold(),
        min_margin: 0.0,
        ..RoutingPolicy::default()
    };
    let (mut fell, mut confident, mut confident_right) = (0, 0, 0);
    for row in rows {
        let analysis = index.analyze_all(&row.text);
        let decision = index
            .decide(&analysis, &policy, &RouteInput::default())
            .unwrap();
        fell += usize::from(decision.method == Method::Fallback);
        if analysis.intent.confidence >= 0.8 {
            confident += 1;
            confident_right +=
                usize::from(analysis.intent.category.as_deref() == Some(&row.category));
        }
    }
    (
        fell as f64 / rows.len() as f64,
        confident_right as f64 / confident.max(1) as f64,
    )
}

fn calibrated(agents: Vec<AgentProfile>, target: f64, encoders: Option<Encoders>) -> RoutingIndex {
    let config = RoutingConfig {
        target_false_fallback: target,
        ..RoutingConfig::default()
    };
    let index = RoutingIndex::build(agents, config, encoders);
    let index = if index.is_complete() {
        index
    } else {
        index.completed()
    };
    assert!(index.is_complete());
    index
}

#[test]
fn the_fitted_threshold_holds_false_fallback_near_its_target() {
    let (agents, test) = tenant(20, 15);
    let index = calibrated(agents.clone(), 0.03, None);
    let threshold = index.threshold();
    assert!(
        (0.01..=0.9).contains(&threshold)
            && threshold != RoutingConfig::default().default_threshold,
        "a threshold of the tenant's own: {threshold}"
    );
    let (rate, confident_right) = fallback_rate(&index, &test);
    assert!(
        (0.005..=0.06).contains(&rate),
        "{:.1}% of answerable messages fell back (target 3%)",
        rate * 100.0
    );
    assert!(
        confident_right >= 0.8,
        "confidence ≥ 0.8 right {confident_right:.2}"
    );

    // A tenant that prefers the fallback to a wrong agent asks for more, and gets more.
    let cautious = calibrated(agents.clone(), 0.2, None);
    assert!(cautious.threshold() > threshold);
    let (cautious_rate, _) = fallback_rate(&cautious, &test);
    assert!(
        (0.1..=0.3).contains(&cautious_rate) && cautious_rate > rate,
        "{:.1}% fell back with a target of 20%",
        cautious_rate * 100.0
    );

    // Deterministic: another build of the same agents fits the same threshold.
    assert_eq!(calibrated(agents, 0.03, None).threshold(), threshold);
}

#[test]
fn a_tenant_too_small_to_cross_validate_keeps_the_defaults() {
    // Three agents with two examples each: nothing to hold out.
    let (agents, _) = tenant(3, 2);
    let index = calibrated(agents, 0.03, None);
    assert_eq!(
        index.threshold(),
        RoutingConfig::default().default_threshold
    );
    assert_eq!(
        index.calibrations().0,
        &RoutingConfig::default().default_lexical
    );
}

/// A stand-in sentence encoder: hashed words (and, for the "full" one, word pairs too), so
/// that texts sharing words are near. Counts the texts it embedded.
struct Hashed {
    pairs: bool,
    calls: std::sync::atomic::AtomicUsize,
}

impl TextEmbedder for Hashed {
    fn dims(&self) -> usize {
        64
    }

    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.calls
            .fetch_add(texts.len(), std::sync::atomic::Ordering::Relaxed);
        texts
            .iter()
            .map(|t| {
                let words: Vec<String> = t.split_whitespace().map(str::to_lowercase).collect();
                let mut v = vec![0f32; 64];
                let mut add = |s: &str| {
                    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                    });
                    v[(h % 64) as usize] += 1.0;
                };
                words.iter().for_each(|w| add(w));
                if self.pairs {
                    words.windows(2).for_each(|p| add(&p.join(" ")));
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect()
    }
}

#[test]
fn with_an_encoder_the_whole_model_decides_only_what_the_fast_head_is_unsure_of() {
    let (agents, test) = tenant(12, 10);
    let fast = Arc::new(Hashed {
        pairs: false,
        calls: 0.into(),
    });
    let full = Arc::new(Hashed {
        pairs: true,
        calls: 0.into(),
    });
    let encoders = Encoders {
        fast: fast.clone(),
        full: full.clone(),
    };
    let quick = RoutingIndex::build(agents, RoutingConfig::default(), Some(encoders));
    assert!(
        quick.full_encoder().is_none(),
        "the whole encoder's head is built later"
    );
    let index = quick.completed();
    assert!(index.is_complete() && index.full_encoder().is_some());
    let (fast_calibration, full_calibration) = index.calibrations();
    assert!(full_calibration.is_some() && fast_calibration != full_calibration.unwrap());

    let before = full.calls.load(std::sync::atomic::Ordering::Relaxed);
    let mut by_full = 0;
    for row in &test {
        let fast_only = index.analyze(&row.text);
        let analysis = index.analyze_all(&row.text);
        if index.wants_full(&fast_only) {
            by_full += 1;
            assert_eq!(analysis.analyzer, Method::Embedding);
        } else {
            assert_eq!(analysis, fast_only, "a sure fast analysis is final");
        }
    }
    let embedded = full.calls.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(
        embedded, by_full,
        "the whole model embeds a message only when it decides it"
    );
    assert!(
        by_full > 0 && by_full < test.len(),
        "{by_full} of {}",
        test.len()
    );
}

//! Routing quality on BANKING77 (data/banking77): accuracy of the analysis on every test
//! row, and calibration (confidence ≥ 0.8 is right at least 80% of the time).
//!
//! All four run by default: a few seconds on two cores, most of it training on the full set
//! (the dev profile builds this crate at opt-level 3; unoptimised it would take minutes).
//!
//! Floors are the figures measured with `examples/banking77.rs` minus a small slack, so a
//! regression fails the test.

#![expect(clippy::unwrap_used, reason = "tests")]

#[path = "../examples/support/banking77.rs"]
mod banking77;

use switchyard_core::routing::{LexicalIndex, Method, RouteInput, RoutingPolicy};

struct Outcome {
    accuracy: f64,
    confident: usize,
    confident_accuracy: f64,
    routed_accuracy: f64,
}

fn evaluate(shots: Option<usize>, train: bool) -> Outcome {
    let dir = banking77::default_dir();
    let train_rows = banking77::read(&dir, "train.csv").unwrap();
    let test = banking77::read(&dir, "test.csv").unwrap();
    let categories = banking77::categories(&dir).unwrap();
    let mut agents = banking77::agents(&categories, &train_rows, shots);
    agents.push(banking77::fallback_agent());
    let quick = LexicalIndex::build(agents);
    assert!(
        !quick.is_trained(),
        "77 agents are over the inline training budget"
    );
    let index = if train { quick.trained() } else { quick };
    let policy = RoutingPolicy::default();
    let (mut right, mut confident, mut confident_right, mut routed, mut routed_right) =
        (0, 0, 0, 0, 0);
    for row in &test {
        let analysis = index.analyze(&row.text);
        let ok = analysis.intent.category.as_deref() == Some(row.category.as_str());
        right += usize::from(ok);
        if analysis.intent.confidence >= 0.8 {
            confident += 1;
            confident_right += usize::from(ok);
        }
        let d = index
            .decide(&analysis, &policy, &RouteInput::default())
            .unwrap();
        if d.method != Method::Fallback {
            routed += 1;
            routed_right += usize::from(d.agent_name == row.category);
        }
    }
    Outcome {
        accuracy: right as f64 / test.len() as f64,
        confident,
        confident_accuracy: confident_right as f64 / confident.max(1) as f64,
        routed_accuracy: routed_right as f64 / routed.max(1) as f64,
    }
}

fn check(o: &Outcome, floor: f64) {
    assert!(
        o.accuracy >= floor,
        "top-1 accuracy {:.4} < {floor}",
        o.accuracy
    );
    assert!(o.confident > 500, "only {} confident answers", o.confident);
    assert!(
        o.confident_accuracy >= 0.8,
        "confidence >= 0.8 right only {:.4} of the time",
        o.confident_accuracy
    );
    assert!(
        o.routed_accuracy >= 0.75,
        "routed decisions right {:.4}",
        o.routed_accuracy
    );
}

#[test]
fn ten_examples_per_intent_trained() {
    // Measured 77.08% top-1, 95.0% right at confidence >= 0.8.
    check(&evaluate(Some(10), true), 0.765);
}

#[test]
fn ten_examples_per_intent_as_built() {
    // Measured 69.81% top-1, 92.9% right at confidence >= 0.8 (centroid model).
    check(&evaluate(Some(10), false), 0.693);
}

#[test]
fn all_examples_trained() {
    // Measured 92.18% top-1, 97.3% right at confidence >= 0.8.
    check(&evaluate(None, true), 0.917);
}

#[test]
fn all_examples_as_built() {
    // Measured 78.64% top-1, 95.4% right at confidence >= 0.8 (centroid model).
    check(&evaluate(None, false), 0.781);
}

//! Routing quality and speed on BANKING77: one agent per intent (plus a generic fallback
//! agent, as a tenant would have), every test row analysed and decided through the same
//! `analyze` + `decide` the server runs for `/v1/route`.
//!
//! ```text
//! cargo run --release -p switchyard-core --example banking77 [-- path/to/banking77]
//! ```
//!
//! Two settings: the first 10 training examples of each intent (in file order), and all of
//! them. Per setting it prints the analysis's top-1 accuracy, the decision's accuracy and
//! fallback rate under the default policy, the mean confidence, a calibration table and
//! timings.

#[path = "support/banking77.rs"]
mod banking77;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_core::routing::{LexicalIndex, Method, RouteInput, RoutingPolicy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(banking77::default_dir, PathBuf::from);
    let train = banking77::read(&dir, "train.csv")?;
    let test = banking77::read(&dir, "test.csv")?;
    let categories = banking77::categories(&dir)?;
    println!(
        "BANKING77: {} intents, {} training rows, {} test rows",
        categories.len(),
        train.len(),
        test.len()
    );
    let policy = RoutingPolicy::default();
    println!(
        "policy: min_confidence {} min_margin {} (defaults); agents: one per intent + a fallback agent",
        policy.min_confidence, policy.min_margin
    );

    for (label, shots) in [("10 examples per intent", Some(10)), ("all examples", None)] {
        let mut agents = banking77::agents(&categories, &train, shots);
        let examples: usize = agents.iter().map(|a| a.examples.len()).sum();
        agents.push(banking77::fallback_agent());
        let t = Instant::now();
        let quick = LexicalIndex::build(agents);
        let quick_time = t.elapsed();
        let t = Instant::now();
        let trained = quick.trained();
        let trained_time = t.elapsed();
        for (mode, index, build) in [
            ("as built (LexicalIndex::build)", &quick, quick_time),
            (
                "trained (LexicalIndex::trained, off the request path)",
                &trained,
                trained_time,
            ),
        ] {
            println!(
                "\n== {label}: {examples} examples; {mode}, trained: {}",
                index.is_trained()
            );
            report(index, build, &test, &policy)?;
        }
    }
    Ok(())
}

fn report(
    index: &LexicalIndex,
    build: Duration,
    test: &[banking77::Row],
    policy: &RoutingPolicy,
) -> Result<(), Box<dyn std::error::Error>> {
    {
        let mut times: Vec<Duration> = Vec::with_capacity(test.len());
        let (mut top1, mut decided_right, mut fallbacks, mut conf_sum) =
            (0usize, 0usize, 0usize, 0f64);
        let mut routed_right = 0usize;
        // Messages the model would be asked about under the default cascade band [0, 0.8):
        // lexical confidence below 0.8 (pinned and sticky turns never ask; there are none here).
        let mut cascade = 0usize;
        // (count, right, confidence sum) per tenth of confidence, for the analysis and for
        // the decisions that routed to an intent agent.
        let mut buckets = [(0usize, 0usize, 0f64); 10];
        let mut decision_buckets = [(0usize, 0usize, 0f64); 10];
        for row in test {
            let t = Instant::now();
            let analysis = index.analyze(&row.text);
            let decision = index.decide(&analysis, policy, &RouteInput::default())?;
            times.push(t.elapsed());

            let right = analysis.intent.category.as_deref() == Some(row.category.as_str());
            let c = analysis.intent.confidence;
            cascade += usize::from(c < 0.8);
            top1 += usize::from(right);
            conf_sum += c;
            let b = ((c * 10.0) as usize).min(9);
            buckets[b].0 += 1;
            buckets[b].1 += usize::from(right);
            buckets[b].2 += c;

            let chose_right = decision.agent_name == row.category;
            decided_right += usize::from(chose_right);
            if decision.method == Method::Fallback {
                fallbacks += 1;
            } else {
                routed_right += usize::from(chose_right);
                let b = ((decision.confidence * 10.0) as usize).min(9);
                decision_buckets[b].0 += 1;
                decision_buckets[b].1 += usize::from(chose_right);
                decision_buckets[b].2 += decision.confidence;
            }
        }
        times.sort();
        let n = test.len() as f64;
        let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "index build            {:.1} ms ({} KiB)",
            build.as_secs_f64() * 1e3,
            index.heap_size_bytes() / 1024
        );
        println!("analysis top-1         {:.2}%", 100.0 * top1 as f64 / n);
        println!(
            "decision accuracy      {:.2}% (fallback counted wrong); routed (non-fallback) {:.2}% right",
            100.0 * decided_right as f64 / n,
            100.0 * routed_right as f64 / (test.len() - fallbacks).max(1) as f64
        );
        println!(
            "fallback rate          {:.2}%",
            100.0 * fallbacks as f64 / n
        );
        println!("mean confidence        {:.3}", conf_sum / n);
        println!(
            "cascade                {:.2}% of turns would call the model (llm/embedding analyzer, band [0, 0.8))",
            100.0 * cascade as f64 / n
        );
        println!(
            "per query (analyze+decide) median {:.1} µs, p99 {:.1} µs",
            pct(0.5).as_secs_f64() * 1e6,
            pct(0.99).as_secs_f64() * 1e6
        );
        println!("calibration      analysis (top-1)               decision (routed, non-fallback)");
        println!("  confidence     count  accuracy  mean conf     count  accuracy  mean conf");
        for i in 0..10 {
            let (c, r, s) = buckets[i];
            let (dc, dr, ds) = decision_buckets[i];
            let f = |c: usize, x: f64| {
                if c == 0 {
                    "    -".to_owned()
                } else {
                    format!("{x:5.3}")
                }
            };
            println!(
                "  {:.1}–{:.1}      {c:5}     {}      {}     {dc:5}     {}      {}",
                i as f64 / 10.0,
                (i + 1) as f64 / 10.0,
                f(c, r as f64 / c.max(1) as f64),
                f(c, s / c.max(1) as f64),
                f(dc, dr as f64 / dc.max(1) as f64),
                f(dc, ds / dc.max(1) as f64),
            );
        }
        let hi: (usize, usize) = buckets[8..]
            .iter()
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        println!(
            "  confidence >= 0.8: {} rows, {:.2}% right",
            hi.0,
            100.0 * hi.1 as f64 / hi.0.max(1) as f64
        );
    }
    Ok(())
}

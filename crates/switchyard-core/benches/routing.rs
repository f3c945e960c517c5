//! Routing speed: one decision (analyze + decide) over 10, 100 and 1,000 agents, and index
//! builds (100 synthetic agents; all of BANKING77, as built and trained).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-routing cargo bench -p switchyard-core --bench routing
//! ```
//!
//! Criterion reports means and medians; `decision_latency` also prints the p50/p99 of single
//! decisions timed one by one, which is what the speed targets are about.

#![expect(clippy::unwrap_used, reason = "a benchmark over known data")]

#[path = "../examples/support/banking77.rs"]
mod banking77;
#[path = "../examples/support/synthetic.rs"]
mod synthetic;

use std::hint::black_box;
use std::time::Instant;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use switchyard_core::routing::{LexicalIndex, RouteInput, RoutingPolicy};

fn decision(c: &mut Criterion) {
    let policy = RoutingPolicy::default();
    let mut group = c.benchmark_group("decision");
    for n in [10usize, 100, 1000] {
        let agents = synthetic::agents(n, 5, 42);
        let messages = synthetic::messages(&agents, 256, 7);
        let index = LexicalIndex::build(agents);
        let mut i = 0;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % messages.len();
                let analysis = index.analyze(black_box(&messages[i]));
                black_box(
                    index
                        .decide(&analysis, &policy, &RouteInput::default())
                        .unwrap(),
                )
            });
        });
        // Criterion has no percentiles: time decisions one by one for p50/p99.
        let mut times: Vec<f64> = Vec::with_capacity(20_000);
        for round in 0..20_000 {
            let m = &messages[round % messages.len()];
            let t = Instant::now();
            let analysis = index.analyze(m);
            black_box(
                index
                    .decide(&analysis, &policy, &RouteInput::default())
                    .unwrap(),
            );
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "decision/{n}: single-shot p50 {:.1} µs, p99 {:.1} µs",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
    group.finish();
}

fn build(c: &mut Criterion) {
    let agents = synthetic::agents(100, 5, 42);
    c.bench_function("build/100_agents", |b| {
        b.iter_batched(
            || agents.clone(),
            |a| LexicalIndex::build(black_box(a)),
            BatchSize::SmallInput,
        );
    });

    let dir = banking77::default_dir();
    let train = banking77::read(&dir, "train.csv").unwrap();
    let categories = banking77::categories(&dir).unwrap();
    let mut agents = banking77::agents(&categories, &train, None);
    agents.push(banking77::fallback_agent());
    let mut group = c.benchmark_group("build");
    group.sample_size(10);
    group.bench_function("banking77_full", |b| {
        b.iter_batched(
            || agents.clone(),
            |a| LexicalIndex::build(black_box(a)),
            BatchSize::LargeInput,
        );
    });
    // Training is what a server runs off the request path for tenants this large.
    let quick = LexicalIndex::build(agents.clone());
    group.bench_function("banking77_full_trained", |b| b.iter(|| quick.trained()));
    group.finish();
}

criterion_group!(benches, decision, build);
criterion_main!(benches);

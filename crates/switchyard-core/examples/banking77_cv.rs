//! Cross-validation of the lexical analyzer on BANKING77's *training* set only, used to
//! choose `LexicalConfig` and to fit its calibrator without ever looking at test.csv.
//!
//! ```text
//! cargo run --release -p switchyard-core --example banking77_cv -- [only=full,shot10,small] [key=value ...]
//! ```
//!
//! Regimes (all drawn from train.csv):
//! - `full`: 5-fold cross-validation with all 77 intents;
//! - `shot10`: 10 random examples per intent, scored on other training rows;
//! - `small`: many small tenants (3–10 intents, 2–5 examples each) scored on held-out rows of
//!   their intents plus 25% rows of other intents, which no agent fits (so any confident
//!   answer to them is wrong).
//!
//! Prints each regime's accuracy and calibration, then fits the logistic calibrator on all
//! regimes pooled (each weighing the same) and prints its coefficients and tables.

#![expect(clippy::unwrap_used, reason = "a developer tool on a known file")]

#[path = "support/banking77.rs"]
#[expect(
    dead_code,
    reason = "shared with the tests; this tool builds its own agents"
)]
mod banking77;

use std::collections::HashMap;
use std::time::Instant;

use banking77::Row;
use switchyard_core::routing::{
    AgentProfile, Calibration, CalibrationFeatures, LexicalConfig, LexicalIndex,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

struct Record {
    regime: usize,
    features: CalibrationFeatures,
    correct: bool,
}

fn set_config(cfg: &mut LexicalConfig, key: &str, value: &str) {
    let f = || value.parse::<f32>().unwrap();
    let u = || value.parse::<usize>().unwrap();
    match key {
        "word_bigrams" => cfg.word_bigrams = value == "true",
        "stem" => cfg.stem = value == "true",
        "dropout" => cfg.dropout = f(),
        "rivals" => cfg.rivals = u(),
        "char_min" => cfg.char_min = u(),
        "char_max" => cfg.char_max = u(),
        "word_weight" => cfg.word_weight = f(),
        "char_weight" => cfg.char_weight = f(),
        "profile_weight" => cfg.profile_weight = f(),
        "keyword_weight" => cfg.keyword_weight = f(),
        "epochs" => cfg.epochs = u(),
        "learning_rate" => cfg.learning_rate = f(),
        "l2" => cfg.l2 = f(),
        "centroid_scale" => cfg.centroid_scale = f(),
        "budget" => cfg.inline_training_budget = value.parse().unwrap(),
        _ => panic!("unknown setting {key}"),
    }
}

fn agents_from(
    cats: &[String],
    by_cat: &HashMap<&str, Vec<&Row>>,
    pick: impl Fn(&str) -> Vec<String>,
) -> Vec<AgentProfile> {
    let _ = by_cat;
    cats.iter()
        .enumerate()
        .map(|(i, c)| AgentProfile {
            id: banking77::agent_id(i),
            name: c.clone(),
            description: String::new(),
            intents: vec![c.clone()],
            keywords: Vec::new(),
            examples: pick(c),
            priority: 0,
            is_fallback: false,
        })
        .collect()
}

/// Scores rows against an index; `label` None means no agent fits (out of scope).
fn evaluate(
    index: &LexicalIndex,
    cats: &[String],
    rows: &[(&str, Option<&str>)],
    regime: usize,
    out: &mut Vec<Record>,
) -> (usize, usize) {
    let mut correct = 0;
    let mut n = 0;
    for &(text, label) in rows {
        let (best, features) = index.calibration_features(text);
        let ok = match (best, label) {
            (Some(b), Some(l)) => cats[b] == l,
            _ => false,
        };
        if label.is_some() {
            n += 1;
            correct += usize::from(ok);
        }
        out.push(Record {
            regime,
            features,
            correct: ok,
        });
    }
    (correct, n)
}

fn table(records: &[&Record], cal: &Calibration) -> (f64, f64, Vec<(usize, f64, f64)>) {
    let mut buckets = vec![(0usize, 0usize, 0f64); 10];
    let mut ece = 0.0;
    let mut nll = 0.0;
    for r in records {
        let c = cal.confidence(&r.features).clamp(1e-9, 1.0 - 1e-9);
        let b = ((c * 10.0) as usize).min(9);
        buckets[b].0 += 1;
        buckets[b].1 += usize::from(r.correct);
        buckets[b].2 += c;
        nll -= if r.correct { c.ln() } else { (1.0 - c).ln() };
    }
    let n = records.len().max(1) as f64;
    let rows = buckets
        .iter()
        .map(|&(cnt, ok, sum)| {
            let acc = ok as f64 / cnt.max(1) as f64;
            let conf = sum / cnt.max(1) as f64;
            ece += cnt as f64 / n * (acc - conf).abs();
            (cnt, acc, conf)
        })
        .collect();
    (ece, nll / n, rows)
}

/// Fits the logistic calibrator by Newton's method (6 parameters), weighting each regime
/// equally, with a small ridge so sparse regions stay tame.
fn fit(records: &[Record], regimes: usize) -> Calibration {
    const L: usize = Calibration::LEN;
    let mut per = vec![0usize; regimes];
    for r in records {
        per[r.regime] += 1;
    }
    let loss = |theta: &[f64; L]| -> f64 {
        let mut l = 0.0;
        for r in records {
            let w = 1000.0 / per[r.regime] as f64;
            let t: f64 = theta
                .iter()
                .zip(r.features.regressors())
                .map(|(a, b)| a * b)
                .sum();
            // log(1 + e^-t) for positives, log(1 + e^t) for negatives, computed stably.
            let m = if r.correct { -t } else { t };
            l += w * (m.max(0.0) + (-m.abs()).exp().ln_1p());
        }
        l + 0.5e-3 * theta.iter().map(|x| x * x).sum::<f64>()
    };
    let mut theta = Calibration::IDENTITY.theta;
    let mut current = loss(&theta);
    for _ in 0..100 {
        let mut g = [0f64; L];
        let mut h = [[0f64; L]; L];
        for r in records {
            let w = 1000.0 / per[r.regime] as f64;
            let x = r.features.regressors();
            let t: f64 = theta.iter().zip(x).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-t).exp());
            let y = if r.correct { 1.0 } else { 0.0 };
            for i in 0..L {
                g[i] += w * (p - y) * x[i];
                for j in 0..L {
                    h[i][j] += w * p * (1.0 - p) * x[i] * x[j];
                }
            }
        }
        for i in 0..L {
            g[i] += 1e-3 * theta[i];
            h[i][i] += 1e-3;
        }
        let step = solve(h, g);
        // Backtracking: Newton steps overshoot where the regressors have large ranges.
        let mut scale = 1.0;
        let mut improved = false;
        while scale > 1e-6 {
            let mut next = theta;
            for i in 0..L {
                next[i] -= scale * step[i];
            }
            let l = loss(&next);
            if l < current {
                theta = next;
                improved = current - l > 1e-9;
                current = l;
                break;
            }
            scale *= 0.5;
        }
        if !improved {
            break;
        }
    }
    Calibration { theta }
}

#[expect(
    clippy::needless_range_loop,
    reason = "Gaussian elimination reads as the textbook with indices"
)]
fn solve<const L: usize>(mut a: [[f64; L]; L], mut b: [f64; L]) -> [f64; L] {
    for c in 0..L {
        let p = (c..L)
            .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
            .unwrap();
        a.swap(c, p);
        b.swap(c, p);
        for r in 0..L {
            if r != c {
                let f = a[r][c] / a[c][c];
                for k in c..L {
                    a[r][k] -= f * a[c][k];
                }
                b[r] -= f * b[c];
            }
        }
    }
    let mut x = [0f64; L];
    for i in 0..L {
        x[i] = b[i] / a[i][i];
    }
    x
}

fn build(always: bool, agents: Vec<AgentProfile>, cfg: LexicalConfig) -> LexicalIndex {
    if always {
        LexicalIndex::build_trained(agents, cfg)
    } else {
        LexicalIndex::build_with(agents, cfg)
    }
}

fn main() {
    let dir = banking77::default_dir();
    let train = banking77::read(&dir, "train.csv").unwrap();
    let cats = banking77::categories(&dir).unwrap();
    let mut cfg = LexicalConfig::default();
    let mut train_always = true;
    let mut only: Vec<String> = vec!["full".into(), "shot10".into(), "small".into()];
    for arg in std::env::args().skip(1) {
        let (k, v) = arg.split_once('=').unwrap();
        if k == "train" {
            train_always = v == "always";
            if v == "never" {
                cfg.inline_training_budget = 0;
            }
        } else if k == "only" {
            only = v.split(',').map(str::to_owned).collect();
        } else {
            set_config(&mut cfg, k, v);
        }
    }
    let mut by_cat: HashMap<&str, Vec<&Row>> = HashMap::new();
    for r in &train {
        by_cat.entry(r.category.as_str()).or_default().push(r);
    }
    let names = ["full", "shot10", "small"];
    let mut records: Vec<Record> = Vec::new();

    if only.iter().any(|o| o == "full") {
        let t = Instant::now();
        let (mut ok, mut n) = (0, 0);
        let mut build_s = 0f64;
        for fold in 0..5 {
            let pick = |c: &str| {
                by_cat[c]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 5 != fold)
                    .map(|(_, r)| r.text.clone())
                    .collect()
            };
            let tb = Instant::now();
            let index = build(train_always, agents_from(&cats, &by_cat, pick), cfg.clone());
            build_s += tb.elapsed().as_secs_f64();
            let rows: Vec<(&str, Option<&str>)> = cats
                .iter()
                .flat_map(|c| {
                    by_cat[c.as_str()]
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 5 == fold)
                        .map(|(_, r)| (r.text.as_str(), Some(r.category.as_str())))
                })
                .collect();
            let (o, m) = evaluate(&index, &cats, &rows, 0, &mut records);
            ok += o;
            n += m;
        }
        println!(
            "full   acc {:.4} ({ok}/{n}) build {:.0} ms/fold, total {:.1}s",
            ok as f64 / n as f64,
            build_s * 200.0,
            t.elapsed().as_secs_f64()
        );
    }

    if only.iter().any(|o| o == "shot10") {
        let (mut ok, mut n) = (0, 0);
        for draw in 0..5u64 {
            let mut rng = Rng(draw + 1);
            let mut chosen: HashMap<&str, Vec<usize>> = HashMap::new();
            for c in &cats {
                let mut idx: Vec<usize> = (0..by_cat[c.as_str()].len()).collect();
                rng.shuffle(&mut idx);
                idx.truncate(10);
                chosen.insert(c.as_str(), idx);
            }
            let pick = |c: &str| {
                chosen[c]
                    .iter()
                    .map(|&i| by_cat[c][i].text.clone())
                    .collect()
            };
            let index = build(train_always, agents_from(&cats, &by_cat, pick), cfg.clone());
            let mut rows: Vec<(&str, Option<&str>)> = Vec::new();
            for c in &cats {
                for (i, r) in by_cat[c.as_str()].iter().enumerate() {
                    if !chosen[c.as_str()].contains(&i) && rng.below(4) == 0 {
                        rows.push((r.text.as_str(), Some(r.category.as_str())));
                    }
                }
            }
            let (o, m) = evaluate(&index, &cats, &rows, 1, &mut records);
            ok += o;
            n += m;
        }
        println!("shot10 acc {:.4} ({ok}/{n})", ok as f64 / n as f64);
    }

    if only.iter().any(|o| o == "small") {
        let (mut ok, mut n) = (0, 0);
        let mut rng = Rng(77);
        for _ in 0..300 {
            let k = 3 + rng.below(8);
            let shots = [2, 3, 5][rng.below(3)];
            let mut all: Vec<usize> = (0..cats.len()).collect();
            rng.shuffle(&mut all);
            let picked: Vec<String> = all[..k].iter().map(|&i| cats[i].clone()).collect();
            let mut held: Vec<(&str, Option<&str>)> = Vec::new();
            let mut examples: HashMap<&str, Vec<String>> = HashMap::new();
            for c in &picked {
                let rows = &by_cat[c.as_str()];
                let mut idx: Vec<usize> = (0..rows.len()).collect();
                rng.shuffle(&mut idx);
                examples.insert(
                    c.as_str(),
                    idx[..shots].iter().map(|&i| rows[i].text.clone()).collect(),
                );
                for &i in &idx[shots..shots + 3] {
                    held.push((rows[i].text.as_str(), Some(rows[i].category.as_str())));
                }
            }
            for &ci in &all[k..k + k] {
                let rows = &by_cat[cats[ci].as_str()];
                held.push((rows[rng.below(rows.len())].text.as_str(), None));
            }
            let index = build(
                train_always,
                agents_from(&picked, &by_cat, |c| examples[c].clone()),
                cfg.clone(),
            );
            let (o, m) = evaluate(&index, &picked, &held, 2, &mut records);
            ok += o;
            n += m;
        }
        println!("small  acc {:.4} in scope ({ok}/{n})", ok as f64 / n as f64);
    }

    let print_tables = |cal: &Calibration| {
        for (ri, name) in names.iter().enumerate() {
            let rs: Vec<&Record> = records.iter().filter(|r| r.regime == ri).collect();
            if rs.is_empty() {
                continue;
            }
            let (ece, nll, rows) = table(&rs, cal);
            let hi: Vec<&&Record> = rs
                .iter()
                .filter(|r| cal.confidence(&r.features) >= 0.8)
                .collect();
            let hi_acc = hi.iter().filter(|r| r.correct).count() as f64 / hi.len().max(1) as f64;
            println!(
                "  {name:7} ece {ece:.4} nll {nll:.4}  conf>=0.8: {} rows, {:.3} right",
                hi.len(),
                hi_acc
            );
            let line: Vec<String> = rows
                .iter()
                .map(|(c, a, f)| format!("{c}:{a:.2}/{f:.2}"))
                .collect();
            println!("    {}", line.join(" "));
        }
    };
    let configured = if train_always {
        &cfg.calibration
    } else {
        &cfg.calibration_untrained
    };
    println!("calibration as configured: {:?}", configured.theta);
    print_tables(configured);
    let fitted = fit(&records, names.len());
    println!("fitted: {:?}", fitted.theta);
    print_tables(&fitted);
}

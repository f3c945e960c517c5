//! The figures of a routing evaluation, as the `routing-eval` lines print them.

use std::time::Instant;

use switchyard_core::routing::{AgentSet, Method};
use switchyard_server::lab::Destination;
use switchyard_server::offline::Routed;

use super::sets::Row;

/// One routed message.
#[derive(Clone, Copy, Debug)]
pub struct Scored {
    /// The analysis' confidence in its best agent.
    pub confidence: f64,
    /// Its best agent other than the fallback is the right one.
    pub right: bool,
    /// It belongs to an agent of the tenant.
    pub in_scope: bool,
    /// Its best agent is the fallback agent (by the fallback agent's own examples): it
    /// falls back whatever the threshold.
    pub to_fallback: bool,
    /// It fell back with the tenant's own settings.
    pub fell_back: bool,
}

impl Scored {
    /// Whether it falls back when the threshold is `tau`.
    pub fn falls_back_at(&self, tau: f64) -> bool {
        self.to_fallback || self.confidence < tau
    }
}

/// What a run measured.
#[derive(Default, Debug)]
pub struct Figures {
    pub in_scope: usize,
    pub oos: usize,
    pub top1: usize,
    pub routed_right: usize,
    pub false_fallback: usize,
    pub oos_caught: usize,
    /// Messages that went where their label says, by the routing lab's rule
    /// ([`Destination`]): in scope to their agent, out of scope to the fallback.
    pub right: usize,
    /// Every message, in the order routed.
    pub scored: Vec<Scored>,
    pub micros: Vec<f64>,
    /// Messages the full encoder decided.
    pub full: usize,
    /// Per message, µs: the fast analysis, the whole encoder (where it ran), the decision.
    pub stages: [Vec<f64>; 3],
}

impl Figures {
    /// Adds another run's figures to these.
    pub fn add(&mut self, other: Figures) {
        self.in_scope += other.in_scope;
        self.oos += other.oos;
        self.top1 += other.top1;
        self.routed_right += other.routed_right;
        self.false_fallback += other.false_fallback;
        self.oos_caught += other.oos_caught;
        self.right += other.right;
        self.scored.extend(other.scored);
        self.micros.extend(other.micros);
        self.full += other.full;
        for (mine, theirs) in self.stages.iter_mut().zip(other.stages) {
            mine.extend(theirs);
        }
    }

    /// Each stage's median and 99th percentile, µs.
    pub fn stages(&self) -> String {
        let names = ["fast analysis", "whole encoder", "decision"];
        names
            .iter()
            .zip(&self.stages)
            .filter(|(_, times)| !times.is_empty())
            .map(|(name, times)| {
                let mut times = times.clone();
                times.sort_by(f64::total_cmp);
                let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
                format!(
                    "{name} p50={:.1}µs p99={:.1}µs (n={})",
                    p(0.5),
                    p(0.99),
                    times.len()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Accuracy against mean confidence per fifth of the confidence scale: `conf→acc (n)`.
    pub fn reliability(&self) -> String {
        let mut bins = [(0f64, 0f64, 0usize); 5];
        for s in &self.scored {
            let b = ((s.confidence * 5.0) as usize).min(4);
            bins[b].0 += s.confidence;
            bins[b].1 += f64::from(u8::from(s.right && s.in_scope));
            bins[b].2 += 1;
        }
        bins.iter()
            .filter(|b| b.2 > 0)
            .map(|b| format!("{:.2}→{:.2} ({})", b.0 / b.2 as f64, b.1 / b.2 as f64, b.2))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The threshold that lets at most 3% of in-scope messages fall back (those the
    /// fallback agent's examples take fall back at any threshold, and count first).
    pub fn ff3_threshold(&self) -> f64 {
        let mut conf: Vec<f64> = self
            .scored
            .iter()
            .filter(|s| s.in_scope)
            .map(|s| if s.to_fallback { -1.0 } else { s.confidence })
            .collect();
        conf.sort_by(f64::total_cmp);
        conf.get((conf.len() as f64 * 0.03).floor() as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// The figures in percent (and the calibration error, and microseconds).
    pub fn summary(&self) -> Summary {
        let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
        let tau = self.ff3_threshold();
        let acc3 = self
            .scored
            .iter()
            .filter(|s| s.in_scope && !s.falls_back_at(tau) && s.right)
            .count();
        let oos3 = self
            .scored
            .iter()
            .filter(|s| !s.in_scope && s.falls_back_at(tau))
            .count();
        // Expected calibration error over every message (out of scope is never right).
        let mut bins = [(0f64, 0f64, 0usize); 10];
        for s in &self.scored {
            let b = ((s.confidence * 10.0) as usize).min(9);
            bins[b].0 += s.confidence;
            bins[b].1 += f64::from(u8::from(s.right && s.in_scope));
            bins[b].2 += 1;
        }
        let n = self.scored.len().max(1) as f64;
        let ece: f64 = bins
            .iter()
            .filter(|b| b.2 > 0)
            .map(|b| (b.0 - b.1).abs() / n)
            .sum();
        let confident: Vec<_> = self.scored.iter().filter(|s| s.confidence >= 0.8).collect();
        let confident_right = confident.iter().filter(|s| s.right && s.in_scope).count();
        let mut micros = self.micros.clone();
        micros.sort_by(f64::total_cmp);
        let p = |q: f64| {
            micros
                .get(((micros.len().max(1) - 1) as f64 * q) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Summary {
            top1: pct(self.top1, self.in_scope),
            routed_right: pct(self.routed_right, self.in_scope),
            false_fallback: pct(self.false_fallback, self.in_scope),
            oos_recall: pct(self.oos_caught, self.oos),
            acc_at_ff3: pct(acc3, self.in_scope),
            oos_at_ff3: pct(oos3, self.oos),
            ece,
            right_at_conf80: pct(confident_right, confident.len()),
            p50_us: p(0.5),
            p99_us: p(0.99),
            full_encoder: pct(self.full, self.in_scope + self.oos),
            accuracy: pct(self.right, self.in_scope + self.oos),
        }
    }
}

/// A run's figures, as printed.
#[derive(Clone, Copy, Debug)]
pub struct Summary {
    /// In-scope messages whose best agent (fallback ignored) is right, %.
    pub top1: f64,
    /// In-scope messages routed to the right agent with the default thresholds, %.
    pub routed_right: f64,
    /// In-scope messages sent to the fallback, %.
    pub false_fallback: f64,
    /// Out-of-scope messages sent to the fallback, %.
    pub oos_recall: f64,
    /// With the threshold that lets 3% of in-scope messages fall back: routed right, %.
    pub acc_at_ff3: f64,
    /// With that threshold: out-of-scope messages caught, %.
    pub oos_at_ff3: f64,
    /// Expected calibration error (ten bins).
    pub ece: f64,
    /// Messages with confidence ≥ 0.8 that were right, %.
    pub right_at_conf80: f64,
    /// Median time to route a message, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Messages the whole encoder analysed, %.
    pub full_encoder: f64,
    /// Every message, in scope or not, that went where its label says, %: what the routing
    /// lab (`POST /v1/routing/evaluate`) calls accuracy.
    pub accuracy: f64,
}

impl Summary {
    /// The `routing-eval` line.
    pub fn line(&self, name: &str, agents: usize, shots: &str) -> String {
        format!(
            "routing-eval set={name} agents={agents} shots={shots} top1={:.1} routed_right={:.1} false_fallback={:.1} oos_recall={:.1} acc_at_ff3={:.1} oos_at_ff3={:.1} ece={:.3} p50_us={:.0} p99_us={:.0} full_encoder={:.1} right_at_conf80={:.1} accuracy={:.2}",
            self.top1,
            self.routed_right,
            self.false_fallback,
            self.oos_recall,
            self.acc_at_ff3,
            self.oos_at_ff3,
            self.ece,
            self.p50_us,
            self.p99_us,
            self.full_encoder,
            self.right_at_conf80,
            self.accuracy,
        )
    }
}

/// Routes every test message with `route` (the analysis, the decision, whether the whole
/// encoder ran), timing each: a message whose label is in `held_out` belongs to no agent of
/// the tenant and should fall back.
pub fn evaluate(
    agents: &AgentSet,
    test: &[Row],
    held_out: &[String],
    mut route: impl FnMut(&str) -> Routed,
) -> Figures {
    let mut f = Figures::default();
    for row in test {
        let in_scope = !held_out.contains(&row.label);
        let t = Instant::now();
        let routed = route(&row.text);
        f.micros.push(t.elapsed().as_secs_f64() * 1e6);
        let top = routed
            .analysis
            .candidates
            .iter()
            .filter_map(|c| agents.get(c.agent_id))
            .find(|a| !a.is_fallback)
            .map(|a| a.name.as_str());
        let right = top == Some(row.label.as_str());
        let decision = routed.decision.as_ref().ok();
        let expected = if in_scope {
            Destination::named(&row.label, agents)
        } else {
            Some(Destination::Fallback)
        };
        f.right +=
            usize::from(decision.is_some_and(|d| expected == Some(Destination::of(d, agents))));
        let fell_back = decision.is_none_or(|d| d.method == Method::Fallback);
        let to_fallback = routed
            .analysis
            .candidates
            .first()
            .and_then(|c| agents.get(c.agent_id))
            .is_some_and(|a| a.is_fallback);
        f.scored.push(Scored {
            confidence: routed.analysis.intent.confidence,
            right,
            in_scope,
            to_fallback,
            fell_back,
        });
        f.full += usize::from(routed.full);
        let [fast_time, encoder_time, decision_time] = routed.stages;
        f.stages[0].push(fast_time.as_secs_f64() * 1e6);
        if routed.full {
            f.stages[1].push(encoder_time.as_secs_f64() * 1e6);
        }
        f.stages[2].push(decision_time.as_secs_f64() * 1e6);
        if in_scope {
            f.in_scope += 1;
            f.top1 += usize::from(right);
            f.routed_right +=
                usize::from(!fell_back && decision.is_some_and(|d| d.agent_name == row.label));
            f.false_fallback += usize::from(fell_back);
        } else {
            f.oos += 1;
            f.oos_caught += usize::from(fell_back);
        }
    }
    f
}

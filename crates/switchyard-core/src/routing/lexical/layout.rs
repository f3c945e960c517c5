//! The weight table: a slot per (feature, agent) where the agent's own texts — or texts it
//! is a rival on — have the feature (CSR, agents ascending per feature), or, when smaller, a
//! dense features × agents matrix; and the class centroids every model starts from.

use super::LexicalIndex;
use super::features::Doc;

/// Per agent, the other agents' training texts it is a rival on (CSR: agent `a`'s texts are
/// `texts[offsets[a]..offsets[a + 1]]`, indexes into the training texts).
#[derive(Default)]
pub(super) struct Rivals {
    pub offsets: Vec<u32>,
    pub texts: Vec<u32>,
}

impl Rivals {
    pub(super) fn of(&self, agent: usize) -> &[u32] {
        match (self.offsets.get(agent), self.offsets.get(agent + 1)) {
            (Some(&a), Some(&b)) => &self.texts[a as usize..b as usize],
            _ => &[],
        }
    }
}

impl LexicalIndex {
    /// Lays out the weight table and fills it with every agent's (scaled) mean training
    /// vector, which alone is a nearest-centroid classifier and lets few SGD passes suffice.
    ///
    /// Each feature gets one slot per agent whose training texts contain it, and one per
    /// agent that is a rival (see [`rivals`](Self::rivals)) on a text that contains it.
    /// Restricting the model to that support keeps the index's size linear in the training
    /// text rather than features × agents, which matters at 1,000 agents.
    pub(super) fn layout(&mut self, docs: &[Doc], rivals: &Rivals) {
        let v = self.feature_count();
        let k = self.set.len();
        // Texts come grouped by agent in ascending order: agent `a`'s are `own[a]..own[a + 1]`.
        let mut own = vec![0u32; k + 1];
        let mut mass = vec![0f32; k];
        for d in docs {
            own[d.agent as usize + 1] += 1;
            mass[d.agent as usize] += d.weight;
        }
        for a in 0..k {
            own[a + 1] += own[a];
        }
        let texts_of = |a: usize| (own[a]..own[a + 1]).chain(rivals.of(a).iter().copied());
        let mut last = vec![u32::MAX; v];
        let mut counts = vec![0u32; v];
        for a in 0..k {
            for t in texts_of(a) {
                for &(f, _) in &docs[t as usize].vector {
                    if last[f as usize] != a as u32 {
                        last[f as usize] = a as u32;
                        counts[f as usize] += 1;
                    }
                }
            }
        }
        let mut offsets = Vec::with_capacity(v + 1);
        let mut acc = 0u32;
        for c in &counts {
            offsets.push(acc);
            acc += c;
        }
        offsets.push(acc);
        // `counts` becomes each feature's next free slot, then its slot for the agent at hand.
        counts.copy_from_slice(&offsets[..v]);
        let mut fill = counts;
        let mut slot_of = vec![0u32; v];
        let mut agents = vec![0u32; acc as usize];
        let mut weights = vec![0f32; acc as usize];
        last.fill(u32::MAX);
        // Agents in ascending order, so each feature's agents end up sorted, which `slot`
        // relies on. A rival's slots start at 0: only the agent's own texts make its centroid.
        for (a, &agent_mass) in mass.iter().enumerate() {
            for t in texts_of(a) {
                let d = &docs[t as usize];
                let scale = if d.agent as usize == a {
                    self.config.centroid_scale * d.weight / agent_mass
                } else {
                    0.0
                };
                for &(f, x) in &d.vector {
                    let f = f as usize;
                    if last[f] != a as u32 {
                        last[f] = a as u32;
                        slot_of[f] = fill[f];
                        agents[fill[f] as usize] = a as u32;
                        fill[f] += 1;
                    }
                    weights[slot_of[f] as usize] += scale * x;
                }
            }
        }
        self.offsets = offsets;
        self.weights = weights;
        self.agents = agents;
    }

    /// Switches to the dense layout if it takes less memory than the sparse one.
    pub(super) fn densify(&mut self) {
        let (v, k) = (self.feature_count(), self.set.len());
        // In four-byte words: dense is a weight per feature and agent; sparse is an offset
        // per feature and an agent and a weight per slot.
        if v.saturating_mul(k) > v + 1 + 2 * self.weights.len() {
            return;
        }
        let mut dense = vec![0f32; v * k];
        for f in 0..v {
            for s in self.range(f as u32) {
                dense[f * k + self.agents[s] as usize] = self.weights[s];
            }
        }
        self.weights = dense;
        self.offsets = Vec::new();
        self.agents = Vec::new();
        self.dense = true;
    }

    /// Feature `f`'s slots in the sparse layout (training's; not for a dense index).
    pub(super) fn range(&self, f: u32) -> std::ops::Range<usize> {
        debug_assert!(!self.dense, "the dense layout has no slots");
        self.offsets[f as usize] as usize..self.offsets[f as usize + 1] as usize
    }

    /// Adds a text's weighted features to the scores of the agents with weight on them;
    /// an agent first touched here starts from 0 and is recorded in `touched` (and `seen`,
    /// which the caller clears with `touched`).
    pub(super) fn accumulate(
        &self,
        vector: &[(u32, f32)],
        scores: &mut [f32],
        seen: &mut [bool],
        touched: &mut Vec<u32>,
    ) {
        for &(f, x) in vector {
            for s in self.range(f) {
                let a = self.agents[s] as usize;
                if !seen[a] {
                    seen[a] = true;
                    touched.push(a as u32);
                    scores[a] = 0.0;
                }
                scores[a] += x * self.weights[s];
            }
        }
    }

    /// The slot of `agent`'s weight on feature `f`, in the sparse layout (training's).
    pub(super) fn slot(&self, f: u32, agent: u32) -> Option<usize> {
        let r = self.range(f);
        let lo = r.start;
        self.agents[r].binary_search(&agent).ok().map(|i| lo + i)
    }

    /// `agent`'s weight on feature `f`, if it has one (in the dense layout: if it is not 0).
    pub(super) fn weight(&self, f: u32, agent: u32) -> Option<f32> {
        if self.dense {
            let w = self.weights_of(f)[agent as usize];
            (w != 0.0).then_some(w)
        } else {
            self.slot(f, agent).map(|s| self.weights[s])
        }
    }

    /// The weights on feature `f` (in the dense layout, also the zeros of agents without).
    pub(super) fn weights_of(&self, f: u32) -> &[f32] {
        if self.dense {
            let k = self.set.len();
            &self.weights[f as usize * k..(f as usize + 1) * k]
        } else {
            &self.weights[self.range(f)]
        }
    }
}

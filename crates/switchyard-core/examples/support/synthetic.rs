//! Synthetic tenants for routing benchmarks: agents with a topic of made-up words, a few
//! keywords and examples that mix topic words with everyday filler, as real tenants' do.

use switchyard_core::AgentId;
use switchyard_core::routing::AgentProfile;
use uuid::Uuid;

/// A small deterministic generator (splitmix64), so every run benchmarks the same tenant.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const FILLER: &[&str] = &[
    "i", "my", "the", "a", "is", "can", "you", "please", "how", "do", "to", "with", "for", "why",
    "what", "it", "not", "still", "need", "help", "there", "was", "again", "me",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "to", "sa", "vel", "du", "pra", "ne", "ti", "gor", "ba", "shi", "lun",
    "ce", "mar", "po", "fi", "que", "dra", "zo", "ul", "en",
];

/// A made-up word from a number.
fn word(mut n: usize) -> String {
    let mut w = String::new();
    for _ in 0..3 {
        w.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
    }
    w
}

/// `n` agents, each with 4 keywords, `examples` example messages and a one-line
/// description; the last one is the fallback agent.
pub fn agents(n: usize, examples: usize, seed: u64) -> Vec<AgentProfile> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let topic: Vec<String> = (0..6).map(|j| word(i * 7 + j * 3 + 11)).collect();
            let sentence = |rng: &mut Rng| -> String {
                let mut words: Vec<String> = Vec::new();
                for _ in 0..(4 + rng.below(6)) {
                    words.push(FILLER[rng.below(FILLER.len())].to_owned());
                }
                for _ in 0..(1 + rng.below(3)) {
                    let at = rng.below(words.len() + 1);
                    words.insert(at, topic[rng.below(topic.len())].clone());
                }
                words.join(" ")
            };
            AgentProfile {
                id: AgentId::from_uuid(Uuid::from_u128(
                    0x5157_0000_0000_7000_8000_0000_0000_0000 | i as u128,
                )),
                name: format!("agent_{i}"),
                description: format!("Handles {} and {}", topic[0], topic[1]),
                intents: vec![format!("intent_{i}")],
                keywords: topic[..4].to_vec(),
                examples: (0..examples).map(|_| sentence(&mut rng)).collect(),
                priority: 0,
                is_fallback: i + 1 == n,
            }
        })
        .collect()
}

/// `count` messages about the agents' topics, made like their examples.
pub fn messages(agents: &[AgentProfile], count: usize, seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    (0..count)
        .map(|_| {
            let a = &agents[rng.below(agents.len())];
            let mut words: Vec<String> = (0..(5 + rng.below(8)))
                .map(|_| FILLER[rng.below(FILLER.len())].to_owned())
                .collect();
            let at = rng.below(words.len());
            words.insert(at, a.keywords[rng.below(a.keywords.len())].clone());
            words.join(" ")
        })
        .collect()
}

//! The public intent data sets of `data/` (BANKING77, HWU64) as routing tenants, and the
//! whole encoder's embeddings of their texts kept on disk between runs.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use switchyard_core::AgentId;
use switchyard_core::routing::{AgentProfile, TextEmbedder};
use uuid::Uuid;

/// One labelled message.
#[derive(Clone, Debug)]
pub struct Row {
    /// The message.
    pub text: String,
    /// The agent it belongs to.
    pub label: String,
    /// The finer intent, where the agent serves several (HWU64's scenarios); else the label.
    pub intent: String,
}

/// The repository's data folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

/// Which data set, and which column names the agents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// BANKING77: one agent per intent (77).
    Banking77,
    /// HWU64: one agent per scenario (18).
    Hwu64Scenarios,
    /// HWU64: one agent per intent (64).
    Hwu64Intents,
}

impl Source {
    /// The set's short name.
    pub fn name(self) -> &'static str {
        match self {
            Source::Banking77 => "banking77",
            Source::Hwu64Scenarios => "hwu64-scenarios",
            Source::Hwu64Intents => "hwu64-intents",
        }
    }

    /// Reads `train.csv` or `test.csv`.
    pub fn read(self, file: &str) -> Result<Vec<Row>, Box<dyn std::error::Error>> {
        let dir = data_dir().join(match self {
            Source::Banking77 => "banking77",
            _ => "hwu64",
        });
        let mut reader = csv::Reader::from_path(dir.join(file))?;
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record?;
            let field = |i: usize| record.get(i).map(str::to_owned).ok_or("a short row");
            let text = field(0)?;
            let (label, intent) = match self {
                Source::Banking77 => (field(1)?, field(1)?),
                Source::Hwu64Scenarios => (field(1)?, field(2)?),
                Source::Hwu64Intents => (field(2)?, field(2)?),
            };
            rows.push(Row {
                text,
                label,
                intent,
            });
        }
        Ok(rows)
    }
}

/// The six evaluation sets: each source with 10 rows per intent, and with all.
pub const SETS: [(Source, Option<usize>); 6] = [
    (Source::Banking77, Some(10)),
    (Source::Banking77, None),
    (Source::Hwu64Scenarios, Some(10)),
    (Source::Hwu64Scenarios, None),
    (Source::Hwu64Intents, Some(10)),
    (Source::Hwu64Intents, None),
];

/// A set's name: `banking77-10`, `hwu64-intents-all`, …
pub fn set_name(source: Source, shots: Option<usize>) -> String {
    format!(
        "{}-{}",
        source.name(),
        shots.map_or("all".to_owned(), |s| s.to_string())
    )
}

/// The sets whose name contains `only` (every set without it), each with its name.
pub fn selected(only: Option<&str>) -> impl Iterator<Item = (Source, Option<usize>, String)> {
    SETS.into_iter()
        .map(|(source, shots)| (source, shots, set_name(source, shots)))
        .filter(move |(_, _, name)| only.is_none_or(|o| name.contains(o)))
}

/// The labels of `rows`, sorted.
pub fn labels(rows: &[Row]) -> Vec<String> {
    let mut labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    labels.sort();
    labels.dedup();
    labels
}

/// A stable id per label position.
pub fn agent_id(i: usize) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(
        0x5157_0000_0000_7000_8000_0000_0000_0000 | i as u128,
    ))
}

/// The fallback agent's id.
pub fn fallback_id() -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(0x5157_0000_0000_7000_8000_0000_0000_ffff))
}

/// Up to `shots` training rows of each intent of `labels`, in the rows' order.
pub fn examples(labels: &[String], train: &[Row], shots: usize) -> Vec<String> {
    let mut per_intent: HashMap<&str, usize> = HashMap::new();
    train
        .iter()
        .filter(|r| labels.contains(&r.label))
        .filter(|r| {
            let n = per_intent.entry(&r.intent).or_default();
            *n += 1;
            *n <= shots
        })
        .map(|r| r.text.clone())
        .collect()
}

/// One agent per label, with up to `shots` training rows of each of its intents (in the
/// rows' order) as examples (`None`: all), and its intents' names; then a generic fallback
/// agent.
pub fn tenant(labels: &[String], train: &[Row], shots: Option<usize>) -> Vec<AgentProfile> {
    let mut agents: Vec<AgentProfile> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut intents: Vec<String> = Vec::new();
            for r in train.iter().filter(|r| &r.label == label) {
                if !intents.contains(&r.intent) {
                    intents.push(r.intent.clone());
                }
            }
            AgentProfile {
                id: agent_id(i),
                name: label.clone(),
                description: String::new(),
                intents,
                keywords: Vec::new(),
                examples: examples(
                    std::slice::from_ref(label),
                    train,
                    shots.unwrap_or(usize::MAX),
                ),
                priority: 0,
                is_fallback: false,
            }
        })
        .collect();
    // `general`, unless a label is already called so (HWU64 has a `general` scenario): two
    // agents of one name would make a message of that label count as right where the
    // fallback took it, and the routing lab's tenant (`routing-eval --lab-out`) must be
    // registrable as it is here, where names are unique.
    let name = if labels.iter().any(|l| l == "general") {
        "fallback"
    } else {
        "general"
    };
    agents.push(AgentProfile {
        id: fallback_id(),
        name: name.to_owned(),
        description: "General questions; answers when nothing else fits".to_owned(),
        intents: vec!["general".to_owned()],
        keywords: Vec::new(),
        examples: Vec::new(),
        priority: 0,
        is_fallback: true,
    });
    agents
}

fn text_key(text: &str) -> u64 {
    // FNV-1a: stable across runs and builds.
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Texts' embeddings of one kind, kept in a file between runs (or in memory only).
pub struct EmbeddingCache {
    path: Option<PathBuf>,
    dims: usize,
    map: Mutex<HashMap<u64, Arc<[f32]>>>,
    inner: Arc<dyn TextEmbedder>,
    dirty: Mutex<bool>,
}

impl EmbeddingCache {
    /// The cache in `path` (read if it exists), computing what is missing with `inner`.
    pub fn open(path: PathBuf, inner: Arc<dyn TextEmbedder>) -> Self {
        let dims = inner.dims();
        let mut map = HashMap::new();
        if let Ok(mut f) = std::fs::File::open(&path) {
            let mut bytes = Vec::new();
            if f.read_to_end(&mut bytes).is_ok() {
                let record = 8 + dims * 4;
                for chunk in bytes.chunks_exact(record) {
                    let key = u64::from_le_bytes(chunk[..8].try_into().unwrap_or_default());
                    let v: Vec<f32> = chunk[8..]
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect();
                    map.insert(key, Arc::from(v));
                }
            }
        }
        Self {
            path: Some(path),
            map: Mutex::new(map),
            ..Self::without_file(inner)
        }
    }

    /// A cache kept in memory only: [`fill`](Self::fill)'s batches on every core, nothing
    /// saved.
    pub fn without_file(inner: Arc<dyn TextEmbedder>) -> Self {
        Self {
            path: None,
            dims: inner.dims(),
            map: Mutex::new(HashMap::new()),
            inner,
            dirty: Mutex::new(false),
        }
    }

    /// Computes (in batches) and keeps the embeddings of `texts` that are missing.
    pub fn fill(&self, texts: &[&str]) {
        let missing: Vec<&str> = {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = std::collections::HashSet::new();
            texts
                .iter()
                .copied()
                .filter(|t| !map.contains_key(&text_key(t)) && seen.insert(text_key(t)))
                .collect()
        };
        // Batches of 512 shared out to one thread per core.
        let batches: Vec<&[&str]> = missing.chunks(512).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(batch) = batches.get(n) else { break };
                        let vectors = self.inner.embed(batch);
                        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
                        for (t, v) in batch.iter().zip(vectors) {
                            map.insert(text_key(t), Arc::from(v));
                        }
                        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = true;
                        if n % 8 == 7 {
                            eprintln!("  embedded {} of {}", (n + 1) * 512, missing.len());
                        }
                    }
                });
            }
        });
    }

    /// Writes the cache back to its file if it grew.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !*self.dirty.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = path.with_extension("tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for (k, v) in map.iter() {
            f.write_all(&k.to_le_bytes())?;
            for x in v.iter() {
                f.write_all(&x.to_le_bytes())?;
            }
        }
        f.flush()?;
        drop(f);
        std::fs::rename(tmp, path)
    }
}

impl TextEmbedder for EmbeddingCache {
    fn dims(&self) -> usize {
        self.dims
    }

    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.fill(texts);
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        texts
            .iter()
            .map(|t| {
                map.get(&text_key(t))
                    .map_or_else(|| vec![0.0; self.dims], |v| v.to_vec())
            })
            .collect()
    }
}

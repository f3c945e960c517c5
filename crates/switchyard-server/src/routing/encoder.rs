//! The in-process sentence encoder as the server runs it: loaded once at start from
//! `SWITCHYARD_ENCODER_DIR`, its static token table read from (or distilled into) the cache
//! directory, and the whole model's embeddings of texts kept in a bounded cache, so that a
//! message or an agent's example asked about again costs nothing. The whole model runs on
//! blocking threads, at most one per core at a time.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use switchyard_core::routing::{Encoders, TextEmbedder};
use switchyard_encoder::{Encoder, StaticTable};
use tokio::sync::Semaphore;

use crate::config::{Config, ConfigError};

/// The loaded encoder and its caches.
pub struct InProcessEncoder {
    encoder: Arc<Encoder>,
    table: Arc<StaticTable>,
    cache: Arc<TextCache>,
    /// One permit per core: the whole model's runs at once.
    runs: Arc<Semaphore>,
}

impl std::fmt::Debug for InProcessEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessEncoder")
            .field("dir", &self.encoder.dir())
            .field("dims", &self.encoder.dims())
            .finish_non_exhaustive()
    }
}

/// Where caches derived from the encoder go when no directory is configured.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("switchyard"))
}

impl InProcessEncoder {
    /// The encoder the configuration names, loaded and checked; `None` when none is set.
    /// Anything wrong stops the start with one line naming the setting and the file.
    pub fn load(config: &Config) -> Result<Option<Arc<Self>>, ConfigError> {
        let Some(dir) = &config.encoder_dir else {
            return Ok(None);
        };
        let fail = |e: switchyard_encoder::EncoderError| {
            ConfigError(format!("SWITCHYARD_ENCODER_DIR={}: {e}", dir.display()))
        };
        let encoder = Encoder::load(dir).map_err(fail)?;
        let cache_dir = config.encoder_cache_dir.clone().or_else(default_cache_dir);
        let table = StaticTable::load_or_distill(&encoder, cache_dir.as_deref()).map_err(fail)?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Some(Arc::new(Self {
            encoder: Arc::new(encoder),
            table: Arc::new(table),
            cache: Arc::new(TextCache::new(config.encoder_cache_entries)),
            runs: Arc::new(Semaphore::new(cores)),
        })))
    }

    /// What the routing index embeds with: the static table for every message, the whole
    /// model (through the cache) for agents' examples and uncertain messages.
    pub fn encoders(self: &Arc<Self>) -> Encoders {
        Encoders {
            fast: Arc::new(Fast(self.clone())),
            full: Arc::new(Full(self.clone())),
        }
    }

    /// The model directory and the embeddings' length, for the start-up line.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} dimensions, static table {} MiB)",
            self.encoder.dir().display(),
            self.encoder.dims(),
            self.table.heap_size_bytes() / (1024 * 1024)
        )
    }

    /// What identifies the model (a digest of its weights and tokenizer), for caches of its
    /// embeddings kept elsewhere.
    pub fn fingerprint(&self) -> &str {
        self.encoder.fingerprint()
    }

    /// The whole model's embedding of a message, through the cache, on this thread.
    pub fn embed_now(&self, message: &str) -> Vec<f32> {
        self.full_blocking(&[message]).pop().unwrap_or_default()
    }

    /// The whole model's embedding of a message: from the cache, or computed on a blocking
    /// thread (at most one per core at a time). Also whether it was computed.
    pub async fn embed_message(self: &Arc<Self>, message: &str) -> Option<(Vec<f32>, bool)> {
        if let Some(v) = self.cache.get(message) {
            return Some((v, false));
        }
        let _permit = self.runs.clone().acquire_owned().await.ok()?;
        let this = self.clone();
        let text = message.to_owned();
        let v = tokio::task::spawn_blocking(move || this.full_blocking(&[text.as_str()]).pop())
            .await
            .ok()
            .flatten()?;
        Some((v, true))
    }

    /// The whole model's embeddings, through the cache (blocking).
    fn full_blocking(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let mut out: Vec<Option<Vec<f32>>> = texts.iter().map(|t| self.cache.get(t)).collect();
        let missing: Vec<&str> = texts
            .iter()
            .zip(&out)
            .filter(|(_, v)| v.is_none())
            .map(|(t, _)| *t)
            .collect();
        if !missing.is_empty() {
            let computed = self.encoder.embed(&missing).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the encoder failed; those texts count as unknown");
                vec![vec![0.0; self.encoder.dims()]; missing.len()]
            });
            crate::metrics::encoder_runs(computed.len());
            let mut computed = missing.iter().zip(computed);
            for slot in out.iter_mut().filter(|v| v.is_none()) {
                if let Some((text, v)) = computed.next() {
                    self.cache.put(text, &v);
                    *slot = Some(v);
                }
            }
        }
        out.into_iter()
            .map(|v| v.unwrap_or_else(|| vec![0.0; self.encoder.dims()]))
            .collect()
    }
}

struct Fast(Arc<InProcessEncoder>);

impl TextEmbedder for Fast {
    fn dims(&self) -> usize {
        self.0.table.dims()
    }

    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        texts
            .iter()
            .map(|t| {
                self.0
                    .table
                    .embed(&self.0.encoder, t)
                    .unwrap_or_else(|_| vec![0.0; self.0.table.dims()])
            })
            .collect()
    }
}

struct Full(Arc<InProcessEncoder>);

impl TextEmbedder for Full {
    fn dims(&self) -> usize {
        self.0.encoder.dims()
    }

    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        self.0.full_blocking(texts)
    }
}

/// A cached embedding and the tick it was last used at.
type Entry = (Arc<[f32]>, u64);

/// Whole-model embeddings of texts, bounded by count: when full, the older half goes.
struct TextCache {
    entries: Mutex<HashMap<u64, Entry>>,
    clock: std::sync::atomic::AtomicU64,
    capacity: usize,
}

fn key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl TextCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            clock: std::sync::atomic::AtomicU64::new(0),
            capacity,
        }
    }

    fn get(&self, text: &str) -> Option<Vec<f32>> {
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (v, used) = entries.get_mut(&key(text))?;
        *used = tick;
        Some(v.to_vec())
    }

    fn put(&self, text: &str, v: &[f32]) {
        if self.capacity == 0 {
            return;
        }
        let tick = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            let mut ticks: Vec<u64> = entries.values().map(|(_, t)| *t).collect();
            let (_, median, _) = ticks.select_nth_unstable(entries.len() / 2);
            let median = *median;
            entries.retain(|_, (_, t)| *t > median);
        }
        entries.insert(key(text), (Arc::from(v), tick));
    }
}

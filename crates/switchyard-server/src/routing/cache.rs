//! Each tenant's routing index, cached in memory and rebuilt when the tenant's agents
//! change.
//!
//! Staleness is checked on every request for free: authentication loads the tenant row,
//! which carries `agents_version`, bumped in the same transaction as any change to the
//! tenant's agents — so every replica sharing the database sees a change on its next
//! request of that tenant, without polling or notifications. The cache holds at most a
//! configured number of tenants and a configured amount of memory (as the indexes and
//! agents count it), and drops the least recently used beyond either.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use switchyard_core::model::Agent;
use switchyard_core::routing::{AgentProfile, Encoders, RoutingConfig, RoutingIndex};
use switchyard_core::{AgentId, TenantId};
use switchyard_store::{Store, TenantScope};

use super::RoutingError;

/// How a tenant's index is built: its routing settings, and the encoder if it uses one.
#[derive(Clone, Debug)]
pub struct IndexBuild {
    /// The settings.
    pub config: RoutingConfig,
    /// The encoder's two heads, unless the tenant routes lexically only.
    pub encoders: Option<Encoders>,
}

impl IndexBuild {
    /// What tells two builds apart: a cached index built otherwise is rebuilt.
    fn key(&self) -> (u64, bool) {
        (
            self.config.target_false_fallback.to_bits()
                ^ self.config.full_band.to_bits().rotate_left(17),
            self.encoders.is_some(),
        )
    }
}

/// A tenant's routable agents and the index built from them.
#[derive(Debug)]
pub struct TenantRouting {
    /// The `agents_version` it was built from.
    pub version: i64,
    /// What the index was built with.
    build: (u64, bool),
    /// The index.
    pub index: Arc<RoutingIndex>,
    /// The agents, with their configs, by id. Their texts (description, intents, keywords,
    /// examples) are empty here: the index holds them, see [`profile`](Self::profile).
    pub agents: HashMap<AgentId, Agent>,
}

impl TenantRouting {
    /// Routing over `agents` (the routable ones, in id order), its index built as `build`
    /// says: what is cheap now (see [`RoutingIndex::build`]).
    pub fn build(version: i64, mut agents: Vec<Agent>, build: &IndexBuild) -> Self {
        let profiles: Vec<AgentProfile> = agents.iter_mut().map(AgentProfile::take_from).collect();
        let index = RoutingIndex::build(profiles, build.config.clone(), build.encoders.clone());
        Self {
            version,
            build: build.key(),
            index: Arc::new(index),
            agents: agents.into_iter().map(|a| (a.id, a)).collect(),
        }
    }

    /// [`build`](Self::build), on a blocking thread for a tenant of many agents.
    pub async fn build_off_thread(
        version: i64,
        agents: Vec<Agent>,
        build: &IndexBuild,
    ) -> Result<Self, RoutingError> {
        if agents.len() <= BUILD_INLINE_AGENTS {
            return Ok(Self::build(version, agents, build));
        }
        let build = build.clone();
        tokio::task::spawn_blocking(move || Self::build(version, agents, &build))
            .await
            .map_err(|e| RoutingError::Internal(format!("building a routing index: {e}")))
    }

    /// [`completed`](Self::completed), waiting for any other completion to finish first
    /// (they run one at a time, so that many do not take every core at once).
    pub fn completed_in_turn(&self) -> Self {
        let _one_at_a_time = COMPLETING.lock().unwrap_or_else(|p| p.into_inner());
        self.completed()
    }

    /// The same routing with its index completed (trained, calibrated): seconds for a large
    /// tenant, so off the async threads.
    pub fn completed(&self) -> Self {
        Self {
            version: self.version,
            build: self.build,
            index: Arc::new(self.index.completed()),
            agents: self.agents.clone(),
        }
    }

    /// An agent's routing profile, with its texts.
    pub fn profile(&self, id: AgentId) -> Option<&AgentProfile> {
        self.index.agent_set().get(id)
    }

    /// The memory it holds, roughly: the index's (with the agents' texts) and the agents'
    /// heap.
    pub fn heap_size_bytes(&self) -> usize {
        let agents: usize = self
            .agents
            .values()
            .map(|a| {
                std::mem::size_of::<(AgentId, Agent)>() + a.name.len() + a.config.to_string().len()
            })
            .sum();
        self.index.heap_size_bytes()
            + std::mem::size_of::<RoutingIndex>()
            + agents
            + std::mem::size_of::<Self>()
    }
}

struct Entry {
    routing: Arc<TenantRouting>,
    bytes: usize,
    last_used: u64,
    training: bool,
}

#[derive(Default)]
struct Entries {
    map: HashMap<TenantId, Entry>,
    bytes: usize,
}

impl Entries {
    fn put(&mut self, tenant: TenantId, entry: Entry) {
        self.bytes += entry.bytes;
        if let Some(old) = self.map.insert(tenant, entry) {
            self.bytes -= old.bytes;
        }
    }

    /// Drops the least recently used entries, other than `keep`, until at most `capacity`
    /// are left and they hold at most `max_bytes`.
    fn evict(&mut self, capacity: usize, max_bytes: usize, keep: TenantId) {
        while self.map.len() > capacity || (self.bytes > max_bytes && self.map.len() > 1) {
            let Some(oldest) = self
                .map
                .iter()
                .filter(|(t, _)| **t != keep)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(t, _)| *t)
            else {
                return;
            };
            if let Some(gone) = self.map.remove(&oldest) {
                self.bytes -= gone.bytes;
            }
        }
        crate::metrics::routing_cache(self.map.len(), self.bytes);
    }
}

/// The cache.
pub struct RoutingCache {
    entries: Mutex<Entries>,
    capacity: usize,
    max_bytes: usize,
    clock: AtomicU64,
}

impl std::fmt::Debug for RoutingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingCache")
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Indexes at most this many agents' worth of training inline; bigger ones are built
/// off the async threads.
const BUILD_INLINE_AGENTS: usize = 200;

/// Held by the index completion running now.
static COMPLETING: Mutex<()> = Mutex::new(());

impl RoutingCache {
    /// An empty cache holding at most `capacity` tenants and `max_bytes` of indexes and
    /// agents (the most recently used tenant stays even if it alone is bigger).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            capacity: capacity.max(1),
            max_bytes,
            clock: AtomicU64::new(0),
        }
    }

    /// How many tenants are cached.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tenant's routing at `version` (from the tenant row loaded by authentication),
    /// built from the store if missing or stale (or built otherwise than `build` says); and
    /// whether it was read from the store just now.
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        scope: &TenantScope,
        version: i64,
        build: &IndexBuild,
    ) -> Result<(Arc<TenantRouting>, bool), RoutingError> {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        let key = build.key();
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = entries.map.get_mut(&scope.tenant_id())
                && entry.routing.version >= version
                && entry.routing.build == key
            {
                entry.last_used = tick;
                return Ok((entry.routing.clone(), false));
            }
        }
        let (version, agents) = store.routable_agents(scope).await?;
        let routing = Arc::new(TenantRouting::build_off_thread(version, agents, build).await?);
        self.insert(scope.tenant_id(), routing.clone(), tick);
        Ok((routing, true))
    }

    fn insert(&self, tenant: TenantId, routing: Arc<TenantRouting>, tick: u64) {
        let needs_training = !routing.index.is_complete();
        let bytes = routing.heap_size_bytes();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries
            .map
            .get(&tenant)
            .is_some_and(|e| e.routing.version > routing.version)
        {
            return;
        }
        entries.put(
            tenant,
            Entry {
                routing,
                bytes,
                last_used: tick,
                training: needs_training,
            },
        );
        entries.evict(self.capacity, self.max_bytes, tenant);
    }

    /// Starts completing the cached index of `tenant` off the request path if it is not
    /// complete yet (training, the encoder's full head, the tenant's calibration); the
    /// completed one replaces it if the agents have not changed meanwhile. Completions run
    /// one at a time, so that a restart's many tenants do not take every core at once.
    pub fn train_in_background(self: &Arc<Self>, tenant: TenantId) {
        let routing = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match entries.map.get_mut(&tenant) {
                Some(entry) if entry.training && !entry.routing.index.is_complete() => {
                    // Claimed: nobody else starts the same training.
                    entry.training = false;
                    entry.routing.clone()
                }
                _ => return,
            }
        };
        let cache = self.clone();
        tokio::task::spawn_blocking(move || {
            let _one_at_a_time = COMPLETING.lock().unwrap_or_else(|p| p.into_inner());
            let trained = Arc::new(routing.completed());
            let bytes = trained.heap_size_bytes();
            let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = entries.map.get_mut(&tenant) else {
                return;
            };
            if entry.routing.version == trained.version && entry.routing.build == trained.build {
                let grown = bytes as isize - entry.bytes as isize;
                entry.routing = trained;
                entry.bytes = bytes;
                entries.bytes = entries.bytes.saturating_add_signed(grown);
                entries.evict(cache.capacity, cache.max_bytes, tenant);
            }
        });
    }

    /// The memory the cached indexes and agents take, roughly.
    pub fn heap_size_bytes(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::routing::AgentProfile;

    use super::*;

    fn routing(tenant: u128, words: usize) -> Arc<TenantRouting> {
        let agent = |n: u128, name: &str| AgentProfile {
            id: AgentId::from_uuid(uuid::Uuid::from_u128(tenant * 100 + n)),
            name: name.to_owned(),
            description: format!("{name} questions"),
            intents: vec![name.to_owned()],
            keywords: (0..words).map(|w| format!("{name}word{w}")).collect(),
            examples: vec![format!("a question about {name}")],
            priority: 0,
            is_fallback: n == 9,
        };
        Arc::new(TenantRouting {
            version: 1,
            build: (0, false),
            index: Arc::new(RoutingIndex::build(
                vec![
                    agent(1, "billing"),
                    agent(2, "shipping"),
                    agent(9, "general"),
                ],
                RoutingConfig::default(),
                None,
            )),
            agents: HashMap::new(),
        })
    }

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn the_cache_stays_within_its_memory_and_keeps_the_recently_used() {
        let one = routing(1, 20).heap_size_bytes();
        assert!(one > 1000, "an index of three agents takes {one} bytes");
        // Room for about four tenants' indexes, by memory; ten by count.
        let cache = RoutingCache::new(10, one * 4 + one / 2);
        for (tick, t) in (1..=8u128).enumerate() {
            cache.insert(tenant(t), routing(t, 20), tick as u64);
            assert!(cache.heap_size_bytes() <= one * 4 + one / 2);
        }
        assert_eq!(cache.len(), 4);
        let cached: Vec<u128> = {
            let entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<u128> = entries.map.keys().map(|t| t.as_uuid().as_u128()).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(cached, vec![5, 6, 7, 8], "the four most recently used stay");
        // The count bound holds too, and a tenant bigger than the whole budget still stays
        // while it is the one in use.
        let small = RoutingCache::new(2, usize::MAX);
        for t in 1..=3u128 {
            small.insert(tenant(t), routing(t, 1), t as u64);
        }
        assert_eq!(small.len(), 2);
        let tight = RoutingCache::new(10, 10);
        tight.insert(tenant(1), routing(1, 1), 1);
        tight.insert(tenant(2), routing(2, 1), 2);
        assert_eq!(tight.len(), 1);
        assert!(
            tight
                .entries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .map
                .contains_key(&tenant(2))
        );
    }
}

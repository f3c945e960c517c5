//! Each tenant's routing index, cached in memory and rebuilt when the tenant's agents
//! change.
//!
//! Staleness is checked on every request for free: authentication loads the tenant row,
//! which carries `agents_version`, bumped in the same transaction as any change to the
//! tenant's agents — so every replica sharing the database sees a change on its next
//! request of that tenant, without polling or notifications. The cache holds at most a
//! configured number of tenants and drops the least recently used beyond that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use switchyard_core::model::Agent;
use switchyard_core::routing::{AgentProfile, LexicalIndex};
use switchyard_core::{AgentId, TenantId, TenantScope};
use switchyard_store::Store;

use crate::error::ApiError;

/// A tenant's routable agents and the index built from them.
#[derive(Debug)]
pub struct TenantRouting {
    /// The `agents_version` it was built from.
    pub version: i64,
    /// The index.
    pub index: Arc<LexicalIndex>,
    /// The agents, with their configs, by id.
    pub agents: HashMap<AgentId, Agent>,
}

struct Entry {
    routing: Arc<TenantRouting>,
    last_used: u64,
    training: bool,
}

/// The cache.
pub struct RoutingCache {
    entries: Mutex<HashMap<TenantId, Entry>>,
    capacity: usize,
    clock: AtomicU64,
}

impl std::fmt::Debug for RoutingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingCache")
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Indexes at most this many agents' worth of training inline; bigger ones are built
/// off the async threads.
const BUILD_INLINE_AGENTS: usize = 200;

impl RoutingCache {
    /// An empty cache holding at most `capacity` tenants.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            clock: AtomicU64::new(0),
        }
    }

    /// How many tenants are cached.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tenant's routing at `version` (from the tenant row loaded by authentication),
    /// built from the store if missing or stale.
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        scope: &TenantScope,
        version: i64,
    ) -> Result<Arc<TenantRouting>, ApiError> {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = entries.get_mut(&scope.tenant_id())
                && entry.routing.version >= version
            {
                entry.last_used = tick;
                return Ok(entry.routing.clone());
            }
        }
        let (version, agents) = store.routable_agents(scope).await?;
        let profiles: Vec<AgentProfile> = agents.iter().map(AgentProfile::from).collect();
        let index = if profiles.len() <= BUILD_INLINE_AGENTS {
            LexicalIndex::build(profiles)
        } else {
            tokio::task::spawn_blocking(move || LexicalIndex::build(profiles))
                .await
                .map_err(|e| ApiError::internal(format!("building a routing index: {e}")))?
        };
        let routing = Arc::new(TenantRouting {
            version,
            index: Arc::new(index),
            agents: agents.into_iter().map(|a| (a.id, a)).collect(),
        });
        self.insert(scope.tenant_id(), routing.clone(), tick);
        Ok(routing)
    }

    fn insert(&self, tenant: TenantId, routing: Arc<TenantRouting>, tick: u64) {
        let needs_training = !routing.index.is_trained();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries
            .get(&tenant)
            .is_some_and(|e| e.routing.version > routing.version)
        {
            return;
        }
        if entries.len() >= self.capacity
            && !entries.contains_key(&tenant)
            && let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(t, _)| *t)
        {
            entries.remove(&oldest);
        }
        entries.insert(
            tenant,
            Entry {
                routing,
                last_used: tick,
                training: needs_training,
            },
        );
    }

    /// Starts training the cached index of `tenant` off the request path if it is not
    /// trained yet (large tenants get a quick index first); the trained one replaces it if
    /// the agents have not changed meanwhile.
    pub fn train_in_background(self: &Arc<Self>, tenant: TenantId) {
        let routing = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            match entries.get_mut(&tenant) {
                Some(entry) if entry.training && !entry.routing.index.is_trained() => {
                    // Claimed: nobody else starts the same training.
                    entry.training = false;
                    entry.routing.clone()
                }
                _ => return,
            }
        };
        let cache = self.clone();
        tokio::task::spawn_blocking(move || {
            let trained = Arc::new(TenantRouting {
                version: routing.version,
                index: Arc::new(routing.index.trained()),
                agents: routing.agents.clone(),
            });
            let mut entries = cache.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(entry) = entries.get_mut(&tenant)
                && entry.routing.version == trained.version
            {
                entry.routing = trained;
            }
        });
    }

    /// The memory the cached indexes take, roughly.
    pub fn heap_size_bytes(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .values()
            .map(|e| e.routing.index.heap_size_bytes())
            .sum()
    }
}

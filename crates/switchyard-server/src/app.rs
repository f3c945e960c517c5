//! The application state every handler reaches: settings, the store, keys and caches.

use std::ops::Deref;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use switchyard_core::TenantId;
use switchyard_core::model::NewTenant;
use switchyard_core::routing::{AgentMatcher, PolicyMatcher};
use switchyard_core::settings::TenantSettings;
use switchyard_store::{Store, StoreError};
use tokio_util::task::TaskTracker;

use switchyard_agents::{
    AddressPolicy, AgentInvoker, BreakerConfig, CircuitBreakers, InvokerConfig, Invokers,
};

use crate::auth::{JwtKeys, LoginLimiter};
use crate::config::{Config, ConfigError};
use crate::routing_cache::RoutingCache;

/// Everything the server holds.
#[derive(Debug)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// The store.
    pub store: Arc<dyn Store>,
    /// JWT keys and rules.
    pub jwt: JwtKeys,
    /// SHA-256 of the operator's token, if one is configured.
    pub operator_token_hash: Option<Vec<u8>>,
    /// The tenant that tokens without `tid` act in, in the single-tenant mode.
    pub default_tenant: Option<TenantId>,
    /// Failed logins.
    pub login_limiter: LoginLimiter,
    /// Each tenant's routing index.
    pub routing: Arc<RoutingCache>,
    /// Calls agents.
    pub invoker: Arc<dyn AgentInvoker>,
    /// Fetches A2A Agent Cards and calls routing models (through the same guarded client).
    pub outbound: Arc<Invokers>,
    /// The pipeline's first analyzer: the in-process lexical one.
    pub lexical: crate::analyzers::LexicalAnalyzer,
    /// The pipeline's matching stage.
    pub matcher: Box<dyn AgentMatcher>,
    /// Chat turns running in their own tasks (a graceful shutdown waits for them).
    pub turns: TaskTracker,
    /// The `llm` analyzer.
    pub llm: crate::analyzers::LlmAnalyzer,
    /// The `embedding` analyzer.
    pub embedding: crate::analyzers::EmbeddingAnalyzer,
    /// Each agent's circuit.
    pub breakers: CircuitBreakers,
    /// Each tenant's request bucket and in-flight agent call cap.
    pub limits: crate::limits::Limits,
}

/// The shared state handlers extract.
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// Builds the application on an open store: loads the JWT keys and, in the
    /// single-tenant mode, makes sure the default tenant exists.
    pub async fn new(config: Config, store: Arc<dyn Store>) -> Result<Self, ConfigError> {
        // The metrics recorder exists before anything records.
        crate::metrics::handle();
        let jwt = JwtKeys::load(&config, store.as_ref()).await?;
        let default_tenant = if config.enable_tenant_isolation {
            None
        } else {
            Some(ensure_tenant(store.as_ref(), &config.default_tenant_slug).await?)
        };
        let invoker = Invokers::new(InvokerConfig {
            addresses: AddressPolicy {
                deny_private: config.agent_deny_private,
            },
            ..InvokerConfig::default()
        })
        .map_err(ConfigError)?;
        let invoker = Arc::new(invoker);
        let breakers = CircuitBreakers::new(BreakerConfig {
            failure_threshold: config.circuit_failure_threshold,
            open_for: std::time::Duration::from_secs(config.circuit_open_seconds),
        });
        Ok(Self {
            routing: Arc::new(RoutingCache::new(
                config.routing_cache_tenants,
                config.routing_cache_mib.saturating_mul(1024 * 1024),
            )),
            invoker: invoker.clone(),
            lexical: crate::analyzers::LexicalAnalyzer,
            matcher: Box::new(PolicyMatcher),
            turns: TaskTracker::new(),
            llm: crate::analyzers::LlmAnalyzer::new(invoker.clone()),
            embedding: crate::analyzers::EmbeddingAnalyzer::new(
                invoker.clone(),
                config.routing_cache_mib.saturating_mul(1024 * 1024),
            ),
            outbound: invoker,
            breakers,
            limits: crate::limits::Limits::default(),
            operator_token_hash: config
                .admin_token
                .as_ref()
                .map(|t| Sha256::digest(t.expose().as_bytes()).to_vec()),
            config,
            store,
            jwt,
            default_tenant,
            login_limiter: LoginLimiter::default(),
        })
    }
}

impl App {
    /// The environment variables `tenant`'s agents may read an API key from: those granted
    /// to every tenant and the tenant's own grants.
    pub fn key_envs_for<'a>(&'a self, tenant: &'a switchyard_core::model::Tenant) -> Vec<&'a str> {
        self.config
            .agent_key_envs()
            .chain(
                tenant
                    .settings
                    .agent_key_envs
                    .iter()
                    .flatten()
                    .map(String::as_str),
            )
            .collect()
    }
}

/// The id of the tenant with `slug`, created if missing.
pub async fn ensure_tenant(store: &dyn Store, slug: &str) -> Result<TenantId, ConfigError> {
    let fail = |e: StoreError| ConfigError(format!("default tenant `{slug}`: {e}"));
    match store.find_tenant_by_slug(slug).await {
        Ok(t) => Ok(t.id),
        Err(StoreError::NotFound) => {
            let created = store
                .create_tenant(
                    NewTenant {
                        slug: slug.to_string(),
                        name: slug.to_string(),
                        settings: TenantSettings::default(),
                    },
                    None,
                )
                .await;
            match created {
                Ok((t, _)) => Ok(t.id),
                // Another replica made it at the same moment.
                Err(StoreError::Conflict { .. }) => store
                    .find_tenant_by_slug(slug)
                    .await
                    .map(|t| t.id)
                    .map_err(fail),
                Err(e) => Err(fail(e)),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

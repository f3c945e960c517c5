//! The application state every handler reaches: settings, the store, authentication, the
//! routing caches, agent invokers and limits.

use std::ops::Deref;
use std::sync::Arc;

use switchyard_core::TenantId;
use switchyard_core::model::NewTenant;
use switchyard_core::settings::TenantSettings;
use switchyard_store::{Opened, OperatorScope, Store, StoreError};
use tokio_util::task::TaskTracker;

use switchyard_agents::{AddressPolicy, BreakerConfig, CircuitBreakers, InvokerConfig, Invokers};

use crate::auth::{Authenticator, JwtKeys};
use crate::config::{Config, ConfigError};
use crate::routing::encoder::InProcessEncoder;
use crate::routing::{Analyzers, IndexBuild, RoutingCache};

/// Everything the server holds.
#[derive(Debug)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// The store.
    pub store: Arc<dyn Store>,
    /// JWT keys and rules.
    pub jwt: JwtKeys,
    /// Who may call: the operator's proof, the operator token, the login lockout.
    pub(crate) auth: Authenticator,
    /// Each tenant's routing index.
    pub routing: Arc<RoutingCache>,
    /// The routing pipeline's analyzers and matcher.
    pub(crate) analyzers: Analyzers,
    /// The in-process sentence encoder, if the server has one (`SWITCHYARD_ENCODER_DIR`).
    pub(crate) encoder: Option<Arc<InProcessEncoder>>,
    /// Calls agents, fetches A2A Agent Cards and calls routing models, all through one
    /// guarded HTTP client.
    pub agents: Arc<Invokers>,
    /// Each agent's circuit, and its health.
    pub breakers: Arc<CircuitBreakers>,
    /// The agents' active health checks.
    pub health_checks: crate::checks::HealthChecks,
    /// Each tenant's request bucket and in-flight agent call cap.
    pub limits: crate::limits::Limits,
    /// What the replicas share through Redis, if anything (`SWITCHYARD_REDIS_URL`).
    pub(crate) shared: Arc<crate::shared::Shared>,
    /// The routing lab's one request at a time (docs/routing.md, "The routing lab").
    pub(crate) lab_permits: tokio::sync::Semaphore,
    /// Chat turns running in their own tasks (a graceful shutdown waits for them).
    pub turns: TaskTracker,
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
    pub async fn new(config: Config, opened: Opened) -> Result<Self, ConfigError> {
        let encoder = InProcessEncoder::load(&config)?;
        Self::with_encoder(config, opened, encoder).await
    }

    /// [`new`](Self::new) with the sentence encoder the configuration names, loaded already
    /// (the server loads it before it opens the database, so that a model that cannot be
    /// used stops the start before anything is touched).
    pub(crate) async fn with_encoder(
        config: Config,
        opened: Opened,
        encoder: Option<Arc<InProcessEncoder>>,
    ) -> Result<Self, ConfigError> {
        // The metrics recorder exists before anything records.
        crate::metrics::handle();
        let Opened { store, operator } = opened;
        let jwt = JwtKeys::load(&config, store.as_ref(), &operator).await?;
        let default_tenant = if config.enable_tenant_isolation {
            None
        } else {
            Some(ensure_tenant(store.as_ref(), &operator, &config.default_tenant_slug).await?)
        };
        let agents = Arc::new(
            Invokers::new(InvokerConfig {
                addresses: AddressPolicy {
                    deny_private: config.denies_private(),
                },
                ..InvokerConfig::default()
            })
            .map_err(ConfigError)?,
        );
        // A tenant's own trace endpoint is called like its agents.
        let (client, addresses) = agents.guarded_client();
        crate::traces::set_tenant_client(client, addresses);
        let breakers = Arc::new(CircuitBreakers::new(BreakerConfig {
            failure_threshold: config.circuit_failure_threshold,
            open_for: std::time::Duration::from_secs(config.circuit_open_seconds),
        }));
        let shared = Arc::new(match &config.redis_url {
            Some(url) => crate::shared::Shared::connect(
                url,
                std::time::Duration::from_millis(config.redis_timeout_ms),
            )
            .await
            .map_err(ConfigError)?,
            None => crate::shared::Shared::local(),
        });
        let health_checks =
            crate::checks::HealthChecks::start(agents.clone(), breakers.clone(), shared.clone());
        if config.enable_tenant_isolation && !config.denies_private() {
            tracing::warn!(
                "agents may call private and loopback addresses (SWITCHYARD_AGENT_DENY_PRIVATE=false): \
                 any tenant admin can reach this network through an agent; meant for development \
                 or a single trusted tenant"
            );
        }
        let cache_bytes = config.routing_cache_mib.saturating_mul(1024 * 1024);
        match &encoder {
            Some(e) => tracing::info!(
                "routing: lexical model and the in-process encoder {}",
                e.describe()
            ),
            None => tracing::info!("routing: lexical only (SWITCHYARD_ENCODER_DIR is not set)"),
        }
        Ok(Self {
            encoder,
            routing: Arc::new(RoutingCache::new(config.routing_cache_tenants, cache_bytes)),
            analyzers: Analyzers::new(agents.clone(), cache_bytes),
            agents,
            turns: TaskTracker::new(),
            breakers,
            health_checks,
            limits: crate::limits::Limits::default(),
            shared,
            lab_permits: tokio::sync::Semaphore::new(1),
            auth: Authenticator::new(
                operator,
                config.admin_token.as_ref().map(|t| t.expose()),
                default_tenant,
                config.login_attempts_per_address,
            ),
            config,
            store,
            jwt,
        })
    }
}

impl App {
    /// How `tenant`'s routing index is built: its settings over the global ones, and the
    /// encoder unless the tenant turned it off.
    pub(crate) fn index_build(&self, tenant: &switchyard_core::model::Tenant) -> IndexBuild {
        crate::routing::index_build(&self.config, self.encoder.as_ref(), &tenant.settings)
    }

    /// The tenant's routing (its agents and index), built or rebuilt as needed; an index
    /// left to complete is completed off the request path.
    pub(crate) async fn tenant_routing(
        &self,
        principal: &crate::auth::Principal,
    ) -> Result<Arc<crate::routing::TenantRouting>, crate::routing::RoutingError> {
        let build = self.index_build(&principal.tenant);
        let (routing, read) = self
            .routing
            .get(
                &self.store,
                &principal.scope,
                principal.tenant.agents_version,
                &build,
            )
            .await?;
        if read {
            self.health_checks.register(
                principal.scope.tenant_id(),
                &principal.tenant.slug,
                routing.agents.values(),
            );
        }
        self.routing
            .train_in_background(principal.scope.tenant_id());
        Ok(routing)
    }

    /// The environment variables `tenant`'s agents may read an API key from: those granted
    /// to every tenant and the tenant's own grants.
    pub fn key_envs_for<'a>(&'a self, tenant: &'a switchyard_core::model::Tenant) -> Vec<&'a str> {
        self.config.key_envs_for(tenant)
    }
}

/// The id of the tenant with `slug`, created if missing.
pub async fn ensure_tenant(
    store: &dyn Store,
    operator: &OperatorScope,
    slug: &str,
) -> Result<TenantId, ConfigError> {
    let fail = |e: StoreError| ConfigError(format!("default tenant `{slug}`: {e}"));
    match store.find_tenant_by_slug(operator, slug).await {
        Ok(t) => Ok(t.id),
        Err(StoreError::NotFound) => {
            let created = store
                .create_tenant(
                    operator,
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
                    .find_tenant_by_slug(operator, slug)
                    .await
                    .map(|t| t.id)
                    .map_err(fail),
                Err(e) => Err(fail(e)),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

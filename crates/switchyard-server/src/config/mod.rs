//! Settings: defaults, then a TOML file (`--config`), then the environment, which wins.
//!
//! Keys in the TOML file are the field names below (`database_url = "…"`). In the
//! environment they are `SWITCHYARD_` plus the key in capitals (`SWITCHYARD_DATABASE_URL`),
//! except the variables the original design named, which keep their names:
//! `ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER`, `ORCHESTRATOR_MESSAGE_RETENTION_DAYS`,
//! `ORCHESTRATOR_ENABLE_DEBUG_INFO`, `ENABLE_TENANT_ISOLATION` and `DEFAULT_TENANT_SLUG`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret setting: kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The JWT signature algorithm, pinned by configuration (never taken from a token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `jwt_secret` (or a secret the server keeps in its database).
    HS256,
    /// Ed25519 with a PEM key pair.
    EdDSA,
    /// RSA-SHA256 with a PEM key pair.
    RS256,
}

/// Every setting of the server.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `sqlite://FILE` (the embedded default) or `postgres://…`.
    pub database_url: String,
    /// PostgreSQL: the owner's URL for migrations when `database_url` names the
    /// application role (the form recommended for production).
    pub migration_database_url: Option<String>,
    /// The database pool's size.
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before it fails with `503`.
    pub database_acquire_timeout_ms: u64,
    /// Whether `serve` applies pending migrations at start.
    pub migrate_on_start: bool,
    /// The listening address; port 0 picks a free one.
    pub bind: String,
    /// If set, `/metrics` is also served without authentication on this private address.
    pub metrics_bind: Option<String>,
    /// The operator's bearer token; with none, operator endpoints are closed.
    pub admin_token: Option<Secret>,
    /// The JWT signature algorithm.
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256: the signing secret (at least 32 bytes). Without one, a random secret is made
    /// at first start and kept in the database.
    pub jwt_secret: Option<Secret>,
    /// EdDSA/RS256: a PEM private key to sign login tokens with (optional when tokens come
    /// from an external identity provider).
    pub jwt_private_key_file: Option<PathBuf>,
    /// EdDSA/RS256: the PEM public key that verifies tokens.
    pub jwt_public_key_file: Option<PathBuf>,
    /// The `iss` tokens must carry.
    pub jwt_issuer: String,
    /// The `aud` tokens must carry.
    pub jwt_audience: String,
    /// How long a login token lives.
    pub token_ttl_seconds: u64,
    /// SIGTERM/SIGINT: how long in-flight requests may take to finish.
    pub shutdown_grace_seconds: u64,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send its request headers.
    pub header_read_timeout_ms: u64,
    /// How long one write to a client may wait for it to read.
    pub write_timeout_ms: u64,
    /// How long a metrics series may go without an update before scrapes leave it out.
    pub metrics_idle_seconds: u64,
    /// Connections open at once at most (beyond, new ones wait to be accepted).
    pub max_connections: usize,
    /// How long one request may take in all (chat turns included) before `503`.
    pub request_timeout_ms: u64,
    /// `ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER`.
    pub max_conversations_per_user: i64,
    /// The most conversations one tenant may have.
    pub max_conversations_per_tenant: i64,
    /// Logins one client address may attempt in a minute (docs/operations.md, *Security*).
    pub login_attempts_per_address: usize,
    /// The most agents a tenant may have (its `max_agents` setting wins).
    pub max_agents_per_tenant: i64,
    /// The most users a tenant may have (its `max_users` setting wins).
    pub max_users_per_tenant: i64,
    /// The most API keys a tenant may have (its `max_api_keys` setting wins).
    pub max_api_keys_per_tenant: i64,
    /// `ORCHESTRATOR_MESSAGE_RETENTION_DAYS`.
    pub message_retention_days: i64,
    /// `ORCHESTRATOR_ENABLE_DEBUG_INFO`: timings in chat answers.
    pub enable_debug_info: bool,
    /// `ENABLE_TENANT_ISOLATION`: with `false`, tokens without `tid` act in the default
    /// tenant (single-tenant compatibility).
    pub enable_tenant_isolation: bool,
    /// `DEFAULT_TENANT_SLUG`: the tenant of the single-tenant mode and of legacy users.
    pub default_tenant_slug: String,
    /// The default intent analyzer (`lexical`, `llm`, `embedding`).
    pub analyzer: String,
    /// Below this routing confidence the fallback agent answers. Unset (the default): the
    /// threshold fitted to each tenant's own examples (see `target_false_fallback`).
    pub min_confidence: Option<f64>,
    /// When the two best candidates are closer than this, the fallback agent answers (0:
    /// never on the margin alone; the calibrated confidence already counts it).
    pub min_margin: f64,
    /// The share of answerable messages a tenant's fitted fallback threshold lets fall
    /// back.
    pub target_false_fallback: f64,
    /// `SWITCHYARD_ENCODER_DIR`: a local sentence-transformers model directory (BERT
    /// family: `config.json`, `model.safetensors`, `tokenizer.json`) for the in-process
    /// encoder. Unset: lexical routing only.
    pub encoder_dir: Option<PathBuf>,
    /// Where the static token embeddings distilled from the encoder are cached (default:
    /// `$XDG_CACHE_HOME/switchyard`, else `~/.cache/switchyard`).
    pub encoder_cache_dir: Option<PathBuf>,
    /// The fast analysis's confidence below which the whole encoder decides.
    pub encoder_band: f64,
    /// How many texts' whole-encoder embeddings are kept in memory (1.5 KiB each for a
    /// 384-dimension model).
    pub encoder_cache_entries: usize,
    /// How far ahead another agent must be to take a follow-up from the last agent.
    pub switch_margin: f64,
    /// Requests per second per tenant (0 = off).
    pub rate_limit_per_second: u32,
    /// Burst above the rate per tenant.
    pub rate_limit_burst: u32,
    /// Agent calls of one tenant running at once.
    pub max_inflight_agent_calls: u32,
    /// How many earlier turns of the conversation an agent receives.
    pub history_turns: u32,
    /// Refuse outbound calls to private, loopback and carrier-grade NAT addresses. Unset:
    /// refused when tenants can register agents (`enable_tenant_isolation`), allowed in the
    /// single-tenant mode; see [`Config::denies_private`].
    pub agent_deny_private: Option<bool>,
    /// `SWITCHYARD_AGENT_KEY_ENVS`: environment variables (comma-separated) that every
    /// tenant's `openai` agents may name as `api_key_env`; a tenant's own grants are its
    /// `agent_key_envs` setting. No other variable is ever read for an agent.
    pub agent_key_envs: String,
    /// Redis shared by the replicas for rate limits, login failures and circuits
    /// (docs/scaling.md); unset: each process keeps its own.
    pub redis_url: Option<String>,
    /// How long a Redis command may take before the replica falls back to its own limits.
    pub redis_timeout_ms: u64,
    /// Failures in a row that open an agent's circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit stays open before one trial call.
    pub circuit_open_seconds: u64,
    /// How many tenants' routing indexes are kept in memory.
    pub routing_cache_tenants: usize,
    /// How much memory (MiB) the cached routing indexes and agents may take, as they count
    /// it; the least recently used tenants go first beyond it.
    pub routing_cache_mib: usize,
    /// How often the retention task runs (0: never; `switchyard retention run` still works).
    pub retention_interval_seconds: u64,
    /// The `llm` analyzer's default chat model: OpenAI-compatible base URL (`…/v1`).
    pub llm_base_url: Option<String>,
    /// Its model name.
    pub llm_model: Option<String>,
    /// The environment variable holding its API key.
    pub llm_api_key_env: Option<String>,
    /// How long it may take before the lexical decision is used.
    pub llm_timeout_ms: Option<u64>,
    /// The `embedding` analyzer's default embeddings model: base URL.
    pub embedding_base_url: Option<String>,
    /// Its model name.
    pub embedding_model: Option<String>,
    /// The environment variable holding its API key.
    pub embedding_api_key_env: Option<String>,
    /// How long it may take before the lexical decision is used.
    pub embedding_timeout_ms: Option<u64>,
    /// The lexical confidence from which a model-backed analyzer is asked (inclusive).
    pub cascade_band_low: f64,
    /// The lexical confidence from which the lexical decision stands without a model.
    pub cascade_band_high: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://switchyard.db".into(),
            migration_database_url: None,
            database_max_connections: 16,
            database_acquire_timeout_ms: 3000,
            migrate_on_start: true,
            bind: "127.0.0.1:8080".into(),
            metrics_bind: None,
            admin_token: None,
            jwt_algorithm: JwtAlgorithm::HS256,
            jwt_secret: None,
            jwt_private_key_file: None,
            jwt_public_key_file: None,
            jwt_issuer: "switchyard".into(),
            jwt_audience: "switchyard".into(),
            token_ttl_seconds: 3600,
            shutdown_grace_seconds: 25,
            max_body_bytes: 1024 * 1024,
            header_read_timeout_ms: 10_000,
            write_timeout_ms: 30_000,
            metrics_idle_seconds: 3600,
            max_connections: 10_000,
            request_timeout_ms: 120_000,
            max_conversations_per_user: 100,
            max_conversations_per_tenant: 10_000,
            login_attempts_per_address: crate::auth::LoginLimiter::ADDRESS_ATTEMPTS,
            max_agents_per_tenant: 1_000,
            max_users_per_tenant: 10_000,
            max_api_keys_per_tenant: 100,
            message_retention_days: 365,
            enable_debug_info: false,
            enable_tenant_isolation: true,
            default_tenant_slug: "default".into(),
            analyzer: "lexical".into(),
            // Fitted per tenant (see switchyard_core::routing::RoutingIndex).
            min_confidence: None,
            min_margin: 0.0,
            target_false_fallback: 0.03,
            encoder_dir: None,
            encoder_cache_dir: None,
            encoder_band: 0.7,
            encoder_cache_entries: 20_000,
            switch_margin: 0.3,
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            max_inflight_agent_calls: 64,
            history_turns: 10,
            agent_deny_private: None,
            agent_key_envs: String::new(),
            redis_url: None,
            redis_timeout_ms: 50,
            circuit_failure_threshold: 5,
            circuit_open_seconds: 30,
            routing_cache_tenants: 10_000,
            routing_cache_mib: 128,
            retention_interval_seconds: 3600,
            llm_base_url: None,
            llm_model: None,
            llm_api_key_env: None,
            llm_timeout_ms: None,
            embedding_base_url: None,
            embedding_model: None,
            embedding_api_key_env: None,
            embedding_timeout_ms: None,
            // Calibrated: at 0.8 and above the lexical verdict is right at least 80% of the
            // time, so asking a model there buys little.
            cascade_band_low: 0.0,
            cascade_band_high: 0.8,
        }
    }
}

/// The variables of the original design, and the keys they set.
const LEGACY_VARIABLES: &[(&str, &str)] = &[
    (
        "ORCHESTRATOR_MAX_CONVERSATIONS_PER_USER",
        "max_conversations_per_user",
    ),
    (
        "ORCHESTRATOR_MESSAGE_RETENTION_DAYS",
        "message_retention_days",
    ),
    ("ORCHESTRATOR_ENABLE_DEBUG_INFO", "enable_debug_info"),
    ("ENABLE_TENANT_ISOLATION", "enable_tenant_isolation"),
    ("DEFAULT_TENANT_SLUG", "default_tenant_slug"),
];

/// One line for a setting that does not parse, naming what the user wrote: the environment
/// variable (the name they set, an alias included) with its value, or the key of the file;
/// then what is expected.
fn describe(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let from_env = e
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.to_lowercase().contains("environment"));
    let problem = e.kind.to_string();
    if from_env && !key.is_empty() {
        // The legacy names win over SWITCHYARD_… (they are merged last), so look at them first.
        let names: Vec<String> = LEGACY_VARIABLES
            .iter()
            .filter(|(_, field)| *field == key)
            .map(|(var, _)| (*var).to_owned())
            .chain(std::iter::once(format!(
                "SWITCHYARD_{}",
                key.to_uppercase()
            )))
            .collect();
        let set = names.iter().find_map(|name| {
            std::env::vars_os().find_map(|(var, value)| {
                let var = var.to_string_lossy().into_owned();
                var.eq_ignore_ascii_case(name)
                    .then(|| (var, value.to_string_lossy().into_owned()))
            })
        });
        if let Some((var, value)) = set {
            return format!("{var}={value:?} is not valid: {problem}").replace('\n', " ");
        }
    }
    let source = e
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|s| format!(" in {s}"))
        .unwrap_or_default();
    if key.is_empty() {
        format!("{problem}{source}").replace('\n', " ")
    } else {
        format!("`{key}`{source} is not valid: {problem}").replace('\n', " ")
    }
}

/// A setting that cannot work, with its name.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Whether `s` is `HOST:PORT`: an IP address (IPv6 in brackets) or a host name, and a
/// port number.
fn is_host_port(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A database URL fit to show: its password, if any, as `***` — in the user part
/// (`user:secret@`) and in a `password=` parameter.
pub fn redacted_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let base = match base.split_once("://") {
        // The user part ends at the last `@` before the path.
        Some((scheme, rest)) => {
            let authority_end = rest.rfind('@').map_or(0, |at| at);
            match rest[..authority_end].split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[authority_end..]),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    match query {
        None => base,
        Some(query) => {
            let shown: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", shown.join("&"))
        }
    }
}

impl Config {
    /// Reads the settings: defaults, then the TOML file if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::figment(file)
            .extract::<Config>()
            .map_err(|e| ConfigError(describe(&e)))?
            .validated()
    }

    fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(Toml::file_exact(path));
        }
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        figment
            .merge(
                Env::prefixed("SWITCHYARD_")
                    .filter(move |key| known.iter().any(|k| key == k.as_str())),
            )
            .merge(Env::raw().filter_map(|key| {
                LEGACY_VARIABLES
                    .iter()
                    .find(|(var, _)| key.as_str().eq_ignore_ascii_case(var))
                    .map(|(_, field)| (*field).into())
            }))
    }

    /// Checks values that parse but cannot work; the error names the setting.
    pub fn validated(self) -> Result<Self, ConfigError> {
        let bad = |name: &str, why: &str| Err(ConfigError(format!("`{name}` {why}")));
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return bad("database_url", "must start with sqlite: or postgres://");
        }
        if !is_host_port(&self.bind) {
            return bad(
                "bind",
                "must be HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080",
            );
        }
        if let Some(addr) = &self.metrics_bind
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return bad("metrics_bind", "must be HOST:PORT with an IP address");
        }
        if let Some(url) = &self.redis_url
            && !url.starts_with("redis://")
        {
            return bad("redis_url", "must start with redis://");
        }
        if self.redis_timeout_ms == 0 {
            return bad("redis_timeout_ms", "must be at least 1");
        }
        if self.database_max_connections == 0 {
            return bad("database_max_connections", "must be at least 1");
        }
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < 32
        {
            return bad("jwt_secret", "must be at least 32 bytes");
        }
        if let Some(token) = &self.admin_token
            && token.expose().len() < 16
        {
            return bad("admin_token", "must be at least 16 characters");
        }
        if self.jwt_algorithm != JwtAlgorithm::HS256 && self.jwt_public_key_file.is_none() {
            return bad(
                "jwt_public_key_file",
                "is required with an EdDSA or RS256 jwt_algorithm",
            );
        }
        if self.write_timeout_ms == 0 {
            return bad("write_timeout_ms", "must be at least 1");
        }
        if self.metrics_idle_seconds == 0 {
            return bad("metrics_idle_seconds", "must be at least 1");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if self.token_ttl_seconds == 0 {
            return bad("token_ttl_seconds", "must be at least 1");
        }
        if self.max_conversations_per_user < 0 {
            return bad("max_conversations_per_user", "must not be negative");
        }
        for (name, value) in [
            ("max_agents_per_tenant", self.max_agents_per_tenant),
            ("max_users_per_tenant", self.max_users_per_tenant),
            ("max_api_keys_per_tenant", self.max_api_keys_per_tenant),
        ] {
            if value < 0 {
                return bad(name, "must not be negative");
            }
        }
        if self.max_conversations_per_tenant < 0 {
            return bad("max_conversations_per_tenant", "must not be negative");
        }
        if self.message_retention_days < 1 {
            return bad("message_retention_days", "must be at least 1");
        }
        if !switchyard_core::settings::ANALYZERS.contains(&self.analyzer.as_str()) {
            return bad("analyzer", "must be lexical, llm or embedding");
        }
        if self
            .min_confidence
            .is_some_and(|c| !(0.0..=1.0).contains(&c))
        {
            return bad("min_confidence", "must be between 0 and 1");
        }
        if !(self.target_false_fallback > 0.0 && self.target_false_fallback <= 0.5) {
            return bad("target_false_fallback", "must be above 0 and at most 0.5");
        }
        if !(0.0..=1.0).contains(&self.encoder_band) {
            return bad("encoder_band", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.min_margin) {
            return bad("min_margin", "must be between 0 and 1");
        }
        if !(0.0..=1.0).contains(&self.switch_margin) {
            return bad("switch_margin", "must be between 0 and 1");
        }
        if self.max_inflight_agent_calls == 0 {
            return bad("max_inflight_agent_calls", "must be at least 1");
        }
        if !crate::validate::is_slug(&self.default_tenant_slug) {
            return bad(
                "default_tenant_slug",
                "must be a valid slug (a-z, 0-9, -; 2 to 63 characters)",
            );
        }
        let stale_ms = switchyard_store::IDEMPOTENCY_STALE.num_milliseconds();
        if self.request_timeout_ms == 0
            || i64::try_from(self.request_timeout_ms).unwrap_or(i64::MAX) >= stale_ms
        {
            return Err(ConfigError(format!(
                "`request_timeout_ms` must be between 1 and {} (a request still running after that long could be retried under its Idempotency-Key)",
                stale_ms - 1
            )));
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        for (name, endpoint) in [
            ("llm", self.global_llm()),
            ("embedding", self.global_embedding()),
        ] {
            if let Some(endpoint) = endpoint {
                endpoint
                    .validate(name)
                    .map_err(|e| ConfigError(format!("`{name}_…` settings: {}", e.problem)))?;
            }
        }
        for var in self.agent_key_envs() {
            switchyard_core::agent_config::check_key_env(var)
                .map_err(|e| ConfigError(format!("`agent_key_envs`: {e}")))?;
        }
        if !(0.0..=1.0).contains(&self.cascade_band_low)
            || !(0.0..=1.0).contains(&self.cascade_band_high)
            || self.cascade_band_low > self.cascade_band_high
        {
            return bad(
                "cascade_band_low",
                "and cascade_band_high must satisfy 0 <= low <= high <= 1",
            );
        }
        Ok(self)
    }

    /// The variables every tenant's agents may read an API key from.
    pub fn agent_key_envs(&self) -> impl Iterator<Item = &str> {
        self.agent_key_envs
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The environment variables `tenant`'s agents may read an API key from: those granted
    /// to every tenant and the tenant's own grants.
    pub fn key_envs_for<'a>(&'a self, tenant: &'a switchyard_core::model::Tenant) -> Vec<&'a str> {
        self.agent_key_envs()
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

    /// Whether outbound calls to private and loopback addresses are refused: as set, or by
    /// default when tenants can register agents (a tenant must not reach the operator's
    /// internal network through an agent).
    pub fn denies_private(&self) -> bool {
        self.agent_deny_private
            .unwrap_or(self.enable_tenant_isolation)
    }

    /// The global chat model of the `llm` analyzer, if configured.
    pub fn global_llm(&self) -> Option<switchyard_core::settings::ModelEndpoint> {
        Some(switchyard_core::settings::ModelEndpoint {
            base_url: self.llm_base_url.clone()?,
            model: self.llm_model.clone()?,
            api_key_env: self.llm_api_key_env.clone(),
            timeout_ms: self.llm_timeout_ms,
        })
    }

    /// The global embeddings model of the `embedding` analyzer, if configured.
    pub fn global_embedding(&self) -> Option<switchyard_core::settings::ModelEndpoint> {
        Some(switchyard_core::settings::ModelEndpoint {
            base_url: self.embedding_base_url.clone()?,
            model: self.embedding_model.clone()?,
            api_key_env: self.embedding_api_key_env.clone(),
            timeout_ms: self.embedding_timeout_ms,
        })
    }

    /// The store settings these settings imply.
    pub fn store_config(&self) -> switchyard_store::StoreConfig {
        switchyard_store::StoreConfig {
            url: self.database_url.clone(),
            migration_url: self.migration_database_url.clone(),
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_millis(self.database_acquire_timeout_ms),
            migrate: self.migrate_on_start,
            default_tenant_slug: self.default_tenant_slug.clone(),
        }
    }
}

#[cfg(test)]
mod tests;

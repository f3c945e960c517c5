//! Authentication: JWTs (algorithm pinned by configuration), API keys, passwords, the
//! operator token, and the extractors that turn a request's credential into a
//! [`Principal`] — the only place a [`TenantScope`] is made from a request.
//!
//! Every request re-reads the user and the tenant the credential names: a deleted user,
//! or a user or tenant that is no longer active, is refused at once, whatever the token
//! says.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchyard_core::model::{Tenant, TenantStatus, User, UserStatus};
use switchyard_core::{Role, TenantId, TenantScope, UserId};
use switchyard_store::{
    FirstRead, FirstReadResult, PrincipalRecord, Store, StoreError, StoreResult,
};

use crate::app::AppState;
use crate::config::{Config, ConfigError, JwtAlgorithm};
use crate::error::ApiError;

/// The claims of a token Switchyard issues.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: String,
    tid: String,
    iat: i64,
    exp: i64,
    iss: &'a str,
    aud: &'a str,
}

/// The claims Switchyard reads from a verified token. `exp`, `iss`, `aud` and `sub` are
/// checked by the verifier; `iat` must be present; `tid` may only be absent in the
/// single-tenant mode.
#[derive(Debug, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// When it was issued.
    pub iat: i64,
    /// When it expires.
    pub exp: i64,
}

/// The keys and rules for JWTs.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: u64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("can_issue", &self.encoding.is_some())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// The server secret under which a generated HS256 key is kept.
const GENERATED_SECRET: &str = "jwt_hs256_secret";

impl JwtKeys {
    /// Loads the keys the configuration names; for HS256 without a configured secret, the
    /// secret kept in the database (made at the first start).
    pub async fn load(config: &Config, store: &dyn Store) -> Result<Self, ConfigError> {
        let (algorithm, encoding, decoding) = match config.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let secret = match &config.jwt_secret {
                    Some(s) => s.expose().to_string(),
                    None => store
                        .server_secret(
                            GENERATED_SECRET,
                            &|| hex::encode(rand::random::<[u8; 32]>()),
                        )
                        .await
                        .map_err(|e| {
                            ConfigError(format!(
                                "cannot read the JWT secret from the database: {e}"
                            ))
                        })?,
                };
                let encoding = EncodingKey::from_secret(secret.as_bytes())
                    .map_err(|e| ConfigError(format!("`jwt_secret`: {e}")))?;
                let decoding = DecodingKey::from_secret(secret.as_bytes())
                    .map_err(|e| ConfigError(format!("`jwt_secret`: {e}")))?;
                (Algorithm::HS256, Some(encoding), decoding)
            }
            alg @ (JwtAlgorithm::EdDSA | JwtAlgorithm::RS256) => {
                let read = |name: &str, path: &std::path::Path| {
                    std::fs::read(path)
                        .map_err(|e| ConfigError(format!("`{name}` {}: {e}", path.display())))
                };
                let public = config
                    .jwt_public_key_file
                    .as_deref()
                    .ok_or_else(|| ConfigError("`jwt_public_key_file` is required".into()))?;
                let public = read("jwt_public_key_file", public)?;
                let bad = |name: &str, e: jsonwebtoken::errors::Error| {
                    ConfigError(format!("`{name}`: {e}"))
                };
                let (algorithm, decoding) = if alg == JwtAlgorithm::EdDSA {
                    (
                        Algorithm::EdDSA,
                        DecodingKey::from_ed_pem(&public)
                            .map_err(|e| bad("jwt_public_key_file", e))?,
                    )
                } else {
                    (
                        Algorithm::RS256,
                        DecodingKey::from_rsa_pem(&public)
                            .map_err(|e| bad("jwt_public_key_file", e))?,
                    )
                };
                let encoding = match &config.jwt_private_key_file {
                    None => None,
                    Some(path) => {
                        let private = read("jwt_private_key_file", path)?;
                        Some(if alg == JwtAlgorithm::EdDSA {
                            EncodingKey::from_ed_pem(&private)
                                .map_err(|e| bad("jwt_private_key_file", e))?
                        } else {
                            EncodingKey::from_rsa_pem(&private)
                                .map_err(|e| bad("jwt_private_key_file", e))?
                        })
                    }
                };
                (algorithm, encoding, decoding)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl_seconds: config.token_ttl_seconds,
        })
    }

    /// A token for `user` of `tenant`, and its lifetime in seconds.
    pub fn issue(
        &self,
        tenant: TenantId,
        user: UserId,
        ttl_seconds: Option<u64>,
    ) -> Result<(String, u64), ApiError> {
        let encoding = self.encoding.as_ref().ok_or_else(|| {
            ApiError::forbidden("this server verifies tokens of an identity provider but issues none (no jwt_private_key_file)")
        })?;
        let ttl = ttl_seconds.unwrap_or(self.ttl_seconds);
        let now = chrono::Utc::now().timestamp();
        let claims = IssuedClaims {
            sub: user.to_string(),
            tid: tenant.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            iss: &self.issuer,
            aud: &self.audience,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, encoding)
            .map_err(|e| ApiError::internal(format!("signing a token: {e}")))?;
        Ok((token, ttl))
    }

    /// The claims of a token signed with the configured key and algorithm, unexpired, not
    /// before its `nbf`, with the right issuer and audience.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

// ----- API keys -----

/// The marker every API key starts with.
pub const API_KEY_MARKER: &str = "sy_";
const API_KEY_RANDOM_HEX: usize = 64;
const API_KEY_LEN: usize = API_KEY_MARKER.len() + API_KEY_RANDOM_HEX + 32;
/// How many characters of a key are kept to recognise it.
pub const API_KEY_PREFIX_LEN: usize = 12;

/// A new API key for `tenant`: the secret to show once, its prefix, and its hash.
///
/// The key is `sy_` + 64 random hex digits (256 bits) + the tenant id (32 hex digits): the
/// random part first, so prefixes tell keys apart; the tenant last, so the server knows
/// which tenant to look the hash up in (row-level security needs the tenant before it
/// reads). The tenant part is no secret; the random part is the credential.
pub fn new_api_key(tenant: TenantId) -> (String, String, Vec<u8>) {
    let key = format!(
        "{API_KEY_MARKER}{}{}",
        hex::encode(rand::random::<[u8; 32]>()),
        tenant.as_uuid().simple()
    );
    let prefix = key[..API_KEY_PREFIX_LEN].to_string();
    let hash = api_key_hash(&key);
    (key, prefix, hash)
}

/// The tenant an API key names, if the key is well-formed.
pub fn api_key_tenant(key: &str) -> Option<TenantId> {
    if key.len() != API_KEY_LEN || !key.starts_with(API_KEY_MARKER) || !key.is_ascii() {
        return None;
    }
    let random = &key[API_KEY_MARKER.len()..API_KEY_MARKER.len() + API_KEY_RANDOM_HEX];
    if !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    uuid::Uuid::try_parse(&key[API_KEY_MARKER.len() + API_KEY_RANDOM_HEX..])
        .ok()
        .map(TenantId::from)
}

/// The stored form of an API key. Keys carry 256 random bits, so one SHA-256 is enough: a
/// slow password hash would protect nothing more and cost every request.
pub fn api_key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

// ----- passwords -----

/// An argon2id PHC string for `password` (slow on purpose: run it off the async threads).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("hashing a password: {e}")))
}

/// Whether `password` matches `hash`. Without a hash (a user with no password, or no user
/// at all), a dummy hash is checked anyway, so that every failure takes as long.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy =
        DUMMY.get_or_init(|| hash_password("not the password of anyone").unwrap_or_default());
    let (candidate, real) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let matches = PasswordHash::new(candidate)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    matches && real
}

/// Counts failed logins per tenant and e-mail: after [`LoginLimiter::MAX_FAILURES`] within
/// [`LoginLimiter::WINDOW`], logins for that pair are refused until the window passes.
/// (Per server process: each replica counts its own.)
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<(String, String), VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// Failures allowed within the window.
    pub const MAX_FAILURES: usize = 10;
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(300);
    /// Pairs remembered before old ones are dropped (the keys come from clients).
    const MAX_KEYS: usize = 100_000;

    /// If the pair is locked out, the seconds until it is not.
    pub fn locked_for(&self, tenant: &str, email: &str) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(&(tenant.to_string(), email.to_string()))?;
        while entry
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Self::WINDOW)
        {
            entry.pop_front();
        }
        if entry.len() >= Self::MAX_FAILURES {
            let oldest = *entry.front()?;
            Some((Self::WINDOW - now.duration_since(oldest)).as_secs() + 1)
        } else {
            None
        }
    }

    /// Records a failed login.
    pub fn failed(&self, tenant: &str, email: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_KEYS {
            map.retain(|_, v| {
                v.back()
                    .is_some_and(|t| now.duration_since(*t) < Self::WINDOW)
            });
        }
        if map.len() >= Self::MAX_KEYS {
            // Still full of recent failures: forget the lot rather than grow without bound.
            map.clear();
        }
        let entry = map
            .entry((tenant.to_string(), email.to_string()))
            .or_default();
        entry.push_back(now);
        while entry.len() > Self::MAX_FAILURES {
            entry.pop_front();
        }
    }

    /// Forgets the failures of a pair after a successful login.
    pub fn succeeded(&self, tenant: &str, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(tenant.to_string(), email.to_string()));
    }
}

// ----- extractors -----

/// An authenticated user of a tenant: the tenant and user as loaded for this request, and
/// the scope every store call of the request goes through.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The scope of this principal.
    pub scope: TenantScope,
    /// The user, as loaded for this request.
    pub user: User,
    /// The tenant, as loaded for this request.
    pub tenant: Tenant,
}

/// An authenticated tenant admin.
#[derive(Clone, Debug)]
pub struct Admin(pub Principal);

/// The platform operator.
#[derive(Clone, Copy, Debug)]
pub struct Operator;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn store_failure(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::unauthorized(),
        other => ApiError::from(other),
    }
}

/// Resolves the request's credential to a principal.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    authenticate_with(state, token, None).await.map(|(p, _)| p)
}

/// Resolves the request's credential to a principal and reads `read` in its scope: with a
/// verified token, in the same round trip as the principal where the store can
/// ([`Store::find_principal_and_read`]). Every check of [`authenticate`] comes first; the
/// read's own failure (a conversation that is not found, say) is the second value.
pub async fn authenticate_and_read(
    state: &AppState,
    token: &str,
    read: FirstRead,
) -> Result<(Principal, StoreResult<FirstReadResult>), ApiError> {
    let (principal, done) = authenticate_with(state, token, Some(&read)).await?;
    let result = match done {
        Some(result) => result,
        None => read.run(state.store.as_ref(), &principal.scope).await,
    };
    Ok((principal, result))
}

async fn authenticate_with(
    state: &AppState,
    token: &str,
    read: Option<&FirstRead>,
) -> Result<(Principal, Option<StoreResult<FirstReadResult>>), ApiError> {
    // Whether the request was counted against its tenant's bucket before the database was
    // asked. Only a verified token's tenant is trusted for that: an API key's tenant part
    // is not verified until its hash is found, and counting on it would let anyone drain
    // another tenant's bucket with made-up keys.
    let mut counted = false;
    let mut done = None;
    let record: PrincipalRecord = if token.starts_with(API_KEY_MARKER) {
        let tenant = api_key_tenant(token).ok_or_else(ApiError::unauthorized)?;
        let found = state
            .store
            .find_api_key(tenant, &api_key_hash(token))
            .await
            .map_err(store_failure)?;
        if found.revoked {
            return Err(ApiError::unauthorized());
        }
        found.principal
    } else {
        let claims = state.jwt.verify(token).ok_or_else(ApiError::unauthorized)?;
        let user: UserId = claims.sub.parse().map_err(|_| ApiError::unauthorized())?;
        let tenant: TenantId = match (&claims.tid, state.default_tenant) {
            (Some(tid), _) => tid.parse().map_err(|_| ApiError::unauthorized())?,
            // Single-tenant compatibility: a token without a tenant acts in the default one.
            (None, Some(default)) => default,
            (None, None) => return Err(ApiError::unauthorized()),
        };
        counted = state.limits.admit_early(tenant)?;
        match read {
            Some(read) => {
                let (record, result) = state
                    .store
                    .find_principal_and_read(tenant, user, read)
                    .await
                    .map_err(store_failure)?;
                done = result;
                record
            }
            None => state
                .store
                .find_principal(tenant, user)
                .await
                .map_err(store_failure)?,
        }
    };
    // The store reads for an active user of an active tenant only; whatever it read, it is
    // handed on only after every check below.
    if record.tenant.status != TenantStatus::Active {
        return Err(ApiError::forbidden("the tenant is suspended"));
    }
    if record.user.status != UserStatus::Active {
        return Err(ApiError::forbidden("the user is disabled"));
    }
    crate::metrics::tenant_request(&record.tenant.slug);
    if counted {
        state.limits.refresh(&state.config, &record.tenant);
    } else if let Err(limited) = state.limits.admit(&state.config, &record.tenant) {
        crate::metrics::limited(&record.tenant.slug, "rate");
        return Err(limited);
    }
    let scope =
        TenantScope::from_verified_principal(record.tenant.id, record.user.id, record.user.role);
    let span = tracing::Span::current();
    span.record("tenant.id", tracing::field::display(record.tenant.id));
    span.record("user.id", tracing::field::display(record.user.id));
    let principal = Principal {
        scope,
        user: record.user,
        tenant: record.tenant,
    };
    Ok((principal, done))
}

/// The request's bearer token, not yet checked: for the handlers that authenticate together
/// with their first read ([`authenticate_and_read`]). Without a token: `401`.
#[derive(Clone, Debug)]
pub struct Credential(String);

impl Credential {
    /// The principal alone (as the [`Principal`] extractor).
    pub async fn authenticate(&self, state: &AppState) -> Result<Principal, ApiError> {
        authenticate(state, &self.0).await
    }

    /// The principal and the request's first read (see [`authenticate_and_read`]).
    pub async fn authenticate_and_read(
        &self,
        state: &AppState,
        read: FirstRead,
    ) -> Result<(Principal, StoreResult<FirstReadResult>), ApiError> {
        authenticate_and_read(state, &self.0, read).await
    }

    /// Answers a request whose parameters were refused: a credential that fails is
    /// answered first (`401`/`403`, as for every other endpoint), then the refusal.
    pub async fn refuse<T>(&self, state: &AppState, refusal: ApiError) -> Result<T, ApiError> {
        self.authenticate(state).await?;
        Err(refusal)
    }
}

impl FromRequestParts<AppState> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        Ok(Self(token.to_string()))
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        let principal = authenticate(state, token).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        if principal.scope.role() != Role::Admin {
            return Err(ApiError::forbidden("this needs a tenant admin"));
        }
        Ok(Admin(principal))
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(ApiError::unauthorized)?;
        if let Some(expected) = &state.operator_token_hash
            && Sha256::digest(token.as_bytes()).as_slice() == expected.as_slice()
        {
            tracing::Span::current().record("user.id", "operator");
            return Ok(Operator);
        }
        // A valid user of some tenant is known but not allowed; anything else is unknown.
        match Principal::from_request_parts(parts, state).await {
            Ok(_) => Err(ApiError::forbidden("this needs the platform operator")),
            Err(e) if e.status.is_server_error() => Err(e),
            Err(_) => Err(ApiError::unauthorized()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_name_their_tenant_and_differ_in_their_prefix() {
        let tenant = TenantId::new();
        let (a, prefix_a, hash_a) = new_api_key(tenant);
        let (b, prefix_b, _) = new_api_key(tenant);
        assert_eq!(api_key_tenant(&a), Some(tenant));
        assert!(a.starts_with("sy_") && prefix_a.len() == 12 && a.starts_with(&prefix_a));
        assert_ne!(prefix_a, prefix_b);
        assert_ne!(a, b);
        assert_eq!(api_key_hash(&a), hash_a);
        for bad in [
            "sy_",
            "sy_zz",
            &a[..a.len() - 1],
            &a.replace("sy_", "xx_"),
            &format!("{a}0"),
        ] {
            assert_eq!(api_key_tenant(bad), None, "{bad}");
        }
    }

    #[test]
    fn passwords_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("wrong horse battery", Some(&hash)));
        assert!(!verify_password("anything", None));
        assert!(!verify_password("anything", Some("not a phc string")));
    }

    #[test]
    fn the_login_limiter_locks_after_ten_failures() {
        let l = LoginLimiter::default();
        for _ in 0..9 {
            l.failed("acme", "a@x");
        }
        assert_eq!(l.locked_for("acme", "a@x"), None);
        l.failed("acme", "a@x");
        let secs = l.locked_for("acme", "a@x").unwrap();
        assert!((1..=301).contains(&secs));
        assert_eq!(l.locked_for("acme", "b@x"), None, "per e-mail");
        assert_eq!(l.locked_for("globex", "a@x"), None, "per tenant");
        l.succeeded("acme", "a@x");
        assert_eq!(l.locked_for("acme", "a@x"), None);
    }
}

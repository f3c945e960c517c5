//! Authentication: who is calling, proven by a credential, and the extractors every handler
//! starts from — [`Principal`] (any user of a tenant), [`Admin`], [`Operator`] (the platform
//! operator) and [`Authed`] (a principal with the request's first read, loaded in the same
//! round trip).
//!
//! Credentials are JWTs ([`jwt`]: algorithm pinned by configuration), API keys
//! ([`api_key`]) and the operator token. The [`Authenticator`] holds the store's
//! [`OperatorScope`]: only it looks credentials up, and the scope of every request is the
//! one the store issues for the user the credential names
//! ([`PrincipalRecord::active_scope`]). Every request re-reads that user and their tenant:
//! a deleted user, or a user or tenant that is no longer active, is refused at once,
//! whatever the token says.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use switchyard_core::model::{Tenant, TenantStatus, User, UserStatus};
use switchyard_core::{Role, TenantId, UserId};
use switchyard_store::{
    FirstRead, FirstReadResult, LoginRecord, OperatorScope, PrincipalRecord, StoreError,
    StoreResult, TenantScope, TokenClaim,
};
use tracing::Instrument as _;

use crate::app::AppState;
use crate::error::ApiError;

pub mod api_key;
mod authed;
pub mod jwt;
pub mod password;

pub use api_key::{API_KEY_MARKER, api_key_hash, api_key_tenant, new_api_key};
pub use authed::{Authed, AuthedRead};
pub use jwt::JwtKeys;
pub use password::{LoginLimiter, Refusal, hash_password, verify_password};

/// What authenticates requests: the operator's proof (the only way to look credentials up
/// and have scopes issued), the operator token, the single-tenant mode's default tenant,
/// and the lockout after failed logins.
pub struct Authenticator {
    operator: OperatorScope,
    operator_token_hash: Option<Vec<u8>>,
    default_tenant: Option<TenantId>,
    logins: LoginLimiter,
    /// One slot per core for password checks.
    password_checks: Arc<tokio::sync::Semaphore>,
}

/// How long a login waits for a password check slot before it is refused.
const PASSWORD_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("operator_token", &self.operator_token_hash.is_some())
            .field("default_tenant", &self.default_tenant)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Authenticates with the store's operator proof; `operator_token` is the operator's
    /// bearer token, if one is configured; `default_tenant` the tenant of tokens without
    /// one (the single-tenant mode).
    pub fn new(
        operator: OperatorScope,
        operator_token: Option<&str>,
        default_tenant: Option<TenantId>,
        login_attempts_per_address: usize,
    ) -> Self {
        Self {
            operator,
            operator_token_hash: operator_token.map(|t| Sha256::digest(t.as_bytes()).to_vec()),
            default_tenant,
            logins: LoginLimiter::new(login_attempts_per_address),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            )),
        }
    }

    fn is_operator_token(&self, token: &str) -> bool {
        self.operator_token_hash
            .as_ref()
            .is_some_and(|expected| Sha256::digest(token.as_bytes()).as_slice() == expected)
    }
}

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

/// The platform operator, with the proof the operator's store calls take.
#[derive(Clone, Debug)]
pub struct Operator(pub OperatorScope);

/// The request's bearer token.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
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

/// The principal a token names, and `read` made in its scope: with a verified token in the
/// round trip that looks the principal up where the store can
/// ([`Store::find_principal_and_read`](switchyard_store::Store::find_principal_and_read)).
/// Every check of the principal comes first; the read's own failure (a conversation that is
/// not found, say) is the second value.
async fn authenticate(
    state: &AppState,
    credential: &Credential<'_>,
    read: Option<&FirstRead>,
) -> Result<(Principal, Option<StoreResult<FirstReadResult>>), ApiError> {
    let span = tracing::debug_span!("authenticate", tenant.id = tracing::field::Empty);
    let outcome = look_up(state, credential, read)
        .instrument(span.clone())
        .await;
    if let Ok((principal, _)) = &outcome {
        let tenant = principal.tenant.id;
        span.record("tenant.id", tracing::field::display(tenant));
        // The request's own span (the one current here) names its tenant and user.
        let request = tracing::Span::current();
        request.record("tenant.id", tracing::field::display(tenant));
        request.record("user.id", tracing::field::display(principal.user.id));
        crate::traces::note_tenant(&principal.tenant);
    }
    outcome
}

async fn look_up(
    state: &AppState,
    credential: &Credential<'_>,
    read: Option<&FirstRead>,
) -> Result<(Principal, Option<StoreResult<FirstReadResult>>), ApiError> {
    let auth = &state.auth;
    let Credential {
        token,
        address,
        claim: verified,
    } = *credential;
    // Whether the request was counted against its tenant's bucket before the database was
    // asked. Only a verified token's tenant is trusted for that: an API key's tenant part
    // is not verified until its hash is found, and counting on it would let anyone drain
    // another tenant's bucket with made-up keys.
    let mut counted = false;
    let mut done = None;
    let record: PrincipalRecord = if token.starts_with(API_KEY_MARKER) {
        // An address that sent many keys naming nothing costs no more database queries.
        refuse_key_guessers(state, address)?;
        let unknown = || {
            auth.logins.unknown_key(address);
            ApiError::unauthorized()
        };
        let tenant = api_key_tenant(token).ok_or_else(unknown)?;
        let found = match state
            .store
            .find_api_key(&auth.operator, tenant, &api_key_hash(token))
            .await
        {
            Ok(found) => found,
            Err(StoreError::NotFound) => return Err(unknown()),
            Err(e) => return Err(store_failure(e)),
        };
        if found.revoked {
            return Err(unknown());
        }
        found.principal
    } else {
        let Verified { claim, issued_ms } = match verified {
            Some(verified) => verified,
            None => token_claim(state, token)?,
        };
        counted = state
            .limits
            .admit_early(&state.shared, claim.tenant)
            .await?;
        let store = &state.store;
        let record = match read {
            Some(read) => {
                let (record, result) = store
                    .find_principal_and_read(&auth.operator, claim, read)
                    .await
                    .map_err(store_failure)?;
                done = result;
                record
            }
            None => store
                .find_principal(&auth.operator, claim)
                .await
                .map_err(store_failure)?,
        };
        // A token issued before the user's tokens were revoked (a password change, a
        // logout) is refused, to the millisecond.
        if record
            .tokens_valid_after
            .is_some_and(|after| issued_ms <= after.timestamp_millis())
        {
            return Err(ApiError::unauthorized());
        }
        record
    };
    let principal = admit(state, record, counted).await?;
    if let (Some(read), None) = (read, &done) {
        done = Some(read.run(state.store.as_ref(), &principal.scope).await);
    }
    Ok((principal, done))
}

fn refuse_key_guessers(state: &AppState, address: Option<IpAddr>) -> Result<(), ApiError> {
    match state.auth.logins.unknown_keys_for(address) {
        Some(seconds) => Err(ApiError::too_many_requests(
            "too many unknown API keys from this address; try again later",
            seconds,
        )),
        None => Ok(()),
    }
}

/// A bearer credential as it came: the token, the client's address, and a JWT's claim once
/// its signature is verified (so that it is verified once per request).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Credential<'a> {
    token: &'a str,
    address: Option<IpAddr>,
    claim: Option<Verified>,
}

/// A JWT whose signature and claims are verified: whom it names, and when it was issued.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Verified {
    claim: TokenClaim,
    /// Milliseconds since the epoch.
    issued_ms: i64,
}

impl<'a> Credential<'a> {
    /// A credential not checked yet.
    pub(crate) fn new(token: &'a str, address: Option<IpAddr>) -> Self {
        Self {
            token,
            address,
            claim: None,
        }
    }
}

/// What can be checked of a bearer token without the database — a JWT's signature and
/// claims, an API key's form (and its sender's record of unknown keys), the operator token —
/// so that a request without a credential worth looking up is refused before its body is
/// read.
pub(crate) fn precheck<'a>(
    state: &AppState,
    token: &'a str,
    address: Option<IpAddr>,
) -> Result<Credential<'a>, ApiError> {
    let mut credential = Credential::new(token, address);
    if token.starts_with(API_KEY_MARKER) {
        refuse_key_guessers(state, address)?;
        if api_key_tenant(token).is_none() {
            state.auth.logins.unknown_key(address);
            return Err(ApiError::unauthorized());
        }
    } else if !state.auth.is_operator_token(token) {
        credential.claim = Some(token_claim(state, token)?);
    }
    Ok(credential)
}

/// The client's address, where the server recorded it (in-process callers have none).
pub(crate) fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The tenant and user a JWT names, once its signature and claims are verified.
fn token_claim(state: &AppState, token: &str) -> Result<Verified, ApiError> {
    let claims = state.jwt.verify(token).ok_or_else(ApiError::unauthorized)?;
    let user: UserId = claims.sub.parse().map_err(|_| ApiError::unauthorized())?;
    let tenant: TenantId = match (&claims.tid, state.auth.default_tenant) {
        (Some(tid), _) => tid.parse().map_err(|_| ApiError::unauthorized())?,
        // Single-tenant compatibility: a token without a tenant acts in the default one.
        (None, Some(default)) => default,
        (None, None) => return Err(ApiError::unauthorized()),
    };
    Ok(Verified {
        claim: TokenClaim { tenant, user },
        issued_ms: claims.issued_ms(),
    })
}

/// The principal a looked-up record may act as: an active user of an active tenant, within
/// the tenant's rate limit.
async fn admit(
    state: &AppState,
    record: PrincipalRecord,
    counted: bool,
) -> Result<Principal, ApiError> {
    if record.tenant.status != TenantStatus::Active {
        return Err(ApiError::forbidden("the tenant is suspended"));
    }
    if record.user.status != UserStatus::Active {
        return Err(ApiError::forbidden("the user is disabled"));
    }
    crate::metrics::tenant_request(&record.tenant.slug);
    if counted {
        state.limits.refresh(&state.config, &record.tenant);
    } else if let Err(limited) = state
        .limits
        .admit(&state.config, &state.shared, &record.tenant)
        .await
    {
        crate::metrics::limited(&record.tenant.slug, "rate");
        return Err(limited);
    }
    let scope = record
        .active_scope()
        .ok_or_else(|| ApiError::forbidden("the user or tenant is not active"))?;
    Ok(Principal {
        scope,
        user: record.user,
        tenant: record.tenant,
    })
}

/// Checks a login: the user of the tenant with this e-mail address and password, active.
/// A wrong tenant, e-mail or password all fail the same way, after the same work; after
/// [`LoginLimiter::MAX_FAILURES`] failures within [`LoginLimiter::WINDOW`] the pair is
/// refused until the window has passed.
pub async fn login(
    state: &AppState,
    tenant_slug: &str,
    email: &str,
    password: String,
    address: Option<std::net::IpAddr>,
) -> Result<PrincipalRecord, ApiError> {
    let auth = &state.auth;
    // The replicas' shared counts decide when there are some; this process counts too, and
    // decides alone while Redis does not answer.
    let local = auth.logins.attempt(tenant_slug, email, address);
    let shared = state
        .shared
        .login_attempt(
            tenant_slug,
            email,
            address,
            state.config.login_attempts_per_address,
        )
        .await;
    match shared.unwrap_or(local) {
        Ok(()) => {}
        Err(Refusal::Account(seconds)) => {
            return Err(ApiError::too_many_requests(
                "too many failed logins; try again later",
                seconds,
            ));
        }
        Err(Refusal::Address(seconds)) => {
            return Err(ApiError::too_many_requests(
                "too many logins from this address; try again later",
                seconds,
            ));
        }
    }
    // At most one password check per core at once (each takes 19 MiB and a core for a
    // while): a flood of logins waits here briefly, then is refused, instead of taking every
    // blocking thread and the memory with it.
    let Ok(Ok(_slot)) = tokio::time::timeout(
        PASSWORD_CHECK_WAIT,
        auth.password_checks.clone().acquire_owned(),
    )
    .await
    else {
        return Err(ApiError::too_many_requests(
            "too many logins at once; try again in a moment",
            1,
        ));
    };
    let found: Option<LoginRecord> = match state
        .store
        .find_login(&auth.operator, tenant_slug, email)
        .await
    {
        Ok(found) => Some(found),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let hash = found.as_ref().and_then(|f| f.password_hash.clone());
    // argon2 is slow on purpose; keep it off the request threads. The check runs (against
    // a dummy hash) even when there is no such user, so that all failures take as long.
    let matches = tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| ApiError::internal(format!("password check: {e}")))?;
    let found = match found {
        Some(f) if matches => f.principal,
        _ => {
            auth.logins.failed(tenant_slug, email, address);
            state.shared.login_failed(tenant_slug, email, address).await;
            return Err(ApiError::bad_login());
        }
    };
    // The password was right: tell the user why they may not in, as every request would.
    if found.tenant.status != TenantStatus::Active {
        return Err(ApiError::forbidden("the tenant is suspended"));
    }
    if found.user.status != UserStatus::Active {
        return Err(ApiError::forbidden("the user is disabled"));
    }
    auth.logins.succeeded(tenant_slug, email);
    state.shared.login_succeeded(tenant_slug, email).await;
    Ok(found)
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
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let credential = Credential::new(token, peer(&parts.extensions));
        let (principal, _) = authenticate(state, &credential, None).await?;
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
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        if state.auth.is_operator_token(token) {
            tracing::Span::current().record("user.id", "operator");
            return Ok(Operator(state.auth.operator.clone()));
        }
        // A valid user of some tenant is known but not allowed; anything else is unknown.
        match Principal::from_request_parts(parts, state).await {
            Ok(_) => Err(ApiError::forbidden("this needs the platform operator")),
            Err(e) if e.status.is_server_error() => Err(e),
            Err(_) => Err(ApiError::unauthorized()),
        }
    }
}

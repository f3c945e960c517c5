//! JWTs: issued with the configured key (HS256 with a secret, or EdDSA/RS256 with a key
//! pair), verified with the algorithm pinned by configuration — never the token's.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use switchyard_core::{TenantId, UserId};
use switchyard_store::{OperatorScope, Store};

use crate::config::{Config, ConfigError, JwtAlgorithm};
use crate::error::ApiError;

/// The claims of a token Switchyard issues.
#[derive(Debug, Serialize)]
struct IssuedClaims<'a> {
    sub: String,
    tid: String,
    /// In seconds with milliseconds (a JSON number may have a fraction): a revocation
    /// refuses the tokens issued before it, to the millisecond.
    iat: f64,
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
    /// When it was issued, in seconds (ours carry milliseconds as a fraction).
    pub iat: f64,
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
    pub async fn load(
        config: &Config,
        store: &dyn Store,
        operator: &OperatorScope,
    ) -> Result<Self, ConfigError> {
        let (algorithm, encoding, decoding) = match config.jwt_algorithm {
            JwtAlgorithm::HS256 => {
                let secret = match &config.jwt_secret {
                    Some(s) => s.expose().to_string(),
                    None => store
                        .server_secret(operator, GENERATED_SECRET, &|| {
                            hex::encode(rand::random::<[u8; 32]>())
                        })
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
        let now_ms = chrono::Utc::now().timestamp_millis();
        let now = now_ms.div_euclid(1000);
        let claims = IssuedClaims {
            sub: user.to_string(),
            tid: tenant.to_string(),
            // Exact: milliseconds stay below 2^53 until the year 285,000.
            iat: now_ms as f64 / 1000.0,
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

impl Claims {
    /// When the token was issued, in milliseconds since the epoch.
    pub fn issued_ms(&self) -> i64 {
        // A float to integer cast saturates; a NaN is 0 (issued at the epoch: revoked by any
        // revocation).
        (self.iat * 1000.0).round() as i64
    }
}

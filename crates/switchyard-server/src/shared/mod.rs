//! What the replicas share through Redis when `SWITCHYARD_REDIS_URL` is set
//! (docs/scaling.md, *What replicas share*): each tenant's request bucket, login failures
//! and attempts, and the agents' circuits. Unset, each process keeps its own, as it always
//! does when Redis cannot be reached.
//!
//! Every command has a short time limit (`SWITCHYARD_REDIS_TIMEOUT_MS`). One that fails or
//! runs out of time marks Redis down: from then on the replica uses its own limits at once,
//! without asking Redis, logs a warning and counts each such fallback
//! (`switchyard_redis_fallbacks_total`, and `switchyard_redis_up` 0) while a background task
//! asks Redis every half second; when it answers, shared limits resume.
//!
//! Keys: `switchyard:t:<tenant id>:…` for a tenant's bucket and circuits,
//! `switchyard:t:<tenant slug>:login:<hash of the e-mail>` for an account's login failures,
//! `switchyard:addr:<address>:…` for an address's logins. Nothing of one tenant is kept under
//! a key that names another, and no e-mail address or message is stored.

mod circuits;
mod scripts;

pub(crate) use circuits::Outcome;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation};
use sha2::{Digest, Sha256};
use switchyard_agents::SharedCircuit;
use switchyard_core::{AgentId, TenantId};

use crate::auth::{LoginLimiter, Refusal};

/// How often a replica that lost Redis asks again.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Redis for the replicas, or nothing.
#[derive(Debug, Default)]
pub struct Shared {
    redis: Option<Redis>,
}

struct Scripts {
    rate: Script,
    login_attempt: Script,
    login_failed: Script,
    circuit_failed: Script,
    circuits: Script,
}

struct Redis {
    conn: ConnectionManager,
    timeout: Duration,
    up: Arc<AtomicBool>,
    scripts: Scripts,
    /// Where it is, without a password, for the logs.
    shown: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("url", &self.shown).finish()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A unique member for a sliding window's event.
fn member() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn email_key(tenant_slug: &str, email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    format!(
        "switchyard:t:{tenant_slug}:login:{}",
        hex::encode(&digest[..16])
    )
}

fn address_key(address: Option<IpAddr>, what: &str) -> String {
    match address {
        Some(ip) => format!("switchyard:addr:{ip}:{what}"),
        None => format!("switchyard:addr:none:{what}"),
    }
}

impl Shared {
    /// Nothing shared: every limit in this process.
    pub fn local() -> Self {
        Self::default()
    }

    /// Redis at `url` (not connected yet: the first command connects), each command given
    /// `timeout`. Asks it once now, and says at start whether it answered.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Self, String> {
        let shown = crate::config::redacted_url(url);
        let client = redis::Client::open(url).map_err(|e| format!("redis_url {shown}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(250))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis_url {shown}: {e}"))?;
        let redis = Redis {
            conn,
            timeout,
            up: Arc::new(AtomicBool::new(true)),
            scripts: Scripts {
                rate: Script::new(scripts::RATE),
                login_attempt: Script::new(&scripts::login_attempt()),
                login_failed: Script::new(&scripts::login_failed()),
                circuit_failed: Script::new(&scripts::circuit_failed()),
                circuits: Script::new(scripts::CIRCUITS),
            },
            shown,
        };
        if redis.ping().await {
            crate::metrics::redis_up(true);
            tracing::info!(
                redis = %redis.shown,
                "rate limits, login failures and circuits are shared through Redis"
            );
        } else {
            redis.down("connect", "no answer");
        }
        Ok(Self { redis: Some(redis) })
    }

    /// Whether Redis is configured (answering or not).
    pub fn is_configured(&self) -> bool {
        self.redis.is_some()
    }

    /// Whether Redis is configured and answering now.
    pub fn is_up(&self) -> bool {
        self.redis
            .as_ref()
            .is_some_and(|r| r.up.load(Ordering::Relaxed))
    }

    /// Counts one request of the tenant against its shared bucket of `rate` a second and
    /// `burst`: `Some(Ok)` admitted, `Some(Err(wait))` refused, `None` not shared (no
    /// Redis, or it did not answer: the caller's own bucket decides).
    pub async fn rate(
        &self,
        tenant: TenantId,
        (rate, burst): (u32, u32),
    ) -> Option<Result<(), Duration>> {
        let redis = self.redis.as_ref()?;
        let interval_us = 1_000_000 / u64::from(rate.max(1));
        let mut invocation = redis
            .scripts
            .rate
            .key(format!("switchyard:t:{tenant}:rate"));
        invocation.arg(interval_us).arg(burst.max(1));
        let wait_us: u64 = redis.run("rate", &invocation).await?;
        Some(match wait_us {
            0 => Ok(()),
            us => Err(Duration::from_micros(us)),
        })
    }

    /// Counts a login attempt across the replicas, as [`LoginLimiter::attempt`] does in
    /// one process; `None` when not shared.
    pub async fn login_attempt(
        &self,
        tenant_slug: &str,
        email: &str,
        address: Option<IpAddr>,
        attempts_per_address: usize,
    ) -> Option<Result<(), Refusal>> {
        let redis = self.redis.as_ref()?;
        let mut invocation = redis
            .scripts
            .login_attempt
            .key(email_key(tenant_slug, email));
        invocation
            .key(address_key(address, "login-failures"))
            .key(address_key(address, "login-attempts"))
            .arg(ms(LoginLimiter::WINDOW))
            .arg(LoginLimiter::MAX_FAILURES)
            .arg(LoginLimiter::ADDRESS_FAILURES)
            .arg(attempts_per_address.max(1))
            .arg(member())
            .arg(if address.is_some() { "1" } else { "0" });
        let (which, seconds): (u8, u64) = redis.run("login", &invocation).await?;
        Some(match which {
            0 => Ok(()),
            1 => Err(Refusal::Account(seconds)),
            _ => Err(Refusal::Address(seconds)),
        })
    }

    /// Records a failed login for every replica to see.
    pub async fn login_failed(&self, tenant_slug: &str, email: &str, address: Option<IpAddr>) {
        let Some(redis) = self.redis.as_ref() else {
            return;
        };
        let mut invocation = redis
            .scripts
            .login_failed
            .key(email_key(tenant_slug, email));
        invocation
            .key(address_key(address, "login-failures"))
            .arg(ms(LoginLimiter::WINDOW))
            .arg(member())
            .arg(if address.is_some() { "1" } else { "0" });
        let _: Option<u8> = redis.run("login", &invocation).await;
    }

    /// Forgets an account's failures after a successful login.
    pub async fn login_succeeded(&self, tenant_slug: &str, email: &str) {
        let Some(redis) = self.redis.as_ref() else {
            return;
        };
        let mut cmd = redis::cmd("DEL");
        cmd.arg(email_key(tenant_slug, email));
        let _: Option<u64> = redis.command("login", &cmd).await;
    }

    /// The tenant's circuits as the replicas share them: `None` when not shared.
    pub async fn circuits(&self, tenant: TenantId) -> Option<Vec<SharedCircuit>> {
        let redis = self.redis.as_ref()?;
        let invocation = redis.scripts.circuits.key(circuits_key(tenant));
        let fields: Vec<String> = redis.run("circuits", &invocation).await?;
        Some(parse_circuits(&fields))
    }

    /// Counts a failed call or check of the tenant's agent on every replica: the circuit
    /// opens once the failures reach `threshold` (at once when `opens`), for `open_for`.
    /// Returns the circuit as it now stands; `None` when not shared.
    pub async fn circuit_failed(
        &self,
        tenant: TenantId,
        agent: AgentId,
        threshold: u32,
        open_for: Duration,
        opens: bool,
    ) -> Option<SharedCircuit> {
        let redis = self.redis.as_ref()?;
        let mut invocation = redis.scripts.circuit_failed.key(circuits_key(tenant));
        invocation
            .arg(agent.to_string())
            .arg(threshold.max(1))
            .arg(ms(open_for))
            .arg(if opens { "1" } else { "0" });
        let (failures, open_until, now): (u32, String, String) =
            redis.run("circuits", &invocation).await?;
        Some(SharedCircuit {
            agent,
            failures,
            open_for: open_for_from(&open_until, &now),
        })
    }

    /// Closes the tenant's agent's circuit on every replica (a call or check succeeded, or
    /// the agent changed or is gone).
    pub async fn circuit_closed(&self, tenant: TenantId, agent: AgentId) {
        let Some(redis) = self.redis.as_ref() else {
            return;
        };
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(circuits_key(tenant))
            .arg(format!("{agent}:f"))
            .arg(format!("{agent}:o"));
        let _: Option<u64> = redis.command("circuits", &cmd).await;
    }
}

fn circuits_key(tenant: TenantId) -> String {
    format!("switchyard:t:{tenant}:circuits")
}

/// How long from now a circuit stays open, from its `open until` and Redis's time (both
/// ms): the replicas' clocks never enter into it.
fn open_for_from(open_until: &str, now: &str) -> Option<Duration> {
    let until: u64 = open_until.parse().ok()?;
    let now: u64 = now.parse().ok()?;
    (until > 0).then(|| Duration::from_millis(until.saturating_sub(now)))
}

fn parse_circuits(fields: &[String]) -> Vec<SharedCircuit> {
    let Some((now, pairs)) = fields.split_first() else {
        return Vec::new();
    };
    let mut circuits: Vec<SharedCircuit> = Vec::new();
    for pair in pairs.chunks_exact(2) {
        let Some((agent, which)) = pair[0].rsplit_once(':') else {
            continue;
        };
        let Ok(agent) = agent.parse::<AgentId>() else {
            continue;
        };
        let index = match circuits.iter().position(|c| c.agent == agent) {
            Some(i) => i,
            None => {
                circuits.push(SharedCircuit {
                    agent,
                    failures: 0,
                    open_for: None,
                });
                circuits.len() - 1
            }
        };
        match which {
            "f" => circuits[index].failures = pair[1].parse().unwrap_or(0),
            "o" => circuits[index].open_for = open_for_from(&pair[1], now),
            _ => {}
        }
    }
    circuits
}

impl Redis {
    async fn ping(&self) -> bool {
        ping(self.conn.clone(), self.timeout).await
    }

    async fn run<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        self.guarded(operation, invocation.invoke_async(&mut conn))
            .await
    }

    async fn command<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Option<T> {
        let mut conn = self.conn.clone();
        self.guarded(operation, cmd.query_async(&mut conn)).await
    }

    /// Runs `work` within the time limit, unless Redis is down already: `None` (and Redis
    /// marked down) when it cannot answer.
    async fn guarded<T>(
        &self,
        operation: &'static str,
        work: impl Future<Output = redis::RedisResult<T>>,
    ) -> Option<T> {
        if !self.up.load(Ordering::Relaxed) {
            crate::metrics::redis_fallback(operation);
            return None;
        }
        match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                self.down(operation, &e.to_string());
                None
            }
            Err(_) => {
                self.down(operation, "no answer in time");
                None
            }
        }
    }

    /// Marks Redis down (once) and asks it again in the background until it answers.
    fn down(&self, operation: &'static str, why: &str) {
        crate::metrics::redis_fallback(operation);
        if !self.up.swap(false, Ordering::Relaxed) {
            return;
        }
        crate::metrics::redis_up(false);
        tracing::warn!(
            redis = %self.shown,
            error = why,
            "Redis does not answer: this replica keeps its own rate limits, login failures \
             and circuits until it does"
        );
        let (conn, up, timeout, shown) = (
            self.conn.clone(),
            self.up.clone(),
            self.timeout.max(Duration::from_millis(250)),
            self.shown.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if ping(conn.clone(), timeout).await {
                    up.store(true, Ordering::Relaxed);
                    crate::metrics::redis_up(true);
                    tracing::info!(redis = %shown, "Redis answers again: limits are shared again");
                    return;
                }
            }
        });
    }
}

/// Whether Redis answers a `PING` within `timeout`.
async fn ping(mut conn: ConnectionManager, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut conn)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_circuits_are_read_per_agent_against_redis_time() {
        let a = AgentId::new();
        let b = AgentId::new();
        let fields: Vec<String> = [
            "1000000".to_string(),
            format!("{a}:f"),
            "3".into(),
            format!("{b}:f"),
            "5".into(),
            format!("{b}:o"),
            "1030000".into(),
        ]
        .into();
        let circuits = parse_circuits(&fields);
        assert_eq!(circuits.len(), 2);
        let of = |id| circuits.iter().find(|c| c.agent == id).copied();
        assert_eq!(of(a).map(|c| (c.failures, c.open_for)), Some((3, None)));
        assert_eq!(
            of(b).map(|c| (c.failures, c.open_for)),
            Some((5, Some(Duration::from_secs(30))))
        );
        // Its time is up: half-open.
        assert_eq!(
            open_for_from("999000", "1000000"),
            Some(Duration::ZERO),
            "an expired open time is a half-open circuit"
        );
        assert_eq!(open_for_from("0", "1000000"), None);
    }

    #[test]
    fn keys_name_the_tenant_and_never_the_email_in_clear() {
        let key = email_key("acme", "a@example.com");
        assert!(key.starts_with("switchyard:t:acme:login:"));
        assert!(!key.contains("example"));
        assert_ne!(key, email_key("globex", "a@example.com"));
    }
}

//! Passwords (argon2id) and the lockout after failed logins.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::ApiError;

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

/// Recent events per key within a sliding window, bounded in keys: when full, keys whose
/// events have all expired go first, then the tenth of the keys whose last event is oldest
/// — never every key at once, so a flood of made-up keys cannot wipe a real lockout.
#[derive(Debug)]
struct Windows<K> {
    map: HashMap<K, VecDeque<Instant>>,
    window: Duration,
    max_events: usize,
    max_keys: usize,
}

impl<K: std::hash::Hash + Eq + Clone> Windows<K> {
    fn new(window: Duration, max_events: usize, max_keys: usize) -> Self {
        Self {
            map: HashMap::new(),
            window,
            max_events,
            max_keys,
        }
    }

    /// If the key has `max_events` within the window, the seconds until it has fewer.
    fn full_for(&mut self, key: &K, now: Instant) -> Option<u64> {
        let events = self.map.get_mut(key)?;
        while events
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            events.pop_front();
        }
        if events.len() >= self.max_events {
            let oldest = *events.front()?;
            Some((self.window - now.duration_since(oldest)).as_secs() + 1)
        } else {
            None
        }
    }

    fn push(&mut self, key: K, now: Instant) {
        if self.map.len() >= self.max_keys && !self.map.contains_key(&key) {
            self.make_room(now);
        }
        let events = self.map.entry(key).or_default();
        events.push_back(now);
        while events.len() > self.max_events {
            events.pop_front();
        }
    }

    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.map
            .retain(|_, v| v.back().is_some_and(|t| now.duration_since(*t) < window));
        if self.map.len() < self.max_keys {
            return;
        }
        let mut last: Vec<(Instant, K)> = self
            .map
            .iter()
            .filter_map(|(k, v)| Some((*v.back()?, k.clone())))
            .collect();
        let drop = (self.max_keys / 10).max(1);
        last.select_nth_unstable_by_key(drop - 1, |(t, _)| *t);
        for (_, key) in last.into_iter().take(drop) {
            self.map.remove(&key);
        }
    }

    fn remove(&mut self, key: &K) {
        self.map.remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Who may try a login now (docs/operations.md, *Security*): per tenant and e-mail, at most
/// [`MAX_FAILURES`](Self::MAX_FAILURES) failures within [`WINDOW`](Self::WINDOW); per client
/// address, at most a set number of attempts a minute and
/// [`ADDRESS_FAILURES`](Self::ADDRESS_FAILURES) failures within the window. Over any of them,
/// `429` with `Retry-After`, before any password is checked. (Per server process: each
/// replica counts its own.)
#[derive(Debug)]
pub struct LoginLimiter {
    accounts: Mutex<Windows<(String, String)>>,
    address_failures: Mutex<Windows<IpAddr>>,
    address_attempts: Mutex<Windows<IpAddr>>,
    unknown_keys: Mutex<Windows<IpAddr>>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(Self::ADDRESS_ATTEMPTS)
    }
}

impl LoginLimiter {
    /// A limiter letting each client address make `address_attempts` logins a minute.
    pub fn new(address_attempts: usize) -> Self {
        Self {
            accounts: Mutex::new(Windows::new(
                Self::WINDOW,
                Self::MAX_FAILURES,
                Self::MAX_KEYS,
            )),
            address_failures: Mutex::new(Windows::new(
                Self::WINDOW,
                Self::ADDRESS_FAILURES,
                Self::MAX_KEYS,
            )),
            address_attempts: Mutex::new(Windows::new(
                Duration::from_secs(60),
                address_attempts.max(1),
                Self::MAX_KEYS,
            )),
            unknown_keys: Mutex::new(Windows::new(
                Duration::from_secs(60),
                Self::UNKNOWN_KEYS,
                Self::MAX_KEYS,
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a login is refused before its password is checked, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures for this tenant and e-mail.
    Account(u64),
    /// Too many failures, or attempts, from this address.
    Address(u64),
}

impl LoginLimiter {
    /// Failures allowed per tenant and e-mail within the window.
    pub const MAX_FAILURES: usize = 10;
    /// Failures allowed per client address within the window.
    pub const ADDRESS_FAILURES: usize = 50;
    /// Attempts allowed per client address within a minute, by default
    /// (`SWITCHYARD_LOGIN_ATTEMPTS_PER_ADDRESS`): about a tenth of what two cores can check,
    /// so one address cannot take the password checks, while a script signing in its users
    /// from one machine is not held back.
    pub const ADDRESS_ATTEMPTS: usize = 600;
    /// API keys that name nothing allowed per client address within a minute; over it,
    /// further keys from that address are refused without a database query.
    pub const UNKNOWN_KEYS: usize = 20;
    /// The window.
    pub const WINDOW: Duration = Duration::from_secs(300);
    /// Keys remembered per kind (they come from clients); see [`Windows`].
    const MAX_KEYS: usize = 100_000;

    /// Counts an attempt from `address` and says whether it may go on.
    pub fn attempt(
        &self,
        tenant: &str,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let now = Instant::now();
        if let Some(ip) = address {
            if let Some(s) = lock(&self.address_failures).full_for(&ip, now) {
                return Err(Refusal::Address(s));
            }
            let mut attempts = lock(&self.address_attempts);
            if let Some(s) = attempts.full_for(&ip, now) {
                return Err(Refusal::Address(s));
            }
            attempts.push(ip, now);
        }
        let key = (tenant.to_owned(), email.to_owned());
        match lock(&self.accounts).full_for(&key, now) {
            Some(s) => Err(Refusal::Account(s)),
            None => Ok(()),
        }
    }

    /// If the pair is locked out, the seconds until it is not.
    pub fn locked_for(&self, tenant: &str, email: &str) -> Option<u64> {
        let key = (tenant.to_owned(), email.to_owned());
        lock(&self.accounts).full_for(&key, Instant::now())
    }

    /// Records a failed login.
    pub fn failed(&self, tenant: &str, email: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        lock(&self.accounts).push((tenant.to_owned(), email.to_owned()), now);
        if let Some(ip) = address {
            lock(&self.address_failures).push(ip, now);
        }
    }

    /// If `address` sent too many unknown API keys lately, the seconds until it may again.
    pub fn unknown_keys_for(&self, address: Option<IpAddr>) -> Option<u64> {
        lock(&self.unknown_keys).full_for(&address?, Instant::now())
    }

    /// Records an API key that named nothing (or a revoked one).
    pub fn unknown_key(&self, address: Option<IpAddr>) {
        if let Some(ip) = address {
            lock(&self.unknown_keys).push(ip, Instant::now());
        }
    }

    /// Forgets the failures of a pair after a successful login.
    pub fn succeeded(&self, tenant: &str, email: &str) {
        lock(&self.accounts).remove(&(tenant.to_owned(), email.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            l.failed("acme", "a@x", None);
        }
        assert_eq!(l.locked_for("acme", "a@x"), None);
        l.failed("acme", "a@x", None);
        let secs = l.locked_for("acme", "a@x").unwrap();
        assert!((1..=301).contains(&secs));
        assert!(matches!(
            l.attempt("acme", "a@x", None),
            Err(Refusal::Account(_))
        ));
        assert_eq!(l.locked_for("acme", "b@x"), None, "per e-mail");
        assert_eq!(l.locked_for("globex", "a@x"), None, "per tenant");
        l.succeeded("acme", "a@x");
        assert_eq!(l.locked_for("acme", "a@x"), None);
    }

    #[test]
    fn an_address_is_limited_in_attempts_and_failures_across_accounts() {
        let l = LoginLimiter::default();
        let (one, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for n in 0..LoginLimiter::ADDRESS_ATTEMPTS {
            assert_eq!(l.attempt("acme", &format!("u{n}@x"), Some(one)), Ok(()));
        }
        assert!(matches!(
            l.attempt("acme", "new@x", Some(one)),
            Err(Refusal::Address(s)) if (1..=61).contains(&s)
        ));
        assert_eq!(
            l.attempt("acme", "new@x", Some(other)),
            Ok(()),
            "per address"
        );
        // Failures spread over many accounts still lock the address.
        let third: IpAddr = "10.0.0.3".parse().unwrap();
        for n in 0..LoginLimiter::ADDRESS_FAILURES {
            l.failed("acme", &format!("v{n}@x"), Some(third));
        }
        assert!(matches!(
            l.attempt("acme", "w@x", Some(third)),
            Err(Refusal::Address(_))
        ));
    }

    #[test]
    fn a_full_window_forgets_the_oldest_tenth_not_everything() {
        let mut w: Windows<u32> = Windows::new(Duration::from_secs(300), 3, 100);
        let start = Instant::now();
        for k in 0..100 {
            w.push(k, start + Duration::from_millis(u64::from(k)));
        }
        // A key locked out early on.
        for _ in 0..2 {
            w.push(99, start + Duration::from_millis(200));
        }
        assert!(
            w.full_for(&99, start + Duration::from_millis(300))
                .is_some()
        );
        w.push(1000, start + Duration::from_millis(400));
        assert_eq!(w.len(), 91, "a tenth made room");
        assert!(!w.map.contains_key(&0), "the oldest went");
        assert!(
            w.full_for(&99, start + Duration::from_millis(500))
                .is_some(),
            "a recent lockout stays"
        );
    }
}

//! Passwords (argon2id) and the lockout after failed logins.

use std::collections::{HashMap, VecDeque};
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

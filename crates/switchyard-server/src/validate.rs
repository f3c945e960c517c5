//! Input rules shared by the API and the command line.

/// Whether `s` is a tenant slug: 2 to 63 of `a-z`, `0-9`, `-`, starting with a letter or
/// digit, and not the form of an id (the tenant routes and commands take either).
pub fn is_slug(s: &str) -> bool {
    (2..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0] != b'-'
        // A slug that reads as an id would be taken for one where either is accepted.
        && uuid::Uuid::try_parse(s).is_err()
}

/// The e-mail address, trimmed and lower-cased, if it looks like one (one `@`, something
/// on each side, no spaces, at most 254 characters).
pub fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| s.to_lowercase())
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (argon2 works on all of it).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a password is refused, if it is.
pub fn password_problem(p: &str) -> Option<String> {
    let n = p.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Some(format!(
            "a password has at least {MIN_PASSWORD_CHARS} characters"
        ))
    } else if n > MAX_PASSWORD_CHARS {
        Some(format!(
            "a password has at most {MAX_PASSWORD_CHARS} characters"
        ))
    } else {
        None
    }
}

/// Why a short display text (a name) is refused, if it is: empty, too long, or with
/// control characters.
pub fn name_problem(field: &str, s: &str, max: usize) -> Option<String> {
    if s.trim().is_empty() {
        Some(format!("`{field}` must not be empty"))
    } else if s.chars().count() > max {
        Some(format!("`{field}` has at most {max} characters"))
    } else if s.chars().any(char::is_control) {
        Some(format!("`{field}` must not contain control characters"))
    } else {
        None
    }
}

/// What is wrong with an agent's fields for `tenant`, as the agent routes check them (names,
/// lists, the config against its kind, the API key variables granted), if anything.
pub fn agent_problem(
    config: &crate::Config,
    tenant: &switchyard_core::model::Tenant,
    fields: &switchyard_core::model::AgentFields,
) -> Option<String> {
    crate::routes::agents::check_fields(&config.key_envs_for(tenant), fields)
        .err()
        .map(|e| e.detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["ab", "acme", "a-1", "9lives", &"a".repeat(63)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in [
            "a",
            "-ab",
            "Acme",
            "ac me",
            "ac_me",
            "",
            &"a".repeat(64),
            // The forms of an id: a slug must not be taken for another tenant's id.
            "01234567-89ab-cdef-0123-456789abcdef",
            "0123456789abcdef0123456789abcdef",
            "é-ab",
        ] {
            assert!(!is_slug(bad), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Alice@Example.TEST ").as_deref(),
            Some("alice@example.test")
        );
        for bad in ["alice", "@x", "a@", "a@b@c", "a b@c", ""] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password_problem("short").is_some());
        assert!(password_problem("eleven char").is_some(), "11 is one short");
        assert!(password_problem("twelve chars").is_none());
        // Characters, not bytes: twelve accented letters pass, eleven do not.
        assert!(password_problem(&"é".repeat(12)).is_none());
        assert!(password_problem(&"é".repeat(11)).is_some());
        assert!(password_problem(&"x".repeat(2000)).is_some());
    }
}

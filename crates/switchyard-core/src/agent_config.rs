//! Each agent kind's settings (`agents.config`), parsed and checked when an agent is
//! created or changed, so that a bad configuration is refused at once rather than failing
//! on the first chat.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::model::AgentKind;

/// The most an agent may take to answer, whatever it asks for.
pub const MAX_TIMEOUT_MS: u64 = 300_000;
/// The default time an agent may take.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// What API answers show instead of a secret.
pub const REDACTED: &str = "***";

/// `echo`: answers a template with `{agent}` and `{message}` filled in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchoConfig {
    /// The answer's template (default `"{agent}: {message}"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The shortest interval between an agent's health checks, in seconds.
pub const MIN_CHECK_INTERVAL_S: u64 = 1;
/// The longest: a day.
pub const MAX_CHECK_INTERVAL_S: u64 = 86_400;

/// An active health check (docs/routing.md): `GET` of `path` on the agent's host every
/// `interval_s` seconds, off the request path; a failing check opens the agent's circuit, a
/// passing one closes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// An absolute path on the agent's scheme, host and port (`/health`), with an optional
    /// query.
    pub path: String,
    /// Seconds between checks, 1 to 86,400.
    #[serde(deserialize_with = "whole_seconds")]
    pub interval_s: u64,
}

/// A whole number of seconds, or an error that names the field.
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    value.as_u64().ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`health_check.interval_s` must be a whole number of seconds, got {value}"
        ))
    })
}

impl HealthCheck {
    fn check(&self) -> Result<(), String> {
        let p = &self.path;
        if !p.starts_with('/') || p.starts_with("//") {
            return Err(format!(
                "`health_check.path` must be an absolute path such as \"/health\", got {p:?}"
            ));
        }
        if p.len() > 512 || !p.bytes().all(|b| b.is_ascii_graphic()) || p.contains('#') {
            return Err(
                "`health_check.path` must be at most 512 visible ASCII characters, without `#`"
                    .into(),
            );
        }
        if !(MIN_CHECK_INTERVAL_S..=MAX_CHECK_INTERVAL_S).contains(&self.interval_s) {
            return Err(format!(
                "`health_check.interval_s` must be between {MIN_CHECK_INTERVAL_S} and \
                 {MAX_CHECK_INTERVAL_S} seconds, got {}",
                self.interval_s
            ));
        }
        Ok(())
    }

    /// The URL checked: `path` on the scheme, host and port of `base`.
    pub fn url(&self, base: &str) -> Result<Url, String> {
        let base = Url::parse(base).map_err(|e| format!("bad url: {e}"))?;
        let url = base
            .join(&self.path)
            .map_err(|e| format!("bad health check path: {e}"))?;
        if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default()
        {
            return Err("the health check path leaves the agent's host".into());
        }
        Ok(url)
    }
}

/// `http`: an HTTP service that takes the turn as JSON and answers `{response}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where to `POST`.
    pub url: String,
    /// With a secret, requests are signed (HMAC-SHA256 of timestamp and body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// How long a call may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// An active health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// `openai`: an OpenAI-compatible chat-completions endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API's base URL (`…/v1`).
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The name of the environment variable holding the API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// How long a call may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// The most tokens of an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// An active health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

/// `a2a`: an Agent2Agent protocol agent (JSON-RPC).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct A2aConfig {
    /// The agent's JSON-RPC endpoint.
    pub url: String,
    /// How long a call may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Extra request headers (authentication, for instance).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Whether the agent streams (`message/stream`); taken from its Agent Card on import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
}

/// A parsed, checked agent configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentConfig {
    /// See [`EchoConfig`].
    Echo(EchoConfig),
    /// See [`HttpConfig`].
    Http(HttpConfig),
    /// See [`OpenAiConfig`].
    Openai(OpenAiConfig),
    /// See [`A2aConfig`].
    A2a(A2aConfig),
}

fn check_timeout(t: Option<u64>) -> Result<(), String> {
    match t {
        Some(ms) if ms == 0 || ms > MAX_TIMEOUT_MS => Err(format!(
            "`timeout_ms` must be between 1 and {MAX_TIMEOUT_MS}, got {ms}"
        )),
        _ => Ok(()),
    }
}

/// The IPv4 address inside a NAT64 address of the well-known prefix `64:ff9b::/96`, which a
/// NAT64 gateway turns into a call to that IPv4 address.
fn nat64_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d)
    })
}

/// Whether an address must never be called: link-local (which includes the cloud metadata
/// service at 169.254.169.254), another cloud's metadata address (100.100.100.200),
/// unspecified, multicast or broadcast — as IPv4, IPv4-mapped IPv6 or NAT64 (`64:ff9b::/96`).
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.octets() == [100, 100, 100, 200]
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| nat64_v4(v6)) {
                return is_forbidden_ip(IpAddr::V4(v4));
            }
            v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80
                // fd00:ec2::254, the IPv6 address of a cloud metadata service.
                || v6.segments() == [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254]
        }
    }
}

/// Whether an address is private or loopback (refused when the operator says so).
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| nat64_v4(v6)) {
                return is_private_ip(IpAddr::V4(v4));
            }
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

/// Host names that name a cloud metadata service.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata",
    "metadata.azure.internal",
];

/// Checks the name of an environment variable that holds an API key: `A-Z`, `0-9` and
/// `_`, and none of the server's own settings (`SWITCHYARD_…`), whose values — the JWT
/// secret, the operator token, database URLs — must never leave the server.
pub fn check_key_env(var: &str) -> Result<(), String> {
    if var.is_empty()
        || !var
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "`{var}` is not an environment variable name (A-Z, 0-9, _)"
        ));
    }
    if var.starts_with("SWITCHYARD_") {
        return Err(format!(
            "`{var}` is one of the server's own settings, not an API key"
        ));
    }
    Ok(())
}

/// Parses and checks an agent endpoint URL: `http` or `https`, a host, no credentials in
/// the URL, not a link-local or metadata address.
pub fn check_url(field: &str, text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{field}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{field}` must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{field}` must not carry credentials; use headers or a secret"
        ));
    }
    match url.host() {
        None => return Err(format!("`{field}` has no host")),
        Some(url::Host::Ipv4(ip)) if is_forbidden_ip(IpAddr::V4(ip)) => {
            return Err(format!(
                "`{field}` points at a link-local or metadata address"
            ));
        }
        Some(url::Host::Ipv6(ip)) if is_forbidden_ip(IpAddr::V6(ip)) => {
            return Err(format!(
                "`{field}` points at a link-local or metadata address"
            ));
        }
        Some(url::Host::Domain(d)) if METADATA_HOSTS.contains(&d.to_ascii_lowercase().as_str()) => {
            return Err(format!("`{field}` points at a metadata service"));
        }
        _ => {}
    }
    Ok(url)
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), String> {
    if headers.len() > 32 {
        return Err("at most 32 `headers`".into());
    }
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            return Err(format!("header name {name:?} is not valid"));
        }
        if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(format!(
                "header {name:?} has a control character in its value"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if [
            "host",
            "content-length",
            "content-type",
            "transfer-encoding",
            "connection",
        ]
        .contains(&lower.as_str())
            || lower.starts_with("x-switchyard-")
        {
            return Err(format!("header {name:?} is set by Switchyard itself"));
        }
    }
    Ok(())
}

impl AgentConfig {
    /// Parses `config` for `kind`, refusing unknown keys and values that cannot work.
    pub fn parse(kind: AgentKind, config: &serde_json::Value) -> Result<Self, String> {
        fn from<T: serde::de::DeserializeOwned>(
            kind: AgentKind,
            v: &serde_json::Value,
        ) -> Result<T, String> {
            serde_json::from_value(v.clone())
                .map_err(|e| format!("`config` for a {} agent: {e}", kind.as_str()))
        }
        let config = match kind {
            AgentKind::Echo => {
                let c: EchoConfig = from(kind, config)?;
                if c.template
                    .as_ref()
                    .is_some_and(|t| t.chars().count() > 4096)
                {
                    return Err("`template` has at most 4096 characters".into());
                }
                AgentConfig::Echo(c)
            }
            AgentKind::Http => {
                let c: HttpConfig = from(kind, config)?;
                check_url("url", &c.url)?;
                check_timeout(c.timeout_ms)?;
                check_headers(&c.headers)?;
                if c.secret.as_ref().is_some_and(|s| s.len() < 16) {
                    return Err("`secret` must be at least 16 characters".into());
                }
                if let Some(check) = &c.health_check {
                    check.check()?;
                    check.url(&c.url)?;
                }
                AgentConfig::Http(c)
            }
            AgentKind::Openai => {
                let c: OpenAiConfig = from(kind, config)?;
                check_url("base_url", &c.base_url)?;
                check_timeout(c.timeout_ms)?;
                if c.model.trim().is_empty() {
                    return Err("`model` must not be empty".into());
                }
                if let Some(var) = &c.api_key_env {
                    check_key_env(var).map_err(|e| format!("`api_key_env`: {e}"))?;
                }
                if c.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
                    return Err("`temperature` must be between 0 and 2".into());
                }
                if let Some(check) = &c.health_check {
                    check.check()?;
                    check.url(&c.base_url)?;
                }
                AgentConfig::Openai(c)
            }
            AgentKind::A2a => {
                let c: A2aConfig = from(kind, config)?;
                check_url("url", &c.url)?;
                check_timeout(c.timeout_ms)?;
                check_headers(&c.headers)?;
                AgentConfig::A2a(c)
            }
        };
        Ok(config)
    }

    /// The agent's active health check and the URL it is made against, if it has one.
    pub fn health_check(&self) -> Option<(&HealthCheck, &str)> {
        match self {
            AgentConfig::Http(c) => Some((c.health_check.as_ref()?, c.url.as_str())),
            AgentConfig::Openai(c) => Some((c.health_check.as_ref()?, c.base_url.as_str())),
            AgentConfig::Echo(_) | AgentConfig::A2a(_) => None,
        }
    }

    /// The configuration as shown by the API: secrets and header values replaced by
    /// [`REDACTED`].
    pub fn redacted(config: &serde_json::Value) -> serde_json::Value {
        let mut shown = config.clone();
        if let Some(obj) = shown.as_object_mut() {
            if obj.get("secret").is_some_and(|s| !s.is_null()) {
                obj.insert("secret".into(), REDACTED.into());
            }
            if let Some(headers) = obj.get_mut("headers").and_then(|h| h.as_object_mut()) {
                for value in headers.values_mut() {
                    *value = REDACTED.into();
                }
            }
        }
        shown
    }

    /// A new configuration from an update: where the update repeats [`REDACTED`] for a
    /// secret or a header value (as an edited copy of an API answer does), the current
    /// value is kept — unless the update sends the agent to another origin (scheme, host or
    /// port of `url` or `base_url`): a stored credential never follows an agent to a host
    /// of the editor's choosing, so there the placeholders are dropped, and the secret and
    /// headers must be given again to be sent.
    pub fn keep_redacted(
        update: &serde_json::Value,
        current: &serde_json::Value,
    ) -> serde_json::Value {
        let mut merged = update.clone();
        if origin(update) != origin(current) {
            if let Some(new) = merged.as_object_mut() {
                if new.get("secret").and_then(|s| s.as_str()) == Some(REDACTED) {
                    new.remove("secret");
                }
                if let Some(headers) = new.get_mut("headers").and_then(|h| h.as_object_mut()) {
                    headers.retain(|_, value| value.as_str() != Some(REDACTED));
                }
            }
            return merged;
        }
        if let (Some(new), Some(old)) = (merged.as_object_mut(), current.as_object()) {
            if new.get("secret").and_then(|s| s.as_str()) == Some(REDACTED) {
                match old.get("secret") {
                    Some(secret) => new.insert("secret".into(), secret.clone()),
                    None => new.remove("secret"),
                };
            }
            let old_headers = old.get("headers").and_then(|h| h.as_object());
            if let Some(headers) = new.get_mut("headers").and_then(|h| h.as_object_mut()) {
                for (name, value) in headers.iter_mut() {
                    if value.as_str() == Some(REDACTED)
                        && let Some(kept) = old_headers.and_then(|h| h.get(name))
                    {
                        *value = kept.clone();
                    }
                }
            }
        }
        merged
    }
}

/// The origin (scheme, host, port) an agent's configuration sends calls to, if it names one.
fn origin(config: &serde_json::Value) -> Option<(String, String, Option<u16>)> {
    let text = config
        .get("url")
        .or_else(|| config.get("base_url"))?
        .as_str()?;
    let url = Url::parse(text).ok()?;
    Some((
        url.scheme().to_owned(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_secrets_do_not_follow_an_agent_to_another_host() {
        let stored = json!({"url": "https://agent.example/a", "secret": "0123456789abcdef",
                            "headers": {"Authorization": "Bearer t", "X-Plain": "v"}});
        let mut edited = AgentConfig::redacted(&stored);
        edited["url"] = json!("https://attacker.example/a");
        let merged = AgentConfig::keep_redacted(&edited, &stored);
        assert_eq!(
            merged,
            json!({"url": "https://attacker.example/a", "headers": {}})
        );
        // Given again, they are taken.
        edited["secret"] = json!("a-new-secret-for-the-new-host");
        edited["headers"] = json!({"Authorization": "Bearer new"});
        let merged = AgentConfig::keep_redacted(&edited, &stored);
        assert_eq!(merged["secret"], "a-new-secret-for-the-new-host");
        assert_eq!(merged["headers"]["Authorization"], "Bearer new");
        // Another port is another origin; another path on the same origin is not.
        let mut port = AgentConfig::redacted(&stored);
        port["url"] = json!("https://agent.example:8443/a");
        assert!(
            AgentConfig::keep_redacted(&port, &stored)
                .get("secret")
                .is_none()
        );
        let mut path = AgentConfig::redacted(&stored);
        path["url"] = json!("https://AGENT.example/b");
        assert_eq!(
            AgentConfig::keep_redacted(&path, &stored)["secret"],
            "0123456789abcdef"
        );
    }

    #[test]
    fn configs_are_checked_per_kind() {
        assert!(AgentConfig::parse(AgentKind::Echo, &json!({})).is_ok());
        assert!(AgentConfig::parse(AgentKind::Echo, &json!({"template": "{agent}!"})).is_ok());
        assert!(
            AgentConfig::parse(AgentKind::Echo, &json!({"url": "x"})).is_err(),
            "unknown key"
        );
        assert!(
            AgentConfig::parse(AgentKind::Http, &json!({"url": "http://127.0.0.1:9/x"})).is_ok()
        );
        for bad in [
            json!({}),
            json!({"url": "ftp://x"}),
            json!({"url": "http://169.254.169.254/latest"}),
            json!({"url": "http://[fe80::1]/"}),
            json!({"url": "http://100.100.100.200/latest/meta-data"}),
            json!({"url": "http://[64:ff9b::a9fe:a9fe]/latest"}),
            json!({"url": "http://metadata.google.internal/"}),
            json!({"url": "http://user:pw@example.com/"}),
            json!({"url": "http://example.com", "timeout_ms": 0}),
            json!({"url": "http://example.com", "secret": "short"}),
            json!({"url": "http://example.com", "headers": {"bad name": "x"}}),
            json!({"url": "http://example.com", "headers": {"X-Switchyard-Signature": "x"}}),
        ] {
            assert!(AgentConfig::parse(AgentKind::Http, &bad).is_err(), "{bad}");
        }
        assert!(AgentConfig::parse(AgentKind::Openai, &json!({"base_url": "https://api.example.com/v1", "model": "m", "api_key_env": "OPENAI_API_KEY"})).is_ok());
        for var in [
            "SWITCHYARD_JWT_SECRET",
            "SWITCHYARD_DATABASE_URL",
            "lower",
            "A-B",
            "",
        ] {
            assert!(
                AgentConfig::parse(AgentKind::Openai, &json!({"base_url": "https://api.example.com/v1", "model": "m", "api_key_env": var})).is_err(),
                "{var:?} must be refused"
            );
        }
        assert!(
            AgentConfig::parse(
                AgentKind::Openai,
                &json!({"base_url": "https://x/v1", "model": "m", "api_key": "sk-123"})
            )
            .is_err(),
            "keys are never stored"
        );
        assert!(
            AgentConfig::parse(
                AgentKind::A2a,
                &json!({"url": "https://agent.example.com/a2a"})
            )
            .is_ok()
        );
    }

    #[test]
    fn health_checks_are_checked() {
        let with = |check: serde_json::Value| {
            AgentConfig::parse(
                AgentKind::Http,
                &json!({"url": "http://127.0.0.1:9/agent", "health_check": check}),
            )
        };
        let parsed = with(json!({"path": "/health", "interval_s": 30})).expect("valid");
        let (check, base) = parsed.health_check().expect("a check");
        assert_eq!(
            check.url(base).unwrap().as_str(),
            "http://127.0.0.1:9/health"
        );
        assert!(with(json!({"path": "/ready?deep=1", "interval_s": 1})).is_ok());
        for (bad, says) in [
            (json!({"path": "health", "interval_s": 30}), "absolute path"),
            (
                json!({"path": "//evil.example/x", "interval_s": 30}),
                "absolute path",
            ),
            (
                json!({"path": "http://x/health", "interval_s": 30}),
                "absolute path",
            ),
            (json!({"path": "/a b", "interval_s": 30}), "visible ASCII"),
            (
                json!({"path": "/health", "interval_s": 0}),
                "between 1 and 86400",
            ),
            (
                json!({"path": "/health", "interval_s": 86_401}),
                "between 1 and 86400",
            ),
            (json!({"path": "/health"}), "interval_s"),
        ] {
            let e = with(bad.clone()).expect_err(&bad.to_string());
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(
            AgentConfig::parse(
                AgentKind::Echo,
                &json!({"health_check": {"path": "/h", "interval_s": 5}})
            )
            .is_err(),
            "echo agents have nothing to check"
        );
    }

    #[test]
    fn secrets_are_redacted_and_kept_on_update() {
        let stored = json!({"url": "http://x", "secret": "0123456789abcdef", "headers": {"Authorization": "Bearer t"}});
        let shown = AgentConfig::redacted(&stored);
        assert_eq!(
            shown,
            json!({"url": "http://x", "secret": "***", "headers": {"Authorization": "***"}})
        );
        // Another path on the same host: the stored secret and header stay.
        let mut edited = shown.clone();
        edited["url"] = json!("http://x/v2");
        let merged = AgentConfig::keep_redacted(&edited, &stored);
        assert_eq!(
            merged,
            json!({"url": "http://x/v2", "secret": "0123456789abcdef", "headers": {"Authorization": "Bearer t"}})
        );
    }

    #[test]
    fn forbidden_and_private_addresses() {
        assert!(is_forbidden_ip("169.254.169.254".parse().unwrap()));
        assert!(is_forbidden_ip("::ffff:169.254.169.254".parse().unwrap()));
        assert!(is_forbidden_ip("fd00:ec2::254".parse().unwrap()));
        assert!(is_forbidden_ip("100.100.100.200".parse().unwrap()));
        assert!(is_forbidden_ip("64:ff9b::a9fe:a9fe".parse().unwrap()));
        assert!(is_forbidden_ip("64:ff9b::169.254.169.254".parse().unwrap()));
        assert!(is_forbidden_ip("64:ff9b::6464:64c8".parse().unwrap()));
        assert!(!is_forbidden_ip("64:ff9b::808:808".parse().unwrap()));
        assert!(is_private_ip("64:ff9b::7f00:1".parse().unwrap()));
        assert!(!is_forbidden_ip("100.64.0.1".parse().unwrap()));
        assert!(is_private_ip("100.64.0.1".parse().unwrap()));
        assert!(!is_forbidden_ip("10.0.0.1".parse().unwrap()));
        assert!(is_private_ip("10.0.0.1".parse().unwrap()));
        assert!(is_private_ip("127.0.0.1".parse().unwrap()));
        assert!(is_private_ip("::1".parse().unwrap()));
        assert!(!is_private_ip("8.8.8.8".parse().unwrap()));
    }
}

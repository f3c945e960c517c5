//! The HTTP client agents are called with, and the addresses it may reach.
//!
//! Link-local addresses (which include the cloud metadata service at 169.254.169.254) are
//! always refused; private and loopback ones too when [`AddressPolicy::deny_private`] is set.
//! The check runs on the addresses a name resolves to, inside the client's resolver, so a
//! name that resolves to a forbidden address is refused as well as a literal one; redirects
//! are never followed and no proxy is used, so nothing else decides where a request goes.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use switchyard_core::agent_config::{is_forbidden_ip, is_private_ip};

use crate::InvokerConfig;

/// Which addresses agents may be called at.
#[derive(Clone, Copy, Debug)]
pub struct AddressPolicy {
    /// Refuse private and loopback addresses too.
    pub deny_private: bool,
}

impl AddressPolicy {
    /// Why `ip` may not be called, if it may not.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if is_forbidden_ip(ip) {
            Some("a link-local or metadata address")
        } else if self.deny_private && is_private_ip(ip) {
            Some("a private or loopback address")
        } else {
            None
        }
    }

    /// Checks the host of a URL when it is an IP literal (names are checked when resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), String> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        match self.refusal(ip) {
            Some(why) => Err(format!("refused to call {ip}: {why}")),
            None => Ok(()),
        }
    }
}

struct GuardedResolver {
    policy: AddressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.refusal(a.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| policy.refusal(a.ip()))
                    .unwrap_or("no address");
                return Err(format!("refused to call {host}: it resolves to {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The shared client: no redirects, no proxy, the guarded resolver, a connect timeout.
pub(crate) fn client(config: &InvokerConfig) -> Result<reqwest::Client, String> {
    crate::install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: config.addresses,
        }))
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Reads a response body up to `limit` bytes; more is an error, not a truncation.
pub(crate) async fn bounded_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("the answer is larger than {limit} bytes"));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

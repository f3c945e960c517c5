//! API keys: `sy_` + 64 random hex digits + the tenant id, stored as a SHA-256.

use sha2::{Digest, Sha256};
use switchyard_core::TenantId;

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
}

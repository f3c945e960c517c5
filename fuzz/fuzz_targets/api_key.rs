//! API key parsing: any text either names no tenant or has the exact form of a key.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_server::auth::{API_KEY_MARKER, api_key_tenant, new_api_key};

fuzz_target!(|text: &str| {
    if let Some(tenant) = api_key_tenant(text) {
        assert!(text.starts_with(API_KEY_MARKER) && text.is_ascii());
        // A key made for that tenant has the same length and names it again.
        let (made, _, _) = new_api_key(tenant);
        assert_eq!(made.len(), text.len());
        assert_eq!(api_key_tenant(&made), Some(tenant));
    }
});

//! Any `Authorization` header: a JWT of any shape, an API key of any form, the operator's
//! token misspelt. Never a server error; only the tenant's real tokens are let in.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|header: &[u8]| {
    let service = switchyard_fuzz::service();
    let (status, _) = service.call_with_authorization("GET", "/v1/me", header, Vec::new());
    let known = [service.admin.as_str(), service.member.as_str()]
        .iter()
        .any(|t| header == format!("Bearer {t}").as_bytes());
    assert!(
        status.as_u16() != 200 || known,
        "let in: {:?}",
        String::from_utf8_lossy(header)
    );
    // The chat route reads its credential before its body.
    service.call_with_authorization("POST", "/v1/chat", header, br#"{"message": "hi"}"#.to_vec());
});

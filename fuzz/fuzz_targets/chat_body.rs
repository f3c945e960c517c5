//! Any body for `POST /v1/chat` (and `/v1/route`, which reads the same message): never a
//! server error, a refusal is a problem document.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let service = switchyard_fuzz::service();
    service.call("POST", "/v1/route", Some(&service.member), body.to_vec());
    service.call("POST", "/v1/chat", Some(&service.member), body.to_vec());
});

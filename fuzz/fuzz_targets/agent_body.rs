//! Any body for `POST /v1/agents`: never a server error, a refusal is a problem document;
//! an agent that is made is readable and is deleted again (so the tenant's quota is never
//! reached).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let service = switchyard_fuzz::service();
    let (status, answer) = service.call("POST", "/v1/agents", Some(&service.admin), body.to_vec());
    if status.as_u16() == 201 {
        let made: Value = serde_json::from_slice(&answer).expect("the agent as JSON");
        let id = made["id"].as_str().expect("its id");
        let (read, _) = service.call(
            "GET",
            &format!("/v1/agents/{id}"),
            Some(&service.admin),
            Vec::new(),
        );
        assert_eq!(read.as_u16(), 200);
        let (deleted, _) = service.call(
            "DELETE",
            &format!("/v1/agents/{id}"),
            Some(&service.admin),
            Vec::new(),
        );
        assert_eq!(deleted.as_u16(), 204);
    }
});

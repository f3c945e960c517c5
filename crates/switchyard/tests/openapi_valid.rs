//! The served OpenAPI document is valid OpenAPI 3.1, as a real validator — the Python
//! `openapi-spec-validator`, not written here — reads it.
//!
//! The validator lives in a virtual environment under `target/` made on first use (`pip
//! install` of the pinned version). Where that cannot be made (no Python, no package index)
//! the test says so loudly and skips, unless `SWITCHYARD_REQUIRE_OPENAPI_VALIDATOR=1` (CI sets
//! it).

#[path = "support/venv.rs"]
mod venv;

use std::process::Command;

fn required() -> bool {
    std::env::var("SWITCHYARD_REQUIRE_OPENAPI_VALIDATOR").is_ok_and(|v| v == "1")
}

#[test]
fn the_openapi_document_is_valid_openapi_3_1() {
    let doc = serde_json::to_value(switchyard_server::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // What OpenAPI requires of every response, checked here too so that a failure says where.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{method} {path} {status} has no description"
                );
            }
        }
    }
    let chat = &doc["paths"]["/v1/chat"]["post"]["responses"]["200"]["content"];
    assert!(chat.get("text/event-stream").is_some(), "{chat}");
    assert!(chat.get("application/json").is_some(), "{chat}");

    let Some(python) = venv::python(
        "openapi-validator-venv",
        "openapi_spec_validator",
        "tests/openapi_validator/requirements.txt",
    ) else {
        assert!(!required(), "the OpenAPI validator could not be installed");
        switchyard_store::testing::loud_skip(
            "the OpenAPI validator (python3 -m venv, pip install openapi-spec-validator) is not available",
        );
        return;
    };
    let file = std::env::temp_dir().join(format!("switchyard-openapi-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys\n\
             from openapi_spec_validator import validate\n\
             from openapi_spec_validator.validation.exceptions import OpenAPIValidationError\n\
             try:\n    validate(json.load(open(sys.argv[1])))\n\
             except OpenAPIValidationError as e:\n    print(e); sys.exit(1)\n",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "the validator refuses the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Cursor decoding: any text is refused or decodes to a cursor that encodes back to one
//! that decodes the same; and as a query parameter it is never a server error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::page::Cursor;

fuzz_target!(|text: &str| {
    if let Ok(cursor) = Cursor::decode(text) {
        let again = Cursor::decode(&cursor.encode()).expect("an encoded cursor decodes");
        assert_eq!(again.encode(), cursor.encode());
    }
    let query: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    let service = switchyard_fuzz::service();
    service.call(
        "GET",
        &format!("/v1/conversations?cursor={query}"),
        Some(&service.member),
        Vec::new(),
    );
});

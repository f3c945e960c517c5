//! The reader of streamed agent answers: any bytes, cut into chunks anywhere, give the same
//! events as the bytes in one piece.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_agents::SseReader;

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (bytes, cuts) = input;
    let whole = SseReader::default().feed(&bytes);
    let mut cuts: Vec<usize> = cuts
        .into_iter()
        .map(|c| usize::from(c) % (bytes.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut reader = SseReader::default();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        pieces.extend(reader.feed(&bytes[from..cut]));
        from = cut;
    }
    assert_eq!(pieces, whole);
});

//! Text normalisation and sparse feature extraction, shared by index build and query so the
//! two can never disagree on what a feature is.
//!
//! A text becomes hashed features of two blocks: words (unigrams and bigrams) and character
//! n-grams taken inside each word with its boundaries marked. Character n-grams make
//! "refunded", "refunds" and "refund" share most of their features; word bigrams keep "top
//! up" apart from "up" and "top". The word block can also go through a light English suffix
//! stripper ([`stem`]), so that "cards arrived" and "card arrive" are the same bigram: the
//! character block already covers single words, but only the word block sees pairs.

/// The word block: unigrams and bigrams.
pub(crate) const BLOCK_WORD: usize = 0;
/// The character n-gram block.
pub(crate) const BLOCK_CHAR: usize = 1;

/// Which features are extracted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FeatureSpec {
    /// Emit word bigrams as well as unigrams.
    pub word_bigrams: bool,
    /// Shortest character n-gram (boundary marks count as characters).
    pub char_min: usize,
    /// Longest character n-gram.
    pub char_max: usize,
    /// Strip common English suffixes from words in the word block (see [`stem`]).
    pub stem: bool,
}

/// Reusable buffers, so a query allocates only when a message is longer than any before it
/// on this thread.
#[derive(Default, Debug)]
pub(crate) struct Scratch {
    /// The normalised text: lower-case words separated by single spaces.
    pub text: String,
    /// Byte ranges of the words in `text`.
    pub words: Vec<(usize, usize)>,
    /// Byte offsets of the characters of the current word, plus its end.
    chars: Vec<usize>,
    /// Raw feature hashes, before counting; the lowest bit is the block.
    pub hashes: Vec<u64>,
}

/// Lower-cases `input` into `scratch.text` as words of letters and digits separated by one
/// space, recording each word's range. Apostrophes inside a word are dropped ("don't" →
/// "dont") because users type them inconsistently; every other symbol separates words.
pub(crate) fn normalize(input: &str, scratch: &mut Scratch) {
    scratch.text.clear();
    scratch.words.clear();
    let mut start: Option<usize> = None;
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric()) {
            if start.is_none() {
                if !scratch.text.is_empty() {
                    scratch.text.push(' ');
                }
                start = Some(scratch.text.len());
            }
            if c.is_ascii() {
                scratch.text.push(c.to_ascii_lowercase());
            } else {
                scratch.text.extend(c.to_lowercase());
            }
        } else if matches!(c, '\'' | '’' | '‘')
            && start.is_some()
            && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            // Inside a word: skip it and keep the word going.
        } else if let Some(s) = start.take() {
            scratch.words.push((s, scratch.text.len()));
        }
    }
    if let Some(s) = start {
        scratch.words.push((s, scratch.text.len()));
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET ^ seed;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The splitmix64 finaliser: FNV alone mixes its last bytes poorly, and the index keys
/// features by the low half of these hashes.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SEED_UNIGRAM: u64 = 0x11;
const SEED_BIGRAM: u64 = 0x22;
const SEED_CHAR: u64 = 0x33;
const BOUNDARY: u8 = 0x01;

/// The block a feature hash belongs to.
pub(crate) fn block_of(h: u64) -> usize {
    (h & 1) as usize
}

fn tag(h: u64, block: usize) -> u64 {
    (h & !1) | block as u64
}

/// Hash of a word unigram, the key the index uses to recognise a message word.
pub(crate) fn word_hash(spec: &FeatureSpec, word: &str) -> u64 {
    tag(mix(word_key(spec, word)), BLOCK_WORD)
}

/// The unmixed hash a word contributes to the word block: of its stem when stemming.
fn word_key(spec: &FeatureSpec, word: &str) -> u64 {
    if !spec.stem {
        return fnv(SEED_UNIGRAM, word.as_bytes());
    }
    let (kept, ending) = stem(word);
    let mut h = fnv(SEED_UNIGRAM, kept.as_bytes());
    for &b in ending.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

fn is_vowel(b: u8) -> bool {
    matches!(b, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// A light English stemmer for the word block: the part of `word` to keep and an ending to
/// append ("identities" → "identit" + "y"). It strips plurals (-s, -es, -ies), then -ing
/// and -ed (undoubling a final consonant: "topped" → "top"), then a final -e, so that
/// "charge", "charges", "charged" and "charging" all become "charg". It is deliberately
/// crude: a stem only has to be the same for the forms users type, not a dictionary word.
/// Words of three letters or fewer are left alone, and each rule keeps at least three
/// letters, so "bus", "was", "need" and "thing" stay as they are. Non-ASCII words are left
/// alone too, so other languages are not mangled.
pub(crate) fn stem(word: &str) -> (&str, &'static str) {
    let b = word.as_bytes();
    if b.len() <= 3 || !word.is_ascii() {
        return (word, "");
    }
    let mut n = b.len();
    if n > 4 && word.ends_with("ies") {
        return (&word[..n - 3], "y");
    }
    if word.ends_with("sses") {
        n -= 2;
    } else if b[n - 1] == b's' && !matches!(b[n - 2], b's' | b'u' | b'i') {
        // Not "address", "status", "this".
        n -= 1;
    }
    let cut = if b[..n].ends_with(b"ing") && n >= 6 {
        3
    } else if b[..n].ends_with(b"ed") && n >= 5 {
        2
    } else {
        0
    };
    if cut > 0 {
        n -= cut;
        let last = b[n - 1];
        if n >= 4 && last == b[n - 2] && !is_vowel(last) && !matches!(last, b'l' | b's' | b'z') {
            n -= 1;
        }
    }
    if n > 3 && b[n - 1] == b'e' {
        n -= 1;
    }
    (&word[..n], "")
}

/// Extracts the features of the already-normalised `scratch.text` into `scratch.hashes`.
pub(crate) fn extract(spec: &FeatureSpec, scratch: &mut Scratch) {
    let Scratch {
        text,
        words,
        chars,
        hashes,
    } = scratch;
    hashes.clear();
    let mut prev: Option<u64> = None;
    for &(s, e) in words.iter() {
        let word = &text[s..e];
        let wh = word_key(spec, word);
        hashes.push(tag(mix(wh), BLOCK_WORD));
        if spec.word_bigrams {
            if let Some(p) = prev {
                hashes.push(tag(mix(p.rotate_left(29) ^ wh ^ SEED_BIGRAM), BLOCK_WORD));
            }
            prev = Some(wh);
        }
        // Positions 0..=n+1 of the word with virtual boundary marks at 0 and n+1. Each
        // n-gram's hash is built incrementally from its start, so a start position costs
        // `char_max` steps whatever the number of lengths emitted.
        let bytes = word.as_bytes();
        let ascii = word.is_ascii();
        if !ascii {
            chars.clear();
            chars.extend(word.char_indices().map(|(i, _)| i));
            chars.push(word.len());
        }
        let n_chars = if ascii { bytes.len() } else { chars.len() - 1 };
        let last_pos = n_chars + 1;
        for start in 0..=last_pos {
            let mut h = FNV_OFFSET ^ SEED_CHAR;
            let end_max = (start + spec.char_max - 1).min(last_pos);
            for end in start..=end_max {
                if end == 0 || end == last_pos {
                    h ^= u64::from(BOUNDARY);
                    h = h.wrapping_mul(FNV_PRIME);
                } else if ascii {
                    h ^= u64::from(bytes[end - 1]);
                    h = h.wrapping_mul(FNV_PRIME);
                } else {
                    for &b in &bytes[chars[end - 1]..chars[end]] {
                        h ^= u64::from(b);
                        h = h.wrapping_mul(FNV_PRIME);
                    }
                }
                if end + 1 - start >= spec.char_min {
                    hashes.push(tag(mix(h), BLOCK_CHAR));
                }
            }
        }
    }
}

/// Common English function words: never shown as the words that explain a decision.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "don't", "down", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "i'm", "if", "in",
    "into", "is", "it", "it's", "its", "just", "me", "more", "most", "my", "myself", "no", "nor",
    "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over",
    "own", "please", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under",
    "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who",
    "whom", "why", "will", "with", "would", "you", "your", "yours",
];

/// Whether `word` (as typed, in any case) is a common function word.
pub fn is_stop_word(word: &str) -> bool {
    let lower = word.to_lowercase();
    STOP_WORDS.binary_search(&lower.as_str()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let mut sc = Scratch::default();
        normalize(s, &mut sc);
        sc.words
            .iter()
            .map(|&(a, b)| sc.text[a..b].to_owned())
            .collect()
    }

    #[test]
    fn normalises_case_punctuation_and_apostrophes() {
        assert_eq!(
            words("Don't   CHARGE me twice!! (ÉTÉ) top-up"),
            ["dont", "charge", "me", "twice", "été", "top", "up"]
        );
        assert_eq!(words("  '' ... "), Vec::<String>::new());
        assert_eq!(words("it's"), ["its"]);
    }

    #[test]
    fn the_same_word_gives_the_same_features_wherever_it_is() {
        let spec = FeatureSpec {
            word_bigrams: true,
            char_min: 2,
            char_max: 4,
            stem: true,
        };
        let mut sc = Scratch::default();
        normalize("refund", &mut sc);
        extract(&spec, &mut sc);
        let alone: Vec<_> = sc.hashes.clone();
        normalize("a refund please", &mut sc);
        extract(&spec, &mut sc);
        for h in &alone {
            assert!(sc.hashes.contains(h));
        }
        // "ab" with marks is 4 positions: 3 bigrams + 2 trigrams + 1 four-gram, plus the word.
        normalize("ab", &mut sc);
        extract(&spec, &mut sc);
        assert_eq!(sc.hashes.len(), 1 + 3 + 2 + 1);
        let mut uniq = sc.hashes.clone();
        uniq.sort_unstable();
        uniq.dedup();
        assert_eq!(uniq.len(), sc.hashes.len());
    }

    #[test]
    fn stems_join_the_forms_users_type() {
        let stem = |w: &str| {
            let (kept, ending) = stem(w);
            format!("{kept}{ending}")
        };
        for group in [
            &["charge", "charges", "charged", "charging"][..],
            &["card", "cards"],
            &["top", "topped", "topping"],
            &["transfer", "transfers", "transferred", "transferring"],
            &["decline", "declined", "declines", "declining"],
            &["identity", "identities"],
            &["arrive", "arrived", "arrives", "arriving"],
            &["address", "addresses"],
        ] {
            let first = stem(group[0]);
            for w in group {
                assert_eq!(stem(w), first, "{w}");
            }
        }
        for w in [
            "bus", "was", "need", "thing", "this", "status", "été", "arrival",
        ] {
            assert_eq!(stem(w), w);
        }
    }

    #[test]
    fn stemming_applies_to_word_features_only() {
        let plain = FeatureSpec {
            word_bigrams: true,
            char_min: 2,
            char_max: 4,
            stem: false,
        };
        let stemmed = FeatureSpec {
            stem: true,
            ..plain
        };
        let features = |spec: &FeatureSpec, s: &str| {
            let mut sc = Scratch::default();
            normalize(s, &mut sc);
            extract(spec, &mut sc);
            let mut h = sc.hashes.clone();
            h.sort_unstable();
            h
        };
        let words = |v: Vec<u64>| -> Vec<u64> {
            v.into_iter()
                .filter(|&h| block_of(h) == BLOCK_WORD)
                .collect()
        };
        assert_eq!(
            words(features(&stemmed, "cards arrived")),
            words(features(&stemmed, "card arrive"))
        );
        assert_ne!(
            words(features(&plain, "cards arrived")),
            words(features(&plain, "card arrive"))
        );
        // Character n-grams still see the words as typed.
        assert_eq!(
            features(&stemmed, "refunds").len(),
            features(&plain, "refunds").len()
        );
        assert_eq!(
            word_hash(&stemmed, "refunds"),
            word_hash(&stemmed, "refund")
        );
    }
}

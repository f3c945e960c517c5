//! The encoder with the real model (all-MiniLM-L6-v2 from `scripts/fetch-encoder`, named by
//! `SWITCHYARD_ENCODER_DIR`): what it embeds, the static table distilled from it, and every
//! way a model directory can be wrong. Without the model these tests say so and pass, unless
//! `SWITCHYARD_REQUIRE_ENCODER` is set (as CI sets it).

#![expect(clippy::unwrap_used, reason = "tests fail by panicking")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use switchyard_encoder::{Encoder, EncoderError, StaticTable};

fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("SWITCHYARD_ENCODER_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("SWITCHYARD_REQUIRE_ENCODER").is_some() => {
            panic!("SWITCHYARD_REQUIRE_ENCODER is set but SWITCHYARD_ENCODER_DIR is not")
        }
        None => {
            eprintln!("skipped: set SWITCHYARD_ENCODER_DIR=$(scripts/fetch-encoder) to run");
            None
        }
    }
}

/// The model, loaded once for the tests that only use it.
fn encoder() -> Option<&'static Encoder> {
    static ENCODER: OnceLock<Option<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| model_dir().map(|d| Encoder::load(&d).unwrap()))
        .as_ref()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchyard-encoder-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A copy of the model directory (the weights linked, not copied) to spoil one file of.
fn model_copy(name: &str, model: &Path) -> PathBuf {
    let dir = scratch(name);
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(file), dir.join(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        model.join("model.safetensors"),
        dir.join("model.safetensors"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::copy(
        model.join("1_Pooling/config.json"),
        dir.join("1_Pooling/config.json"),
    )
    .unwrap();
    dir
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_string(&value).unwrap()).unwrap();
}

/// The error loading `dir`, as one line.
fn load_error(dir: &Path) -> String {
    match Encoder::load(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e @ EncoderError::File { .. }) => e.to_string(),
        Err(e) => panic!("not a file error: {e}"),
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let Some(encoder) = encoder() else { return };
    assert_eq!(encoder.dims(), 384);
    let v = encoder
        .embed(&[
            "How do I reset my password?",
            "I forgot my login password and need a new one",
            "What will the weather be like tomorrow in Paris?",
            "Is it going to rain in Paris tomorrow?",
        ])
        .unwrap();
    for e in &v {
        assert!((dot(e, e) - 1.0).abs() < 1e-4, "unit length");
    }
    let (password, weather) = (dot(&v[0], &v[1]), dot(&v[2], &v[3]));
    let unrelated = dot(&v[0], &v[2]).max(dot(&v[1], &v[3]));
    assert!(password > 0.6, "password paraphrases: {password}");
    assert!(weather > 0.6, "weather paraphrases: {weather}");
    assert!(unrelated < 0.2, "unrelated: {unrelated}");
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_padded_batch() {
    let Some(encoder) = encoder() else { return };
    let short = "card declined";
    let long = "my card was declined at the supermarket this morning even though there is money on the account";
    let alone = encoder.embed(&[short]).unwrap().pop().unwrap();
    let batch = encoder.embed(&[long, short]).unwrap();
    let drift: f32 = alone
        .iter()
        .zip(&batch[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(drift < 1e-4, "padding changed the embedding by {drift}");
    assert!(
        dot(&batch[0], &batch[1]) > 0.4,
        "both are about a declined card"
    );
    // Empty and very long texts embed without error (the long one cut to the model's limit).
    let odd = encoder.embed(&["", &"word ".repeat(2000)]).unwrap();
    assert_eq!(odd.len(), 2);
    assert!(odd.iter().all(|v| v.len() == 384));
}

#[test]
fn the_static_table_is_distilled_once_and_read_back() {
    let Some(encoder) = encoder() else { return };
    let cache = scratch("table");
    let table = StaticTable::load_or_distill(encoder, Some(&cache)).unwrap();
    let file = cache.join(format!("static-{}.bin", encoder.fingerprint()));
    assert!(file.exists(), "the table is cached");
    let again = StaticTable::load_or_distill(encoder, Some(&cache)).unwrap();
    let texts = [
        "where is my parcel",
        "track my delivery",
        "book a table for two tonight",
    ];
    let first: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| table.embed(encoder, t).unwrap())
        .collect();
    let second: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| again.embed(encoder, t).unwrap())
        .collect();
    assert_eq!(first, second, "the cached table is the distilled one");
    assert!(
        dot(&first[0], &first[1]) > dot(&first[0], &first[2]),
        "static embeddings still put a parcel nearer a delivery than a restaurant"
    );
    std::fs::remove_dir_all(cache).unwrap();
}

#[test]
fn a_missing_directory_or_file_is_named() {
    let missing = PathBuf::from("/nonexistent/switchyard-model");
    let error = load_error(&missing);
    assert!(error.contains("/nonexistent/switchyard-model"), "{error}");
    let Some(model) = model_dir() else { return };
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = model_copy("missing", &model);
        std::fs::remove_file(dir.join(file)).unwrap();
        let error = load_error(&dir);
        assert!(error.contains(file), "{file}: {error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_model_of_another_architecture_is_refused() {
    let Some(model) = model_dir() else { return };
    let dir = model_copy("arch", &model);
    edit_json(&dir.join("config.json"), |c| {
        c["model_type"] = "gpt2".into();
        c["architectures"] = serde_json::json!(["GPT2LMHeadModel"]);
    });
    let error = load_error(&dir);
    assert!(
        error.contains("config.json") && error.contains("not a BERT-family model"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn weights_of_another_dimension_are_refused() {
    let Some(model) = model_dir() else { return };
    // config.json says 768 dimensions; the weights have 384.
    let dir = model_copy("dims", &model);
    std::fs::remove_dir_all(dir.join("1_Pooling")).unwrap();
    edit_json(&dir.join("config.json"), |c| {
        c["hidden_size"] = 768.into();
        c["intermediate_size"] = 3072.into();
    });
    let error = load_error(&dir);
    assert!(
        error.contains("model.safetensors") && error.contains("do not fit config.json"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // The pooling layer of another width.
    let dir = model_copy("pooling", &model);
    edit_json(&dir.join("1_Pooling/config.json"), |c| {
        c["word_embedding_dimension"] = 768.into()
    });
    let error = load_error(&dir);
    assert!(
        error.contains("1_Pooling/config.json") && error.contains("768"),
        "{error}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_tokenizer_of_another_model_is_refused() {
    let Some(model) = model_dir() else { return };
    // A WordPiece tokenizer with a smaller vocabulary, as another model would have.
    let dir = model_copy("tokenizer", &model);
    edit_json(&dir.join("tokenizer.json"), |t| {
        let vocab = t["model"]["vocab"].as_object_mut().unwrap();
        vocab.retain(|_, id| id.as_u64().unwrap() < 20_000);
    });
    let error = load_error(&dir);
    assert!(
        error.contains("tokenizer.json") && error.contains("do not belong together"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // Not a tokenizer at all.
    let dir = model_copy("garbage", &model);
    std::fs::write(dir.join("tokenizer.json"), "{\"not\": \"a tokenizer\"}").unwrap();
    let error = load_error(&dir);
    assert!(error.contains("tokenizer.json"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn weights_that_are_not_safetensors_are_refused() {
    let Some(model) = model_dir() else { return };
    let dir = model_copy("weights", &model);
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), b"not a safetensors file").unwrap();
    let error = load_error(&dir);
    assert!(error.contains("model.safetensors"), "{error}");
    std::fs::remove_dir_all(dir).unwrap();
}

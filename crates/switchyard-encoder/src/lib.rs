//! The in-process sentence encoder: a BERT-family sentence-transformers model (all-MiniLM-L6-v2
//! by default; bge-small-en-v1.5 works the same) run with Hugging Face's `candle`, its
//! `tokenizer.json` read with `tokenizers`, from a local directory — no network, ever.
//!
//! Two ways to embed a text:
//!
//! - [`Encoder::embed`]: the whole model, mean-pooled over the tokens and normalised, as
//!   sentence-transformers does — about 14 ms for a message on one core of the development
//!   machine, a few ms a text in batches.
//! - [`StaticTable`]: every WordPiece token of the vocabulary embedded alone by the same
//!   model, once (the model2vec recipe), so that a message's embedding is the weighted mean
//!   of its tokens' rows — microseconds. Distilled once per model and kept in a cache file
//!   ([`StaticTable::load_or_distill`]).
//!
//! [`Encoder::load`] refuses, naming the file, a directory that is missing or unreadable, a
//! model that is not BERT-family or whose weights do not fit its `config.json`, and a
//! tokenizer whose vocabulary does not match the model's: nothing half-loaded serves.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

mod distill;

pub use distill::StaticTable;

/// The longest input, in tokens; longer texts are cut (sentence-transformers' own limit for
/// these models is 256 to 512).
pub const MAX_TOKENS: usize = 256;

/// Why the encoder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// A file of the model directory is missing, unreadable or not what it should be.
    #[error("{}: {why}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The model failed on an input (a bug, or an input it cannot take).
    #[error("the encoder failed: {0}")]
    Run(String),
}

fn file_error(path: &Path, why: impl std::fmt::Display) -> EncoderError {
    EncoderError::File {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

fn run_error(e: impl std::fmt::Display) -> EncoderError {
    EncoderError::Run(e.to_string())
}

/// A loaded sentence encoder.
pub struct Encoder {
    model: BertModel,
    tokenizer: Tokenizer,
    dims: usize,
    vocab: usize,
    cls: u32,
    sep: u32,
    fingerprint: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("dir", &self.dir)
            .field("dims", &self.dims)
            .field("vocab", &self.vocab)
            .finish_non_exhaustive()
    }
}

/// The parts of `config.json` the encoder checks before it loads weights.
#[derive(serde::Deserialize)]
struct Architecture {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

/// `1_Pooling/config.json`, where a sentence-transformers model has one.
#[derive(serde::Deserialize)]
struct Pooling {
    #[serde(default)]
    word_embedding_dimension: Option<usize>,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

/// How the model pools its token outputs into one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pool {
    Mean,
    Cls,
}

impl Encoder {
    /// Loads the model in `dir` (`config.json`, `model.safetensors`, `tokenizer.json`, and
    /// `1_Pooling/config.json` if present), checking that the parts fit together.
    pub fn load(dir: &Path) -> Result<Self, EncoderError> {
        if !dir.is_dir() {
            return Err(file_error(dir, "not a readable directory"));
        }
        let config_path = dir.join("config.json");
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| file_error(&config_path, e))?;
        let arch: Architecture =
            serde_json::from_str(&config_text).map_err(|e| file_error(&config_path, e))?;
        let bert = arch.model_type.as_deref() == Some("bert")
            || arch.architectures.iter().any(|a| a.starts_with("Bert"));
        if !bert {
            return Err(file_error(
                &config_path,
                format!(
                    "not a BERT-family model (model_type {:?}, architectures {:?}); the encoder runs BERT models such as all-MiniLM-L6-v2 or bge-small-en-v1.5",
                    arch.model_type, arch.architectures
                ),
            ));
        }
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| file_error(&config_path, e))?;
        let pool = read_pooling(dir, config.hidden_size)?;
        let tokenizer = load_tokenizer(dir, config.vocab_size)?;
        let weights = dir.join("model.safetensors");
        let model = load_weights(&weights, &config)?;
        let special = |name: &str| {
            tokenizer
                .token_to_id(name)
                .ok_or_else(|| file_error(&dir.join("tokenizer.json"), format!("no {name} token")))
        };
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        if pool == Pool::Cls {
            return Err(file_error(
                &dir.join("1_Pooling/config.json"),
                "CLS pooling is not supported; the encoder mean-pools",
            ));
        }
        let encoder = Self {
            model,
            tokenizer,
            dims: config.hidden_size,
            vocab: config.vocab_size,
            cls,
            sep,
            fingerprint: fingerprint(dir)?,
            dir: dir.to_owned(),
        };
        // One embedding now: a model whose weights load but cannot run fails here, at start.
        encoder.embed(&["a test sentence"])?;
        Ok(encoder)
    }

    /// The length of an embedding.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Where the model was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A hash of the model's files: what caches derived from the model are keyed by.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The token ids of a text, without the special tokens, cut at [`MAX_TOKENS`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EncoderError> {
        let encoding = self.tokenizer.encode(text, false).map_err(run_error)?;
        let mut ids = encoding.get_ids().to_vec();
        ids.truncate(MAX_TOKENS - 2);
        Ok(ids)
    }

    /// The whole model's embeddings of `texts`, mean-pooled and normalised to unit length.
    /// Texts are batched by length, so that little of a batch is padding.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EncoderError> {
        let ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                let mut ids = vec![self.cls];
                ids.extend(self.token_ids(t)?);
                ids.push(self.sep);
                Ok(ids)
            })
            .collect::<Result<_, EncoderError>>()?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for batch in order.chunks(32) {
            let sequences: Vec<Vec<u32>> = batch.iter().map(|&i| ids[i].clone()).collect();
            for (&i, v) in batch.iter().zip(self.forward(&sequences, Pooled::Mean)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Runs the model on sequences of token ids (special tokens included), padded to the
    /// longest, and pools each.
    fn forward(
        &self,
        sequences: &[Vec<u32>],
        pooled: Pooled,
    ) -> Result<Vec<Vec<f32>>, EncoderError> {
        let n = sequences.len();
        let width = sequences.iter().map(Vec::len).max().unwrap_or(0);
        if n == 0 || width == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        let mut ids = Vec::with_capacity(n * width);
        let mut mask = Vec::with_capacity(n * width);
        for s in sequences {
            ids.extend(s.iter().copied());
            ids.extend(std::iter::repeat_n(0u32, width - s.len()));
            mask.extend(std::iter::repeat_n(1u32, s.len()));
            mask.extend(std::iter::repeat_n(0u32, width - s.len()));
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, width), &device).map_err(run_error)?;
        let mask = Tensor::from_vec(mask, (n, width), &device).map_err(run_error)?;
        let types = ids.zeros_like().map_err(run_error)?;
        let hidden = self
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(run_error)?;
        let hidden: Vec<Vec<Vec<f32>>> = hidden.to_vec3().map_err(run_error)?;
        Ok(hidden
            .into_iter()
            .zip(sequences)
            .map(|(tokens, s)| pool(&tokens[..s.len()], pooled))
            .collect())
    }
}

/// Which of a sequence's outputs make its vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pooled {
    /// The mean of all (the sentence embedding).
    Mean,
    /// The mean of all but the first and the last (a single token's own output).
    Inner,
}

fn pool(tokens: &[Vec<f32>], pooled: Pooled) -> Vec<f32> {
    let part = match pooled {
        Pooled::Mean => tokens,
        Pooled::Inner if tokens.len() > 2 => &tokens[1..tokens.len() - 1],
        Pooled::Inner => tokens,
    };
    let dims = part.first().map_or(0, Vec::len);
    let mut v = vec![0f32; dims];
    for t in part {
        for (a, b) in v.iter_mut().zip(t) {
            *a += b;
        }
    }
    normalize(&mut v);
    v
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

fn read_pooling(dir: &Path, hidden: usize) -> Result<Pool, EncoderError> {
    let path = dir.join("1_Pooling/config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        // A plain BERT model without sentence-transformers' files: mean pooling.
        return Ok(Pool::Mean);
    };
    let pooling: Pooling = serde_json::from_str(&text).map_err(|e| file_error(&path, e))?;
    if let Some(d) = pooling.word_embedding_dimension
        && d != hidden
    {
        return Err(file_error(
            &path,
            format!("pools {d} dimensions, the model has {hidden}"),
        ));
    }
    Ok(
        if pooling.pooling_mode_cls_token && !pooling.pooling_mode_mean_tokens {
            Pool::Cls
        } else {
            Pool::Mean
        },
    )
}

fn load_tokenizer(dir: &Path, vocab: usize) -> Result<Tokenizer, EncoderError> {
    let path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&path).map_err(|e| file_error(&path, e))?;
    let size = tokenizer.get_vocab_size(true);
    if size != vocab {
        return Err(file_error(
            &path,
            format!(
                "a vocabulary of {size} tokens, but the model's config.json says {vocab}: they do not belong together"
            ),
        ));
    }
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| file_error(&path, e))?;
    Ok(tokenizer)
}

fn load_weights(path: &Path, config: &Config) -> Result<BertModel, EncoderError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
        .map_err(|e| file_error(path, e))?;
    BertModel::load(vb, config).map_err(|e| {
        file_error(
            path,
            format!("its weights do not fit config.json (architecture or dimensions): {e}"),
        )
    })
}

/// A hash of the files that determine the embeddings.
fn fingerprint(dir: &Path) -> Result<String, EncoderError> {
    let mut hash = Sha256::new();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| file_error(&path, e))?;
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    Ok(hex::encode(&hash.finalize()[..12]))
}

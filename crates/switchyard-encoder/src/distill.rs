//! Static token embeddings distilled from the encoder (the model2vec recipe): every token of
//! the vocabulary embedded alone by the whole model, once, so that a text's embedding is the
//! mean of its tokens' rows — microseconds instead of milliseconds, at some cost in quality
//! (word order and context are lost).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{Encoder, EncoderError, Pooled, normalize, run_error};

/// A row per vocabulary token.
pub struct StaticTable {
    dims: usize,
    rows: Vec<f32>,
}

impl std::fmt::Debug for StaticTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTable")
            .field("dims", &self.dims)
            .field("tokens", &(self.rows.len() / self.dims.max(1)))
            .finish()
    }
}

/// The first bytes of a table file, with its format's version.
const MAGIC: &[u8; 8] = b"SYSTAT01";

impl StaticTable {
    /// Embeds every token of the encoder's vocabulary alone (`[CLS] token [SEP]`, the
    /// token's own output), in batches: about 30 s for a 30,000-token vocabulary on one
    /// core of the development machine.
    pub fn distill(encoder: &Encoder) -> Result<Self, EncoderError> {
        let dims = encoder.dims;
        let mut rows = Vec::with_capacity(encoder.vocab * dims);
        let ids: Vec<u32> = (0..encoder.vocab as u32).collect();
        for batch in ids.chunks(256) {
            let sequences: Vec<Vec<u32>> = batch
                .iter()
                .map(|&id| vec![encoder.cls, id, encoder.sep])
                .collect();
            for v in encoder.forward(&sequences, Pooled::Inner)? {
                rows.extend(v);
            }
        }
        Ok(Self { dims, rows })
    }

    /// The table for `encoder` from `cache_dir` if a file for this model is there, else
    /// distilled and written there (atomically: a file half written is never read). Without
    /// a cache directory, or when it cannot be written, the table is distilled and kept in
    /// memory only.
    pub fn load_or_distill(
        encoder: &Encoder,
        cache_dir: Option<&Path>,
    ) -> Result<Self, EncoderError> {
        let path = cache_dir.map(|d| d.join(format!("static-{}.bin", encoder.fingerprint())));
        if let Some(path) = &path
            && let Ok(table) = Self::read(path, encoder.dims, encoder.vocab)
        {
            return Ok(table);
        }
        tracing::info!(
            model = %encoder.dir.display(),
            "distilling static token embeddings from the encoder (once per model)"
        );
        let table = Self::distill(encoder)?;
        if let Some(path) = &path
            && let Err(e) = table.write(path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot cache the static token embeddings; they are kept in memory only");
        }
        Ok(table)
    }

    /// The table in `path`, if it is a whole table of `vocab` rows of `dims`.
    fn read(path: &Path, dims: usize, vocab: usize) -> std::io::Result<Self> {
        let expected = (dims, vocab);
        let mut file = std::fs::File::open(path)?;
        let mut header = [0u8; 16];
        file.read_exact(&mut header)?;
        let dims = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
        let vocab = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as usize;
        if &header[..8] != MAGIC || (dims, vocab) != expected {
            return Err(std::io::Error::other("not a table of this model"));
        }
        let mut bytes = Vec::with_capacity(dims * vocab * 4);
        file.read_to_end(&mut bytes)?;
        if bytes.len() != dims * vocab * 4 {
            return Err(std::io::Error::other("a truncated table"));
        }
        let rows = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Ok(Self { dims, rows })
    }

    fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
        {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            file.write_all(MAGIC)?;
            file.write_all(&(self.dims as u32).to_le_bytes())?;
            file.write_all(&((self.rows.len() / self.dims) as u32).to_le_bytes())?;
            for x in &self.rows {
                file.write_all(&x.to_le_bytes())?;
            }
            file.flush()?;
        }
        std::fs::rename(&tmp, path)
    }

    /// The length of a row.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The memory the table takes.
    pub fn heap_size_bytes(&self) -> usize {
        self.rows.capacity() * 4
    }

    /// A text's static embedding: the mean of its tokens' rows, normalised (zero for a text
    /// without tokens).
    pub fn embed(&self, encoder: &Encoder, text: &str) -> Result<Vec<f32>, EncoderError> {
        let ids = encoder.token_ids(text)?;
        let mut v = vec![0f32; self.dims];
        for id in ids {
            let start = id as usize * self.dims;
            let row = self
                .rows
                .get(start..start + self.dims)
                .ok_or_else(|| run_error(format!("token {id} is outside the table")))?;
            for (a, b) in v.iter_mut().zip(row) {
                *a += b;
            }
        }
        normalize(&mut v);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> StaticTable {
        StaticTable {
            dims: 4,
            rows: (0..12).map(|x| x as f32).collect(),
        }
    }

    #[test]
    fn a_table_is_read_back_only_whole_and_for_its_model() {
        let dir = std::env::temp_dir().join(format!("switchyard-table-{}", std::process::id()));
        let path = dir.join("static-test.bin");
        table().write(&path).unwrap();
        assert_eq!(StaticTable::read(&path, 4, 3).unwrap().rows, table().rows);
        // Another model's shape.
        assert!(StaticTable::read(&path, 8, 3).is_err());
        assert!(StaticTable::read(&path, 4, 4).is_err());
        // Cut short, or not a table at all.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        assert!(StaticTable::read(&path, 4, 3).is_err());
        std::fs::write(&path, b"SYSTAT01").unwrap();
        assert!(StaticTable::read(&path, 4, 3).is_err());
        std::fs::write(&path, b"something else entirely").unwrap();
        assert!(StaticTable::read(&path, 4, 3).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

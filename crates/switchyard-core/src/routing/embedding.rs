//! Dense text embeddings as the routing index sees them: any sentence encoder behind a
//! trait, so that the core stays free of models and IO.

/// Turns texts into fixed-length vectors (normalised to unit length), for the routing
/// index's embedding block.
pub trait TextEmbedder: Send + Sync {
    /// The length of every vector.
    fn dims(&self) -> usize;

    /// The vectors of `texts`, in order. A text the embedder cannot take gets a zero vector.
    fn embed(&self, texts: &[&str]) -> Vec<Vec<f32>>;
}

impl std::fmt::Debug for dyn TextEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextEmbedder({} dims)", self.dims())
    }
}

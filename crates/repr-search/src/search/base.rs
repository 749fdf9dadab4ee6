//! What every search backend offers: the k most similar gallery items of each query.

use serde::{Deserialize, Serialize};

use crate::{FileId, Filter, Gallery, SearchError};

/// One search result: a gallery item and its cosine similarity to the query.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The item.
    pub id: FileId,
    /// Cosine similarity, in `[-1, 1]` (0 against a zero vector).
    pub score: f32,
}

/// A nearest-neighbour search over a [`Gallery`] by cosine similarity. [`crate::ExactSearcher`]
/// is exact and is the reference an approximate backend is measured against.
///
/// Results are sorted by decreasing score, ties by increasing id, so they are a pure function
/// of the gallery, the query and the filter.
pub trait Searcher {
    /// The gallery searched.
    fn gallery(&self) -> &Gallery;

    /// The `k` best items for each of the queries (`queries.len() / dim` vectors, row-major,
    /// normalised here) among those `filter` admits; fewer when fewer are admitted.
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`] (field `queries`) when the length is not a multiple of the
    /// dimension, or a query is zero or not finite.
    fn search(
        &self,
        queries: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Vec<Hit>>, SearchError>;

    /// The `k` best items for the vector of the gallery item `id`, never `id` itself (other
    /// files with the same content are returned).
    ///
    /// # Errors
    /// [`SearchError::UnknownId`] when the gallery has no item `id`; as
    /// [`Searcher::search`] when its vector is zero.
    fn search_id(&self, id: FileId, k: usize, filter: &Filter) -> Result<Vec<Hit>, SearchError> {
        let gallery = self.gallery();
        let position = gallery.position(id).ok_or(SearchError::UnknownId { id })?;
        let query = gallery.vector(position).to_vec();
        let filter = filter.clone().excluding([id]);
        let mut hits = self.search(&query, k, &filter)?;
        Ok(hits.pop().unwrap_or_default())
    }
}

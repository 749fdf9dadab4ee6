//! Exact search: every query against every admitted gallery item, in blocks on all cores.

use rayon::prelude::*;

use super::scores::dot_products;
use super::top_k::TopK;
use crate::gallery::normalize;
use crate::{Filter, Gallery, Hit, SearchError, Searcher};

/// Queries scored together against one gallery block: each gallery block is read once per
/// this many queries.
const QUERY_BLOCK: usize = 64;

/// Gallery vectors per block: a block of 512-dimensional vectors (2 MB) stays in cache while
/// a query block is scored against it, and its scores (64 × 1024 floats) are small.
const GALLERY_BLOCK: usize = 1024;

/// Exact cosine search over a [`Gallery`]: blocked dot products (`gemm`), rayon over query
/// blocks and gallery blocks, a bounded heap per query. The reference for approximate
/// backends.
///
/// ```
/// use repr_search::{ExactSearcher, FileId, Filter, Gallery, GalleryItem, Searcher};
///
/// let item = |id, vector: [f32; 2], path: &str| GalleryItem {
///     id: FileId(id), vector: vector.to_vec(), path: path.into(), label: None,
/// };
/// let gallery = Gallery::new(2, vec![
///     item(1, [1.0, 0.0], "east.png"),
///     item(2, [0.0, 1.0], "north.png"),
///     item(3, [1.0, 1.0], "north-east.png"),
/// ])?;
/// let searcher = ExactSearcher::new(gallery);
/// let hits = searcher.search(&[2.0, 0.1], 2, &Filter::default())?;
/// assert_eq!(hits[0].iter().map(|h| h.id.0).collect::<Vec<_>>(), [1, 3]);
/// let hits = searcher.search_id(FileId(1), 1, &Filter::default())?;
/// assert_eq!(hits[0].id, FileId(3));
/// # Ok::<(), repr_search::SearchError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ExactSearcher {
    gallery: Gallery,
}

impl ExactSearcher {
    /// A searcher over `gallery`.
    pub fn new(gallery: Gallery) -> Self {
        Self { gallery }
    }

    /// The top `k` of each query of a block (at most [`QUERY_BLOCK`] normalised queries).
    fn search_block(&self, queries: &[f32], k: usize, admitted: Option<&[bool]>) -> Vec<Vec<Hit>> {
        let dim = self.gallery.dim();
        let m = queries.len() / dim;
        let (ids, vectors) = (self.gallery.ids(), self.gallery.vectors());
        let blocks: Vec<usize> = (0..self.gallery.len()).step_by(GALLERY_BLOCK).collect();
        let empty = || vec![TopK::new(k); m];
        blocks
            .par_iter()
            .fold(
                || (empty(), Vec::new()),
                |(mut tops, mut scores), &start| {
                    let end = (start + GALLERY_BLOCK).min(self.gallery.len());
                    let n = end - start;
                    scores.resize(m * n, 0.0);
                    dot_products(queries, &vectors[start * dim..end * dim], dim, &mut scores);
                    for (top, row) in tops.iter_mut().zip(scores.chunks_exact(n)) {
                        for (j, &score) in row.iter().enumerate() {
                            let position = start + j;
                            if admitted.is_none_or(|admitted| admitted[position]) {
                                top.push(ids[position], score);
                            }
                        }
                    }
                    (tops, scores)
                },
            )
            .map(|(tops, _)| tops)
            .reduce(&empty, |mut left, right| {
                for (l, r) in left.iter_mut().zip(right) {
                    l.merge(r);
                }
                left
            })
            .into_iter()
            .map(TopK::into_hits)
            .collect()
    }
}

impl Searcher for ExactSearcher {
    fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    fn search(
        &self,
        queries: &[f32],
        k: usize,
        filter: &Filter,
    ) -> Result<Vec<Vec<Hit>>, SearchError> {
        let queries = normalized_queries(queries, self.gallery.dim())?;
        let admitted = self.gallery.admitted(filter);
        let dim = self.gallery.dim();
        Ok(queries
            .par_chunks(QUERY_BLOCK * dim)
            .flat_map_iter(|block| self.search_block(block, k, admitted.as_deref()))
            .collect())
    }
}

/// `queries` as unit vectors.
///
/// # Errors
/// [`SearchError::InvalidInput`] (field `queries`) when they are not whole `dim`-vectors, or
/// one is zero or not finite.
pub(crate) fn normalized_queries(queries: &[f32], dim: usize) -> Result<Vec<f32>, SearchError> {
    if !queries.len().is_multiple_of(dim) {
        return Err(SearchError::invalid(
            "queries",
            format!(
                "{} values are not a whole number of {dim}-vectors",
                queries.len()
            ),
        ));
    }
    let mut queries = queries.to_vec();
    for (i, query) in queries.chunks_exact_mut(dim).enumerate() {
        if query.iter().any(|v| !v.is_finite()) {
            return Err(SearchError::invalid(
                "queries",
                format!("query {i} holds NaN or infinity"),
            ));
        }
        if query.iter().all(|&v| v == 0.0) {
            return Err(SearchError::invalid(
                "queries",
                format!("query {i} is zero: it has no direction to compare"),
            ));
        }
        normalize(query);
    }
    Ok(queries)
}

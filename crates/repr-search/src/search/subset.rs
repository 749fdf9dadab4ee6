//! Exact search among the gallery items a filter admits, scanning only those: what
//! approximate search falls back to when a filter admits few items.

use rayon::prelude::*;

use super::scores::dot;
use super::top_k::TopK;
use crate::{Gallery, Hit};

/// Admitted positions scored per task: large enough that a task outweighs its heap merge.
const CHUNK: usize = 4096;

/// The gallery positions `admitted` keeps (all of them when `None`).
pub(crate) fn admitted_positions(gallery: &Gallery, admitted: Option<&[bool]>) -> Vec<usize> {
    match admitted {
        None => (0..gallery.len()).collect(),
        Some(admitted) => (0..gallery.len()).filter(|&i| admitted[i]).collect(),
    }
}

/// The exact top `k` of each of the normalised `queries` among the gallery items at
/// `positions`, best first (ties by id). Parallel over queries and over chunks of positions.
pub(crate) fn search_positions(
    gallery: &Gallery,
    queries: &[f32],
    k: usize,
    positions: &[usize],
) -> Vec<Vec<Hit>> {
    let dim = gallery.dim();
    queries
        .par_chunks(dim)
        .map(|query| {
            positions
                .par_chunks(CHUNK)
                .fold(
                    || TopK::new(k),
                    |mut top, chunk| {
                        for &position in chunk {
                            let score = dot(query, gallery.vector(position));
                            top.push(gallery.ids()[position], score);
                        }
                        top
                    },
                )
                .reduce(
                    || TopK::new(k),
                    |mut left, right| {
                        left.merge(right);
                        left
                    },
                )
                .into_hits()
        })
        .collect()
}

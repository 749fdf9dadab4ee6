//! Exact cosine nearest-neighbour search: chunked similarity matmuls and a two-stage top-k, all on
//! the device.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::{Embeddings, EvalError};

/// Similarity given to excluded and padding entries: below any cosine similarity (≥ -1).
const NEVER: f32 = -4.0;

/// Queries per similarity chunk when the caller does not choose: a `[512, n]` f32 block is
/// 123 MB for n = 60,000.
pub(crate) const DEFAULT_CHUNK: usize = 512;

/// The `k` most similar gallery items of every query, row-major (`queries.len * k` entries),
/// each row sorted by decreasing similarity.
pub(crate) struct TopK {
    pub k: usize,
    pub similarities: Vec<f32>,
    pub indices: Vec<usize>,
}

impl TopK {
    pub fn row(&self, query: usize) -> (&[f32], &[usize]) {
        let range = query * self.k..(query + 1) * self.k;
        (&self.similarities[range.clone()], &self.indices[range])
    }
}

/// Rows scaled to unit L2 norm; an all-zero row stays zero (its similarities are all 0).
///
/// # Shapes
/// - x: `[n, d]` → `[n, d]`
pub(crate) fn l2_normalize(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt().clamp_min(1e-12); // [n, 1]
    x / norm
}

/// Checks the shared preconditions of a search and returns the number of candidates per query.
pub(crate) fn check_search(
    queries: &Embeddings,
    gallery: &Embeddings,
    k: usize,
    exclude_self: bool,
    chunk_size: usize,
) -> Result<(), EvalError> {
    queries.check("queries")?;
    gallery.check("gallery")?;
    if queries.dim != gallery.dim {
        return Err(EvalError::mismatch(
            "queries",
            queries.dim,
            "gallery",
            gallery.dim,
            "dimensions",
        ));
    }
    if exclude_self && queries.len != gallery.len {
        return Err(EvalError::mismatch(
            "queries",
            queries.len,
            "gallery",
            gallery.len,
            "rows (excluding self-matches needs the gallery to be the query set)",
        ));
    }
    let candidates = gallery.len - usize::from(exclude_self);
    if k == 0 || k > candidates {
        return Err(EvalError::invalid(
            "k",
            format!("{k} neighbours asked but each query has {candidates} candidates"),
        ));
    }
    if chunk_size == 0 {
        return Err(EvalError::invalid("chunk_size", "must be at least 1"));
    }
    Ok(())
}

/// Exact top-`k` cosine neighbours of every query in `gallery`. With `exclude_self`, query `i`
/// never retrieves gallery item `i` (the gallery is the query set). Memory on the device is
/// bounded by `chunk_size * gallery.len` similarities.
///
/// Callers check the inputs with [`check_search`] first.
pub(crate) fn top_k_cosine(
    queries: &Embeddings,
    gallery: &Embeddings,
    k: usize,
    exclude_self: bool,
    chunk_size: usize,
    device: &Device,
) -> TopK {
    let n = gallery.len;
    let gallery_t = l2_normalize(gallery.to_tensor(device)).transpose(); // [d, n]
    let mut similarities = Vec::with_capacity(queries.len * k);
    let mut indices = Vec::with_capacity(queries.len * k);
    for start in (0..queries.len).step_by(chunk_size) {
        let end = (start + chunk_size).min(queries.len);
        let rows = end - start;
        let chunk = queries.data[start * queries.dim..end * queries.dim].to_vec();
        let chunk = Tensor::<2>::from_data(TensorData::new(chunk, [rows, queries.dim]), device);
        let mut scores = l2_normalize(chunk).matmul(gallery_t.clone()); // [rows, n]
        if exclude_self {
            let columns = Tensor::<1, Int>::arange(0..n as i64, device)
                .reshape([1, n])
                .expand([rows, n]);
            let own = Tensor::<1, Int>::arange(start as i64..end as i64, device)
                .reshape([rows, 1])
                .expand([rows, n]);
            scores = scores.mask_fill(columns.equal(own), NEVER);
        }
        let (values, index) = top_k(scores, k);
        similarities.extend(values.into_data().iter::<f32>());
        indices.extend(index.into_data().iter::<i64>().map(|i| i as usize));
    }
    TopK {
        k,
        similarities,
        indices,
    }
}

/// The `k` largest entries of every row and their columns, sorted by decreasing value.
///
/// Backends without a dedicated top-k kernel (flex, ndarray) sort whole rows, which for
/// 10,000 × 60,000 similarities takes minutes. So the search runs in two stages, exact like one
/// full sort: split each row into blocks of `b` columns and take every block's maximum; keep the
/// `k` blocks with the largest maxima; take the top `k` among their `k * b` entries. Every entry
/// of the true top `k` lies in a kept block: a block holding an entry `x` that is not kept is
/// beaten by `k` blocks whose maxima exceed `x`, so `x` has at least `k` larger entries. With
/// `b ≈ √(n / k)` both sorts are about √(n k) long (3,500 instead of 60,000 for k = 200).
///
/// # Shapes
/// - scores: `[rows, n]`, `k <= n`
/// - output: values `[rows, k]`, columns `[rows, k]`
pub(crate) fn top_k(scores: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [rows, n] = scores.dims();
    let block = ((n as f64 / k as f64).sqrt().floor() as usize).max(1);
    let blocks = n.div_ceil(block);
    if block < 4 || blocks <= k {
        return scores.topk_with_indices(k, 1);
    }
    let device = scores.device();
    let padded = blocks * block;
    let scores = if padded > n {
        Tensor::cat(
            vec![scores, Tensor::full([rows, padded - n], NEVER, &device)],
            1,
        )
    } else {
        scores
    };
    let maxima = scores
        .clone()
        .reshape([rows, blocks, block])
        .max_dim(2)
        .reshape([rows, blocks]);
    let (_, kept) = maxima.topk_with_indices(k, 1); // [rows, k] block numbers
    let offsets = Tensor::<1, Int>::arange(0..block as i64, &device)
        .reshape([1, 1, block])
        .expand([rows, k, block]);
    let columns = (kept
        .reshape([rows, k, 1])
        .mul_scalar(block as i64)
        .expand([rows, k, block])
        + offsets)
        .reshape([rows, k * block]); // [rows, k * b] candidate columns
    let candidates = scores.gather(1, columns.clone());
    let (values, position) = candidates.topk_with_indices(k, 1);
    (values, columns.gather(1, position))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The two-stage top-k against a full sort on the host, on random rows long enough to take
    /// the blocked path (n = 1000, k = 7: blocks of 11) and with a ragged last block.
    fn top_k_matches_a_full_sort(device: &Device) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (rows, n, k) in [(3, 1000, 7), (2, 997, 20), (4, 50, 3), (2, 10, 10)] {
            let values: Vec<f32> = (0..rows * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let tensor = Tensor::<2>::from_data(TensorData::new(values.clone(), [rows, n]), device);
            let (top, index) = top_k(tensor, k);
            assert_eq!(top.dims(), [rows, k]);
            let top: Vec<f32> = top.into_data().iter::<f32>().collect();
            let index: Vec<i64> = index.into_data().iter::<i64>().collect();
            for r in 0..rows {
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| values[r * n + b].total_cmp(&values[r * n + a]));
                for j in 0..k {
                    assert_eq!(
                        index[r * k + j] as usize,
                        order[j],
                        "row {r} rank {j} (n {n}, k {k})"
                    );
                    assert_eq!(top[r * k + j], values[r * n + order[j]]);
                }
            }
        }
    }

    repr_testing::backend_tests!(top_k_matches_a_full_sort);
}

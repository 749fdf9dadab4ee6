//! Exact cosine nearest-neighbour search: chunked similarity matmuls and a hierarchical top-k on
//! the device, or a selection on the host when `k` is a large fraction of the gallery.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::{Embeddings, EvalError};

/// Similarity given to excluded and padding entries: below any cosine similarity (≥ -1).
const NEVER: f32 = -4.0;

/// Added to entries already taken by a round of [`top_k_direct`]: far below [`NEVER`].
const TAKEN: f32 = -1e30;

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
    let (n, dim) = (gallery.len, gallery.dim);
    // The gallery goes to the device once, transposed and contiguous (a transposed view makes
    // every chunk's matmul slower), with an extra row so that padding columns, which make the
    // width a multiple of the top-k block, score NEVER: queries carry a 1 in that coordinate,
    // real gallery items a 0 and padding items NEVER.
    let padded = n.next_multiple_of(BLOCK);
    let mut gallery_t = vec![0.0f32; (dim + 1) * padded];
    for (i, row) in gallery.data.chunks_exact(dim).enumerate() {
        for (j, v) in unit(row).enumerate() {
            gallery_t[j * padded + i] = v;
        }
    }
    gallery_t[dim * padded + n..].fill(NEVER);
    let gallery_t = Tensor::<2>::from_data(TensorData::new(gallery_t, [dim + 1, padded]), device);

    let mut similarities = Vec::with_capacity(queries.len * k);
    let mut indices = Vec::with_capacity(queries.len * k);
    for start in (0..queries.len).step_by(chunk_size) {
        let end = (start + chunk_size).min(queries.len);
        let rows = end - start;
        let chunk: Vec<f32> = queries.data[start * dim..end * dim]
            .chunks_exact(dim)
            .flat_map(|row| unit(row).chain([1.0]))
            .collect();
        let chunk = Tensor::<2>::from_data(TensorData::new(chunk, [rows, dim + 1]), device);
        let mut scores = chunk.matmul(gallery_t.clone()); // [rows, padded]
        if exclude_self {
            let columns = Tensor::<1, Int>::arange(0..padded as i64, device)
                .reshape([1, padded])
                .expand([rows, padded]);
            let own = Tensor::<1, Int>::arange(start as i64..end as i64, device)
                .reshape([rows, 1])
                .expand([rows, padded]);
            scores = scores.mask_fill(columns.equal(own), NEVER);
        }
        if top_k_on_host(padded, k) {
            host_top_k(scores, n, k, &mut similarities, &mut indices);
        } else {
            let (values, index) = top_k(scores, k);
            similarities.extend(values.into_data().iter::<f32>());
            indices.extend(index.into_data().iter::<i64>().map(|i| i as usize));
        }
    }
    TopK {
        k,
        similarities,
        indices,
    }
}

/// `row` scaled to unit L2 norm (computed in f64); an all-zero row stays zero, so its
/// similarities are all 0.
fn unit(row: &[f32]) -> impl Iterator<Item = f32> + '_ {
    let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    row.iter().map(move |&v| (v as f64 * scale) as f32)
}

/// Whether `k` is so large a fraction of long rows (at least 1/32, as for mAP@R with R = 6,000
/// of 60,000) that [`top_k`] would sort most of each row. Then reading the similarities back and
/// selecting on the host (linear-time selection, then sorting only the `k` selected, rows in
/// parallel) is faster on CPU backends (measured: 27 s instead of 64 s for 10,000 queries
/// against 60,000 with k = 6,000 on flex), and reading a chunk back costs a GPU little next to
/// such a sort.
fn top_k_on_host(n: usize, k: usize) -> bool {
    n <= 8 * BLOCK * k && n >= 4096
}

/// The top `k` of the first `n` columns of every row of `scores`, selected on the host, appended
/// to `values` and `columns` (sorted by decreasing value; ties by increasing column).
fn host_top_k(
    scores: Tensor<2>,
    n: usize,
    k: usize,
    values: &mut Vec<f32>,
    columns: &mut Vec<usize>,
) {
    let [rows, width] = scores.dims();
    let data: Vec<f32> = scores.into_data().iter::<f32>().collect();
    let selected: Vec<Vec<usize>> = data
        .par_chunks_exact(width)
        .map(|row| {
            let mut order: Vec<usize> = (0..n).collect();
            if k < n {
                order.select_nth_unstable_by(k - 1, |a, b| by_value(row, *a, *b));
                order.truncate(k);
            }
            order.sort_unstable_by(|a, b| by_value(row, *a, *b));
            order
        })
        .collect();
    for (row, order) in data.chunks_exact(width).zip(&selected) {
        values.extend(order.iter().map(|&c| row[c]));
        columns.extend_from_slice(order);
    }
    debug_assert_eq!(selected.len(), rows);
}

/// Decreasing value, then increasing column.
fn by_value(row: &[f32], a: usize, b: usize) -> std::cmp::Ordering {
    row[b].total_cmp(&row[a]).then(a.cmp(&b))
}

/// Columns per block of the hierarchical top-k.
const BLOCK: usize = 4;

/// The `k` largest entries of every row and their columns, sorted by decreasing value.
///
/// Backends without a dedicated top-k kernel (flex, ndarray) sort whole rows, which for
/// 10,000 × 60,000 similarities takes minutes. So long rows are reduced first, exactly: split
/// each row into blocks of [`BLOCK`] columns and take every block's maximum; keep the `k`
/// blocks with the largest maxima (found the same way, recursively); take the top `k` among
/// their `k · BLOCK` entries. Every entry of the true top `k` lies in a kept block: a block
/// holding an entry `x` that is not kept is beaten by `k` kept blocks whose maxima are at least
/// its own maximum, hence at least `x`, so `x` is not needed to make up the top `k` (ties may be
/// resolved either way). For n = 60,000 and k = 200 this sorts about 3,400 entries per row
/// instead of 60,000.
///
/// # Shapes
/// - scores: `[rows, n]`, `k <= n`
/// - output: values `[rows, k]`, columns `[rows, k]`
pub(crate) fn top_k(scores: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [rows, n] = scores.dims();
    if n <= 2 * BLOCK * k {
        return top_k_direct(scores, k);
    }
    let device = scores.device();
    let padded = n.next_multiple_of(BLOCK);
    let scores = if padded > n {
        Tensor::cat(
            vec![scores, Tensor::full([rows, padded - n], NEVER, &device)],
            1,
        )
    } else {
        scores
    };
    let blocks = padded / BLOCK;
    let maxima = scores
        .clone()
        .reshape([rows, blocks, BLOCK])
        .max_dim(2)
        .reshape([rows, blocks]);
    let (_, kept) = top_k(maxima, k); // [rows, k] block numbers
    let offsets = Tensor::<1, Int>::arange(0..BLOCK as i64, &device)
        .reshape([1, 1, BLOCK])
        .expand([rows, k, BLOCK]);
    let columns = (kept
        .reshape([rows, k, 1])
        .mul_scalar(BLOCK as i64)
        .expand([rows, k, BLOCK])
        + offsets)
        .reshape([rows, k * BLOCK]); // [rows, k * BLOCK] candidate columns
    let candidates = scores.gather(1, columns.clone());
    let (values, position) = top_k_direct(candidates, k);
    (values, columns.gather(1, position))
}

/// The largest `k` for which Burn's `topk_with_indices` is trusted: on wgpu (0.22.1, lavapipe)
/// it returns index -1 after the first entry for k = 200 and k = 700, while k ≤ 64 is exact.
const KERNEL_TOP_K: usize = 64;

/// `topk_with_indices`, in rounds of at most [`KERNEL_TOP_K`]: each round takes the best
/// remaining entries and pushes them far below every score so the next round skips them. The
/// rounds' results, concatenated, are the sorted top `k`.
///
/// # Shapes
/// - scores: `[rows, n]`, `k <= n` → values `[rows, k]`, columns `[rows, k]`
fn top_k_direct(scores: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    if k <= KERNEL_TOP_K {
        return scores.topk_with_indices(k, 1);
    }
    let [rows, _] = scores.dims();
    let device = scores.device();
    let (mut values, mut columns) = (Vec::new(), Vec::new());
    let mut scores = scores;
    let mut remaining = k;
    while remaining > 0 {
        let step = remaining.min(KERNEL_TOP_K);
        let (v, c) = scores.clone().topk_with_indices(step, 1);
        remaining -= step;
        if remaining > 0 {
            let push_down = Tensor::full([rows, step], TAKEN, &device);
            scores = scores.scatter(1, c.clone(), push_down, IndexingUpdateOp::Add);
        }
        values.push(v);
        columns.push(c);
    }
    (Tensor::cat(values, 1), Tensor::cat(columns, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    use rand_chacha::ChaCha8Rng;

    /// The hierarchical top-k against a full sort on the host, on rows long enough for one or
    /// several levels of blocks (n = 1000, k = 7: 1000 → 250 → 63 maxima), with ragged last
    /// blocks (997, 3001) and on short rows sorted directly.
    fn top_k_matches_a_full_sort(device: &Device) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (rows, n, k) in [
            (3, 1000, 7),
            (2, 997, 20),
            (2, 3001, 1),
            (2, 5000, 200),
            (2, 300, 130),
            (4, 50, 3),
            (2, 10, 10),
        ] {
            // Distinct values in [-1, 1), so that the order is unique.
            let mut values: Vec<f32> = (0..rows * n)
                .map(|i| 2.0 * i as f32 / (rows * n) as f32 - 1.0)
                .collect();
            values.shuffle(&mut rng);
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

    /// The host selection used for large `k` gives the device sort's answer (also when one row
    /// has padding columns beyond `n`, which it must ignore).
    fn host_selection_matches_the_device(device: &Device) {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let (rows, n, k) = (3, 4500, 700);
        // Distinct values, so that the order is unique.
        let mut values: Vec<f32> = (0..rows * n)
            .map(|i| i as f32 / (rows * n) as f32)
            .collect();
        values.shuffle(&mut rng);
        let scores = Tensor::<2>::from_data(TensorData::new(values, [rows, n]), device);
        let (top, index) = top_k(scores.clone(), k);
        let top: Vec<f32> = top.into_data().iter::<f32>().collect();
        let index: Vec<usize> = index
            .into_data()
            .iter::<i64>()
            .map(|i| i as usize)
            .collect();
        let padded = Tensor::cat(vec![scores, Tensor::full([rows, 4], 9.0, device)], 1);
        let (mut host_top, mut host_index) = (Vec::new(), Vec::new());
        host_top_k(padded, n, k, &mut host_top, &mut host_index);
        assert_eq!(host_index, index);
        assert_eq!(host_top, top);
        assert!(top_k_on_host(n, k) && top_k_on_host(60_000, 6_000));
        assert!(!top_k_on_host(60_000, 200) && !top_k_on_host(1000, 700));
    }

    repr_testing::backend_tests!(top_k_matches_a_full_sort, host_selection_matches_the_device);
}

//! Dot products of queries with gallery vectors: blocks through `gemm`, single pairs in a loop.

use gemm::Parallelism;

/// `scores[q * n + j] = queries[q] · gallery[j]` for `m = queries.len() / dim` queries and
/// `n = gallery.len() / dim` gallery vectors, both row-major. Runs on the calling thread:
/// callers parallelise over blocks.
///
/// # Panics
/// If a slice is not a whole number of `dim`-vectors or `scores` does not hold `m × n` values.
pub(crate) fn dot_products(queries: &[f32], gallery: &[f32], dim: usize, scores: &mut [f32]) {
    assert!(
        dim > 0 && queries.len().is_multiple_of(dim) && gallery.len().is_multiple_of(dim),
        "dot_products: {} query and {} gallery values are not {dim}-vectors",
        queries.len(),
        gallery.len()
    );
    let (m, n) = (queries.len() / dim, gallery.len() / dim);
    assert_eq!(scores.len(), m * n, "dot_products: scores for {m} × {n}");
    if m == 0 || n == 0 {
        return;
    }
    // The product [m, dim] · [dim, n]: the gallery block read transposed in place (element
    // (i, j) at gallery[j * dim + i]).
    // SAFETY: the asserts above make every view fit its slice: queries (m × dim, row stride
    // dim), gallery transposed (dim × n, column stride dim) and scores (m × n, row stride n);
    // `scores` is a unique borrow, so it aliases neither input; with `read_dst` false gemm
    // only writes `scores`, every element of it.
    unsafe {
        gemm::gemm(
            m,
            n,
            dim,
            scores.as_mut_ptr(),
            1,
            n as isize,
            false,
            queries.as_ptr(),
            1,
            dim as isize,
            gallery.as_ptr(),
            dim as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// `a · b` in f32 with eight partial sums (so that it vectorises), for scoring a few items.
///
/// # Panics
/// If the lengths differ.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot: vectors of {} and {} values",
        a.len(),
        b.len()
    );
    let mut sums = [0.0f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_dot_products() {
        let dim = 37;
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n * dim)
                .map(|i| (((i * 7919 + seed) % 101) as f32 - 50.0) / 25.0)
                .collect()
        };
        let (queries, gallery) = (values(5, 1), values(70, 2));
        let mut scores = vec![f32::NAN; 5 * 70];
        dot_products(&queries, &gallery, dim, &mut scores);
        for q in 0..5 {
            for j in 0..70 {
                let naive: f64 = (0..dim)
                    .map(|i| f64::from(queries[q * dim + i]) * f64::from(gallery[j * dim + i]))
                    .sum();
                let got = f64::from(scores[q * 70 + j]);
                assert!((got - naive).abs() < 1e-4 * (1.0 + naive.abs()), "{q} {j}");
                let one = f64::from(dot(
                    &queries[q * dim..(q + 1) * dim],
                    &gallery[j * dim..(j + 1) * dim],
                ));
                assert!((one - naive).abs() < 1e-4 * (1.0 + naive.abs()), "{q} {j}");
            }
        }
    }
}

//! Principal component analysis down to two dimensions, for embedding plots.

use crate::Embeddings;

/// Projects each embedding onto the first two principal components of `e` (Pearson 1901;
/// the axes of largest variance of the centred data).
///
/// Computed in f64 on the host: the covariance matrix (`len · dim² / 2` multiply-adds), then
/// block power iteration for its two leading eigenvectors. Each axis's sign is chosen so that
/// its largest-magnitude coefficient is positive, so the plot does not flip between runs. A
/// one-dimensional input gets 0 as second coordinate.
///
/// ```
/// use repr_eval::{pca_2d, Embeddings};
///
/// // Points on the line y = 2x: all variance on one axis.
/// let e = Embeddings::new(vec![-1.0, -2.0, 0.0, 0.0, 1.0, 2.0], 3, 2)?;
/// let p = pca_2d(&e);
/// let r = 5f32.sqrt();
/// assert!((p[2][0] - r).abs() < 1e-5 && p[2][1].abs() < 1e-5);
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
pub fn pca_2d(e: &Embeddings) -> Vec<[f32; 2]> {
    let (n, d) = (e.len, e.dim);
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0.0f64; d];
    for row in e.data.chunks_exact(d) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    // Upper triangle of Xᵀ X of the centred data, then mirrored.
    let mut cov = vec![0.0f64; d * d];
    let mut centred = vec![0.0f64; d];
    for row in e.data.chunks_exact(d) {
        centred
            .iter_mut()
            .zip(row.iter().zip(&mean))
            .for_each(|(c, (&v, m))| *c = v as f64 - m);
        for i in 0..d {
            let ci = centred[i];
            if ci == 0.0 {
                continue;
            }
            let out = &mut cov[i * d + i..(i + 1) * d];
            out.iter_mut()
                .zip(&centred[i..])
                .for_each(|(o, &cj)| *o += ci * cj);
        }
    }
    for i in 0..d {
        for j in 0..i {
            cov[i * d + j] = cov[j * d + i];
        }
    }
    let axes = leading_eigenvectors(&cov, d);
    e.data
        .chunks_exact(d)
        .map(|row| {
            let mut out = [0.0f32; 2];
            for (o, axis) in out.iter_mut().zip(&axes) {
                *o = row
                    .iter()
                    .zip(&mean)
                    .zip(axis)
                    .map(|((&v, m), a)| (v as f64 - m) * a)
                    .sum::<f64>() as f32;
            }
            out
        })
        .collect()
}

/// The two leading unit eigenvectors of the symmetric positive semi-definite `d × d` matrix
/// `a`, by block power iteration with Gram–Schmidt (one vector when `d == 1`).
fn leading_eigenvectors(a: &[f64], d: usize) -> Vec<Vec<f64>> {
    let count = d.min(2);
    // A fixed start that is not orthogonal to any coordinate axis.
    let first = (0..d).map(|i| 1.0 + ((i * 7) % 11) as f64 / 11.0).collect();
    let second = (0..d)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } * (1.0 + ((i * 5 + 3) % 13) as f64 / 13.0))
        .collect();
    let mut vectors: Vec<Vec<f64>> = [first, second].into_iter().take(count).collect();
    orthonormalize(&mut vectors);
    for _ in 0..1000 {
        let previous = vectors.clone();
        for v in vectors.iter_mut() {
            *v = (0..d)
                .map(|i| {
                    a[i * d..(i + 1) * d]
                        .iter()
                        .zip(v.iter())
                        .map(|(x, y)| x * y)
                        .sum()
                })
                .collect();
        }
        orthonormalize(&mut vectors);
        let change = vectors
            .iter()
            .zip(&previous)
            .map(|(v, p)| 1.0 - v.iter().zip(p).map(|(x, y)| x * y).sum::<f64>().abs())
            .fold(0.0, f64::max);
        if change < 1e-14 {
            break;
        }
    }
    for v in vectors.iter_mut() {
        let largest = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if largest < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
    }
    vectors.resize(2, vec![0.0; d]);
    vectors
}

/// Gram–Schmidt; a vector that vanishes (a rank-deficient matrix) becomes zero.
fn orthonormalize(vectors: &mut [Vec<f64>]) {
    for i in 0..vectors.len() {
        let (done, rest) = vectors.split_at_mut(i);
        let v = &mut rest[0];
        for u in done.iter() {
            let dot: f64 = v.iter().zip(u).map(|(x, y)| x * y).sum();
            v.iter_mut().zip(u).for_each(|(x, y)| *x -= dot * y);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-300 {
            v.iter_mut().for_each(|x| *x /= norm);
        } else {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn finds_a_known_principal_axis() {
        // 3-D points t·u + s·w + small noise with u = (3, 4, 0)/5 (variance of t: 100/3 for
        // t ~ U(-10, 10)) and w = (0, 0, 1) (variance of s: 1/3 for s ~ U(-1, 1)): the first
        // axis is ±u, the second ±w, and the projections are (t, s) up to the noise.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut data, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..500 {
            let t: f64 = rng.random_range(-10.0..10.0);
            let s: f64 = rng.random_range(-1.0..1.0);
            let noise = |rng: &mut ChaCha8Rng| rng.random_range(-1e-3..1e-3);
            data.extend([
                (0.6 * t + noise(&mut rng) + 5.0) as f32,
                (0.8 * t + noise(&mut rng) - 2.0) as f32,
                (s + noise(&mut rng) + 1.0) as f32,
            ]);
            ts.push((t, s));
        }
        let e = Embeddings::new(data, 500, 3).unwrap();
        let p = pca_2d(&e);
        let mean_t = ts.iter().map(|t| t.0).sum::<f64>() / 500.0;
        let mean_s = ts.iter().map(|t| t.1).sum::<f64>() / 500.0;
        // Signs: u's largest coefficient (0.8) is positive, as is w's (1).
        for (point, (t, s)) in p.iter().zip(&ts) {
            assert!(
                (point[0] as f64 - (t - mean_t)).abs() < 1e-2,
                "{point:?} vs t {t}"
            );
            assert!(
                (point[1] as f64 - (s - mean_s)).abs() < 1e-2,
                "{point:?} vs s {s}"
            );
        }
    }

    #[test]
    fn degenerate_inputs() {
        assert!(pca_2d(&Embeddings::new(vec![], 0, 3).unwrap()).is_empty());
        let one_dim = pca_2d(&Embeddings::new(vec![1.0, 3.0], 2, 1).unwrap());
        assert_eq!(one_dim, vec![[-1.0, 0.0], [1.0, 0.0]]);
        let constant = pca_2d(&Embeddings::new(vec![2.0; 6], 3, 2).unwrap());
        assert_eq!(constant, vec![[0.0, 0.0]; 3]);
    }
}

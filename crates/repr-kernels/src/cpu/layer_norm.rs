//! Layer normalisation (Ba et al. 2016) over the last dimension: each row of `width` features
//! is centred by its mean, divided by `√(biased variance + ε)`, scaled by `gamma` and shifted by
//! `beta`. The forward keeps each row's mean and `1/σ`; the backward uses them:
//! `x̂ = (x − μ)/σ`, `g = dy ⊙ γ`, `dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ`, `dγ = Σ dy ⊙ x̂`,
//! `dβ = Σ dy` (sums over rows). Rows are split into fixed blocks over rayon's threads; the
//! parameter gradients are summed per block and then over blocks in order, so the result does
//! not depend on the thread count.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::vmath::has_avx2;

/// Rows per task.
const ROWS: usize = 64;

#[inline(always)]
fn lanes_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += f(*v);
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|v| f(*v)).sum::<f32>()
}

#[inline(always)]
fn forward_rows_portable(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f32,
    y: &mut [MaybeUninit<f32>],
    stats: &mut [f32],
) {
    let width = gamma.len();
    let inv_n = 1.0 / width as f32;
    for ((x, y), st) in x
        .chunks_exact(width)
        .zip(y.chunks_exact_mut(width))
        .zip(stats.chunks_exact_mut(2))
    {
        let mean = lanes_sum(x, |v| v) * inv_n;
        let var = lanes_sum(x, |v| (v - mean) * (v - mean)) * inv_n;
        let rstd = 1.0 / (var + epsilon).sqrt();
        match beta {
            Some(beta) => {
                for (((y, x), g), b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                    y.write((x - mean) * rstd * g + b);
                }
            }
            None => {
                for ((y, x), g) in y.iter_mut().zip(x).zip(gamma) {
                    y.write((x - mean) * rstd * g);
                }
            }
        }
        st[0] = mean;
        st[1] = rstd;
    }
}

/// One block's input gradient, and its `(dγ, dβ)` partial sums in `partial` (`2 · width`).
#[inline(always)]
fn backward_rows_portable(
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    partial: &mut [f32],
) {
    let width = gamma.len();
    let inv_n = 1.0 / width as f32;
    let (dgamma, dbeta) = partial.split_at_mut(width);
    for (((x, dy), dx), st) in x
        .chunks_exact(width)
        .zip(dy.chunks_exact(width))
        .zip(dx.chunks_exact_mut(width))
        .zip(stats.chunks_exact(2))
    {
        let (mean, rstd) = (st[0], st[1]);
        let mut sum_g = [0.0f32; 8];
        let mut sum_gx = [0.0f32; 8];
        for (i, ((x, dy), g)) in x.iter().zip(dy).zip(gamma).enumerate() {
            let xh = (x - mean) * rstd;
            let gv = dy * g;
            sum_g[i % 8] += gv;
            sum_gx[i % 8] += gv * xh;
        }
        let mean_g = sum_g.iter().sum::<f32>() * inv_n;
        let mean_gx = sum_gx.iter().sum::<f32>() * inv_n;
        for (((((dx, x), dy), g), dg), db) in dx
            .iter_mut()
            .zip(x)
            .zip(dy)
            .zip(gamma)
            .zip(dgamma.iter_mut())
            .zip(dbeta.iter_mut())
        {
            let xh = (x - mean) * rstd;
            *dx = (dy * g - mean_g - xh * mean_gx) * rstd;
            *dg += dy * xh;
            *db += dy;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_rows_avx2(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f32,
    y: &mut [MaybeUninit<f32>],
    stats: &mut [f32],
) {
    forward_rows_portable(x, gamma, beta, epsilon, y, stats)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_rows_avx2(
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dy: &[f32],
    dx: &mut [f32],
    partial: &mut [f32],
) {
    backward_rows_portable(x, gamma, stats, dy, dx, partial)
}

/// `y = layer_norm(x)` over rows of `gamma.len()` features (`y` overwritten; need not be
/// initialised); returns each row's
/// `[mean, 1/σ]` (`2 · rows` values), what [`layer_norm_backward`] needs.
pub fn layer_norm_forward(
    x: &[f32],
    gamma: &[f32],
    beta: Option<&[f32]>,
    epsilon: f64,
    y: &mut [MaybeUninit<f32>],
) -> Vec<f32> {
    let width = gamma.len();
    assert!(width > 0, "layer norm: zero features");
    assert!(x.len().is_multiple_of(width), "layer norm: input length");
    assert_eq!(y.len(), x.len(), "layer norm: output length");
    if let Some(beta) = beta {
        assert_eq!(beta.len(), width, "layer norm: beta length");
    }
    let rows = x.len() / width;
    let mut stats = vec![0.0f32; 2 * rows];
    let (avx2, eps) = (has_avx2(), epsilon as f32);
    y.par_chunks_mut(ROWS * width)
        .zip(x.par_chunks(ROWS * width))
        .zip(stats.par_chunks_mut(2 * ROWS))
        .for_each(|((y, x), st)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: avx2 and fma were detected at run time.
                return unsafe { forward_rows_avx2(x, gamma, beta, eps, y, st) };
            }
            let _ = avx2;
            forward_rows_portable(x, gamma, beta, eps, y, st)
        });
    stats
}

/// The gradients `(dx, dγ, dβ)` of a layer norm from the output gradient `dy`, the input `x`,
/// `gamma` and the forward's row statistics.
pub fn layer_norm_backward(
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let width = gamma.len();
    assert!(width > 0, "layer norm backward: zero features");
    assert!(
        x.len().is_multiple_of(width) && dy.len() == x.len(),
        "layer norm backward: lengths"
    );
    let rows = x.len() / width;
    assert_eq!(
        stats.len(),
        2 * rows,
        "layer norm backward: statistics length"
    );
    let mut dx = vec![0.0f32; x.len()];
    let blocks = rows.div_ceil(ROWS);
    let mut partials = vec![0.0f32; blocks * 2 * width];
    let avx2 = has_avx2();
    dx.par_chunks_mut(ROWS * width)
        .zip(partials.par_chunks_mut(2 * width))
        .zip(x.par_chunks(ROWS * width).zip(dy.par_chunks(ROWS * width)))
        .zip(stats.par_chunks(2 * ROWS))
        .for_each(|(((dx, partial), (x, dy)), st)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: avx2 and fma were detected at run time.
                return unsafe { backward_rows_avx2(x, gamma, st, dy, dx, partial) };
            }
            let _ = avx2;
            backward_rows_portable(x, gamma, st, dy, dx, partial)
        });
    let mut sums = vec![0.0f32; 2 * width];
    for partial in partials.chunks_exact(2 * width) {
        sums.iter_mut().zip(partial).for_each(|(s, p)| *s += p);
    }
    let dbeta = sums.split_off(width);
    (dx, sums, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::output::overwrite;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 97);
                (v % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// `Σ layer_norm(x) ⊙ w` in f64 by the definition.
    fn loss(x: &[f64], gamma: &[f64], beta: &[f64], w: &[f32], eps: f64) -> f64 {
        let width = gamma.len();
        let mut total = 0.0;
        for (r, row) in x.chunks(width).enumerate() {
            let mean = row.iter().sum::<f64>() / width as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
            for (j, v) in row.iter().enumerate() {
                let y = (v - mean) / (var + eps).sqrt() * gamma[j] + beta[j];
                total += y * w[r * width + j] as f64;
            }
        }
        total
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        // 130 rows: two full blocks and a partial one; 19 features: lanes and a remainder.
        let (rows, width, eps) = (130, 19, 1e-6);
        let x = values(rows * width, 1);
        let gamma: Vec<f32> = values(width, 2).iter().map(|v| 1.0 + v).collect();
        let beta = values(width, 3);
        let w = values(rows * width, 4);
        let mut y = vec![f32::NAN; x.len()];
        // SAFETY: the kernels write only initialised values.
        let stats = layer_norm_forward(&x, &gamma, Some(&beta), eps, unsafe { overwrite(&mut y) });
        let f = |v: &[f32]| v.iter().map(|v| *v as f64).collect::<Vec<f64>>();
        let (x64, g64, b64) = (f(&x), f(&gamma), f(&beta));
        for r in [0, 64, 129] {
            let row = &x64[r * width..(r + 1) * width];
            let mean = row.iter().sum::<f64>() / width as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / width as f64;
            for j in 0..width {
                let want = (row[j] - mean) / (var + eps).sqrt() * g64[j] + b64[j];
                assert!((y[r * width + j] as f64 - want).abs() < 1e-5, "y[{r},{j}]");
            }
        }
        let (dx, dgamma, dbeta) = layer_norm_backward(&x, &gamma, &stats, &w);
        let h = 1e-6;
        let fd = |v: &[f64], i: usize, at: &dyn Fn(&[f64]) -> f64| {
            let (mut p, mut m) = (v.to_vec(), v.to_vec());
            p[i] += h;
            m[i] -= h;
            (at(&p) - at(&m)) / (2.0 * h)
        };
        for i in (0..x.len()).step_by(7) {
            let want = fd(&x64, i, &|x| loss(x, &g64, &b64, &w, eps));
            assert!(
                (dx[i] as f64 - want).abs() < 1e-4,
                "dx[{i}] {} vs {want}",
                dx[i]
            );
        }
        for j in 0..width {
            let want = fd(&g64, j, &|g| loss(&x64, g, &b64, &w, eps));
            assert!((dgamma[j] as f64 - want).abs() < 1e-3, "dgamma[{j}]");
            let want = fd(&b64, j, &|b| loss(&x64, &g64, b, &w, eps));
            assert!((dbeta[j] as f64 - want).abs() < 1e-3, "dbeta[{j}]");
        }
        // Without beta: the same as beta = 0.
        let (mut y0, mut y1) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
        // SAFETY (both): as above.
        layer_norm_forward(&x, &gamma, None, eps, unsafe { overwrite(&mut y0) });
        let zeros = vec![0.0; width];
        layer_norm_forward(&x, &gamma, Some(&zeros), eps, unsafe { overwrite(&mut y1) });
        assert_eq!(y0, y1);
    }
}

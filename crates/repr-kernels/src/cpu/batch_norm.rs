//! Batch normalisation (Ioffe & Szegedy 2015) over NCHW data, with an optional fused ReLU:
//! one task per channel, statistics accumulated in f64.

use rayon::prelude::*;

use super::parallel::SharedMut;

/// `[batch, channels, spatial]`: the layout of an input of any rank ≥ 2 (`spatial` is the
/// product of the dimensions after the channels, 1 for `[batch, channels]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    /// Batch size.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Elements per (image, channel).
    pub spatial: usize,
}

impl NormShape {
    /// The shape of an input with dimensions `dims` (rank ≥ 2).
    pub fn of(dims: &[usize]) -> Self {
        assert!(dims.len() >= 2, "batch norm: rank {} < 2", dims.len());
        Self { batch: dims[0], channels: dims[1], spatial: dims[2..].iter().product() }
    }

    fn len(&self) -> usize {
        self.batch * self.channels * self.spatial
    }

    /// Elements per channel: the count the statistics average over.
    fn count(&self) -> usize {
        self.batch * self.spatial
    }

    /// The slices of channel `c`, one per image.
    fn planes<'a>(&self, data: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (cs, s) = (self.channels * self.spatial, self.spatial);
        (0..self.batch).map(move |n| &data[n * cs + c * s..][..s])
    }
}

/// Training-mode batch norm: normalises each channel by its batch mean and biased variance,
/// scales by `gamma`, shifts by `beta` and, with `relu`, clamps at zero. Writes the output to
/// `y` and returns the per-channel `(mean, variance)` (biased), as Burn's `batch_norm_train`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_forward(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), s.len(), "batch norm: input length");
    assert_eq!(y.len(), s.len(), "batch norm: output length");
    let out = SharedMut(y.as_mut_ptr());
    let stats: Vec<(f32, f32)> = (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let m = s.count().max(1) as f64;
            let mean = s.planes(x, c).map(|p| p.iter().sum::<f32>() as f64).sum::<f64>() / m;
            let mf = mean as f32;
            let var = s
                .planes(x, c)
                .map(|p| p.iter().map(|v| (v - mf) * (v - mf)).sum::<f32>() as f64)
                .sum::<f64>()
                / m;
            let inv_std = 1.0 / (var + epsilon).sqrt();
            let scale = (gamma[c] as f64 * inv_std) as f32;
            let shift = (beta[c] as f64 - mean * gamma[c] as f64 * inv_std) as f32;
            // SAFETY: channel c writes only its own planes.
            unsafe { apply_channel(s, x, out, c, scale, shift, relu) };
            (mean as f32, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// Inference-mode batch norm with given statistics: `y = (x − mean)/√(var + ε)·γ + β`, with an
/// optional ReLU.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_apply(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [f32],
) {
    assert_eq!(x.len(), s.len(), "batch norm: input length");
    assert_eq!(y.len(), s.len(), "batch norm: output length");
    let out = SharedMut(y.as_mut_ptr());
    (0..s.channels).into_par_iter().for_each(|c| {
        let inv_std = 1.0 / (var[c] as f64 + epsilon).sqrt();
        let scale = (gamma[c] as f64 * inv_std) as f32;
        let shift = (beta[c] as f64 - mean[c] as f64 * gamma[c] as f64 * inv_std) as f32;
        // SAFETY: channel c writes only its own planes.
        unsafe { apply_channel(s, x, out, c, scale, shift, relu) };
    });
}

/// `y = x·scale + shift` (then ReLU) on the planes of channel `c`.
///
/// # Safety
/// No other thread writes channel `c` of `y` at the same time.
unsafe fn apply_channel(s: NormShape, x: &[f32], y: SharedMut, c: usize, scale: f32, shift: f32, relu: bool) {
    let (cs, sp) = (s.channels * s.spatial, s.spatial);
    for n in 0..s.batch {
        let start = n * cs + c * sp;
        let src = &x[start..start + sp];
        // SAFETY: this plane belongs to channel c only (caller's contract).
        let dst = unsafe { y.slice(start, sp) };
        if relu {
            dst.iter_mut().zip(src).for_each(|(d, v)| *d = (v * scale + shift).max(0.0));
        } else {
            dst.iter_mut().zip(src).for_each(|(d, v)| *d = v * scale + shift);
        }
    }
}

/// The gradients of [`batch_norm_train_forward`] given `dy`, the gradient of its output: the
/// input gradient into `dx` and `(dgamma, dbeta)` returned. With the fused ReLU, `y` (the
/// forward's output) masks `dy` where the ReLU clamped.
///
/// With `x̂ = (x − μ)/σ`: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/σ · (dy − dβ/M − x̂·dγ/M)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dy: &[f32],
    relu_output: Option<&[f32]>,
    dx: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(dy.len(), s.len(), "batch norm backward: output-gradient length");
    assert_eq!(dx.len(), s.len(), "batch norm backward: input-gradient length");
    let out = SharedMut(dx.as_mut_ptr());
    let (cs, sp) = (s.channels * s.spatial, s.spatial);
    let grads: Vec<(f32, f32)> = (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let inv_std = (1.0 / (var[c] as f64 + epsilon).sqrt()) as f32;
            let mu = mean[c];
            let (mut sum_dy, mut sum_dy_xhat) = (0.0f64, 0.0f64);
            for n in 0..s.batch {
                let start = n * cs + c * sp;
                let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
                let (mut a, mut b) = (0.0f32, 0.0f32);
                match relu_output {
                    Some(y) => {
                        for ((xv, gv), yv) in xs.iter().zip(gs).zip(&y[start..start + sp]) {
                            let g = if *yv > 0.0 { *gv } else { 0.0 };
                            a += g;
                            b += g * (xv - mu);
                        }
                    }
                    None => {
                        for (xv, gv) in xs.iter().zip(gs) {
                            a += gv;
                            b += gv * (xv - mu);
                        }
                    }
                }
                sum_dy += a as f64;
                sum_dy_xhat += b as f64 * inv_std as f64;
            }
            let m = s.count().max(1) as f64;
            let k = gamma[c] * inv_std;
            let mean_dy = (sum_dy / m) as f32;
            let mean_dy_xhat = (sum_dy_xhat / m) as f32;
            for n in 0..s.batch {
                let start = n * cs + c * sp;
                let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
                // SAFETY: channel c writes only its own planes.
                let d = unsafe { out.slice(start, sp) };
                let term = |xv: f32, g: f32| k * (g - mean_dy - (xv - mu) * inv_std * mean_dy_xhat);
                match relu_output {
                    Some(y) => {
                        for (((dv, xv), gv), yv) in d.iter_mut().zip(xs).zip(gs).zip(&y[start..start + sp]) {
                            *dv = term(*xv, if *yv > 0.0 { *gv } else { 0.0 });
                        }
                    }
                    None => {
                        for ((dv, xv), gv) in d.iter_mut().zip(xs).zip(gs) {
                            *dv = term(*xv, *gv);
                        }
                    }
                }
            }
            (sum_dy_xhat as f32, sum_dy as f32)
        })
        .collect();
    grads.into_iter().unzip()
}

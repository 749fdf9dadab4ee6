//! Batch normalisation (Ioffe & Szegedy 2015) over NCHW data, with an optional fused ReLU:
//! one task per channel, statistics accumulated in f64.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::Arc;

use rayon::prelude::*;

use super::parallel::SharedMut;

/// Sums per-channel statistics over the members of a data-parallel group, in place: the same
/// result on every member (SyncBatchNorm).
pub type StatisticsSum = Arc<dyn Fn(&mut [f64]) + Send + Sync>;

thread_local! {
    static SYNC: RefCell<Option<StatisticsSum>> = const { RefCell::new(None) };
}

/// Runs `f` with every training-mode batch norm of this thread synchronised by `sum`: its
/// statistics (forward) and its gradient sums (backward) are summed over the group, so each
/// member normalises its share with the mean and variance of the whole global batch and
/// back-propagates through them exactly. Other threads are not affected.
pub fn with_sync_batch_norm<T>(sum: StatisticsSum, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<StatisticsSum>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SYNC.with(|s| *s.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(SYNC.with(|s| s.borrow_mut().replace(sum)));
    f()
}

fn synchronised() -> Option<StatisticsSum> {
    SYNC.with(|s| s.borrow().clone())
}

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
        Self {
            batch: dims[0],
            channels: dims[1],
            spatial: dims[2..].iter().product(),
        }
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
/// `y` (overwritten: its contents need not be initialised) and returns the per-channel
/// `(mean, variance)` (biased), as Burn's `batch_norm_train`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_forward(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), s.len(), "batch norm: input length");
    assert_eq!(y.len(), s.len(), "batch norm: output length");
    if let Some(sum) = synchronised() {
        return sync_forward(s, x, gamma, beta, epsilon, relu, y, &sum);
    }
    let out = SharedMut::of(y);
    let stats: Vec<(f32, f32)> = (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let m = s.count().max(1) as f64;
            let mean = s
                .planes(x, c)
                .map(|p| lanes_sum(p, |v| v) as f64)
                .sum::<f64>()
                / m;
            let mf = mean as f32;
            let var = (s
                .planes(x, c)
                .map(|p| lanes_sum(p, |v| (v - mf) * (v - mf)) as f64)
                .sum::<f64>()
                / m) as f32;
            let (scale, shift) = affine(gamma[c], beta[c], mf, var, epsilon);
            // SAFETY: channel c writes only its own planes.
            unsafe { apply_channel(s, x, out, c, scale, shift, relu) };
            (mf, var)
        })
        .collect();
    stats.into_iter().unzip()
}

/// [`batch_norm_train_forward`] over a group: the channel sums of every member give the global
/// mean, then the global sums of squared deviations from it the global (biased) variance, as
/// the two passes of one process.
#[allow(clippy::too_many_arguments)]
fn sync_forward(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    relu: bool,
    y: &mut [MaybeUninit<f32>],
    sum: &StatisticsSum,
) -> (Vec<f32>, Vec<f32>) {
    let c = s.channels;
    // Channel sums, then the element count.
    let mut sums: Vec<f64> = (0..c)
        .into_par_iter()
        .map(|c| s.planes(x, c).map(|p| lanes_sum(p, |v| v) as f64).sum())
        .collect();
    sums.push(s.count() as f64);
    sum(&mut sums);
    let m = sums[c].max(1.0);
    let mean: Vec<f32> = sums[..c].iter().map(|v| (v / m) as f32).collect();
    let mut squares: Vec<f64> = (0..c)
        .into_par_iter()
        .map(|c| {
            let mf = mean[c];
            s.planes(x, c)
                .map(|p| lanes_sum(p, |v| (v - mf) * (v - mf)) as f64)
                .sum()
        })
        .collect();
    sum(&mut squares);
    let var: Vec<f32> = squares.iter().map(|v| (v / m) as f32).collect();
    let out = SharedMut::of(y);
    (0..c).into_par_iter().for_each(|c| {
        let (scale, shift) = affine(gamma[c], beta[c], mean[c], var[c], epsilon);
        // SAFETY: channel c writes only its own planes.
        unsafe { apply_channel(s, x, out, c, scale, shift, relu) };
    });
    (mean, var)
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
    y: &mut [MaybeUninit<f32>],
) {
    assert_eq!(x.len(), s.len(), "batch norm: input length");
    assert_eq!(y.len(), s.len(), "batch norm: output length");
    let out = SharedMut::of(y);
    (0..s.channels).into_par_iter().for_each(|c| {
        let (scale, shift) = affine(gamma[c], beta[c], mean[c], var[c], epsilon);
        // SAFETY: channel c writes only its own planes.
        unsafe { apply_channel(s, x, out, c, scale, shift, relu) };
    });
}

/// The per-channel affine map batch norm reduces to, `y = x·scale + shift` with
/// `scale = γ/√(var + ε)` and `shift = β − mean·scale`; the backward recomputes the fused ReLU's
/// mask from it, so both must round alike.
fn affine(gamma: f32, beta: f32, mean: f32, var: f32, epsilon: f64) -> (f32, f32) {
    let inv_std = 1.0 / (var as f64 + epsilon).sqrt();
    let scale = gamma as f64 * inv_std;
    (scale as f32, (beta as f64 - mean as f64 * scale) as f32)
}

/// `y = x·scale + shift` (then ReLU) on the planes of channel `c`.
///
/// # Safety
/// No other thread writes channel `c` of `y` at the same time.
unsafe fn apply_channel(
    s: NormShape,
    x: &[f32],
    y: SharedMut,
    c: usize,
    scale: f32,
    shift: f32,
    relu: bool,
) {
    let (cs, sp) = (s.channels * s.spatial, s.spatial);
    for n in 0..s.batch {
        let start = n * cs + c * sp;
        let src = &x[start..start + sp];
        // SAFETY: this plane belongs to channel c only (caller's contract).
        let dst = unsafe { y.uninit(start, sp) };
        if relu {
            dst.iter_mut().zip(src).for_each(|(d, v)| {
                d.write((v * scale + shift).max(0.0));
            });
        } else {
            dst.iter_mut().zip(src).for_each(|(d, v)| {
                d.write(v * scale + shift);
            });
        }
    }
}

/// Lanes of the reductions: independent partial sums that the compiler keeps in vector
/// registers (a single running f32 sum is a serial dependency chain it may not reorder).
const LANES: usize = 16;

/// `Σ f(v)` over `v`, in [`LANES`] partial sums.
#[inline]
fn lanes_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|x| f(*x)).sum();
    for c in chunks {
        for (a, x) in acc.iter_mut().zip(c) {
            *a += f(*x);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `(Σ f(x, g).0, Σ f(x, g).1)` over two equally long slices, in [`LANES`] partial sums.
#[inline]
fn lanes_sum2(x: &[f32], g: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f32, f32) {
    let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
    let n = x.len() / LANES * LANES;
    for (xc, gc) in x[..n].chunks_exact(LANES).zip(g[..n].chunks_exact(LANES)) {
        for i in 0..LANES {
            let (p, q) = f(xc[i], gc[i]);
            a[i] += p;
            b[i] += q;
        }
    }
    let (mut ta, mut tb) = (0.0f32, 0.0f32);
    for i in n..x.len() {
        let (p, q) = f(x[i], g[i]);
        ta += p;
        tb += q;
    }
    (a.iter().sum::<f32>() + ta, b.iter().sum::<f32>() + tb)
}

/// The gradients of [`batch_norm_train_forward`] given `dy`, the gradient of its output: the
/// input gradient into `dx` and `(dgamma, dbeta)` returned. With the fused ReLU (`relu_beta`:
/// the forward's `beta`), `dy` is masked where the forward's output was clamped; the mask is
/// recomputed from `x`, so the output need not be kept (one stream of memory fewer).
///
/// With `x̂ = (x − μ)/σ`: `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/σ · (dy − dβ/M − x̂·dγ/M)`.
/// Each channel is read twice; its planes (`batch × spatial` floats) are still in cache for
/// the second pass at the sizes of a ResNet.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_train_backward(
    s: NormShape,
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
    dy: &[f32],
    relu_beta: Option<&[f32]>,
    dx: &mut [MaybeUninit<f32>],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(
        dy.len(),
        s.len(),
        "batch norm backward: output-gradient length"
    );
    assert_eq!(
        dx.len(),
        s.len(),
        "batch norm backward: input-gradient length"
    );
    if let Some(sum) = synchronised() {
        return sync_backward(s, [x, gamma, mean, var], epsilon, dy, relu_beta, dx, &sum);
    }
    let out = SharedMut::of(dx);
    let (cs, sp) = (s.channels * s.spatial, s.spatial);
    let grads: Vec<(f32, f32)> = (0..s.channels)
        .into_par_iter()
        .map(|c| {
            let inv_std = (1.0 / (var[c] as f64 + epsilon).sqrt()) as f32;
            let mu = mean[c];
            // The ReLU's mask: where x·scale + shift > 0 (everywhere without the ReLU).
            let (scale, shift) = match relu_beta {
                Some(beta) => affine(gamma[c], beta[c], mu, var[c], epsilon),
                None => (0.0, 1.0),
            };
            let masked = |xv: f32, gv: f32| if xv * scale + shift > 0.0 { gv } else { 0.0 };
            let (mut sum_dy, mut sum_dy_xc) = (0.0f64, 0.0f64);
            for n in 0..s.batch {
                let start = n * cs + c * sp;
                let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
                let (a, b) = lanes_sum2(xs, gs, |xv, gv| {
                    let g = masked(xv, gv);
                    (g, g * (xv - mu))
                });
                sum_dy += a as f64;
                sum_dy_xc += b as f64;
            }
            let m = s.count().max(1) as f64;
            let k = gamma[c] * inv_std;
            let mean_dy = (sum_dy / m) as f32;
            // mean(dy · x̂) / σ, so that x̂ · it = (x − μ) · mean(dy·(x − μ)) / σ².
            let coef = (sum_dy_xc / m) as f32 * inv_std * inv_std;
            for n in 0..s.batch {
                let start = n * cs + c * sp;
                let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
                // SAFETY: channel c writes only its own planes.
                let d = unsafe { out.uninit(start, sp) };
                for ((dv, xv), gv) in d.iter_mut().zip(xs).zip(gs) {
                    dv.write(k * (masked(*xv, *gv) - mean_dy - (xv - mu) * coef));
                }
            }
            ((sum_dy_xc * inv_std as f64) as f32, sum_dy as f32)
        })
        .collect();
    grads.into_iter().unzip()
}

/// [`batch_norm_train_backward`] over a group: `Σ dy` and `Σ dy·(x − μ)` summed over every
/// member (and the global count) give each member's input gradient through the global
/// statistics; `dγ` and `dβ` are this member's own sums (the parameter gradients are summed
/// over the group afterwards, with every other gradient).
#[allow(clippy::too_many_arguments)]
fn sync_backward(
    s: NormShape,
    [x, gamma, mean, var]: [&[f32]; 4],
    epsilon: f64,
    dy: &[f32],
    relu_beta: Option<&[f32]>,
    dx: &mut [MaybeUninit<f32>],
    sum: &StatisticsSum,
) -> (Vec<f32>, Vec<f32>) {
    let c = s.channels;
    let (cs, sp) = (c * s.spatial, s.spatial);
    let mask = |c: usize| match relu_beta {
        Some(beta) => affine(gamma[c], beta[c], mean[c], var[c], epsilon),
        None => (0.0, 1.0),
    };
    let local: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|c| {
            let (scale, shift) = mask(c);
            let mu = mean[c];
            let (mut sum_dy, mut sum_dy_xc) = (0.0f64, 0.0f64);
            for n in 0..s.batch {
                let start = n * cs + c * sp;
                let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
                let (a, b) = lanes_sum2(xs, gs, |xv, gv| {
                    let g = if xv * scale + shift > 0.0 { gv } else { 0.0 };
                    (g, g * (xv - mu))
                });
                sum_dy += a as f64;
                sum_dy_xc += b as f64;
            }
            (sum_dy, sum_dy_xc)
        })
        .collect();
    let mut global: Vec<f64> = local.iter().flat_map(|&(a, b)| [a, b]).collect();
    global.push(s.count() as f64);
    sum(&mut global);
    let m = global[2 * c].max(1.0);
    let out = SharedMut::of(dx);
    (0..c).into_par_iter().for_each(|c| {
        let inv_std = (1.0 / (var[c] as f64 + epsilon).sqrt()) as f32;
        let mu = mean[c];
        let (scale, shift) = mask(c);
        let k = gamma[c] * inv_std;
        let mean_dy = (global[2 * c] / m) as f32;
        let coef = (global[2 * c + 1] / m) as f32 * inv_std * inv_std;
        for n in 0..s.batch {
            let start = n * cs + c * sp;
            let (xs, gs) = (&x[start..start + sp], &dy[start..start + sp]);
            // SAFETY: channel c writes only its own planes.
            let d = unsafe { out.uninit(start, sp) };
            for ((dv, xv), gv) in d.iter_mut().zip(xs).zip(gs) {
                let g = if *xv * scale + shift > 0.0 { *gv } else { 0.0 };
                dv.write(k * (g - mean_dy - (xv - mu) * coef));
            }
        }
    });
    local
        .iter()
        .zip(var)
        .map(|(&(sum_dy, sum_dy_xc), &v)| {
            let inv_std = 1.0 / (v as f64 + epsilon).sqrt();
            ((sum_dy_xc * inv_std) as f32, sum_dy as f32)
        })
        .unzip()
}

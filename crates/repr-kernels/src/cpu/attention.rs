//! Multi-head self-attention (Vaswani et al. 2017) straight from a packed `[q | k | v]`
//! projection `[batch, tokens, 3·dim]`: per image and head `P = softmax(scale · Q Kᵀ)` and
//! `O = P V`, written into the head's columns of `[batch, tokens, dim]`. No slice, transpose
//! or contiguous copy of `q`, `k`, `v` or of the context: the GEMMs read and write them with
//! strides. The backward uses the kept probabilities:
//! `dV = Pᵀ dO`, `dP = dO Vᵀ`, `dS = scale · P ⊙ (dP − rowsum(dP ⊙ P))`, `dQ = dS K`,
//! `dK = dSᵀ Q`. One rayon task per image (its heads in turn, single-threaded GEMMs).

use rayon::prelude::*;

use super::gemm::{MatRef, matmul, matmul_to};
use super::vmath::{exp, has_avx2};

/// The geometry of one attention call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionShape {
    /// Images.
    pub batch: usize,
    /// Tokens per image.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// Features per head.
    pub head_dim: usize,
    /// The logits' scale (usually `1/√head_dim`).
    pub scale: f32,
}

impl AttentionShape {
    /// Model width `heads · head_dim`.
    pub fn dim(&self) -> usize {
        self.heads * self.head_dim
    }

    /// Length of the packed projection: `batch · tokens · 3·dim`.
    pub fn qkv_len(&self) -> usize {
        self.batch * self.tokens * 3 * self.dim()
    }

    /// Length of the context: `batch · tokens · dim`.
    pub fn out_len(&self) -> usize {
        self.batch * self.tokens * self.dim()
    }

    /// Length of the probabilities: `batch · heads · tokens²`.
    pub fn probs_len(&self) -> usize {
        self.batch * self.heads * self.tokens * self.tokens
    }

    /// Head `h`'s part `part` (0 = q, 1 = k, 2 = v) of one image's packed rows.
    fn part<'a>(&self, qkv_image: &'a [f32], part: usize, h: usize) -> MatRef<'a> {
        MatRef {
            data: &qkv_image[part * self.dim() + h * self.head_dim..],
            rows: self.tokens,
            cols: self.head_dim,
            row_stride: 3 * self.dim(),
            col_stride: 1,
        }
    }
}

/// `row = softmax(scale · row)`.
#[inline(always)]
fn softmax_row_portable(row: &mut [f32], scale: f32) {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = l.max(*v);
        }
    }
    let mut max = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    max = lanes.iter().fold(max, |m, v| m.max(*v)) * scale;
    let mut sums = [0.0f32; 8];
    let mut chunks = row.chunks_exact_mut(8);
    for c in &mut chunks {
        for (s, v) in sums.iter_mut().zip(c.iter_mut()) {
            *v = exp(*v * scale - max);
            *s += *v;
        }
    }
    let mut sum = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v * scale - max);
        sum += *v;
    }
    let inv = 1.0 / (sum + sums.iter().sum::<f32>());
    row.iter_mut().for_each(|v| *v *= inv);
}

/// `dp = scale · p ⊙ (dp − Σ dp ⊙ p)` over one row.
#[inline(always)]
fn softmax_grad_row_portable(p: &[f32], dp: &mut [f32], scale: f32) {
    let mut lanes = [0.0f32; 8];
    let (pc, dc) = (p.chunks_exact(8), dp.chunks_exact(8));
    let (pr, dr) = (pc.remainder(), dc.remainder());
    for (a, b) in pc.zip(dc) {
        for ((l, x), y) in lanes.iter_mut().zip(a).zip(b) {
            *l += x * y;
        }
    }
    let dot = lanes.iter().sum::<f32>() + pr.iter().zip(dr).map(|(x, y)| x * y).sum::<f32>();
    dp.iter_mut()
        .zip(p)
        .for_each(|(d, p)| *d = scale * p * (*d - dot));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_row_avx2(row: &mut [f32], scale: f32) {
    softmax_row_portable(row, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_grad_row_avx2(p: &[f32], dp: &mut [f32], scale: f32) {
    softmax_grad_row_portable(p, dp, scale)
}

fn softmax_rows(m: &mut [f32], cols: usize, scale: f32, avx2: bool) {
    for row in m.chunks_exact_mut(cols) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: avx2 and fma were detected at run time.
            unsafe { softmax_row_avx2(row, scale) };
            continue;
        }
        let _ = avx2;
        softmax_row_portable(row, scale);
    }
}

fn softmax_grad_rows(p: &[f32], dp: &mut [f32], cols: usize, scale: f32, avx2: bool) {
    for (p, dp) in p.chunks_exact(cols).zip(dp.chunks_exact_mut(cols)) {
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: avx2 and fma were detected at run time.
            unsafe { softmax_grad_row_avx2(p, dp, scale) };
            continue;
        }
        let _ = avx2;
        softmax_grad_row_portable(p, dp, scale);
    }
}

/// The context `out` (`[batch, tokens, dim]`) and the probabilities `probs`
/// (`[batch, heads, tokens, tokens]`, what the backward needs) of the packed `qkv`.
pub fn attention_forward(s: &AttentionShape, qkv: &[f32], out: &mut [f32], probs: &mut [f32]) {
    assert_eq!(qkv.len(), s.qkv_len(), "attention: qkv length");
    assert_eq!(out.len(), s.out_len(), "attention: output length");
    assert_eq!(
        probs.len(),
        s.probs_len(),
        "attention: probabilities length"
    );
    assert!(s.scale > 0.0, "attention: the scale must be positive");
    if s.out_len() == 0 {
        return;
    }
    let (t, d) = (s.tokens, s.dim());
    let avx2 = has_avx2();
    out.par_chunks_mut(t * d)
        .zip(probs.par_chunks_mut(s.heads * t * t))
        .zip(qkv.par_chunks(t * 3 * d))
        .for_each(|((out, probs), qkv)| {
            for (h, p) in probs.chunks_exact_mut(t * t).enumerate() {
                let (q, k, v) = (s.part(qkv, 0, h), s.part(qkv, 1, h), s.part(qkv, 2, h));
                matmul(p, q, k.t(), false, 1);
                softmax_rows(p, t, s.scale, avx2);
                let p = MatRef::row_major(p, t, t);
                matmul_to(&mut out[h * s.head_dim..], d, p, v, false, 1);
            }
        });
}

/// The gradient of the packed projection, `dqkv` (`[batch, tokens, 3·dim]`), from the
/// context's gradient `dout`, the forward's `qkv` and its `probs`.
pub fn attention_backward(
    s: &AttentionShape,
    qkv: &[f32],
    probs: &[f32],
    dout: &[f32],
    dqkv: &mut [f32],
) {
    assert_eq!(qkv.len(), s.qkv_len(), "attention backward: qkv length");
    assert_eq!(dqkv.len(), s.qkv_len(), "attention backward: dqkv length");
    assert_eq!(dout.len(), s.out_len(), "attention backward: dout length");
    assert_eq!(
        probs.len(),
        s.probs_len(),
        "attention backward: probabilities length"
    );
    if s.out_len() == 0 {
        return;
    }
    let (t, d, hd) = (s.tokens, s.dim(), s.head_dim);
    let avx2 = has_avx2();
    dqkv.par_chunks_mut(t * 3 * d)
        .zip(qkv.par_chunks(t * 3 * d))
        .zip(
            probs
                .par_chunks(s.heads * t * t)
                .zip(dout.par_chunks(t * d)),
        )
        .for_each_init(
            || vec![0.0f32; t * t],
            |ds, ((dqkv, qkv), (probs, dout))| {
                for (h, p) in probs.chunks_exact(t * t).enumerate() {
                    let (q, k, v) = (s.part(qkv, 0, h), s.part(qkv, 1, h), s.part(qkv, 2, h));
                    let dout_h = MatRef {
                        data: &dout[h * hd..],
                        rows: t,
                        cols: hd,
                        row_stride: d,
                        col_stride: 1,
                    };
                    let pm = MatRef::row_major(p, t, t);
                    matmul_to(&mut dqkv[2 * d + h * hd..], 3 * d, pm.t(), dout_h, false, 1);
                    matmul(ds, dout_h, v.t(), false, 1);
                    softmax_grad_rows(p, ds, t, s.scale, avx2);
                    let dsm = MatRef::row_major(ds, t, t);
                    matmul_to(&mut dqkv[h * hd..], 3 * d, dsm, k, false, 1);
                    matmul_to(&mut dqkv[d + h * hd..], 3 * d, dsm.t(), q, false, 1);
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random sequence in [−1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect()
    }

    /// The loss `Σ out ⊙ w` in f64 by the definition, for finite differences.
    fn loss(s: &AttentionShape, qkv: &[f64], w: &[f32]) -> f64 {
        let (t, d, hd) = (s.tokens, s.dim(), s.head_dim);
        let mut total = 0.0;
        for b in 0..s.batch {
            let at = |i: usize, part: usize, h: usize, c: usize| {
                qkv[(b * t + i) * 3 * d + part * d + h * hd + c]
            };
            for h in 0..s.heads {
                for i in 0..t {
                    let logits: Vec<f64> = (0..t)
                        .map(|j| {
                            (0..hd)
                                .map(|c| at(i, 0, h, c) * at(j, 1, h, c))
                                .sum::<f64>()
                                * s.scale as f64
                        })
                        .collect();
                    let max = logits.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..hd {
                        let o: f64 = (0..t).map(|j| e[j] / z * at(j, 2, h, c)).sum();
                        total += o * w[(b * t + i) * d + h * hd + c] as f64;
                    }
                }
            }
        }
        total
    }

    #[test]
    fn forward_and_backward_match_the_definition() {
        let s = AttentionShape {
            batch: 2,
            tokens: 5,
            heads: 3,
            head_dim: 4,
            scale: 0.5,
        };
        let qkv = values(s.qkv_len(), 1);
        let w = values(s.out_len(), 2);
        let mut out = vec![0.0; s.out_len()];
        let mut probs = vec![0.0; s.probs_len()];
        attention_forward(&s, &qkv, &mut out, &mut probs);
        let q64: Vec<f64> = qkv.iter().map(|v| *v as f64).collect();
        // The forward, through the loss with one-hot weights on a few outputs.
        for idx in [0, 7, 13, s.out_len() - 1] {
            let mut onehot = vec![0.0; s.out_len()];
            onehot[idx] = 1.0;
            let want = loss(&s, &q64, &onehot);
            assert!((out[idx] as f64 - want).abs() < 1e-5, "out[{idx}]");
        }
        let mut dqkv = vec![0.0; s.qkv_len()];
        attention_backward(&s, &qkv, &probs, &w, &mut dqkv);
        for (i, got) in dqkv.iter().enumerate() {
            let (mut plus, mut minus) = (q64.clone(), q64.clone());
            plus[i] += 1e-5;
            minus[i] -= 1e-5;
            let want = (loss(&s, &plus, &w) - loss(&s, &minus, &w)) / 2e-5;
            assert!(
                (*got as f64 - want).abs() < 1e-4,
                "dqkv[{i}] = {got}, finite difference {want}"
            );
        }
    }
}

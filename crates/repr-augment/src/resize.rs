//! Separable bilinear resampling with torch's antialias semantics (`_upsample_bilinear2d_aa`,
//! the filter torchvision's `resize(..., antialias=True)` uses), on `u8` with torch's fixed-point
//! arithmetic.

/// The taps of one output index: input indices `start..start + weights.len()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AxisWeights {
    /// First input index of each output index.
    pub starts: Vec<usize>,
    /// Number of taps of each output index.
    pub lens: Vec<usize>,
    /// Normalised weights, `max_len` per output index (unused slots are 0).
    pub weights: Vec<f64>,
    /// Slots per output index.
    pub max_len: usize,
}

impl AxisWeights {
    /// Weights mapping `in_size` inputs onto `out_size` outputs with the triangle filter, widened
    /// by the scale when downsampling and `antialias` is set (torch's `aa_filter`, support 1):
    /// `center = scale (i + 1/2)`, taps `trunc(center ± support + 1/2)` clamped to the input,
    /// `w_j = max(0, 1 - |(j - center + 1/2) / scale|)` normalised to sum 1.
    pub fn new(in_size: usize, out_size: usize, antialias: bool) -> Self {
        let mut w = Self::default();
        w.compute(in_size, out_size, antialias);
        w
    }

    /// As [`AxisWeights::new`], reusing the buffers.
    pub fn compute(&mut self, in_size: usize, out_size: usize, antialias: bool) {
        let scale = in_size as f64 / out_size as f64;
        let (support, inv) = if antialias && scale >= 1.0 {
            (scale, 1.0 / scale)
        } else {
            (1.0, 1.0)
        };
        self.max_len = (support.ceil() as usize) * 2 + 1;
        self.starts.clear();
        self.lens.clear();
        self.weights.clear();
        self.weights.resize(out_size * self.max_len, 0.0);
        for i in 0..out_size {
            let center = scale * (i as f64 + 0.5);
            let lo = ((center - support + 0.5) as isize).max(0) as usize;
            let hi = ((center + support + 0.5) as isize).min(in_size as isize) as usize;
            let len = hi.saturating_sub(lo).min(self.max_len);
            let ws = &mut self.weights[i * self.max_len..i * self.max_len + len];
            let mut total = 0.0;
            for (k, w) in ws.iter_mut().enumerate() {
                let x = ((lo + k) as f64 - center + 0.5) * inv;
                *w = (1.0 - x.abs()).max(0.0);
                total += *w;
            }
            if total > 0.0 {
                ws.iter_mut().for_each(|w| *w /= total);
            }
            self.starts.push(lo);
            self.lens.push(len);
        }
    }

    /// The weights of output index `i` (its taps start at `self.starts[i]`).
    pub fn taps(&self, i: usize) -> &[f64] {
        &self.weights[i * self.max_len..i * self.max_len + self.lens[i]]
    }

    /// The dense `[out, in]` matrix of these weights, in `f32`, for an input axis of `in_size`
    /// whose first `offset` entries are skipped (the crop offset), optionally with the output
    /// order reversed (a horizontal flip).
    pub fn dense_f32(&self, in_size: usize, offset: usize, reverse: bool) -> Vec<f32> {
        let out = self.starts.len();
        let mut m = vec![0.0f32; out * in_size];
        for i in 0..out {
            let row = if reverse { out - 1 - i } else { i };
            for (k, &w) in self.taps(i).iter().enumerate() {
                m[row * in_size + offset + self.starts[i] + k] = w as f32;
            }
        }
        m
    }

    /// As [`AxisWeights::dense_f32`] with torch's fixed-point weights `W / 2^P` (exact in `f32`).
    pub fn dense_fixed(&self, in_size: usize, offset: usize, reverse: bool) -> Vec<f32> {
        let fixed = FixedWeights::from_weights(self);
        let scale = 1.0 / (1u64 << fixed.precision) as f32;
        let out = self.starts.len();
        let mut m = vec![0.0f32; out * in_size];
        for i in 0..out {
            let row = if reverse { out - 1 - i } else { i };
            for (k, &w) in fixed.taps(i).iter().enumerate() {
                m[row * in_size + offset + self.starts[i] + k] = w as f32 * scale;
            }
        }
        m
    }
}

/// Torch's native `u8` weights: `W_j = round(w_j 2^P)` with the largest `P <= 22` such that the
/// largest weight stays below `2^15` (16-bit SIMD lanes).
#[derive(Debug, Clone, Default)]
pub(crate) struct FixedWeights {
    pub weights: Vec<i32>,
    pub max_len: usize,
    pub lens: Vec<usize>,
    pub precision: u32,
}

impl FixedWeights {
    pub fn from_weights(w: &AxisWeights) -> Self {
        let mut f = Self::default();
        f.compute(w);
        f
    }

    pub fn compute(&mut self, w: &AxisWeights) {
        let wmax = w.weights.iter().cloned().fold(0.0f64, f64::max);
        let mut precision = 0u32;
        while precision < 22 && ((0.5 + wmax * (1u64 << (precision + 1)) as f64) as i64) < (1 << 15)
        {
            precision += 1;
        }
        let scale = (1u64 << precision) as f64;
        self.precision = precision;
        self.max_len = w.max_len;
        self.lens.clear();
        self.lens.extend_from_slice(&w.lens);
        self.weights.clear();
        // Round half away from zero; the weights are non-negative.
        self.weights
            .extend(w.weights.iter().map(|&v| (v * scale + 0.5).trunc() as i32));
    }

    pub fn taps(&self, i: usize) -> &[i32] {
        &self.weights[i * self.max_len..i * self.max_len + self.lens[i]]
    }
}

/// Reusable buffers of [`resized_crop_u8`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ResizeScratch {
    axis: AxisWeights,
    x: FixedWeights,
    y: FixedWeights,
    tmp: Vec<u8>,
    acc: Vec<i32>,
}

/// A crop window of a CHW image: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Crops `src` (`channels x src_h x src_w`) to `crop` and resizes it to `out_h x out_w` into `out`,
/// bit-exactly as torch's native `u8` antialiased bilinear kernel: the horizontal pass first
/// (skipped when the width does not change), rounded and stored as `u8`, then the vertical pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resized_crop_u8(
    src: &[u8],
    channels: usize,
    src_w: usize,
    crop: CropBox,
    out_h: usize,
    out_w: usize,
    antialias: bool,
    scratch: &mut ResizeScratch,
    out: &mut [u8],
) {
    let src_h = src.len() / (channels * src_w);
    let CropBox {
        top,
        left,
        height,
        width,
    } = crop;
    debug_assert!(top + height <= src_h && left + width <= src_w);
    debug_assert_eq!(out.len(), channels * out_h * out_w);
    let ResizeScratch {
        axis,
        x,
        y,
        tmp,
        acc,
    } = scratch;
    // Horizontal pass: crop rows -> tmp [channels, height, out_w].
    tmp.clear();
    tmp.resize(channels * height * out_w, 0);
    if width == out_w {
        for c in 0..channels {
            for r in 0..height {
                let s = (c * src_h + top + r) * src_w + left;
                let d = (c * height + r) * out_w;
                tmp[d..d + out_w].copy_from_slice(&src[s..s + out_w]);
            }
        }
    } else {
        axis.compute(width, out_w, antialias);
        x.compute(axis);
        let half = 1i32 << (x.precision - 1);
        for c in 0..channels {
            for r in 0..height {
                let s = (c * src_h + top + r) * src_w + left;
                let row = &src[s..s + width];
                let d = (c * height + r) * out_w;
                for (o, value) in tmp[d..d + out_w].iter_mut().enumerate() {
                    let start = axis.starts[o];
                    let sum: i32 = x
                        .taps(o)
                        .iter()
                        .zip(&row[start..])
                        .map(|(&w, &v)| w * v as i32)
                        .sum();
                    *value = ((sum + half) >> x.precision).clamp(0, 255) as u8;
                }
            }
        }
    }
    // Vertical pass: tmp -> out [channels, out_h, out_w].
    if height == out_h {
        out.copy_from_slice(tmp);
        return;
    }
    axis.compute(height, out_h, antialias);
    y.compute(axis);
    let half = 1i32 << (y.precision - 1);
    acc.clear();
    acc.resize(out_w, 0);
    for c in 0..channels {
        let plane = &tmp[c * height * out_w..(c + 1) * height * out_w];
        for o in 0..out_h {
            acc.fill(half);
            let start = axis.starts[o];
            for (k, &w) in y.taps(o).iter().enumerate() {
                let row = &plane[(start + k) * out_w..(start + k + 1) * out_w];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += w * v as i32;
                }
            }
            let d = (c * out_h + o) * out_w;
            for (value, &a) in out[d..d + out_w].iter_mut().zip(acc.iter()) {
                *value = (a >> y.precision).clamp(0, 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_match_bilinear_when_upscaling() {
        for (n_in, n_out) in [(7, 3), (150, 64), (4, 7), (5, 9), (32, 32)] {
            let w = AxisWeights::new(n_in, n_out, true);
            for i in 0..n_out {
                let s: f64 = w.taps(i).iter().sum();
                assert!((s - 1.0).abs() < 1e-12, "{n_in}->{n_out} output {i}: {s}");
            }
        }
        // Upscaling 4 -> 8: align_corners=False bilinear, edges clamped.
        let w = AxisWeights::new(4, 8, true);
        let dense = w.dense_f32(4, 0, false);
        for i in 0..8 {
            let src = ((i as f64 + 0.5) * 0.5 - 0.5).max(0.0);
            let (i0, frac) = (src.floor() as usize, src - src.floor());
            let mut expected = [0.0f64; 4];
            expected[i0] += 1.0 - frac;
            expected[(i0 + 1).min(3)] += frac;
            for j in 0..4 {
                assert!((dense[i * 4 + j] as f64 - expected[j]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn same_size_is_identity() {
        let src: Vec<u8> = (0..=255).cycle().take(3 * 5 * 6).collect();
        let mut out = vec![0; src.len()];
        let crop = CropBox {
            top: 0,
            left: 0,
            height: 5,
            width: 6,
        };
        let mut scratch = ResizeScratch::default();
        resized_crop_u8(&src, 3, 6, crop, 5, 6, true, &mut scratch, &mut out);
        assert_eq!(out, src);
        // The fixed-point weights of a same-size axis are exactly one tap of 2^P.
        let f = FixedWeights::from_weights(&AxisWeights::new(6, 6, true));
        for i in 0..6 {
            assert_eq!(f.taps(i)[0], 1 << f.precision);
        }
    }
}

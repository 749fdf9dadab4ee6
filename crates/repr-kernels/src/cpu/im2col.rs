//! The geometry of a 2-D convolution on NCHW data, and the im2col / col2im re-layouts that turn
//! it into matrix products.
//!
//! A group of `g` images becomes one column matrix `[c_in·kh·kw, g·h_out·w_out]`, row
//! `(c, ki, kj)` and column `(image, oh, ow)`, so that the forward pass is one GEMM
//! `W[c_out, c_in·kh·kw] · col` per group and the weight gradient sums `dY · colᵀ` over groups
//! (K = batch·pixels, the formulation of Burn's cubecl `wgrad_im2col`).

/// Shape and hyperparameters of one `conv2d` call (groups = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `[height, width]`.
    pub stride: [usize; 2],
    /// Padding before the first row and column `[top, left]`.
    pub pad: [usize; 2],
    /// Padding after the last row and column `[bottom, right]`.
    pub pad_end: [usize; 2],
    /// Dilation `[height, width]`.
    pub dilation: [usize; 2],
    /// Output height.
    pub h_out: usize,
    /// Output width.
    pub w_out: usize,
}

impl ConvShape {
    /// The geometry of `x [batch, c_in, h, w]` convolved with `weight [c_out, c_in, kh, kw]`,
    /// or `None` when the kernel (dilated) does not fit in the padded input.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
    ) -> Option<Self> {
        let [batch, c_in, h, w] = x;
        let [c_out, c_in_w, kh, kw] = weight;
        if c_in != c_in_w || stride.contains(&0) || dilation.contains(&0) || kh == 0 || kw == 0 {
            return None;
        }
        let out = |size: usize, (a, b): (usize, usize), k: usize, s: usize, d: usize| {
            let span = d * (k - 1) + 1;
            (size + a + b).checked_sub(span).map(|r| r / s + 1)
        };
        let h_out = out(h, padding[0], kh, stride[0], dilation[0])?;
        let w_out = out(w, padding[1], kw, stride[1], dilation[1])?;
        Some(Self {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride,
            pad: [padding[0].0, padding[1].0],
            pad_end: [padding[0].1, padding[1].1],
            dilation,
            h_out,
            w_out,
        })
    }

    /// Rows of the column matrix: `c_in · kh · kw`.
    pub fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Output pixels per image.
    pub fn pixels(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Input pixels per image.
    pub fn in_pixels(&self) -> usize {
        self.h * self.w
    }

    /// A 1×1, stride-1, unpadded convolution: the input already is its column matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.pad_end == [0, 0]
    }

    /// Multiply-adds of the forward pass.
    pub fn macs(&self) -> usize {
        self.batch * self.c_out * self.pixels() * self.k()
    }

    /// Images per GEMM: enough that the product has ~512 columns (a 4×4 feature map alone gives
    /// a 16-column GEMM that cannot fill the vector units), but no more than leaves each thread
    /// one group.
    pub fn group_size(&self, threads: usize) -> usize {
        self.group_size_for(threads, 512)
    }

    /// Images per GEMM for products of about `columns` columns (at most one group per thread).
    pub fn group_size_for(&self, threads: usize, columns: usize) -> usize {
        let wanted = columns.div_ceil(self.pixels().max(1)).max(1);
        let per_thread = self.batch.div_ceil(threads.max(1)).max(1);
        wanted.min(per_thread).min(self.batch.max(1))
    }

    /// The range of output columns `ow` whose input column `ow·s + off` lies in `[0, size)`.
    fn valid(off: isize, stride: usize, size: usize, out: usize) -> (usize, usize) {
        let s = stride as isize;
        let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
        let hi = if (size as isize) <= off {
            0
        } else {
            ((size as isize - off) + s - 1) / s
        };
        let hi = (hi.max(0) as usize).min(out);
        let lo = (lo as usize).min(hi);
        (lo, hi)
    }

    /// Writes the column matrix of images `n0 .. n0 + g` of `x` (the whole NCHW batch) into
    /// `col`, `[k, g · pixels]` row-major.
    pub fn im2col(&self, x: &[f32], n0: usize, g: usize, col: &mut [f32]) {
        let (p, hw, gp) = (self.pixels(), self.in_pixels(), g * self.pixels());
        let (wo, sh, sw) = (self.w_out, self.stride[0], self.stride[1]);
        for c in 0..self.c_in {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = (c * self.kh + ki) * self.kw + kj;
                    let dst_row = &mut col[row * gp..(row + 1) * gp];
                    let off = (kj * self.dilation[1]) as isize - self.pad[1] as isize;
                    let (lo, hi) = Self::valid(off, sw, self.w, wo);
                    for i in 0..g {
                        let src = &x[((n0 + i) * self.c_in + c) * hw..][..hw];
                        let dst = &mut dst_row[i * p..(i + 1) * p];
                        for oh in 0..self.h_out {
                            let ih =
                                (oh * sh + ki * self.dilation[0]) as isize - self.pad[0] as isize;
                            let d = &mut dst[oh * wo..(oh + 1) * wo];
                            if ih < 0 || ih as usize >= self.h {
                                d.fill(0.0);
                                continue;
                            }
                            let s = &src[ih as usize * self.w..][..self.w];
                            d[..lo].fill(0.0);
                            d[hi..].fill(0.0);
                            if sw == 1 {
                                let start = (lo as isize + off) as usize;
                                d[lo..hi].copy_from_slice(&s[start..start + (hi - lo)]);
                            } else {
                                for (ow, v) in d[lo..hi].iter_mut().enumerate() {
                                    *v = s[(((lo + ow) * sw) as isize + off) as usize];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`im2col`](Self::im2col): adds each entry of `col` (`[k, g · pixels]`)
    /// into the input position it was read from, in `dx` (images `n0 .. n0 + g` of the batch).
    pub fn col2im(&self, col: &[f32], n0: usize, g: usize, dx: &mut [f32]) {
        let (p, hw, gp) = (self.pixels(), self.in_pixels(), g * self.pixels());
        let (wo, sh, sw) = (self.w_out, self.stride[0], self.stride[1]);
        for c in 0..self.c_in {
            for ki in 0..self.kh {
                for kj in 0..self.kw {
                    let row = (c * self.kh + ki) * self.kw + kj;
                    let src_row = &col[row * gp..(row + 1) * gp];
                    let off = (kj * self.dilation[1]) as isize - self.pad[1] as isize;
                    let (lo, hi) = Self::valid(off, sw, self.w, wo);
                    for i in 0..g {
                        let dst = &mut dx[((n0 + i) * self.c_in + c) * hw..][..hw];
                        let src = &src_row[i * p..(i + 1) * p];
                        for oh in 0..self.h_out {
                            let ih =
                                (oh * sh + ki * self.dilation[0]) as isize - self.pad[0] as isize;
                            if ih < 0 || ih as usize >= self.h {
                                continue;
                            }
                            let d = &mut dst[ih as usize * self.w..][..self.w];
                            let s = &src[oh * wo..(oh + 1) * wo];
                            if sw == 1 {
                                let start = (lo as isize + off) as usize;
                                for (a, b) in d[start..start + (hi - lo)].iter_mut().zip(&s[lo..hi])
                                {
                                    *a += *b;
                                }
                            } else {
                                for ow in lo..hi {
                                    d[((ow * sw) as isize + off) as usize] += s[ow];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(h: usize, w: usize, k: usize, s: usize, p: (usize, usize), d: usize) -> ConvShape {
        ConvShape::new([2, 3, h, w], [4, 3, k, k], [s, s], [p, p], [d, d]).expect("valid shape")
    }

    #[test]
    fn output_size_follows_pytorch() {
        assert_eq!(
            (
                shape(32, 32, 3, 1, (1, 1), 1).h_out,
                shape(32, 32, 3, 2, (1, 1), 1).h_out
            ),
            (32, 16)
        );
        assert_eq!(shape(224, 224, 7, 2, (3, 3), 1).h_out, 112);
        assert_eq!(shape(7, 9, 3, 2, (0, 1), 2).w_out, 3); // (9 + 0 + 1 - 5) / 2 + 1
        assert!(ConvShape::new([1, 1, 2, 2], [1, 1, 5, 5], [1, 1], [(0, 0); 2], [1, 1]).is_none());
    }

    /// im2col against the definition, and col2im as its adjoint: <im2col(x), c> = <x, col2im(c)>.
    #[test]
    fn im2col_matches_the_definition_and_col2im_is_its_adjoint() {
        for s in [
            shape(5, 6, 3, 1, (1, 1), 1),
            shape(7, 5, 3, 2, (1, 0), 1),
            shape(6, 6, 2, 3, (0, 2), 2),
        ] {
            let x: Vec<f32> = (0..s.batch * s.c_in * s.h * s.w)
                .map(|i| (i as f32 * 0.7).sin())
                .collect();
            let (k, p) = (s.k(), s.pixels());
            let mut col = vec![f32::NAN; k * 2 * p];
            s.im2col(&x, 0, 2, &mut col);
            for n in 0..2 {
                for c in 0..3 {
                    for ki in 0..s.kh {
                        for kj in 0..s.kw {
                            for oh in 0..s.h_out {
                                for ow in 0..s.w_out {
                                    let ih = (oh * s.stride[0] + ki * s.dilation[0]) as isize
                                        - s.pad[0] as isize;
                                    let iw = (ow * s.stride[1] + kj * s.dilation[1]) as isize
                                        - s.pad[1] as isize;
                                    let inside = ih >= 0
                                        && iw >= 0
                                        && (ih as usize) < s.h
                                        && (iw as usize) < s.w;
                                    let want = if inside {
                                        x[((n * 3 + c) * s.h + ih as usize) * s.w + iw as usize]
                                    } else {
                                        0.0
                                    };
                                    let row = (c * s.kh + ki) * s.kw + kj;
                                    assert_eq!(
                                        col[row * 2 * p + n * p + oh * s.w_out + ow],
                                        want,
                                        "{s:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
            let c: Vec<f32> = (0..col.len()).map(|i| (i as f32 * 0.3).cos()).collect();
            let mut back = vec![0.0; x.len()];
            s.col2im(&c, 0, 2, &mut back);
            let lhs: f64 = col
                .iter()
                .zip(&c)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            let rhs: f64 = x
                .iter()
                .zip(&back)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-6 * lhs.abs().max(1.0),
                "{lhs} vs {rhs} for {s:?}"
            );
        }
    }
}

//! 2-D convolution, forward and backward, as im2col + GEMM over groups of images.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::direct;
use super::gemm::{MatRef, matmul, matmul_into};
use super::im2col::ConvShape;
use super::output::write_filled;
use super::parallel::{SharedMut, split, threads};
use super::scratch::with_scratch;

/// Columns (images × pixels) per weight-gradient GEMM when no input gradient shares the pass.
const DW_COLUMNS: usize = 4096;

/// How the images of a batch are shared out: groups of `size` images, one GEMM each; when there
/// are fewer groups than threads the groups run one after the other with gemm's own threads.
struct Plan {
    size: usize,
    count: usize,
    inner_threads: usize,
}

impl Plan {
    fn new(s: &ConvShape) -> Self {
        Self::with_columns(s, 512)
    }

    /// Groups whose GEMMs have about `columns` columns.
    fn with_columns(s: &ConvShape, columns: usize) -> Self {
        let t = threads();
        let size = s.group_size_for(t, columns);
        let count = s.batch.div_ceil(size);
        Self {
            size,
            count,
            inner_threads: if count >= t { 1 } else { t },
        }
    }

    /// First image and image count of group `g`.
    fn group(&self, g: usize, batch: usize) -> (usize, usize) {
        let n0 = g * self.size;
        (n0, self.size.min(batch - n0))
    }
}

/// `y = conv2d(x, weight) + bias`, NCHW, `groups = 1`.
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]`
/// - `weight`: `[c_out, c_in, kh, kw]`
/// - `bias`: `[c_out]`
/// - `y`: `[batch, c_out, h_out, w_out]` (overwritten; need not be initialised)
pub fn conv2d_forward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let (k, p, co) = (s.k(), s.pixels(), s.c_out);
    assert_eq!(
        x.len(),
        s.batch * s.c_in * s.in_pixels(),
        "conv2d: input length"
    );
    assert_eq!(weight.len(), co * k, "conv2d: weight length");
    assert_eq!(y.len(), s.batch * co * p, "conv2d: output length");
    if direct::applies(s) && s.batch >= threads() {
        return direct::conv3x3_forward(s, x, weight, bias, y);
    }
    let plan = Plan::new(s);
    let w = MatRef::row_major(weight, co, k);
    let out = SharedMut::of(y);
    let run = |g: usize| {
        let (n0, gn) = plan.group(g, s.batch);
        // SAFETY: group g owns output images n0 .. n0 + gn, disjoint from every other group's.
        let y_g = unsafe { out.uninit(n0 * co * p, gn * co * p) };
        if gn == 1 && s.is_pointwise() {
            let x_n = MatRef::row_major(&x[n0 * k * p..(n0 + 1) * k * p], k, p);
            matmul_into(y_g, w, x_n, plan.inner_threads);
        } else {
            let product = if gn == 1 { 0 } else { co * gn * p };
            with_scratch(k * gn * p, product, |col, tmp| {
                s.im2col(x, n0, gn, col);
                let col = MatRef::row_major(col, k, gn * p);
                if gn == 1 {
                    matmul_into(y_g, w, col, plan.inner_threads);
                } else {
                    // [c_out, (image, pixel)] → [image, c_out, pixel]
                    matmul(tmp, w, col, false, plan.inner_threads);
                    for i in 0..gn {
                        for c in 0..co {
                            y_g[(i * co + c) * p..][..p]
                                .write_copy_of_slice(&tmp[c * gn * p + i * p..][..p]);
                        }
                    }
                }
            });
        }
        // SAFETY: each branch above wrote every element of the group's images.
        let y_g = unsafe { y_g.assume_init_mut() };
        if let Some(b) = bias {
            for (i, plane) in y_g.chunks_exact_mut(p).enumerate() {
                let v = b[i % co];
                plane.iter_mut().for_each(|e| *e += v);
            }
        }
    };
    if plan.inner_threads > 1 {
        (0..plan.count).for_each(run);
    } else {
        (0..plan.count).into_par_iter().for_each(run);
    }
}

/// The gradients of [`conv2d_forward`] given `dy`, the gradient of its output: `dx` (input),
/// `dweight` (`Σ dY · colᵀ` over the batch) and `dbias` (`Σ dY` per channel), each computed
/// only when asked for. One pass over the batch: each group's `dY` and column matrix serve both
/// the weight and the input gradient while they are in cache.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    dx: Option<&mut [MaybeUninit<f32>]>,
    dweight: Option<&mut [f32]>,
    dbias: Option<&mut [f32]>,
) {
    let (k, p, co) = (s.k(), s.pixels(), s.c_out);
    assert_eq!(
        dy.len(),
        s.batch * co * p,
        "conv2d backward: output-gradient length"
    );
    if let Some(db) = dbias {
        db.fill(0.0);
        for (i, plane) in dy.chunks_exact(p).enumerate() {
            db[i % co] += plane.iter().sum::<f32>();
        }
    }
    // A direct 3×3 convolution gives the input gradient without a column matrix.
    let dx = match dx {
        Some(d) if direct::applies(s) && s.batch >= threads() => {
            assert_eq!(
                d.len(),
                s.batch * s.c_in * s.in_pixels(),
                "conv2d backward: input-gradient length"
            );
            direct::conv3x3_input_grad(s, dy, weight, d);
            None
        }
        other => other,
    };
    // And the weight gradient as nine tap GEMMs over the zero-bordered planes.
    let dweight = match dweight {
        Some(dw) if direct::applies(s) && s.batch >= threads() => {
            direct::conv3x3_weight_grad(s, x, dy, dw);
            None
        }
        other => other,
    };
    let want_dx = dx.is_some();
    let want_dw = dweight.is_some();
    if !want_dx && !want_dw {
        return;
    }
    // The weight gradient alone sums over K = images × pixels: longer products amortise
    // gemm's packing of the column matrix better.
    let plan = if want_dx {
        Plan::new(s)
    } else {
        Plan::with_columns(s, DW_COLUMNS)
    };
    let w_t = MatRef::row_major(weight, co, k).t();
    let dx_ptr = dx.map(|d| {
        assert_eq!(
            d.len(),
            s.batch * s.c_in * s.in_pixels(),
            "conv2d backward: input-gradient length"
        );
        SharedMut::of(d)
    });
    // One group: accumulate into `dw_acc` (when the weight gradient is wanted), write dx.
    let group = |g: usize, dw_acc: &mut [f32]| {
        let (n0, gn) = plan.group(g, s.batch);
        let gp = gn * p;
        let gathered = if gn == 1 { 0 } else { co * gp };
        let col_len = if want_dw && !(gn == 1 && s.is_pointwise()) {
            k * gp
        } else {
            0
        };
        let dcol_len = if want_dx && !(gn == 1 && s.is_pointwise()) {
            k * gp
        } else {
            0
        };
        with_scratch(gathered + col_len, dcol_len, |buf, dcol| {
            let (dy_buf, col) = buf.split_at_mut(gathered);
            // dY of the group as [c_out, (image, pixel)].
            let dy_g: &[f32] = if gn == 1 {
                &dy[n0 * co * p..(n0 + 1) * co * p]
            } else {
                for i in 0..gn {
                    for c in 0..co {
                        dy_buf[c * gp + i * p..][..p]
                            .copy_from_slice(&dy[((n0 + i) * co + c) * p..][..p]);
                    }
                }
                dy_buf
            };
            let dy_g = MatRef::row_major(dy_g, co, gp);
            if want_dw {
                let col = if gn == 1 && s.is_pointwise() {
                    MatRef::row_major(&x[n0 * k * p..(n0 + 1) * k * p], k, p)
                } else {
                    s.im2col(x, n0, gn, col);
                    MatRef::row_major(col, k, gp)
                };
                matmul(dw_acc, dy_g, col.t(), true, plan.inner_threads);
            }
            if let Some(dx_ptr) = dx_ptr {
                let in_len = s.c_in * s.in_pixels();
                // SAFETY: group g owns input-gradient images n0 .. n0 + gn.
                let dx_g = unsafe { dx_ptr.uninit(n0 * in_len, gn * in_len) };
                if gn == 1 && s.is_pointwise() {
                    matmul_into(dx_g, w_t, dy_g, plan.inner_threads);
                } else {
                    matmul(dcol, w_t, dy_g, false, plan.inner_threads);
                    let dx_g = write_filled(dx_g, 0.0);
                    // col2im indexes images from the start of the slice it is given.
                    s.col2im(dcol, 0, gn, dx_g);
                }
            }
        });
    };
    let dw_len = if want_dw { co * k } else { 0 };
    match dweight {
        Some(dw) if plan.inner_threads > 1 => {
            dw.fill(0.0);
            (0..plan.count).for_each(|g| group(g, dw));
        }
        None if plan.inner_threads > 1 => (0..plan.count).for_each(|g| group(g, &mut [])),
        dw => {
            // One accumulator per thread over a contiguous range of groups, summed at the end
            // (a fixed split, so the result does not depend on scheduling).
            let ranges: Vec<_> = split(plan.count, threads()).collect();
            let partials: Vec<Vec<f32>> = ranges
                .into_par_iter()
                .map(|range| {
                    let mut acc = vec![0.0; dw_len];
                    range.for_each(|g| group(g, &mut acc));
                    acc
                })
                .collect();
            if let Some(dw) = dw {
                dw.fill(0.0);
                for part in &partials {
                    dw.iter_mut().zip(part).for_each(|(a, b)| *a += *b);
                }
            }
        }
    }
}

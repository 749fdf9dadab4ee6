//! Linear layers over all rows at once: `y = x · W + b` as one GEMM whatever the input's leading
//! dimensions (Burn's flex runs a `[batch, tokens, d_in]` input as `batch` broadcast GEMMs of
//! `tokens` rows when the merged product is not "squarer"), and its three gradients, each one
//! GEMM or one pass.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{MatRef, matmul, matmul_into};
use super::output::written;
use super::parallel::threads;

/// A linear layer's geometry: `rows × d_in` input, `d_in × d_out` weight (Burn's layout, the
/// transpose of PyTorch's), `rows × d_out` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearShape {
    /// Input rows (every leading dimension merged).
    pub rows: usize,
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
}

impl LinearShape {
    fn x<'a>(&self, x: &'a [f32]) -> MatRef<'a> {
        assert_eq!(x.len(), self.rows * self.d_in, "linear: input length");
        MatRef::row_major(x, self.rows, self.d_in)
    }

    fn w<'a>(&self, w: &'a [f32]) -> MatRef<'a> {
        assert_eq!(w.len(), self.d_in * self.d_out, "linear: weight length");
        MatRef::row_major(w, self.d_in, self.d_out)
    }

    fn dy<'a>(&self, dy: &'a [f32]) -> MatRef<'a> {
        assert_eq!(dy.len(), self.rows * self.d_out, "linear: gradient length");
        MatRef::row_major(dy, self.rows, self.d_out)
    }
}

/// Rows per task when filling rows with the bias and when summing columns.
const ROWS: usize = 64;

/// `y = x · w (+ bias)`, every element of `y` written: the rows start as the bias and the
/// product accumulates onto them (one write of the bias, where a separate add would read and
/// write `y` once more).
pub fn linear_forward(
    s: LinearShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let (x, w) = (s.x(x), s.w(w));
    assert_eq!(y.len(), s.rows * s.d_out, "linear: output length");
    let Some(bias) = bias else {
        matmul_into(y, x, w, threads());
        return;
    };
    assert_eq!(bias.len(), s.d_out, "linear: bias length");
    if y.is_empty() {
        return;
    }
    y.par_chunks_mut(ROWS * s.d_out).for_each(|block| {
        for row in block.chunks_mut(s.d_out) {
            row.write_copy_of_slice(bias);
        }
    });
    // SAFETY: every row was just written with the bias.
    let y = unsafe { y.assume_init_mut() };
    matmul(y, x, w, true, threads());
}

/// The gradients of a linear layer that `want` asks for, `[dx, dw, dbias]`: `dx = dy · wᵀ`
/// (`rows × d_in`), `dw = xᵀ · dy` (one GEMM over all rows), `dbias` the column sums of `dy`.
pub fn linear_backward(
    s: LinearShape,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    want: [bool; 3],
) -> [Option<Vec<f32>>; 3] {
    let (xm, wm, dym) = (s.x(x), s.w(w), s.dy(dy));
    // SAFETY (both): the GEMM writes every element of its destination.
    let dx = want[0]
        .then(|| unsafe { written(s.rows * s.d_in, |dx| matmul_into(dx, dym, wm.t(), threads())) }.0);
    let dw = want[1].then(|| {
        unsafe {
            written(s.d_in * s.d_out, |dw| {
                matmul_into(dw, xm.t(), dym, threads())
            })
        }
        .0
    });
    let db = want[2].then(|| column_sums(dy, s.d_out));
    [dx, dw, db]
}

/// The sums of the columns of a row-major matrix `cols` wide: a partial sum per block of
/// [`ROWS`] rows, then the partials added in order, so the result does not depend on the
/// thread count.
fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; cols];
    if cols == 0 {
        return total;
    }
    let partials: Vec<Vec<f32>> = m
        .par_chunks(ROWS * cols)
        .map(|block| {
            let mut sums = vec![0.0f32; cols];
            for row in block.chunks_exact(cols) {
                sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            sums
        })
        .collect();
    for partial in partials {
        total.iter_mut().zip(partial).for_each(|(t, p)| *t += p);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every formula of the module against sums in f64, on a shape with odd sizes, the output
    /// pre-filled with NaN (a missed element would stay NaN).
    #[test]
    fn forward_and_gradients_match_sums_in_f64() {
        let s = LinearShape {
            rows: 37,
            d_in: 13,
            d_out: 70,
        };
        let value = |i: usize, f: f32| (i as f32 * f).sin();
        let x: Vec<f32> = (0..s.rows * s.d_in).map(|i| value(i, 0.37)).collect();
        let w: Vec<f32> = (0..s.d_in * s.d_out).map(|i| value(i, 0.11)).collect();
        let b: Vec<f32> = (0..s.d_out).map(|i| value(i, 0.7)).collect();
        let dy: Vec<f32> = (0..s.rows * s.d_out).map(|i| value(i, 0.23)).collect();
        let close = |what: &str, got: &[f32], want: &[f64]| {
            assert_eq!(got.len(), want.len(), "{what}");
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (*g as f64 - w).abs() < 1e-4 * w.abs().max(1.0),
                    "{what}[{i}]: {g} vs {w}"
                );
            }
        };
        let dot = |a: &dyn Fn(usize) -> f32, b: &dyn Fn(usize) -> f32, n: usize| -> f64 {
            (0..n).map(|k| a(k) as f64 * b(k) as f64).sum()
        };
        for bias in [None, Some(&b[..])] {
            let mut y = vec![f32::NAN; s.rows * s.d_out];
            // SAFETY: only initialised values are written.
            linear_forward(s, &x, &w, bias, unsafe {
                crate::cpu::output::overwrite(&mut y)
            });
            let want: Vec<f64> = (0..s.rows * s.d_out)
                .map(|i| {
                    let (r, c) = (i / s.d_out, i % s.d_out);
                    let xr = |k: usize| x[r * s.d_in + k];
                    let wc = |k: usize| w[k * s.d_out + c];
                    dot(&xr, &wc, s.d_in) + bias.map_or(0.0, |b| b[c] as f64)
                })
                .collect();
            close("y", &y, &want);
        }
        let [dx, dw, db] = linear_backward(s, &x, &w, &dy, [true, true, true]);
        let want_dx: Vec<f64> = (0..s.rows * s.d_in)
            .map(|i| {
                let (r, k) = (i / s.d_in, i % s.d_in);
                dot(&|c| dy[r * s.d_out + c], &|c| w[k * s.d_out + c], s.d_out)
            })
            .collect();
        let want_dw: Vec<f64> = (0..s.d_in * s.d_out)
            .map(|i| {
                let (k, c) = (i / s.d_out, i % s.d_out);
                dot(&|r| x[r * s.d_in + k], &|r| dy[r * s.d_out + c], s.rows)
            })
            .collect();
        let want_db: Vec<f64> = (0..s.d_out)
            .map(|c| (0..s.rows).map(|r| dy[r * s.d_out + c] as f64).sum())
            .collect();
        close("dx", &dx.unwrap(), &want_dx);
        close("dw", &dw.unwrap(), &want_dw);
        close("db", &db.unwrap(), &want_db);
        assert_eq!(
            linear_backward(s, &x, &w, &dy, [false, true, false]).map(|g| g.is_some()),
            [false, true, false]
        );
    }
}

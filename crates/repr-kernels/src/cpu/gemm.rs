//! A safe face for the `gemm` crate: row-major slices with explicit strides.

use std::mem::MaybeUninit;

use gemm::Parallelism;

/// A read-only matrix view: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    /// The backing storage.
    pub data: &'a [f32],
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Distance between rows, in elements.
    pub row_stride: usize,
    /// Distance between columns, in elements.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A contiguous row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self, what: &str) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
        assert!(
            last < self.data.len(),
            "gemm: {what} view ({}×{}) exceeds its buffer",
            self.rows,
            self.cols
        );
    }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `dst` a contiguous row-major
/// `a.rows × b.cols` matrix. `threads > 1` lets gemm split the product itself; callers that
/// already run one product per thread pass 1.
pub fn matmul(dst: &mut [f32], a: MatRef<'_>, b: MatRef<'_>, accumulate: bool, threads: usize) {
    matmul_to(dst, b.cols, a, b, accumulate, threads)
}

/// As [`matmul`], with row `r` of the product at `dst[r * dst_row_stride..]` (a block of
/// columns inside a wider row-major matrix).
pub fn matmul_to(
    dst: &mut [f32],
    dst_row_stride: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) {
    // SAFETY: `dst` is initialised and only initialised values are written into it.
    let out = unsafe { super::output::overwrite(dst) };
    product(out, dst_row_stride, a, b, accumulate, threads)
}

/// `dst = a · b` into a buffer that need not be initialised (it is written, never read), as
/// [`matmul`] without `accumulate`.
pub fn matmul_into(dst: &mut [MaybeUninit<f32>], a: MatRef<'_>, b: MatRef<'_>, threads: usize) {
    product(dst, b.cols, a, b, false, threads)
}

/// [`matmul_to`] on a buffer that is read only with `accumulate` (and then initialised).
fn product(
    dst: &mut [MaybeUninit<f32>],
    dst_row_stride: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) {
    assert_eq!(a.cols, b.rows, "gemm: inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(dst_row_stride >= n, "gemm: destination rows overlap");
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        dst.len() >= (m - 1) * dst_row_stride + n,
        "gemm: destination too small"
    );
    a.check("lhs");
    b.check("rhs");
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                super::output::write_filled(&mut dst[r * dst_row_stride..][..n], 0.0);
            }
        }
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every view was bounds-checked above against its slice, `dst` holds the m×n
    // block at row stride `dst_row_stride` ≥ n (rows do not overlap), and `dst` (a unique
    // borrow) cannot alias `a` or `b`; gemm reads `dst` only when `accumulate` (`read_dst`),
    // when the caller's buffer is initialised, and writes every element of the block.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().cast::<f32>(),
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f32> {
        let mut out = vec![0.0; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[i * a.row_stride + p * a.col_stride] as f64
                        * b.data[p * b.row_stride + j * b.col_stride] as f64;
                }
                out[i * b.cols + j] = s as f32;
            }
        }
        out
    }

    #[test]
    fn transposed_views_and_accumulation_match_a_naive_product() {
        let a: Vec<f32> = (0..35).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..35).map(|i| (i as f32 * 0.11).cos()).collect();
        // a: 5×7; b stored 5×7 and read transposed as 7×5.
        let (va, vb) = (MatRef::row_major(&a, 5, 7), MatRef::row_major(&b, 5, 7).t());
        let expected = naive(va, vb);
        let mut dst = vec![1.0; 25];
        matmul(&mut dst, va, vb, false, 1);
        for (x, y) in dst.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
        matmul(&mut dst, va, vb, true, 2);
        for (x, y) in dst.iter().zip(&expected) {
            assert!((x - 2.0 * y).abs() < 1e-5, "{x} vs {}", 2.0 * y);
        }
    }
}

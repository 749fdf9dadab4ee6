//! Direct 3×3 convolution (stride 1, padding 1, no dilation) with AVX-512: no column matrix.
//!
//! im2col + GEMM writes and packs a column matrix nine times the size of the input; at the
//! widest layers (64 channels at 32×32) that traffic held the GEMM at ~40% of the FMA peak.
//! Here each image is copied once into a zero-bordered plane, and a register tile of 8 output
//! channels × 2 vectors of 16 pixels accumulates `Σ_ci Σ_tap w · x` straight from it: per input
//! channel and tap, 2 loads and 8 weight broadcasts feed 16 FMAs. The output width is cut into
//! segments of at most 16 pixels (masked at the row end: 28 = 16 + 12), taken two at a time.
//!
//! The input gradient of the same convolution is this convolution of the output gradient with
//! the kernel flipped and its channel axes swapped ([`conv3x3_input_grad`]).

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::gemm::{MatRef, matmul};
use super::im2col::ConvShape;
use super::parallel::{split, threads};

/// Output channels per register tile.
const CB: usize = 8;
/// Pixels per vector.
const LANES: usize = 16;

/// Whether [`conv3x3_forward`] computes this convolution on this CPU: 3×3, stride 1, padding 1
/// on every side, no dilation, rows of at least 14 pixels (narrower rows fill too few lanes;
/// im2col + GEMM does better there), and AVX-512F.
pub fn applies(s: &ConvShape) -> bool {
    s.kh == 3
        && s.kw == 3
        && s.stride == [1, 1]
        && s.pad == [1, 1]
        && s.pad_end == [1, 1]
        && s.dilation == [1, 1]
        && s.w >= 14
        && has_avx512()
}

fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The plane geometry one call works on.
#[derive(Clone, Copy)]
struct Geometry {
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
}

impl Geometry {
    /// Row length of the zero-bordered input plane.
    fn wp(&self) -> usize {
        self.w + 2
    }

    fn padded_plane(&self) -> usize {
        (self.h + 2) * self.wp()
    }

    fn blocks(&self) -> usize {
        self.c_out.div_ceil(CB)
    }

    /// The output segments `(row, first column, pixels)`, row by row.
    fn segments(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.h * self.w.div_ceil(LANES));
        for y in 0..self.h {
            for x0 in (0..self.w).step_by(LANES) {
                out.push((y, x0, LANES.min(self.w - x0)));
            }
        }
        out
    }
}

/// Weights as `[block][c_in][tap][CB]` (zero past `c_out`), from `w(co, ci, tap)`.
fn pack(g: &Geometry, w: impl Fn(usize, usize, usize) -> f32) -> Vec<f32> {
    let mut packed = vec![0.0; g.blocks() * g.c_in * 9 * CB];
    for (i, v) in packed.iter_mut().enumerate() {
        let c = i % CB;
        let tap = (i / CB) % 9;
        let ci = (i / (CB * 9)) % g.c_in;
        let co = (i / (CB * 9 * g.c_in)) * CB + c;
        if co < g.c_out {
            *v = w(co, ci, tap);
        }
    }
    packed
}

/// `y = conv3x3(x, weight) + bias` for a geometry [`applies`] accepted.
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]`
/// - `weight`: `[c_out, c_in, 3, 3]`
/// - `y`: `[batch, c_out, h, w]` (overwritten; need not be initialised)
pub fn conv3x3_forward(
    s: &ConvShape,
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    let g = Geometry {
        c_in: s.c_in,
        c_out: s.c_out,
        h: s.h,
        w: s.w,
    };
    let packed = pack(&g, |co, ci, tap| weight[(co * g.c_in + ci) * 9 + tap]);
    run(&g, s.batch, x, &packed, bias, y);
}

/// The input gradient of [`conv3x3_forward`]: `dx = conv3x3(dy, w')` with
/// `w'[ci, co, tap] = w[co, ci, 8 − tap]` (the kernel turned by 180°).
///
/// # Shapes
/// - `dy`: `[batch, c_out, h, w]`
/// - `weight`: `[c_out, c_in, 3, 3]`
/// - `dx`: `[batch, c_in, h, w]` (overwritten; need not be initialised)
pub fn conv3x3_input_grad(s: &ConvShape, dy: &[f32], weight: &[f32], dx: &mut [MaybeUninit<f32>]) {
    let g = Geometry {
        c_in: s.c_out,
        c_out: s.c_in,
        h: s.h,
        w: s.w,
    };
    let packed = pack(&g, |ci, co, tap| weight[(co * s.c_in + ci) * 9 + (8 - tap)]);
    run(&g, s.batch, dy, &packed, None, dx);
}

/// Images per weight-gradient chunk: the chunk's zero-bordered planes are the K axis of the
/// nine tap GEMMs.
const DW_IMAGES: usize = 4;

/// The weight gradient of [`conv3x3_forward`]: `dw[co, ci, tap] = Σ_n Σ_p dy[n, co, p] ·
/// x[n, ci, p + tap]` (zero outside the image), as nine GEMMs per chunk of images, one per tap,
/// with `K` = the chunk's pixels. Both operands live in the zero-bordered plane layout (row
/// length `w + 2`; `dy` is zero in the border columns), where the input under tap `(ky, kx)` is
/// the same matrix shifted by `ky·(w + 2) + kx` elements: no column matrix is written.
/// Chunks are split over the threads in fixed ranges and summed in order (deterministic).
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]`
/// - `dy`: `[batch, c_out, h, w]`
/// - `dw`: `[c_out, c_in, 3, 3]` (overwritten)
pub fn conv3x3_weight_grad(s: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let g = Geometry {
        c_in: s.c_in,
        c_out: s.c_out,
        h: s.h,
        w: s.w,
    };
    let (ci, co, h, w, wp, plane) = (g.c_in, g.c_out, g.h, g.w, g.wp(), g.padded_plane());
    assert_eq!(x.len(), s.batch * ci * h * w, "direct conv: input length");
    assert_eq!(
        dy.len(),
        s.batch * co * h * w,
        "direct conv: output-gradient length"
    );
    assert_eq!(dw.len(), co * ci * 9, "direct conv: weight-gradient length");
    let chunks = s.batch.div_ceil(DW_IMAGES);
    let ranges: Vec<_> = split(chunks, threads()).collect();
    let slack = 2 * wp + 2;
    let partials: Vec<Vec<f32>> = ranges
        .into_par_iter()
        .map(|range| {
            let mut acc = vec![0.0f32; 9 * co * ci];
            let mut xg = vec![0.0f32; ci * DW_IMAGES * plane + slack];
            let mut dyg = vec![0.0f32; co * DW_IMAGES * plane];
            let mut layout = DW_IMAGES;
            for chunk in range {
                let n0 = chunk * DW_IMAGES;
                let gn = DW_IMAGES.min(s.batch - n0);
                if gn != layout {
                    // A shorter last chunk moves every plane: clear the old contents so the
                    // borders are zero again.
                    xg.fill(0.0);
                    dyg.fill(0.0);
                    layout = gn;
                }
                let k = gn * plane;
                // Channel-major planes: X[c][i][plane], dY[c][i][plane]; the borders (and the
                // rows past h of dY) stay zero from the allocation.
                for i in 0..gn {
                    for c in 0..ci {
                        for r in 0..h {
                            let at = (c * gn + i) * plane + (r + 1) * wp + 1;
                            xg[at..at + w]
                                .copy_from_slice(&x[(((n0 + i) * ci + c) * h + r) * w..][..w]);
                        }
                    }
                    for c in 0..co {
                        for r in 0..h {
                            let at = (c * gn + i) * plane + r * wp;
                            dyg[at..at + w]
                                .copy_from_slice(&dy[(((n0 + i) * co + c) * h + r) * w..][..w]);
                        }
                    }
                }
                let lhs = MatRef {
                    data: &dyg,
                    rows: co,
                    cols: k,
                    row_stride: k,
                    col_stride: 1,
                };
                for tap in 0..9 {
                    let off = (tap / 3) * wp + tap % 3;
                    // Element (q, c) = X[c][q + off]: the input under this tap.
                    let rhs = MatRef {
                        data: &xg[off..],
                        rows: k,
                        cols: ci,
                        row_stride: 1,
                        col_stride: k,
                    };
                    matmul(
                        &mut acc[tap * co * ci..(tap + 1) * co * ci],
                        lhs,
                        rhs,
                        true,
                        1,
                    );
                }
            }
            acc
        })
        .collect();
    dw.fill(0.0);
    for part in &partials {
        for tap in 0..9 {
            for o in 0..co {
                for c in 0..ci {
                    dw[(o * ci + c) * 9 + tap] += part[(tap * co + o) * ci + c];
                }
            }
        }
    }
}

fn run(
    g: &Geometry,
    batch: usize,
    x: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) {
    assert_eq!(
        x.len(),
        batch * g.c_in * g.h * g.w,
        "direct conv: input length"
    );
    assert_eq!(
        y.len(),
        batch * g.c_out * g.h * g.w,
        "direct conv: output length"
    );
    assert!(has_avx512(), "direct conv: needs AVX-512F");
    if let Some(b) = bias {
        assert_eq!(b.len(), g.c_out, "direct conv: bias length");
    }
    let segments = g.segments();
    let (in_image, out_image) = (g.c_in * g.h * g.w, g.c_out * g.h * g.w);
    y.par_chunks_mut(out_image)
        .zip(x.par_chunks(in_image))
        .for_each_init(
            || vec![0.0f32; g.c_in * g.padded_plane()],
            |xp, (y, x)| {
                // The image inside a one-pixel zero border (the border stays zero between
                // images: only the interior is rewritten).
                for ci in 0..g.c_in {
                    for r in 0..g.h {
                        let at = ci * g.padded_plane() + (r + 1) * g.wp() + 1;
                        xp[at..at + g.w].copy_from_slice(&x[(ci * g.h + r) * g.w..][..g.w]);
                    }
                }
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512F was checked above; every load and store stays inside `xp`
                // and `y` (see `image`).
                unsafe {
                    image(g, xp, packed, bias, &segments, y)
                };
            },
        );
}

/// One image: every block of 8 output channels over every pair of segments.
///
/// # Safety
/// AVX-512F must be available; `xp` holds `c_in` zero-bordered planes, `y` one output image.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn image(
    g: &Geometry,
    xp: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    segments: &[(usize, usize, usize)],
    y: &mut [MaybeUninit<f32>],
) {
    // SAFETY: as the function documents.
    unsafe {
        use std::arch::x86_64::*;
        let (wp, plane) = (g.wp(), g.padded_plane());
        let mask = |n: usize| -> __mmask16 { ((1u32 << n) - 1) as __mmask16 };
        for blk in 0..g.blocks() {
            let wblk = &packed[blk * g.c_in * 9 * CB..][..g.c_in * 9 * CB];
            let mut init = [0.0f32; CB];
            if let Some(b) = bias {
                for (c, v) in init.iter_mut().enumerate() {
                    if let Some(bv) = b.get(blk * CB + c) {
                        *v = *bv;
                    }
                }
            }
            for pair in segments.chunks(2) {
                let (y0, x0, n0) = pair[0];
                let (y1, x1, n1) = *pair.get(1).unwrap_or(&pair[0]);
                let (m0, m1) = (mask(n0), if pair.len() == 2 { mask(n1) } else { 0 });
                let mut acc0 = [_mm512_setzero_ps(); CB];
                let mut acc1 = [_mm512_setzero_ps(); CB];
                for c in 0..CB {
                    acc0[c] = _mm512_set1_ps(init[c]);
                    acc1[c] = acc0[c];
                }
                let base0 = xp.as_ptr().add(y0 * wp + x0);
                let base1 = xp.as_ptr().add(y1 * wp + x1);
                for ci in 0..g.c_in {
                    let wci = wblk.as_ptr().add(ci * 9 * CB);
                    let (p0, p1) = (base0.add(ci * plane), base1.add(ci * plane));
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let off = ky * wp + kx;
                            // Reads at most `n` pixels from column x0 + kx of padded row y + ky:
                            // up to column w + 1, inside the row of w + 2.
                            let v0 = _mm512_maskz_loadu_ps(m0, p0.add(off));
                            let v1 = _mm512_maskz_loadu_ps(m1, p1.add(off));
                            let wt = wci.add((ky * 3 + kx) * CB);
                            for c in 0..CB {
                                let b = _mm512_set1_ps(*wt.add(c));
                                acc0[c] = _mm512_fmadd_ps(b, v0, acc0[c]);
                                acc1[c] = _mm512_fmadd_ps(b, v1, acc1[c]);
                            }
                        }
                    }
                }
                for c in 0..CB.min(g.c_out - blk * CB) {
                    let plane_out = y.as_mut_ptr().cast::<f32>().add((blk * CB + c) * g.h * g.w);
                    _mm512_mask_storeu_ps(plane_out.add(y0 * g.w + x0), m0, acc0[c]);
                    if pair.len() == 2 {
                        _mm512_mask_storeu_ps(plane_out.add(y1 * g.w + x1), m1, acc1[c]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::output::overwrite;

    fn naive(s: &ConvShape, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
        let (h, wd) = (s.h as isize, s.w as isize);
        let mut y = vec![0.0f32; s.batch * s.c_out * s.h * s.w];
        for n in 0..s.batch {
            for co in 0..s.c_out {
                for r in 0..h {
                    for c in 0..wd {
                        let mut acc = bias[co] as f64;
                        for ci in 0..s.c_in {
                            for ky in 0..3isize {
                                for kx in 0..3isize {
                                    let (yy, xx) = (r + ky - 1, c + kx - 1);
                                    if yy < 0 || xx < 0 || yy >= h || xx >= wd {
                                        continue;
                                    }
                                    let xi =
                                        ((n * s.c_in + ci) * s.h + yy as usize) * s.w + xx as usize;
                                    let wi = (co * s.c_in + ci) * 9 + (ky * 3 + kx) as usize;
                                    acc += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((n * s.c_out + co) * s.h + r as usize) * s.w + c as usize] = acc as f32;
                    }
                }
            }
        }
        y
    }

    /// `(batch, c_in, c_out, h, w)`: widths 28 (16 + a masked 12), 17 and 32, an odd number of
    /// segments, channel counts that are not multiples of 8.
    const SHAPES: [(usize, usize, usize, usize, usize); 4] = [
        (2, 3, 10, 5, 28),
        (3, 9, 5, 3, 17),
        (1, 4, 16, 2, 32),
        (6, 2, 3, 4, 16),
    ];

    fn shape((batch, c_in, c_out, h, w): (usize, usize, usize, usize, usize)) -> ConvShape {
        ConvShape::new(
            [batch, c_in, h, w],
            [c_out, c_in, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        )
        .unwrap()
    }

    /// Says on the process's stderr, which the test harness does not capture (so a CI log
    /// shows it), that part of a test could not run on this machine.
    fn skipped(what: &str) {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
    }

    /// `y = conv(x, weight) + bias`, `y` overwritten.
    type Forward<'a> = &'a dyn Fn(&ConvShape, &[f32], &[f32], Option<&[f32]>, &mut [f32]);
    /// `dx` (overwritten) from `dy` and the weight.
    type InputGrad<'a> = &'a dyn Fn(&ConvShape, &[f32], &[f32], &mut [f32]);
    /// `dw` (overwritten) from `x` and `dy`.
    type WeightGrad<'a> = &'a dyn Fn(&ConvShape, &[f32], &[f32], &mut [f32]);

    fn val(i: usize, m: usize) -> f32 {
        ((i * m) % 23) as f32 / 11.0 - 1.0
    }

    /// Checks, on every shape of [`SHAPES`], `forward` against the definition and
    /// `input_grad` as its adjoint, `⟨conv(x), dy⟩ = ⟨x, conv_input_grad(dy)⟩` (either may be
    /// left out), and `weight_grad` against the definition.
    fn check(
        forward_and_input_grad: Option<(Forward<'_>, InputGrad<'_>)>,
        weight_grad: WeightGrad<'_>,
    ) {
        for sizes in SHAPES {
            let s = shape(sizes);
            let (batch, c_in, c_out, h, w) = sizes;
            let x: Vec<f32> = (0..batch * c_in * h * w).map(|i| val(i, 7)).collect();
            let wt: Vec<f32> = (0..c_out * c_in * 9).map(|i| val(i, 5)).collect();
            let bias: Vec<f32> = (0..c_out).map(|i| val(i, 3)).collect();
            let dy: Vec<f32> = (0..batch * c_out * h * w).map(|i| val(i, 13)).collect();
            if let Some((forward, input_grad)) = forward_and_input_grad {
                let mut y = vec![f32::NAN; batch * c_out * h * w];
                forward(&s, &x, &wt, Some(&bias), &mut y);
                let want = naive(&s, &x, &wt, &bias);
                for (i, (a, b)) in y.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{:?} y[{i}] = {a}, want {b}",
                        (c_in, c_out, w)
                    );
                }
                let mut dx = vec![f32::NAN; x.len()];
                input_grad(&s, &dy, &wt, &mut dx);
                let mut y0 = vec![0.0; y.len()];
                // ⟨conv(e_i), dy⟩ for each input position i gives dx[i].
                for i in (0..x.len()).step_by(5) {
                    let mut e = vec![0.0; x.len()];
                    e[i] = 1.0;
                    forward(&s, &e, &wt, None, &mut y0);
                    let want: f64 = y0.iter().zip(&dy).map(|(a, b)| (*a * *b) as f64).sum();
                    assert!(
                        (dx[i] as f64 - want).abs() < 1e-4,
                        "dx[{i}] = {}, want {want}",
                        dx[i]
                    );
                }
            }
            // dw[o, c, tap] = Σ_n Σ_p dy[n, o, p] · x[n, c, p + tap], by the definition.
            let mut dw = vec![f32::NAN; wt.len()];
            weight_grad(&s, &x, &dy, &mut dw);
            for o in 0..c_out {
                for c in 0..c_in {
                    for tap in 0..9 {
                        let (ky, kx) = ((tap / 3) as isize - 1, (tap % 3) as isize - 1);
                        let mut want = 0.0f64;
                        for n in 0..batch {
                            for r in 0..h as isize {
                                for q in 0..w as isize {
                                    let (yy, xx) = (r + ky, q + kx);
                                    if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                        continue;
                                    }
                                    let dyi = ((n * c_out + o) * h + r as usize) * w + q as usize;
                                    let xi = ((n * c_in + c) * h + yy as usize) * w + xx as usize;
                                    want += dy[dyi] as f64 * x[xi] as f64;
                                }
                            }
                        }
                        let got = dw[(o * c_in + c) * 9 + tap] as f64;
                        assert!(
                            (got - want).abs() < 1e-3,
                            "dw[{o},{c},{tap}] = {got}, want {want}"
                        );
                    }
                }
            }
        }
    }

    /// This module's kernels against the definition. The forward and input-gradient kernels
    /// are AVX-512 code: on a CPU without it they cannot run (the next test checks the path
    /// such a CPU takes instead) and a SKIPPED line says so; the weight gradient is plain GEMM
    /// and is checked everywhere.
    #[test]
    fn direct_kernels_match_the_definition() {
        let forward = |s: &ConvShape, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]| {
            // SAFETY: the kernels write only initialised values.
            conv3x3_forward(s, x, w, b, unsafe { overwrite(y) })
        };
        let input_grad = |s: &ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]| {
            // SAFETY: as above.
            conv3x3_input_grad(s, dy, w, unsafe { overwrite(dx) })
        };
        let avx512 = has_avx512();
        if avx512 {
            for sizes in SHAPES {
                assert!(applies(&shape(sizes)), "{sizes:?}");
            }
        } else {
            skipped(
                "cpu::direct: the AVX-512 forward and input-gradient kernels (this CPU has no \
                 avx512f; conv2d's im2col path is checked instead)",
            );
        }
        check(
            avx512.then_some((&forward as Forward<'_>, &input_grad as InputGrad<'_>)),
            &conv3x3_weight_grad,
        );
    }

    /// What `conv2d_forward` and `conv2d_backward` compute for these 3×3 convolutions on this
    /// CPU, whichever path they take (the direct kernels with AVX-512 and a batch of at least
    /// one image per thread, im2col + GEMM otherwise), against the definition; and the direct
    /// kernels are offered exactly when the CPU has AVX-512F.
    #[test]
    fn this_cpus_conv2d_path_matches_the_definition() {
        use crate::cpu::conv::{conv2d_backward, conv2d_forward};
        for sizes in SHAPES {
            assert_eq!(applies(&shape(sizes)), has_avx512(), "{sizes:?}");
        }
        let forward = |s: &ConvShape, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]| {
            // SAFETY: the kernels write only initialised values.
            conv2d_forward(s, x, w, b, unsafe { overwrite(y) })
        };
        let input_grad = |s: &ConvShape, dy: &[f32], w: &[f32], dx: &mut [f32]| {
            // The input is not read for the input gradient: zeros of its length.
            let x = vec![0.0; dx.len()];
            // SAFETY: as above.
            conv2d_backward(s, &x, w, dy, Some(unsafe { overwrite(dx) }), None, None)
        };
        let weight_grad = |s: &ConvShape, x: &[f32], dy: &[f32], dw: &mut [f32]| {
            let w = vec![0.0; dw.len()];
            conv2d_backward(s, x, &w, dy, None, Some(dw), None)
        };
        check(Some((&forward, &input_grad)), &weight_grad);
    }
}

//! GELU (Hendrycks & Gimpel 2016, "Gaussian Error Linear Units"), exact form
//! `x·Φ(x) = ½x(1 + erf(x/√2))`, and its derivative `Φ(x) + x·φ(x)`: split over rayon's threads
//! and written so the compiler vectorises it (its own `exp` and `erf`, no libm calls), with an
//! AVX2 + FMA version chosen at run time.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::vmath::{exp, has_avx2};

/// Elements per task.
const CHUNK: usize = 1 << 14;

/// `erf(x)` (Abramowitz & Stegun 7.1.26 form with `t = 1/(1 + p|x|)`; absolute error
/// below 1.5e-7).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let e = 1.0 - poly * exp(-a * a);
    if x < 0.0 { -e } else { e }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_grad(x: f32, g: f32) -> f32 {
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
    g * (cdf + x * pdf)
}

#[inline(always)]
fn forward_portable(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    y.iter_mut().zip(x).for_each(|(y, x)| {
        y.write(gelu(*x));
    });
}

#[inline(always)]
fn backward_portable(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    dx.iter_mut().zip(x.iter().zip(dy)).for_each(|(d, (x, g))| {
        d.write(gelu_grad(*x, *g));
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_avx2(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    forward_portable(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_avx2(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    backward_portable(x, dy, dx)
}

/// `y = gelu(x)` (`y` overwritten; need not be initialised).
pub fn gelu_forward(x: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert_eq!(x.len(), y.len(), "gelu: lengths");
    let avx2 = has_avx2();
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: avx2 and fma were detected at run time.
                return unsafe { forward_avx2(x, y) };
            }
            let _ = avx2;
            forward_portable(x, y)
        });
}

/// `dx = dy · gelu'(x)` (`dx` overwritten; need not be initialised).
pub fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [MaybeUninit<f32>]) {
    assert!(
        x.len() == dy.len() && x.len() == dx.len(),
        "gelu backward: lengths"
    );
    let avx2 = has_avx2();
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: avx2 and fma were detected at run time.
                return unsafe { backward_avx2(x, dy, dx) };
            }
            let _ = avx2;
            backward_portable(x, dy, dx)
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::output::overwrite;

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        for i in -4000..4000 {
            let x = i as f32 * 0.005;
            let (e, want) = (exp(x), x.exp());
            assert!(
                (e - want).abs() <= 4e-7 * want,
                "exp({x}) = {e}, std {want}"
            );
            // erf reference in f64 from its series/continued-fraction-free identity via libm.
            let want = erf_f64(x as f64);
            // A&S 7.1.26 is within 1.5e-7; f32 rounding of `1 − poly·e` adds up to ~2e-7.
            assert!(
                (erf(x) as f64 - want).abs() < 4e-7,
                "erf({x}) = {}, want {want}",
                erf(x)
            );
        }
        assert_eq!(exp(-200.0), exp(-87.0));
    }

    /// erf by its Taylor series (|x| < 3) or asymptotic complement, in f64.
    fn erf_f64(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) ~ e^{-x²}/(x√π) (1 − 1/(2x²) + 3/(4x⁴)): erf within 1e-9 of ±1 here.
            let a = x.abs();
            let c = (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 0.5 / (a * a) + 0.75 / a.powi(4));
            return x.signum() * (1.0 - c);
        }
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_and_its_gradient_match_the_definition() {
        let x: Vec<f32> = (0..50_000).map(|i| (i as f32 - 25_000.0) * 3e-4).collect();
        let mut y = vec![f32::NAN; x.len()];
        // SAFETY: the kernels write only initialised values.
        gelu_forward(&x, unsafe { overwrite(&mut y) });
        let dy: Vec<f32> = (0..x.len()).map(|i| ((i % 7) as f32 - 3.0) * 0.5).collect();
        let mut dx = vec![f32::NAN; x.len()];
        // SAFETY: as above.
        gelu_backward(&x, &dy, unsafe { overwrite(&mut dx) });
        for i in (0..x.len()).step_by(37) {
            let v = x[i] as f64;
            let cdf = 0.5 * (1.0 + erf_f64(v / 2f64.sqrt()));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            assert!((y[i] as f64 - v * cdf).abs() < 1e-6, "gelu({v})");
            assert!(
                (dx[i] as f64 - dy[i] as f64 * (cdf + v * pdf)).abs() < 1e-6,
                "gelu'({v})"
            );
        }
    }
}

//! Scalar maths written so the compiler vectorises it (no libm calls), shared by the kernels,
//! and the run-time check for the AVX2 + FMA versions.

/// `e^x` for f32: `2^n · p(r)` with `x = n·ln 2 + r`, `|r| ≤ ½ ln 2`, `p` a degree-6
/// polynomial (relative error about 2e-7 in the range used here); flushes to 0 below −87.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by the 1.5·2^23 trick (vectorises without SSE4.1's `roundps`).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    p * scale
}

/// Whether this CPU has AVX2 and FMA (the kernels' `#[target_feature]` versions).
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

//! The machine's measured fp32 peak: a tight loop of independent fused multiply-adds on the
//! widest vectors the CPU has, on one thread and on all of rayon's threads. The reference the
//! profile's GFLOP/s are read against.

use std::time::{Duration, Instant};

use rayon::prelude::*;

/// What [`fma_peak`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// The instruction set the loop ran on (`avx512f`, `avx2+fma` or `scalar`).
    pub isa: &'static str,
    /// GFLOP/s of one thread (an FMA counts as 2 FLOPs).
    pub one_thread: f64,
    /// GFLOP/s of all rayon threads together.
    pub all_threads: f64,
    /// rayon's threads.
    pub threads: usize,
}

/// Measures the fp32 FMA peak for about `duration` per measurement.
pub fn fma_peak(duration: Duration) -> Peak {
    let (isa, kernel) = kernel();
    let one = rate(kernel, duration);
    let threads = rayon::current_num_threads().max(1);
    let start = Instant::now();
    let flops: f64 = (0..threads)
        .into_par_iter()
        .map(|_| run_for(kernel, duration))
        .sum();
    let all = flops / start.elapsed().as_secs_f64() / 1e9;
    Peak {
        isa,
        one_thread: one,
        all_threads: all,
        threads,
    }
}

/// One call does `iterations` rounds and returns the FLOPs done (and a value that keeps the
/// loop alive).
type Kernel = fn(u64) -> (f64, f32);

fn rate(kernel: Kernel, duration: Duration) -> f64 {
    let start = Instant::now();
    let flops = run_for(kernel, duration);
    flops / start.elapsed().as_secs_f64() / 1e9
}

fn run_for(kernel: Kernel, duration: Duration) -> f64 {
    let start = Instant::now();
    let mut flops = 0.0;
    let mut sink = 0.0f32;
    while start.elapsed() < duration {
        let (f, s) = kernel(1 << 20);
        flops += f;
        sink += s;
    }
    std::hint::black_box(sink);
    flops
}

#[cfg(target_arch = "x86_64")]
fn kernel() -> (&'static str, Kernel) {
    if std::arch::is_x86_feature_detected!("avx512f") {
        ("avx512f", |n| {
            // SAFETY: avx512f was detected at run time.
            unsafe { x86::fma_avx512(n) }
        })
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        ("avx2+fma", |n| {
            // SAFETY: avx2 and fma were detected at run time.
            unsafe { x86::fma_avx2(n) }
        })
    } else {
        ("scalar", scalar)
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn kernel() -> (&'static str, Kernel) {
    ("scalar", scalar)
}

fn scalar(n: u64) -> (f64, f32) {
    let mut acc = [1.0f32; 8];
    for _ in 0..n {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    (n as f64 * 16.0, acc.iter().sum())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Twelve independent accumulators cover the FMA latency (4 cycles) × 2 pipes with room.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_avx512(n: u64) -> (f64, f32) {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); 12];
        for _ in 0..n {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for x in acc {
            sum = _mm512_add_ps(sum, x);
        }
        (n as f64 * 12.0 * 16.0 * 2.0, _mm512_reduce_add_ps(sum))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_avx2(n: u64) -> (f64, f32) {
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); 12];
        for _ in 0..n {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut sum = _mm256_setzero_ps();
        for x in acc {
            sum = _mm256_add_ps(sum, x);
        }
        let mut out = [0.0f32; 8];
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
        (n as f64 * 12.0 * 8.0 * 2.0, out.iter().sum())
    }
}

//! A performance regression check cheap enough for every `cargo test --workspace`: NT-Xent
//! (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations")
//! forward + backward, chunked (`chunk_size`, the gradient formed block by block outside the
//! autodiff graph) against unchunked (the whole `[2N, 2N]` similarity matrix in the graph), on the
//! same inputs in the same run.
//!
//! Absolute times mean nothing on a shared 2-core CI machine, so the test compares two code paths
//! measured interleaved (A, B, A, B, ...) and keeps each path's fastest run: a busy neighbour
//! slows both and rarely the fastest of several runs. The assertion bound is generous (see
//! `MAX_RATIO`); it catches the regressions that matter (a chunk loop gone quadratic, a host
//! round trip per block, the autodiff graph growing with the number of blocks), not a few percent.
//!
//! Timing runs on flex only: it is the default CPU backend, and ndarray's and lavapipe's
//! timings are too noisy for a tight bound at this size.

use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use repr_objectives::NtXentLossConfig;

/// Chunked time / unchunked time must stay below this. Measured on the reference 2-core machine
/// (debug-profile test build, Burn optimised): 0.83–1.04 in four runs with the load average at
/// 6–7 (see docs/benchmarks.md).
const MAX_RATIO: f64 = 3.0;

/// `2N = 1024` anchors of dimension 128, chunks of 128 anchors (8 blocks).
const N: usize = 512;
const DIM: usize = 128;
const CHUNK: usize = 128;
const ROUNDS: usize = 7;

fn step(device: &Device, chunk: Option<usize>, z1: &Tensor<2>, z2: &Tensor<2>) -> f64 {
    let loss = NtXentLossConfig::new()
        .with_temperature(0.5)
        .with_chunk_size(chunk)
        .init()
        .unwrap();
    let started = Instant::now();
    let z1 = z1.clone().require_grad();
    let z2 = z2.clone().require_grad();
    let value = loss.forward(z1.clone(), z2.clone());
    let grads = value.backward();
    let g1 = z1.grad(&grads).unwrap();
    // Reading a value forces the work (and synchronises lazy backends).
    let _ = g1.sum().into_scalar::<f32>();
    device.sync().unwrap();
    started.elapsed().as_secs_f64()
}

#[test]
fn chunked_nt_xent_is_not_much_slower_than_unchunked() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let z1 = Tensor::<2>::random([N, DIM], Distribution::Normal(0.0, 1.0), &device);
    let z2 = Tensor::<2>::random([N, DIM], Distribution::Normal(0.0, 1.0), &device);
    // Warm-up of both paths (allocator, thread pool).
    step(&device, None, &z1, &z2);
    step(&device, Some(CHUNK), &z1, &z2);
    let (mut full, mut chunked) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..ROUNDS {
        full = full.min(step(&device, None, &z1, &z2));
        chunked = chunked.min(step(&device, Some(CHUNK), &z1, &z2));
    }
    let ratio = chunked / full;
    println!(
        "NT-Xent fwd+bwd, 2N={}, D={DIM}: unchunked {:.1} ms, chunked({CHUNK}) {:.1} ms, ratio {ratio:.2}",
        2 * N,
        full * 1e3,
        chunked * 1e3
    );
    assert!(
        ratio < MAX_RATIO,
        "chunked NT-Xent took {ratio:.2}× the unchunked time ({:.1} vs {:.1} ms; bound {MAX_RATIO}×)",
        chunked * 1e3,
        full * 1e3
    );
}

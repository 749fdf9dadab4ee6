//! A performance regression check cheap enough for every `cargo test --workspace`: one ResNet
//! stage's work (3×3 convolution → BatchNorm → ReLU, then a 3×3 stride-2 convolution) forward
//! and backward on flex, with repr-kernels against Burn's own flex kernels, on the same inputs
//! in the same run.
//!
//! Absolute times mean nothing on a shared CI machine, so the two paths run interleaved
//! (A, B, A, B, ...) and each keeps its fastest run; the test asserts on their ratio. The bound
//! is loose (see `MIN_SPEEDUP`): it catches our kernels losing their advantage (a lost
//! threading split, an im2col gone per pixel, a backward falling back to Burn's), not a few
//! percent. `cargo xtask bench profile --sections kernels` gives the real rates.

use std::time::Instant;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor, activation};

/// Burn's time / ours must stay above this. Measured on the reference 2-core machine (dev
/// profile, Burn and repr-kernels optimised): see docs/benchmarks.md.
const MIN_SPEEDUP: f64 = 1.3;
const ROUNDS: usize = 5;

struct Inputs {
    x: Tensor<4>,
    w1: Tensor<4>,
    w2: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
}

fn step(inputs: &Inputs, ours: bool) -> f64 {
    let started = Instant::now();
    let x = inputs.x.clone().require_grad();
    let w1 = inputs.w1.clone().require_grad();
    let w2 = inputs.w2.clone().require_grad();
    let same = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let down = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let (g, b) = (inputs.gamma.clone(), inputs.beta.clone());
    let y = if ours {
        let h = repr_kernels::ops::conv2d(x.clone(), w1.clone(), None, same);
        let h = repr_kernels::ops::batch_norm_train(h, g, b, 1e-5, true).output;
        repr_kernels::ops::conv2d(h, w2.clone(), None, down)
    } else {
        let h = burn::tensor::module::conv2d(x.clone(), w1.clone(), None, same);
        let h = activation::relu(burn::tensor::module::batch_norm_train(h, g, b, 1e-5).output);
        burn::tensor::module::conv2d(h, w2.clone(), None, down)
    };
    let grads = y.sum().backward();
    // Reading values forces the work.
    let _ = x.grad(&grads).expect("dx").sum().into_scalar::<f32>();
    let _ = w1.grad(&grads).expect("dw1").sum().into_scalar::<f32>();
    started.elapsed().as_secs_f64()
}

#[test]
fn repr_kernels_stay_faster_than_burns_on_a_resnet_stage() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let r = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 0.1), &device);
    let inputs = Inputs {
        x: r([16, 32, 32, 32]),
        w1: r([32, 32, 3, 3]),
        w2: r([64, 32, 3, 3]),
        gamma: Tensor::ones([32], &device),
        beta: Tensor::zeros([32], &device),
    };
    step(&inputs, true);
    step(&inputs, false);
    let (mut ours, mut burn) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..ROUNDS {
        ours = ours.min(step(&inputs, true));
        burn = burn.min(step(&inputs, false));
    }
    let speedup = burn / ours;
    println!(
        "ResNet stage fwd+bwd, batch 16: repr-kernels {:.1} ms, Burn {:.1} ms, speed-up {speedup:.2}×",
        ours * 1e3,
        burn * 1e3
    );
    assert!(
        speedup > MIN_SPEEDUP,
        "repr-kernels took {:.1} ms against Burn's {:.1} ms: speed-up {speedup:.2}×, bound {MIN_SPEEDUP}×",
        ours * 1e3,
        burn * 1e3
    );
}

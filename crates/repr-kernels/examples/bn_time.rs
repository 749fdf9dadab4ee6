//! Times batch norm + ReLU forward and backward at ResNet layer1's size (64 channels at 32×32,
//! batch 64): the kernels on slices, then the layer through autodiff, then the surrounding
//! `(y·r).sum()` alone. `REPR_KERNELS=burn` times Burn's kernels for the layer.
//! `cargo run -p repr-kernels --example bn_time --features burn/ndarray,burn/wgpu`
use burn::tensor::{Device, Distribution, Tensor};
use repr_kernels::cpu::batch_norm::*;
use repr_kernels::cpu::output::overwrite;
use std::time::Instant;
fn main() {
    let s = NormShape {
        batch: 64,
        channels: 64,
        spatial: 1024,
    };
    let n = 64 * 64 * 1024;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.001).sin()).collect();
    let g = vec![1.0f32; 64];
    let b = vec![0.0f32; 64];
    let mut y = vec![0.0f32; n];
    let mut dx = vec![0.0f32; n];
    for _ in 0..3 {
        let t = Instant::now();
        // SAFETY (both): the kernels write only initialised values.
        let (m, v) =
            batch_norm_train_forward(s, &x, &g, &b, 1e-5, true, unsafe { overwrite(&mut y) });
        let t1 = t.elapsed();
        let t = Instant::now();
        batch_norm_train_backward(s, &x, &g, &m, &v, 1e-5, &y, Some(&b), unsafe {
            overwrite(&mut dx)
        });
        println!("slices: fwd {:?} bwd {:?}", t1, t.elapsed());
    }
    let dev = Device::flex().autodiff();
    let bn = repr_kernels::nn::BatchNorm::init(&burn::nn::BatchNormConfig::new(64), &dev);
    let xt =
        Tensor::<4>::random([64, 64, 32, 32], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let r = Tensor::<4>::random([64, 64, 32, 32], Distribution::Normal(0.0, 1.0), &dev);
    for _ in 0..3 {
        let t = Instant::now();
        let out = bn.forward_relu(xt.clone());
        let _ = out.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
        let t1 = t.elapsed();
        let grads = (out * r.clone()).sum().backward();
        let _ = xt
            .grad(&grads)
            .unwrap()
            .slice([0..1, 0..1, 0..1, 0..1])
            .into_data();
        println!("module: fwd {:?} total {:?}", t1, t.elapsed());
    }
    for _ in 0..3 {
        let t = Instant::now();
        let grads = (xt.clone() * r.clone()).sum().backward();
        let _ = xt
            .grad(&grads)
            .unwrap()
            .slice([0..1, 0..1, 0..1, 0..1])
            .into_data();
        println!("mul+sum backward alone: {:?}", t.elapsed());
    }
}

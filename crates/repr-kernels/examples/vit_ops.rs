//! Times the ViT-small training step's ops one by one at its shapes (batch 64, 65 tokens,
//! width 192, 3 heads, MLP 768) through autodiff on flex: forward, and forward + backward of
//! `(op(x) · r).sum()`, medians of 5. `REPR_KERNELS=burn` times Burn's kernels instead.
//! `cargo run -p repr-kernels --example vit_ops --features repr-testing/test-wgpu`
use std::time::{Duration, Instant};

use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(
    name: &str,
    dev: &Device,
    shape: [usize; 3],
    out: [usize; 3],
    op: &dyn Fn(Tensor<3>) -> Tensor<3>,
) {
    let x = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), dev).require_grad();
    let r = Tensor::<3>::random(out, Distribution::Normal(0.0, 1.0), dev);
    let (mut fwd, mut total) = (vec![], vec![]);
    for _ in 0..6 {
        let t = Instant::now();
        let y = op(x.clone());
        let _ = y.clone().slice([0..1, 0..1, 0..1]).into_data();
        fwd.push(t.elapsed());
        let grads = (y * r.clone()).sum().backward();
        let _ = x
            .grad(&grads)
            .unwrap()
            .slice([0..1, 0..1, 0..1])
            .into_data();
        total.push(t.elapsed());
    }
    println!(
        "{name:<28} fwd {:>8.2?}  fwd+bwd {:>8.2?}",
        median(fwd[1..].to_vec()),
        median(total[1..].to_vec())
    );
}

fn main() {
    repr_kernels::reuse_freed_memory();
    let dev = Device::flex().autodiff();
    let (b, t, d) = (64, 65, 192);
    let qkv = LinearConfig::new(d, 3 * d).init(&dev);
    let fc1 = LinearConfig::new(d, 4 * d).init(&dev);
    let fc2 = LinearConfig::new(4 * d, d).init(&dev);
    let ln = repr_kernels::nn::LayerNorm::init(&LayerNormConfig::new(d), &dev);
    let other = Tensor::<3>::random([b, t, d], Distribution::Normal(0.0, 1.0), &dev);
    time("baseline (x·r).sum()", &dev, [b, t, d], [b, t, d], &|x| x);
    time("linear 192→576", &dev, [b, t, d], [b, t, 3 * d], &|x| {
        repr_kernels::nn::linear(&qkv, x)
    });
    time("linear 192→768", &dev, [b, t, d], [b, t, 4 * d], &|x| {
        repr_kernels::nn::linear(&fc1, x)
    });
    time("linear 768→192", &dev, [b, t, 4 * d], [b, t, d], &|x| {
        repr_kernels::nn::linear(&fc2, x)
    });
    time("attention (packed)", &dev, [b, t, 3 * d], [b, t, d], &|x| {
        repr_kernels::ops::attention_packed(x, 3)
    });
    time("layer norm 192", &dev, [b, t, d], [b, t, d], &|x| {
        ln.forward(x)
    });
    time("gelu 768", &dev, [b, t, 4 * d], [b, t, 4 * d], &|x| {
        repr_kernels::ops::gelu(x)
    });
    time("residual add", &dev, [b, t, d], [b, t, d], &|x| {
        x + other.clone()
    });
}

//! Peak memory of NT-Xent, chunked or not: `cargo run --example nt_xent_memory -- <N> <D> <chunk|0>
//! [backward]` under `/usr/bin/time -v` (maximum resident set size). Flex device.

use burn::tensor::{Device, Distribution, Tensor};
use repr_objectives::NtXentLossConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (n, d, chunk) = (arg(1, 1024), arg(2, 128), arg(3, 0));
    let backward = args.get(4).is_some_and(|s| s == "backward");
    let device = if backward {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    device.seed(1);
    let mut z1 = Tensor::<2>::random([n, d], Distribution::Normal(0.0, 1.0), &device);
    let z2 = Tensor::<2>::random([n, d], Distribution::Normal(0.0, 1.0), &device);
    if backward {
        z1 = z1.require_grad();
    }
    let loss_fn = NtXentLossConfig::new()
        .with_chunk_size((chunk > 0).then_some(chunk))
        .init()
        .expect("valid config");
    let start = std::time::Instant::now();
    let loss = loss_fn.forward(z1.clone(), z2);
    if backward {
        let grads = loss.backward();
        let g: f32 = z1.grad(&grads).expect("gradient").abs().sum().into_scalar();
        println!(
            "N={n} D={d} chunk={chunk} grad |sum| {g:.4} in {:?}",
            start.elapsed()
        );
    } else {
        let v: f32 = loss.into_scalar();
        println!(
            "N={n} D={d} chunk={chunk} loss {v:.4} in {:?}",
            start.elapsed()
        );
    }
}

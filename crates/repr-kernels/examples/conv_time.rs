//! Times the 3×3 convolution kernels on slices at ResNet layer shapes (batch 64, and the last
//! two stages of the `simclr` recipe's ResNet-18-w32 at batch 256: 128 channels at 7×7, 256 at
//! 4×4): forward, input gradient and weight gradient, medians of 7, with the GFLOP/s of each.
//! `cargo run -p repr-kernels --example conv_time --features repr-testing/test-wgpu`
use std::time::{Duration, Instant};

use repr_kernels::cpu::conv::{conv2d_backward, conv2d_forward};
use repr_kernels::cpu::im2col::ConvShape;
use repr_kernels::cpu::output::overwrite;

fn median(mut f: impl FnMut()) -> Duration {
    let mut t: Vec<Duration> = (0..7)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    t[3]
}

fn main() {
    repr_kernels::reuse_freed_memory();
    for (batch, c, hw) in [
        (64usize, 64usize, 32usize),
        (64, 128, 16),
        (64, 16, 28),
        (256, 128, 7),
        (256, 256, 4),
    ] {
        let s = ConvShape::new(
            [batch, c, hw, hw],
            [c, c, 3, 3],
            [1, 1],
            [(1, 1), (1, 1)],
            [1, 1],
        )
        .unwrap();
        let x: Vec<f32> = (0..batch * c * hw * hw)
            .map(|i| (i % 97) as f32 * 0.01)
            .collect();
        let w: Vec<f32> = (0..c * c * 9).map(|i| (i % 89) as f32 * 0.001).collect();
        let mut y = vec![0.0; x.len()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let gflop = 2.0 * s.macs() as f64 / 1e9;
        // SAFETY (both): the kernels write only initialised values.
        let fwd = median(|| conv2d_forward(&s, &x, &w, None, unsafe { overwrite(&mut y) }));
        let dxt = median(|| {
            conv2d_backward(
                &s,
                &x,
                &w,
                &y,
                Some(unsafe { overwrite(&mut dx) }),
                None,
                None,
            )
        });
        let dwt = median(|| conv2d_backward(&s, &x, &w, &y, None, Some(&mut dw), None));
        let rate = |t: Duration| gflop / t.as_secs_f64();
        println!(
            "{c}@{hw} batch {batch}: fwd {fwd:.2?} ({:.0} GFLOP/s)  dx {dxt:.2?} ({:.0})  dw {dwt:.2?} ({:.0})",
            rate(fwd),
            rate(dxt),
            rate(dwt)
        );
    }
}

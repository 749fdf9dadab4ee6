//! The residual join of a ResNet block, `y = relu(a + b)`, in one pass, and its backward
//! `da = db = dy · [y > 0]` (the mask is read from the kept output). Burn composes it from an
//! add and a ReLU, each with its own pass, output and backward.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements per task.
const CHUNK: usize = 1 << 15;

/// `y = max(a + b, 0)`; `y` is overwritten (its contents need not be initialised).
pub fn add_relu_forward(a: &[f32], b: &[f32], y: &mut [MaybeUninit<f32>]) {
    assert!(
        a.len() == b.len() && a.len() == y.len(),
        "add_relu: lengths"
    );
    y.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(y, (a, b))| {
            for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
                y.write((a + b).max(0.0));
            }
        });
}

/// `d = dy · [y > 0]`: the gradient of both inputs of [`add_relu_forward`] (`d` overwritten).
pub fn relu_backward(y: &[f32], dy: &[f32], d: &mut [MaybeUninit<f32>]) {
    assert!(
        y.len() == dy.len() && y.len() == d.len(),
        "add_relu backward: lengths"
    );
    d.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(d, (y, dy))| {
            for ((d, y), dy) in d.iter_mut().zip(y).zip(dy) {
                d.write(if *y > 0.0 { *dy } else { 0.0 });
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::output::overwrite;

    #[test]
    fn add_relu_and_its_gradient_match_the_definition() {
        let n = 100_003;
        let a: Vec<f32> = (0..n).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..n).map(|i| ((i * 5) % 11) as f32 * 0.5 - 2.5).collect();
        let dy: Vec<f32> = (0..n).map(|i| (i % 3) as f32 - 1.0).collect();
        let mut y = vec![f32::NAN; n];
        // SAFETY: the kernels write only initialised values.
        add_relu_forward(&a, &b, unsafe { overwrite(&mut y) });
        let mut d = vec![f32::NAN; n];
        // SAFETY: as above.
        relu_backward(&y, &dy, unsafe { overwrite(&mut d) });
        for i in 0..n {
            let s = a[i] + b[i];
            assert_eq!(y[i], s.max(0.0));
            assert_eq!(d[i], if s > 0.0 { dy[i] } else { 0.0 });
        }
    }
}

//! Batched Gaussian blur: a depthwise convolution with each sample's own kernel.

use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData};

use super::PixelFormat;
use crate::gaussian_kernel;

/// Blurs the samples with `Some(sigma)` with a `kernel_size` Gaussian over the reflect-padded
/// image (torchvision's `gaussian_blur`, as two separable passes), rounded half to even for `U8`;
/// samples with `None` get a unit impulse as kernel, which leaves them unchanged exactly.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `sigmas.len() == N`; `kernel_size / 2 < min(H, W)`.
pub fn gaussian_blur(
    x: Tensor<4>,
    kernel_size: usize,
    sigmas: &[Option<f64>],
    format: PixelFormat,
) -> Tensor<4> {
    if sigmas.iter().all(Option::is_none) {
        return x;
    }
    let [n, c, h, w] = x.dims();
    let k = kernel_size;
    let r = k / 2;
    let device = x.device();
    let mut weights = Vec::with_capacity(n * c * k);
    for sigma in sigmas {
        let kernel = match sigma {
            Some(s) => gaussian_kernel(k, *s),
            None => (0..k).map(|i| if i == r { 1.0 } else { 0.0 }).collect(),
        };
        for _ in 0..c {
            weights.extend_from_slice(&kernel);
        }
    }
    let groups = n * c;
    let vertical =
        Tensor::<4>::from_data(TensorData::new(weights.clone(), [groups, 1, k, 1]), &device);
    let horizontal = Tensor::<4>::from_data(TensorData::new(weights, [groups, 1, 1, k]), &device);
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], groups);
    let padded = x
        .reshape([1, groups, h, w])
        .pad([(r, r), (r, r)], PadMode::Reflect);
    let y = conv2d(padded, vertical, None, options.clone());
    let y = conv2d(y, horizontal, None, options).reshape([n, c, h, w]);
    match format {
        PixelFormat::U8 => y.round().clamp(0.0, 255.0),
        PixelFormat::Unit => y,
    }
}

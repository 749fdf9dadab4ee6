//! Batched crop + resize (two matrix products with per-sample resampling matrices) and flip.

use burn::tensor::{Tensor, TensorData};

use super::{PixelFormat, select};
use crate::CropBox;
use crate::resize::AxisWeights;

/// Crops every sample to its own `crops[n]` and resizes it to `size = [height, width]` with the
/// (antialiased) bilinear filter of the CPU path.
///
/// `out = Wy · x · Wxᵀ` per sample, where `Wy` (`[out_h, H]`) and `Wx` (`[out_w, W]`) hold the
/// filter weights of the crop's rows and columns and zeros elsewhere. For [`PixelFormat::U8`] the
/// weights are torch's fixed-point ones (`W / 2^P`, exact in `f32`) and each pass is rounded as
/// torch's `uint8` kernel (horizontal first); for [`PixelFormat::Unit`] they are the exact weights
/// and nothing is rounded.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → `[N, C, size[0], size[1]]`; `crops.len() == N`.
///
/// # Panics
/// If `crops.len() != N` or a crop is outside the image.
pub fn resized_crop(
    x: Tensor<4>,
    crops: &[CropBox],
    size: [usize; 2],
    antialias: bool,
    format: PixelFormat,
) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [out_h, out_w] = size;
    assert_eq!(crops.len(), n, "one crop per sample");
    let device = x.device();
    let mut wy = Vec::with_capacity(n * out_h * h);
    let mut wx = Vec::with_capacity(n * w * out_w);
    for crop in crops {
        assert!(
            crop.top + crop.height <= h && crop.left + crop.width <= w,
            "crop {crop:?} outside {h}x{w}"
        );
        let ay = AxisWeights::new(crop.height, out_h, antialias);
        let ax = AxisWeights::new(crop.width, out_w, antialias);
        let (my, mx) = match format {
            PixelFormat::U8 => (
                ay.dense_fixed(h, crop.top, false),
                ax.dense_fixed(w, crop.left, false),
            ),
            PixelFormat::Unit => (
                ay.dense_f32(h, crop.top, false),
                ax.dense_f32(w, crop.left, false),
            ),
        };
        wy.extend_from_slice(&my);
        // Transposed: [W, out_w].
        for j in 0..w {
            wx.extend((0..out_w).map(|o| mx[o * w + j]));
        }
    }
    let wy = Tensor::<3>::from_data(TensorData::new(wy, [n, out_h, h]), &device)
        .unsqueeze_dim::<4>(1)
        .expand([n, c, out_h, h]);
    let wx = Tensor::<3>::from_data(TensorData::new(wx, [n, w, out_w]), &device)
        .unsqueeze_dim::<4>(1)
        .expand([n, c, w, out_w]);
    let round = |t: Tensor<4>| match format {
        // torch: (sum + 2^(P-1)) >> P, clamped to 0..=255.
        PixelFormat::U8 => t.add_scalar(0.5f32).floor().clamp(0.0, 255.0),
        PixelFormat::Unit => t,
    };
    let horizontal = round(x.matmul(wx)); // [n, c, h, out_w]
    round(wy.matmul(horizontal)) // [n, c, out_h, out_w]
}

/// Mirrors the samples with `flags[n]` left-right.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `flags.len() == N`.
pub fn horizontal_flip(x: Tensor<4>, flags: &[bool]) -> Tensor<4> {
    if !flags.iter().any(|&f| f) {
        return x;
    }
    let flipped = x.clone().flip([3]);
    select(x, flipped, flags)
}

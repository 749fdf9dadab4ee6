//! The device path: the same ops applied to a whole batch as Burn tensor operations on any
//! `Device`, with the parameters sampled on the CPU by the same `sample` functions (so a CPU batch
//! and a device batch of the same seed hold the same views, up to rare ±1 rounding differences).
//!
//! Images are `[N, C, H, W]` float tensors in one of two [`PixelFormat`]s:
//! - [`PixelFormat::U8`]: `u8` levels `0..=255` held in `f32`; every op rounds its result back
//!   to an integer exactly as torchvision's `uint8` kernels (and the CPU path) do.
//! - [`PixelFormat::Unit`]: values in `[0, 1]`, torchvision's float semantics (no rounding).
//!
//! Crop + resize is two batched matrix products with per-sample resampling matrices (the crop
//! is the zero columns), blur a depthwise convolution with per-sample kernels, the colour ops
//! elementwise arithmetic with per-sample factors; an op a sample skips gets identity factors
//! or is masked out.
//!
//! ```
//! use burn::tensor::Device;
//! use repr_augment::{ImageDims, MultiViewConfig, device};
//!
//! let dims = ImageDims { channels: 1, height: 28, width: 28 };
//! let views = MultiViewConfig::simclr_grayscale(28).init(dims)?;
//! let images: Vec<Vec<u8>> = (0..2u8).map(|i| vec![i * 100; dims.len()]).collect();
//! let refs: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
//! let device = Device::flex();
//! let x = device::upload(&refs, dims, &device)?;
//! let params = views.sample_batch(&[10, 11], 42, 0);
//! let out = views.apply_device(x, &params, device::PixelFormat::U8)?;
//! assert_eq!(out[1].dims(), [2, 1, 28, 28]);
//! # Ok::<(), repr_augment::AugmentError>(())
//! ```

mod blur;
mod color;
mod geometry;
mod pipeline;

use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::{AugmentError, ImageDims};

pub use blur::gaussian_blur;
pub use color::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, color_jitter, grayscale,
    solarize,
};
pub use geometry::{horizontal_flip, resized_crop};

/// How pixel values are held in a device tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// `u8` levels in `[0, 255]`, re-quantised after every op as torchvision's `uint8` kernels.
    U8,
    /// Floats in `[0, 1]`, torchvision's float kernels.
    Unit,
}

impl PixelFormat {
    /// The largest value.
    pub fn max(self) -> f32 {
        match self {
            PixelFormat::U8 => 255.0,
            PixelFormat::Unit => 1.0,
        }
    }

    /// Clamps a blend to the value range and, for `U8`, truncates it (torch's float -> `u8`).
    pub(crate) fn clamp_trunc(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            PixelFormat::U8 => x.clamp(0.0, 255.0).floor(),
            PixelFormat::Unit => x.clamp(0.0, 1.0),
        }
    }
}

/// Uploads `u8` CHW images of `dims` as one `[N, C, H, W]` tensor of [`PixelFormat::U8`] levels.
pub fn upload(
    images: &[&[u8]],
    dims: ImageDims,
    device: &Device,
) -> Result<Tensor<4>, AugmentError> {
    dims.validate()?;
    let mut values = Vec::with_capacity(images.len() * dims.len());
    for (index, image) in images.iter().enumerate() {
        if image.len() != dims.len() {
            return Err(AugmentError::ImageLength {
                index,
                expected: dims.len(),
                actual: image.len(),
                dims,
            });
        }
        values.extend(image.iter().map(|&v| v as f32));
    }
    let shape = [images.len(), dims.channels, dims.height, dims.width];
    Ok(Tensor::from_data(TensorData::new(values, shape), device))
}

/// One value per sample as a `[N, 1, 1, 1]` tensor (broadcasts over the image).
pub(crate) fn per_sample(values: &[f32], device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device).reshape([
        values.len(),
        1,
        1,
        1,
    ])
}

/// `y` where `flags[n]`, else `x` (per sample); skips the select when all flags agree.
pub(crate) fn select(x: Tensor<4>, y: Tensor<4>, flags: &[bool]) -> Tensor<4> {
    if flags.iter().all(|&f| f) {
        return y;
    }
    if !flags.iter().any(|&f| f) {
        return x;
    }
    let shape = x.dims();
    let mask =
        Tensor::<1, Bool>::from_data(TensorData::new(flags.to_vec(), [flags.len()]), &x.device())
            .reshape([flags.len(), 1, 1, 1])
            .expand(shape);
    x.mask_where(mask, y)
}

/// Checks that `x` is `[N, C, H, W]` with `dims` and `count` parameters.
pub(crate) fn check_batch(
    x: &Tensor<4>,
    dims: ImageDims,
    count: usize,
) -> Result<(), AugmentError> {
    let [n, c, h, w] = x.dims();
    if [c, h, w] != dims.shape() {
        return Err(AugmentError::InvalidImage {
            channels: c,
            height: h,
            width: w,
            reason: "the batch does not have the dimensions the pipeline was built for",
        });
    }
    if n != count {
        return Err(AugmentError::LengthMismatch {
            field: "params",
            expected: n,
            actual: count,
        });
    }
    Ok(())
}

//! Image augmentations for representation learning, with torchvision's semantics.
//!
//! Ops work on `u8` images in CHW layout (`[channels, height, width]`, 1 or 3 channels, the
//! layout of `repr-data`'s datasets) and are bit-exact with torchvision's `uint8` tensor kernels
//! (see `docs/augment.md` for the parity measured on a real photo). Every op has a serde
//! `*Config` with defaults and a validating `init`; randomness is split from computation:
//! `sample(rng) -> params`, then `apply(params, image)`. That split gives two paths with one
//! meaning:
//!
//! - **CPU**: [`MultiView::augment_batch`] augments images in parallel with rayon, each drawing
//!   from its own stream [`image_rng`]`(seed, epoch, index)`, so a batch does not depend on the
//!   number of threads.
//! - **Device**: [`device`] applies the same ops to a whole batch as Burn tensor operations on
//!   any `Device`, fed with the same sampled parameters.
//!
//! Pipelines are [`Compose`] (ops in order, [`RandomApply`] for a group with a probability) and
//! [`MultiView`] (one pipeline per view). Presets: [`MultiViewConfig::simclr_cifar`],
//! [`MultiViewConfig::simclr_imagenet`], [`MultiViewConfig::byol`],
//! [`MultiViewConfig::simclr_grayscale`].
//!
//! Two SimCLR views of your own images, each epoch, on the CPU and on the device:
//!
//! ```
//! use burn::tensor::Device;
//! use repr_augment::device::{PixelFormat, upload};
//! use repr_augment::{ImageDims, MultiViewConfig};
//!
//! // Eight 32×32 RGB images as `u8` CHW buffers, from your own loader.
//! let dims = ImageDims::from_shape([3, 32, 32]);
//! let images: Vec<Vec<u8>> = (0..8u32)
//!     .map(|i| (0..dims.len() as u32).map(|p| ((p * 7 + i * 31) % 256) as u8).collect())
//!     .collect();
//! let images: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
//! let indices: Vec<u64> = (0..8).collect();
//! let views = MultiViewConfig::simclr_cifar(32).init(dims)?;
//! let device = Device::flex();
//! let mut previous = None;
//! for epoch in 0..2 {
//!     // CPU: one buffer per view holding the 8 augmented images, reproducible from
//!     // (seed, epoch, index) whatever the number of threads.
//!     let cpu = views.augment_batch(&images, &indices, 42, epoch)?;
//!     assert_eq!(cpu, views.augment_batch(&images, &indices, 42, epoch)?);
//!     assert_ne!(previous.as_ref(), Some(&cpu), "a new epoch draws new views");
//!     // Device: the same kind of parameters applied to the uploaded batch as tensor ops.
//!     let params = views.sample_batch(&indices, 42, epoch);
//!     let batch = upload(&images, dims, &device)?;
//!     for view in views.apply_device(batch, &params, PixelFormat::U8)? {
//!         assert_eq!(view.dims(), [8, 3, 32, 32]); // normalise, then feed your encoder
//!     }
//!     previous = Some(cpu);
//! }
//! # Ok::<(), repr_augment::AugmentError>(())
//! ```
#![warn(missing_docs)]

mod adjust;
mod blur;
mod compose;
mod crop;
pub mod device;
mod error;
mod flip;
mod grayscale;
mod image;
mod jitter;
mod multiview;
mod normalize;
mod op;
mod presets;
mod resize;
mod resized_crop;
mod rng;
mod solarize;

pub use adjust::{
    GRAY_WEIGHTS, adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, solarize,
    to_grayscale,
};
pub use blur::{GaussianBlur, GaussianBlurConfig, gaussian_kernel};
pub use compose::{Compose, ComposeConfig, ComposeParams, Scratch};
pub use crop::{RandomCrop, RandomCropConfig};
pub use error::AugmentError;
pub use flip::{RandomHorizontalFlip, RandomHorizontalFlipConfig, flip_rows};
pub use grayscale::{RandomGrayscale, RandomGrayscaleConfig};
pub use image::ImageDims;
pub use jitter::{Adjustment, ColorJitter, ColorJitterConfig, JitterParams};
pub use multiview::{MultiView, MultiViewConfig};
pub use normalize::{Normalize, NormalizeConfig, to_unit};
pub use op::{Op, OpConfig, OpParams, RandomApply, RandomApplyConfig};
pub use resize::CropBox;
pub use resized_crop::{Interpolation, RandomResizedCrop, RandomResizedCropConfig};
pub use rng::image_rng;
pub use solarize::{Solarize, SolarizeConfig};

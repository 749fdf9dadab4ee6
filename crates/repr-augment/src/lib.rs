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

//! Image augmentations for representation learning.
//!
//! Ops work on one image at a time, stored as `u8` in CHW layout (`[channels, height, width]`,
//! the layout of `repr-data`'s datasets), and draw their randomness from an explicit RNG. Use
//! [`image_rng`] to derive each image's own stream from `(seed, epoch, index)`, so a batch comes out
//! the same whatever the number of threads that augment it.
#![warn(missing_docs)]

mod crop;
mod error;
mod flip;
mod image;
mod rng;

pub use crop::{RandomCrop, RandomCropConfig};
pub use error::AugmentError;
pub use flip::{RandomHorizontalFlip, RandomHorizontalFlipConfig};
pub use image::ImageDims;
pub use rng::image_rng;

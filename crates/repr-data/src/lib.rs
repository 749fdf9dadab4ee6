//! Dataset readers, in-memory image datasets and batchers for `repr`.
//!
//! - Readers: IDX (MNIST / Fashion-MNIST, raw or gzip), CIFAR-10/100 binary batches and image
//!   folders (`root/<class>/*.png|jpg`), each checking every size it reads against the data present
//!   and reporting a [`DataError`] that names the file. Sizes are bounded before anything is
//!   allocated: an image by its declared pixel count ([`DEFAULT_MAX_IMAGE_PIXELS`], configurable),
//!   an IDX file by its header and [`MAX_IDX_BYTES`].
//! - [`load`] detects the format of a directory and returns an [`ImageDataset`] (u8, CHW) for one
//!   [`Split`].
//! - [`ImageBatcher`] turns images into normalised `[N, C, H, W]` float tensors, either through
//!   Burn's `Batcher` trait or through a two-step fast path for custom loaders.
//! - [`epoch_permutation`] gives the deterministic per-epoch shuffle order.
//!
//! ```
//! use repr_data::{LoadOptions, Split, fashion_mnist_dir, load};
//!
//! let test = load(&fashion_mnist_dir(), Split::Test, &LoadOptions::default())?;
//! assert_eq!((test.len(), test.channels(), test.height(), test.width()), (10_000, 1, 28, 28));
//! assert_eq!(test.class_names()[9], "Ankle boot");
//! # Ok::<(), repr_data::DataError>(())
//! ```
#![warn(missing_docs)]

mod batcher;
mod cifar;
mod colour;
mod dataset;
mod decode;
mod error;
mod folder;
mod header;
mod idx;
mod load;
mod multiview;
mod sampler;
mod shuffle;

pub use batcher::{ImageBatch, ImageBatcher, Normalize};
pub use cifar::{CIFAR10_CLASSES, read_cifar_batch, read_cifar10, read_cifar100};
pub use colour::{into_luma8, into_rgb8, rgb_to_chw};
pub use dataset::{ImageDataset, ImageItem};
pub use decode::{
    DEFAULT_MAX_IMAGE_PIXELS, IMAGE_EXTENSIONS, decode_image, decode_image_bytes,
    has_image_extension, resize_bilinear,
};
pub use error::DataError;
pub use folder::{OnBadImage, SkippedImage, read_image_folder, read_image_folder_with};
pub use idx::{MAX_IDX_BYTES, read_idx_images, read_idx_labels};
pub use load::{
    DatasetFormat, FASHION_MNIST_CLASSES, LoadOptions, Split, fashion_mnist_dir, load, load_format,
    load_with_skipped,
};
pub use multiview::{CpuMultiViewBatch, DeviceMultiViewInputs, MultiViewBatch, MultiViewBatcher};
pub use sampler::PkSampler;
pub use shuffle::epoch_permutation;

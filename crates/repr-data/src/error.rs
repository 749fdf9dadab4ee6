//! The ways a dataset on disk can be wrong.

use std::io;
use std::path::{Path, PathBuf};

/// An error reading a dataset. Every variant that comes from a file names that file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be opened or read (missing, permissions, corrupt gzip stream, ...).
    /// (The OS error is part of the message, and not also a `source()`, so that a printed
    /// chain of causes says it once.)
    #[error("cannot read {}: {error}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// The file does not start with the magic number of the expected kind of file.
    #[error(
        "{}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})",
        .path.display()
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number found.
        found: u32,
        /// The magic number expected.
        expected: u32,
        /// What kind of file was expected.
        what: &'static str,
    },
    /// The header is complete but describes an impossible file (a zero or overflowing size).
    #[error("{}: invalid header: {reason}", .path.display())]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file (after decompression) is shorter than its header or record size requires.
    #[error(
        "{} is truncated: expected {expected} bytes (uncompressed), found {found}",
        .path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The number of bytes required.
        expected: u64,
        /// The number of bytes present.
        found: u64,
    },
    /// The file (after decompression) is longer than its header says.
    #[error(
        "{} has trailing data: its header describes {expected} bytes (uncompressed) but it is longer",
        .path.display()
    )]
    TrailingData {
        /// The file.
        path: PathBuf,
        /// The number of bytes the header describes.
        expected: u64,
    },
    /// An image file and its label file disagree on the number of items.
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        .images_path.display(), .labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The label file.
        labels_path: PathBuf,
        /// The number of images.
        images: usize,
        /// The number of labels.
        labels: usize,
    },
    /// An image file could not be decoded.
    #[error("cannot decode image {}: {reason}", .path.display())]
    BadImage {
        /// The image file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// An image file declares more pixels than the per-image limit (default
    /// [`crate::DEFAULT_MAX_IMAGE_PIXELS`]); it is refused from its header, before decoding.
    #[error("{}: {}", .path.display(), too_many_pixels(*.width, *.height, *.limit))]
    ImageTooLarge {
        /// The image file.
        path: PathBuf,
        /// The width its header declares.
        width: u32,
        /// The height its header declares.
        height: u32,
        /// The most pixels an image may have.
        limit: u64,
    },
    /// A file's header declares more data than a reader accepts, and the file holds more than
    /// that limit ([`crate::MAX_IDX_BYTES`] for IDX files).
    #[error(
        "{}: its header declares {declared} bytes of data, more than the limit of {limit} \
         bytes ({what})",
        .path.display()
    )]
    DataTooLarge {
        /// The file.
        path: PathBuf,
        /// The number of data bytes the header declares.
        declared: u64,
        /// The most data bytes accepted.
        limit: u64,
        /// The name of the limit.
        what: &'static str,
    },
    /// A label is not below the number of classes.
    #[error(
        "{}: label {label} of item {index} is out of range for {num_classes} classes",
        .path.display()
    )]
    LabelOutOfRange {
        /// The file holding the label.
        path: PathBuf,
        /// The item's index in that file.
        index: usize,
        /// The label found.
        label: u32,
        /// The number of classes.
        num_classes: usize,
    },
    /// A class-name file does not list one name per class.
    #[error("{}: expected {expected} class names, found {found}", .path.display())]
    BadClassNames {
        /// The class-name file.
        path: PathBuf,
        /// The number of classes.
        expected: usize,
        /// The number of non-empty lines found.
        found: usize,
    },
    /// The dataset holds no image (an image folder under [`crate::OnBadImage::Skip`]: not one
    /// that could be read; the message then gives the number skipped and the first reason).
    #[error("{} holds no images{}", .path.display(), all_skipped(.skipped))]
    EmptyDataset {
        /// The file or directory.
        path: PathBuf,
        /// The image files skipped, when every image of a folder was.
        skipped: Vec<crate::folder::SkippedImage>,
    },
    /// An image folder has no class subfolder.
    #[error("{} has no class subfolders (expected <root>/<class>/*.png|jpg)", .path.display())]
    NoClasses {
        /// The directory.
        path: PathBuf,
    },
    /// No supported dataset layout was found in a directory.
    #[error("{}: no dataset found; looked for {looked_for}", .path.display())]
    UnknownFormat {
        /// The directory.
        path: PathBuf,
        /// The files and folders that were looked for.
        looked_for: String,
    },
    /// An image folder has no `test` folder, so it has no test split.
    #[error(
        "{} has no {split} split: a two-split image folder has {}/train and {}/test",
        .path.display(), .path.display(), .path.display()
    )]
    MissingSplit {
        /// The image folder.
        path: PathBuf,
        /// The split asked for.
        split: crate::Split,
    },
    /// The load options are impossible (zero size, unsupported channel count).
    #[error("invalid load options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// A P×K sampler cannot be built for this dataset ([`crate::PkSampler::new`]).
    #[error("invalid P×K sampler: {reason}")]
    InvalidSampler {
        /// What is wrong.
        reason: String,
    },
    /// In-memory parts given to [`crate::ImageDataset::new`] do not fit together.
    #[error("invalid dataset: {reason}")]
    InvalidDataset {
        /// What is wrong.
        reason: String,
    },
}

/// Why an image of `width × height` pixels is refused under `limit`, and how to raise the limit
/// (the message of [`DataError::ImageTooLarge`] without its file).
pub(crate) fn too_many_pixels(width: u32, height: u32, limit: u64) -> String {
    let pixels = u64::from(width) * u64::from(height);
    format!(
        "{width}x{height} pixels ({:.1} megapixels) is more than the limit of {limit} pixels \
         ({:.1} megapixels) per image; raise it with `data.max_image_pixels` in the config or \
         `--max-image-pixels` on the command line",
        pixels as f64 / 1e6,
        limit as f64 / 1e6,
    )
}

/// The end of [`DataError::EmptyDataset`]'s message: why, when every image was skipped.
fn all_skipped(skipped: &[crate::folder::SkippedImage]) -> String {
    match skipped.first() {
        None => String::new(),
        Some(first) => format!(
            ": all {} image files were skipped; the first: {first}",
            skipped.len()
        ),
    }
}

impl DataError {
    /// An [`DataError::Io`] error for `path`.
    pub(crate) fn io(path: &Path, error: io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

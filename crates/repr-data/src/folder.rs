//! Image folders: `root/<class>/*.{png,jpg,jpeg}`, one subfolder per class.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode::{DEFAULT_MAX_IMAGE_PIXELS, decode_into, has_image_extension};
use crate::error::too_many_pixels;
use crate::{DataError, ImageDataset};

/// What an image-folder reader does with a file it cannot read or decode (corrupt, truncated,
/// zero bytes, not an image despite its extension, unreadable, more pixels than the limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadImage {
    /// Stop with the error naming the first bad file (the default).
    #[default]
    Fail,
    /// Leave the file out and report it as a [`SkippedImage`].
    Skip,
}

impl fmt::Display for OnBadImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnBadImage::Fail => "fail",
            OnBadImage::Skip => "skip",
        })
    }
}

impl FromStr for OnBadImage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail" => Ok(OnBadImage::Fail),
            "skip" => Ok(OnBadImage::Skip),
            other => Err(format!(
                "`{other}` is not allowed: expected `skip` or `fail`"
            )),
        }
    }
}

/// An image file left out of a dataset under [`OnBadImage::Skip`], and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedImage {
    /// The file.
    pub path: PathBuf,
    /// The reader's or decoder's message.
    pub reason: String,
}

impl fmt::Display for SkippedImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Reads every `root/<class>/*.{png,jpg,jpeg}` image (extension case-insensitive; other files,
/// hidden folders and nested folders are ignored). Classes are the subfolder names sorted
/// alphabetically (by their bytes), their index is the label; images are taken in file-name
/// order. A folder or file name that is not UTF-8 is read all the same; its class name is the
/// folder name with each invalid sequence replaced by `U+FFFD`.
///
/// Each image, of any size up to [`DEFAULT_MAX_IMAGE_PIXELS`] and any colour mode, is converted
/// to `channels` (1: grey, 3: RGB) as PIL's `convert("L")` / `convert("RGB")` do (alpha dropped,
/// 16-bit samples reduced to their high byte, palettes expanded, grey replicated) and resized to
/// `size = (height, width)` with bilinear filtering, in parallel.
///
/// # Errors
/// [`DataError::InvalidOptions`] for `channels` other than 1 or 3 or a zero size;
/// [`DataError::NoClasses`] without class subfolder; [`DataError::EmptyDataset`] without images;
/// [`DataError::BadImage`] or [`DataError::ImageTooLarge`] naming the first (in label, then file
/// order) undecodable or too large image; [`DataError::Io`].
pub fn read_image_folder(
    root: &Path,
    channels: usize,
    size: (usize, usize),
) -> Result<ImageDataset, DataError> {
    read_image_folder_with(
        root,
        channels,
        size,
        OnBadImage::Fail,
        DEFAULT_MAX_IMAGE_PIXELS,
    )
    .map(|(dataset, _)| dataset)
}

/// As [`read_image_folder`], with a choice of what to do with bad files and a per-image pixel
/// limit: an image whose header declares more than `max_image_pixels` pixels (width × height)
/// is refused before it is decoded (see [`DEFAULT_MAX_IMAGE_PIXELS`] for the memory this
/// bounds). Under [`OnBadImage::Skip`] every file that cannot be opened, read or decoded, or is
/// over the limit, is left out and returned, in label then file order, beside the dataset.
///
/// # Errors
/// As [`read_image_folder`]; [`DataError::InvalidOptions`] for a zero `max_image_pixels`; under
/// [`OnBadImage::Skip`], [`DataError::EmptyDataset`] when every image was skipped.
pub fn read_image_folder_with(
    root: &Path,
    channels: usize,
    size: (usize, usize),
    on_bad_image: OnBadImage,
    max_image_pixels: u64,
) -> Result<(ImageDataset, Vec<SkippedImage>), DataError> {
    let classes = class_folders(root)?;
    read_classes(
        root,
        &classes,
        channels,
        size,
        on_bad_image,
        max_image_pixels,
    )
}

/// The class subfolder names of `root`, sorted by their bytes, as the OS gives them (a name
/// that is not UTF-8 still names its folder).
pub(crate) fn class_folders(root: &Path) -> Result<Vec<OsString>, DataError> {
    let io_err = |e| DataError::io(root, e);
    let mut classes = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b".") && entry.path().is_dir() {
            classes.push(name);
        }
    }
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::NoClasses {
            path: root.to_path_buf(),
        });
    }
    Ok(classes)
}

/// Reads the images of `root/<classes[label]>/`; a missing class folder holds no image, so that
/// a train and a test folder share one label map.
pub(crate) fn read_classes(
    root: &Path,
    classes: &[OsString],
    channels: usize,
    size: (usize, usize),
    on_bad_image: OnBadImage,
    max_image_pixels: u64,
) -> Result<(ImageDataset, Vec<SkippedImage>), DataError> {
    let (height, width) = size;
    if !matches!(channels, 1 | 3) {
        return Err(DataError::InvalidOptions {
            reason: format!("{channels} channels requested; image folders support 1 or 3"),
        });
    }
    if height == 0 || width == 0 || u32::try_from(height.max(width)).is_err() {
        return Err(DataError::InvalidOptions {
            reason: format!("image size {height}x{width} is not a positive u32 size"),
        });
    }
    if max_image_pixels == 0 {
        return Err(DataError::InvalidOptions {
            reason: "max_image_pixels is 0: no image could be read".into(),
        });
    }

    let mut files: Vec<(PathBuf, u32)> = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        if !dir.is_dir() {
            continue;
        }
        let mut images = image_files(&dir)?;
        images.sort();
        files.extend(images.into_iter().map(|p| (p, label as u32)));
    }
    if files.is_empty() {
        return Err(DataError::EmptyDataset {
            path: root.to_path_buf(),
            skipped: Vec::new(),
        });
    }

    let image_len = channels * height * width;
    let too_large = || DataError::InvalidOptions {
        reason: format!(
            "{} images of {channels}x{height}x{width} bytes do not fit in memory (every image is \
             held in memory at this size: choose a smaller data.image_size)",
            files.len()
        ),
    };
    let total = files.len().checked_mul(image_len).ok_or_else(too_large)?;
    // A failed allocation is an error naming the sizes, not an abort of the process.
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| too_large())?;
    pixels.resize(total, 0u8);
    // Collecting in order makes the reported error the first bad file, whatever the threads did.
    let results: Vec<Result<(), DataError>> = pixels
        .par_chunks_mut(image_len)
        .zip(files.par_iter())
        .map(|(out, (path, _))| decode_into(path, channels, size, max_image_pixels, out))
        .collect();

    // Compact the good images to the front, in order; bad ones fail or are reported.
    let mut labels = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (index, (result, (path, label))) in results.into_iter().zip(&files).enumerate() {
        match result {
            Ok(()) => {
                let kept = labels.len();
                if kept != index {
                    pixels
                        .copy_within(index * image_len..(index + 1) * image_len, kept * image_len);
                }
                labels.push(*label);
            }
            Err(e) if on_bad_image == OnBadImage::Fail => return Err(e),
            Err(e) => skipped.push(SkippedImage {
                path: path.clone(),
                reason: skip_reason(e),
            }),
        }
    }
    if labels.is_empty() {
        return Err(DataError::EmptyDataset {
            path: root.to_path_buf(),
            skipped,
        });
    }
    pixels.truncate(labels.len() * image_len);
    let class_names = classes
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let dataset = ImageDataset::new(pixels, labels, [channels, height, width], class_names)?;
    Ok((dataset, skipped))
}

/// The message of a per-file error, without the path the [`SkippedImage`] already names.
fn skip_reason(error: DataError) -> String {
    match error {
        DataError::BadImage { reason, .. } => format!("cannot decode: {reason}"),
        DataError::Io { error, .. } => format!("cannot read: {error}"),
        DataError::ImageTooLarge {
            width,
            height,
            limit,
            ..
        } => too_many_pixels(width, height, limit),
        other => other.to_string(),
    }
}

/// The image files directly inside `dir`.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io_err = |e| DataError::io(dir, e);
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        if has_image_extension(&path) && path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_channel_count_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let classes = ["a".into()];
        let err = read_classes(dir.path(), &classes, 2, (8, 8), OnBadImage::Fail, 100).unwrap_err();
        assert!(matches!(err, DataError::InvalidOptions { .. }), "{err}");
        let err = read_classes(dir.path(), &classes, 3, (8, 8), OnBadImage::Fail, 0).unwrap_err();
        assert!(
            matches!(&err, DataError::InvalidOptions { reason } if reason.contains("max_image_pixels")),
            "{err}"
        );
    }
}

//! Image folders: `root/<class>/*.{png,jpg,jpeg}`, one subfolder per class.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageReader};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{DataError, ImageDataset};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// What an image-folder reader does with a file it cannot read or decode (corrupt, truncated,
/// zero bytes, not an image despite its extension, unreadable).
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
/// alphabetically, their index is the label; images are taken in file-name order.
///
/// Each image, of any size and colour type, is converted to `channels` (1: luma, 3: RGB) and
/// resized to `size = (height, width)` with bilinear filtering, in parallel.
///
/// # Errors
/// [`DataError::InvalidOptions`] for `channels` other than 1 or 3 or a zero size;
/// [`DataError::NoClasses`] without class subfolder; [`DataError::EmptyDataset`] without images;
/// [`DataError::BadImage`] naming the first (in label, then file order) undecodable image;
/// [`DataError::Io`].
pub fn read_image_folder(
    root: &Path,
    channels: usize,
    size: (usize, usize),
) -> Result<ImageDataset, DataError> {
    let classes = class_folders(root)?;
    read_classes(root, &classes, channels, size, OnBadImage::Fail).map(|(dataset, _)| dataset)
}

/// As [`read_image_folder`], with a choice of what to do with bad files: under
/// [`OnBadImage::Skip`] every file that cannot be opened, read or decoded is left out and
/// returned, in label then file order, beside the dataset.
///
/// # Errors
/// As [`read_image_folder`]; under [`OnBadImage::Skip`], [`DataError::EmptyDataset`] when every
/// image was skipped.
pub fn read_image_folder_with(
    root: &Path,
    channels: usize,
    size: (usize, usize),
    on_bad_image: OnBadImage,
) -> Result<(ImageDataset, Vec<SkippedImage>), DataError> {
    let classes = class_folders(root)?;
    read_classes(root, &classes, channels, size, on_bad_image)
}

/// The class subfolder names of `root`, sorted.
pub(crate) fn class_folders(root: &Path) -> Result<Vec<String>, DataError> {
    let io_err = |e| DataError::io(root, e);
    let mut classes = Vec::new();
    for entry in fs::read_dir(root).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
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
    classes: &[String],
    channels: usize,
    size: (usize, usize),
    on_bad_image: OnBadImage,
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
        });
    }

    let image_len = channels * height * width;
    let too_large = || DataError::InvalidOptions {
        reason: format!(
            "{} images of {channels}x{height}x{width} overflow memory",
            files.len()
        ),
    };
    let total = files.len().checked_mul(image_len).ok_or_else(too_large)?;
    let mut pixels = vec![0u8; total];
    // Collecting in order makes the reported error the first bad file, whatever the threads did.
    let results: Vec<Result<(), DataError>> = pixels
        .par_chunks_mut(image_len)
        .zip(files.par_iter())
        .map(|(out, (path, _))| decode_into(path, channels, size, out))
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
        });
    }
    pixels.truncate(labels.len() * image_len);
    let dataset = ImageDataset::new(pixels, labels, [channels, height, width], classes.to_vec())?;
    Ok((dataset, skipped))
}

/// The message of a per-file error, without the path the [`SkippedImage`] already names.
fn skip_reason(error: DataError) -> String {
    match error {
        DataError::BadImage { reason, .. } => format!("cannot decode: {reason}"),
        DataError::Io { error, .. } => format!("cannot read: {error}"),
        other => other.to_string(),
    }
}

/// The image files directly inside `dir`.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io_err = |e| DataError::io(dir, e);
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if is_image && path.is_file() {
            files.push(path);
        }
    }
    Ok(files)
}

/// Decodes `path`, converts it to `channels` and `(height, width)`, and writes it CHW into `out`.
fn decode_into(
    path: &Path,
    channels: usize,
    (height, width): (usize, usize),
    out: &mut [u8],
) -> Result<(), DataError> {
    let bad = |reason: String| DataError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    let image = ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| bad(e.to_string()))?;
    let (w, h) = (width as u32, height as u32);
    if channels == 1 {
        let gray = image.to_luma8();
        let gray = if gray.dimensions() == (w, h) {
            gray
        } else {
            imageops::resize(&gray, w, h, FilterType::Triangle)
        };
        out.copy_from_slice(gray.as_raw());
    } else {
        let rgb = rgb_resized(&image, w, h);
        // HWC -> CHW.
        let plane = height * width;
        for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
            out[i] = px[0];
            out[plane + i] = px[1];
            out[2 * plane + i] = px[2];
        }
    }
    Ok(())
}

fn rgb_resized(image: &DynamicImage, w: u32, h: u32) -> image::RgbImage {
    let rgb = image.to_rgb8();
    if rgb.dimensions() == (w, h) {
        rgb
    } else {
        imageops::resize(&rgb, w, h, FilterType::Triangle)
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use super::*;

    #[test]
    fn rgb_is_written_channel_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("px.png");
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([10, 20, 30]));
        img.put_pixel(1, 0, Rgb([40, 50, 60]));
        img.save(&path).unwrap();
        let mut out = [0u8; 6];
        decode_into(&path, 3, (1, 2), &mut out).unwrap();
        assert_eq!(out, [10, 40, 20, 50, 30, 60]);
    }

    #[test]
    fn unsupported_channel_count_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_classes(dir.path(), &["a".into()], 2, (8, 8), OnBadImage::Fail).unwrap_err();
        assert!(matches!(err, DataError::InvalidOptions { .. }), "{err}");
    }
}

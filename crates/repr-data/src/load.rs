//! Loading a split of a dataset directory, whatever its format.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cifar::{read_cifar10, read_cifar100};
use crate::dataset::check_labels;
use crate::decode::DEFAULT_MAX_IMAGE_PIXELS;
use crate::folder::{OnBadImage, SkippedImage, class_folders, read_classes};
use crate::idx::{read_idx_images, read_idx_labels};
use crate::{DataError, ImageDataset};

/// Fashion-MNIST class names, indexed by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which part of a dataset to load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// The on-disk dataset formats [`load`] understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetFormat {
    /// IDX files: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`, `t10k-*` for
    /// test (`*.idx3-ubyte` spellings accepted).
    Idx,
    /// CIFAR-10 binary: `data_batch_<k>.bin`, `test_batch.bin`.
    Cifar10,
    /// CIFAR-100 binary: `train.bin`, `test.bin`.
    Cifar100,
    /// `root/<class>/*.png|jpg`, or `root/train/<class>/..` and `root/test/<class>/..`.
    ImageFolder,
}

const LOOKED_FOR: &str = "IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]), \
    CIFAR-10 (data_batch_<k>.bin, test_batch.bin), CIFAR-100 (train.bin, test.bin) \
    or class subfolders of images";

impl DatasetFormat {
    /// Detects the format of `dir` from the files present, in the order IDX, CIFAR-10, CIFAR-100,
    /// image folder (any non-hidden subfolder).
    ///
    /// # Errors
    /// [`DataError::Io`] if `dir` cannot be listed; [`DataError::UnknownFormat`] if nothing fits.
    pub fn detect(dir: &Path) -> Result<Self, DataError> {
        let io_err = |e| DataError::io(dir, e);
        let mut names = Vec::new();
        let mut has_subfolder = false;
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            has_subfolder |= !name.starts_with('.') && entry.path().is_dir();
            names.push(name);
        }
        let has = |pred: &dyn Fn(&str) -> bool| names.iter().any(|n| pred(n));
        if ["train", "t10k"]
            .iter()
            .any(|p| find_idx(dir, p, "images").is_some())
        {
            Ok(Self::Idx)
        } else if has(&|n| {
            n == "test_batch.bin" || (n.starts_with("data_batch_") && n.ends_with(".bin"))
        }) {
            Ok(Self::Cifar10)
        } else if has(&|n| n == "train.bin" || n == "test.bin") {
            Ok(Self::Cifar100)
        } else if has_subfolder {
            Ok(Self::ImageFolder)
        } else {
            Err(DataError::UnknownFormat {
                path: dir.to_path_buf(),
                looked_for: LOOKED_FOR.into(),
            })
        }
    }
}

/// How to load an image folder; IDX and CIFAR data keep their native shape and ignore it.
///
/// ```
/// use repr_data::{DEFAULT_MAX_IMAGE_PIXELS, LoadOptions, OnBadImage};
///
/// let options = LoadOptions::default();
/// assert_eq!(options.max_image_pixels, DEFAULT_MAX_IMAGE_PIXELS);
/// let options = options
///     .with_image_size(64, 64)
///     .with_on_bad_image(OnBadImage::Skip)
///     .with_max_image_pixels(200_000_000);
/// assert_eq!(options.max_image_pixels, 200_000_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// `(height, width)` every image is resized to; default [`LoadOptions::DEFAULT_IMAGE_SIZE`].
    pub image_size: Option<(usize, usize)>,
    /// 1 (grayscale) or 3 (RGB); default [`LoadOptions::DEFAULT_CHANNELS`].
    pub channels: Option<usize>,
    /// What to do with an image file that cannot be read or decoded (default: fail).
    #[serde(default)]
    pub on_bad_image: OnBadImage,
    /// The most pixels (width × height) an image file may declare; a larger one is refused
    /// from its header before it is decoded ([`DataError::ImageTooLarge`], or skipped under
    /// [`OnBadImage::Skip`]). Default [`DEFAULT_MAX_IMAGE_PIXELS`], whose documentation gives
    /// the memory one image may take at a given limit.
    #[serde(default = "default_max_image_pixels")]
    pub max_image_pixels: u64,
}

fn default_max_image_pixels() -> u64 {
    DEFAULT_MAX_IMAGE_PIXELS
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            image_size: None,
            channels: None,
            on_bad_image: OnBadImage::default(),
            max_image_pixels: DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

impl LoadOptions {
    /// The image-folder size when none is given.
    pub const DEFAULT_IMAGE_SIZE: (usize, usize) = (32, 32);
    /// The image-folder channel count when none is given.
    pub const DEFAULT_CHANNELS: usize = 3;

    /// These options with images resized to `(height, width)`.
    pub fn with_image_size(mut self, height: usize, width: usize) -> Self {
        self.image_size = Some((height, width));
        self
    }

    /// These options with images converted to `channels` (1 or 3).
    pub fn with_channels(mut self, channels: usize) -> Self {
        self.channels = Some(channels);
        self
    }

    /// These options with bad image files skipped or failing the load.
    pub fn with_on_bad_image(mut self, on_bad_image: OnBadImage) -> Self {
        self.on_bad_image = on_bad_image;
        self
    }

    /// These options with images of more than `max_image_pixels` pixels refused.
    pub fn with_max_image_pixels(mut self, max_image_pixels: u64) -> Self {
        self.max_image_pixels = max_image_pixels;
        self
    }
}

/// Loads `split` of the dataset in `dir`, detecting its format with [`DatasetFormat::detect`].
///
/// IDX data in a folder whose name contains "fashion" gets the Fashion-MNIST class names (a
/// label of 10 or more is an error), other IDX data the label numbers `"0"`..`"max"` of its
/// training labels (at least `"0"`..`"9"`; a label past a class number that has no training
/// image, such as one stray 255, is an error naming the file, the item and the label).
///
/// # Errors
/// Any [`DataError`] of the detected format's reader, naming the file at fault.
///
/// Files skipped under [`OnBadImage::Skip`] are not reported: use [`load_with_skipped`] to list
/// them.
pub fn load(dir: &Path, split: Split, options: &LoadOptions) -> Result<ImageDataset, DataError> {
    load_with_skipped(dir, split, options).map(|(dataset, _)| dataset)
}

/// As [`load`], also returning the image files left out under [`OnBadImage::Skip`] (always
/// empty for IDX and CIFAR data, whose readers have no per-image files).
///
/// # Errors
/// As [`load`].
pub fn load_with_skipped(
    dir: &Path,
    split: Split,
    options: &LoadOptions,
) -> Result<(ImageDataset, Vec<SkippedImage>), DataError> {
    let format = DatasetFormat::detect(dir)?;
    match format {
        DatasetFormat::ImageFolder => load_folder(dir, split, options),
        _ => Ok((load_format(dir, format, split, options)?, Vec::new())),
    }
}

/// Loads `split` of the dataset in `dir`, read as `format`.
///
/// # Errors
/// As [`load`]; an image folder without `train`/`test` subfolders has only a train split
/// ([`DataError::MissingSplit`] for [`Split::Test`]).
pub fn load_format(
    dir: &Path,
    format: DatasetFormat,
    split: Split,
    options: &LoadOptions,
) -> Result<ImageDataset, DataError> {
    match format {
        DatasetFormat::Idx => load_idx(dir, split),
        DatasetFormat::Cifar10 => read_cifar10(dir, split),
        DatasetFormat::Cifar100 => read_cifar100(dir, split),
        DatasetFormat::ImageFolder => load_folder(dir, split, options).map(|(dataset, _)| dataset),
    }
}

/// `<workspace>/datasets/fashion-mnist`, the embedded default dataset.
pub fn fashion_mnist_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist");
    dir.canonicalize().unwrap_or(dir)
}

fn load_idx(dir: &Path, split: Split) -> Result<ImageDataset, DataError> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images_path = idx_path(dir, prefix, "images")?;
    let labels_path = idx_path(dir, prefix, "labels")?;
    let (pixels, count, rows, cols) = read_idx_images(&images_path)?;
    let labels: Vec<u32> = read_idx_labels(&labels_path)?
        .into_iter()
        .map(u32::from)
        .collect();
    if labels.len() != count {
        return Err(DataError::CountMismatch {
            images_path,
            labels_path,
            images: count,
            labels: labels.len(),
        });
    }
    if count == 0 {
        return Err(DataError::EmptyDataset {
            path: images_path,
            skipped: Vec::new(),
        });
    }
    let is_fashion = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_lowercase().contains("fashion"));
    let class_names: Vec<String> = if is_fashion {
        check_labels(&labels_path, &labels, FASHION_MNIST_CLASSES.len())?;
        FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        // The class count comes from the training labels (the test split is checked against
        // them), so one stray byte is named instead of becoming a 256-class dataset.
        let num_classes = match split {
            Split::Train => idx_class_count(&labels_path, &labels)?,
            Split::Test => {
                let train_path = idx_path(dir, "train", "labels")?;
                let train: Vec<u32> = read_idx_labels(&train_path)?
                    .into_iter()
                    .map(u32::from)
                    .collect();
                let n = idx_class_count(&train_path, &train)?;
                check_labels(&labels_path, &labels, n)?;
                n
            }
        };
        (0..num_classes).map(|i| i.to_string()).collect()
    };
    ImageDataset::new(pixels, labels, [1, rows, cols], class_names)
}

/// The number of classes of generic IDX training labels: the label numbers `0..=max`, at least
/// ten (MNIST-style data). Every number in `10..=max` must have an image: a label beyond such a
/// gap is an error naming its file, item and value.
fn idx_class_count(path: &Path, labels: &[u32]) -> Result<usize, DataError> {
    let max = labels.iter().copied().max().unwrap_or(0) as usize;
    let mut present = vec![false; max + 1];
    labels.iter().for_each(|&l| present[l as usize] = true);
    match (10..=max).find(|&c| !present[c]) {
        Some(missing) => check_labels(path, labels, missing).map(|()| missing),
        None => Ok((max + 1).max(10)),
    }
}

/// The IDX file `<prefix>-<kind>-idx{3,1}-ubyte[.gz]` of `dir` (also the `.idx3-ubyte` spelling).
fn find_idx(dir: &Path, prefix: &str, kind: &str) -> Option<PathBuf> {
    let dims = if kind == "images" { 3 } else { 1 };
    [
        format!("{prefix}-{kind}-idx{dims}-ubyte.gz"),
        format!("{prefix}-{kind}-idx{dims}-ubyte"),
        format!("{prefix}-{kind}.idx{dims}-ubyte.gz"),
        format!("{prefix}-{kind}.idx{dims}-ubyte"),
    ]
    .iter()
    .map(|name| dir.join(name))
    .find(|path| path.is_file())
}

fn idx_path(dir: &Path, prefix: &str, kind: &str) -> Result<PathBuf, DataError> {
    find_idx(dir, prefix, kind).ok_or_else(|| {
        let dims = if kind == "images" { 3 } else { 1 };
        let path = dir.join(format!("{prefix}-{kind}-idx{dims}-ubyte[.gz]"));
        DataError::io(
            &path,
            io::Error::new(io::ErrorKind::NotFound, "file not found"),
        )
    })
}

fn load_folder(
    dir: &Path,
    split: Split,
    options: &LoadOptions,
) -> Result<(ImageDataset, Vec<SkippedImage>), DataError> {
    let size = options
        .image_size
        .unwrap_or(LoadOptions::DEFAULT_IMAGE_SIZE);
    let channels = options.channels.unwrap_or(LoadOptions::DEFAULT_CHANNELS);
    let (train, test) = (dir.join("train"), dir.join("test"));
    if !(train.is_dir() && test.is_dir()) {
        return match split {
            Split::Train => {
                let classes = class_folders(dir)?;
                read_classes(
                    dir,
                    &classes,
                    channels,
                    size,
                    options.on_bad_image,
                    options.max_image_pixels,
                )
            }
            Split::Test => Err(DataError::MissingSplit {
                path: dir.to_path_buf(),
                split,
            }),
        };
    }
    // One label map for both splits, even if a class folder is missing from one of them.
    let mut classes = class_folders(&train)?;
    classes.extend(class_folders(&test)?);
    classes.sort();
    classes.dedup();
    let split_dir = match split {
        Split::Train => train,
        Split::Test => test,
    };
    read_classes(
        &split_dir,
        &classes,
        channels,
        size,
        options.on_bad_image,
        options.max_image_pixels,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_files() {
        let cases: [(&[&str], DatasetFormat); 4] = [
            (&["t10k-images-idx3-ubyte.gz"], DatasetFormat::Idx),
            (&["data_batch_3.bin", "readme.html"], DatasetFormat::Cifar10),
            (
                &["train.bin", "fine_label_names.txt"],
                DatasetFormat::Cifar100,
            ),
            (&["cat/"], DatasetFormat::ImageFolder),
        ];
        for (files, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            for f in files {
                match f.strip_suffix('/') {
                    Some(d) => std::fs::create_dir(dir.path().join(d)).unwrap(),
                    None => std::fs::write(dir.path().join(f), b"").unwrap(),
                }
            }
            assert_eq!(
                DatasetFormat::detect(dir.path()).unwrap(),
                expected,
                "{files:?}"
            );
        }
    }

    #[test]
    fn a_folder_without_dataset_is_an_unknown_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let err = DatasetFormat::detect(dir.path()).unwrap_err();
        assert!(matches!(err, DataError::UnknownFormat { .. }), "{err}");
        assert!(err.to_string().contains("train-images-idx3-ubyte"));
    }

    #[test]
    fn fashion_mnist_dir_holds_the_embedded_files() {
        assert!(find_idx(&fashion_mnist_dir(), "train", "labels").is_some());
    }
}

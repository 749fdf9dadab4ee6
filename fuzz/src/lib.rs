//! The dataset readers of `repr-data` and the checkpoint layout of `repr-train`, compiled from
//! their own source files, with stand-ins for the parts of repr-data that need Burn ([`ImageDataset`] keeps only what the readers build,
//! and checks the same invariants as the real `ImageDataset::new`).
//!
//! If a reader starts using another item of `crate::`, add it here (the fuzz build says which).
#![allow(dead_code)]

use std::fmt;
use std::path::{Path, PathBuf};

#[path = "../../crates/repr-train/src/checkpoint_file.rs"]
pub mod checkpoint_file;
#[path = "../../crates/repr-data/src/cifar.rs"]
pub mod cifar;
#[path = "../../crates/repr-data/src/colour.rs"]
pub mod colour;
#[path = "../../crates/repr-data/src/decode.rs"]
pub mod decode;
#[path = "../../crates/repr-data/src/error.rs"]
mod error;
#[path = "../../crates/repr-data/src/folder.rs"]
pub mod folder;
#[path = "../../crates/repr-data/src/header.rs"]
pub mod header;
#[path = "../../crates/repr-data/src/idx.rs"]
pub mod idx;

pub use error::DataError;

/// Stand-in for `repr_data::Split`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training split.
    Train,
    /// Test split.
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

/// Stand-in for `repr_data::ImageDataset`: the readers' output, with the checks of
/// `ImageDataset::new`.
#[derive(Debug)]
pub struct ImageDataset {
    /// u8 pixels, CHW per image.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u32>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// One name per class.
    pub class_names: Vec<String>,
}

impl ImageDataset {
    /// As `repr_data::ImageDataset::new`.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u32>,
        shape: [usize; 3],
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let invalid = |reason: String| Err(DataError::InvalidDataset { reason });
        if shape.contains(&0) {
            return invalid(format!("image shape {shape:?} has a zero dimension"));
        }
        let image_len = shape.iter().product::<usize>();
        if Some(pixels.len()) != labels.len().checked_mul(image_len) {
            return invalid(format!(
                "{} pixels for {} images",
                pixels.len(),
                labels.len()
            ));
        }
        if labels.iter().any(|&l| l as usize >= class_names.len()) {
            return invalid("label out of range".into());
        }
        Ok(Self {
            pixels,
            labels,
            shape,
            class_names,
        })
    }
}

pub(crate) mod dataset {
    use super::*;

    /// As `repr_data::dataset::check_labels`.
    pub(crate) fn check_labels(
        path: &Path,
        labels: &[u32],
        num_classes: usize,
    ) -> Result<(), DataError> {
        match labels.iter().position(|&l| l as usize >= num_classes) {
            Some(index) => Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label: labels[index],
                num_classes,
            }),
            None => Ok(()),
        }
    }
}

/// A scratch folder for this fuzzing process (the readers take paths), on tmpfs when there is
/// one.
pub fn scratch_dir(target: &str) -> PathBuf {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("repr-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating the scratch folder");
    dir
}

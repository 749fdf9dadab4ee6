//! The data of a run: both splits with the config's limits, the kNN memory, the normalisation
//! and the image files left out, shared with the loader threads.

use std::path::Path;
use std::sync::Arc;

use repr_data::{ImageDataset, LoadOptions, Normalize, SkippedImage, Split};

use crate::progress::Progress;
use crate::represent::EvalSets;
use crate::{DataShape, TrainConfig, TrainError};

/// The two splits of a run and their normalisation.
pub(crate) struct RunData {
    /// The dataset folder's name.
    pub name: String,
    pub train: Arc<ImageDataset>,
    pub test: Arc<ImageDataset>,
    /// The kNN memory and linear-probe training set of embedding methods.
    pub memory: Arc<ImageDataset>,
    pub normalize: Normalize,
    /// Image files left out of either split under `on_bad_image = "skip"`.
    pub skipped: Vec<SkippedImage>,
}

impl RunData {
    /// Reads `config.data` and applies its limits: a seeded random subset for `train_limit`
    /// and `test_limit` (and the kNN memory's `eval.memory_limit`), then repr-data's
    /// class-stratified `labels_fraction`.
    pub fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let dir = config
            .data
            .dir
            .clone()
            .unwrap_or_else(repr_data::fashion_mnist_dir);
        let options = LoadOptions {
            image_size: config.data.image_size.map(|[h, w]| (h, w)),
            channels: config.data.channels,
            on_bad_image: config.data.on_bad_image,
            max_image_pixels: config.data.max_image_pixels,
        };
        let (mut train, mut skipped) = repr_data::load_with_skipped(&dir, Split::Train, &options)?;
        let (mut test, skipped_test) = repr_data::load_with_skipped(&dir, Split::Test, &options)?;
        skipped.extend(skipped_test);
        if let Some(limit) = config.data.train_limit {
            train = first_shuffled(&train, limit, config.seed);
        }
        if let Some(fraction) = config.data.labels_fraction {
            train = train.stratified_fraction(fraction, config.seed);
        }
        if let Some(limit) = config.data.test_limit {
            test = first_shuffled(&test, limit, config.seed);
        }
        let train = Arc::new(train);
        let memory = match config.eval.memory_limit {
            Some(limit) if limit < train.len() => {
                Arc::new(first_shuffled(&train, limit, config.seed))
            }
            _ => train.clone(),
        };
        let normalize = Normalize::from_dataset(&train);
        Ok(Self {
            name: dataset_name(&dir),
            train,
            test: Arc::new(test),
            memory,
            normalize,
            skipped,
        })
    }

    /// What a config is fitted to.
    pub fn shape(&self) -> DataShape {
        let [channels, height, width] = self.train.shape();
        DataShape {
            channels,
            height,
            width,
            num_classes: self.train.num_classes(),
            memory: self.memory.len(),
        }
    }

    /// The images an evaluation of `config` uses.
    pub fn eval_sets(&self, config: &TrainConfig, progress: Progress) -> EvalSets {
        EvalSets {
            memory: self.memory.clone(),
            test: self.test.clone(),
            normalize: self.normalize.clone(),
            pooling: config.eval.pooling,
            progress,
        }
    }

    /// Checks that `config` (fitted to this data) can train on it: the backbone's input
    /// channels, a ViT's patch grid, the head's classes, the batch and the kNN memory.
    pub fn check(&self, config: &TrainConfig) -> Result<(), TrainError> {
        let backbone = &config.backbone;
        let train = &self.train;
        let error = |field: &str, message: String| {
            Err(TrainError::Config {
                field: field.into(),
                message,
            })
        };
        if backbone.in_channels() != train.channels() {
            return error(
                "backbone.in_channels",
                format!(
                    "{} does not match the dataset's {} channels",
                    backbone.in_channels(),
                    train.channels()
                ),
            );
        }
        if let repr_backbones::BackboneConfig::ViT(vit) = backbone {
            let [_, height, width] = train.shape();
            let p = vit.patch_size;
            if !(height.is_multiple_of(p) && width.is_multiple_of(p)) {
                return error(
                    "backbone.patch_size",
                    format!(
                        "{p} does not divide the dataset's {height}x{width} images (a ViT cuts \
                         them into whole patches)"
                    ),
                );
            }
        }
        let (expected, why) = if config.method.is_embedding() {
            (
                0,
                "an embedding method trains an encoder without a classifier",
            )
        } else {
            (train.num_classes(), "the dataset's number of classes")
        };
        if backbone.num_classes() != expected {
            return error(
                "backbone.num_classes",
                format!(
                    "{} is not allowed: expected {expected} ({why})",
                    backbone.num_classes()
                ),
            );
        }
        Ok(())
    }
}

impl RunData {
    /// Checks that the kNN memory holds `eval.knn_k` images (embedding methods).
    pub fn check_memory(&self, config: &TrainConfig) -> Result<(), TrainError> {
        let error = |field: &str, message: String| {
            Err(TrainError::Config {
                field: field.into(),
                message,
            })
        };
        if config.method.is_embedding() && config.eval.knn_k > self.memory.len() {
            return error(
                "eval.knn_k",
                format!(
                    "{} is not allowed: expected at most the kNN memory's {} images",
                    config.eval.knn_k,
                    self.memory.len()
                ),
            );
        }
        Ok(())
    }
}

/// A seeded random subset of `limit` images (all of them if the set is smaller).
fn first_shuffled(dataset: &ImageDataset, limit: usize, seed: u64) -> ImageDataset {
    let order = repr_data::epoch_permutation(dataset.len(), seed, usize::MAX);
    dataset.subset(&order[..limit.min(dataset.len())])
}

fn dataset_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

//! A prefetching batch loader: a background thread prepares normalised, augmented batches
//! (images in parallel with rayon) while the device trains on the previous one.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::Device;
use rayon::prelude::*;
use repr_augment::{
    ImageDims, RandomCrop, RandomCropConfig, RandomHorizontalFlip, RandomHorizontalFlipConfig,
    image_rng,
};
use repr_data::{
    CpuMultiViewBatch, DeviceMultiViewInputs, ImageBatcher, ImageDataset, MultiViewBatcher,
    Normalize, PkSampler, epoch_permutation,
};

use crate::{AugmentConfig, AugmentOn, Batch, DataNeeds, TrainError};

/// How a [`BatchLoader`] walks a dataset.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
    /// Seeds the epoch's order and each image's augmentation stream.
    pub seed: u64,
    /// Shuffle each epoch (`epoch_permutation(len, seed, epoch)`) or keep the dataset order.
    pub shuffle: bool,
    /// Drop the last incomplete batch (training) or keep it (evaluation).
    pub drop_last: bool,
    /// Random crop applied to each image, if any.
    pub crop: Option<RandomCrop>,
    /// Random horizontal flip applied to each image, if any.
    pub flip: Option<RandomHorizontalFlip>,
    /// Several augmented views per image (self-supervised methods) instead of one copy with
    /// `crop` and `flip`.
    pub views: Option<Arc<MultiViewBatcher>>,
    /// Class-balanced P×K batches (triplet methods) instead of a shuffled order.
    pub sampler: Option<PkSampler>,
    /// Where the views are augmented: on the loader's CPU threads, or as tensor ops on the
    /// training device (the loader thread then only gathers images and samples parameters).
    pub augment_on: AugmentOn,
    /// `(rank, ranks)`: this rank prepares only its contiguous share of every batch (data
    /// parallel); `(0, 1)`: the whole batch.
    pub shard: (usize, usize),
}

impl LoaderConfig {
    /// The training loader of a method that needs `needs`, on `dataset` normalised by
    /// `normalize`: single images augmented by `augment` (shuffled, or in P×K class-balanced
    /// batches), or the method's views (augmented on the CPU or on the device, `augment_on`);
    /// full batches of `batch_size`, `prefetch` ahead, seeded by `seed`.
    #[allow(clippy::too_many_arguments)]
    pub fn for_training(
        needs: &DataNeeds,
        augment: &AugmentConfig,
        augment_on: AugmentOn,
        dataset: &ImageDataset,
        normalize: &Normalize,
        batch_size: usize,
        prefetch: usize,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let [channels, height, width] = dataset.shape();
        let dims = ImageDims {
            channels,
            height,
            width,
        };
        let config_error = |field: &str, message: String| TrainError::Config {
            field: field.to_string(),
            message,
        };
        let single = !matches!(needs, DataNeeds::Views(_));
        let crop = (single && augment.crop_padding > 0)
            .then(|| {
                RandomCropConfig {
                    padding: augment.crop_padding,
                }
                .init(dims)
            })
            .transpose()
            .map_err(|e| config_error("augment.crop_padding", e.to_string()))?;
        let flip = (single && augment.horizontal_flip > 0.0)
            .then(|| {
                RandomHorizontalFlipConfig {
                    probability: augment.horizontal_flip,
                }
                .init(dims)
            })
            .transpose()
            .map_err(|e| config_error("augment.horizontal_flip", e.to_string()))?;
        let mut loader = Self {
            batch_size,
            prefetch,
            seed,
            shuffle: true,
            drop_last: true,
            crop,
            flip,
            views: None,
            sampler: None,
            augment_on,
            shard: (0, 1),
        };
        match needs {
            DataNeeds::Images => {}
            DataNeeds::ClassBalanced {
                classes_per_batch,
                images_per_class,
            } => {
                let sampler = PkSampler::new(
                    dataset.labels(),
                    *classes_per_batch,
                    *images_per_class,
                    seed,
                )
                .map_err(|e| config_error("method.classes_per_batch", e.to_string()))?;
                loader.sampler = Some(sampler);
            }
            DataNeeds::Views(views) => {
                let views = views
                    .init(dims)
                    .map_err(|e| config_error("method.views", e.to_string()))?;
                loader.views = Some(Arc::new(MultiViewBatcher::new(views, normalize.clone())));
            }
        }
        Ok(loader)
    }

    /// Unaugmented, in-order batches for evaluation.
    pub fn evaluation(batch_size: usize) -> Self {
        Self {
            batch_size,
            prefetch: 2,
            seed: 0,
            shuffle: false,
            drop_last: false,
            crop: None,
            flip: None,
            views: None,
            sampler: None,
            augment_on: AugmentOn::Cpu,
            shard: (0, 1),
        }
    }

    /// The loader of rank `rank` of `ranks`: every batch is the same global batch of
    /// `batch_size` images as in one process, of which this rank prepares its contiguous
    /// share (each image augmented from its own stream, so exactly as in one process).
    pub fn sharded(self, rank: usize, ranks: usize) -> Self {
        Self {
            shard: (rank, ranks),
            ..self
        }
    }

    /// The dataset indices of each batch of `epoch`.
    pub fn epoch_batches(&self, len: usize, epoch: usize) -> Vec<Vec<usize>> {
        if let Some(sampler) = &self.sampler {
            return sampler.epoch_batches(epoch as u64);
        }
        let order: Vec<usize> = if self.shuffle {
            epoch_permutation(len, self.seed, epoch)
        } else {
            (0..len).collect()
        };
        let batches = BatchLoader::batches_per_epoch(len, self);
        (0..batches)
            .map(|b| order[b * self.batch_size..((b + 1) * self.batch_size).min(len)].to_vec())
            .collect()
    }
}

/// A batch prepared on the CPU: one copy of each image, or several views.
pub enum Prepared {
    /// Labelled images.
    Single(CpuBatch),
    /// Augmented views.
    Views(CpuMultiViewBatch),
    /// Images and sampled view parameters, augmented when uploaded (`augment_on = "device"`).
    DeviceViews(DeviceMultiViewInputs, Arc<MultiViewBatcher>),
}

impl Prepared {
    /// Images in the batch.
    pub fn len(&self) -> usize {
        match self {
            Prepared::Single(b) => b.dims[0],
            Prepared::Views(b) => b.targets.len(),
            Prepared::DeviceViews(inputs, _) => inputs.targets.len(),
        }
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uploads the batch to `device` (and augments its views there, on the device path).
    pub fn into_device(self, device: &Device) -> Batch {
        match self {
            Prepared::Single(b) => Batch::Labeled(b.into_device(device)),
            Prepared::Views(b) => Batch::Views(b.to_device(device)),
            Prepared::DeviceViews(inputs, batcher) => {
                Batch::Views(batcher.device_augment(inputs, device))
            }
        }
    }
}

/// A batch prepared on the CPU, ready to upload.
pub struct CpuBatch {
    /// Normalised pixels, `[n, c, h, w]` row-major.
    pub images: Vec<f32>,
    /// Class labels, `[n]`.
    pub labels: Vec<usize>,
    /// `[n, c, h, w]`.
    pub dims: [usize; 4],
}

impl CpuBatch {
    /// Uploads the batch to `device`.
    pub fn into_device(self, device: &Device) -> repr_data::ImageBatch {
        let [_, c, h, w] = self.dims;
        ImageBatcher::to_batch(self.images, &self.labels, [c, h, w], device)
    }
}

/// Iterates over the batches of one epoch, prepared on a background thread.
pub struct BatchLoader {
    receiver: Receiver<Prepared>,
    worker: Option<JoinHandle<()>>,
    batches: usize,
}

impl BatchLoader {
    /// Number of batches in an epoch of `len` images.
    pub fn batches_per_epoch(len: usize, config: &LoaderConfig) -> usize {
        if let Some(sampler) = &config.sampler {
            // Every epoch has the same number of P×K batches.
            return sampler.epoch_batches(0).len();
        }
        if config.drop_last {
            len / config.batch_size
        } else {
            len.div_ceil(config.batch_size)
        }
    }

    /// Starts preparing the batches of `epoch` from batch index `start` on.
    pub fn start(
        dataset: Arc<ImageDataset>,
        normalize: Normalize,
        config: LoaderConfig,
        epoch: usize,
        start: usize,
    ) -> Self {
        let batches = Self::batches_per_epoch(dataset.len(), &config);
        let (sender, receiver) = sync_channel(config.prefetch.max(1));
        let worker = std::thread::spawn(move || {
            let plan = config.epoch_batches(dataset.len(), epoch);
            let (rank, ranks) = config.shard;
            for global in plan.iter().skip(start) {
                let indices = crate::distributed::shard(global, rank, ranks);
                let prepared = match &config.views {
                    Some(views) if config.augment_on == AugmentOn::Device => {
                        let inputs =
                            views.device_inputs(&dataset, indices, config.seed, epoch as u64);
                        Prepared::DeviceViews(inputs, views.clone())
                    }
                    Some(views) => Prepared::Views(views.cpu_batch(
                        &dataset,
                        indices,
                        config.seed,
                        epoch as u64,
                    )),
                    None => {
                        Prepared::Single(prepare(&dataset, &normalize, &config, epoch, indices))
                    }
                };
                if sender.send(prepared).is_err() {
                    return; // The consumer stopped early.
                }
            }
        });
        Self {
            receiver,
            worker: Some(worker),
            batches,
        }
    }

    /// Batches in the whole epoch (including any skipped at the start).
    pub fn batches(&self) -> usize {
        self.batches
    }
}

impl Iterator for BatchLoader {
    type Item = Prepared;

    fn next(&mut self) -> Option<Prepared> {
        match self.receiver.recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                // The worker finished or panicked; surface a panic instead of a short epoch.
                if let Some(worker) = self.worker.take()
                    && let Err(panic) = worker.join()
                {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }
}

/// Augments and normalises the images of one batch, in parallel, each with its own RNG stream
/// (so the result does not depend on the number of threads).
fn prepare(
    dataset: &ImageDataset,
    normalize: &Normalize,
    config: &LoaderConfig,
    epoch: usize,
    indices: &[usize],
) -> CpuBatch {
    let [channels, height, width] = dataset.shape();
    let dims = ImageDims {
        channels,
        height,
        width,
    };
    let tables = normalize.tables();
    let mut images = vec![0f32; indices.len() * dims.len()];
    images
        .par_chunks_mut(dims.len())
        .zip(indices.par_iter())
        .for_each_init(
            || vec![0u8; dims.len()],
            |scratch, (out, &index)| {
                let mut rng = image_rng(config.seed, epoch as u64, index as u64);
                let source = dataset.image(index);
                match &config.crop {
                    Some(crop) => crop.apply(source, scratch, &mut rng),
                    None => scratch.copy_from_slice(source),
                }
                if let Some(flip) = &config.flip {
                    flip.apply(scratch, &mut rng);
                }
                Normalize::write_image(&tables, scratch, out);
            },
        );
    let labels = indices.iter().map(|&i| dataset.label(i)).collect();
    CpuBatch {
        images,
        labels,
        dims: [indices.len(), channels, height, width],
    }
}

//! A prefetching batch loader: a background thread prepares normalised, augmented batches
//! (images in parallel with rayon) while the device trains on the previous one.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use burn::tensor::Device;
use rayon::prelude::*;
use repr_augment::{ImageDims, RandomCrop, RandomHorizontalFlip, image_rng};
use repr_data::{ImageBatch, ImageBatcher, ImageDataset, Normalize, epoch_permutation};

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
    pub fn into_device(self, device: &Device) -> ImageBatch {
        let [_, c, h, w] = self.dims;
        ImageBatcher::to_batch(self.images, &self.labels, [c, h, w], device)
    }
}

/// Iterates over the batches of one epoch, prepared on a background thread.
pub struct BatchLoader {
    receiver: Receiver<CpuBatch>,
    worker: Option<JoinHandle<()>>,
    batches: usize,
}

impl BatchLoader {
    /// Number of batches in an epoch of `len` images.
    pub fn batches_per_epoch(len: usize, config: &LoaderConfig) -> usize {
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
            let order: Vec<usize> = if config.shuffle {
                epoch_permutation(dataset.len(), config.seed, epoch)
            } else {
                (0..dataset.len()).collect()
            };
            for batch in start..batches {
                let end = ((batch + 1) * config.batch_size).min(order.len());
                let indices = &order[batch * config.batch_size..end];
                let prepared = prepare(&dataset, &normalize, &config, epoch, indices);
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
    type Item = CpuBatch;

    fn next(&mut self) -> Option<CpuBatch> {
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

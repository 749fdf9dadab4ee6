//! Turning `u8` CHW images into normalised `[N, C, H, W]` float batches.

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{ImageDataset, ImageItem};

/// Per-channel normalisation of pixel values: `(v / 255 - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalize {
    /// The mean of each channel, in `[0, 1]` units.
    pub mean: Vec<f32>,
    /// The standard deviation of each channel, in `[0, 1]` units (non-zero).
    pub std: Vec<f32>,
}

impl Normalize {
    /// Values scaled to `[0, 1]` only (mean 0, std 1) for `channels` channels.
    pub fn identity(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The statistics of `dataset` ([`ImageDataset::channel_mean_std`]); a constant channel
    /// (std 0) keeps std 1 so that no value becomes infinite.
    pub fn from_dataset(dataset: &ImageDataset) -> Self {
        let (mean, std) = dataset.channel_mean_std();
        let std = std
            .into_iter()
            .map(|s| if s > 0.0 { s } else { 1.0 })
            .collect();
        Self { mean, std }
    }

    /// The number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Undoes the normalisation of a batch on its device: `x · std[c] + mean[c]`, the pixel
    /// values in `[0, 1]` units (a `u8` value `v` as `v / 255`, up to float rounding).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: same
    ///
    /// # Panics
    /// If the batch does not have [`channels`](Self::channels) channels.
    pub fn unnormalize(&self, images: Tensor<4>) -> Tensor<4> {
        let channels = images.dims()[1];
        assert_eq!(
            channels,
            self.channels(),
            "Normalize has {} channels, the batch {channels}",
            self.channels()
        );
        let device = images.device();
        let column = |values: &[f32]| {
            Tensor::<4>::from_data(
                TensorData::new(values.to_vec(), [1, channels, 1, 1]),
                &device,
            )
        };
        images * column(&self.std) + column(&self.mean)
    }

    /// The normalised value of every `u8`, per channel: exactly `(v / 255 - mean) / std` in f32.
    /// Build them once per batch and apply them per image with [`Normalize::write_image`].
    pub fn tables(&self) -> Vec<[f32; 256]> {
        assert_eq!(
            self.mean.len(),
            self.std.len(),
            "Normalize has {} means but {} stds",
            self.mean.len(),
            self.std.len()
        );
        self.mean
            .iter()
            .zip(&self.std)
            .map(|(&mean, &std)| std::array::from_fn(|v| (v as f32 / 255.0 - mean) / std))
            .collect()
    }
}

impl Normalize {
    /// Writes the normalised values of one CHW `u8` image into `out` (same length), using the
    /// per-channel `tables` of [`Normalize::tables`].
    ///
    /// # Panics
    /// If the image's length is not a multiple of the channel count or `out` differs in length.
    pub fn write_image(tables: &[[f32; 256]], image: &[u8], out: &mut [f32]) {
        let channels = tables.len();
        assert!(
            channels > 0 && image.len().is_multiple_of(channels) && out.len() == image.len(),
            "image of {} values (output {}) does not split into {channels} channels",
            image.len(),
            out.len()
        );
        let plane = image.len() / channels;
        for ((table, values), out) in tables
            .iter()
            .zip(image.chunks_exact(plane))
            .zip(out.chunks_exact_mut(plane))
        {
            for (o, &v) in out.iter_mut().zip(values) {
                *o = table[v as usize];
            }
        }
    }
}

/// A batch of images and their class indices.
#[derive(Clone, Debug)]
pub struct ImageBatch {
    /// Normalised images, `[N, C, H, W]` float.
    pub images: Tensor<4>,
    /// Class indices, `[N]` int.
    pub targets: Tensor<1, Int>,
}

/// Builds [`ImageBatch`]es, normalising pixel values with [`Normalize`].
///
/// Besides Burn's [`Batcher`] trait, it offers a split fast path for custom loaders: a worker
/// thread calls [`ImageBatcher::normalize_into`], the thread owning the device calls
/// [`ImageBatcher::to_batch`].
///
/// ```
/// use burn::tensor::Device;
/// use repr_data::{ImageBatcher, Normalize};
///
/// let batcher = ImageBatcher::new(Normalize::identity(1));
/// let (a, b) = ([0u8, 255], [51u8, 102]);
/// let batch = batcher.batch_from(&[&a, &b], &[3, 1], [1, 1, 2], &Device::flex());
/// assert_eq!(batch.images.dims(), [2, 1, 1, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct ImageBatcher {
    /// The normalisation applied to every image.
    pub normalize: Normalize,
}

impl ImageBatcher {
    /// A batcher with the given normalisation.
    pub fn new(normalize: Normalize) -> Self {
        Self { normalize }
    }

    /// Writes the normalised values of `images` (each CHW `u8` with `self.normalize.channels()`
    /// channels) one after another into `out`, replacing its contents.
    ///
    /// # Panics
    /// If an image's length is not a multiple of the channel count.
    pub fn normalize_into(&self, images: &[&[u8]], out: &mut Vec<f32>) {
        let tables = self.normalize.tables();
        out.clear();
        out.resize(images.iter().map(|im| im.len()).sum(), 0.0);
        let mut start = 0;
        for image in images {
            let end = start + image.len();
            Normalize::write_image(&tables, image, &mut out[start..end]);
            start = end;
        }
    }

    /// Moves prepared values (`labels.len()` images of `shape = [c, h, w]`) to `device`.
    ///
    /// # Panics
    /// If `floats.len() != labels.len() * c * h * w`.
    pub fn to_batch(
        floats: Vec<f32>,
        labels: &[usize],
        shape: [usize; 3],
        device: &Device,
    ) -> ImageBatch {
        let [c, h, w] = shape;
        let n = labels.len();
        assert_eq!(
            floats.len(),
            n * c * h * w,
            "{} values for {n} images of shape {shape:?}",
            floats.len()
        );
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(floats, [n, c, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), device),
        }
    }

    /// Normalises `images` (CHW `u8`, each of `shape`) and builds their batch on `device`.
    ///
    /// # Panics
    /// As [`ImageBatcher::normalize_into`] and [`ImageBatcher::to_batch`].
    pub fn batch_from(
        &self,
        images: &[&[u8]],
        labels: &[usize],
        shape: [usize; 3],
        device: &Device,
    ) -> ImageBatch {
        let mut floats = Vec::new();
        self.normalize_into(images, &mut floats);
        Self::to_batch(floats, labels, shape, device)
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    /// # Panics
    /// If `items` is empty or its images differ in shape.
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let shape = items.first().expect("cannot batch zero items").shape;
        assert!(
            items.iter().all(|item| item.shape == shape),
            "items of different shapes in one batch"
        );
        let images: Vec<&[u8]> = items.iter().map(|item| item.pixels.as_slice()).collect();
        let labels: Vec<usize> = items.iter().map(|item| item.label).collect();
        self.batch_from(&images, &labels, shape, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEAN: [f32; 2] = [0.5, 0.25];
    const STD: [f32; 2] = [0.5, 0.2];

    fn batcher() -> ImageBatcher {
        ImageBatcher::new(Normalize {
            mean: MEAN.to_vec(),
            std: STD.to_vec(),
        })
    }

    /// Two 2x1x2 images, CHW.
    const IMAGES: [[u8; 4]; 2] = [[0, 255, 51, 102], [128, 1, 254, 77]];

    fn expected() -> Vec<f64> {
        IMAGES
            .iter()
            .flat_map(|im| {
                im.iter().enumerate().map(|(i, &v)| {
                    let c = i / 2;
                    (v as f64 / 255.0 - MEAN[c] as f64) / STD[c] as f64
                })
            })
            .collect()
    }

    fn check(batch: ImageBatch, labels: &[i64]) {
        assert_eq!(batch.images.dims(), [2, 2, 1, 2]);
        let values: Vec<f32> = batch.images.into_data().iter::<f32>().collect();
        for (i, (got, want)) in values.iter().zip(expected()).enumerate() {
            assert!(
                (*got as f64 - want).abs() < 1e-6,
                "value {i}: {got} vs {want}"
            );
        }
        let targets: Vec<i64> = batch.targets.into_data().iter::<i64>().collect();
        assert_eq!(targets, labels);
    }

    fn batch_from_normalises(device: &Device) {
        let images: Vec<&[u8]> = IMAGES.iter().map(|im| im.as_slice()).collect();
        check(
            batcher().batch_from(&images, &[7, 2], [2, 1, 2], device),
            &[7, 2],
        );
    }

    fn batcher_trait_normalises(device: &Device) {
        let items = IMAGES
            .iter()
            .zip([4, 0])
            .map(|(im, label)| ImageItem {
                pixels: im.to_vec(),
                shape: [2, 1, 2],
                label,
            })
            .collect();
        check(batcher().batch(items, device), &[4, 0]);
    }

    fn unnormalize_gives_back_the_u8_values(device: &Device) {
        let images: Vec<&[u8]> = IMAGES.iter().map(|im| im.as_slice()).collect();
        let batch = batcher().batch_from(&images, &[0, 0], [2, 1, 2], device);
        let raw = batcher().normalize.unnormalize(batch.images);
        assert_eq!(raw.dims(), [2, 2, 1, 2]);
        let values: Vec<f32> = raw.into_data().iter::<f32>().collect();
        let want: Vec<u8> = IMAGES.iter().flatten().copied().collect();
        for (i, (got, want)) in values.iter().zip(want).enumerate() {
            assert!(
                (got * 255.0 - want as f32).abs() < 1e-3,
                "value {i}: {got} * 255 vs {want}"
            );
        }
    }

    repr_testing::backend_tests!(
        batch_from_normalises,
        batcher_trait_normalises,
        unnormalize_gives_back_the_u8_values
    );

    #[test]
    fn normalize_into_reuses_the_buffer() {
        let mut out = vec![9.0; 100];
        batcher().normalize_into(&[&IMAGES[0]], &mut out);
        assert_eq!(out.len(), 4);
        assert!((out[1] - 1.0).abs() < 1e-6 && (out[2] - (0.2 - 0.25) / 0.2).abs() < 1e-6);
    }

    #[test]
    fn from_dataset_guards_constant_channels() {
        let ds = ImageDataset::new(vec![7, 7], vec![0, 0], [1, 1, 1], vec!["a".into()]).unwrap();
        let n = Normalize::from_dataset(&ds);
        assert!((n.mean[0] - 7.0 / 255.0).abs() < 1e-6);
        assert_eq!(n.std, vec![1.0]);
    }
}

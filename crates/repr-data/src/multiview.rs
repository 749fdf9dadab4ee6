//! Multi-view batches for self-supervised learning: each image of a batch augmented by every
//! view pipeline of a [`MultiView`], on the CPU or on the device, then normalised.

use burn::tensor::{Device, Int, Tensor, TensorData};
use repr_augment::device::PixelFormat;
use repr_augment::{AugmentError, ComposeParams, ImageDims, MultiView};

use crate::{ImageDataset, Normalize};

/// Builds [`MultiViewBatch`]es: a [`MultiView`] (the view pipelines) and the dataset's
/// [`Normalize`] tables.
///
/// Two paths with one meaning, both seeded per image by `(seed, epoch, dataset index)`:
/// - CPU ([`MultiViewBatcher::cpu_batch`]): augments and normalises on rayon's threads without
///   a `Device` (call it from a prefetch thread), then [`CpuMultiViewBatch::to_device`] uploads.
/// - Device ([`MultiViewBatcher::device_inputs`] on the CPU, then
///   [`MultiViewBatcher::device_augment`]): uploads the `u8` images and the sampled parameters
///   and augments on the device, for runs where the CPU would be the bottleneck.
///
/// ```
/// use burn::tensor::Device;
/// use repr_augment::{ImageDims, MultiViewConfig};
/// use repr_data::{ImageDataset, MultiViewBatcher, Normalize};
///
/// let ds = ImageDataset::new(vec![7; 3 * 28 * 28], vec![0, 1, 1], [1, 28, 28], vec!["a".into(), "b".into()])?;
/// let views = MultiViewConfig::simclr_grayscale(28).init(ImageDims::from_shape(ds.shape()))?;
/// let batcher = MultiViewBatcher::new(views, Normalize::identity(1));
/// let batch = batcher.cpu_batch(&ds, &[2, 0], 42, 0).to_device(&Device::flex());
/// assert_eq!(batch.views.len(), 2);
/// assert_eq!(batch.views[0].dims(), [2, 1, 28, 28]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MultiViewBatcher {
    views: MultiView,
    normalize: Normalize,
    tables: Vec<[f32; 256]>,
}

/// A multi-view batch prepared on the CPU, ready to upload.
#[derive(Clone, Debug)]
pub struct CpuMultiViewBatch {
    /// One normalised `[n * c * h * w]` buffer per view (images one after another, CHW).
    pub views: Vec<Vec<f32>>,
    /// `[c, h, w]` of every view.
    pub shape: [usize; 3],
    /// The label of each image.
    pub targets: Vec<i64>,
}

/// Several augmented views of the same images.
#[derive(Clone, Debug)]
pub struct MultiViewBatch {
    /// `views[v]`: the v-th view of every image, normalised, `[N, C, H, W]`.
    pub views: Vec<Tensor<4>>,
    /// The label of each image, `[N]`.
    pub targets: Tensor<1, Int>,
}

/// The CPU part of the device path: the raw images and every view's sampled parameters.
#[derive(Clone, Debug)]
pub struct DeviceMultiViewInputs {
    /// The `u8` images, `[n, c, h, w]` row-major.
    pub pixels: Vec<u8>,
    /// `[image][view]` parameters, drawn as the CPU path draws them.
    pub params: Vec<Vec<ComposeParams>>,
    /// The label of each image.
    pub targets: Vec<i64>,
}

impl MultiViewBatcher {
    /// A batcher for `views` followed by `normalize`.
    ///
    /// # Panics
    /// As [`MultiViewBatcher::try_new`] would fail; use that for configurations read from files.
    pub fn new(views: MultiView, normalize: Normalize) -> Self {
        Self::try_new(views, normalize)
            .unwrap_or_else(|e| panic!("invalid multi-view batcher: {e}"))
    }

    /// A batcher for `views` followed by `normalize`.
    ///
    /// # Errors
    /// If the views do not all give one shape, or `normalize` has another channel count.
    pub fn try_new(views: MultiView, normalize: Normalize) -> Result<Self, AugmentError> {
        let first = views.view_dims(0);
        if let Some(v) = (1..views.num_views()).find(|&v| views.view_dims(v) != first) {
            return Err(AugmentError::ViewShapes {
                view: v,
                first,
                other: views.view_dims(v),
            });
        }
        for (field, len) in [
            ("normalize.mean", normalize.mean.len()),
            ("normalize.std", normalize.std.len()),
        ] {
            if len != first.channels {
                return Err(AugmentError::LengthMismatch {
                    field,
                    expected: first.channels,
                    actual: len,
                });
            }
        }
        let tables = normalize.tables();
        Ok(Self {
            views,
            normalize,
            tables,
        })
    }

    /// The view pipelines.
    pub fn views(&self) -> &MultiView {
        &self.views
    }

    /// The normalisation.
    pub fn normalize(&self) -> &Normalize {
        &self.normalize
    }

    /// The number of views per image.
    pub fn num_views(&self) -> usize {
        self.views.num_views()
    }

    /// `[c, h, w]` of every view.
    pub fn view_shape(&self) -> [usize; 3] {
        self.views.view_dims(0).shape()
    }

    fn check(&self, dataset: &ImageDataset, indices: &[usize]) {
        assert_eq!(
            ImageDims::from_shape(dataset.shape()),
            self.views.input_dims(),
            "the dataset's images do not have the shape the views were built for"
        );
        if let Some(&i) = indices.iter().find(|&&i| i >= dataset.len()) {
            panic!(
                "index {i} out of range for a dataset of {} images",
                dataset.len()
            );
        }
    }

    /// CPU path: augments and normalises the images at `indices` (dataset indices; they seed
    /// the random streams) on rayon's threads. Needs no `Device`.
    ///
    /// # Panics
    /// If the dataset's shape is not the views' input shape or an index is out of range (both
    /// checked before any image is augmented).
    pub fn cpu_batch(
        &self,
        dataset: &ImageDataset,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> CpuMultiViewBatch {
        self.check(dataset, indices);
        let images: Vec<&[u8]> = indices.iter().map(|&i| dataset.image(i)).collect();
        let keys: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
        let views = self
            .views
            .augment_batch_with(&images, &keys, seed, epoch, |_, view, out: &mut [f32]| {
                Normalize::write_image(&self.tables, view, out)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        CpuMultiViewBatch {
            views,
            shape: self.view_shape(),
            targets: indices.iter().map(|&i| dataset.label(i) as i64).collect(),
        }
    }

    /// Device path, CPU part: gathers the `u8` images at `indices` and samples every view's
    /// parameters from the same streams as [`MultiViewBatcher::cpu_batch`]. Needs no `Device`.
    ///
    /// # Panics
    /// As [`MultiViewBatcher::cpu_batch`].
    pub fn device_inputs(
        &self,
        dataset: &ImageDataset,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> DeviceMultiViewInputs {
        self.check(dataset, indices);
        let mut pixels = Vec::with_capacity(indices.len() * self.views.input_dims().len());
        for &i in indices {
            pixels.extend_from_slice(dataset.image(i));
        }
        let keys: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
        DeviceMultiViewInputs {
            pixels,
            params: self.views.sample_batch(&keys, seed, epoch),
            targets: indices.iter().map(|&i| dataset.label(i) as i64).collect(),
        }
    }

    /// Device path, device part: uploads the images, applies every view as batched tensor ops
    /// and normalises on `device`.
    ///
    /// # Panics
    /// If `inputs` was not made by [`MultiViewBatcher::device_inputs`] of a batcher with the same
    /// views.
    pub fn device_augment(&self, inputs: DeviceMultiViewInputs, device: &Device) -> MultiViewBatch {
        let dims = self.views.input_dims();
        let n = inputs.targets.len();
        let values: Vec<f32> = inputs.pixels.iter().map(|&v| v as f32).collect();
        let x = Tensor::<4>::from_data(
            TensorData::new(values, [n, dims.channels, dims.height, dims.width]),
            device,
        );
        let views = self
            .views
            .apply_device(x, &inputs.params, PixelFormat::U8)
            .unwrap_or_else(|e| panic!("{e}"));
        let c = dims.channels;
        let mean =
            Tensor::<1>::from_data(TensorData::new(self.normalize.mean.clone(), [c]), device)
                .reshape([1, c, 1, 1]);
        let std = Tensor::<1>::from_data(TensorData::new(self.normalize.std.clone(), [c]), device)
            .reshape([1, c, 1, 1]);
        // The same f32 operations as `Normalize::tables`: (v / 255 - mean) / std.
        let views = views
            .into_iter()
            .map(|v| (v.div_scalar(255.0f32) - mean.clone()) / std.clone())
            .collect();
        MultiViewBatch {
            views,
            targets: Tensor::from_data(TensorData::new(inputs.targets, [n]), device),
        }
    }

    /// Both parts of the device path at once.
    pub fn device_batch(
        &self,
        dataset: &ImageDataset,
        indices: &[usize],
        seed: u64,
        epoch: u64,
        device: &Device,
    ) -> MultiViewBatch {
        let inputs = self.device_inputs(dataset, indices, seed, epoch);
        self.device_augment(inputs, device)
    }
}

impl CpuMultiViewBatch {
    /// Uploads the views and labels to `device`.
    pub fn to_device(self, device: &Device) -> MultiViewBatch {
        let [c, h, w] = self.shape;
        let n = self.targets.len();
        let views = self
            .views
            .into_iter()
            .map(|v| Tensor::from_data(TensorData::new(v, [n, c, h, w]), device))
            .collect();
        MultiViewBatch {
            views,
            targets: Tensor::from_data(TensorData::new(self.targets, [n]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadOptions, Split, fashion_mnist_dir, load};
    use repr_augment::MultiViewConfig;

    fn setup() -> (ImageDataset, MultiViewBatcher) {
        let test = load(&fashion_mnist_dir(), Split::Test, &LoadOptions::default()).unwrap();
        let ds = test.subset(&(0..32).collect::<Vec<_>>());
        let dims = ImageDims::from_shape(ds.shape());
        let views = MultiViewConfig::simclr_grayscale(28).init(dims).unwrap();
        let batcher = MultiViewBatcher::new(views, Normalize::from_dataset(&test));
        (ds, batcher)
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    fn cpu_and_device_batches_agree(device: &Device) {
        let (ds, batcher) = setup();
        let indices = [3, 17, 0, 31, 8, 8];
        let cpu = batcher.cpu_batch(&ds, &indices, 5, 1).to_device(device);
        let dev = batcher.device_batch(&ds, &indices, 5, 1, device);
        let targets: Vec<i64> = dev.targets.into_data().iter::<i64>().collect();
        let expected: Vec<i64> = indices.iter().map(|&i| ds.label(i) as i64).collect();
        assert_eq!(targets, expected);
        assert_eq!(cpu.views.len(), 2);
        // One u8 level is 1 / (255 std) after normalisation.
        let level = 1.0 / (255.0 * batcher.normalize().std[0]);
        for (c, d) in cpu.views.into_iter().zip(dev.views) {
            assert_eq!(c.dims(), [6, 1, 28, 28]);
            let (c, d) = (values(c), values(d));
            let differing = c
                .iter()
                .zip(&d)
                .filter(|(a, b)| (*a - *b).abs() > 1e-5)
                .count();
            let max = c
                .iter()
                .zip(&d)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                max <= 1.01 * level && differing * 100 <= c.len(),
                "{differing} of {} values differ, max {max} (one level: {level})",
                c.len()
            );
        }
    }

    repr_testing::backend_tests!(cpu_and_device_batches_agree);

    #[test]
    fn cpu_batches_repeat_under_a_seed_and_index_streams() {
        let (ds, batcher) = setup();
        assert_eq!(
            (batcher.num_views(), batcher.view_shape()),
            (2, [1, 28, 28])
        );
        let a = batcher.cpu_batch(&ds, &[1, 2, 3], 9, 0);
        let b = batcher.cpu_batch(&ds, &[1, 2, 3], 9, 0);
        assert_eq!(a.views, b.views);
        assert_eq!(a.shape, [1, 28, 28]);
        assert_eq!(a.views[0].len(), 3 * 28 * 28);
        // An image's views depend on its dataset index, not its position in the batch.
        let c = batcher.cpu_batch(&ds, &[3, 1], 9, 0);
        assert_eq!(c.views[1][..784], a.views[1][2 * 784..]);
        let next_epoch = batcher.cpu_batch(&ds, &[1, 2, 3], 9, 1);
        assert_ne!(next_epoch.views, a.views);
    }

    #[test]
    fn mismatched_normalisation_is_an_error() {
        let (ds, _) = setup();
        let views = MultiViewConfig::simclr_grayscale(28)
            .init(ImageDims::from_shape(ds.shape()))
            .unwrap();
        let err = MultiViewBatcher::try_new(views, Normalize::identity(3)).unwrap_err();
        assert!(err.to_string().contains("normalize.mean"), "{err}");
    }
}

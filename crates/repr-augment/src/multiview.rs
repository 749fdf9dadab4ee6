//! Several pipelines applied to one image (SimCLR's two views, BYOL's asymmetric pair), and
//! the CPU batch path: images in parallel with rayon, each with its own random stream.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, Compose, ComposeConfig, ComposeParams, ImageDims, Scratch, image_rng};

/// Configuration of [`MultiView`]: one pipeline per view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiViewConfig {
    /// The pipeline of each view.
    pub views: Vec<ComposeConfig>,
}

impl MultiViewConfig {
    /// Checks every field that does not depend on the images (ranges, probabilities, kernel
    /// parity, at least one view); [`MultiViewConfig::init`] also checks the sizes.
    pub fn validate(&self) -> Result<(), AugmentError> {
        // Any image large enough for every size-dependent check to pass.
        let big = ImageDims {
            channels: 3,
            height: 1 << 16,
            width: 1 << 16,
        };
        self.init(big).map(|_| ())
    }

    /// Builds every view's pipeline for input images of `dims`; there must be at least one view.
    pub fn init(&self, dims: ImageDims) -> Result<MultiView, AugmentError> {
        dims.validate()?;
        if self.views.is_empty() {
            return Err(AugmentError::LengthMismatch {
                field: "multi_view.views",
                expected: 1,
                actual: 0,
            });
        }
        let views = self
            .views
            .iter()
            .map(|v| v.init(dims))
            .collect::<Result<_, _>>()?;
        Ok(MultiView { views, input: dims })
    }
}

/// A list of view pipelines applied to one image, giving one view each.
///
/// Randomness: the parameters of image `index` are drawn from `image_rng(seed, epoch, index)`,
/// view after view, so a batch is the same whatever the number of threads, and the CPU and
/// device paths see the same parameters.
///
/// ```
/// use repr_augment::{ImageDims, MultiViewConfig};
///
/// let dims = ImageDims { channels: 1, height: 28, width: 28 };
/// let views = MultiViewConfig::simclr_grayscale(28).init(dims)?;
/// let images: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i * 60; dims.len()]).collect();
/// let refs: Vec<&[u8]> = images.iter().map(|v| v.as_slice()).collect();
/// let batch = views.augment_batch(&refs, &[0, 1, 2, 3], 42, 0)?;
/// assert_eq!((batch.len(), batch[0].len()), (2, 4 * 28 * 28));
/// # Ok::<(), repr_augment::AugmentError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MultiView {
    views: Vec<Compose>,
    input: ImageDims,
}

impl MultiView {
    /// The view pipelines.
    pub fn views(&self) -> &[Compose] {
        &self.views
    }

    /// The number of views.
    pub fn num_views(&self) -> usize {
        self.views.len()
    }

    /// Dimensions of the input images.
    pub fn input_dims(&self) -> ImageDims {
        self.input
    }

    /// Output dimensions of view `v`.
    ///
    /// # Panics
    /// If `v >= self.num_views()`.
    pub fn view_dims(&self, v: usize) -> ImageDims {
        self.views[v].output_dims()
    }

    /// Draws the parameters of every view for one image.
    pub fn sample(&self, rng: &mut impl Rng) -> Vec<ComposeParams> {
        self.views.iter().map(|v| v.sample(rng)).collect()
    }

    /// The parameters of every view for the image `index` of `epoch` (its own stream).
    pub fn sample_image(&self, seed: u64, epoch: u64, index: u64) -> Vec<ComposeParams> {
        self.sample(&mut image_rng(seed, epoch, index))
    }

    /// The parameters of every image of a batch: `[image][view]`.
    pub fn sample_batch(&self, indices: &[u64], seed: u64, epoch: u64) -> Vec<Vec<ComposeParams>> {
        indices
            .iter()
            .map(|&i| self.sample_image(seed, epoch, i))
            .collect()
    }

    /// Checks that every image has the input's length and that there is one index per image.
    pub fn check_batch(&self, images: &[&[u8]], indices: &[u64]) -> Result<(), AugmentError> {
        if images.len() != indices.len() {
            return Err(AugmentError::LengthMismatch {
                field: "indices",
                expected: images.len(),
                actual: indices.len(),
            });
        }
        let expected = self.input.len();
        match images.iter().position(|im| im.len() != expected) {
            Some(index) => Err(AugmentError::ImageLength {
                index,
                expected,
                actual: images[index].len(),
                dims: self.input,
            }),
            None => Ok(()),
        }
    }

    /// Augments a batch on the CPU (in rayon's current thread pool): returns one buffer per
    /// view holding the `u8` views of all images one after another (`[n, c, h, w]`).
    /// `indices[i]` (the dataset index) seeds image `i`'s stream.
    pub fn augment_batch(
        &self,
        images: &[&[u8]],
        indices: &[u64],
        seed: u64,
        epoch: u64,
    ) -> Result<Vec<Vec<u8>>, AugmentError> {
        self.augment_batch_with(images, indices, seed, epoch, |_, view, out: &mut [u8]| {
            out.copy_from_slice(view)
        })
    }

    /// As [`MultiView::augment_batch`], converting each augmented view with `write(view_index,
    /// view_u8, out)` straight into the batch buffer (for example normalising into `f32`), so no
    /// intermediate batch is allocated.
    pub fn augment_batch_with<T, F>(
        &self,
        images: &[&[u8]],
        indices: &[u64],
        seed: u64,
        epoch: u64,
        write: F,
    ) -> Result<Vec<Vec<T>>, AugmentError>
    where
        T: Copy + Default + Send,
        F: Fn(usize, &[u8], &mut [T]) + Sync,
    {
        self.check_batch(images, indices)?;
        let n = images.len();
        let mut outputs: Vec<Vec<T>> = self
            .views
            .iter()
            .map(|v| vec![T::default(); n * v.output_dims().len()])
            .collect();
        let mut per_image: Vec<Vec<&mut [T]>> = (0..n)
            .map(|_| Vec::with_capacity(self.views.len()))
            .collect();
        for (out, view) in outputs.iter_mut().zip(&self.views) {
            for (slots, chunk) in per_image
                .iter_mut()
                .zip(out.chunks_mut(view.output_dims().len()))
            {
                slots.push(chunk);
            }
        }
        per_image.into_par_iter().enumerate().for_each_init(
            Scratch::default,
            |scratch, (i, mut slots)| {
                let mut rng = image_rng(seed, epoch, indices[i]);
                for (v, (view, slot)) in self.views.iter().zip(slots.iter_mut()).enumerate() {
                    let params = view.sample(&mut rng);
                    let out = view.apply(&params, images[i], scratch);
                    write(v, out, slot);
                }
            },
        );
        Ok(outputs)
    }
}

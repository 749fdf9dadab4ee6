//! An in-memory labelled image dataset (u8, CHW) and its Burn `Dataset` implementation.

use std::path::Path;

use burn::data::dataset::{Dataset, DatasetError};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::DataError;

/// One image and its label, as handed to a Burn `DataLoader`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageItem {
    /// The pixels, `u8` in CHW layout (`channels * height * width` values).
    pub pixels: Vec<u8>,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// The class index.
    pub label: usize,
}

/// Labelled images held in memory as `u8` in CHW layout, all of one shape.
///
/// ```
/// use repr_data::ImageDataset;
///
/// // Two 1x1x2 images of classes 1 and 0.
/// let ds = ImageDataset::new(vec![0, 255, 10, 20], vec![1, 0], [1, 1, 2], vec!["a".into(), "b".into()])?;
/// assert_eq!(ds.image(1), &[10, 20]);
/// assert_eq!(ds.label(0), 1);
/// # Ok::<(), repr_data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ImageDataset {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    shape: [usize; 3],
    class_names: Vec<String>,
}

impl ImageDataset {
    /// Builds a dataset from `pixels` (`labels.len()` images of `shape = [c, h, w]`, CHW, one after
    /// another), `labels` and one name per class.
    ///
    /// # Errors
    /// [`DataError::InvalidDataset`] when a dimension is zero, `pixels` has the wrong length or a
    /// label is not below `class_names.len()`.
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
                "{} pixel values for {} images of shape {shape:?}",
                pixels.len(),
                labels.len()
            ));
        }
        if let Some((i, label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= class_names.len())
        {
            return invalid(format!(
                "label {label} of image {i} is out of range for {} classes",
                class_names.len()
            ));
        }
        Ok(Self {
            pixels,
            labels,
            shape,
            class_names,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[channels, height, width]` of every image.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The number of channels (1 or 3).
    pub fn channels(&self) -> usize {
        self.shape[0]
    }

    /// The image height in pixels.
    pub fn height(&self) -> usize {
        self.shape[1]
    }

    /// The image width in pixels.
    pub fn width(&self) -> usize {
        self.shape[2]
    }

    /// The pixels of image `index`, CHW.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.shape.iter().product::<usize>();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// The pixels of all images, `[n, c, h, w]` row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The label of image `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn label(&self, index: usize) -> usize {
        self.labels[index] as usize
    }

    /// All labels, in image order.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The number of classes (some may have no image in this split).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The class names, indexed by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// The images at `indices`, in that order (repeats allowed), with the same classes.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> ImageDataset {
        let mut pixels = Vec::with_capacity(indices.len() * self.shape.iter().product::<usize>());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageDataset {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            shape: self.shape,
            class_names: self.class_names.clone(),
        }
    }

    /// Keeps `fraction` of the images of each class (rounded, at least one per non-empty class),
    /// chosen at random but deterministically from `seed`; kept images stay in their original
    /// order. A `fraction` outside `[0, 1]` is clamped (NaN counts as 0).
    pub fn stratified_fraction(&self, fraction: f64, seed: u64) -> ImageDataset {
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let mut by_class = vec![Vec::new(); self.num_classes()];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[l as usize].push(i);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keep = Vec::new();
        for indices in by_class.iter_mut().filter(|v| !v.is_empty()) {
            let n = indices.len();
            let k = ((fraction * n as f64).round() as usize).clamp(1, n);
            indices.shuffle(&mut rng);
            keep.extend_from_slice(&indices[..k]);
        }
        keep.sort_unstable();
        self.subset(&keep)
    }

    /// Per-channel mean and (population) standard deviation of the pixel values in `[0, 1]`
    /// units, e.g. to build a [`crate::Normalize`]. An empty dataset gives means 0 and stds 1.
    pub fn channel_mean_std(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.channels();
        if self.is_empty() {
            return (vec![0.0; c], vec![1.0; c]);
        }
        let plane = self.height() * self.width();
        // Exact integer sums: 255² · 2⁴⁰ pixels still fits a u64.
        let mut sums = vec![(0u64, 0u64); c];
        for image in self.pixels.chunks_exact(c * plane) {
            for (channel, values) in image.chunks_exact(plane).enumerate() {
                let (s, s2) = values.iter().fold((0u64, 0u64), |(s, s2), &v| {
                    (s + v as u64, s2 + (v as u64) * (v as u64))
                });
                sums[channel].0 += s;
                sums[channel].1 += s2;
            }
        }
        let count = (self.len() * plane) as f64;
        sums.iter()
            .map(|&(s, s2)| {
                let mean = s as f64 / count;
                let var = (s2 as f64 / count - mean * mean).max(0.0);
                ((mean / 255.0) as f32, (var.sqrt() / 255.0) as f32)
            })
            .unzip()
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        Ok(ImageItem {
            pixels: self.image(index).to_vec(),
            shape: self.shape,
            label: self.label(index),
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Checks that every label read from `path` is below `num_classes`.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `per_class` (< 86) images per class, 3 classes, 2x1x1 images whose pixels encode the index.
    fn toy(per_class: usize) -> ImageDataset {
        let n = 3 * per_class;
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        let pixels: Vec<u8> = (0..n).flat_map(|i| [i as u8, 255 - i as u8]).collect();
        let names = vec!["a".into(), "b".into(), "c".into()];
        ImageDataset::new(pixels, labels, [2, 1, 1], names).unwrap()
    }

    #[test]
    fn new_rejects_inconsistent_parts() {
        let names = || vec!["a".to_string()];
        assert!(ImageDataset::new(vec![0; 3], vec![0, 0], [1, 1, 2], names()).is_err());
        assert!(ImageDataset::new(vec![0; 4], vec![0, 1], [1, 1, 2], names()).is_err());
        assert!(ImageDataset::new(vec![], vec![], [0, 1, 2], names()).is_err());
        assert!(ImageDataset::new(vec![0; 4], vec![0, 0], [1, 1, 2], names()).is_ok());
    }

    #[test]
    fn subset_copies_images_and_labels() {
        let ds = toy(2);
        let sub = ds.subset(&[4, 1, 4]);
        assert_eq!(sub.len(), 3);
        assert_eq!(sub.image(0), &[4, 251]);
        assert_eq!(sub.image(1), &[1, 254]);
        assert_eq!(sub.labels(), &[1, 1, 1]);
        assert_eq!(sub.class_names(), ds.class_names());
    }

    #[test]
    fn stratified_fraction_keeps_class_balance() {
        let ds = toy(80);
        let sub = ds.stratified_fraction(0.1, 7);
        assert_eq!(sub.class_counts(), vec![8, 8, 8]);
        // Deterministic by seed, different across seeds.
        assert_eq!(sub, ds.stratified_fraction(0.1, 7));
        assert_ne!(sub, ds.stratified_fraction(0.1, 8));
        // Every kept image is an original one with its own label (pixel 0 encodes the index).
        for i in 0..sub.len() {
            assert_eq!(sub.label(i), sub.image(i)[0] as usize % 3);
        }
        // At least one per class; fraction 1 keeps everything.
        assert_eq!(ds.stratified_fraction(0.0, 1).class_counts(), vec![1, 1, 1]);
        assert_eq!(ds.stratified_fraction(1.0, 1), ds);
    }

    #[test]
    fn channel_mean_std_matches_a_direct_computation() {
        // Channel 0: 0, 255 -> mean 0.5, std 0.5. Channel 1: 51, 51 -> mean 0.2, std 0.
        let ds = ImageDataset::new(
            vec![0, 51, 255, 51],
            vec![0, 0],
            [2, 1, 1],
            vec!["a".into()],
        )
        .unwrap();
        let (mean, std) = ds.channel_mean_std();
        assert!((mean[0] - 0.5).abs() < 1e-6 && (std[0] - 0.5).abs() < 1e-6);
        assert!((mean[1] - 0.2).abs() < 1e-6 && std[1].abs() < 1e-6);
    }

    #[test]
    fn dataset_trait_yields_items() {
        let ds = toy(1);
        let item = Dataset::get(&ds, 2).unwrap();
        assert_eq!(
            item,
            ImageItem {
                pixels: vec![2, 253],
                shape: [2, 1, 1],
                label: 2
            }
        );
        assert_eq!(Dataset::len(&ds), 3);
    }
}

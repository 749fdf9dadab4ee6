//! Masked-patch prediction, the self-supervised objective of the Vision Transformer paper
//! (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words", appendix B.1.2): corrupt half of
//! the patch embeddings (80% replaced by a learned mask token, 10% by another patch of the
//! image, 10% kept) and predict, for the corrupted patches only, a target computed from the
//! original pixels.
//!
//! This file holds the configuration and the targets; the corruption plan, the prediction head
//! and the loss are in `masked_patch_plan.rs`.
//!
//! Patches are `p×p`, row-major over the grid (patch `k` covers rows `p·(k / gw)..` and columns
//! `p·(k % gw)..`, with `gw = width / p`), the order of the ViT tokens.
//!
//! # Colour classes
//! A channel's 3-bit bin is `floor(mean / 32)` of its u8 values (`0..=7`), computed exactly in
//! integers as `sum / (32·n)` over the `n` pixels averaged. Images given in `[0, 1]` (the u8
//! value over 255) are first rounded back to `round(v·255)`: binning the `[0, 1]` mean as
//! `floor(mean₀₁·8)` would be another partition (a u8 mean of 31.9 is bin 0, but
//! `31.9·8/255 = 1.0008` gives bin 1), and `floor(mean₀₁·255/32)` in f32 can round across a
//! boundary (a mean of exactly 64 is the boundary of bins 1 and 2). A colour class
//! reads the bins as a base-8 number, first channel most significant (`r·64 + g·8 + b`), so there
//! are `8^channels` classes: 512 for RGB and **8 for one channel** (Fashion-MNIST): there the
//! "colour" is the 3-bit grey level of the patch (or cell) mean.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::ObjectiveError;

/// What the network predicts for a corrupted patch (the paper's three options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskedPatchTarget {
    /// The patch's mean colour at 3 bits per channel: one of `8^channels` classes (512 for
    /// RGB, 8 grey levels for one channel).
    MeanColor,
    /// The patch downsized to `cells × cells` (each cell the mean of a `p/cells` square), each
    /// cell a 3-bit colour class (the paper: 4×4 for 16-pixel patches; 2×2 for 4-pixel ones).
    DownsizedColor {
        /// Cells per side; must divide the patch size.
        cells: usize,
    },
    /// The full patch in `[0, 1]`, regressed with L2; values in (row, column, channel) order.
    Pixels,
}

/// The corruption and target of masked-patch prediction (Dosovitskiy et al. 2020, B.1.2).
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use repr_objectives::MaskedPatchConfig;
///
/// let device = Device::flex().autodiff();
/// let config = MaskedPatchConfig::default(); // patch 4, 50% corrupted, mean colour
/// config.validate()?;
/// // Two 8x8 grey images (v/255 of u8 values): 4 patches each, 8 grey-level classes.
/// let images = Tensor::<4>::random([2, 1, 8, 8], Distribution::Uniform(0.0, 1.0), &device)
///     .mul_scalar(255.0).round().div_scalar(255.0);
/// let targets = config.target_tensors(images);
/// let plan = config.plan(2, 4, 7);
/// assert_eq!(plan.corrupted().len(), 4); // round(0.5 * 4) per image
/// // Patch embeddings (from the ViT's patch_embed), corrupted, then the encoder (here: none).
/// let tokens = Tensor::<3>::random([2, 4, 16], Distribution::Normal(0.0, 1.0), &device);
/// let encoded = plan.apply(tokens, Tensor::zeros([16], &device));
/// let head = config.init_head(16, 1, &device);
/// let output = plan.loss(head.forward(encoded), &targets);
/// let loss: f32 = output.loss.clone().into_scalar();
/// assert!(loss > 0.0 && loss.is_finite());
/// let accuracy: f32 = output.accuracy().unwrap().into_scalar();
/// assert!((0.0..=1.0).contains(&accuracy));
/// # Ok::<(), repr_objectives::ObjectiveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskedPatchConfig {
    /// Side of a square patch, in pixels.
    pub patch_size: usize,
    /// Fraction of the patches of each image that are corrupted (and predicted).
    pub mask_ratio: f64,
    /// Of the corrupted patches, the fraction replaced by the mask token.
    pub replace_with_mask: f64,
    /// Of the corrupted patches, the fraction replaced by another patch of the same image.
    pub replace_with_random: f64,
    /// Of the corrupted patches, the fraction kept as they are (still predicted). The three
    /// fractions sum to 1.
    pub keep: f64,
    /// What is predicted.
    pub target: MaskedPatchTarget,
}

impl Default for MaskedPatchConfig {
    /// The paper's setting: 50% corrupted, 80% mask token, 10% random patch, 10% unchanged,
    /// mean-colour target; patch 4 (for 28–32 px images).
    fn default() -> Self {
        Self {
            patch_size: 4,
            mask_ratio: 0.5,
            replace_with_mask: 0.8,
            replace_with_random: 0.1,
            keep: 0.1,
            target: MaskedPatchTarget::MeanColor,
        }
    }
}

/// Targets of a batch computed on the host: class indices or pixel values, one row per patch.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchTargets {
    /// `[batch · patches, cells²]` colour classes, row-major (`cells² = 1` for the mean colour).
    Classes {
        /// Flat class indices.
        classes: Vec<i64>,
        /// Predictions per patch (`cells²`).
        per_patch: usize,
    },
    /// `[batch · patches, p·p·channels]` pixel values in `[0, 1]`.
    Pixels(Vec<f32>),
}

/// Targets of a batch as tensors, on the images' device.
#[derive(Debug, Clone)]
pub enum TargetTensors {
    /// Colour classes, `[batch, patches, cells²]` (`cells² = 1` for the mean colour), each in
    /// `0..8^channels`.
    Classes(Tensor<3, Int>),
    /// Pixel values in `[0, 1]`, `[batch, patches, p·p·channels]` in (row, column, channel)
    /// order.
    Pixels(Tensor<3>),
}

impl PatchTargets {
    /// The same targets as tensors on `device`, for `batch` images of `patches` patches.
    ///
    /// # Panics
    /// If the number of values is not a multiple of `batch · patches`.
    pub fn to_tensors(&self, batch: usize, patches: usize, device: &Device) -> TargetTensors {
        let rows = batch * patches;
        match self {
            PatchTargets::Classes { classes, per_patch } => {
                assert_eq!(
                    classes.len(),
                    rows * per_patch,
                    "targets for {rows} patches"
                );
                TargetTensors::Classes(Tensor::from_data(
                    TensorData::new(classes.clone(), [batch, patches, *per_patch]),
                    device,
                ))
            }
            PatchTargets::Pixels(values) => {
                assert!(
                    values.len().is_multiple_of(rows),
                    "targets for {rows} patches"
                );
                TargetTensors::Pixels(Tensor::from_data(
                    TensorData::new(values.clone(), [batch, patches, values.len() / rows]),
                    device,
                ))
            }
        }
    }
}

impl MaskedPatchConfig {
    /// Checks every value, naming the field.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        let probability = |field: &'static str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ObjectiveError::OutOfRange {
                    field,
                    value,
                    allowed: "a fraction in [0, 1]",
                })
            }
        };
        if self.patch_size == 0 {
            return Err(ObjectiveError::OutOfRange {
                field: "patch_size",
                value: 0.0,
                allowed: "at least 1",
            });
        }
        probability("mask_ratio", self.mask_ratio)?;
        probability("replace_with_mask", self.replace_with_mask)?;
        probability("replace_with_random", self.replace_with_random)?;
        probability("keep", self.keep)?;
        let sum = self.replace_with_mask + self.replace_with_random + self.keep;
        if (sum - 1.0).abs() > 1e-9 {
            return Err(ObjectiveError::OutOfRange {
                field: "replace_with_mask + replace_with_random + keep",
                value: sum,
                allowed: "1 (the three fractions of the corrupted patches)",
            });
        }
        if let MaskedPatchTarget::DownsizedColor { cells } = self.target
            && (cells == 0 || !self.patch_size.is_multiple_of(cells))
        {
            return Err(ObjectiveError::OutOfRange {
                field: "target.cells",
                value: cells as f64,
                allowed: "a divisor of patch_size",
            });
        }
        Ok(())
    }

    /// Outputs of the prediction head per patch: `cells² · 8^channels` logits for the colour
    /// targets (read as `cells²` groups of `8^channels`), `p²·channels` for pixels.
    pub fn head_outputs(&self, channels: usize) -> usize {
        let classes = 8usize.pow(channels as u32);
        match self.target {
            MaskedPatchTarget::MeanColor => classes,
            MaskedPatchTarget::DownsizedColor { cells } => cells * cells * classes,
            MaskedPatchTarget::Pixels => self.patch_size * self.patch_size * channels,
        }
    }

    /// Cells per patch side of the colour targets (1 for the mean colour), `None` for pixels.
    fn cells(&self) -> Option<usize> {
        match self.target {
            MaskedPatchTarget::MeanColor => Some(1),
            MaskedPatchTarget::DownsizedColor { cells } => Some(cells),
            MaskedPatchTarget::Pixels => None,
        }
    }

    /// The targets of `images`, u8 CHW, `[batch, channels, height, width]` flat, computed
    /// exactly from the integer pixel values (see the module documentation for the classes).
    ///
    /// # Panics
    /// If `images` does not hold `batch · channels · height · width` values or the patch size
    /// does not divide the sides.
    pub fn targets(&self, images: &[u8], shape: [usize; 4]) -> PatchTargets {
        let [batch, channels, height, width] = shape;
        let p = self.patch_size;
        assert_eq!(
            images.len(),
            batch * channels * height * width,
            "image buffer size"
        );
        assert!(
            height.is_multiple_of(p) && width.is_multiple_of(p),
            "patch size {p} must divide {height}x{width}"
        );
        let (gh, gw) = (height / p, width / p);
        let pixel = |b: usize, c: usize, y: usize, x: usize| {
            images[((b * channels + c) * height + y) * width + x] as u32
        };
        // The colour class of the `side`-pixel square at (y0, x0) of image b.
        let class = |b: usize, y0: usize, x0: usize, side: usize| -> i64 {
            (0..channels).fold(0i64, |class, c| {
                let sum: u32 = (y0..y0 + side)
                    .flat_map(|y| (x0..x0 + side).map(move |x| (y, x)))
                    .map(|(y, x)| pixel(b, c, y, x))
                    .sum();
                class * 8 + (sum / (32 * (side * side) as u32)) as i64
            })
        };
        let patches =
            (0..batch).flat_map(|b| (0..gh * gw).map(move |k| (b, k / gw * p, k % gw * p)));
        let Some(cells) = self.cells() else {
            return PatchTargets::Pixels(
                patches
                    .flat_map(|(b, y0, x0)| {
                        (0..p * p * channels).map(move |i| {
                            let (y, x, c) = (i / (p * channels), i / channels % p, i % channels);
                            pixel(b, c, y0 + y, x0 + x) as f32 / 255.0
                        })
                    })
                    .collect(),
            );
        };
        let side = p / cells;
        PatchTargets::Classes {
            classes: patches
                .flat_map(|(b, y, x)| {
                    (0..cells * cells)
                        .map(move |cell| (b, y + cell / cells * side, x + cell % cells * side))
                })
                .map(|(b, y, x)| class(b, y, x, side))
                .collect(),
            per_patch: cells * cells,
        }
    }

    /// The targets of `images` in `[0, 1]` (a u8 value `v` given as `v/255`), on their device:
    /// the same values as [`targets`](Self::targets) of the u8 images, computed exactly after
    /// rounding back to `round(v·255)`.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`, the patch size dividing both sides
    /// - output: [`TargetTensors::Classes`] `[batch, patches, cells²]` or
    ///   [`TargetTensors::Pixels`] `[batch, patches, p·p·channels]`
    ///
    /// # Panics
    /// If the patch size does not divide the sides.
    pub fn target_tensors(&self, images: Tensor<4>) -> TargetTensors {
        let [batch, channels, height, width] = images.dims();
        let p = self.patch_size;
        assert!(
            height.is_multiple_of(p) && width.is_multiple_of(p),
            "patch size {p} must divide {height}x{width}"
        );
        let (gh, gw) = (height / p, width / p);
        let Some(cells) = self.cells() else {
            let patches = images
                .reshape([batch, channels, gh, p, gw, p])
                .permute([0, 2, 4, 3, 5, 1]); // [b, gh, gw, row, col, c]
            return TargetTensors::Pixels(patches.reshape([batch, gh * gw, p * p * channels]));
        };
        let side = p / cells;
        let (ch, cw) = (height / side, width / side);
        let sums = images
            .mul_scalar(255.0)
            .round()
            .int()
            .reshape([batch, channels, ch, side, cw, side])
            .sum_dim(5)
            .sum_dim(3)
            .reshape([batch, channels, ch, cw]);
        let bins = sums.div_scalar((32 * side * side) as i64); // exact: sums are non-negative
        let weights: Vec<i64> = (0..channels)
            .map(|c| 8i64.pow((channels - 1 - c) as u32))
            .collect();
        let weights = Tensor::<4, Int>::from_data(
            TensorData::new(weights, [1, channels, 1, 1]),
            &bins.device(),
        );
        let classes = (bins * weights)
            .sum_dim(1)
            .reshape([batch, gh, cells, gw, cells])
            .permute([0, 1, 3, 2, 4]); // [b, gh, gw, cell row, cell col]
        TargetTensors::Classes(classes.reshape([batch, gh * gw, cells * cells]))
    }
}

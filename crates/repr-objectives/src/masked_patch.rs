//! Masked-patch prediction, the self-supervised objective of the Vision Transformer paper
//! (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words", appendix B.1.2): corrupt half of
//! the patch embeddings (80% replaced by a learned mask token, 10% by another patch of the
//! image, 10% kept) and predict, for the corrupted patches only, a target computed from the
//! original pixels.
//!
//! Patches are `p×p`, row-major over the grid (patch `k` covers rows `p·(k / gw)..` and columns
//! `p·(k % gw)..`, with `gw = width / p`), the order of the ViT tokens.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ObjectiveError;

/// What the network predicts for a corrupted patch (the paper's three options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaskedPatchTarget {
    /// The patch's mean colour at 3 bits per channel: one of `8^channels` classes (512 for
    /// RGB, 8 for grayscale).
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

/// The corruption and target of masked-patch prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskedPatchConfig {
    /// Side of a square patch, in pixels.
    pub patch_size: usize,
    /// Fraction of the patches of each image that are corrupted (and predicted).
    pub mask_ratio: f64,
    /// Of the corrupted patches, the fraction replaced by the mask token.
    pub replace_with_mask: f64,
    /// Of the corrupted patches, the fraction replaced by another patch of the same image
    /// (the rest are kept as they are).
    pub replace_with_random: f64,
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
            target: MaskedPatchTarget::MeanColor,
        }
    }
}

/// Targets of a batch: class indices or pixel values, one row per patch.
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
        probability(
            "replace_with_mask + replace_with_random",
            self.replace_with_mask + self.replace_with_random,
        )?;
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

    /// The targets of `images`, u8 CHW, `[batch, channels, height, width]` flat, computed
    /// exactly from the integer pixel values: a channel's 3-bit bin is
    /// `sum / (32 · n)` (integer division) over the `n` pixels averaged, and a colour class is
    /// the bins read as a base-8 number, first channel most significant (`r·64 + g·8 + b`).
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
        match self.target {
            MaskedPatchTarget::MeanColor => PatchTargets::Classes {
                classes: patches.map(|(b, y, x)| class(b, y, x, p)).collect(),
                per_patch: 1,
            },
            MaskedPatchTarget::DownsizedColor { cells } => {
                let side = p / cells;
                PatchTargets::Classes {
                    classes: patches
                        .flat_map(|(b, y, x)| {
                            (0..cells * cells).map(move |cell| {
                                (b, y + cell / cells * side, x + cell % cells * side)
                            })
                        })
                        .map(|(b, y, x)| class(b, y, x, side))
                        .collect(),
                    per_patch: cells * cells,
                }
            }
            MaskedPatchTarget::Pixels => PatchTargets::Pixels(
                patches
                    .flat_map(|(b, y0, x0)| {
                        (0..p * p * channels).map(move |i| {
                            let (y, x, c) = (i / (p * channels), i / channels % p, i % channels);
                            pixel(b, c, y0 + y, x0 + x) as f32 / 255.0
                        })
                    })
                    .collect(),
            ),
        }
    }

    /// Samples which patches of each of `batch` images are corrupted and how, from `seed`:
    /// exactly `round(mask_ratio · patches)` per image, each replaced by the mask token with
    /// probability `replace_with_mask`, by another patch of the same image with probability
    /// `replace_with_random`, kept otherwise.
    pub fn plan(&self, batch: usize, patches: usize, seed: u64) -> CorruptionPlan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let per_image = ((self.mask_ratio * patches as f64).round() as usize).min(patches);
        let mut plan = CorruptionPlan {
            batch,
            patches,
            corrupted: Vec::with_capacity(batch * per_image),
            source: (0..batch * patches).map(|i| i as i64).collect(),
            masked: vec![false; batch * patches],
        };
        let mut order: Vec<usize> = (0..patches).collect();
        for b in 0..batch {
            // The first `per_image` entries of a partial Fisher-Yates shuffle.
            for i in 0..per_image {
                let j = rng.random_range(i..patches);
                order.swap(i, j);
            }
            let mut chosen = order[..per_image].to_vec();
            chosen.sort_unstable();
            for k in chosen {
                let row = b * patches + k;
                plan.corrupted.push(row);
                let u: f64 = rng.random();
                if u < self.replace_with_mask {
                    plan.masked[row] = true;
                } else if u < self.replace_with_mask + self.replace_with_random && patches > 1 {
                    // Uniform over the other patches of the image.
                    let other = rng.random_range(0..patches - 1);
                    let other = if other >= k { other + 1 } else { other };
                    plan.source[row] = (b * patches + other) as i64;
                }
            }
        }
        plan
    }
}

/// Which patches are corrupted and how: see [`MaskedPatchConfig::plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptionPlan {
    /// Images in the batch.
    pub batch: usize,
    /// Patches per image.
    pub patches: usize,
    /// Flat rows (`image · patches + patch`) of the corrupted patches, ascending.
    pub corrupted: Vec<usize>,
    /// For every row, the row whose embedding it receives (itself unless replaced by another
    /// patch).
    pub source: Vec<i64>,
    /// For every row, whether it receives the mask token.
    pub masked: Vec<bool>,
}

impl CorruptionPlan {
    /// The corrupted patch embeddings.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, patches, dim]` (patch embeddings, before position embeddings)
    /// - `mask_token`: `[dim]`
    /// - output: `[batch, patches, dim]`
    pub fn apply(&self, tokens: Tensor<3>, mask_token: Tensor<1>) -> Tensor<3> {
        let [batch, patches, dim] = tokens.dims();
        assert_eq!(
            (batch, patches),
            (self.batch, self.patches),
            "plan and tokens differ"
        );
        let device = tokens.device();
        let rows = tokens.reshape([batch * patches, dim]);
        let source = Tensor::<1, Int>::from_data(
            TensorData::new(self.source.clone(), [batch * patches]),
            &device,
        );
        let moved = rows.select(0, source);
        let masked = Tensor::<1, Bool>::from_data(
            TensorData::new(self.masked.clone(), [batch * patches]),
            &device,
        )
        .reshape([batch * patches, 1])
        .expand([batch * patches, dim]);
        let token = mask_token.reshape([1, dim]).expand([batch * patches, dim]);
        moved
            .mask_where(masked, token)
            .reshape([batch, patches, dim])
    }

    /// The loss over the corrupted patches only: cross-entropy for colour classes (mean over
    /// the corrupted patches and their cells), mean squared error for pixels (mean over the
    /// corrupted patches' values). Returns the loss, `[1]`, and for classes the number of
    /// correct predictions, `[1]`.
    ///
    /// # Shapes
    /// - `predictions`: `[batch · patches, head_outputs]` (row `image · patches + patch`)
    pub fn loss(
        &self,
        predictions: Tensor<2>,
        targets: &PatchTargets,
    ) -> (Tensor<1>, Option<Tensor<1, Int>>) {
        let device = predictions.device();
        let [rows, outputs] = predictions.dims();
        assert_eq!(
            rows,
            self.batch * self.patches,
            "one prediction row per patch"
        );
        let picked = Tensor::<1, Int>::from_data(
            TensorData::new(
                self.corrupted.iter().map(|&r| r as i64).collect::<Vec<_>>(),
                [self.corrupted.len()],
            ),
            &device,
        );
        let n = self.corrupted.len();
        let predictions = predictions.select(0, picked.clone());
        match targets {
            PatchTargets::Pixels(values) => {
                let target = Tensor::<2>::from_data(
                    TensorData::new(values.clone(), [rows, outputs]),
                    &device,
                )
                .select(0, picked);
                ((predictions - target).square().mean().reshape([1]), None)
            }
            PatchTargets::Classes { classes, per_patch } => {
                let per_patch = *per_patch;
                let num_classes = outputs / per_patch;
                let chosen: Vec<i64> = self
                    .corrupted
                    .iter()
                    .flat_map(|&r| classes[r * per_patch..(r + 1) * per_patch].iter().copied())
                    .collect();
                let logits = predictions.reshape([n * per_patch, num_classes]);
                let target =
                    Tensor::<1, Int>::from_data(TensorData::new(chosen, [n * per_patch]), &device);
                let log_p = log_softmax(logits.clone(), 1);
                let picked = log_p.gather(1, target.clone().reshape([n * per_patch, 1]));
                let loss = picked.mean().neg().reshape([1]);
                let correct = logits
                    .argmax(1)
                    .reshape([n * per_patch])
                    .equal(target)
                    .int()
                    .sum();
                (loss, Some(correct))
            }
        }
    }
}

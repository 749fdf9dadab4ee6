//! The corruption of masked-patch prediction (Dosovitskiy et al. 2020, appendix B.1.2, after
//! BERT's 80/10/10 recipe), the prediction head and the loss over the corrupted patches.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{MaskedPatchConfig, TargetTensors};

/// What happens to one patch position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchAction {
    /// Not corrupted: the embedding passes unchanged and is not predicted.
    Untouched,
    /// Corrupted: replaced by the mask token.
    Mask,
    /// Corrupted: replaced by the embedding of another patch `source` (index within the same
    /// image, never the patch itself).
    Random {
        /// The patch whose embedding is copied.
        source: usize,
    },
    /// Corrupted but kept unchanged (still predicted).
    Keep,
}

impl PatchAction {
    /// Whether the patch is predicted (everything but [`PatchAction::Untouched`]).
    pub fn is_corrupted(self) -> bool {
        self != PatchAction::Untouched
    }
}

/// Which patches of a batch are corrupted and how: see [`MaskedPatchConfig::plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptionPlan {
    batch: usize,
    patches: usize,
    actions: Vec<PatchAction>,
    corrupted: Vec<usize>,
}

impl MaskedPatchConfig {
    /// [`plan_with_rng`](Self::plan_with_rng) with a ChaCha8 generator seeded by `seed`.
    pub fn plan(&self, batch: usize, patches: usize, seed: u64) -> CorruptionPlan {
        self.plan_with_rng(batch, patches, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// Samples which patches of each of `batch` images are corrupted and how: exactly
    /// `round(mask_ratio · patches)` per image (uniformly without replacement), each then
    /// replaced by the mask token with probability `replace_with_mask`, by another patch of the
    /// same image (uniform over the other `patches − 1`) with probability
    /// `replace_with_random`, kept otherwise. With one patch per image there is no other patch,
    /// and a "random" patch is kept.
    pub fn plan_with_rng<R: Rng + ?Sized>(
        &self,
        batch: usize,
        patches: usize,
        rng: &mut R,
    ) -> CorruptionPlan {
        let per_image = ((self.mask_ratio * patches as f64).round() as usize).min(patches);
        let mut actions = vec![PatchAction::Untouched; batch * patches];
        let mut order: Vec<usize> = (0..patches).collect();
        for image in actions.chunks_mut(patches.max(1)) {
            // The first `per_image` entries of a partial Fisher-Yates shuffle.
            for i in 0..per_image {
                let j = rng.random_range(i..patches);
                order.swap(i, j);
            }
            let mut chosen = order[..per_image].to_vec();
            chosen.sort_unstable();
            for k in chosen {
                let u: f64 = rng.random();
                image[k] = if u < self.replace_with_mask {
                    PatchAction::Mask
                } else if u < self.replace_with_mask + self.replace_with_random && patches > 1 {
                    let other = rng.random_range(0..patches - 1);
                    PatchAction::Random {
                        source: if other >= k { other + 1 } else { other },
                    }
                } else {
                    PatchAction::Keep
                };
            }
        }
        CorruptionPlan::new(batch, patches, actions)
    }

    /// The prediction head for `dim`-wide token embeddings of images with `channels` channels:
    /// a linear map to [`head_outputs`](Self::head_outputs).
    pub fn init_head(&self, dim: usize, channels: usize, device: &Device) -> MaskedPatchHead {
        MaskedPatchHead {
            linear: LinearConfig::new(dim, self.head_outputs(channels)).init(device),
        }
    }
}

impl CorruptionPlan {
    /// A plan from one action per position, `image · patches + patch`.
    ///
    /// # Panics
    /// If there are not `batch · patches` actions or a random source is outside its image or
    /// the patch itself.
    pub fn new(batch: usize, patches: usize, actions: Vec<PatchAction>) -> Self {
        assert_eq!(actions.len(), batch * patches, "one action per patch");
        for (row, action) in actions.iter().enumerate() {
            if let PatchAction::Random { source } = *action {
                assert!(
                    source < patches && source != row % patches,
                    "row {row}: random source {source} must be another patch of the image"
                );
            }
        }
        let corrupted = (0..actions.len())
            .filter(|&r| actions[r].is_corrupted())
            .collect();
        Self {
            batch,
            patches,
            actions,
            corrupted,
        }
    }

    /// The plan of images `start..start + count` of this plan's batch (a rank's share of a
    /// global batch), as a plan of `count` images.
    ///
    /// # Panics
    /// If the range is outside the batch.
    pub fn images(&self, start: usize, count: usize) -> Self {
        assert!(
            start + count <= self.batch,
            "images {start}..{} of a plan of {}",
            start + count,
            self.batch
        );
        let p = self.patches;
        Self::new(
            count,
            p,
            self.actions[start * p..(start + count) * p].to_vec(),
        )
    }

    /// Images in the batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Patches per image.
    pub fn patches(&self) -> usize {
        self.patches
    }

    /// What happens at each position, `[batch · patches]` (row `image · patches + patch`).
    pub fn actions(&self) -> &[PatchAction] {
        &self.actions
    }

    /// Flat rows (`image · patches + patch`) of the corrupted patches, ascending.
    pub fn corrupted(&self) -> &[usize] {
        &self.corrupted
    }

    /// Whether each position is corrupted.
    ///
    /// # Shapes
    /// - output: `[batch, patches]`
    pub fn corrupted_mask(&self, device: &Device) -> Tensor<2, Bool> {
        let mask: Vec<bool> = self.actions.iter().map(|a| a.is_corrupted()).collect();
        Tensor::from_data(TensorData::new(mask, [self.batch, self.patches]), device)
    }

    /// The flat rows of [`corrupted`](Self::corrupted) as a tensor, `[corrupted]`.
    pub fn corrupted_rows(&self, device: &Device) -> Tensor<1, Int> {
        let rows: Vec<i64> = self.corrupted.iter().map(|&r| r as i64).collect();
        Tensor::from_data(TensorData::new(rows, [self.corrupted.len()]), device)
    }

    /// The corrupted patch embeddings, on the tokens' device. Untouched and kept positions are
    /// copied bit for bit.
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
        let rows = batch * patches;
        let device = tokens.device();
        let (source, masked): (Vec<i64>, Vec<bool>) = self
            .actions
            .iter()
            .enumerate()
            .map(|(row, action)| match *action {
                PatchAction::Random { source } => ((row - row % patches + source) as i64, false),
                PatchAction::Mask => (row as i64, true),
                PatchAction::Untouched | PatchAction::Keep => (row as i64, false),
            })
            .unzip();
        let source = Tensor::<1, Int>::from_data(TensorData::new(source, [rows]), &device);
        let moved = tokens.reshape([rows, dim]).select(0, source);
        let masked = Tensor::<1, Bool>::from_data(TensorData::new(masked, [rows]), &device)
            .reshape([rows, 1])
            .expand([rows, dim]);
        let token = mask_token.reshape([1, dim]).expand([rows, dim]);
        moved
            .mask_where(masked, token)
            .reshape([batch, patches, dim])
    }

    /// The loss over the corrupted patches only: cross-entropy for colour classes (mean over
    /// the corrupted patches and their cells), mean squared error for pixels (mean over the
    /// corrupted patches' values). Other positions get no gradient. With no corrupted patch the
    /// loss is 0.
    ///
    /// # Shapes
    /// - `predictions`: `[batch, patches, head_outputs]` (classes: `cells²` groups of
    ///   `8^channels` logits)
    /// - `targets`: from [`MaskedPatchConfig::target_tensors`] for the same images
    pub fn loss(&self, predictions: Tensor<3>, targets: &TargetTensors) -> MaskedPatchOutput {
        let [batch, patches, outputs] = predictions.dims();
        assert_eq!(
            (batch, patches),
            (self.batch, self.patches),
            "plan and predictions differ"
        );
        let device = predictions.device();
        let predictions = predictions.reshape([batch * patches, outputs]);
        let n = self.corrupted.len();
        if n == 0 {
            return MaskedPatchOutput {
                loss: predictions.sum().mul_scalar(0.0),
                correct: matches!(targets, TargetTensors::Classes(_))
                    .then(|| Tensor::zeros([1], &device)),
                predicted: 0,
            };
        }
        let picked = self.corrupted_rows(&device);
        let predictions = predictions.select(0, picked.clone()); // [n, outputs]
        match targets {
            TargetTensors::Pixels(target) => {
                let target = target
                    .clone()
                    .reshape([batch * patches, outputs])
                    .select(0, picked);
                MaskedPatchOutput {
                    loss: (predictions - target).square().mean().reshape([1]),
                    correct: None,
                    predicted: n * outputs,
                }
            }
            TargetTensors::Classes(target) => {
                let per_patch = target.dims()[2];
                let num_classes = outputs / per_patch;
                assert_eq!(
                    num_classes * per_patch,
                    outputs,
                    "{outputs} outputs for {per_patch} cells"
                );
                let target = target
                    .clone()
                    .reshape([batch * patches, per_patch])
                    .select(0, picked)
                    .reshape([n * per_patch, 1]);
                let logits = predictions.reshape([n * per_patch, num_classes]);
                let log_p = log_softmax(logits.clone(), 1).gather(1, target.clone());
                let correct = logits.argmax(1).equal(target).int().sum();
                MaskedPatchOutput {
                    loss: log_p.mean().neg().reshape([1]),
                    correct: Some(correct),
                    predicted: n * per_patch,
                }
            }
        }
    }
}

/// The loss of a batch and, for colour classes, how many predictions were right.
#[derive(Debug, Clone)]
pub struct MaskedPatchOutput {
    /// The mean loss over the corrupted patches, `[1]`.
    pub loss: Tensor<1>,
    /// Correct colour classes (argmax = target) among the corrupted patches' cells, `[1]`;
    /// `None` for pixel targets.
    pub correct: Option<Tensor<1, Int>>,
    /// Predictions the loss averages over: corrupted patches × cells (classes) or × values
    /// (pixels).
    pub predicted: usize,
}

impl MaskedPatchOutput {
    /// The fraction of correct colour classes, `[1]` (`None` for pixels; 0 when nothing was
    /// predicted).
    pub fn accuracy(&self) -> Option<Tensor<1>> {
        let correct = self.correct.clone()?.float();
        Some(correct.div_scalar(self.predicted.max(1) as f64))
    }
}

/// The prediction head of masked-patch prediction: one linear map from a token embedding to
/// the target's outputs (Dosovitskiy et al. 2020, B.1.2). Built by
/// [`MaskedPatchConfig::init_head`].
#[derive(Module, Debug)]
pub struct MaskedPatchHead {
    /// `dim → head_outputs`.
    pub linear: Linear,
}

impl MaskedPatchHead {
    /// Predictions for every patch token (the encoder's output without the CLS token).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, patches, dim]`
    /// - output: `[batch, patches, head_outputs]`
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<3> {
        self.linear.forward(tokens)
    }
}

//! The masked-patch method (Dosovitskiy et al. 2020, appendix B.1.2): a ViT sees its patch
//! embeddings with half of them corrupted (mask token, another patch, or unchanged) and a
//! linear head predicts, for every corrupted patch, a target computed from the original pixels
//! (its mean colour at 3 bits per channel by default). BERT's recipe, on image patches.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use repr_backbones::{Backbone, BackboneConfig};
use repr_data::Normalize;
use repr_objectives::{MaskedPatchConfig, MaskedPatchHead};
use serde::{Deserialize, Serialize};

use super::{
    Batch, DataNeeds, MethodSettings, RunFacts, RunShape, StepContext, StepOutput, TrainMethod,
    method_error,
};
use crate::TrainError;

/// `[method] kind = "masked-patch"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaskedPatchMethodConfig {
    /// `[method.loss]`: corruption fractions, target and its patch size (the ViT's).
    pub loss: MaskedPatchConfig,
}

impl MethodSettings for MaskedPatchMethodConfig {
    fn data(&self) -> DataNeeds {
        DataNeeds::Images
    }

    fn validate(&self, run: &RunShape<'_>) -> Result<(), TrainError> {
        if let Err(e) = self.loss.validate() {
            let repr_objectives::ObjectiveError::OutOfRange { field, .. } = &e;
            return Err(method_error(&format!("loss.{field}"), &e));
        }
        let BackboneConfig::ViT(vit) = &run.backbone else {
            return Err(TrainError::Config {
                field: "backbone.kind".into(),
                message: format!(
                    "{:?} is not allowed: expected \"vit\" (masked-patch prediction corrupts a \
                     ViT's patch tokens)",
                    run.backbone.name()
                ),
            });
        };
        if self.loss.patch_size != vit.patch_size {
            return Err(method_error(
                "loss.patch_size",
                format!(
                    "{} is not allowed: expected the ViT's patch size ({})",
                    self.loss.patch_size, vit.patch_size
                ),
            ));
        }
        Ok(())
    }
}

/// A ViT encoder and the linear head that predicts the corrupted patches' targets. The
/// representation used downstream is the encoder's CLS embedding.
#[derive(Module, Debug)]
pub struct MaskedPatchNet {
    /// The encoder: a ViT built without a classifier.
    pub backbone: Backbone,
    /// Token embedding to the target's outputs (classes or pixels).
    pub head: MaskedPatchHead,
    /// The corruption, targets and what they need from the run.
    #[module(skip)]
    pub objective: MaskedPatchObjective,
}

/// What a masked-patch step needs besides the network: the corruption and target settings,
/// the normalisation of the batches (targets come from the original pixel values) and the run's
/// seed (the corruption of step `s` is drawn from `(seed, s)`, so a resumed run corrupts the
/// same patches as an uninterrupted one).
#[derive(Debug, Clone)]
pub struct MaskedPatchObjective {
    /// Corruption fractions and target.
    pub config: MaskedPatchConfig,
    /// How the loader normalised the images.
    pub normalize: Normalize,
    /// The run's seed.
    pub seed: u64,
}

impl MaskedPatchObjective {
    /// The seed of step `step`'s corruption plan.
    pub fn plan_seed(&self, step: usize) -> u64 {
        self.seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

impl MaskedPatchNet {
    /// A linear head for `backbone`'s `dim`-wide tokens predicting `objective`'s target for
    /// images with `channels` channels.
    pub fn new(
        backbone: Backbone,
        objective: MaskedPatchObjective,
        channels: usize,
        device: &Device,
    ) -> Self {
        let head = objective
            .config
            .init_head(backbone.num_features(), channels, device);
        Self {
            backbone,
            head,
            objective,
        }
    }

    /// The loss of one batch of normalised images at training step `step`: corrupt the patch
    /// embeddings by the step's plan, encode, predict every patch token, and score the
    /// corrupted ones against the targets of the original pixels. The metric counts correct
    /// colour classes among the corrupted patches' cells (none for pixel targets).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`, normalised by `objective.normalize`
    pub fn step_images(&self, images: Tensor<4>, at: &StepContext<'_>) -> StepOutput {
        let objective = &self.objective;
        let Backbone::ViT(vit) = &self.backbone else {
            panic!("masked-patch prediction needs a ViT backbone");
        };
        let [batch, _, height, width] = images.dims();
        let grid = vit.grid_size([height, width]);
        let patches = grid[0] * grid[1];
        let pixels = objective.normalize.unnormalize(images.clone().detach());
        let targets = objective.config.target_tensors(pixels);
        // The plan of the whole global batch, of which this rank's images are one share: the
        // same corruption of each image as in a run of one process.
        let ranks = at.group.size();
        let plan = objective
            .config
            .plan(batch * ranks, patches, objective.plan_seed(at.step))
            .images(at.group.rank() * batch, batch);
        let tokens = plan.apply(vit.embed_patches(images), vit.mask_token());
        let encoded = vit.forward_tokens(tokens, grid); // [b, 1 + patches, dim]
        let dim = encoded.dims()[2];
        let patch_tokens = encoded.slice([0..batch, 1..1 + patches, 0..dim]);
        let output = plan.loss(self.head.forward(patch_tokens), &targets);
        StepOutput::new(output.loss, output.correct, output.predicted)
    }
}

impl TrainMethod for MaskedPatchNet {
    type Config = MaskedPatchMethodConfig;

    fn init(
        config: &MaskedPatchMethodConfig,
        backbone: Backbone,
        run: &RunFacts,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let objective = MaskedPatchObjective {
            config: config.loss.clone(),
            normalize: run.normalize.clone(),
            seed: run.seed,
        };
        Ok(Self::new(backbone, objective, run.channels, device))
    }

    fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput {
        self.step_images(batch.images("masked-patch prediction").images, at)
    }

    backbone_field!();
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use repr_backbones::ViTConfig;
    use repr_data::{ImageBatcher, Normalize};
    use repr_objectives::{PatchTargets, TargetTensors};

    use super::*;

    /// Two 1-channel 8x8 images with values spread over the whole u8 range.
    fn images() -> Vec<Vec<u8>> {
        (0..2)
            .map(|i| {
                (0..64)
                    .map(|k| ((k * 37 + i * 101 + (k * k) % 13) % 256) as u8)
                    .collect()
            })
            .collect()
    }

    fn objective() -> MaskedPatchObjective {
        MaskedPatchObjective {
            config: MaskedPatchConfig::default(),
            // Fashion-MNIST's statistics: the batch values are far from v/255.
            normalize: Normalize {
                mean: vec![0.286],
                std: vec![0.353],
            },
            seed: 42,
        }
    }

    fn normalised_batch(device: &Device) -> Tensor<4> {
        let pixels = images();
        let slices: Vec<&[u8]> = pixels.iter().map(|im| im.as_slice()).collect();
        ImageBatcher::new(objective().normalize)
            .batch_from(&slices, &[0, 0], [1, 8, 8], device)
            .images
    }

    /// The targets of a normalised batch are those of its u8 pixels: the step undoes the
    /// loader's normalisation exactly enough for 3-bit bins.
    fn targets_come_from_the_original_pixels(device: &Device) {
        let objective = objective();
        let raw = objective.normalize.unnormalize(normalised_batch(device));
        let TargetTensors::Classes(classes) = objective.config.target_tensors(raw) else {
            panic!("mean-colour targets are classes")
        };
        let flat: Vec<u8> = images().concat();
        let PatchTargets::Classes { classes: want, .. } =
            objective.config.targets(&flat, [2, 1, 8, 8])
        else {
            panic!("mean-colour targets are classes")
        };
        let got: Vec<i64> = classes.into_data().iter::<i64>().collect();
        assert_eq!(got, want);
    }

    /// A step is a function of the weights, the batch and the step index: the same index gives
    /// the same loss (a resumed run corrupts the same patches), another index another plan.
    fn the_corruption_is_drawn_from_the_step(device: &Device) {
        let objective = objective();
        let vit = ViTConfig::new(8, 4, 8, 1, 2, 16)
            .with_in_channels(1)
            .with_num_classes(0)
            .init(device);
        let net = MaskedPatchNet::new(vit.into(), objective.clone(), 1, device);
        let loss = |step| -> f32 {
            net.step_images(normalised_batch(device), &StepContext::one_process(step))
                .loss
                .into_scalar()
        };
        assert_eq!(loss(3).to_bits(), loss(3).to_bits());
        let output = net.step_images(normalised_batch(device), &StepContext::one_process(3));
        // round(0.5 · 4) = 2 corrupted patches per image, one mean-colour class each.
        assert_eq!(output.counted, 4);
        let plans: Vec<_> = (0..8)
            .map(|s| objective.config.plan(2, 4, objective.plan_seed(s)))
            .collect();
        assert!(
            plans.iter().any(|p| p != &plans[0]),
            "every step has the same plan"
        );
    }

    repr_testing::backend_tests!(
        targets_come_from_the_original_pixels,
        the_corruption_is_drawn_from_the_step
    );
}

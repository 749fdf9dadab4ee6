//! The supervised method: a backbone with a classifier head, trained with cross-entropy.
//! Fine-tuning is this method with an `[init]` section (pre-trained stages, frozen prefix,
//! learning-rate groups).

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_backbones::Backbone;
use repr_objectives::{CrossEntropyLoss, CrossEntropyLossConfig};
use serde::{Deserialize, Serialize};

use super::{
    Batch, DataNeeds, Evaluation, MethodSettings, RunFacts, RunShape, StepContext, StepOutput,
    TrainMethod, check_component,
};
use crate::TrainError;

/// `[method] kind = "supervised"`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisedConfig {
    /// `[method.loss]`: cross-entropy, label smoothing.
    pub loss: CrossEntropyLossConfig,
}

impl MethodSettings for SupervisedConfig {
    fn data(&self) -> DataNeeds {
        DataNeeds::Images
    }

    fn evaluation(&self) -> Evaluation {
        Evaluation::Classifier
    }

    fn validate(&self, _run: &RunShape<'_>) -> Result<(), TrainError> {
        check_component("loss", self.loss.validate())
    }
}

/// A backbone whose head outputs class logits.
#[derive(Module, Debug)]
pub struct Supervised {
    /// The network, including its classifier (`fc`).
    pub backbone: Backbone,
    /// The loss.
    #[module(skip)]
    pub loss: CrossEntropyLoss,
}

impl Supervised {
    /// Class logits.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.backbone.forward(images)
    }
}

impl TrainMethod for Supervised {
    type Config = SupervisedConfig;

    fn init(
        config: &SupervisedConfig,
        backbone: Backbone,
        _run: &RunFacts,
        _device: &Device,
    ) -> Result<Self, TrainError> {
        let loss = config
            .loss
            .init()
            .map_err(|e| super::method_error("loss.smoothing", e))?;
        Ok(Self { backbone, loss })
    }

    /// Loss and correct count of one batch.
    fn step(&self, batch: Batch, _at: &StepContext<'_>) -> StepOutput {
        let batch = batch.images("the supervised method");
        let counted = batch.images.dims()[0];
        let logits = self.forward(batch.images);
        let correct = correct_count(logits.clone().detach(), batch.targets.clone());
        StepOutput::new(
            self.loss.forward(logits, batch.targets),
            Some(correct),
            counted,
        )
    }

    backbone_field!();
}

/// How many rows of `logits` have their arg-max at the target class, `[1]`, on the device.
pub(crate) fn correct_count(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1, Int> {
    logits
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(targets)
        .int()
        .sum()
}

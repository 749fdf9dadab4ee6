//! The supervised method: a backbone with a classifier head, trained with cross-entropy.

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use repr_backbones::Backbone;
use repr_data::ImageBatch;
use repr_objectives::CrossEntropyLoss;

use crate::StepOutput;

/// A backbone whose head outputs class logits.
#[derive(Module, Debug)]
pub struct Supervised {
    /// The network, including its classifier (`fc`).
    pub backbone: Backbone,
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

    /// Loss and correct count of one batch.
    pub fn step(&self, batch: ImageBatch, loss_fn: &CrossEntropyLoss) -> StepOutput {
        let counted = batch.images.dims()[0];
        let logits = self.forward(batch.images);
        StepOutput {
            counted,
            correct: Some(correct_count(
                logits.clone().detach(),
                batch.targets.clone(),
            )),
            loss: loss_fn.forward(logits, batch.targets),
        }
    }
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

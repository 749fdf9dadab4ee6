//! The triplet method (Schroff et al. 2015, FaceNet; Hermans et al. 2017, "In Defense of the
//! Triplet Loss for Person Re-Identification"): encoder + linear embedding head, L2-normalised,
//! trained with triplet loss on mined triplets of P×K class-balanced batches.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};
use repr_backbones::Backbone;
use repr_objectives::TripletLoss;

use crate::StepOutput;

/// An encoder with an embedding head whose output lies on the unit sphere.
#[derive(Module, Debug)]
pub struct TripletNet {
    /// The encoder (built without a classifier).
    pub backbone: Backbone,
    /// Projects pooled features to the embedding.
    pub head: Linear,
}

impl TripletNet {
    /// A head of `embedding_dim` outputs on top of `backbone`.
    pub fn new(backbone: Backbone, embedding_dim: usize, device: &Device) -> Self {
        let head = LinearConfig::new(backbone.num_features(), embedding_dim).init(device);
        Self { backbone, head }
    }

    /// L2-normalised embeddings.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, embedding_dim]`
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let e = self.head.forward(self.backbone.embed(images));
        let norm = e.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        e / norm
    }

    /// Triplet loss of one P×K batch (no accuracy-like metric).
    pub fn step(
        &self,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        loss_fn: &TripletLoss,
    ) -> StepOutput {
        let output = loss_fn.forward(self.embed(images), labels);
        StepOutput {
            loss: output.loss,
            correct: None,
            counted: 0,
        }
    }
}

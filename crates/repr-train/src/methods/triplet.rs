//! The triplet method (Schroff et al. 2015, FaceNet; Hermans et al. 2017, "In Defense of the
//! Triplet Loss for Person Re-Identification"): encoder + linear embedding head, L2-normalised,
//! trained with triplet loss on mined triplets of P×K class-balanced batches.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use repr_backbones::{Backbone, Pooling};
use repr_objectives::{TripletLoss, TripletLossConfig, TripletReduction};
use serde::{Deserialize, Serialize};

use super::{
    Batch, DataNeeds, MethodSettings, RunFacts, RunShape, StepContext, StepOutput, TrainMethod,
    check_component, method_error,
};
use crate::TrainError;

/// `[method] kind = "triplet"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TripletConfig {
    /// Width of the embedding head on top of the backbone's pooled features.
    pub embedding_dim: usize,
    /// P: classes per batch.
    pub classes_per_batch: usize,
    /// K: images per class in a batch. `batch_size` must equal P × K.
    pub images_per_class: usize,
    /// `[method.loss]`: margin, distance, miner, soft margin, reduction.
    pub loss: TripletLossConfig,
}

impl Default for TripletConfig {
    /// A 128-d embedding, P×K = 8×16, batch-hard mining at margin 0.2, the mean over the
    /// triplets with a positive loss (pytorch-metric-learning's reduction).
    fn default() -> Self {
        Self {
            embedding_dim: 128,
            classes_per_batch: 8,
            images_per_class: 16,
            loss: TripletLossConfig::default().with_reduction(TripletReduction::MeanNonZero),
        }
    }
}

impl MethodSettings for TripletConfig {
    fn data(&self) -> DataNeeds {
        DataNeeds::ClassBalanced {
            classes_per_batch: self.classes_per_batch,
            images_per_class: self.images_per_class,
        }
    }

    fn validate(&self, run: &RunShape<'_>) -> Result<(), TrainError> {
        let bad = |field: &str, allowed: &str, value: String| {
            Err(method_error(
                field,
                format!("{value} is not allowed: expected {allowed}"),
            ))
        };
        check_component("loss", self.loss.validate())?;
        if self.embedding_dim == 0 {
            return bad("embedding_dim", ">= 1", "0".into());
        }
        if self.classes_per_batch < 2 {
            return bad(
                "classes_per_batch",
                ">= 2 (a negative needs another class)",
                self.classes_per_batch.to_string(),
            );
        }
        if self.images_per_class < 2 {
            return bad(
                "images_per_class",
                ">= 2 (a positive needs another image of the class)",
                self.images_per_class.to_string(),
            );
        }
        let pk = self.classes_per_batch * self.images_per_class;
        if pk != run.batch_size {
            return Err(TrainError::Config {
                field: "batch_size".into(),
                message: format!(
                    "{} is not allowed: expected method.classes_per_batch x \
                     method.images_per_class = {} x {} = {pk}",
                    run.batch_size, self.classes_per_batch, self.images_per_class
                ),
            });
        }
        if let Some(pooling) = run.pooling {
            return Err(TrainError::Config {
                field: "eval.pooling".into(),
                message: format!(
                    "{} is not allowed: expected no value for the triplet recipe (it evaluates \
                     its trained embedding)",
                    format!("{pooling:?}").to_lowercase()
                ),
            });
        }
        Ok(())
    }
}

/// An encoder with an embedding head whose output lies on the unit sphere.
#[derive(Module, Debug)]
pub struct TripletNet {
    /// The encoder (built without a classifier).
    pub backbone: Backbone,
    /// Projects pooled features to the embedding.
    pub head: Linear,
    /// The loss and its miner.
    #[module(skip)]
    pub loss: TripletLoss,
}

impl TripletNet {
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
}

impl TrainMethod for TripletNet {
    type Config = TripletConfig;

    fn init(
        config: &TripletConfig,
        backbone: Backbone,
        _run: &RunFacts,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let head = LinearConfig::new(backbone.num_features(), config.embedding_dim).init(device);
        let loss = config.loss.init().map_err(|e| method_error("loss", e))?;
        Ok(Self {
            backbone,
            head,
            loss,
        })
    }

    /// Triplet loss of one P×K batch (no accuracy-like metric).
    /// Across ranks, the embeddings and labels of every rank are gathered first, so the miner
    /// searches the whole global batch for each anchor's hardest positive and negative.
    fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput {
        let batch = batch.images("the triplet method");
        let embeddings = at.group.gather_rows(self.embed(batch.images));
        let labels = at.group.gather_labels(batch.targets);
        let output = self.loss.forward(embeddings, labels);
        StepOutput::global(output.loss, None, 0)
    }

    backbone_field!();

    /// The trained embedding (what the loss ordered), whatever the pooling.
    fn represent(&self, images: Tensor<4>, _pooling: Option<Pooling>) -> Tensor<2> {
        self.embed(images)
    }
}

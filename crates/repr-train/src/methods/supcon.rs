//! Supervised contrastive learning (Khosla et al. 2020, "Supervised Contrastive Learning"):
//! SimCLR's encoder, projection head and two augmented views, with the SupCon loss, where every
//! view of an image with the same label, not only the other view of the same image, is a
//! positive.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_augment::MultiViewConfig;
use repr_backbones::Backbone;
use repr_objectives::{ProjectionHead, ProjectionHeadConfig, SupConLoss, SupConLossConfig};
use serde::{Deserialize, Serialize};

use super::{
    Batch, DataNeeds, MethodSettings, RunFacts, RunShape, StepContext, StepOutput, TrainMethod,
    check_head_loss_views,
};
use crate::TrainError;

/// `[method] kind = "supcon"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupConConfig {
    /// `[method.head]`: the projection head (its input is the encoder's width).
    pub head: ProjectionHeadConfig,
    /// `[method.loss]`: the SupCon loss.
    pub loss: SupConLossConfig,
    /// `[method.views]`: the two augmented views.
    pub views: MultiViewConfig,
}

impl Default for SupConConfig {
    /// Head 256-128 of 2 layers without BatchNorm, temperature 0.1 (the paper's), the
    /// grayscale SimCLR views at 28 pixels.
    fn default() -> Self {
        Self {
            head: ProjectionHeadConfig::default(),
            loss: SupConLossConfig::default(),
            views: MultiViewConfig::simclr_grayscale(28),
        }
    }
}

impl MethodSettings for SupConConfig {
    fn data(&self) -> DataNeeds {
        DataNeeds::Views(self.views.clone())
    }

    fn validate(&self, _run: &RunShape<'_>) -> Result<(), TrainError> {
        check_head_loss_views(&self.head, self.loss.validate(), &self.views)
    }

    fn views(&self) -> Option<&MultiViewConfig> {
        Some(&self.views)
    }

    fn views_mut(&mut self) -> Option<&mut MultiViewConfig> {
        Some(&mut self.views)
    }
}

/// An encoder and its projection head, trained with labels on two views. The representation
/// used downstream is the encoder's pooled output.
#[derive(Module, Debug)]
pub struct SupCon {
    /// The encoder (built without a classifier).
    pub backbone: Backbone,
    /// MLP mapping pooled features to the space where the loss compares views.
    pub head: ProjectionHead,
    /// The loss.
    #[module(skip)]
    pub loss: SupConLoss,
}

impl TrainMethod for SupCon {
    type Config = SupConConfig;

    fn init(
        config: &SupConConfig,
        backbone: Backbone,
        _run: &RunFacts,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let head = config.head.for_input(backbone.num_features()).init(device);
        let loss = config
            .loss
            .init()
            .map_err(|e| super::method_error("loss", e))?;
        Ok(Self {
            backbone,
            head,
            loss,
        })
    }

    /// The SupCon loss over both views of the batch (`2N` rows, each view's label its image's).
    /// Each view goes through the encoder on its own (BatchNorm statistics per view, as in
    /// SimCLR). The metric: anchors whose most similar other view has their label.
    fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput {
        let (view1, view2, labels) = batch.two_views("SupCon");
        let group = at.group;
        let z1 = group.gather_rows(self.head.forward(self.backbone.embed(view1)));
        let z2 = group.gather_rows(self.head.forward(self.backbone.embed(view2)));
        let labels = group.gather_labels(labels);
        let anchors = 2 * z1.dims()[0];
        let z = Tensor::cat(vec![z1, z2], 0);
        let labels = Tensor::cat(vec![labels.clone(), labels], 0);
        let correct = nearest_shares_label(z.clone().detach(), labels.clone());
        StepOutput::global(self.loss.forward(z, labels), Some(correct), anchors)
    }

    backbone_field!();
}

/// How many rows have, as their most cosine-similar other row, one with their label, `[1]`.
fn nearest_shares_label(z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1, Int> {
    let [n, _] = z.dims();
    let device = z.device();
    let norm = z.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    let u = z / norm;
    // The diagonal is pushed below any cosine so a row never picks itself.
    let similarity = u.clone().matmul(u.transpose()) - Tensor::<2>::eye(n, &device) * 4.0;
    let nearest = similarity.argmax(1).squeeze_dim::<1>(1);
    labels.clone().select(0, nearest).equal(labels).int().sum()
}

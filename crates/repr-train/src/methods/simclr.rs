//! The SimCLR method (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
//! Representations"): encoder + projection head, NT-Xent between two augmented views.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_augment::MultiViewConfig;
use repr_backbones::Backbone;
use repr_objectives::{NtXentLoss, NtXentLossConfig, ProjectionHead, ProjectionHeadConfig};
use serde::{Deserialize, Serialize};

use super::{
    Batch, DataNeeds, MethodSettings, RunFacts, RunShape, StepContext, StepOutput, TrainMethod,
    check_head_loss_views,
};
use crate::TrainError;

/// `[method] kind = "simclr"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimclrConfig {
    /// `[method.head]`: the projection head (its input is the encoder's width).
    pub head: ProjectionHeadConfig,
    /// `[method.loss]`: NT-Xent.
    pub loss: NtXentLossConfig,
    /// `[method.views]`: the two augmented views.
    pub views: MultiViewConfig,
}

impl Default for SimclrConfig {
    /// Head 256-128 of 2 layers without BatchNorm, temperature 0.5, the grayscale SimCLR views
    /// at 28 pixels.
    fn default() -> Self {
        Self {
            head: ProjectionHeadConfig::default(),
            loss: NtXentLossConfig::default(),
            views: MultiViewConfig::simclr_grayscale(28),
        }
    }
}

impl MethodSettings for SimclrConfig {
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

/// An encoder and its projection head. The representation used downstream is the encoder's
/// pooled output; the head only serves the loss (Chen et al. 2020, Sec. 4.2).
#[derive(Module, Debug)]
pub struct SimClr {
    /// The encoder (built without a classifier).
    pub backbone: Backbone,
    /// MLP mapping pooled features to the space where NT-Xent compares views.
    pub head: ProjectionHead,
    /// The loss.
    #[module(skip)]
    pub loss: NtXentLoss,
}

impl SimClr {
    /// Projections of one view.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, head_output]`
    pub fn project(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.embed(images))
    }
}

impl TrainMethod for SimClr {
    type Config = SimclrConfig;

    fn init(
        config: &SimclrConfig,
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

    /// NT-Xent of two views of the same images. Each view goes through the encoder on its own,
    /// so BatchNorm statistics are per view, as in the reference implementations. The step's
    /// metric is the contrastive accuracy: anchors whose most similar other view is their
    /// positive.
    ///
    /// Across ranks, each view's projections are gathered from every rank (in rank order, so
    /// row `i` of both gathered views is the same image): NT-Xent runs over all `2N` views of
    /// the global batch, every other view a negative, as in one process.
    fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput {
        let (view1, view2, _) = batch.two_views("SimCLR");
        let z1 = at.group.gather_rows(self.project(view1));
        let z2 = at.group.gather_rows(self.project(view2));
        let anchors = 2 * z1.dims()[0];
        let correct = positives_ranked_first(z1.clone().detach(), z2.clone().detach());
        StepOutput::global(self.loss.forward(z1, z2), Some(correct), anchors)
    }

    backbone_field!();
}

/// Of the `2N` anchors, how many have their positive (the other view of the same image) as the
/// most cosine-similar of the other `2N - 1` rows, `[1]`, on the device.
pub(crate) fn positives_ranked_first(z1: Tensor<2>, z2: Tensor<2>) -> Tensor<1, Int> {
    let [n, _] = z1.dims();
    let device = z1.device();
    let z = Tensor::cat(vec![z1, z2], 0);
    let norm = z.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
    let u = z / norm;
    // [2n, 2n]; the diagonal is pushed below any cosine so an anchor never picks itself.
    let eye = Tensor::<2>::eye(2 * n, &device);
    let similarity = u.clone().matmul(u.transpose()) - eye * 4.0;
    let best = similarity.argmax(1).squeeze_dim::<1>(1);
    let positive = Tensor::<1, Int>::arange(0..(2 * n) as i64, &device)
        .add_scalar(n as i64)
        .remainder_scalar(2 * n as i64);
    best.equal(positive).int().sum()
}

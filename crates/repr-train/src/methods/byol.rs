//! The BYOL method (Grill et al. 2020, "Bootstrap Your Own Latent"): an online network
//! (encoder, projector, predictor) regresses the target network's projection of the other view;
//! the target is a momentum copy of the online encoder and projector. No negatives.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use repr_augment::MultiViewConfig;
use repr_backbones::Backbone;
use repr_objectives::momentum::{momentum_copy, momentum_update};
use repr_objectives::{ProjectionHead, ProjectionHeadConfig, byol_symmetric_loss};
use serde::{Deserialize, Serialize};

use super::simclr::positives_ranked_first;
use super::{
    AfterStep, Batch, DataNeeds, MethodSettings, RunFacts, RunShape, StepContext, StepOutput,
    TrainMethod, check_views, method_error,
};
use crate::TrainError;

/// `[method] kind = "byol"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByolConfig {
    /// Hidden width of the projector and predictor MLPs (BYOL: 4096).
    pub hidden: usize,
    /// Output width of the projector and predictor (BYOL: 256).
    pub output: usize,
    /// The target's decay at the first step, rising to 1 along a cosine (BYOL: 0.996).
    pub base_decay: f64,
    /// `[method.views]`: the two augmented views.
    pub views: MultiViewConfig,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            hidden: 4096,
            output: 256,
            base_decay: 0.996,
            views: MultiViewConfig::simclr_grayscale(28),
        }
    }
}

impl MethodSettings for ByolConfig {
    fn data(&self) -> DataNeeds {
        DataNeeds::Views(self.views.clone())
    }

    // `!(x >= 0.0)` on purpose: it also rejects NaN.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn validate(&self, _run: &RunShape<'_>) -> Result<(), TrainError> {
        if !(self.base_decay >= 0.0 && self.base_decay <= 1.0) {
            return Err(method_error(
                "base_decay",
                format!(
                    "{} is not allowed: expected 0 <= value <= 1",
                    self.base_decay
                ),
            ));
        }
        if self.hidden == 0 || self.output == 0 {
            return Err(method_error(
                "hidden / method.output",
                "0 is not allowed: expected >= 1",
            ));
        }
        check_views(&self.views)
    }

    fn views(&self) -> Option<&MultiViewConfig> {
        Some(&self.views)
    }

    fn views_mut(&mut self) -> Option<&mut MultiViewConfig> {
        Some(&mut self.views)
    }

    /// BYOL's asymmetric pair for colour images (blur and solarize differ between the views),
    /// the SimCLR views for grayscale ones.
    fn views_for(&self, channels: usize, size: usize) -> MultiViewConfig {
        match channels {
            1 => MultiViewConfig::simclr_grayscale(size),
            _ => MultiViewConfig::byol(size),
        }
    }
}

/// Online and target networks. The representation used downstream is the online encoder's
/// pooled output.
#[derive(Module, Debug)]
pub struct Byol {
    /// The online encoder (built without a classifier).
    pub backbone: Backbone,
    /// Online projector: pooled features to the regression space.
    pub projector: ProjectionHead,
    /// Online predictor: projection to the prediction of the target's projection.
    pub predictor: ProjectionHead,
    /// Target encoder: a momentum copy of `backbone`, never given gradients.
    pub target_backbone: Backbone,
    /// Target projector: a momentum copy of `projector`.
    pub target_projector: ProjectionHead,
    /// The target's decay at the first step.
    #[module(skip)]
    pub base_decay: f64,
}

impl Byol {
    /// Online networks around `backbone`, projector and predictor MLPs `hidden` wide with
    /// BatchNorm (BYOL's `Linear → BN → ReLU → Linear`) ending at `output`; the target starts
    /// as a copy of the online encoder and projector.
    pub fn new(
        backbone: Backbone,
        hidden: usize,
        output: usize,
        base_decay: f64,
        device: &Device,
    ) -> Self {
        let head = |input| {
            ProjectionHeadConfig::new(input, hidden, output)
                .with_batch_norm(true)
                .init(device)
        };
        let projector = head(backbone.num_features());
        let predictor = head(output);
        Self {
            target_backbone: momentum_copy(&backbone),
            target_projector: momentum_copy(&projector),
            backbone,
            projector,
            predictor,
            base_decay,
        }
    }

    /// The online projection of one view.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, output]`
    pub fn project(&self, images: Tensor<4>) -> Tensor<2> {
        self.projector.forward(self.backbone.embed(images))
    }

    /// The target projection of one view, detached.
    fn target(&self, images: Tensor<4>) -> Tensor<2> {
        self.target_projector
            .forward(self.target_backbone.embed(images))
            .detach()
    }

    /// Moves the target towards the online networks with decay `tau` (after each optimizer
    /// step).
    pub fn update_target(self, tau: f64) -> Self {
        Self {
            target_backbone: momentum_update(self.target_backbone, &self.backbone, tau),
            target_projector: momentum_update(self.target_projector, &self.projector, tau),
            ..self
        }
    }
}

impl TrainMethod for Byol {
    type Config = ByolConfig;

    fn init(
        config: &ByolConfig,
        backbone: Backbone,
        _run: &RunFacts,
        device: &Device,
    ) -> Result<Self, TrainError> {
        Ok(Self::new(
            backbone,
            config.hidden,
            config.output,
            config.base_decay,
            device,
        ))
    }

    /// The symmetric BYOL loss of two views of the same images; each view goes through the
    /// networks on its own (BatchNorm statistics per view). The metric is the online
    /// projections' view-matching accuracy (as SimCLR's), which falls to chance if the
    /// representation collapses.
    fn step(&self, batch: Batch, _at: &StepContext<'_>) -> StepOutput {
        let (view1, view2, _) = batch.two_views("BYOL");
        let anchors = 2 * view1.dims()[0];
        let z1 = self.project(view1.clone());
        let z2 = self.project(view2.clone());
        let correct = positives_ranked_first(z1.clone().detach(), z2.clone().detach());
        let p1 = self.predictor.forward(z1);
        let p2 = self.predictor.forward(z2);
        let t1 = self.target(view1);
        let t2 = self.target(view2);
        StepOutput::new(byol_symmetric_loss(p1, p2, t1, t2), Some(correct), anchors)
    }

    /// Moves the target with the decay of this step of the run.
    fn after_step(self, after: &AfterStep<'_>) -> Self {
        let tau = repr_objectives::target_decay(after.step, after.total, self.base_decay);
        self.update_target(tau)
    }

    backbone_field!();

    /// The target encoder and projector start again as copies of the online ones.
    fn reset_copies(self) -> Self {
        Self {
            target_backbone: momentum_copy(&self.backbone),
            target_projector: momentum_copy(&self.projector),
            ..self
        }
    }
}

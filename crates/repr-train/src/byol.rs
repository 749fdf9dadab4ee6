//! The BYOL method (Grill et al. 2020, "Bootstrap Your Own Latent"): an online network
//! (encoder, projector, predictor) regresses the target network's projection of the other view;
//! the target is a momentum copy of the online encoder and projector. No negatives.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use repr_backbones::Backbone;
use repr_objectives::momentum::{momentum_copy, momentum_update};
use repr_objectives::{ProjectionHead, ProjectionHeadConfig, byol_symmetric_loss};

use crate::StepOutput;
use crate::simclr::positives_ranked_first;

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
}

impl Byol {
    /// Online networks around `backbone`, projector and predictor MLPs `hidden` wide with
    /// BatchNorm (BYOL's `Linear → BN → ReLU → Linear`) ending at `output`; the target starts
    /// as a copy of the online encoder and projector.
    pub fn new(backbone: Backbone, hidden: usize, output: usize, device: &Device) -> Self {
        let head = |input| {
            ProjectionHeadConfig {
                input,
                hidden,
                output,
                layers: 2,
                batch_norm: true,
            }
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

    /// The symmetric BYOL loss of two views of the same images; each view goes through the
    /// networks on its own (BatchNorm statistics per view). The metric is the online
    /// projections' view-matching accuracy (as SimCLR's), which falls to chance if the
    /// representation collapses.
    pub fn step(&self, view1: Tensor<4>, view2: Tensor<4>) -> StepOutput {
        let anchors = 2 * view1.dims()[0];
        let z1 = self.project(view1.clone());
        let z2 = self.project(view2.clone());
        let correct = positives_ranked_first(z1.clone().detach(), z2.clone().detach());
        let p1 = self.predictor.forward(z1);
        let p2 = self.predictor.forward(z2);
        let t1 = self.target(view1);
        let t2 = self.target(view2);
        StepOutput {
            loss: byol_symmetric_loss(p1, p2, t1, t2),
            correct: Some(correct),
            counted: anchors,
        }
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

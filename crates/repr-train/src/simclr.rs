//! The SimCLR method (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual
//! Representations"): encoder + projection head, NT-Xent between two augmented views.

use burn::module::Module;
use burn::tensor::{Int, Tensor};
use repr_backbones::Backbone;
use repr_objectives::{NtXentLoss, ProjectionHead};

use crate::StepOutput;

/// An encoder and its projection head. The representation used downstream is the encoder's
/// pooled output; the head only serves the loss (Chen et al. 2020, Sec. 4.2).
#[derive(Module, Debug)]
pub struct SimClr {
    /// The encoder (built without a classifier).
    pub backbone: Backbone,
    /// MLP mapping pooled features to the space where NT-Xent compares views.
    pub head: ProjectionHead,
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

    /// NT-Xent of two views of the same images. Each view goes through the encoder on its own,
    /// so BatchNorm statistics are per view, as in the reference implementations. The step's
    /// metric is the contrastive accuracy: anchors whose most similar other view is their
    /// positive.
    pub fn step(&self, view1: Tensor<4>, view2: Tensor<4>, loss_fn: &NtXentLoss) -> StepOutput {
        let anchors = 2 * view1.dims()[0];
        let z1 = self.project(view1);
        let z2 = self.project(view2);
        let correct = positives_ranked_first(z1.clone().detach(), z2.clone().detach());
        StepOutput {
            loss: loss_fn.forward(z1, z2),
            correct: Some(correct),
            counted: anchors,
        }
    }
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

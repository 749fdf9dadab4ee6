//! BYOL: Grill et al. 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised
//! Learning" (arXiv:2006.07733), Sec. 3.1 and Algorithm 1.
//!
//! An online network (encoder, projector, predictor) predicts the projection a target network
//! (encoder, projector; an exponential moving average of the online one, see
//! [`crate::momentum`]) gives the other view of the same image. No negatives.
//!
//! The projector and the predictor are BYOL's MLP `Linear(4096) → BN → ReLU → Linear(256)`:
//! [`ProjectionHeadConfig`](crate::ProjectionHeadConfig) with `layers: 2, batch_norm: true`
//! (see [`byol_symmetric_loss`]). One difference, without effect on what the MLP computes: its
//! first linear layer has no bias, because the BatchNorm that follows subtracts any constant
//! shift (in training mode the batch mean, in evaluation mode the running mean, which then
//! tracks the bias too) and adds its own `β`.

use burn::tensor::Tensor;

/// The BYOL regression loss of one view pair, averaged over the batch (Eq. 2):
/// `‖p̄ − z̄‖² = 2 − 2·⟨p, z⟩ / (‖p‖·‖z‖)` with the online prediction `p` and the target
/// projection `z`, which is detached (the target gets no gradient).
///
/// Norms are clamped below at 1e-12 (as `F.normalize` does), so a zero vector gives a finite
/// loss of 2.
///
/// # Shapes
/// - `prediction`, `target`: `[batch, dim]`
/// - output: `[1]`
pub fn byol_loss(prediction: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let target = target.detach();
    let unit = |x: Tensor<2>| {
        let norm = x.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        x / norm
    };
    let cosine = (unit(prediction) * unit(target)).sum_dim(1); // [batch, 1]
    (cosine.neg().mul_scalar(2.0).add_scalar(2.0))
        .mean()
        .reshape([1])
}

/// The symmetrised loss of Eq. 2: the online network's prediction of view 1 against the
/// target's projection of view 2, plus the same with the views swapped. Each term is a mean
/// over the batch, so the loss is in `[0, 8]`.
///
/// ```
/// use burn::tensor::{Device, Distribution, Tensor};
/// use repr_objectives::{ProjectionHeadConfig, byol_symmetric_loss};
///
/// let device = Device::flex().autodiff();
/// // BYOL's predictor: 256 → Linear 4096 → BN → ReLU → Linear 256.
/// let predictor = ProjectionHeadConfig { input: 256, hidden: 4096, output: 256, layers: 2,
///     batch_norm: true }.init(&device);
/// assert_eq!(predictor.hidden.len(), 1);
/// assert_eq!(predictor.output.weight.dims(), [4096, 256]);
/// // Online projections z1, z2 and target projections t1, t2 of two views of 8 images.
/// let z = || Tensor::<2>::random([8, 256], Distribution::Normal(0.0, 1.0), &device);
/// let (z1, z2, t1, t2) = (z(), z(), z(), z());
/// let loss = byol_symmetric_loss(predictor.forward(z1), predictor.forward(z2), t1, t2);
/// let value: f32 = loss.into_scalar();
/// assert!(value > 0.0 && value < 8.0);
/// ```
///
/// # Shapes
/// - every input: `[batch, dim]`
/// - output: `[1]`
pub fn byol_symmetric_loss(
    prediction_1: Tensor<2>,
    prediction_2: Tensor<2>,
    target_1: Tensor<2>,
    target_2: Tensor<2>,
) -> Tensor<1> {
    byol_loss(prediction_1, target_2) + byol_loss(prediction_2, target_1)
}

/// The target network's decay rate at `step` of `total` (Sec. 3.2):
/// `τ = 1 − (1 − τ_base)·(cos(π·step/total) + 1)/2`, from `τ_base` at the first step to 1 at
/// the last (BYOL: `τ_base = 0.996`).
pub fn target_decay(step: usize, total: usize, base: f64) -> f64 {
    let progress = if total == 0 {
        1.0
    } else {
        (step as f64 / total as f64).min(1.0)
    };
    1.0 - (1.0 - base) * ((std::f64::consts::PI * progress).cos() + 1.0) / 2.0
}

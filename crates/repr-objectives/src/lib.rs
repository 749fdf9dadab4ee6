//! Losses and heads for learning image representations.
//!
//! Each loss has a `Config` (hyperparameters, validated) and a module with `forward` (reduced
//! to a scalar) and `forward_no_reduction` (one value per sample, anchor or triplet slot).
//!
//! - [`CrossEntropyLoss`]: supervised classification, with label smoothing.
//! - [`NtXentLoss`] and [`ProjectionHead`]: SimCLR.
//! - [`SupConLoss`]: supervised contrastive learning (Khosla et al. 2020).
//! - [`TripletLoss`] over a [`Distance`] with a [`Miner`]: metric learning (FaceNet, Hermans et
//!   al. 2017).
//! - [`MaskedPatchConfig`], [`CorruptionPlan`] and [`MaskedPatchHead`]: masked-patch prediction
//!   for ViTs (Dosovitskiy et al. 2020).
//! - [`byol_loss`], [`target_decay`] and [`momentum`] (the target network as an exponential
//!   moving average): BYOL (Grill et al. 2020).
//!
//! A projection head trained with NT-Xent in your own Burn loop, with Burn's AdamW:
//!
//! ```
//! use burn::optim::{AdamWConfig, GradientsParams};
//! use burn::tensor::{Device, Distribution, Tensor};
//! use repr_objectives::{NtXentLossConfig, ProjectionHeadConfig};
//!
//! let device = Device::flex().autodiff();
//! let mut head =
//!     ProjectionHeadConfig { input: 32, hidden: 64, output: 16, layers: 2, batch_norm: false }
//!         .init(&device);
//! let nt_xent = NtXentLossConfig::new().with_temperature(0.5).init()?;
//! let mut optimizer = AdamWConfig::new().init();
//! // Sixteen encoder outputs; each step sees two noisy views of every one.
//! let features = Tensor::<2>::random([16, 32], Distribution::Normal(0.0, 1.0), &device);
//! let view = || features.clone() + Tensor::random([16, 32], Distribution::Normal(0.0, 0.3), &device);
//! let mut losses = Vec::new();
//! for _ in 0..30 {
//!     let loss = nt_xent.forward(head.forward(view()), head.forward(view()));
//!     losses.push(loss.clone().into_scalar::<f32>());
//!     let grads = GradientsParams::from_grads(loss.backward(), &head);
//!     head = optimizer.step(1e-2, head, grads);
//! }
//! let last: f32 = losses[25..].iter().sum::<f32>() / 5.0;
//! assert!(last < 0.8 * losses[0], "NT-Xent {} -> {last}", losses[0]);
//! # Ok::<(), repr_objectives::ObjectiveError>(())
//! ```
#![warn(missing_docs)]

/// `with_<field>(value)` builder methods for the public fields of a config.
macro_rules! with_setters {
    ($ty:ident { $($setter:ident => $field:ident: $fty:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("This config with `", stringify!($field), "` set to `value`.")]
                pub fn $setter(mut self, value: $fty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

mod byol;
mod cross_entropy;
mod distance;
mod error;
mod masked_patch;
mod masked_patch_plan;
mod miner;
pub mod momentum;
mod nt_xent;
mod projection;
mod reduction;
mod supcon;
mod triplet;

pub use byol::{byol_loss, byol_symmetric_loss, target_decay};
pub use cross_entropy::{CrossEntropyLoss, CrossEntropyLossConfig};
pub use distance::Distance;
pub use error::ObjectiveError;
pub use masked_patch::{MaskedPatchConfig, MaskedPatchTarget, PatchTargets, TargetTensors};
pub use masked_patch_plan::{CorruptionPlan, MaskedPatchHead, MaskedPatchOutput, PatchAction};
pub use miner::{MinedTriplets, Miner, Triplet};
pub use nt_xent::{NtXentLoss, NtXentLossConfig};
pub use projection::{ProjectionBlock, ProjectionHead, ProjectionHeadConfig};
pub use reduction::Reduction;
pub use supcon::{SupConLoss, SupConLossConfig};
pub use triplet::{
    TripletCounts, TripletLoss, TripletLossConfig, TripletOutput, TripletReduction, TripletTerms,
    no_valid_triplet_warned,
};

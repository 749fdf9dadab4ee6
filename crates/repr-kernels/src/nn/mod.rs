//! Layers with burn-nn's parameters and records that run on this crate's kernels on flex.

mod batch_norm;
mod conv2d;
mod layer_norm;

pub use batch_norm::BatchNorm;
pub use conv2d::Conv2d;
pub use layer_norm::LayerNorm;

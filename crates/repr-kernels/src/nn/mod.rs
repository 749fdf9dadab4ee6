//! Layers with burn-nn's parameters and records that run on this crate's kernels on flex.

mod batch_norm;
mod conv2d;

pub use batch_norm::BatchNorm;
pub use conv2d::Conv2d;

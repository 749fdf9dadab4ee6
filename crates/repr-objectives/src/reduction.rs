//! How per-sample losses are reduced to one number.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// How `forward` reduces the per-sample losses of `forward_no_reduction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// Mean over the samples (PyTorch's default).
    #[default]
    Mean,
    /// Sum over the samples.
    Sum,
}

impl Reduction {
    /// Reduces `[n]` per-sample losses to a `[1]` tensor.
    pub fn apply(self, losses: Tensor<1>) -> Tensor<1> {
        match self {
            Reduction::Mean => losses.mean(),
            Reduction::Sum => losses.sum(),
        }
    }
}

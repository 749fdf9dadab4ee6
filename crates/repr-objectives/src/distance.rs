//! Distances between embeddings, for metric learning.

use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

use crate::nt_xent::l2_normalize;

/// A dissimilarity between embeddings: **smaller always means closer**, whatever the metric, so
/// miners and losses never need to know which one is in use (pytorch-metric-learning's
/// `is_inverted`, hidden here by turning the cosine similarity into `1 - cos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distance {
    /// `‖a - b‖₂` (FaceNet, Schroff et al. 2015; Hermans et al. 2017 recommend it over the
    /// squared distance).
    #[default]
    Euclidean,
    /// `‖a - b‖₂²`.
    SquaredEuclidean,
    /// `1 - a·b / (‖a‖ ‖b‖)`, in `[0, 2]`.
    Cosine,
}

/// Squared distances below this are clamped before the square root: the derivative of `√x` is
/// infinite at 0 (two equal embeddings), and `0 · ∞` would be NaN.
const SQRT_EPS: f64 = 1e-12;

impl Distance {
    /// The matrix of distances between all rows, with exactly 0 on the diagonal.
    ///
    /// Computed from one Gram matrix (`‖a‖² + ‖b‖² - 2 a·b`, clamped at 0), the cost of one
    /// `[n, d] × [d, n]` product; in float32 this loses about `1e-7 · ‖a‖²` of absolute precision
    /// compared with direct differences.
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`
    /// - output: `[n, n]`
    pub fn pairwise(&self, embeddings: Tensor<2>) -> Tensor<2> {
        let [n, _] = embeddings.dims();
        let device = embeddings.device();
        let off_diagonal: Tensor<2, Bool> = Tensor::<2, Bool>::diag_mask([n, n], 0, &device);
        let distances = match self {
            Distance::Euclidean => squared_euclidean(embeddings).clamp_min(SQRT_EPS).sqrt(),
            Distance::SquaredEuclidean => squared_euclidean(embeddings),
            Distance::Cosine => {
                let u = l2_normalize(embeddings);
                u.clone().matmul(u.transpose()).neg().add_scalar(1.0)
            }
        };
        // A sample is never its own positive or negative; the constant keeps it out of the graph.
        distances.mask_fill(off_diagonal.bool_not(), 0.0)
    }
}

/// `‖a_i - a_j‖²` for all pairs, clamped at 0 against rounding.
///
/// # Shapes
/// - `x`: `[n, d]`
/// - output: `[n, n]`
fn squared_euclidean(x: Tensor<2>) -> Tensor<2> {
    let squared_norms = x.clone().square().sum_dim(1); // [n, 1]
    let gram = x.clone().matmul(x.transpose()); // [n, n]
    (squared_norms.clone() + squared_norms.transpose() - gram * 2.0).clamp_min(0.0)
}

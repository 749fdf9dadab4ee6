//! The supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning").

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::ObjectiveError;

/// Configuration of [`SupConLoss`] (a config file's `[method.loss]` of the `supcon` method);
/// unset fields take the defaults, unknown ones are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupConLossConfig {
    /// Temperature τ > 0 dividing the cosine similarities (the paper and
    /// pytorch-metric-learning: 0.1).
    pub temperature: f64,
}

impl Default for SupConLossConfig {
    fn default() -> Self {
        Self { temperature: 0.1 }
    }
}

with_setters!(SupConLossConfig {
    with_temperature => temperature: f64,
});

impl SupConLossConfig {
    /// The defaults: temperature 0.1.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the temperature.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        crate::error::check_temperature("temperature", self.temperature)
    }

    /// Builds the loss after [`validate`](Self::validate).
    pub fn init(&self) -> Result<SupConLoss, ObjectiveError> {
        self.validate()?;
        Ok(SupConLoss {
            temperature: self.temperature,
        })
    }
}

/// Supervised contrastive loss, `L^sup_out` of Khosla et al. 2020 (eq. 2), as
/// pytorch-metric-learning's `SupConLoss` computes it.
///
/// The rows of `embeddings` are L2-normalised to `u`; with `s_ik = u_i·u_k / τ`, `P(i)` the other
/// rows with the label of row `i` and `A(i)` all other rows, the loss of anchor `i` is
/// `l_i = -1/|P(i)| Σ_{p∈P(i)} [s_ip - log Σ_{a∈A(i)} exp(s_ia)]`. `forward` averages over the
/// anchors that have a positive, and is 0 for a batch without any positive pair. On two views
/// of images whose labels are all different it is NT-Xent (SimCLR) exactly: the only positive of
/// each view is the other view of its image.
///
/// Across devices: the loss sees the rows it is given; gathering embeddings and labels from every
/// device first gives the loss of the global batch.
#[derive(Debug, Clone)]
pub struct SupConLoss {
    temperature: f64,
}

impl SupConLoss {
    /// The temperature τ.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The mean loss over the anchors with a positive (0 when none has one).
    ///
    /// # Shapes
    /// - `embeddings`: `[n, dim]`
    /// - `labels`: `[n]`
    /// - output: `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let (losses, has_positive) = self.forward_no_reduction(embeddings, labels);
        losses.sum() / has_positive.sum().clamp_min(1.0)
    }

    /// The loss of every anchor (0 for an anchor without a positive) and which anchors have one
    /// (1 or 0).
    ///
    /// # Shapes
    /// - `embeddings`: `[n, dim]`
    /// - `labels`: `[n]`
    /// - output: `([n], [n])`
    ///
    /// # Panics
    /// If `labels` does not have one label per row.
    pub fn forward_no_reduction(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> (Tensor<1>, Tensor<1>) {
        let [n, _] = embeddings.dims();
        assert_eq!(
            labels.dims(),
            [n],
            "SupConLoss: embeddings are {:?} but labels are {:?} (one label per row)",
            embeddings.dims(),
            labels.dims()
        );
        let device = embeddings.device();
        if n < 2 {
            // One row has no other row: no positive, no denominator.
            return (Tensor::zeros([n], &device), Tensor::zeros([n], &device));
        }
        let norm = embeddings
            .clone()
            .square()
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        let u = embeddings / norm;
        let s = u.clone().matmul(u.transpose()) / self.temperature;
        let is_self = Tensor::<2>::eye(n, &device).equal_elem(1.0);
        // log Σ_{a≠i} exp(s_ia), shifted by the largest term so that it stays finite at any τ
        // (the sum is then at least 1); the diagonal is left out before the exponential.
        let others = s.clone().mask_fill(is_self.clone(), f32::NEG_INFINITY);
        let row_max = others.clone().max_dim(1).detach();
        let log_denominator = (others - row_max.clone()).exp().sum_dim(1).log() + row_max;
        let log_prob = s - log_denominator;
        let same = labels
            .clone()
            .reshape([n, 1])
            .expand([n, n])
            .equal(labels.reshape([1, n]).expand([n, n]));
        let positive = same.float().mask_fill(is_self, 0.0);
        let positives = positive.clone().sum_dim(1);
        let mean_log_prob = (positive * log_prob).sum_dim(1) / positives.clone().clamp_min(1.0);
        let has_positive = positives.greater_elem(0.0).float();
        (
            (mean_log_prob.neg() * has_positive.clone()).reshape([n]),
            has_positive.reshape([n]),
        )
    }
}

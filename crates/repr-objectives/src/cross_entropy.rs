//! Cross-entropy over class logits, with label smoothing.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::{ObjectiveError, Reduction};

/// Configuration of [`CrossEntropyLoss`] (a config file's `[method.loss]` of the supervised
/// method); unset fields take the defaults, unknown ones are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrossEntropyLossConfig {
    /// Label smoothing ε in `[0, 1)`: the target distribution is `(1 - ε)·onehot + ε/K`
    /// (Szegedy et al. 2016, "Rethinking the Inception Architecture"; PyTorch's semantics).
    pub smoothing: f64,
    /// How per-sample losses are reduced by `forward`.
    pub reduction: Reduction,
}

impl Default for CrossEntropyLossConfig {
    fn default() -> Self {
        Self {
            smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

with_setters!(CrossEntropyLossConfig {
    with_smoothing => smoothing: f64,
    with_reduction => reduction: Reduction,
});

impl CrossEntropyLossConfig {
    /// The defaults: no smoothing, mean over the batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the hyperparameters, naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(ObjectiveError::OutOfRange {
                field: "smoothing",
                value: self.smoothing,
                allowed: "0 <= smoothing < 1",
            });
        }
        Ok(())
    }

    /// Builds the loss after [`validate`](Self::validate).
    pub fn init(&self) -> Result<CrossEntropyLoss, ObjectiveError> {
        self.validate()?;
        Ok(CrossEntropyLoss {
            smoothing: self.smoothing,
            reduction: self.reduction,
        })
    }
}

/// Cross-entropy between softmax(logits) and (optionally smoothed) one-hot targets.
///
/// `l_i = -Σ_c q_ic · log_softmax(x_i)_c` with `q_ic = (1 - ε)[c = y_i] + ε/K`. The log-softmax
/// subtracts the row maximum, so logits in the hundreds do not overflow.
#[derive(Debug, Clone)]
pub struct CrossEntropyLoss {
    smoothing: f64,
    reduction: Reduction,
}

impl CrossEntropyLoss {
    /// The reduced loss.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - `targets`: `[batch]`, class indices in `0..classes`
    /// - output: `[1]`
    pub fn forward(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        self.reduction
            .apply(self.forward_no_reduction(logits, targets))
    }

    /// One loss per sample.
    ///
    /// # Shapes
    /// - `logits`: `[batch, classes]`
    /// - `targets`: `[batch]`
    /// - output: `[batch]`
    pub fn forward_no_reduction(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [batch, classes] = logits.dims();
        let log_probs = log_softmax(logits, 1);
        let target_log_prob = log_probs
            .clone()
            .gather(1, targets.reshape([batch, 1]))
            .reshape([batch]);
        let nll = target_log_prob.neg();
        if self.smoothing == 0.0 {
            return nll;
        }
        // The uniform part of the smoothed target: -ε/K Σ_c log p_c.
        let uniform = log_probs.sum_dim(1).reshape([batch]).neg() / classes as f64;
        nll * (1.0 - self.smoothing) + uniform * self.smoothing
    }
}

//! NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

use burn::config::Config;
use burn::tensor::{Bool, Tensor};

use crate::ObjectiveError;

/// Configuration of [`NtXentLoss`].
#[derive(Config, Debug)]
pub struct NtXentLossConfig {
    /// Temperature τ > 0 dividing the cosine similarities (SimCLR uses 0.1–1.0; 0.5 on CIFAR-10).
    #[config(default = 0.5)]
    pub temperature: f64,
    /// Anchors (rows of the `[2N, 2N + M]` similarity matrix) handled per step of the forward
    /// pass. `None` builds the whole matrix at once; `Some(c)` builds `c` rows at a time, so the
    /// largest single tensor is `[c, 2N + M]` instead of `[2N, 2N + M]`. The value is the same.
    #[config(default = "None")]
    pub chunk_size: Option<usize>,
}

impl NtXentLossConfig {
    /// Checks the hyperparameters, naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(ObjectiveError::OutOfRange {
                field: "temperature",
                value: self.temperature,
                allowed: "a finite temperature > 0",
            });
        }
        if self.chunk_size == Some(0) {
            return Err(ObjectiveError::OutOfRange {
                field: "chunk_size",
                value: 0.0,
                allowed: "None or a chunk size >= 1",
            });
        }
        Ok(())
    }

    /// Builds the loss after [`validate`](Self::validate).
    pub fn init(&self) -> Result<NtXentLoss, ObjectiveError> {
        self.validate()?;
        Ok(NtXentLoss {
            temperature: self.temperature,
            chunk_size: self.chunk_size,
        })
    }
}

/// NT-Xent (normalised temperature-scaled cross-entropy), the contrastive loss of SimCLR:
/// Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive Learning of Visual
/// Representations", Algorithm 1.
///
/// The `2N` rows of `z = [z1; z2]` are L2-normalised to `u`; with `s_kj = u_k·u_j / τ`, the loss
/// of anchor `k` is `l_k = -s_{k,pos(k)} + log Σ_{j≠k} exp(s_kj)`, where `pos(k) = (k + N) mod 2N`
/// is the other view of the same image and the sum runs over the `2N - 1` other rows (the
/// positive included). `forward` takes the mean over the `2N` anchors, as the paper does.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use repr_objectives::NtXentLossConfig;
///
/// let device = Device::flex();
/// let loss = NtXentLossConfig::new().with_temperature(0.5).init()?;
/// // All 2N = 4 embeddings equal: every similarity is 1/τ and the loss is ln(2N - 1).
/// let z = Tensor::<2>::ones([2, 3], &device);
/// let value: f32 = loss.forward(z.clone(), z).into_scalar();
/// assert!((value - 3f32.ln()).abs() < 1e-5);
/// # Ok::<(), repr_objectives::ObjectiveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NtXentLoss {
    temperature: f64,
    chunk_size: Option<usize>,
}

/// `F.normalize`'s eps: rows are divided by `max(‖z‖, 1e-12)`.
const NORM_EPS: f64 = 1e-12;

/// Rows divided by their L2 norm (at least [`NORM_EPS`]).
///
/// The clamp is applied to the squared norm, before the square root, so that an all-zero row
/// gets a zero gradient instead of `0 · ∞ = NaN` from the square root's derivative.
pub(crate) fn l2_normalize(z: Tensor<2>) -> Tensor<2> {
    let norm = z
        .clone()
        .square()
        .sum_dim(1)
        .clamp_min(NORM_EPS * NORM_EPS)
        .sqrt();
    z / norm
}

impl NtXentLoss {
    /// The loss, the mean over the `2N` anchors.
    ///
    /// # Shapes
    /// - `z1`, `z2`: `[N, D]`, the projections of the two views; row `i` of each comes from the
    ///   same image
    /// - output: `[1]`
    pub fn forward(&self, z1: Tensor<2>, z2: Tensor<2>) -> Tensor<1> {
        self.forward_no_reduction(z1, z2).mean()
    }

    /// One loss per anchor: entries `0..N` have the rows of `z1` as anchors, `N..2N` those of `z2`.
    ///
    /// # Shapes
    /// - `z1`, `z2`: `[N, D]`
    /// - output: `[2N]`
    pub fn forward_no_reduction(&self, z1: Tensor<2>, z2: Tensor<2>) -> Tensor<1> {
        self.forward_with_negatives_no_reduction(z1, z2, None)
    }

    /// The mean loss with `M` extra negatives in every denominator, for example the
    /// projections gathered from other devices: they are compared with every anchor but are not
    /// anchors themselves and have no positive. `None` is the same as [`forward`](Self::forward).
    ///
    /// # Shapes
    /// - `z1`, `z2`: `[N, D]`
    /// - `extra_negatives`: `[M, D]`
    /// - output: `[1]`
    pub fn forward_with_negatives(
        &self,
        z1: Tensor<2>,
        z2: Tensor<2>,
        extra_negatives: Option<Tensor<2>>,
    ) -> Tensor<1> {
        self.forward_with_negatives_no_reduction(z1, z2, extra_negatives)
            .mean()
    }

    /// One loss per anchor, with extra negatives (see
    /// [`forward_with_negatives`](Self::forward_with_negatives)).
    ///
    /// # Shapes
    /// - `z1`, `z2`: `[N, D]`
    /// - `extra_negatives`: `[M, D]`
    /// - output: `[2N]`
    pub fn forward_with_negatives_no_reduction(
        &self,
        z1: Tensor<2>,
        z2: Tensor<2>,
        extra_negatives: Option<Tensor<2>>,
    ) -> Tensor<1> {
        let [n, d] = z1.dims();
        assert_eq!(
            z2.dims(),
            [n, d],
            "NT-Xent: z1 is [{n}, {d}] but z2 is {:?}; both views need the same shape",
            z2.dims()
        );
        assert!(n > 0, "NT-Xent needs at least one pair of views");
        let inv_t = 1.0 / self.temperature;

        let u1 = l2_normalize(z1);
        let u2 = l2_normalize(z2);
        // s_{k,pos(k)} is the same for k and k + N: the cosine of the two views of image k.
        let positive = (u1.clone() * u2.clone()).sum_dim(1).reshape([n]) * inv_t;
        let positive = Tensor::cat(vec![positive.clone(), positive], 0); // [2n]

        let anchors = Tensor::cat(vec![u1, u2], 0); // [2n, d]
        let mut columns = vec![anchors.clone()];
        if let Some(extra) = extra_negatives {
            let [_, d_extra] = extra.dims();
            assert_eq!(
                d_extra, d,
                "NT-Xent: extra negatives have {d_extra} features, the views {d}"
            );
            columns.push(l2_normalize(extra));
        }
        let columns_t = Tensor::cat(columns, 0).transpose(); // [d, 2n + m]

        let rows = 2 * n;
        let chunk = self.chunk_size.unwrap_or(rows).min(rows);
        let mut log_denominators = Vec::with_capacity(rows.div_ceil(chunk));
        let mut start = 0;
        while start < rows {
            let len = chunk.min(rows - start);
            let block = anchors.clone().narrow(0, start, len);
            log_denominators.push(log_sum_exp_without_self(
                block.matmul(columns_t.clone()) * inv_t,
                start,
            ));
            start += len;
        }
        Tensor::cat(log_denominators, 0) - positive
    }
}

/// `log Σ_{j ≠ start + i} exp(s_ij)` for each row `i` of a block of the similarity matrix whose
/// first row is anchor `start`.
///
/// # Shapes
/// - `similarities`: `[rows, columns]`
/// - output: `[rows]`
fn log_sum_exp_without_self(similarities: Tensor<2>, start: usize) -> Tensor<1> {
    let [rows, columns] = similarities.dims();
    let device = similarities.device();
    // diag_mask is false on the shifted diagonal (the anchors themselves), true elsewhere.
    let is_self: Tensor<2, Bool> =
        Tensor::<2, Bool>::diag_mask([rows, columns], start as i64, &device).bool_not();
    let masked = similarities.mask_fill(is_self, f32::NEG_INFINITY);
    // Subtracting the row maximum keeps exp finite for small temperatures; the maximum cancels
    // out of the value, so it is detached rather than differentiated.
    let max = masked.clone().max_dim(1).detach(); // [rows, 1]
    let sum = (masked - max.clone()).exp().sum_dim(1);
    (sum.log() + max).reshape([rows])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_temperature_and_chunk_size() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = NtXentLossConfig::new()
                .with_temperature(bad)
                .init()
                .unwrap_err();
            assert!(err.to_string().contains("temperature"), "{err}");
        }
        let err = NtXentLossConfig::new()
            .with_chunk_size(Some(0))
            .init()
            .unwrap_err();
        assert!(err.to_string().contains("chunk_size"), "{err}");
    }
}

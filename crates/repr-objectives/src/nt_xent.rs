//! NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

use burn::tensor::{Bool, Int, Tensor};

use serde::{Deserialize, Serialize};

use crate::ObjectiveError;

/// Configuration of [`NtXentLoss`] (a config file's `[method.loss]` of SimCLR); unset fields take
/// the defaults, unknown ones are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtXentLossConfig {
    /// Temperature τ > 0 dividing the cosine similarities (SimCLR uses 0.1–1.0; 0.5 on CIFAR-10).
    pub temperature: f64,
    /// Anchors (rows of the `[2N, 2N + M]` similarity matrix) handled at a time. `None` builds
    /// the whole matrix, and autodiff keeps a few `[2N, 2N + M]` tensors for the backward pass.
    /// `Some(c)` builds `c` rows at a time: the reduced loss then also forms its gradient block
    /// by block (outside the autodiff graph), so memory is `O(c·(2N + M) + (2N + M)·D)` in both
    /// passes. The value and the gradient are the same either way.
    pub chunk_size: Option<usize>,
}

impl Default for NtXentLossConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            chunk_size: None,
        }
    }
}

with_setters!(NtXentLossConfig {
    with_temperature => temperature: f64,
    with_chunk_size => chunk_size: Option<usize>,
});

impl NtXentLossConfig {
    /// The defaults: temperature 0.5, the whole similarity matrix at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the hyperparameters, naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        crate::error::check_temperature("temperature", self.temperature)?;
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

/// The normalised rows of one call: anchors `u = [u1; u2]` and the columns `w = [u; v]` they are
/// compared with (`v`: the normalised extra negatives).
struct Normalised {
    n: usize,
    anchors: Tensor<2>,
    extra: Option<Tensor<2>>,
}

impl Normalised {
    fn new(z1: Tensor<2>, z2: Tensor<2>, extra_negatives: Option<Tensor<2>>) -> Self {
        let [n, d] = z1.dims();
        assert_eq!(
            z2.dims(),
            [n, d],
            "NT-Xent: z1 is [{n}, {d}] but z2 is {:?}; both views need the same shape",
            z2.dims()
        );
        assert!(n > 0, "NT-Xent needs at least one pair of views");
        let extra = extra_negatives.map(|extra| {
            let [_, d_extra] = extra.dims();
            assert_eq!(
                d_extra, d,
                "NT-Xent: extra negatives have {d_extra} features, the views {d}"
            );
            l2_normalize(extra)
        });
        Self {
            n,
            anchors: Tensor::cat(vec![l2_normalize(z1), l2_normalize(z2)], 0), // [2n, d]
            extra,
        }
    }

    /// `w = [u; v]`, `[2n + m, d]`.
    fn columns(&self) -> Tensor<2> {
        match &self.extra {
            Some(v) => Tensor::cat(vec![self.anchors.clone(), v.clone()], 0),
            None => self.anchors.clone(),
        }
    }

    /// `pos(k) = (k + n) mod 2n` for the anchors `start..start + len`, `[len]`.
    fn positives(&self, start: usize, len: usize) -> Tensor<1, Int> {
        let device = self.anchors.device();
        Tensor::<1, Int>::arange(start as i64..(start + len) as i64, &device)
            .add_scalar(self.n as i64)
            .remainder_scalar(2 * self.n as i64)
    }
}

/// The anchors `start..start + len` in blocks of at most `chunk` rows.
fn blocks(rows: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..rows)
        .step_by(chunk)
        .map(move |start| (start, chunk.min(rows - start)))
}

impl NtXentLoss {
    /// The loss, the mean over the `2N` anchors.
    ///
    /// # Shapes
    /// - `z1`, `z2`: `[N, D]`, the projections of the two views; row `i` of each comes from the
    ///   same image
    /// - output: `[1]`
    pub fn forward(&self, z1: Tensor<2>, z2: Tensor<2>) -> Tensor<1> {
        self.forward_with_negatives(z1, z2, None)
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
    /// With a `chunk_size` on an autodiff device, the value and the gradient are computed block
    /// by block outside the autodiff graph (see [`NtXentLossConfig::chunk_size`]), so neither
    /// pass holds a `[2N, 2N + M]` matrix.
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
        match self.chunk_size {
            Some(chunk) if z1.device().is_autodiff() => {
                self.chunked_mean(Normalised::new(z1, z2, extra_negatives), chunk)
            }
            _ => self
                .forward_with_negatives_no_reduction(z1, z2, extra_negatives)
                .mean(),
        }
    }

    /// One loss per anchor, with extra negatives (see
    /// [`forward_with_negatives`](Self::forward_with_negatives)). With a `chunk_size` the
    /// similarity blocks are built one at a time, but autodiff keeps each block's graph.
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
        let rows = Normalised::new(z1, z2, extra_negatives);
        let n = rows.n;
        let inv_t = 1.0 / self.temperature;
        // s_{k,pos(k)} is the same for k and k + N: the cosine of the two views of image k.
        let u1 = rows.anchors.clone().narrow(0, 0, n);
        let u2 = rows.anchors.clone().narrow(0, n, n);
        let positive = (u1 * u2).sum_dim(1).reshape([n]) * inv_t;
        let positive = Tensor::cat(vec![positive.clone(), positive], 0); // [2n]

        let columns_t = rows.columns().transpose(); // [d, 2n + m]
        let chunk = self.chunk_size.unwrap_or(2 * n);
        let log_denominators = blocks(2 * n, chunk)
            .map(|(start, len)| {
                let block = rows.anchors.clone().narrow(0, start, len);
                let similarities = without_self(block.matmul(columns_t.clone()) * inv_t, start);
                log_sum_exp(similarities).reshape([len])
            })
            .collect();
        Tensor::cat(log_denominators, 0) - positive
    }

    /// The mean loss, block by block, with its gradient formed explicitly so that autodiff
    /// only records the normalisation.
    ///
    /// With `P` the softmax of each anchor's row over `j ≠ k` and `Y` the one-hot of `pos(k)`,
    /// `∂L/∂s = A = (P - Y) / 2N`, and since `s_kj = u_k·w_j / τ`:
    /// `∂L/∂u = A w / τ + (Aᵀ u / τ)[..2N]`, `∂L/∂v = (Aᵀ u / τ)[2N..]`. The loss returned is
    /// `L + S - detach(S)` with `S = Σ detach(∂L/∂u) ⊙ u + Σ detach(∂L/∂v) ⊙ v`: its value is
    /// `L` and its gradient is exactly the above.
    fn chunked_mean(&self, rows: Normalised, chunk: usize) -> Tensor<1> {
        let n = rows.n;
        let inv_t = 1.0 / self.temperature;
        let anchors = rows.anchors.clone().detach(); // [2n, d]
        let columns = rows.columns().detach(); // [2n + m, d]
        let [num_columns, d] = columns.dims();
        let columns_t = columns.clone().transpose();
        let scale = inv_t / (2 * n) as f64;

        let mut total = Tensor::<1>::zeros([1], &anchors.device());
        let mut grad_anchors = Vec::new();
        let mut grad_columns = Tensor::<2>::zeros([num_columns, d], &anchors.device());
        for (start, len) in blocks(2 * n, chunk) {
            let block = anchors.clone().narrow(0, start, len); // [c, d]
            let similarities = block.clone().matmul(columns_t.clone()) * inv_t; // [c, 2n + m]
            let positives = rows.positives(start, len).one_hot::<2>(num_columns).float();
            let positive = (similarities.clone() * positives.clone()).sum_dim(1); // [c, 1]
            let masked = without_self(similarities, start);
            let log_denominator = log_sum_exp(masked.clone()); // [c, 1]
            total = total + (log_denominator.clone() - positive).sum();
            let softmax = (masked - log_denominator).exp(); // exactly 0 on self
            let a = (softmax - positives) * scale; // [c, 2n + m], with the 1/τ folded in
            grad_anchors.push(a.clone().matmul(columns.clone()));
            grad_columns = grad_columns + a.transpose().matmul(block);
        }
        let grad_anchors = Tensor::cat(grad_anchors, 0) + grad_columns.clone().narrow(0, 0, 2 * n);
        let mut surrogate = (grad_anchors * rows.anchors).sum();
        if let Some(v) = rows.extra {
            surrogate = surrogate + (grad_columns.narrow(0, 2 * n, num_columns - 2 * n) * v).sum();
        }
        total / (2 * n) as f64 + surrogate.clone() - surrogate.detach()
    }
}

/// A block of the similarity matrix whose first row is anchor `start`, with `-∞` on each
/// anchor's similarity to itself (the paper's `1[k ≠ i]`).
///
/// # Shapes
/// - `similarities`, output: `[rows, columns]`
fn without_self(similarities: Tensor<2>, start: usize) -> Tensor<2> {
    let [rows, columns] = similarities.dims();
    let device = similarities.device();
    // diag_mask is false on the shifted diagonal (the anchors themselves), true elsewhere.
    let is_self: Tensor<2, Bool> =
        Tensor::<2, Bool>::diag_mask([rows, columns], start as i64, &device).bool_not();
    similarities.mask_fill(is_self, f32::NEG_INFINITY)
}

/// `log Σ_j exp(s_ij)` for each row, `-∞` entries (self) contributing 0.
///
/// # Shapes
/// - `masked`: `[rows, columns]`, at least one finite entry per row
/// - output: `[rows, 1]`
fn log_sum_exp(masked: Tensor<2>) -> Tensor<2> {
    // Subtracting the row maximum keeps exp finite for small temperatures; the maximum cancels
    // out of the value, so it is detached rather than differentiated.
    let max = masked.clone().max_dim(1).detach(); // [rows, 1]
    let sum = (masked - max.clone()).exp().sum_dim(1);
    sum.log() + max
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

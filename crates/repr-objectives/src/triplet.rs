//! Triplet loss with online mining.

use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::activation::relu;
use burn::tensor::{Bool, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Distance, MinedTriplets, Miner, ObjectiveError, Triplet};

/// How the losses of the mined triplets are averaged by [`TripletLoss::forward`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TripletReduction {
    /// Sum over the valid triplets / their number (Hermans et al. 2017).
    #[default]
    MeanAll,
    /// Sum over the valid triplets / the number with a positive loss (pytorch-metric-learning's
    /// `AvgNonZeroReducer`; with batch-all it keeps the loss from shrinking as most triplets
    /// become easy).
    MeanNonZero,
}

/// Configuration of [`TripletLoss`] (a config file's `[method.loss]` of the triplet method);
/// unset fields take the defaults, unknown ones are an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TripletLossConfig {
    /// Margin `m ≥ 0` of the hinge `max(d(a,p) - d(a,n) + m, 0)` (FaceNet: 0.2 on normalised
    /// embeddings). Ignored with `soft_margin`.
    pub margin: f64,
    /// The distance between embeddings.
    pub distance: Distance,
    /// How triplets are chosen in the batch.
    pub miner: Miner,
    /// Use `softplus(d(a,p) - d(a,n)) = ln(1 + e^{d(a,p) - d(a,n)})` instead of the hinge
    /// (Hermans et al. 2017, section 2: the soft margin).
    pub soft_margin: bool,
    /// How the per-triplet losses are averaged.
    pub reduction: TripletReduction,
}

impl Default for TripletLossConfig {
    fn default() -> Self {
        Self {
            margin: 0.2,
            distance: Distance::Euclidean,
            miner: Miner::BatchHard,
            soft_margin: false,
            reduction: TripletReduction::MeanAll,
        }
    }
}

with_setters!(TripletLossConfig {
    with_margin => margin: f64,
    with_distance => distance: Distance,
    with_miner => miner: Miner,
    with_soft_margin => soft_margin: bool,
    with_reduction => reduction: TripletReduction,
});

impl TripletLossConfig {
    /// The defaults: margin 0.2, euclidean, batch-hard, hinge, mean over all valid triplets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the hyperparameters, naming the field that is out of range.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !(self.margin >= 0.0 && self.margin.is_finite()) {
            return Err(ObjectiveError::OutOfRange {
                field: "margin",
                value: self.margin,
                allowed: "a finite margin >= 0",
            });
        }
        Ok(())
    }

    /// Builds the loss after [`validate`](Self::validate).
    pub fn init(&self) -> Result<TripletLoss, ObjectiveError> {
        self.validate()?;
        Ok(TripletLoss {
            margin: self.margin,
            distance: self.distance,
            miner: self.miner,
            soft_margin: self.soft_margin,
            reduction: self.reduction,
        })
    }
}

/// Triplet loss with online mining: Schroff, Kalenichenko, Philbin 2015, "FaceNet: A Unified
/// Embedding for Face Recognition and Clustering"; Hermans, Beyer, Leibe 2017, "In Defense of
/// the Triplet Loss for Person Re-Identification".
///
/// Per step: the [`Distance`] matrix of the batch is computed once; the [`Miner`] picks triplets
/// on a detached copy (on the device, masks and arg-max/min, no host round trip); the loss of
/// each triplet is `max(d(a,p) - d(a,n) + margin, 0)` (or the soft margin), differentiated
/// through the picked distances only, and reduced by [`TripletReduction`].
///
/// A batch without any valid triplet (no anchor with both a positive and a negative) gives a
/// loss of exactly 0 with a zero gradient, never NaN, and `num_triplets = 0` in the output;
/// [`TripletOutput::counts`] reads the counts and says so once per process.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use repr_objectives::{Miner, TripletLossConfig};
///
/// let device = Device::flex();
/// let loss = TripletLossConfig::new().with_miner(Miner::BatchHard).with_margin(0.5).init()?;
/// let embeddings = Tensor::<2>::from_floats([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 1.0]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 0, 1, 1], &device);
/// let out = loss.forward(embeddings, labels);
/// // Every anchor: hardest positive at 1, hardest negative at 3, max(1 - 3 + 0.5, 0) = 0.
/// assert_eq!(out.counts().num_triplets, 4);
/// assert_eq!(out.loss.into_scalar::<f32>(), 0.0);
/// # Ok::<(), repr_objectives::ObjectiveError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TripletLoss {
    margin: f64,
    distance: Distance,
    miner: Miner,
    soft_margin: bool,
    reduction: TripletReduction,
}

/// The reduced loss and the triplet counts, all on the device (reading them is up to the caller,
/// for example every `log_every_steps`).
#[derive(Debug, Clone)]
pub struct TripletOutput {
    /// The loss, `[1]`; exactly 0 when there is no valid triplet.
    pub loss: Tensor<1>,
    /// The number of valid triplets mined, `[1]` (a float count, no gradient).
    pub num_triplets: Tensor<1>,
    /// The number of those with a positive loss, `[1]` (all of them with the soft margin).
    pub num_active: Tensor<1>,
}

/// Triplet counts read back to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripletCounts {
    /// Valid triplets mined.
    pub num_triplets: usize,
    /// Of those, the ones with a positive loss.
    pub num_active: usize,
}

/// Per-triplet losses before reduction.
#[derive(Debug, Clone)]
pub struct TripletTerms {
    /// The loss of each slot, 0 in invalid slots. `[slots]`: `n` for batch-hard (one per
    /// anchor), `n²` for semi-hard (one per ordered pair `(a, p)`), `n³` for batch-all.
    pub losses: Tensor<1>,
    /// Which slots hold a valid triplet, `[slots]`.
    pub valid: Tensor<1, Bool>,
}

static WARNED_NO_VALID_TRIPLET: AtomicBool = AtomicBool::new(false);

/// Whether this process has already warned about a batch without valid triplets.
pub fn no_valid_triplet_warned() -> bool {
    WARNED_NO_VALID_TRIPLET.load(Ordering::Relaxed)
}

fn warn_no_valid_triplet_once() {
    if !WARNED_NO_VALID_TRIPLET.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: a triplet batch had no valid triplet (no anchor with both a positive and a \
             negative in the batch); its loss is 0. Sample batches with P classes x K >= 2 images \
             each (repr_data::PkSampler). This warning is shown once."
        );
    }
}

impl TripletOutput {
    /// Reads both counts in one device-to-host transfer; warns on stderr, once per process, when
    /// the batch had no valid triplet.
    pub fn counts(&self) -> TripletCounts {
        let both = Tensor::cat(vec![self.num_triplets.clone(), self.num_active.clone()], 0);
        let values: Vec<f64> = both.into_data().iter::<f64>().collect();
        let counts = TripletCounts {
            num_triplets: values[0].round() as usize,
            num_active: values[1].round() as usize,
        };
        if counts.num_triplets == 0 {
            warn_no_valid_triplet_once();
        }
        counts
    }
}

impl TripletLoss {
    /// Mines the batch on the device and returns the reduced loss with the triplet counts.
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`
    /// - `labels`: `[n]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: Tensor<1, Int>) -> TripletOutput {
        let distances = self.distance.pairwise(embeddings);
        let mined = self.miner.mine(distances.clone(), labels);
        self.forward_mined(distances, &mined)
    }

    /// One loss per slot (see [`TripletTerms`]), mined on the device.
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`
    /// - `labels`: `[n]`
    pub fn forward_no_reduction(
        &self,
        embeddings: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> TripletTerms {
        let distances = self.distance.pairwise(embeddings);
        let mined = self.miner.mine(distances.clone(), labels);
        self.terms(distances, &mined)
    }

    /// The loss over triplets chosen elsewhere (a host-side miner, or
    /// [`Miner::mine_triplets`] for inspection); the configured miner is not used. An empty
    /// list warns once and gives a zero loss.
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`
    pub fn forward_triplets(&self, embeddings: Tensor<2>, triplets: &[Triplet]) -> TripletOutput {
        let [n, _] = embeddings.dims();
        if triplets.is_empty() {
            warn_no_valid_triplet_once();
        }
        let mined = MinedTriplets::from_triplets(triplets, n, &embeddings.device());
        self.forward_mined(self.distance.pairwise(embeddings), &mined)
    }

    /// The loss over triplets already mined on `distances`.
    ///
    /// # Shapes
    /// - `distances`: `[n, n]`, from this loss's [`Distance`], not detached
    pub fn forward_mined(&self, distances: Tensor<2>, mined: &MinedTriplets) -> TripletOutput {
        let terms = self.terms(distances, mined);
        let valid = terms.valid.clone().float();
        let num_triplets = valid.clone().sum();
        // A soft-margin term is positive everywhere (even where float32 underflows it to 0); a
        // hinge term only where it is not clamped.
        let num_active = if self.soft_margin {
            num_triplets.clone()
        } else {
            (terms.losses.clone().greater_elem(0.0).float() * valid).sum()
        };
        let denominator = match self.reduction {
            TripletReduction::MeanAll => num_triplets.clone(),
            TripletReduction::MeanNonZero => num_active.clone(),
        };
        // No triplet: 0 / 1 = 0, and the masked terms give a zero gradient.
        let loss = terms.losses.sum() / denominator.clone().clamp_min(1.0);
        TripletOutput {
            loss,
            num_triplets,
            num_active,
        }
    }

    fn terms(&self, distances: Tensor<2>, mined: &MinedTriplets) -> TripletTerms {
        let gaps = mined.gaps(distances);
        let losses = if self.soft_margin {
            softplus(gaps)
        } else {
            relu(gaps.add_scalar(self.margin))
        };
        let valid = mined.valid();
        TripletTerms {
            // mask_fill, not a product: an invalid slot's value must not reach the gradient.
            losses: losses.mask_fill(valid.clone().bool_not(), 0.0),
            valid,
        }
    }
}

/// `ln(1 + eˣ)` written as `max(x, 0) + ln(1 + e^{-|x|})`, finite for any `x` (squared distances
/// make `eˣ` overflow float32 beyond x ≈ 88).
fn softplus(x: Tensor<1>) -> Tensor<1> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_validated() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let err = TripletLossConfig::new()
                .with_margin(bad)
                .init()
                .unwrap_err();
            assert!(err.to_string().contains("margin"), "{err}");
        }
    }

    #[test]
    fn softplus_is_stable() {
        let device = burn::tensor::Device::flex();
        let x = Tensor::<1>::from_floats([-200.0, -1.0, 0.0, 1.0, 200.0], &device);
        let y: Vec<f32> = softplus(x).into_data().try_to_vec().unwrap();
        let expected = [
            0.0,
            (1.0 + (-1f64).exp()).ln(),
            2f64.ln(),
            (1.0 + 1f64.exp()).ln(),
            200.0,
        ];
        for (a, e) in y.iter().zip(expected) {
            assert!((f64::from(*a) - e).abs() < 1e-5, "{y:?}");
        }
    }
}

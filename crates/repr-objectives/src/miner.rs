//! Online triplet mining: which `(anchor, positive, negative)` triplets of a batch a triplet loss
//! is computed on.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How triplets are chosen in a batch (pytorch-metric-learning's miner/loss split: a miner
/// picks indices on detached distances; the loss differentiates only the distances it picked).
///
/// `P(a)` are the other samples with the label of anchor `a`, `N(a)` the samples with another
/// label. An anchor with an empty `P(a)` or `N(a)` contributes no triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Miner {
    /// Every valid triplet `(a, p, n)`, `p ∈ P(a)`, `n ∈ N(a)` (Hermans, Beyer, Leibe 2017,
    /// "In Defense of the Triplet Loss for Person Re-Identification", "batch all").
    BatchAll,
    /// One triplet per anchor: the farthest positive and the closest negative (Hermans et al.
    /// 2017, "batch hard").
    #[default]
    BatchHard,
    /// One triplet per positive pair `(a, p)`: the closest negative farther than the positive,
    /// `d(a,n) > d(a,p)`; when none is, the farthest negative (Schroff, Kalenichenko, Philbin
    /// 2015, "FaceNet", section 3.2, as implemented by TensorFlow Addons'
    /// `triplet_semihard_loss`: no upper bound `d(a,p) + margin` on the negative).
    SemiHard,
}

/// A triplet of indices into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Triplet {
    /// The anchor.
    pub anchor: usize,
    /// A sample with the anchor's label.
    pub positive: usize,
    /// A sample with another label.
    pub negative: usize,
}

/// The triplets a [`Miner`] picked, as tensors on the device: one *slot* per candidate (per
/// anchor for batch-hard, per ordered pair `(a, p)` for semi-hard, per `(a, p, n)` for batch-all),
/// with a mask of the slots that hold a valid triplet.
#[derive(Debug, Clone)]
pub struct MinedTriplets {
    batch: usize,
    slots: Slots,
}

// One value per training step, never stored in bulk: boxing the larger variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Slots {
    /// Flat indices `a·batch + p` and `a·batch + n` into the distance matrix.
    Indexed {
        anchor_positive: Tensor<1, Int>,
        anchor_negative: Tensor<1, Int>,
        valid: Tensor<1, Bool>,
    },
    /// Every `(a, p, n)`: `[batch, batch, batch]`.
    All { valid: Tensor<3, Bool> },
}

/// Label masks of a batch.
struct Pairs {
    /// `[n, n]`: same label, not the same sample.
    positive: Tensor<2, Bool>,
    /// `[n, n]`: different labels.
    negative: Tensor<2, Bool>,
}

impl Pairs {
    fn new(labels: Tensor<1, Int>) -> Self {
        let [n] = labels.dims();
        let device = labels.device();
        let rows = labels.clone().reshape([n, 1]).expand([n, n]);
        let columns = labels.reshape([1, n]).expand([n, n]);
        let same = rows.equal(columns);
        let off_diagonal = Tensor::<2, Bool>::diag_mask([n, n], 0, &device);
        Self {
            positive: same.clone().bool_and(off_diagonal),
            negative: same.bool_not(),
        }
    }
}

impl Miner {
    /// Picks triplets on the device, without reading anything back to the host. `distances`
    /// are detached here: mining decisions carry no gradient.
    ///
    /// Memory: batch-hard needs `[n, n]` tensors; semi-hard and batch-all `[n, n, n]`.
    ///
    /// # Shapes
    /// - `distances`: `[n, n]`, from [`Distance::pairwise`](crate::Distance::pairwise)
    /// - `labels`: `[n]`
    pub fn mine(&self, distances: Tensor<2>, labels: Tensor<1, Int>) -> MinedTriplets {
        let [n, n2] = distances.dims();
        assert_eq!(
            n, n2,
            "mining needs a square distance matrix, got [{n}, {n2}]"
        );
        assert_eq!(
            labels.dims(),
            [n],
            "mining: {n} distances per row but {:?} labels",
            labels.dims()
        );
        let distances = distances.detach();
        let device = distances.device();
        let pairs = Pairs::new(labels);
        let has_negative = pairs.negative.clone().any_dim(1); // [n, 1]
        let anchor_offset = Tensor::<1, Int>::arange(0..n as i64, &device).mul_scalar(n as i64);

        let slots = match self {
            Miner::BatchHard => {
                let hardest_positive = distances
                    .clone()
                    .mask_fill(pairs.positive.clone().bool_not(), f32::NEG_INFINITY)
                    .argmax(1)
                    .reshape([n]);
                let hardest_negative = distances
                    .mask_fill(pairs.negative.bool_not(), f32::INFINITY)
                    .argmin(1)
                    .reshape([n]);
                let has_positive = pairs.positive.any_dim(1);
                Slots::Indexed {
                    anchor_positive: anchor_offset.clone() + hardest_positive,
                    anchor_negative: anchor_offset + hardest_negative,
                    valid: has_positive.bool_and(has_negative).reshape([n]),
                }
            }
            Miner::SemiHard => {
                // [a, p, n]: d(a, p) and d(a, n) broadcast over the third and second axis.
                let d_ap = distances.clone().reshape([n, n, 1]).expand([n, n, n]);
                let d_an = distances.clone().reshape([n, 1, n]).expand([n, n, n]);
                let farther = pairs
                    .negative
                    .clone()
                    .reshape([n, 1, n])
                    .expand([n, n, n])
                    .bool_and(d_an.clone().greater(d_ap));
                let has_farther = farther.clone().any_dim(2).reshape([n, n]);
                let semi_hard = d_an
                    .mask_fill(farther.bool_not(), f32::INFINITY)
                    .argmin(2)
                    .reshape([n, n]);
                let farthest = distances
                    .mask_fill(pairs.negative.bool_not(), f32::NEG_INFINITY)
                    .argmax(1)
                    .expand([n, n]);
                let negative = farthest.mask_where(has_farther, semi_hard);
                Slots::Indexed {
                    anchor_positive: Tensor::<1, Int>::arange(0..(n * n) as i64, &device),
                    anchor_negative: (anchor_offset.reshape([n, 1]) + negative).reshape([n * n]),
                    valid: pairs
                        .positive
                        .bool_and(has_negative.expand([n, n]))
                        .reshape([n * n]),
                }
            }
            Miner::BatchAll => Slots::All {
                valid: pairs
                    .positive
                    .reshape([n, n, 1])
                    .expand([n, n, n])
                    .bool_and(pairs.negative.reshape([n, 1, n]).expand([n, n, n])),
            },
        };
        MinedTriplets { batch: n, slots }
    }

    /// Picks triplets and reads them back to the host, for inspection and tests (one
    /// device-to-host transfer; training uses [`mine`](Self::mine)). Ordered by anchor, then
    /// positive, then negative.
    ///
    /// # Shapes
    /// - `distances`: `[n, n]`
    /// - `labels`: `[n]`
    pub fn mine_triplets(&self, distances: Tensor<2>, labels: Tensor<1, Int>) -> Vec<Triplet> {
        self.mine(distances, labels).to_triplets()
    }
}

impl MinedTriplets {
    /// Valid triplets given as indices (for example from a host-side miner of your own), each
    /// in its own slot.
    ///
    /// # Panics
    /// If an index is not below `batch`.
    pub fn from_triplets(triplets: &[Triplet], batch: usize, device: &Device) -> Self {
        for t in triplets {
            assert!(
                t.anchor < batch && t.positive < batch && t.negative < batch,
                "triplet {t:?} is out of range for a batch of {batch}"
            );
        }
        // An empty list keeps one invalid slot, so that the loss still has a (zero) graph.
        let (ap, an, valid): (Vec<i64>, Vec<i64>, Vec<bool>) = if triplets.is_empty() {
            (vec![0], vec![0], vec![false])
        } else {
            let flat = |a: usize, b: usize| (a * batch + b) as i64;
            (
                triplets
                    .iter()
                    .map(|t| flat(t.anchor, t.positive))
                    .collect(),
                triplets
                    .iter()
                    .map(|t| flat(t.anchor, t.negative))
                    .collect(),
                vec![true; triplets.len()],
            )
        };
        let k = ap.len();
        Self {
            batch,
            slots: Slots::Indexed {
                anchor_positive: Tensor::from_data(TensorData::new(ap, [k]), device),
                anchor_negative: Tensor::from_data(TensorData::new(an, [k]), device),
                valid: Tensor::from_data(TensorData::new(valid, [k]), device),
            },
        }
    }

    /// The batch size the triplets index into.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Which slots hold a valid triplet.
    ///
    /// # Shapes
    /// - output: `[slots]`
    pub fn valid(&self) -> Tensor<1, Bool> {
        match &self.slots {
            Slots::Indexed { valid, .. } => valid.clone(),
            Slots::All { valid } => valid.clone().reshape([self.batch.pow(3)]),
        }
    }

    /// `d(a, p) - d(a, n)` for every slot (whatever value in invalid slots), differentiable
    /// through the picked entries of `distances` only.
    ///
    /// # Shapes
    /// - `distances`: `[n, n]`, the same matrix the triplets were mined on, not detached
    /// - output: `[slots]`
    pub fn gaps(&self, distances: Tensor<2>) -> Tensor<1> {
        let n = self.batch;
        assert_eq!(
            distances.dims(),
            [n, n],
            "the triplets were mined on a batch of {n}"
        );
        match &self.slots {
            Slots::Indexed {
                anchor_positive,
                anchor_negative,
                ..
            } => {
                let flat = distances.reshape([n * n]);
                flat.clone().select(0, anchor_positive.clone())
                    - flat.select(0, anchor_negative.clone())
            }
            Slots::All { .. } => {
                let d_ap = distances.clone().reshape([n, n, 1]);
                let d_an = distances.reshape([n, 1, n]);
                (d_ap - d_an).reshape([n * n * n])
            }
        }
    }

    /// The valid triplets, read back to the host, ordered by anchor, positive, negative.
    pub fn to_triplets(&self) -> Vec<Triplet> {
        let n = self.batch;
        let read = |t: Tensor<1, Int>| -> Vec<i64> { t.into_data().iter::<i64>().collect() };
        let mut triplets: Vec<Triplet> = match &self.slots {
            Slots::Indexed {
                anchor_positive,
                anchor_negative,
                valid,
            } => {
                let ap = read(anchor_positive.clone());
                let an = read(anchor_negative.clone());
                let valid = read(valid.clone().int());
                (0..ap.len())
                    .filter(|&i| valid[i] != 0)
                    .map(|i| Triplet {
                        anchor: ap[i] as usize / n,
                        positive: ap[i] as usize % n,
                        negative: an[i] as usize % n,
                    })
                    .collect()
            }
            Slots::All { valid } => read(valid.clone().reshape([n * n * n]).int())
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0)
                .map(|(i, _)| Triplet {
                    anchor: i / (n * n),
                    positive: i / n % n,
                    negative: i % n,
                })
                .collect(),
        };
        triplets.sort_unstable();
        triplets
    }
}

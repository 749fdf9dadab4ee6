//! `summary.json`: the machine-readable result of a run (fields in the README's run-folder table).

use serde::{Deserialize, Serialize};

/// The result of a run. Metrics a recipe does not compute are `null`; fractions are in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `supervised`, `simclr`, ...
    pub recipe: String,
    /// `flex`, `ndarray`, `wgpu`, `cuda`.
    pub device: String,
    /// Backbone name, e.g. `resnet18-w16-cifar`.
    pub backbone: String,
    /// Dataset folder name, e.g. `fashion-mnist`.
    pub dataset: String,
    /// Epochs configured.
    pub epochs: usize,
    /// Images per optimizer step: the global batch, over every rank.
    #[serde(default)]
    pub batch_size: usize,
    /// Processes the run was spread over (data parallel; 1 for one process).
    #[serde(default = "one")]
    pub ranks: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Wall time of the whole run, summed over resumed sessions, evaluation included.
    pub wall_seconds: f64,
    /// Training throughput: images per second over the training steps alone.
    pub train_images_per_second: f64,
    /// Test-split metrics.
    pub eval: EvalSummary,
    /// Baselines evaluated on the same split, where the method computes them (embedding
    /// methods with `eval.baselines`).
    pub baselines: Option<Baselines>,
    /// What the ranks exchanged, per optimizer step of the last session (data parallel only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communication: Option<Communication>,
    /// The final evaluation table (Markdown) of an embedding method, also written to `eval.md`.
    #[serde(skip)]
    pub table: Option<String>,
}

/// Traffic between the ranks of a data-parallel run, per optimizer step (rank 0's view).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Communication {
    /// Bytes rank 0 put into collectives per step (gradients, gathered embeddings, statistics).
    pub bytes_per_step: f64,
    /// Seconds rank 0 spent inside collectives per step, waiting for the others included.
    pub seconds_per_step: f64,
    /// Collective calls per step.
    pub calls_per_step: f64,
}

fn one() -> usize {
    1
}

/// The baselines an embedding method is compared with, on the same split and memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// The normalised pixels themselves.
    pub raw_pixels: BaselineScores,
    /// The same network, freshly initialised and never trained.
    pub random_init: BaselineScores,
}

/// What a baseline scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineScores {
    /// kNN top-1 accuracy.
    pub knn_top1: f64,
    /// Linear-probe top-1 accuracy (when the run fits a probe).
    pub linear_top1: Option<f64>,
}

/// Test-split metrics of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    /// Classifier top-1 accuracy (supervised recipes).
    pub accuracy: Option<f64>,
    /// Mean test loss of the classifier.
    pub loss: Option<f64>,
    /// kNN top-1 accuracy on the embeddings.
    pub knn_top1: Option<f64>,
    /// Linear-probe top-1 accuracy.
    pub linear_top1: Option<f64>,
    /// Retrieval recall@1.
    pub recall_at_1: Option<f64>,
    /// Retrieval mAP@R.
    pub map_at_r: Option<f64>,
    /// Collapse check (Grill et al. 2020 watch the same): the standard deviation over the test
    /// set of each dimension of the L2-normalised embeddings, averaged over the dimensions.
    /// Near 0 for a collapsed representation, about `1/sqrt(dim)` for a spread-out one.
    #[serde(default)]
    pub embedding_std: Option<f64>,
}

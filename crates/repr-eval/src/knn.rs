//! Weighted k-nearest-neighbour classification on embeddings.

use burn::config::Config;
use burn::tensor::Device;

use crate::error::{check_label_count, check_labels};
use crate::search::{check_search, top_k_cosine};
use crate::{Embeddings, EvalError};

/// Settings of [`knn_classify`]. The defaults are the reference protocol our SimCLR runs are
/// compared with (InstDisc, Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric
/// Instance Discrimination"; solo-learn's `WeightedKNNClassifier`): k = 200, cosine
/// similarity, votes weighted by `exp(sim / 0.1)`.
///
/// ```
/// use repr_eval::KnnConfig;
///
/// let config = KnnConfig::default();
/// assert_eq!((config.k, config.temperature), (200, 0.1));
/// ```
#[derive(Config, Debug)]
pub struct KnnConfig {
    /// Neighbours that vote.
    #[config(default = 200)]
    pub k: usize,
    /// Temperature `T` of the vote weight `exp(sim / T)`.
    #[config(default = 0.1)]
    pub temperature: f64,
    /// Queries per similarity chunk: the device holds `chunk_size × memory.len` similarities at
    /// a time.
    #[config(default = 512)]
    pub chunk_size: usize,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of [`knn_classify`].
#[derive(Debug, Clone, PartialEq)]
pub struct KnnResult {
    /// Fraction of queries whose highest-voted class is their label.
    pub top1: f64,
    /// Fraction of queries whose label is among the 5 highest-voted classes (all classes when
    /// there are fewer than 5).
    pub top5: f64,
    /// The highest-voted class of every query.
    pub predictions: Vec<u32>,
}

/// Classifies every query by a weighted vote of its `k` most cosine-similar `memory` items:
/// class `c` scores `Σ exp(sim_j / T)` over the neighbours `j` labelled `c`, and the prediction
/// is the highest score (ties go to the lower class index).
///
/// Similarities and the top-k run on `device` in chunks of `config.chunk_size` queries
/// (see `docs/evaluation.md`); the votes are summed on the host in f64.
///
/// ```
/// use burn::tensor::Device;
/// use repr_eval::{knn_classify, Embeddings, KnnConfig};
///
/// let memory = Embeddings::new(vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0], 3, 2)?;
/// let queries = Embeddings::new(vec![1.0, 0.05, 0.1, 1.0], 2, 2)?;
/// let config = KnnConfig::new().with_k(1);
/// let result = knn_classify(&memory, &[0, 0, 1], &queries, &[0, 1], 2, &config, &Device::flex())?;
/// assert_eq!(result.predictions, vec![0, 1]);
/// assert_eq!(result.top1, 1.0);
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
///
/// # Errors
/// [`EvalError`] naming the argument when the dimensions or label counts disagree, a label is
/// out of range, a value is not finite, `k` is 0 or exceeds `memory.len`, or the temperature
/// is not positive.
pub fn knn_classify(
    memory: &Embeddings,
    memory_labels: &[u32],
    queries: &Embeddings,
    query_labels: &[u32],
    num_classes: usize,
    config: &KnnConfig,
    device: &Device,
) -> Result<KnnResult, EvalError> {
    check_label_count("memory", memory, "memory_labels", memory_labels)?;
    check_label_count("queries", queries, "query_labels", query_labels)?;
    if num_classes == 0 {
        return Err(EvalError::invalid("num_classes", "must be at least 1"));
    }
    check_labels("memory_labels", memory_labels, num_classes)?;
    check_labels("query_labels", query_labels, num_classes)?;
    if !(config.temperature > 0.0 && config.temperature.is_finite()) {
        return Err(EvalError::invalid(
            "config.temperature",
            format!("{} is not a positive number", config.temperature),
        ));
    }
    check_search(queries, memory, config.k, false, config.chunk_size).map_err(|e| match e {
        EvalError::InvalidInput { field, message } if field == "k" || field == "chunk_size" => {
            EvalError::InvalidInput {
                field: format!("config.{field}"),
                message,
            }
        }
        other => other,
    })?;
    let device = device.clone().without_autodiff();
    let top = top_k_cosine(queries, memory, config.k, false, config.chunk_size, &device);

    let mut predictions = Vec::with_capacity(queries.len);
    let (mut correct1, mut correct5) = (0usize, 0usize);
    let mut scores = vec![0.0f64; num_classes];
    let mut order: Vec<usize> = (0..num_classes).collect();
    for (query, &label) in query_labels.iter().enumerate() {
        scores.fill(0.0);
        let (similarities, indices) = top.row(query);
        for (&sim, &index) in similarities.iter().zip(indices) {
            scores[memory_labels[index] as usize] += (sim as f64 / config.temperature).exp();
        }
        // Stable sort by decreasing score: ties keep the lower class first.
        order.iter_mut().enumerate().for_each(|(i, o)| *o = i);
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        predictions.push(order[0] as u32);
        correct1 += usize::from(order[0] == label as usize);
        correct5 += usize::from(order.iter().take(5).any(|&c| c == label as usize));
    }
    let n = queries.len.max(1) as f64;
    Ok(KnnResult {
        top1: correct1 as f64 / n,
        top5: correct5 as f64 / n,
        predictions,
    })
}

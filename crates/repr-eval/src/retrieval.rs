//! Nearest-neighbour retrieval and its metrics: recall@k, precision@k and mAP@R.

use burn::tensor::Device;

use crate::error::{check_label_count, check_labels};
use crate::search::{DEFAULT_CHUNK, check_search, top_k_cosine};
use crate::{Embeddings, EvalError};

/// The `k` most cosine-similar gallery items of every query.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Gallery indices per query, most similar first.
    pub indices: Vec<Vec<usize>>,
    /// Their cosine similarities, decreasing.
    pub similarities: Vec<Vec<f32>>,
}

/// Finds the `k` gallery items most cosine-similar to each query (exact search, on `device`,
/// in chunks of 512 queries). With `exclude_self`, `gallery` must be the query set and query
/// `i` never retrieves item `i`. Among equal similarities the order is unspecified.
///
/// ```
/// use burn::tensor::Device;
/// use repr_eval::{nearest_neighbours, Embeddings};
///
/// let points = Embeddings::new(vec![1.0, 0.0, 0.8, 0.6, 0.0, 1.0], 3, 2)?;
/// let found = nearest_neighbours(&points, &points, 1, true, &Device::flex())?;
/// assert_eq!(found.indices, vec![vec![1], vec![0], vec![1]]);
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
///
/// # Errors
/// [`EvalError`] when the dimensions differ, a value is not finite, `k` is 0 or larger than
/// the candidates, or `exclude_self` is set with galleries of different sizes.
pub fn nearest_neighbours(
    queries: &Embeddings,
    gallery: &Embeddings,
    k: usize,
    exclude_self: bool,
    device: &Device,
) -> Result<Neighbours, EvalError> {
    check_search(queries, gallery, k, exclude_self, DEFAULT_CHUNK)?;
    let device = device.clone().without_autodiff();
    let top = top_k_cosine(queries, gallery, k, exclude_self, DEFAULT_CHUNK, &device);
    let (indices, similarities) = (0..queries.len)
        .map(|q| {
            let (s, i) = top.row(q);
            (i.to_vec(), s.to_vec())
        })
        .unzip();
    Ok(Neighbours {
        indices,
        similarities,
    })
}

/// Retrieval quality of embeddings, averaged over the queries that have at least one relevant
/// gallery item (same label).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievalMetrics {
    /// `(k, recall@k)`: the fraction of queries with at least one relevant item among their
    /// top `k` (the Recall@K of metric-learning papers).
    pub recall_at: Vec<(usize, f64)>,
    /// `(k, precision@k)`: the mean fraction of relevant items among the top `k`.
    pub precision_at: Vec<(usize, f64)>,
    /// Mean average precision at R (Musgrave et al. 2020).
    pub map_at_r: f64,
    /// Queries averaged over (those with `R >= 1`).
    pub queries: usize,
}

/// Recall@k, precision@k and mAP@R of cosine retrieval from `gallery` (Musgrave, Belongie and
/// Lim 2020, "A Metric Learning Reality Check", Sec. 3.2).
///
/// For a query with label `y`, let `R` be the number of gallery items labelled `y` (not
/// counting the query itself when `same_set`) and `rel(i)` be 1 when the `i`-th retrieved item
/// is labelled `y`:
/// - recall@k = 1 if `rel(i) = 1` for some `i ≤ k`, else 0;
/// - precision@k = `(1/k) Σ_{i≤k} rel(i)`;
/// - AP@R = `(1/R) Σ_{i≤R} P(i) rel(i)` with `P(i)` the precision at `i`.
///
/// Each is averaged over the queries with `R ≥ 1`. With `same_set`, `gallery` must be the
/// query set and a query never retrieves itself.
///
/// ```
/// use burn::tensor::Device;
/// use repr_eval::{retrieval_metrics, Embeddings};
///
/// let points = Embeddings::new(vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9], 4, 2)?;
/// let labels = [0, 0, 1, 1];
/// let m = retrieval_metrics(&points, &labels, &points, &labels, &[1], true, &Device::flex())?;
/// assert_eq!(m.recall_at, vec![(1, 1.0)]);
/// assert_eq!(m.map_at_r, 1.0);
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
///
/// # Errors
/// [`EvalError`] naming the argument when sizes disagree, a value is not finite, `ks` is empty
/// or holds 0 or more than the gallery's candidates.
pub fn retrieval_metrics(
    queries: &Embeddings,
    query_labels: &[u32],
    gallery: &Embeddings,
    gallery_labels: &[u32],
    ks: &[usize],
    same_set: bool,
    device: &Device,
) -> Result<RetrievalMetrics, EvalError> {
    check_label_count("queries", queries, "query_labels", query_labels)?;
    check_label_count("gallery", gallery, "gallery_labels", gallery_labels)?;
    if same_set && query_labels != gallery_labels {
        return Err(EvalError::invalid(
            "gallery_labels",
            "same_set needs the gallery to be the query set, but the labels differ",
        ));
    }
    let Some(&max_k) = ks.iter().max() else {
        return Err(EvalError::invalid("ks", "no k given"));
    };
    let num_classes = query_labels
        .iter()
        .chain(gallery_labels)
        .max()
        .map_or(0, |&m| m as usize + 1);
    check_labels("query_labels", query_labels, num_classes)?;
    let mut per_class = vec![0usize; num_classes];
    for &label in gallery_labels {
        per_class[label as usize] += 1;
    }
    let relevant = |label: u32| per_class[label as usize] - usize::from(same_set);
    let max_r = query_labels.iter().map(|&l| relevant(l)).max().unwrap_or(0);
    let depth = max_k.max(max_r).max(1);
    if ks.contains(&0) {
        return Err(EvalError::invalid("ks", "k = 0 retrieves nothing"));
    }
    check_search(
        queries,
        gallery,
        depth.min(gallery.len),
        same_set,
        DEFAULT_CHUNK,
    )
    .map_err(|e| match e {
        EvalError::InvalidInput { field, message } if field == "k" => {
            EvalError::invalid("ks", format!("{ks:?}: {message}"))
        }
        other => other,
    })?;
    let candidates = gallery.len - usize::from(same_set);
    if max_k > candidates {
        return Err(EvalError::invalid(
            "ks",
            format!("k = {max_k} but each query has {candidates} candidates"),
        ));
    }
    // max_r <= candidates always, so depth <= candidates.
    let device = device.clone().without_autodiff();
    let top = top_k_cosine(queries, gallery, depth, same_set, DEFAULT_CHUNK, &device);

    let mut recall = vec![0.0f64; ks.len()];
    let mut precision = vec![0.0f64; ks.len()];
    let mut map = 0.0f64;
    let mut counted = 0usize;
    let mut hits = Vec::with_capacity(depth);
    for (query, &label) in query_labels.iter().enumerate() {
        let r = relevant(label);
        if r == 0 {
            continue;
        }
        counted += 1;
        let (_, indices) = top.row(query);
        hits.clear();
        hits.extend(indices.iter().map(|&i| gallery_labels[i] == label));
        let QueryMetrics {
            recall_at,
            precision_at,
            ap_at_r,
        } = query_metrics(&hits, r, ks);
        for (i, (rec, prec)) in recall_at.iter().zip(&precision_at).enumerate() {
            recall[i] += rec;
            precision[i] += prec;
        }
        map += ap_at_r;
    }
    let n = counted.max(1) as f64;
    Ok(RetrievalMetrics {
        recall_at: ks.iter().zip(&recall).map(|(&k, &s)| (k, s / n)).collect(),
        precision_at: ks
            .iter()
            .zip(&precision)
            .map(|(&k, &s)| (k, s / n))
            .collect(),
        map_at_r: map / n,
        queries: counted,
    })
}

struct QueryMetrics {
    recall_at: Vec<f64>,
    precision_at: Vec<f64>,
    ap_at_r: f64,
}

/// The metrics of one query from its ranked relevance flags (`hits.len() >= max(ks, r)`) and its
/// number of relevant items `r >= 1`.
fn query_metrics(hits: &[bool], r: usize, ks: &[usize]) -> QueryMetrics {
    let found_within = |k: usize| hits[..k].iter().filter(|&&h| h).count();
    let mut ap = 0.0;
    let mut found = 0usize;
    for (i, &hit) in hits[..r].iter().enumerate() {
        if hit {
            found += 1;
            ap += found as f64 / (i + 1) as f64;
        }
    }
    QueryMetrics {
        recall_at: ks
            .iter()
            .map(|&k| f64::from(u8::from(found_within(k) > 0)))
            .collect(),
        precision_at: ks
            .iter()
            .map(|&k| found_within(k) as f64 / k as f64)
            .collect(),
        ap_at_r: ap / r as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_query_by_hand() {
        // Ranked relevance 1 0 1 1 0, R = 3.
        // AP@R = (1/3)(P(1)·1 + P(2)·0 + P(3)·1) = (1/3)(1 + 2/3) = 5/9.
        // precision@2 = 1/2, precision@4 = 3/4; recall@1 = recall@4 = 1.
        let hits = [true, false, true, true, false];
        let m = query_metrics(&hits, 3, &[1, 2, 4]);
        assert_eq!(m.recall_at, vec![1.0, 1.0, 1.0]);
        assert_eq!(m.precision_at, vec![1.0, 0.5, 0.75]);
        assert!((m.ap_at_r - 5.0 / 9.0).abs() < 1e-12);
        // A miss first: 0 1, R = 1 → AP@R = 0 (nothing relevant within the first R = 1).
        let m = query_metrics(&[false, true], 1, &[1, 2]);
        assert_eq!((m.recall_at, m.ap_at_r), (vec![0.0, 1.0], 0.0));
    }
}

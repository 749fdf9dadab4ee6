//! kNN classification: a case computed by hand, a naive f64 reference on random data, errors.

use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_eval::{Embeddings, EvalError, KnnConfig, knn_classify};

/// Memory (unit vectors, labels):
///   m0 = (1, 0)          class 0
///   m1 = (0, 1)          class 1
///   m2 = (1, 1)/√2       class 1
///   m3 = (-0.6, -0.8)    class 0
/// Queries: q0 = (1, 0) labelled 1, q1 = (0, 2) labelled 1 (norm 2: cosine ignores it).
///
/// Cosine similarities:
///   q0: m0 1, m1 0, m2 1/√2 = 0.70711, m3 -0.6   → top 3: m0, m2, m1
///   q1: m0 0, m1 1, m2 0.70711,        m3 -0.8   → top 3: m1, m2, m0
///
/// k = 3, T = 0.5 (weight exp(2 sim)):
///   q0: class 0: e^2 = 7.38906; class 1: e^1.41421 + e^0 = 4.11325 + 1 = 5.11325 → predicts 0
///       (a plain majority vote would say 1: the weighting decides).
///   q1: class 1: e^2 + e^1.41421 = 11.50231; class 0: e^0 = 1 → predicts 1.
///   top-1 = 1/2 (q0 is wrong), top-5 = 1 (only 3 classes).
/// k = 3, T = 1 (weight exp(sim)):
///   q0: class 0: e^1 = 2.71828; class 1: e^0.70711 + 1 = 2.02811 + 1 = 3.02811 → predicts 1.
///   top-1 = 1.
fn weighted_votes_by_hand(device: &Device) {
    let h = std::f32::consts::FRAC_1_SQRT_2;
    let memory = Embeddings::new(vec![1.0, 0.0, 0.0, 1.0, h, h, -0.6, -0.8], 4, 2).unwrap();
    let labels = [0, 1, 1, 0];
    let queries = Embeddings::new(vec![1.0, 0.0, 0.0, 2.0], 2, 2).unwrap();
    let query_labels = [1, 1];

    let sharp = KnnConfig::new().with_k(3).with_temperature(0.5);
    let r = knn_classify(&memory, &labels, &queries, &query_labels, 3, &sharp, device).unwrap();
    assert_eq!(r.predictions, vec![0, 1]);
    assert_eq!((r.top1, r.top5), (0.5, 1.0));

    let soft = KnnConfig::new().with_k(3).with_temperature(1.0);
    let r = knn_classify(&memory, &labels, &queries, &query_labels, 3, &soft, device).unwrap();
    assert_eq!(r.predictions, vec![1, 1]);
    assert_eq!((r.top1, r.top5), (1.0, 1.0));

    // k = 1 is the nearest neighbour's label: q0 → m0 (class 0), q1 → m1 (class 1).
    let one = KnnConfig::new().with_k(1).with_chunk_size(1);
    let r = knn_classify(&memory, &labels, &queries, &query_labels, 3, &one, device).unwrap();
    assert_eq!(r.predictions, vec![0, 1]);
}

/// The InstDisc / solo-learn weighted kNN written naively in f64: all similarities, a full
/// sort, votes exp(sim / T), arg-max (lowest class on ties) and top-5.
fn naive_knn(
    memory: &Embeddings,
    labels: &[u32],
    queries: &Embeddings,
    classes: usize,
    k: usize,
    t: f64,
) -> (Vec<u32>, Vec<Vec<usize>>) {
    let unit = |row: &[f32]| {
        let norm = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        row.iter().map(|&v| v as f64 / norm).collect::<Vec<f64>>()
    };
    let mut predictions = Vec::new();
    let mut top5 = Vec::new();
    for q in 0..queries.len {
        let query = unit(queries.row(q));
        let mut sims: Vec<(f64, usize)> = (0..memory.len)
            .map(|m| {
                (
                    unit(memory.row(m))
                        .iter()
                        .zip(&query)
                        .map(|(a, b)| a * b)
                        .sum(),
                    m,
                )
            })
            .collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut scores = vec![0.0f64; classes];
        for &(s, m) in &sims[..k] {
            scores[labels[m] as usize] += (s / t).exp();
        }
        let mut order: Vec<usize> = (0..classes).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        predictions.push(order[0] as u32);
        top5.push(order[..5.min(classes)].to_vec());
    }
    (predictions, top5)
}

/// Random clustered data, large enough (2,000 memory items, k = 10) for the two-stage top-k and
/// several chunks (chunk size 17): the same predictions and accuracies as the naive reference.
fn matches_a_naive_reference(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (classes, dim) = (6, 8);
    let centres: Vec<f32> = (0..classes * dim)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let mut sample = |n: usize| {
        let labels: Vec<u32> = (0..n)
            .map(|_| rng.random_range(0..classes as u32))
            .collect();
        let data = labels
            .iter()
            .flat_map(|&l| {
                (0..dim)
                    .map(|j| centres[l as usize * dim + j] + rng.random_range(-0.8..0.8))
                    .collect::<Vec<_>>()
            })
            .collect();
        (Embeddings::new(data, n, dim).unwrap(), labels)
    };
    let (memory, memory_labels) = sample(2000);
    let (queries, query_labels) = sample(60);
    let config = KnnConfig::new()
        .with_k(10)
        .with_temperature(0.07)
        .with_chunk_size(17);
    let r = knn_classify(
        &memory,
        &memory_labels,
        &queries,
        &query_labels,
        classes,
        &config,
        device,
    )
    .unwrap();
    let (predictions, top5) = naive_knn(&memory, &memory_labels, &queries, classes, 10, 0.07);
    assert_eq!(r.predictions, predictions);
    let top1 = predictions
        .iter()
        .zip(&query_labels)
        .filter(|(p, l)| p == l)
        .count() as f64
        / 60.0;
    let in5 = top5
        .iter()
        .zip(&query_labels)
        .filter(|&(t, &l)| t.contains(&(l as usize)))
        .count();
    assert_eq!(r.top1, top1);
    assert_eq!(r.top5, in5 as f64 / 60.0);
    assert!(r.top1 > 0.5, "clustered data should be easy: {}", r.top1);
}

fn rejects_bad_input(device: &Device) {
    let memory = Embeddings::new(vec![1.0, 0.0, 0.0, 1.0], 2, 2).unwrap();
    let queries = Embeddings::new(vec![1.0, 0.0], 1, 2).unwrap();
    let config = KnnConfig::new().with_k(2);
    let err = knn_classify(&memory, &[0, 5], &queries, &[0], 2, &config, device).unwrap_err();
    assert!(
        matches!(&err, EvalError::LabelOutOfRange { field, label: 5, index: 1, .. } if field == "memory_labels"),
        "{err}"
    );
    let err = knn_classify(
        &memory,
        &[0, 1],
        &queries,
        &[0],
        2,
        &KnnConfig::new(),
        device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("config.k"), "{err}");
    let err = knn_classify(&memory, &[0], &queries, &[0], 2, &config, device).unwrap_err();
    assert!(err.to_string().contains("memory_labels"), "{err}");
    let wide = Embeddings::new(vec![1.0, 0.0, 0.0], 1, 3).unwrap();
    let err = knn_classify(&memory, &[0, 1], &wide, &[0], 2, &config, device).unwrap_err();
    assert!(matches!(err, EvalError::LengthMismatch { .. }), "{err}");
    let nan = Embeddings::new(vec![f32::NAN, 0.0], 1, 2).unwrap();
    let err = knn_classify(&memory, &[0, 1], &nan, &[0], 2, &config, device).unwrap_err();
    assert!(
        matches!(&err, EvalError::NonFinite { field, .. } if field == "queries"),
        "{err}"
    );
    let cold = config.clone().with_temperature(0.0);
    let err = knn_classify(&memory, &[0, 1], &queries, &[0], 2, &cold, device).unwrap_err();
    assert!(err.to_string().contains("config.temperature"), "{err}");
}

repr_testing::backend_tests!(
    weighted_votes_by_hand,
    matches_a_naive_reference,
    rejects_bad_input
);

#[test]
fn defaults_are_the_reference_protocol() {
    let config = KnnConfig::default();
    assert_eq!((config.k, config.temperature), (200, 0.1));
}

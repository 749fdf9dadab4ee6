//! The reference-protocol sizes (60,000 memory items, 10,000 queries, dimension 256) on flex,
//! for the timings quoted in `docs/evaluation.md`. Ignored by default (tens of seconds on two
//! cores): `cargo test --workspace --test speed -- --ignored --nocapture`.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_eval::{
    Embeddings, KnnConfig, LinearProbeConfig, knn_classify, linear_probe, retrieval_metrics,
};

/// `n` points of 10 classes: uniform noise in [-1, 1] plus 2 on the class's own axis.
fn clustered(n: usize, dim: usize, seed: u64) -> (Embeddings, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Vec<u32> = (0..n).map(|i| (i % 10) as u32).collect();
    let data = labels
        .iter()
        .flat_map(|&l| {
            let mut row: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            row[l as usize] += 2.0;
            row
        })
        .collect();
    (Embeddings::new(data, n, dim).unwrap(), labels)
}

#[test]
#[ignore = "reference sizes: about a minute on two cores"]
fn reference_sizes_on_flex() {
    let device = repr_testing::flex();
    let (memory, memory_labels) = clustered(60_000, 256, 1);
    let (queries, query_labels) = clustered(10_000, 256, 2);

    let started = Instant::now();
    let knn = knn_classify(
        &memory,
        &memory_labels,
        &queries,
        &query_labels,
        10,
        &KnnConfig::default(),
        &device,
    )
    .unwrap();
    eprintln!(
        "kNN (k 200): {:.1} s, top-1 {:.4}",
        started.elapsed().as_secs_f64(),
        knn.top1
    );
    assert!(knn.top1 > 0.9);

    let started = Instant::now();
    let probe = linear_probe(
        &memory,
        &memory_labels,
        &queries,
        &query_labels,
        10,
        &LinearProbeConfig::default(),
        &device,
    )
    .unwrap();
    eprintln!(
        "linear probe (30 epochs): {:.1} s, test top-1 {:.4}",
        started.elapsed().as_secs_f64(),
        probe.test_top1
    );
    assert!(probe.test_top1 > 0.9);

    let started = Instant::now();
    let m = retrieval_metrics(
        &queries,
        &query_labels,
        &memory,
        &memory_labels,
        &[1, 5, 10],
        false,
        &device,
    )
    .unwrap();
    eprintln!(
        "retrieval (R = 6,000): {:.1} s, {m:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(m.queries, 10_000);
}

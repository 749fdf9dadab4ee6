//! Retrieval: neighbours, recall@k, precision@k and mAP@R on cases computed by hand, and mAP@R
//! against a naive f64 reference.

use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_eval::{Embeddings, EvalError, nearest_neighbours, retrieval_metrics};

/// Unit vectors at the given angles (degrees): cosine similarity falls with the angle between
/// them, so ranks follow angular distance.
fn at_angles(degrees: &[f32]) -> Embeddings {
    let data = degrees
        .iter()
        .flat_map(|d| [d.to_radians().cos(), d.to_radians().sin()])
        .collect();
    Embeddings::new(data, degrees.len(), 2).unwrap()
}

/// p0 0° A, p1 10° A, p2 22° B, p3 35° A, p4 180° B (A = 0, B = 1), gallery = queries.
///
/// Ranked neighbours (angular distance) and relevance (same label):
///   p0 (A, R = 2): p1 10 A, p2 22 B, p3 35 A, p4 180 B → 1 0 1 0
///   p1 (A, R = 2): p0 10 A, p2 12 B, p3 25 A, p4 170 B → 1 0 1 0
///   p2 (B, R = 1): p1 12 A, p3 13 A, p0 22 A, p4 158 B → 0 0 0 1
///   p3 (A, R = 2): p2 13 B, p1 25 A, p0 35 A, p4 145 B → 0 1 1 0
///   p4 (B, R = 1): p3 145 A, p2 158 B, p1 170 A, p0 180 A → 0 1 0 0
/// AP@R = (1/R) Σ_{i≤R} P(i) rel(i):
///   p0: (1/2)(1/1 + 0) = 1/2;  p1: 1/2;  p2: (1/1)(0) = 0;  p3: (1/2)(0 + 1/2) = 1/4;  p4: 0
///   mAP@R = (1/2 + 1/2 + 0 + 1/4 + 0) / 5 = 1/4.
/// recall@1 = (1 + 1 + 0 + 0 + 0)/5 = 0.4;      recall@2 = (1 + 1 + 0 + 1 + 1)/5 = 0.8
/// precision@1 = 0.4;  precision@2 = (1/2 + 1/2 + 0 + 1/2 + 1/2)/5 = 0.4
fn same_set_by_hand(device: &Device) {
    let points = at_angles(&[0.0, 10.0, 22.0, 35.0, 180.0]);
    let labels = [0, 0, 1, 0, 1];
    let found = nearest_neighbours(&points, &points, 4, true, device).unwrap();
    assert_eq!(
        found.indices,
        vec![
            vec![1, 2, 3, 4],
            vec![0, 2, 3, 4],
            vec![1, 3, 0, 4],
            vec![2, 1, 0, 4],
            vec![3, 2, 1, 0]
        ]
    );
    let cos10 = 10f32.to_radians().cos();
    assert!((found.similarities[0][0] - cos10).abs() < 1e-6);
    assert!((found.similarities[0][3] + 1.0).abs() < 1e-6);

    let m = retrieval_metrics(&points, &labels, &points, &labels, &[1, 2], true, device).unwrap();
    assert_eq!(m.queries, 5);
    assert_eq!(m.recall_at, vec![(1, 0.4), (2, 0.8)]);
    assert_eq!(m.precision_at, vec![(1, 0.4), (2, 0.4)]);
    assert!((m.map_at_r - 0.25).abs() < 1e-12, "{}", m.map_at_r);
}

/// Separate queries: q0 3° B, q1 100° A against the gallery above (R counts the whole gallery).
///   q0 (B, R = 2): p0 3 A, p1 7 A, p2 19 B, p3 32 A, p4 177 B → 0 0 1 0 1
///       AP@R = (1/2)(0 + 0) = 0; recall@1 = 0, recall@3 = 1; precision@3 = 1/3
///   q1 (A, R = 3): p3 65 A, p2 78 B, p4 80 B, p1 90 A, p0 100 A → 1 0 0 1 1;
///       AP@R = (1/3)(1/1 + 0 + 0) = 1/3;
///       recall@1 = recall@3 = 1; precision@1 = 1, precision@3 = 1/3
///   mean: recall@1 = 1/2, recall@3 = 1, precision@1 = 1/2, precision@3 = 1/3, mAP@R = 1/6.
fn separate_queries_by_hand(device: &Device) {
    let gallery = at_angles(&[0.0, 10.0, 22.0, 35.0, 180.0]);
    let gallery_labels = [0, 0, 1, 0, 1];
    let queries = at_angles(&[3.0, 100.0]);
    let m = retrieval_metrics(
        &queries,
        &[1, 0],
        &gallery,
        &gallery_labels,
        &[1, 3],
        false,
        device,
    )
    .unwrap();
    assert_eq!(m.recall_at, vec![(1, 0.5), (3, 1.0)]);
    assert_eq!(m.precision_at[0], (1, 0.5));
    assert!((m.precision_at[1].1 - 1.0 / 3.0).abs() < 1e-12);
    assert!((m.map_at_r - 1.0 / 6.0).abs() < 1e-12, "{}", m.map_at_r);
}

/// mAP@R written naively from Musgrave et al. (f64 similarities, full sort, self excluded) on
/// random labelled points.
fn map_at_r_matches_a_naive_reference(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (n, dim, classes) = (150, 5, 4);
    let labels: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    let data: Vec<f32> = labels
        .iter()
        .flat_map(|&l| {
            let mut row: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            row[l as usize] += 1.0;
            row
        })
        .collect();
    let e = Embeddings::new(data, n, dim).unwrap();
    let m = retrieval_metrics(&e, &labels, &e, &labels, &[1, 10], true, device).unwrap();

    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let (mut map, mut r10, mut p10) = (0.0, 0.0, 0.0);
    for q in 0..n {
        let mut ranked: Vec<(f64, usize)> = (0..n)
            .filter(|&g| g != q)
            .map(|g| (cosine(e.row(q), e.row(g)), g))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let rel: Vec<bool> = ranked
            .iter()
            .map(|&(_, g)| labels[g] == labels[q])
            .collect();
        let r = rel.iter().filter(|&&x| x).count();
        let mut hits = 0;
        let mut ap = 0.0;
        for (i, &relevant) in rel[..r].iter().enumerate() {
            if relevant {
                hits += 1;
                ap += hits as f64 / (i + 1) as f64;
            }
        }
        map += ap / r as f64;
        let in10 = rel[..10].iter().filter(|&&x| x).count();
        r10 += f64::from(u8::from(in10 > 0));
        p10 += in10 as f64 / 10.0;
    }
    let n = n as f64;
    assert!(
        (m.map_at_r - map / n).abs() < 1e-9,
        "{} vs {}",
        m.map_at_r,
        map / n
    );
    assert!((m.recall_at[1].1 - r10 / n).abs() < 1e-12);
    assert!((m.precision_at[1].1 - p10 / n).abs() < 1e-12);
}

fn rejects_bad_input(device: &Device) {
    let e = at_angles(&[0.0, 90.0]);
    let err = retrieval_metrics(&e, &[0, 1], &e, &[0, 1], &[2], true, device).unwrap_err();
    assert!(err.to_string().contains("ks"), "{err}");
    let err = retrieval_metrics(&e, &[0, 1], &e, &[0, 1], &[], true, device).unwrap_err();
    assert!(err.to_string().contains("ks"), "{err}");
    let err = retrieval_metrics(&e, &[0], &e, &[0, 1], &[1], false, device).unwrap_err();
    assert!(matches!(err, EvalError::LengthMismatch { .. }), "{err}");
    let three = at_angles(&[0.0, 1.0, 2.0]);
    let err = nearest_neighbours(&e, &three, 1, true, device).unwrap_err();
    assert!(err.to_string().contains("gallery"), "{err}");
}

repr_testing::backend_tests!(
    same_set_by_hand,
    separate_queries_by_hand,
    map_at_r_matches_a_naive_reference,
    rejects_bad_input
);

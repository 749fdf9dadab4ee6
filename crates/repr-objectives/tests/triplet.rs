//! Triplet losses, distances and miners against PyTorch (`fixtures/triplet.json`, made by
//! `make_fixtures.py` from the team's fixture set: explicit f64 loops checked against a vectorised
//! torch version and a port of TensorFlow Addons' `triplet_semihard_loss`), a naive f64 loop
//! written from the papers (FaceNet; Hermans et al. 2017), finite differences, and the
//! no-valid-triplet case.

use burn::tensor::{Device, Int, Tensor, TensorData};
use repr_objectives::{
    Distance, Miner, Triplet, TripletLoss, TripletLossConfig, TripletReduction,
    no_valid_triplet_warned,
};
use repr_testing::{Array, assert_close, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    embeddings: Array,
    labels: Array,
    mining: Vec<Mining>,
    cases: Vec<Case>,
    gradients: Vec<Gradient>,
}

#[derive(Deserialize)]
struct Mining {
    distance: String,
    distance_matrix: Array,
    batch_hard_positive_index: Array,
    batch_hard_negative_index: Array,
    semi_hard_pairs: Array,
    semi_hard_num_fallback: usize,
}

#[derive(Deserialize)]
struct Case {
    distance: String,
    margin: f64,
    batch_hard: f64,
    batch_hard_soft_margin: f64,
    batch_all_mean_all: f64,
    batch_all_mean_positive: f64,
    semi_hard: f64,
    batch_all_num_valid: usize,
    batch_all_num_positive: usize,
    semi_hard_num_pairs: usize,
}

#[derive(Deserialize)]
struct Gradient {
    distance: String,
    margin: f64,
    loss: String,
    loss_value: f64,
    grad_embeddings: Array,
}

/// The fixture's five losses as configurations.
const LOSSES: [(&str, Miner, bool, TripletReduction); 5] = [
    (
        "batch_hard",
        Miner::BatchHard,
        false,
        TripletReduction::MeanAll,
    ),
    (
        "batch_hard_soft_margin",
        Miner::BatchHard,
        true,
        TripletReduction::MeanAll,
    ),
    (
        "batch_all_mean_all",
        Miner::BatchAll,
        false,
        TripletReduction::MeanAll,
    ),
    (
        "batch_all_mean_positive",
        Miner::BatchAll,
        false,
        TripletReduction::MeanNonZero,
    ),
    (
        "semi_hard",
        Miner::SemiHard,
        false,
        TripletReduction::MeanAll,
    ),
];

fn distance_named(name: &str) -> Distance {
    match name {
        "euclidean" => Distance::Euclidean,
        "squared_euclidean" => Distance::SquaredEuclidean,
        "cosine" => Distance::Cosine,
        other => panic!("unknown distance {other}"),
    }
}

fn loss_named(name: &str) -> (Miner, bool, TripletReduction) {
    let (_, miner, soft, reduction) = LOSSES
        .iter()
        .find(|(n, ..)| *n == name)
        .unwrap_or_else(|| panic!("unknown loss {name}"));
    (*miner, *soft, *reduction)
}

fn build(
    distance: Distance,
    miner: Miner,
    soft: bool,
    reduction: TripletReduction,
    margin: f64,
) -> TripletLoss {
    TripletLossConfig::new()
        .with_distance(distance)
        .with_miner(miner)
        .with_soft_margin(soft)
        .with_reduction(reduction)
        .with_margin(margin)
        .init()
        .unwrap()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn embeddings_tensor(data: &[f32], d: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data.to_vec(), [data.len() / d, d]), device)
}

fn labels_tensor(labels: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

// ---------------------------------------------------------------------------------------------
// The naive f64 reference, written from the papers.

fn naive_distance(a: &[f64], b: &[f64], distance: Distance) -> f64 {
    let squared: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    match distance {
        Distance::Euclidean => squared.sqrt(),
        Distance::SquaredEuclidean => squared,
        Distance::Cosine => {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
            1.0 - dot / (norm(a) * norm(b))
        }
    }
}

/// `(loss, valid triplets, triplets with a positive loss)`.
#[allow(clippy::too_many_arguments)] // the batch, then the loss's five settings
fn naive_triplet(
    embeddings: &[f64],
    d: usize,
    labels: &[i64],
    distance: Distance,
    miner: Miner,
    soft: bool,
    reduction: TripletReduction,
    margin: f64,
) -> (f64, usize, usize) {
    let rows: Vec<&[f64]> = embeddings.chunks(d).collect();
    let n = rows.len();
    let dist = |i: usize, j: usize| naive_distance(rows[i], rows[j], distance);
    let term = |ap: f64, an: f64| {
        if soft {
            (1.0 + (ap - an).exp()).ln()
        } else {
            (ap - an + margin).max(0.0)
        }
    };
    let mut terms = Vec::new();
    for a in 0..n {
        let positives: Vec<usize> = (0..n)
            .filter(|&p| p != a && labels[p] == labels[a])
            .collect();
        let negatives: Vec<usize> = (0..n).filter(|&q| labels[q] != labels[a]).collect();
        if positives.is_empty() || negatives.is_empty() {
            continue;
        }
        match miner {
            Miner::BatchHard => {
                let ap = positives
                    .iter()
                    .map(|&p| dist(a, p))
                    .fold(f64::MIN, f64::max);
                let an = negatives
                    .iter()
                    .map(|&q| dist(a, q))
                    .fold(f64::MAX, f64::min);
                terms.push(term(ap, an));
            }
            Miner::BatchAll => {
                for &p in &positives {
                    for &q in &negatives {
                        terms.push(term(dist(a, p), dist(a, q)));
                    }
                }
            }
            Miner::SemiHard => {
                for &p in &positives {
                    let ap = dist(a, p);
                    let farther = negatives.iter().map(|&q| dist(a, q)).filter(|&an| an > ap);
                    let an = farther
                        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.min(x))))
                        .unwrap_or_else(|| {
                            negatives
                                .iter()
                                .map(|&q| dist(a, q))
                                .fold(f64::MIN, f64::max)
                        });
                    terms.push(term(ap, an));
                }
            }
        }
    }
    // softplus is positive everywhere, even where float32 would underflow it to 0.
    let active = if soft {
        terms.len()
    } else {
        terms.iter().filter(|&&t| t > 0.0).count()
    };
    let sum: f64 = terms.iter().sum();
    let denominator = match reduction {
        TripletReduction::MeanAll => terms.len(),
        TripletReduction::MeanNonZero => active,
    };
    (sum / denominator.max(1) as f64, terms.len(), active)
}

// ---------------------------------------------------------------------------------------------

fn matches_pytorch_losses(device: &Device) {
    let fixture: Fixture = read_fixture("triplet.json");
    let labels = fixture.labels.i64();
    let emb = fixture.embeddings.f32();
    let emb64: Vec<f64> = emb.iter().map(|&v| f64::from(v)).collect();
    assert_eq!(fixture.cases.len(), 6);
    for case in &fixture.cases {
        let distance = distance_named(&case.distance);
        for (name, miner, soft, reduction) in LOSSES {
            let expected = match name {
                "batch_hard" => case.batch_hard,
                "batch_hard_soft_margin" => case.batch_hard_soft_margin,
                "batch_all_mean_all" => case.batch_all_mean_all,
                "batch_all_mean_positive" => case.batch_all_mean_positive,
                _ => case.semi_hard,
            };
            let what = format!("{name} {} margin {}", case.distance, case.margin);
            let (naive, naive_valid, naive_active) = naive_triplet(
                &emb64,
                6,
                &labels,
                distance,
                miner,
                soft,
                reduction,
                case.margin,
            );
            assert!(
                (naive - expected).abs() < 1e-10,
                "{what}: naive {naive} vs {expected}"
            );

            let out = build(distance, miner, soft, reduction, case.margin).forward(
                embeddings_tensor(&emb, 6, device),
                labels_tensor(&labels, device),
            );
            let counts = out.counts();
            assert_close(&values(out.loss), &[expected], 1e-5, 1e-5, &what);
            let expected_valid = match miner {
                Miner::BatchHard => 12,
                Miner::BatchAll => case.batch_all_num_valid,
                Miner::SemiHard => case.semi_hard_num_pairs,
            };
            assert_eq!(
                (counts.num_triplets, naive_valid),
                (expected_valid, expected_valid),
                "{what}"
            );
            assert_eq!(counts.num_active, naive_active, "{what}");
            if miner == Miner::BatchAll && !soft {
                assert_eq!(counts.num_active, case.batch_all_num_positive, "{what}");
            }
        }
    }
}

fn matches_pytorch_gradients(device: &Device) {
    let fixture: Fixture = read_fixture("triplet.json");
    let labels = fixture.labels.i64();
    let device = device.clone().autodiff();
    assert_eq!(fixture.gradients.len(), 15);
    for entry in &fixture.gradients {
        let (miner, soft, reduction) = loss_named(&entry.loss);
        let loss_fn = build(
            distance_named(&entry.distance),
            miner,
            soft,
            reduction,
            entry.margin,
        );
        let emb = embeddings_tensor(&fixture.embeddings.f32(), 6, &device).require_grad();
        let out = loss_fn.forward(emb.clone(), labels_tensor(&labels, &device));
        let grads = out.loss.backward();
        let what = format!("{} {}", entry.loss, entry.distance);
        assert_close(&values(out.loss), &[entry.loss_value], 1e-5, 1e-5, &what);
        let grad = values(emb.grad(&grads).expect("embeddings have a gradient"));
        assert_close(
            &grad,
            &entry.grad_embeddings.data,
            1e-5,
            1e-4,
            &format!("{what} grad"),
        );
    }
}

fn distances_and_miners_match_pytorch(device: &Device) {
    let fixture: Fixture = read_fixture("triplet.json");
    let labels = fixture.labels.i64();
    for mining in &fixture.mining {
        let distance = distance_named(&mining.distance);
        let emb = embeddings_tensor(&fixture.embeddings.f32(), 6, device);
        let matrix = distance.pairwise(emb);
        let d = &mining.distance_matrix.data;
        assert_close(&values(matrix.clone()), d, 1e-5, 1e-5, &mining.distance);
        let labels_t = labels_tensor(&labels, device);

        // Batch hard: one triplet per anchor, the fixture's farthest positive and closest negative.
        let hard = Miner::BatchHard.mine_triplets(matrix.clone(), labels_t.clone());
        let expected: Vec<Triplet> = (0..12)
            .map(|a| Triplet {
                anchor: a,
                positive: mining.batch_hard_positive_index.i64()[a] as usize,
                negative: mining.batch_hard_negative_index.i64()[a] as usize,
            })
            .collect();
        assert_eq!(hard, expected, "batch hard, {}", mining.distance);

        // Semi-hard: rows [a, p, n*, fallback] in the same order; a fallback is a negative
        // closer than the positive (no farther one existed).
        let semi = Miner::SemiHard.mine_triplets(matrix.clone(), labels_t.clone());
        let rows = mining.semi_hard_pairs.i64();
        assert_eq!(semi.len(), 24);
        let mut fallbacks = 0;
        for (t, row) in semi.iter().zip(rows.chunks(4)) {
            let found = [t.anchor as i64, t.positive as i64, t.negative as i64];
            assert_eq!(found, row[..3], "semi-hard, {}", mining.distance);
            let fallback = d[t.anchor * 12 + t.negative] < d[t.anchor * 12 + t.positive];
            assert_eq!(i64::from(fallback), row[3]);
            fallbacks += usize::from(fallback);
        }
        assert_eq!(fallbacks, mining.semi_hard_num_fallback);

        // Batch all: every (a, p, n) with p a positive and n a negative of a.
        let all = Miner::BatchAll.mine_triplets(matrix, labels_t);
        assert_eq!(all.len(), 216);
        for t in &all {
            assert!(t.anchor != t.positive && labels[t.anchor] == labels[t.positive]);
            assert_ne!(labels[t.anchor], labels[t.negative]);
        }
    }
}

fn host_triplets_give_the_device_loss(device: &Device) {
    let fixture: Fixture = read_fixture("triplet.json");
    let labels = fixture.labels.i64();
    let emb = fixture.embeddings.f32();
    for distance in [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Cosine,
    ] {
        for (name, miner, soft, reduction) in LOSSES {
            let loss_fn = build(distance, miner, soft, reduction, 0.2);
            let matrix = distance.pairwise(embeddings_tensor(&emb, 6, device));
            let triplets = miner.mine_triplets(matrix, labels_tensor(&labels, device));
            let host = loss_fn.forward_triplets(embeddings_tensor(&emb, 6, device), &triplets);
            let on_device = loss_fn.forward(
                embeddings_tensor(&emb, 6, device),
                labels_tensor(&labels, device),
            );
            let what = format!("{name} {distance:?}");
            let expected: Vec<f64> = values(on_device.loss.clone())
                .iter()
                .map(|&v| v.into())
                .collect();
            assert_close(&values(host.loss.clone()), &expected, 1e-6, 1e-6, &what);
            assert_eq!(host.counts(), on_device.counts(), "{what}");
        }
    }
}

/// Labels with a singleton class (an anchor without positives) and unequal class sizes.
const LABELS: [i64; 11] = [0, 1, 0, 2, 1, 3, 0, 1, 2, 2, 0];

/// Deterministic pseudo-random values in [-2, 2), the same on every backend.
fn pseudo_uniform(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(7);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f64 / (1u64 << 24) as f64 * 4.0 - 2.0) as f32
        })
        .collect()
}

fn matches_naive_reference(device: &Device) {
    let d = 4;
    let emb = pseudo_uniform(LABELS.len() * d, 5);
    let emb64: Vec<f64> = emb.iter().map(|&v| f64::from(v)).collect();
    for distance in [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Cosine,
    ] {
        for miner in [Miner::BatchHard, Miner::BatchAll, Miner::SemiHard] {
            for soft in [false, true] {
                for reduction in [TripletReduction::MeanAll, TripletReduction::MeanNonZero] {
                    for margin in [0.0, 0.3, 1.0] {
                        let (expected, valid, active) = naive_triplet(
                            &emb64, d, &LABELS, distance, miner, soft, reduction, margin,
                        );
                        let out = build(distance, miner, soft, reduction, margin).forward(
                            embeddings_tensor(&emb, d, device),
                            labels_tensor(&LABELS, device),
                        );
                        let what =
                            format!("{distance:?} {miner:?} soft {soft} {reduction:?} m {margin}");
                        let counts = out.counts();
                        assert_close(&values(out.loss), &[expected], 1e-5, 1e-4, &what);
                        assert_eq!(
                            (counts.num_triplets, counts.num_active),
                            (valid, active),
                            "{what}"
                        );
                    }
                }
            }
        }
    }
}

fn gradient_matches_finite_differences(device: &Device) {
    // Central differences (step 1e-6) of the naive f64 loops on the fixture batch, whose mining
    // decisions are separated by gaps > 1e-3, against the autodiff gradient: every loss, cosine
    // distance (the one whose gradient goes through the normalisation).
    let fixture: Fixture = read_fixture("triplet.json");
    let labels = fixture.labels.i64();
    let emb = fixture.embeddings.f32();
    let emb64: Vec<f64> = emb.iter().map(|&v| f64::from(v)).collect();
    let device = device.clone().autodiff();
    let h = 1e-6;
    for (name, miner, soft, reduction) in LOSSES {
        let x = embeddings_tensor(&emb, 6, &device).require_grad();
        let loss = build(Distance::Cosine, miner, soft, reduction, 0.2)
            .forward(x.clone(), labels_tensor(&labels, &device))
            .loss;
        let analytic = values(x.grad(&loss.backward()).unwrap());
        let numeric: Vec<f64> = (0..emb64.len())
            .map(|i| {
                let f = |delta: f64| {
                    let mut e = emb64.clone();
                    e[i] += delta;
                    naive_triplet(
                        &e,
                        6,
                        &labels,
                        Distance::Cosine,
                        miner,
                        soft,
                        reduction,
                        0.2,
                    )
                    .0
                };
                (f(h) - f(-h)) / (2.0 * h)
            })
            .collect();
        assert_close(&analytic, &numeric, 1e-5, 1e-4, name);
    }
}

fn no_valid_triplet_gives_zero_loss(device: &Device) {
    let device = device.clone().autodiff();
    let emb = pseudo_uniform(5 * 3, 9);
    // All one class (no negatives), all different classes (no positives), a single sample.
    for labels in [&[4i64, 4, 4, 4, 4][..], &[0, 1, 2, 3, 4], &[7]] {
        let n = labels.len();
        for distance in [
            Distance::Euclidean,
            Distance::SquaredEuclidean,
            Distance::Cosine,
        ] {
            for (name, miner, soft, reduction) in LOSSES {
                let x = embeddings_tensor(&emb[..n * 3], 3, &device).require_grad();
                let out = build(distance, miner, soft, reduction, 0.2)
                    .forward(x.clone(), labels_tensor(labels, &device));
                let grads = out.loss.backward();
                let what = format!("{labels:?} {distance:?} {name}");
                assert_eq!(values(out.loss.clone()), [0.0], "{what}");
                let grad = values(x.grad(&grads).expect("a (zero) gradient"));
                assert!(grad.iter().all(|g| *g == 0.0), "{what}: {grad:?}");
                let counts = out.counts();
                assert_eq!((counts.num_triplets, counts.num_active), (0, 0), "{what}");
                assert!(no_valid_triplet_warned());
            }
        }
    }
    // An empty list of host-mined triplets, too.
    let x = embeddings_tensor(&emb, 3, &device).require_grad();
    let out = build(
        Distance::Euclidean,
        Miner::BatchHard,
        false,
        TripletReduction::MeanAll,
        0.2,
    )
    .forward_triplets(x.clone(), &[]);
    let grads = out.loss.backward();
    assert_eq!(values(out.loss.clone()), [0.0]);
    assert!(values(x.grad(&grads).unwrap()).iter().all(|g| *g == 0.0));
    assert_eq!(out.counts().num_triplets, 0);
}

fn equal_embeddings_have_finite_gradients(device: &Device) {
    // Every distance 0: the square root's derivative is infinite there, the loss must not be NaN.
    let device = device.clone().autodiff();
    for distance in [
        Distance::Euclidean,
        Distance::SquaredEuclidean,
        Distance::Cosine,
    ] {
        for (name, miner, soft, reduction) in LOSSES {
            let x = Tensor::<2>::ones([6, 3], &device).require_grad();
            let out = build(distance, miner, soft, reduction, 0.5)
                .forward(x.clone(), labels_tensor(&[0, 0, 1, 1, 2, 2], &device));
            let grads = out.loss.backward();
            let what = format!("{distance:?} {name}");
            let expected = if soft { 2f64.ln() } else { 0.5 };
            assert_close(&values(out.loss.clone()), &[expected], 1e-5, 1e-5, &what);
            let grad = values(x.grad(&grads).unwrap());
            assert!(grad.iter().all(|g| g.is_finite()), "{what}: {grad:?}");
        }
    }
}

repr_testing::backend_tests!(
    matches_pytorch_losses,
    matches_pytorch_gradients,
    distances_and_miners_match_pytorch,
    host_triplets_give_the_device_loss,
    matches_naive_reference,
    gradient_matches_finite_differences,
    no_valid_triplet_gives_zero_loss,
    equal_embeddings_have_finite_gradients
);

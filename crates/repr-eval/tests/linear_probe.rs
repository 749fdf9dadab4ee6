//! Linear probe: Adam steps from zero computed by hand, separable data, standardisation.

use burn::tensor::Device;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_eval::{Embeddings, EvalError, LinearProbeConfig, linear_probe};

fn assert_close64(actual: &[f64], expected: &[f64], atol: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: {actual:?}");
    for (a, e) in actual.iter().zip(expected) {
        assert!((a - e).abs() <= atol, "{what}: {actual:?} vs {expected:?}");
    }
}

/// Training set (2 classes, 2-D, no standardisation), one batch of all 4, zero init:
///   a = (1, 0) class 0, b = (2, 1) class 0, c = (-1, 0) class 1, d = (0, -2) class 1.
/// At W = 0, b = 0 every softmax is (1/2, 1/2), so the first epoch's loss is ln 2 = 0.693147.
/// Gradient of the mean cross-entropy: dL/dlogits_i = (p_i - onehot_i) / 4, which is
/// (-1/8, 1/8) for class 0 and (1/8, -1/8) for class 1;
///   dL/dW = Σ x_iᵀ δ_i: row 0 = 1·(-1/8, 1/8) + 2·(-1/8, 1/8) + (-1)·(1/8, -1/8) + 0
///                            = (-1/2, 1/2);
///                     row 1 = 0 + 1·(-1/8, 1/8) + 0 + (-2)·(1/8, -1/8) = (-3/8, 3/8);
///   dL/db = 2·(-1/8, 1/8) + 2·(1/8, -1/8) = (0, 0).
/// Adam's first step is lr · g / (|g| + ε) (bias corrections cancel), so with lr = 0.5:
///   W = [[0.5, -0.5], [0.5, -0.5]] (to 1e-7), b = (0, 0).
/// Logits x W: a (0.5, -0.5) → 0 ✓, b (1.5, -1.5) → 0 ✓, c (-0.5, 0.5) → 1 ✓, d (-1, 1) → 1 ✓:
/// train top-1 = 1.
/// Test: e = (0, 1) class 0 → (0.5, -0.5) → 0 ✓; f = (1, -3) class 1 → (-1, 1) → 1 ✓;
///       g = (3, -4) class 0 → (-0.5, 0.5) → 1 ✗: test top-1 = 2/3.
/// A second epoch starts from that W; its loss is the mean of ln(1 + e^(-margin)) with margins
/// (logit of the label minus the other) a 1, b 3, c 1, d 2:
///   (0.3132617 + 0.0485874 + 0.3132617 + 0.1269280) / 4 = 0.2005097.
fn adam_steps_by_hand(device: &Device) {
    let train = Embeddings::new(vec![1.0, 0.0, 2.0, 1.0, -1.0, 0.0, 0.0, -2.0], 4, 2).unwrap();
    let train_labels = [0, 0, 1, 1];
    let test = Embeddings::new(vec![0.0, 1.0, 1.0, -3.0, 3.0, -4.0], 3, 2).unwrap();
    let test_labels = [0, 1, 0];
    let config = LinearProbeConfig::new()
        .with_learning_rate(0.5)
        .with_epochs(1)
        .with_batch_size(4)
        .with_standardize(false)
        .with_zero_init(true);
    let r = linear_probe(
        &train,
        &train_labels,
        &test,
        &test_labels,
        2,
        &config,
        device,
    )
    .unwrap();
    assert_close64(&r.epoch_losses, &[std::f64::consts::LN_2], 1e-6, "epoch 1");
    assert_eq!(r.train_top1, 1.0);
    assert!((r.test_top1 - 2.0 / 3.0).abs() < 1e-12, "{}", r.test_top1);

    let two = config.with_epochs(2);
    let r = linear_probe(&train, &train_labels, &test, &test_labels, 2, &two, device).unwrap();
    assert_close64(
        &r.epoch_losses,
        &[std::f64::consts::LN_2, 0.2005097],
        1e-6,
        "epochs 1 and 2",
    );
}

/// Three classes in 16-D, uniform noise in [-1, 1] plus 3 on the class's own axis (separable),
/// and features on wildly different scales (1 to 1e4, shifted): with standardisation Adam must
/// separate them, and the loss must fall.
fn learns_separable_data(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let dim = 16;
    let mut sample = |n: usize| {
        let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let data = labels
            .iter()
            .flat_map(|&l| {
                let mut row: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                row[l as usize] += 3.0;
                // Scales from 1 to 1e4 and a shift: standardisation undoes them.
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = *v * 10f32.powi(j as i32 % 5) + 7.0);
                row
            })
            .collect();
        (Embeddings::new(data, n, dim).unwrap(), labels)
    };
    let (train, train_labels) = sample(600);
    let (test, test_labels) = sample(300);
    let config = LinearProbeConfig::new()
        .with_learning_rate(0.01)
        .with_epochs(15)
        .with_batch_size(64);
    let r = linear_probe(
        &train,
        &train_labels,
        &test,
        &test_labels,
        3,
        &config,
        device,
    )
    .unwrap();
    assert_eq!(r.epoch_losses.len(), 15);
    assert!(
        r.epoch_losses[14] < 0.5 * r.epoch_losses[0],
        "{:?}",
        r.epoch_losses
    );
    assert!(r.train_top1 > 0.95 && r.test_top1 > 0.95, "{r:?}");
}

fn rejects_bad_input(device: &Device) {
    let e = Embeddings::new(vec![1.0, 0.0], 1, 2).unwrap();
    let config = LinearProbeConfig::new();
    let err = linear_probe(&e, &[3], &e, &[0], 2, &config, device).unwrap_err();
    assert!(
        matches!(&err, EvalError::LabelOutOfRange { field, .. } if field == "train_labels"),
        "{err}"
    );
    let bad = config.clone().with_batch_size(0);
    let err = linear_probe(&e, &[0], &e, &[0], 2, &bad, device).unwrap_err();
    assert!(err.to_string().contains("config.batch_size"), "{err}");
    let empty = Embeddings::new(vec![], 0, 2).unwrap();
    let err = linear_probe(&empty, &[], &e, &[0], 2, &config, device).unwrap_err();
    assert!(err.to_string().contains("train"), "{err}");
}

repr_testing::backend_tests!(adam_steps_by_hand, learns_separable_data, rejects_bad_input);

#[test]
fn defaults_are_the_reference_protocol() {
    let c = LinearProbeConfig::default();
    assert_eq!((c.learning_rate, c.epochs, c.batch_size), (1e-3, 30, 256));
    assert!(c.standardize && !c.zero_init && c.weight_decay == 0.0);
}

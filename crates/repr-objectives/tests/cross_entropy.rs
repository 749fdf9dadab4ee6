//! Cross-entropy against PyTorch (`fixtures/cross_entropy.json`, made by
//! `fixtures/make_fixtures.py` with `torch.nn.functional.cross_entropy`) and a naive f64 loop.

use burn::tensor::{Device, Int, Tensor, TensorData};
use repr_objectives::{CrossEntropyLossConfig, Reduction};
use repr_testing::{Array, assert_close, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    label_smoothing: f64,
    logits: Array,
    targets: Array,
    loss: f64,
    grad_logits: Array,
}

/// The definition, written as loops in f64.
fn naive_loss(logits: &[f64], targets: &[i64], classes: usize, eps: f64) -> f64 {
    let batch = targets.len();
    let mut total = 0.0;
    for i in 0..batch {
        let row = &logits[i * classes..(i + 1) * classes];
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let log_z = max + row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        for (c, &x) in row.iter().enumerate() {
            let q =
                (1.0 - eps) * f64::from(u8::from(c as i64 == targets[i])) + eps / classes as f64;
            total -= q * (x - log_z);
        }
    }
    total / batch as f64
}

fn matches_pytorch(device: &Device) {
    let fixture: Fixture = read_fixture("cross_entropy.json");
    assert_eq!(fixture.cases.len(), 4);
    let device = device.clone().autodiff();
    for case in &fixture.cases {
        let [batch, classes] = case.logits.dims();
        let logits = Tensor::<2>::from_data(
            TensorData::new(case.logits.f32(), [batch, classes]),
            &device,
        )
        .require_grad();
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(case.targets.i64(), [batch]), &device);
        let loss_fn = CrossEntropyLossConfig::new()
            .with_smoothing(case.label_smoothing)
            .init()
            .unwrap();
        let loss = loss_fn.forward(logits.clone(), targets);
        let grads = loss.backward();
        let value: Vec<f32> = loss.into_data().try_to_vec().unwrap();
        assert_close(
            &value,
            &[case.loss],
            1e-5,
            1e-5,
            &format!("{} loss", case.name),
        );
        // The fixture's f64 values are the exact float32 inputs, widened.
        let inputs: Vec<f64> = case.logits.f32().iter().map(|&v| f64::from(v)).collect();
        let naive = naive_loss(&inputs, &case.targets.i64(), classes, case.label_smoothing);
        assert!(
            (naive - case.loss).abs() < 1e-9 * case.loss.abs().max(1.0),
            "{}",
            case.name
        );
        let grad: Vec<f32> = logits
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_close(
            &grad,
            &case.grad_logits.data,
            1e-6,
            1e-4,
            &format!("{} grad", case.name),
        );
    }
}

fn sum_reduction_and_per_sample(device: &Device) {
    // Two samples, three classes; sample 0 is confidently right, sample 1 uniform.
    let logits = Tensor::<2>::from_floats([[10.0, 0.0, 0.0], [1.0, 1.0, 1.0]], device);
    let targets = Tensor::<1, Int>::from_ints([0, 2], device);
    let per_sample: Vec<f32> = CrossEntropyLossConfig::new()
        .init()
        .unwrap()
        .forward_no_reduction(logits.clone(), targets.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let expected0 = (1.0 + 2.0 * (-10f64).exp()).ln();
    assert_close(
        &per_sample,
        &[expected0, 3f64.ln()],
        1e-6,
        1e-5,
        "per-sample",
    );
    let sum: Vec<f32> = CrossEntropyLossConfig::new()
        .with_reduction(Reduction::Sum)
        .init()
        .unwrap()
        .forward(logits, targets)
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_close(&sum, &[expected0 + 3f64.ln()], 1e-6, 1e-5, "sum");
}

repr_testing::backend_tests!(matches_pytorch, sum_reduction_and_per_sample);

#[test]
fn smoothing_out_of_range_is_rejected() {
    for bad in [-0.1, 1.0, f64::NAN] {
        let err = CrossEntropyLossConfig::new()
            .with_smoothing(bad)
            .init()
            .unwrap_err();
        assert!(err.to_string().contains("smoothing"), "{err}");
    }
}

//! The supervised contrastive loss against pytorch-metric-learning's own `SupConLoss`
//! (`fixtures/supcon.json`: loss and gradient, f64 on the f32 inputs), against NT-Xent on two
//! views of distinct images (where the two definitions coincide), and its edge cases.

use burn::tensor::{Device, Int, Tensor, TensorData};
use repr_objectives::{NtXentLossConfig, SupConLossConfig};
use repr_testing::assert_close;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    temperature: f64,
    embeddings: Vec<Vec<f64>>,
    labels: Vec<i64>,
    loss: f64,
    grad_embeddings: Vec<Vec<f64>>,
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn rows(data: &[Vec<f64>], device: &Device) -> Tensor<2> {
    let (n, d) = (data.len(), data[0].len());
    let flat: Vec<f32> = data.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [n, d]), device)
}

fn labels(labels: &[i64], device: &Device) -> Tensor<1, Int> {
    Tensor::from_data(TensorData::new(labels.to_vec(), [labels.len()]), device)
}

fn matches_pytorch_metric_learning(device: &Device) {
    let fixture: Fixture = repr_testing::read_fixture("supcon.json");
    assert_eq!(fixture.cases.len(), 3);
    let device = device.clone().autodiff();
    for (i, case) in fixture.cases.iter().enumerate() {
        let loss_fn = SupConLossConfig::new()
            .with_temperature(case.temperature)
            .init()
            .unwrap();
        let x = rows(&case.embeddings, &device).require_grad();
        let loss = loss_fn.forward(x.clone(), labels(&case.labels, &device));
        let grads = loss.backward();
        assert_close(
            &values(loss),
            &[case.loss],
            1e-5,
            1e-5,
            &format!("case {i} loss"),
        );
        let expected: Vec<f64> = case.grad_embeddings.iter().flatten().copied().collect();
        let grad = values(x.grad(&grads).expect("a gradient"));
        assert!(grad.iter().all(|g| g.is_finite()), "case {i}: {grad:?}");
        assert_close(&grad, &expected, 1e-6, 1e-4, &format!("case {i} gradient"));
    }
}

/// Two views of 5 images with 5 different labels: each view's only positive is the other view,
/// so SupCon is NT-Xent, value and gradient.
fn equals_nt_xent_on_two_views_of_distinct_images(device: &Device) {
    let device = device.clone().autodiff();
    let z1: Vec<f32> = (0..20).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
    let z2: Vec<f32> = (0..20).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.2).collect();
    let t = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [5, 4]), &device);
    for temperature in [0.1, 0.5] {
        let a = t(&z1).require_grad();
        let b = t(&z2).require_grad();
        let nt = NtXentLossConfig::new()
            .with_temperature(temperature)
            .init()
            .unwrap()
            .forward(a.clone(), b.clone());
        let nt_grads = nt.backward();
        let (ga, gb) = (a.grad(&nt_grads).unwrap(), b.grad(&nt_grads).unwrap());
        let a2 = t(&z1).require_grad();
        let b2 = t(&z2).require_grad();
        let both = Tensor::cat(vec![a2.clone(), b2.clone()], 0);
        let sup = SupConLossConfig::new()
            .with_temperature(temperature)
            .init()
            .unwrap()
            .forward(both, labels(&[0, 1, 2, 3, 4, 0, 1, 2, 3, 4], &device));
        let sup_grads = sup.backward();
        let what = format!("tau {temperature}");
        let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
        assert_close(&values(sup), &widen(values(nt)), 1e-6, 1e-5, &what);
        assert_close(
            &values(a2.grad(&sup_grads).unwrap()),
            &widen(values(ga)),
            1e-6,
            1e-4,
            &format!("{what} grad z1"),
        );
        assert_close(
            &values(b2.grad(&sup_grads).unwrap()),
            &widen(values(gb)),
            1e-6,
            1e-4,
            &format!("{what} grad z2"),
        );
    }
}

/// A tiny temperature (τ = 0.01: similarities up to 100) stays finite, with a finite gradient;
/// a single row, or rows with no shared label, give 0.
fn edge_cases_stay_finite(device: &Device) {
    let device = device.clone().autodiff();
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 0.99, 0.1, -1.0, 0.2, 0.0, 1.0], [4, 2]),
        &device,
    )
    .require_grad();
    let loss_fn = SupConLossConfig::new()
        .with_temperature(0.01)
        .init()
        .unwrap();
    let loss = loss_fn.forward(x.clone(), labels(&[0, 0, 1, 1], &device));
    let grads = loss.backward();
    let value = values(loss)[0];
    assert!(value.is_finite() && value > 0.0, "{value}");
    assert!(
        values(x.grad(&grads).unwrap())
            .iter()
            .all(|g| g.is_finite())
    );
    let none = loss_fn.forward(x.clone(), labels(&[0, 1, 2, 3], &device));
    assert_eq!(values(none), [0.0]);
    let one = loss_fn.forward(x.slice([0..1, 0..2]), labels(&[0], &device));
    assert_eq!(values(one), [0.0]);
}

repr_testing::backend_tests!(
    matches_pytorch_metric_learning,
    equals_nt_xent_on_two_views_of_distinct_images,
    edge_cases_stay_finite
);

#[test]
fn bad_temperature_is_named() {
    let err = SupConLossConfig::new()
        .with_temperature(0.0)
        .init()
        .unwrap_err();
    assert!(err.to_string().contains("temperature"), "{err}");
    let err = toml_like_unknown_key();
    assert!(err.contains("temprature"), "{err}");
}

fn toml_like_unknown_key() -> String {
    serde_json::from_str::<SupConLossConfig>(r#"{"temprature": 0.2}"#)
        .unwrap_err()
        .to_string()
}

//! BYOL (Grill et al. 2020): the normalised regression loss against an f64 reference written
//! from Eq. 2, its closed forms and gradient, the target's decay schedule, and the momentum
//! (EMA) update of a target network.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{BatchNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use repr_objectives::momentum::{momentum_copy, momentum_update};
use repr_objectives::{byol_loss, byol_symmetric_loss, target_decay};
use repr_testing::assert_close;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Mean over rows of 2 - 2 cos(p_i, z_i), in f64.
fn reference(p: &[f32], z: &[f32], dim: usize) -> f64 {
    let rows = p.len() / dim;
    (0..rows)
        .map(|i| {
            let (a, b) = (&p[i * dim..][..dim], &z[i * dim..][..dim]);
            let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            2.0 - 2.0 * dot / (na * nb)
        })
        .sum::<f64>()
        / rows as f64
}

fn matches_the_reference_and_closed_forms(device: &Device) {
    let p = Tensor::<2>::random([6, 5], Distribution::Normal(0.0, 1.0), device);
    let z = Tensor::<2>::random([6, 5], Distribution::Normal(0.0, 2.0), device);
    let (pv, zv) = (values(p.clone()), values(z.clone()));
    let loss = values(byol_loss(p.clone(), z.clone()));
    assert_close(&loss, &[reference(&pv, &zv, 5)], 1e-6, 1e-5, "BYOL loss");

    // Identical directions give 0, opposite ones 4, whatever the scale.
    let same = values(byol_loss(p.clone(), p.clone().mul_scalar(3.0)));
    assert_close(&same, &[0.0], 1e-5, 0.0, "p = 3p");
    let opposite = values(byol_loss(p.clone(), p.clone().neg()));
    assert_close(&opposite, &[4.0], 1e-5, 0.0, "p = -p");
    // Symmetric: the two directions of the pair are added.
    let sym = values(byol_symmetric_loss(
        p.clone(),
        z.clone(),
        p.clone(),
        z.clone(),
    ));
    let expected = 2.0 * reference(&pv, &zv, 5);
    assert_close(&sym, &[expected], 1e-6, 1e-5, "symmetric");
    // A zero prediction stays finite.
    let zero = values(byol_loss(
        Tensor::zeros([2, 5], device),
        z.clone().slice(0..2),
    ));
    assert_close(&zero, &[2.0], 1e-6, 0.0, "zero prediction");
}

/// d/dp_i of (2 - 2 cos(p_i, z_i)) / B = -2/B * (ẑ_i - cos_i p̂_i) / ‖p_i‖; the target gets none.
fn gradient_matches_the_hand_derivation(device: &Device) {
    let device = device.clone().autodiff();
    let (rows, dim) = (4, 3);
    let pv: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0)
        .collect();
    let zv: Vec<f32> = (0..rows * dim)
        .map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0)
        .collect();
    let p =
        Tensor::<2>::from_data(TensorData::new(pv.clone(), [rows, dim]), &device).require_grad();
    let z =
        Tensor::<2>::from_data(TensorData::new(zv.clone(), [rows, dim]), &device).require_grad();
    let grads = byol_loss(p.clone(), z.clone()).backward();
    let gp = values(p.grad(&grads).unwrap());
    assert!(
        z.grad(&grads).is_none(),
        "the target projection is detached"
    );
    let mut expected = Vec::new();
    for i in 0..rows {
        let (a, b) = (&pv[i * dim..][..dim], &zv[i * dim..][..dim]);
        let na = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let cos = a
            .iter()
            .zip(b)
            .map(|(x, y)| *x as f64 * *y as f64)
            .sum::<f64>()
            / (na * nb);
        for k in 0..dim {
            let (ah, bh) = (a[k] as f64 / na, b[k] as f64 / nb);
            expected.push(-2.0 / rows as f64 * (bh - cos * ah) / na);
        }
    }
    assert_close(&gp, &expected, 1e-6, 1e-4, "dL/dp");
}

repr_testing::backend_tests!(
    matches_the_reference_and_closed_forms,
    gradient_matches_the_hand_derivation,
    momentum_update_is_the_moving_average
);

#[test]
fn the_decay_rises_from_base_to_one_along_a_cosine() {
    assert!((target_decay(0, 100, 0.996) - 0.996).abs() < 1e-15);
    assert!((target_decay(50, 100, 0.996) - 0.998).abs() < 1e-12);
    assert!((target_decay(100, 100, 0.996) - 1.0).abs() < 1e-15);
    assert!(
        (target_decay(25, 100, 0.99) - (1.0 - 0.01 * (0.5f64.sqrt() + 1.0) / 2.0)).abs() < 1e-12
    );
    assert!(target_decay(30, 100, 0.9) < target_decay(31, 100, 0.9));
}

#[derive(Module, Debug)]
struct Net {
    linear: burn::nn::Linear,
    norm: burn::nn::BatchNorm,
}

#[derive(Default)]
struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.id);
    }
}

fn ids(net: &Net) -> Vec<ParamId> {
    let mut v = Ids::default();
    net.visit(&mut v);
    v.0
}

fn momentum_update_is_the_moving_average(device: &Device) {
    let device = device.clone().autodiff();
    let online = Net {
        linear: LinearConfig::new(3, 2).init(&device),
        norm: BatchNormConfig::new(2).init(&device),
    };
    let target = momentum_copy(&online);
    // Same values, new ids, no gradient.
    assert_eq!(
        values(target.linear.weight.val()),
        values(online.linear.weight.val())
    );
    // Every trainable parameter has a new id (BatchNorm's running statistics keep theirs:
    // Burn maps them in place, and they are never optimized or given gradients).
    assert_eq!(ids(&online).len(), ids(&target).len());
    for (a, b) in [
        (online.linear.weight.id, target.linear.weight.id),
        (online.norm.gamma.id, target.norm.gamma.id),
        (online.norm.beta.id, target.norm.beta.id),
    ] {
        assert_ne!(a, b, "fresh parameter ids");
    }
    assert!(!target.linear.weight.is_require_grad());

    // Move the online network, then average.
    let online = Net {
        linear: burn::nn::Linear {
            weight: Param::from_tensor(online.linear.weight.val().add_scalar(1.0).detach()),
            bias: online
                .linear
                .bias
                .map(|b| Param::from_tensor(b.val().mul_scalar(-2.0).detach())),
        },
        norm: online.norm,
    };
    let tau = 0.9;
    let before = values(target.linear.weight.val());
    let bias_before = values(target.linear.bias.as_ref().unwrap().val());
    let updated = momentum_update(target, &online, tau);
    let weight = values(updated.linear.weight.val());
    let expected: Vec<f64> = before
        .iter()
        .zip(values(online.linear.weight.val()))
        .map(|(t, o)| tau * *t as f64 + (1.0 - tau) * o as f64)
        .collect();
    assert_close(&weight, &expected, 1e-6, 1e-6, "EMA weight");
    let bias = values(updated.linear.bias.as_ref().unwrap().val());
    let expected: Vec<f64> = bias_before
        .iter()
        .zip(values(online.linear.bias.as_ref().unwrap().val()))
        .map(|(t, o)| tau * *t as f64 + (1.0 - tau) * o as f64)
        .collect();
    assert_close(&bias, &expected, 1e-6, 1e-6, "EMA bias");
    assert!(!updated.linear.weight.is_require_grad());
    assert!(!updated.linear.weight.val().is_require_grad());
}

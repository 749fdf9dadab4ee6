//! BYOL (Grill et al. 2020): the normalised regression loss against an f64 reference written
//! from Eq. 2, its closed forms and gradient, the target's decay schedule, and the momentum
//! (EMA) update of a target network.

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::nn::{BatchNormConfig, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use repr_objectives::momentum::{momentum_copy, momentum_update};
use repr_objectives::{ProjectionHeadConfig, byol_loss, byol_symmetric_loss, target_decay};
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

/// Mean over rows of 2 - 2 cos(p_i, z_i) on f64 values.
fn reference64(p: &[f64], z: &[f64], dim: usize) -> f64 {
    let rows = p.len() / dim;
    (0..rows)
        .map(|i| {
            let (a, b) = (&p[i * dim..][..dim], &z[i * dim..][..dim]);
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            2.0 - 2.0 * dot / (na * nb)
        })
        .sum::<f64>()
        / rows as f64
}

/// The gradient of the symmetric loss for both predictions against central differences of
/// the f64 definition; the two target projections get none.
fn symmetric_gradient_matches_finite_differences(device: &Device) {
    let device = device.clone().autodiff();
    let (rows, dim) = (3, 4);
    let input = |k: usize| -> Vec<f32> {
        (0..rows * dim)
            .map(|i| (((i + 5 * k) * 7 % 13) as f32 - 6.0) / 5.0 + 0.1 * k as f32)
            .collect()
    };
    let (p1, p2, t1, t2) = (input(0), input(1), input(2), input(3));
    let tensor = |v: &[f32]| {
        Tensor::<2>::from_data(TensorData::new(v.to_vec(), [rows, dim]), &device).require_grad()
    };
    let (tp1, tp2, tt1, tt2) = (tensor(&p1), tensor(&p2), tensor(&t1), tensor(&t2));
    let loss = byol_symmetric_loss(tp1.clone(), tp2.clone(), tt1.clone(), tt2.clone());
    let grads = loss.backward();
    assert!(tt1.grad(&grads).is_none() && tt2.grad(&grads).is_none());
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    let (p1, p2, t1, t2) = (f64s(&p1), f64s(&p2), f64s(&t1), f64s(&t2));
    let total = |p1: &[f64], p2: &[f64]| reference64(p1, &t2, dim) + reference64(p2, &t1, dim);
    let h = 1e-6;
    for (which, grad) in [(0, tp1.grad(&grads)), (1, tp2.grad(&grads))] {
        let grad = values(grad.unwrap());
        let expected: Vec<f64> = (0..rows * dim)
            .map(|i| {
                let (mut up, mut down) = ([p1.clone(), p2.clone()], [p1.clone(), p2.clone()]);
                up[which][i] += h;
                down[which][i] -= h;
                (total(&up[0], &up[1]) - total(&down[0], &down[1])) / (2.0 * h)
            })
            .collect();
        assert_close(&grad, &expected, 1e-5, 1e-4, "dL/dp (finite differences)");
    }
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

impl Net {
    fn new(device: &Device) -> Self {
        Net {
            linear: LinearConfig::new(3, 2).init(device),
            norm: BatchNormConfig::new(2).init(device),
        }
    }

    /// A training-mode forward: BatchNorm moves its running statistics.
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let y = self.linear.forward(x);
        let [batch, width] = y.dims();
        self.norm
            .forward(y.reshape([batch, width, 1]))
            .reshape([batch, width])
    }
}

/// Every float tensor of a module by path, with its id and values.
#[derive(Default)]
struct Tensors {
    path: Vec<String>,
    found: Vec<(String, ParamId, Vec<f32>)>,
}

impl ModuleVisitor for Tensors {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.found
            .push((self.path.join("."), param.id, values(param.val())));
    }
}

fn tensors<M: Module>(module: &M) -> Vec<(String, ParamId, Vec<f32>)> {
    let _ = module.valid(); // folds pending running-statistics updates in
    let mut v = Tensors::default();
    module.visit(&mut v);
    v.found
}

fn momentum_copy_is_an_independent_copy(device: &Device) {
    let device = device.clone().autodiff();
    let online = Net::new(&device);
    let target = momentum_copy(&online);
    let (before_online, before_target) = (tensors(&online), tensors(&target));
    assert_eq!(
        before_online.len(),
        6,
        "weight, bias, gamma, beta, running mean, var"
    );
    for ((path, id, value), (path_t, id_t, value_t)) in before_online.iter().zip(&before_target) {
        assert_eq!(path, path_t);
        assert_eq!(value, value_t, "{path}: same values");
        // Every trainable parameter has a new id (BatchNorm's running statistics keep theirs:
        // Burn offers no way to change a running state's id, and they are never optimized).
        if !path.starts_with("norm.running") {
            assert_ne!(id, id_t, "{path}: fresh parameter id");
        }
    }
    assert!(!target.linear.weight.is_require_grad());
    assert!(target.linear.weight.val().is_autodiff(), "same device kind");

    // Running statistics live in separate buffers: a forward of one network in training mode
    // moves its own statistics only.
    let x = Tensor::<2>::random([8, 3], Distribution::Normal(1.0, 2.0), &device);
    let _ = online.forward(x.clone());
    let mean = |net: &Net| values(net.norm.running_mean.value_sync());
    assert_ne!(
        mean(&online),
        before_online[4].2,
        "the online statistics moved"
    );
    assert_eq!(
        mean(&target),
        before_target[4].2,
        "the target statistics did not"
    );
    let online_mean = mean(&online);
    let _ = target.forward(x.mul_scalar(3.0));
    assert_ne!(mean(&target), before_target[4].2);
    assert_eq!(
        mean(&online),
        online_mean,
        "the target forward leaves the online alone"
    );

    // On a device without autodiff the copy stays there.
    let plain = Net::new(&device.clone().without_autodiff());
    let copy = momentum_copy(&plain);
    assert!(!copy.linear.weight.val().is_autodiff());
    assert!(!copy.norm.running_var.value().is_autodiff());
    assert_eq!(tensors(&copy).len(), 6);
}

/// `τ·t + (1 − τ)·o` in f32, as the update computes it, for every float tensor (weights,
/// biases, BatchNorm's γ, β, running mean and variance), bit for bit.
fn momentum_update_is_the_moving_average(device: &Device) {
    let device = device.clone().autodiff();
    let online = Net::new(&device);
    let target = momentum_copy(&online);
    // Move the online network: new parameters, and running statistics from a forward.
    let online = Net {
        linear: burn::nn::Linear {
            weight: Param::from_tensor(online.linear.weight.val().add_scalar(1.0).detach()),
            bias: online
                .linear
                .bias
                .map(|b| Param::from_tensor(b.val().mul_scalar(-2.0).detach())),
        },
        norm: burn::nn::BatchNorm {
            gamma: Param::from_tensor(online.norm.gamma.val().mul_scalar(0.5).detach()),
            beta: Param::from_tensor(online.norm.beta.val().add_scalar(0.25).detach()),
            ..online.norm
        },
    };
    let _ = online.forward(Tensor::random(
        [6, 3],
        Distribution::Normal(2.0, 3.0),
        &device,
    ));
    for tau in [0.9, 0.996, 0.5] {
        let (before, towards) = (tensors(&target), tensors(&online));
        let updated = momentum_update(target.clone(), &online, tau);
        let after = tensors(&updated);
        assert_eq!(after.len(), 6);
        let (a, b) = (tau as f32, (1.0 - tau) as f32);
        for ((path, _, t), ((_, _, o), (path_u, _, u))) in
            before.iter().zip(towards.iter().zip(&after))
        {
            assert_eq!(path, path_u);
            assert_ne!(t, o, "{path}: the test moves every tensor");
            let expected: Vec<f32> = t.iter().zip(o).map(|(t, o)| t * a + o * b).collect();
            let exact = u
                .iter()
                .zip(&expected)
                .all(|(u, e)| u.to_bits() == e.to_bits());
            assert!(exact, "τ = {tau}, {path}: {u:?} vs {expected:?}");
        }
        assert!(!updated.linear.weight.is_require_grad());
        assert!(!updated.linear.weight.val().is_tracked());
        assert!(!updated.norm.running_mean.value().is_tracked());
    }
    // Pending BatchNorm updates (a training-mode forward of each network right before the
    // update, as in a BYOL step) are folded in first: twins that ran the same forwards and were
    // read out give the expected values.
    let (online_twin, target_twin) = (momentum_copy(&online), momentum_copy(&target));
    let x = Tensor::<2>::random([5, 3], Distribution::Normal(-1.0, 2.0), &device);
    for net in [&online, &online_twin, &target, &target_twin] {
        let _ = net.forward(x.clone());
    }
    let (t, o) = (tensors(&target_twin), tensors(&online_twin));
    let updated = tensors(&momentum_update(target.clone(), &online, 0.9));
    let (a, b) = (0.9f32, (1.0 - 0.9f64) as f32);
    for ((path, _, t), ((_, _, o), (_, _, u))) in t.iter().zip(o.iter().zip(&updated)) {
        let expected: Vec<f32> = t.iter().zip(o).map(|(t, o)| t * a + o * b).collect();
        assert_eq!(u, &expected, "{path} after pending updates");
    }

    // τ = 1 keeps the target, τ = 0 copies the online network.
    let kept = momentum_update(target.clone(), &online, 1.0);
    assert_eq!(
        tensors(&kept).iter().map(|t| &t.2).collect::<Vec<_>>(),
        tensors(&target).iter().map(|t| &t.2).collect::<Vec<_>>()
    );
    let copied = momentum_update(target, &online, 0.0);
    assert_eq!(
        tensors(&copied).iter().map(|t| &t.2).collect::<Vec<_>>(),
        tensors(&online).iter().map(|t| &t.2).collect::<Vec<_>>()
    );
}

repr_testing::backend_tests!(
    matches_the_reference_and_closed_forms,
    gradient_matches_the_hand_derivation,
    symmetric_gradient_matches_finite_differences,
    momentum_copy_is_an_independent_copy,
    momentum_update_is_the_moving_average
);

#[test]
#[should_panic(expected = "momentum_update: tensors of the online network missing in the target")]
fn a_deeper_online_network_is_a_named_error() {
    let device = repr_testing::flex();
    let target = ProjectionHeadConfig::new(4, 8, 2).init(&device);
    let online = ProjectionHeadConfig::new(4, 8, 2)
        .with_layers(3)
        .init(&device);
    let _ = momentum_update(target, &online, 0.9);
}

#[test]
#[should_panic(expected = "`hidden.1.linear.weight` is not in the online network")]
fn a_deeper_target_network_is_a_named_error() {
    let device = repr_testing::flex();
    let target = ProjectionHeadConfig::new(4, 8, 2)
        .with_layers(3)
        .init(&device);
    let online = ProjectionHeadConfig::new(4, 8, 2).init(&device);
    let _ = momentum_update(target, &online, 0.9);
}

#[test]
#[should_panic(expected = "`output.weight` has another shape in the online network")]
fn transposed_shapes_are_a_named_error() {
    // Same number of elements (4·6 = 6·4 outputs), another shape.
    let device = repr_testing::flex();
    let target = ProjectionHeadConfig::new(4, 8, 6)
        .with_layers(1)
        .init(&device);
    let online = ProjectionHeadConfig::new(6, 8, 4)
        .with_layers(1)
        .init(&device);
    let _ = momentum_update(target, &online, 0.9);
}

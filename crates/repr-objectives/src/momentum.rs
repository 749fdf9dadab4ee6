//! Momentum (exponential-moving-average) copies of a network, as BYOL's target network
//! (Grill et al. 2020, Sec. 3.1) and MoCo's key encoder use them.
//!
//! - [`momentum_copy`] starts the target as a copy of the online network.
//! - [`momentum_update`] (the EMA update, `ema_update` in other code bases) moves it:
//!   `target ← τ·target + (1 − τ)·online` for every float tensor.
//!
//! Tensors are matched by their path in the module (`projector.hidden.0.linear.weight`), so the
//! copy has parameter ids of its own: an optimizer that keys its state (and `GradientsParams`
//! their gradients) by parameter id never mixes the two networks up.
//!
//! # BatchNorm running statistics
//! They are averaged like the parameters (every float tensor of the module is), so the target's
//! statistics follow its averaged weights. They only matter when the target runs in evaluation
//! mode: in training mode (BYOL's target forward) BatchNorm normalises with the batch's own
//! statistics, and also moves the target's running statistics, which the next update then
//! blends with the online ones. Each network keeps its statistics in a buffer of its own (see
//! [`momentum_copy`]); running statistics keep their `ParamId` (Burn gives a `RunningState` no
//! way to change it), which is harmless: they are never optimized.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A copy of `module` with fresh parameter ids and no gradient tracking: the starting point of
/// a momentum network (BYOL initialises the target as the online network). The copy is on the
/// same device, autodiff or not, with the same training flags.
///
/// ```
/// use burn::tensor::Device;
/// use repr_objectives::ProjectionHeadConfig;
/// use repr_objectives::momentum::{momentum_copy, momentum_update};
///
/// let device = Device::flex().autodiff();
/// let online = ProjectionHeadConfig::new(8, 16, 4).with_batch_norm(true).init(&device);
/// let target = momentum_copy(&online);
/// assert_ne!(target.output.weight.id, online.output.weight.id);
/// // After each optimizer step of the online network:
/// let target = momentum_update(target, &online, 0.996);
/// assert!(!target.output.weight.is_require_grad());
/// ```
pub fn momentum_copy<M: Module>(module: &M) -> M {
    let mut autodiff = AnyAutodiff(false);
    module.visit(&mut autodiff);
    // `clone()` would share BatchNorm's running statistics: a `RunningState` is an
    // `Arc<Mutex<_>>` that mappers write in place, so the target's forward passes would move
    // the online network's statistics. `valid()` and `train()` rebuild every running state in
    // a buffer of its own, with pending updates folded in (and `train()` restores the
    // configured training flags).
    let copy = module.valid().train();
    copy.map(&mut FreshIds { plain: !autodiff.0 }).no_grad()
}

struct AnyAutodiff(bool);

impl ModuleVisitor for AnyAutodiff {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0 |= param.val().is_autodiff();
    }
}

struct FreshIds {
    /// The original is not on an autodiff device: undo `train()`'s autodiff.
    plain: bool,
}

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_id, tensor, _) = param.consume();
        let tensor = if self.plain {
            tensor.without_autodiff()
        } else {
            tensor.detach()
        };
        Param::from_tensor(tensor)
    }
}

/// The EMA update of a momentum network (BYOL, Grill et al. 2020, Sec. 3.1):
/// `target ← τ·target + (1 − τ)·online` for every float tensor (BatchNorm running statistics
/// included, see the module documentation), matched by path, computed in the tensors' float
/// type with `τ` and `1 − τ` rounded to it; the result holds no autodiff graph and requires no
/// gradient. Use [`target_decay`](crate::target_decay) for BYOL's schedule of `τ`.
///
/// # Panics
/// If the two modules differ in structure, naming the tensor: a path of one missing in the
/// other (e.g. a different number of layers) or another shape. The target must come from
/// [`momentum_copy`] of a module of the same configuration.
#[doc(alias = "ema_update")]
pub fn momentum_update<M: Module>(target: M, online: &M, tau: f64) -> M {
    // A training-mode BatchNorm forward leaves its new running statistics pending (Burn folds
    // them in at the next read); visitors and mappers see the value before. `valid()` folds
    // them in, in place: without it the online statistics would be read one step late, and
    // a pending update of the target would later overwrite the average.
    let _ = online.valid();
    let _ = target.valid();
    let mut collect = Collect::default();
    online.visit(&mut collect);
    let mut update = Update {
        online: collect.tensors,
        path: Vec::new(),
        tau,
    };
    let target = target.map(&mut update);
    assert!(
        update.online.is_empty(),
        "momentum_update: tensors of the online network missing in the target: {:?}",
        update.online.keys().collect::<Vec<_>>()
    );
    target
}

#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: HashMap<String, (Vec<usize>, Tensor<1>)>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().detach();
        let dims = value.dims().to_vec();
        self.tensors
            .insert(self.path.join("."), (dims, value.flatten::<1>(0, D - 1)));
    }
}

struct Update {
    online: HashMap<String, (Vec<usize>, Tensor<1>)>,
    path: Vec<String>,
    tau: f64,
}

impl ModuleMapper for Update {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.path.join(".");
        let (dims, online) = self
            .online
            .remove(&path)
            .unwrap_or_else(|| panic!("momentum_update: `{path}` is not in the online network"));
        let tau = self.tau;
        param.map(|target| {
            let shape = target.dims();
            assert_eq!(
                &shape[..],
                &dims[..],
                "momentum_update: `{path}` has another shape in the online network"
            );
            let online = online.to_device(&target.device()).reshape(shape);
            (target.detach().mul_scalar(tau) + online.mul_scalar(1.0 - tau)).detach()
        })
    }
}

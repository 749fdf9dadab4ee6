//! Momentum (exponential-moving-average) copies of a network, as BYOL's target network
//! (Grill et al. 2020, Sec. 3.1) and MoCo's key encoder use them.
//!
//! Tensors are matched by their path in the module, so the copy has parameter ids of its own:
//! an optimizer that keys its state (and `GradientsParams` their gradients) by parameter id
//! never mixes the two networks up.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// A copy of `module` with fresh parameter ids and no gradient tracking: the starting point of
/// a momentum network (BYOL initialises the target as the online network).
pub fn momentum_copy<M: Module>(module: &M) -> M {
    module.clone().map(&mut FreshIds).no_grad()
}

struct FreshIds;

impl ModuleMapper for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (_id, tensor, _) = param.consume();
        Param::from_tensor(tensor.detach())
    }
}

/// `target ← τ·target + (1 − τ)·online` for every float tensor (BatchNorm running statistics
/// included), matched by path; the result holds no autodiff graph.
///
/// # Panics
/// If the two modules differ in structure (a path or shape of one missing in the other): the
/// target must come from [`momentum_copy`] of a module of the same configuration.
pub fn momentum_update<M: Module>(target: M, online: &M, tau: f64) -> M {
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
    tensors: HashMap<String, Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let flat = param.val().detach().flatten::<1>(0, D - 1);
        self.tensors.insert(self.path.join("."), flat);
    }
}

struct Update {
    online: HashMap<String, Tensor<1>>,
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
        let online = self
            .online
            .remove(&path)
            .unwrap_or_else(|| panic!("momentum_update: `{path}` is not in the online network"));
        let tau = self.tau;
        param.map(|target| {
            let shape = target.shape();
            assert_eq!(
                shape.num_elements(),
                online.dims()[0],
                "momentum_update: `{path}` has another shape in the online network"
            );
            let online = online.to_device(&target.device()).reshape(shape);
            (target.detach().mul_scalar(tau) + online.mul_scalar(1.0 - tau)).detach()
        })
    }
}

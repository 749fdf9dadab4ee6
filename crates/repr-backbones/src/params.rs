//! Counting learnable parameters the way PyTorch does.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// Number of learnable parameters of `module`: what PyTorch reports as
/// `sum(p.numel() for p in model.parameters())`.
///
/// Burn 0.22's [`Module::num_params`] also counts BatchNorm's `running_mean` and `running_var`
/// (buffers in PyTorch, not parameters), so it exceeds PyTorch's count by twice the number of
/// BatchNorm channels. This count leaves them out. Lazily initialised parameters stay
/// uninitialised.
pub fn num_learnable_params<M: Module>(module: &M) -> usize {
    let mut counter = LearnableCounter::default();
    module.visit(&mut counter);
    counter.count
}

#[derive(Default)]
struct LearnableCounter {
    /// Field names from the root to the value being visited.
    path: Vec<String>,
    count: usize,
}

impl ModuleVisitor for LearnableCounter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // BatchNorm's statistics are `RunningState` fields, visited as float tensors.
        let buffer = matches!(
            self.path.last().map(String::as_str),
            Some("running_mean" | "running_var")
        );
        if !buffer {
            self.count += param.lazy_shape().num_elements();
        }
    }
}

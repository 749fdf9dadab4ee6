//! What the ResNet and ViT contract suites share: the per-preset test generator and the
//! gradient check.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

/// `contract_tests!(preset, backends)` makes a module `preset` running the including file's
/// `shapes_and_finite`, `gradients` and `record_round_trip` on the preset returned by its function
/// `preset()`, on every backend of `repr_testing::backends!` (`backend_tests` or
/// `cpu_backend_tests`).
macro_rules! contract_tests {
    ($preset:ident, $backends:ident) => {
        mod $preset {
            use burn::tensor::Device;

            fn shapes_and_finite(device: &Device) {
                super::shapes_and_finite(&super::$preset(), device);
            }
            fn gradients(device: &Device) {
                super::gradients(&super::$preset(), device);
            }
            fn record_round_trip(device: &Device) {
                super::record_round_trip(&super::$preset(), device);
            }

            repr_testing::$backends!(shapes_and_finite, gradients, record_round_trip);
        }
    };
}

/// The paths of every learnable parameter of `model` (BatchNorm running statistics are
/// buffers and skipped), after asserting that each has a finite, not all-zero gradient in
/// `grads`.
pub fn check_gradients<M: Module>(model: &M, grads: &Gradients) -> Vec<String> {
    let mut checker = GradientChecker {
        grads,
        path: Vec::new(),
        checked: Vec::new(),
        failures: Vec::new(),
    };
    model.visit(&mut checker);
    assert!(checker.failures.is_empty(), "{:#?}", checker.failures);
    checker.checked
}

struct GradientChecker<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    checked: Vec<String>,
    failures: Vec<String>,
}

impl ModuleVisitor for GradientChecker<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.path.join(".");
        if path.ends_with("running_mean") || path.ends_with("running_var") {
            return; // buffers, not parameters
        }
        let Some(grad) = param.val().grad(self.grads) else {
            self.failures.push(format!("{path}: no gradient"));
            return;
        };
        let grad: Vec<f32> = grad.into_data().try_into_vec_as::<f32>().unwrap();
        if !grad.iter().all(|g| g.is_finite()) {
            self.failures.push(format!("{path}: non-finite gradient"));
        } else if grad.iter().all(|&g| g == 0.0) {
            self.failures.push(format!("{path}: gradient is all zero"));
        }
        self.checked.push(path);
    }
}

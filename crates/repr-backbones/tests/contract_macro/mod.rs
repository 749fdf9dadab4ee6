//! The contract tests' generator, shared by the ResNet and ViT contract suites.

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

//! Building Burn optimizers from [`OptimizerConfig`].

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::OptimizerConfig;
use crate::lars::Lars;

impl OptimizerConfig {
    /// The optimizer, with PyTorch's semantics: Burn's SGD momentum dampens by 0.1 by default,
    /// PyTorch's does not, so dampening is set to 0 here.
    pub fn init(&self) -> ModuleOptimizer {
        match *self {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(0.0)
                        .with_nesterov(nesterov)
                });
                let weight_decay =
                    (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(weight_decay)
                    .init()
            }
            OptimizerConfig::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => AdamWConfig::new()
                .with_beta_1(beta1 as f32)
                .with_beta_2(beta2 as f32)
                .with_epsilon(epsilon as f32)
                .with_weight_decay(weight_decay as f32)
                .init(),
            OptimizerConfig::Lars {
                momentum,
                weight_decay,
                eta,
                ..
            } => Lars::new(momentum, weight_decay, eta).into(),
        }
    }
}

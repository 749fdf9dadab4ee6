//! Small configurations shared by the end-to-end tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use repr::backbones::{BackboneConfig, BlockKind, ResNetConfig, Stem};
use repr::train::{AugmentConfig, TrainConfig};

/// The preset called `name`.
pub fn preset(name: &str) -> TrainConfig {
    (repr::train::preset(name).expect("a preset").config)()
}

/// A ResNet with one basic block per stage at width 4 for 1-channel images (small enough for
/// wgpu on lavapipe); `num_classes` 0 builds an encoder only.
pub fn tiny_backbone(num_classes: usize) -> BackboneConfig {
    BackboneConfig::ResNet(
        ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
            .with_stem(Stem::Cifar)
            .with_width(4)
            .with_in_channels(1)
            .with_num_classes(num_classes),
    )
}

/// AdamW at a constant `lr` (no decay, no weight decay): quick, steady movement on a tiny
/// network, so a few steps show whether a recipe learns.
pub fn constant_adamw(config: &mut TrainConfig, lr: f64) {
    config.optimizer = repr::train::OptimizerConfig::Adamw {
        lr,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
    config.schedule.min_lr = lr;
}

/// The supervised recipe on `train` Fashion-MNIST images in batches of `batch`, for `epochs`,
/// evaluated on `test` images, without augmentation, warm-up or per-epoch evaluation, logging
/// every step.
pub fn tiny_supervised(train: usize, test: usize, batch: usize, epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::supervised();
    config.backbone = tiny_backbone(10);
    config.data.train_limit = Some(train);
    config.data.test_limit = Some(test);
    config.batch_size = batch;
    config.eval_batch_size = 64;
    config.epochs = epochs;
    config.schedule.warmup_epochs = 0.0;
    config.augment = AugmentConfig {
        crop_padding: 0,
        horizontal_flip: 0.0,
        ..AugmentConfig::default()
    };
    config.log_every_steps = 1;
    config.checkpoint_every_steps = 0;
    config.eval_every_epochs = 0;
    config
}

/// The mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The mean loss of the second half of a run over the mean of its first two steps: 1 when
/// nothing is learned. Averaging evens out the step-to-step noise of fresh batches and random
/// views (at a learning rate of ~0, NT-Xent moves by ±0.03 and SupCon by ±0.3 between steps).
pub fn remaining_fraction(losses: &[f64]) -> f64 {
    assert!(
        losses.len() >= 4,
        "{} losses: too few to compare",
        losses.len()
    );
    mean(&losses[losses.len() / 2..]) / mean(&losses[..2])
}

/// Asserts that the `what` loss of a run fell to at most `bound` of where it started
/// ([`remaining_fraction`]).
#[track_caller]
pub fn assert_fell(backend: &str, what: &str, losses: &[f64], bound: f64) {
    let fraction = remaining_fraction(losses);
    // Written so that a NaN fails.
    assert!(
        fraction <= bound,
        "{backend}: the {what} loss did not fall to {bound} of its start: the second half's \
         mean is {fraction:.3} of the first two steps' ({losses:?})"
    );
}

//! One serde configuration per run (`config.toml` in the run folder).

use std::path::PathBuf;

use repr_backbones::{BackboneConfig, ResNetConfig};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Which method trains the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// Cross-entropy on labelled images (a classifier head on the backbone).
    Supervised,
}

impl Recipe {
    /// The name used on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Supervised => "supervised",
        }
    }
}

/// Everything about one training run. Fields left out of a config file take the defaults of
/// [`TrainConfig::supervised`]; unknown fields are an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// The method.
    pub recipe: Recipe,
    /// Seeds parameter initialisation, data order and augmentation.
    pub seed: u64,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per training step.
    pub batch_size: usize,
    /// Images per evaluation step (no gradients, so it can be larger).
    pub eval_batch_size: usize,
    /// Stop after this many optimizer steps in total (smoke runs); the schedule still spans
    /// `epochs`.
    pub max_steps: Option<usize>,
    /// Where the images come from.
    pub data: DataConfig,
    /// The network.
    pub backbone: BackboneConfig,
    /// The optimizer and its base learning rate.
    pub optimizer: OptimizerConfig,
    /// Warm-up and decay of the learning rate.
    pub schedule: ScheduleConfig,
    /// Training-time augmentation.
    pub augment: AugmentConfig,
    /// Label smoothing of the cross-entropy, in `[0, 1)`.
    pub label_smoothing: f64,
    /// Write a checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every_steps: usize,
    /// Read the loss back from the device and log every this many steps.
    pub log_every_steps: usize,
    /// Evaluate on the test split every this many epochs (0: only at the end).
    pub eval_every_epochs: usize,
    /// Batches prepared ahead of the training step by the loader thread.
    pub prefetch_batches: usize,
}

/// Where the images come from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// A dataset folder (IDX files, CIFAR binaries, or `class/*.png` folders); `None` is the
    /// embedded Fashion-MNIST.
    pub dir: Option<PathBuf>,
    /// Use only the first this many training images (after a seeded, class-stratified shuffle).
    pub train_limit: Option<usize>,
    /// Use only the first this many test images.
    pub test_limit: Option<usize>,
    /// Size images of an image folder are resized to, `[height, width]`.
    pub image_size: Option<[usize; 2]>,
    /// Channels images of an image folder are converted to (1 or 3).
    pub channels: Option<usize>,
}

/// The optimizer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// SGD with momentum and L2 weight decay, as PyTorch defines it (no dampening).
    Sgd {
        /// Base learning rate.
        lr: f64,
        /// Momentum factor in `[0, 1)`.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.
    Adamw {
        /// Base learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator guard.
        epsilon: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

/// Learning-rate schedule: linear warm-up, then cosine decay to `min_lr`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Warm-up length in epochs (fractions allowed).
    pub warmup_epochs: f64,
    /// Learning rate at the end of the cosine.
    pub min_lr: f64,
}

/// Training-time augmentation of the supervised recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Zero padding before a random crop back to the input size (0 disables the crop).
    pub crop_padding: usize,
    /// Probability of a horizontal flip.
    pub horizontal_flip: f64,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            warmup_epochs: 0.5,
            min_lr: 0.0,
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            crop_padding: 2,
            horizontal_flip: 0.5,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::supervised()
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adamw { lr, .. } => *lr,
        }
    }
}

impl TrainConfig {
    /// The supervised recipe on Fashion-MNIST, sized for a 2-core CPU: a CIFAR-stem ResNet-10
    /// (one basic block per stage) at width 16 with one input channel, 6 epochs of SGD with
    /// Nesterov momentum, half an epoch of warm-up then cosine, pad-2 crop and flip.
    ///
    /// Measured on flex (2 cores, batch 128): ResNet-10-w16 trains at ~220 images/s,
    /// ResNet-18-w16 at ~135, ResNet-10-w32 at ~90; see `docs/results.md`.
    pub fn supervised() -> Self {
        Self {
            recipe: Recipe::Supervised,
            seed: 42,
            epochs: 6,
            batch_size: 128,
            eval_batch_size: 500,
            max_steps: None,
            data: DataConfig::default(),
            backbone: BackboneConfig::ResNet(
                ResNetConfig::new([1, 1, 1, 1], repr_backbones::BlockKind::Basic)
                    .with_stem(repr_backbones::Stem::Cifar)
                    .with_width(16)
                    .with_in_channels(1)
                    .with_num_classes(10),
            ),
            optimizer: OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 5e-4,
            },
            schedule: ScheduleConfig::default(),
            augment: AugmentConfig::default(),
            label_smoothing: 0.0,
            checkpoint_every_steps: 100,
            log_every_steps: 20,
            eval_every_epochs: 1,
            prefetch_batches: 4,
        }
    }

    /// Reads a TOML (`.toml`) or JSON (any other extension) config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let config: Self = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| TrainError::ConfigFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        } else {
            serde_json::from_str(&text).map_err(|e| TrainError::ConfigFile {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as written to `config.toml` in the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serializes to TOML")
    }

    /// Checks every value before any training work starts, naming the field and allowed range.
    // `!(x >= 0.0)` on purpose: it also rejects NaN.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, allowed: &str, value: String| {
            Err(TrainError::Config {
                field: field.to_string(),
                message: format!("{value} is not allowed: expected {allowed}"),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", ">= 1", self.epochs.to_string());
        }
        if self.batch_size < 2 {
            return bad(
                "batch_size",
                ">= 2 (BatchNorm needs two samples)",
                self.batch_size.to_string(),
            );
        }
        if self.eval_batch_size == 0 {
            return bad("eval_batch_size", ">= 1", "0".into());
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", ">= 1 when given", "0".into());
        }
        if self.log_every_steps == 0 {
            return bad("log_every_steps", ">= 1", "0".into());
        }
        if self.prefetch_batches == 0 {
            return bad("prefetch_batches", ">= 1", "0".into());
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad(
                "label_smoothing",
                "0 <= value < 1",
                self.label_smoothing.to_string(),
            );
        }
        if !(0.0..=1.0).contains(&self.augment.horizontal_flip) {
            return bad(
                "augment.horizontal_flip",
                "a probability in [0, 1]",
                self.augment.horizontal_flip.to_string(),
            );
        }
        let lr = self.optimizer.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return bad("optimizer.lr", "a finite value > 0", lr.to_string());
        }
        match &self.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                ..
            } => {
                if !(0.0..1.0).contains(momentum) {
                    return bad("optimizer.momentum", "0 <= value < 1", momentum.to_string());
                }
                if !(*weight_decay >= 0.0) {
                    return bad("optimizer.weight_decay", ">= 0", weight_decay.to_string());
                }
            }
            OptimizerConfig::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => {
                for (field, value) in [("optimizer.beta1", beta1), ("optimizer.beta2", beta2)] {
                    if !(0.0..1.0).contains(value) {
                        return bad(field, "0 <= value < 1", value.to_string());
                    }
                }
                if !(*epsilon > 0.0) {
                    return bad("optimizer.epsilon", "> 0", epsilon.to_string());
                }
                if !(*weight_decay >= 0.0) {
                    return bad("optimizer.weight_decay", ">= 0", weight_decay.to_string());
                }
            }
        }
        let warmup = self.schedule.warmup_epochs;
        if !(warmup >= 0.0 && warmup <= self.epochs as f64) {
            return bad(
                "schedule.warmup_epochs",
                &format!("0 <= value <= epochs ({})", self.epochs),
                warmup.to_string(),
            );
        }
        if !(self.schedule.min_lr >= 0.0 && self.schedule.min_lr <= lr) {
            return bad(
                "schedule.min_lr",
                &format!("0 <= value <= optimizer.lr ({lr})"),
                self.schedule.min_lr.to_string(),
            );
        }
        if let Err(e) = self.backbone.validate() {
            return Err(TrainError::Config {
                field: "backbone".into(),
                message: e.to_string(),
            });
        }
        if let Some(channels) = self.data.channels
            && channels != 1
            && channels != 3
        {
            return bad("data.channels", "1 or 3", channels.to_string());
        }
        if let Some([h, w]) = self.data.image_size
            && (h == 0 || w == 0)
        {
            return bad("data.image_size", "both sides >= 1", format!("[{h}, {w}]"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_round_trips_through_toml() {
        let config = TrainConfig::supervised();
        let text = config.to_toml();
        let back: TrainConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.to_toml(), text);
        back.validate().unwrap();
    }

    #[test]
    fn partial_file_takes_defaults_and_unknown_keys_fail() {
        let partial: TrainConfig = toml::from_str("epochs = 3\nbatch_size = 64\n").unwrap();
        assert_eq!((partial.epochs, partial.batch_size), (3, 64));
        assert_eq!(
            partial.eval_batch_size,
            TrainConfig::supervised().eval_batch_size
        );
        let err = toml::from_str::<TrainConfig>("epochz = 3\n").unwrap_err();
        assert!(err.to_string().contains("epochz"), "{err}");
    }

    type Mutation = Box<dyn Fn(&mut TrainConfig)>;

    #[test]
    fn impossible_values_name_their_field() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("batch_size", Box::new(|c| c.batch_size = 0)),
            ("epochs", Box::new(|c| c.epochs = 0)),
            (
                "optimizer.lr",
                Box::new(|c| {
                    c.optimizer = OptimizerConfig::Sgd {
                        lr: -0.1,
                        momentum: 0.9,
                        nesterov: false,
                        weight_decay: 0.0,
                    }
                }),
            ),
            ("label_smoothing", Box::new(|c| c.label_smoothing = 1.0)),
            (
                "schedule.warmup_epochs",
                Box::new(|c| c.schedule.warmup_epochs = 100.0),
            ),
            ("data.channels", Box::new(|c| c.data.channels = Some(2))),
        ];
        for (field, mutate) in cases {
            let mut config = TrainConfig::supervised();
            mutate(&mut config);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
    }
}

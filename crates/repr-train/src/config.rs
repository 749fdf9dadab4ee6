//! One serde configuration per run (`config.toml` in the run folder).

use std::path::PathBuf;

use repr_backbones::BackboneConfig;
use serde::{Deserialize, Serialize};

use crate::{Method, MethodConfig, RunFacts, RunShape, TrainError};

/// Everything about one training run. Fields left out of a config file take the defaults of
/// [`TrainConfig::supervised`]; unknown fields are an error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
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
    /// The method that trains it (`[method] kind = "simclr"`, with its head, loss and views).
    pub method: MethodConfig,
    /// Where the network's first stages come from, for fine-tuning (any method; none: a fresh
    /// initialisation).
    pub init: Option<InitConfig>,
    /// The optimizer and its base learning rate.
    pub optimizer: OptimizerConfig,
    /// Warm-up and decay of the learning rate.
    pub schedule: ScheduleConfig,
    /// Training-time augmentation.
    pub augment: AugmentConfig,
    /// Where a view method's `[method.views]` are applied: `"cpu"` (the loader's threads) or
    /// `"device"` (batched tensor ops on the training device: what a GPU run wants). The
    /// single-image crop and flip run on the CPU.
    pub augment_on: AugmentOn,
    /// Data parallel over several ranks: BatchNorm layers normalise with the statistics of the
    /// whole global batch, summed over the ranks in the forward and backward pass
    /// (SyncBatchNorm; flex with repr's kernels). `false`: each rank's share uses its own.
    pub sync_batch_norm: bool,
    /// Write a checkpoint every this many steps (0: only at the end of each epoch).
    pub checkpoint_every_steps: usize,
    /// Checkpoints kept in `checkpoints/`: the newest as `last.ckpt`, the ones before it as
    /// `step-<step>.ckpt`, so that `--resume --fallback` can continue from an earlier one when
    /// the newest is damaged (1: only `last.ckpt`).
    pub checkpoint_keep: usize,
    /// Read the loss back from the device and log every this many steps.
    pub log_every_steps: usize,
    /// Evaluate on the test split every this many epochs (0: only at the end).
    pub eval_every_epochs: usize,
    /// Batches prepared ahead of the training step by the loader thread.
    pub prefetch_batches: usize,
    /// How the learned representation is evaluated during and after training.
    pub eval: EvalConfig,
    /// Which data-dependent fields are taken from the dataset when training starts (not part
    /// of a config file: set by `cargo xtask train` for the fields a file leaves out).
    #[serde(skip)]
    pub from_data: FromData,
}

/// `[init]`: the network's first stages from pre-trained weights (fine-tuning), for any method.
///
/// The backbone's stages are [`BackboneConfig::stages`]: its stem (stage 0) then its residual
/// stages (ResNet `layer1` to `layer4`) or transformer blocks (ViT); a classifier head is always
/// new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitConfig {
    /// The pre-trained weights: a `repr` run folder (its `model.bpk`, or its last checkpoint
    /// when unfinished; the backbone architecture then comes from its `config.toml`), or a
    /// PyTorch state dict with torchvision names (`.safetensors` or `.pt`) for the `backbone`
    /// of this config. Empty in the `finetune` preset: `--from` gives it.
    pub from: PathBuf,
    /// Copy the pre-trained stem and first this many stages; later stages start from a fresh
    /// initialisation ("new layers"). Unset: every stage.
    #[serde(default)]
    pub keep_stages: Option<usize>,
    /// Freeze the stem and first this many stages: no gradient, no weight decay, and their
    /// BatchNorm layers use and keep their running statistics. Unset: nothing frozen (the
    /// stem is frozen from 0 on).
    #[serde(default)]
    pub freeze_stages: Option<usize>,
    /// The backbone's learning rate as a multiple of the rest's (the heads; 1: one rate for
    /// all).
    #[serde(default = "one")]
    pub backbone_lr_scale: f64,
}

fn one() -> f64 {
    1.0
}

impl InitConfig {
    /// Every stage of `from` copied and trained at one learning rate.
    pub fn from(from: impl Into<PathBuf>) -> Self {
        Self {
            from: from.into(),
            keep_stages: None,
            freeze_stages: None,
            backbone_lr_scale: 1.0,
        }
    }
}

/// Evaluation of a learned representation: kNN and linear probe on the test split with the
/// training split as memory, retrieval metrics, baselines and plots.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Neighbours that vote in the kNN classifier.
    pub knn_k: usize,
    /// Temperature of the kNN votes, `exp(similarity / T)`.
    pub knn_temperature: f64,
    /// Use only this many training images (the first of a seeded shuffle) as kNN memory and
    /// linear-probe training set; `None`: the whole training split.
    pub memory_limit: Option<usize>,
    /// Fit a linear probe on the frozen features at the end of the run.
    pub linear_probe: bool,
    /// Epochs of the linear probe.
    pub linear_epochs: usize,
    /// Evaluate the raw-pixel and random-init baselines at the end of the run.
    pub baselines: bool,
    /// Write the training curves, the 2-D embedding plot and the retrieval grid.
    pub plots: bool,
    /// How the encoder's last layer becomes the evaluated vector: `"avg"` (the mean of a
    /// ResNet's last feature map, or of a ViT's patch tokens), `"max"`, `"gem"` (generalized mean,
    /// p = 3), or `"cls"` (a ViT's class token). Unset: the backbone's own (ResNet `"avg"`, ViT `"cls"`). The triplet
    /// method evaluates the embedding it trained, so it takes none.
    pub pooling: Option<repr_backbones::Pooling>,
}

/// Where the images come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// A dataset folder (IDX files, CIFAR binaries, or `class/*.png` folders); `None` is the
    /// embedded Fashion-MNIST.
    pub dir: Option<PathBuf>,
    /// Use only this many training images: the first of a seeded shuffle (not stratified by
    /// class; `labels_fraction` is).
    pub train_limit: Option<usize>,
    /// Use only the first this many test images.
    pub test_limit: Option<usize>,
    /// Train on this fraction of the (labelled) training split, a seeded class-stratified
    /// subset (`0.01`: 1% of the labels, as in semi-supervised evaluation); applied after
    /// `train_limit`. `None`: all of it.
    pub labels_fraction: Option<f64>,
    /// Size images of an image folder are resized to, `[height, width]`.
    pub image_size: Option<[usize; 2]>,
    /// Channels images of an image folder are converted to (1 or 3).
    pub channels: Option<usize>,
    /// What to do with an image file of an image folder that cannot be read or decoded:
    /// `"fail"` (default) stops before training; `"skip"` leaves it out and lists it, with the
    /// reason, in the run folder's `skipped.txt`.
    pub on_bad_image: repr_data::OnBadImage,
    /// The most pixels (width × height) an image of an image folder may declare: a larger one
    /// is refused from its header, before it is decoded (or skipped under `on_bad_image =
    /// "skip"`). Decoding one image takes up to 8 bytes per pixel on each loader thread.
    pub max_image_pixels: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: None,
            train_limit: None,
            test_limit: None,
            labels_fraction: None,
            image_size: None,
            channels: None,
            on_bad_image: repr_data::OnBadImage::default(),
            max_image_pixels: repr_data::DEFAULT_MAX_IMAGE_PIXELS,
        }
    }
}

/// Where augmentation runs (`augment_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentOn {
    /// On the loader's CPU threads, overlapping the training step.
    #[default]
    Cpu,
    /// On the training device, as batched tensor ops, when the batch is uploaded.
    Device,
}

impl AugmentOn {
    /// The value of a command-line name (`cpu`, `device`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cpu" => Some(Self::Cpu),
            "device" => Some(Self::Device),
            _ => None,
        }
    }
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
    /// LARS (You et al. 2017) as in SimCLR: momentum SGD with a per-layer trust ratio; biases
    /// and normalisation parameters are excluded from the adaptation and the weight decay.
    Lars {
        /// Base learning rate.
        lr: f64,
        /// Momentum factor in `[0, 1)`.
        momentum: f64,
        /// Weight decay inside the trust ratio.
        weight_decay: f64,
        /// Trust coefficient (SimCLR: 0.001).
        eta: f64,
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
    /// How the peak learning rate follows the global batch: `optimizer.lr` is the rate for a
    /// batch of `reference_batch` images, scaled to `batch_size` by this rule.
    pub lr_scaling: LrScaling,
    /// The batch `optimizer.lr` is given for, when `lr_scaling` is not `"none"`.
    pub reference_batch: usize,
}

/// How the learning rate follows the global batch (`[schedule] lr_scaling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrScaling {
    /// `optimizer.lr` as written, whatever the batch.
    #[default]
    None,
    /// `lr · batch / reference_batch` (Goyal et al. 2017, SimCLR with SGD/LARS:
    /// `0.3 · batch / 256`).
    Linear,
    /// `lr · sqrt(batch / reference_batch)` (SimCLR's rule for LARS at large batches,
    /// `0.075 · sqrt(batch)`; Krizhevsky 2014).
    Sqrt,
}

impl ScheduleConfig {
    /// The factor `lr_scaling` applies to the base learning rate for a global batch of `batch`.
    pub fn lr_factor(&self, batch: usize) -> f64 {
        let ratio = batch as f64 / self.reference_batch.max(1) as f64;
        match self.lr_scaling {
            LrScaling::None => 1.0,
            LrScaling::Linear => ratio,
            LrScaling::Sqrt => ratio.sqrt(),
        }
    }
}

/// Training-time augmentation of the single-image methods (supervised, triplet, masked-patch);
/// the view methods take theirs from `[method.views]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Zero padding before a random crop back to the input size (0 disables the crop).
    pub crop_padding: usize,
    /// Probability of a horizontal flip.
    pub horizontal_flip: f64,
    /// The named preset (`"standard"` or `"no-flip"`, which also removes every flip from the
    /// SSL views).
    pub preset: AugmentPreset,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            warmup_epochs: 0.5,
            min_lr: 0.0,
            lr_scaling: LrScaling::None,
            reference_batch: 256,
        }
    }
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            crop_padding: 2,
            horizontal_flip: 0.5,
            preset: AugmentPreset::Standard,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::supervised()
    }
}

impl EvalConfig {
    /// kNN with `knn_k` neighbours and nothing else (no linear probe, baselines or plots): the
    /// final evaluation of smoke runs and tests.
    pub fn knn_only(knn_k: usize) -> Self {
        Self {
            knn_k,
            linear_probe: false,
            baselines: false,
            plots: false,
            ..Self::default()
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            knn_k: 200,
            knn_temperature: 0.1,
            memory_limit: None,
            linear_probe: true,
            linear_epochs: 30,
            baselines: true,
            plots: true,
            pooling: None,
        }
    }
}

impl TrainConfig {
    /// The peak learning rate of the schedule: `optimizer.lr` scaled to the global batch by
    /// `schedule.lr_scaling`.
    pub fn peak_lr(&self) -> f64 {
        self.optimizer.lr() * self.schedule.lr_factor(self.batch_size)
    }
}

impl OptimizerConfig {
    /// The base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adamw { lr, .. } | Self::Lars { lr, .. } => *lr,
        }
    }
}

/// The dotted keys of a config document (TOML files are read into the same JSON value).
fn json_keys(value: &serde_json::Value, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let key = format!("{prefix}{k}");
            keys.extend(json_keys(v, &format!("{key}.")));
            keys.push(key);
        }
    }
    keys
}

impl TrainConfig {
    /// The facts a method of this run is built from, for data normalised by `normalize`.
    pub fn run_facts(&self, normalize: repr_data::Normalize) -> RunFacts {
        RunFacts {
            normalize,
            seed: self.seed,
            channels: self.backbone.in_channels(),
        }
    }

    /// What the method's section is checked against.
    pub fn run_shape(&self) -> RunShape<'_> {
        RunShape {
            backbone: &self.backbone,
            batch_size: self.batch_size,
            pooling: self.eval.pooling,
        }
    }

    /// A freshly initialised network of this config on `device`: the backbone (its parameters
    /// drawn first), then the method around it.
    pub fn init_method(
        &self,
        run: &RunFacts,
        device: &burn::tensor::Device,
    ) -> Result<Method, TrainError> {
        let backbone = self.backbone.init(device);
        self.method.init(backbone, run, device)
    }

    /// Reads a TOML (`.toml`) or JSON (any other extension) config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|error| TrainError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let bad = |message: String| TrainError::ConfigFile {
            path: path.to_path_buf(),
            message,
        };
        // Parsed twice: into a document, for the keys the file sets (and the shape it has), and
        // into the config (errors keep the parser's line and key).
        let toml = path.extension().is_some_and(|e| e == "toml");
        let doc: serde_json::Value = if toml {
            toml::from_str(&text).map_err(|e| bad(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        let (mut config, keys): (Self, Vec<String>) = if crate::legacy::is_old(&doc) {
            // A file of the old shape (`recipe = ...`): converted, then read.
            let doc = crate::legacy::convert(doc).map_err(bad)?;
            let keys = json_keys(&doc, "");
            let config = serde_json::from_value(doc).map_err(|e| bad(e.to_string()))?;
            (config, keys)
        } else if toml {
            let config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            (config, json_keys(&doc, ""))
        } else {
            let config = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            (config, json_keys(&doc, ""))
        };
        config.from_data = FromData::missing_from(&keys);
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as written to `config.toml` in the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serializes to TOML")
    }
}

/// Which data-dependent fields [`crate::train`] takes from the dataset. `cargo xtask train`
/// sets all of them for a preset and, with a config file, those the file leaves out; a config
/// built in code sets none unless it asks (the default), so what it says is what trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FromData {
    /// `backbone.in_channels` ← the images' channels.
    pub in_channels: bool,
    /// `backbone.num_classes` ← the dataset's classes (0, no classifier, for an embedding
    /// method).
    pub num_classes: bool,
    /// A ViT's `backbone.image_size` ← the images' (square) size.
    pub image_size: bool,
    /// `method.views` ← the method's views for this image size and channel count.
    pub views: bool,
    /// `eval.knn_k` ← at most the kNN memory's size.
    pub knn_k: bool,
}

impl FromData {
    /// Every field from the data (a preset).
    pub const ALL: Self = Self {
        in_channels: true,
        num_classes: true,
        image_size: true,
        views: true,
        knn_k: true,
    };

    /// The fields a config file leaves out: `keys` are its dotted keys (`backbone.in_channels`,
    /// `views`, ...).
    pub fn missing_from(keys: &[String]) -> Self {
        let has = |key: &str| {
            keys.iter()
                .any(|k| k == key || k.starts_with(&format!("{key}.")))
        };
        Self {
            in_channels: !has("backbone.in_channels"),
            num_classes: !has("backbone.num_classes"),
            image_size: !has("backbone.image_size"),
            views: !has("method.views"),
            knn_k: !has("eval.knn_k"),
        }
    }
}

/// Named augmentation presets: `--augment` on the command line, `augment.preset` in a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentPreset {
    /// The recipe's augmentation, fitted to the data: SimCLR views for grayscale images
    /// (RandomResizedCrop 0.2–1, flip, brightness/contrast jitter) or for colour ones (CIFAR's:
    /// RandomResizedCrop 0.08–1, flip, colour jitter, random grayscale; ImageNet's with blur
    /// above 64 pixels), BYOL's asymmetric pair for colour images, pad-and-crop + flip for the
    /// supervised recipes.
    #[default]
    Standard,
    /// The same without any horizontal flip: for data whose meaning changes when mirrored
    /// (digits, letters, text, road signs, anything with a handedness).
    NoFlip,
}

impl AugmentPreset {
    /// The preset's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::NoFlip => "no-flip",
        }
    }

    /// The preset of a command-line name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Standard, Self::NoFlip]
            .into_iter()
            .find(|p| p.name() == name)
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
            (
                "method.loss.smoothing",
                Box::new(|c| {
                    c.method = crate::MethodConfig::Supervised(
                        crate::methods::supervised::SupervisedConfig {
                            loss: repr_objectives::CrossEntropyLossConfig::new()
                                .with_smoothing(1.0),
                        },
                    )
                }),
            ),
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

//! One serde configuration per run (`config.toml` in the run folder).

use std::path::PathBuf;

use repr_augment::MultiViewConfig;
use repr_backbones::BackboneConfig;
use repr_objectives::{Distance, MaskedPatchConfig, Miner};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Which method trains the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipe {
    /// Cross-entropy on labelled images (a classifier head on the backbone).
    Supervised,
    /// SimCLR (Chen et al. 2020): two augmented views, projection head, NT-Xent; no labels.
    Simclr,
    /// Triplet loss with mining on P×K class-balanced batches (Hermans et al. 2017).
    Triplet,
    /// BYOL (Grill et al. 2020): online network predicts a momentum target's projection of the
    /// other view; no negatives.
    Byol,
    /// Masked-patch prediction (Dosovitskiy et al. 2020, B.1.2): a ViT predicts a target (mean
    /// colour, downsized patch or pixels) of its corrupted patches; no labels.
    MaskedPatch,
    /// Supervised fine-tuning of a pre-trained backbone (a `repr` run or PyTorch weights) with
    /// a new classifier: copy the first stages, re-initialise the rest, freeze a prefix, a
    /// smaller learning rate for the backbone, warm-up (see [`FinetuneConfig`]).
    Finetune,
}

impl Recipe {
    /// The name used on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Supervised => "supervised",
            Recipe::Simclr => "simclr",
            Recipe::Triplet => "triplet",
            Recipe::Byol => "byol",
            Recipe::MaskedPatch => "masked-patch",
            Recipe::Finetune => "finetune",
        }
    }

    /// Every recipe, in the order the CLI lists them.
    pub const ALL: [Recipe; 6] = [
        Recipe::Supervised,
        Recipe::Simclr,
        Recipe::Triplet,
        Recipe::Byol,
        Recipe::MaskedPatch,
        Recipe::Finetune,
    ];

    /// The recipe called `name` on the command line.
    pub fn parse(name: &str) -> Option<Recipe> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The recipe's full configuration (see each preset's documentation).
    pub fn config(self) -> TrainConfig {
        match self {
            Recipe::Supervised => TrainConfig::supervised(),
            Recipe::Simclr => TrainConfig::simclr(),
            Recipe::Triplet => TrainConfig::triplet(),
            Recipe::Byol => TrainConfig::byol(),
            Recipe::MaskedPatch => TrainConfig::masked_patch(),
            Recipe::Finetune => TrainConfig::finetune(),
        }
    }

    /// Whether the method learns an embedding without a classifier (evaluated by kNN, linear
    /// probe and retrieval rather than by classifier accuracy).
    pub fn is_embedding(self) -> bool {
        !matches!(self, Recipe::Supervised | Recipe::Finetune)
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
    /// SimCLR's projection head and loss (recipe `simclr`).
    pub simclr: SimclrConfig,
    /// Triplet loss, mining and P×K batches (recipe `triplet`).
    pub triplet: TripletConfig,
    /// BYOL's projector, predictor and target decay (recipe `byol`).
    pub byol: ByolConfig,
    /// Masked-patch prediction's corruption and target (recipe `masked-patch`); its patch size
    /// must be the ViT's.
    pub masked_patch: MaskedPatchConfig,
    /// The augmented views of the self-supervised recipes (`simclr`, `byol`).
    pub views: MultiViewConfig,
    /// Where the pre-trained weights come from and what is kept, frozen and re-initialised
    /// (recipe `finetune`).
    pub finetune: FinetuneConfig,
    /// How the learned representation is evaluated during and after training.
    pub eval: EvalConfig,
    /// Which data-dependent fields are taken from the dataset when training starts (not part
    /// of a config file: set by `cargo xtask train` for the fields a file leaves out).
    #[serde(skip)]
    pub from_data: crate::FromData,
}

/// SimCLR's projection head and NT-Xent loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimclrConfig {
    /// NT-Xent temperature, > 0.
    pub temperature: f64,
    /// Hidden width of the projection head.
    pub head_hidden: usize,
    /// Output width of the projection head (the space the loss compares in).
    pub head_output: usize,
    /// Linear layers of the projection head (>= 1).
    pub head_layers: usize,
    /// BatchNorm after each hidden linear layer of the head (SimCLR v2 style).
    pub head_batch_norm: bool,
    /// Rows of the similarity matrix computed at once (`None`: all 2N).
    pub chunk_size: Option<usize>,
}

/// BYOL's heads and target network.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByolConfig {
    /// Hidden width of the projector and predictor MLPs (BYOL: 4096).
    pub hidden: usize,
    /// Output width of the projector and predictor (BYOL: 256).
    pub output: usize,
    /// The target's decay at the first step, rising to 1 along a cosine (BYOL: 0.996).
    pub base_decay: f64,
}

impl Default for ByolConfig {
    fn default() -> Self {
        Self {
            hidden: 4096,
            output: 256,
            base_decay: 0.996,
        }
    }
}

/// Fine-tuning a pre-trained backbone on a labelled task (recipe `finetune`).
///
/// The backbone's stages are its stem (stage 0) then its residual stages (ResNet `layer1` to
/// `layer4`) or transformer blocks (ViT); the classifier head is always new.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// The pre-trained weights: a `repr` run folder (its `model.bpk`, or its last checkpoint
    /// when unfinished; the backbone architecture then comes from its `config.toml`), or a
    /// PyTorch state dict with torchvision names (`.safetensors` or `.pt`) for the `backbone`
    /// of this config. Required by the `finetune` recipe.
    pub from: Option<PathBuf>,
    /// Copy the pre-trained stem and first this many stages; later stages start from a fresh
    /// initialisation ("new layers"). `None`: every stage.
    pub keep_stages: Option<usize>,
    /// Freeze the stem and first this many stages: no gradient, no weight decay, and their
    /// BatchNorm layers use and keep their running statistics. `None`: nothing frozen (the
    /// stem is frozen from `Some(0)` on).
    pub freeze_stages: Option<usize>,
    /// The backbone's learning rate as a multiple of the head's (1: one rate for all).
    pub backbone_lr_scale: f64,
}

/// Triplet loss with mining, on P×K batches.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TripletConfig {
    /// Margin between positive and negative distances.
    pub margin: f64,
    /// How distances between embeddings are measured.
    pub distance: Distance,
    /// Which triplets of the batch the loss uses.
    pub miner: Miner,
    /// Soft margin `ln(1 + exp(d_ap - d_an))` instead of the hinge (Hermans et al. 2017).
    pub soft_margin: bool,
    /// Width of the embedding head on top of the backbone's pooled features.
    pub embedding_dim: usize,
    /// P: classes per batch.
    pub classes_per_batch: usize,
    /// K: images per class in a batch. `batch_size` must equal P × K.
    pub images_per_class: usize,
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
    /// Use only this many training images (seeded, stratified) as kNN memory and linear-probe
    /// training set; `None`: the whole training split.
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
    /// ResNet's last feature map, or of a ViT's patch tokens), `"max"`, or `"cls"` (a ViT's
    /// class token). Unset: the backbone's own (ResNet `"avg"`, ViT `"cls"`). The triplet
    /// method evaluates the embedding it trained, so it takes none.
    pub pooling: Option<repr_backbones::Pooling>,
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
}

/// Training-time augmentation of the supervised recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Zero padding before a random crop back to the input size (0 disables the crop).
    pub crop_padding: usize,
    /// Probability of a horizontal flip.
    pub horizontal_flip: f64,
    /// The named preset (`"standard"` or `"no-flip"`, which also removes every flip from the
    /// SSL views).
    pub preset: crate::AugmentPreset,
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
            preset: crate::AugmentPreset::Standard,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::supervised()
    }
}

impl Default for SimclrConfig {
    fn default() -> Self {
        Self {
            temperature: 0.5,
            head_hidden: 256,
            head_output: 128,
            head_layers: 2,
            head_batch_norm: false,
            chunk_size: None,
        }
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            from: None,
            keep_stages: None,
            freeze_stages: None,
            backbone_lr_scale: 1.0,
        }
    }
}

impl Default for TripletConfig {
    fn default() -> Self {
        Self {
            margin: 0.2,
            distance: Distance::Euclidean,
            miner: Miner::BatchHard,
            soft_margin: false,
            embedding_dim: 128,
            classes_per_batch: 8,
            images_per_class: 16,
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
        // Parsed twice: into the config (errors keep the parser's line and key) and into a
        // document, for the keys the file sets.
        let (mut config, keys): (Self, Vec<String>) =
            if path.extension().is_some_and(|e| e == "toml") {
                let config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
                let value: serde_json::Value =
                    toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
                (config, json_keys(&value, ""))
            } else {
                let config = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
                (config, json_keys(&value, ""))
            };
        config.from_data = crate::FromData::missing_from(&keys);
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML, as written to `config.toml` in the run folder.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a TrainConfig always serializes to TOML")
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

//! The methods a run can train, one file each.
//!
//! A method file holds three things: its config (the `[method]` section of a run config, tagged
//! by `kind`, nesting its components' configs: `[method.head]`, `[method.loss]`,
//! `[method.views]`), its network (a Burn module that also owns its loss and any state that is
//! not trained, such as BYOL's momentum target, so checkpoints carry it), and the
//! [`TrainMethod`] impl that ties them together: what data it needs, how it is evaluated, one
//! training step, and a hook after each optimizer step that sees the step's outputs. The
//! `methods!` list at the end of this file names every method once; it generates
//! [`MethodConfig`] and [`Method`] and their dispatch. Adding a method is one new file, one line
//! in that list and one preset (`docs/adding-a-method.md`).

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_augment::MultiViewConfig;
use repr_backbones::{Backbone, BackboneConfig, Pooling};
use repr_data::{ImageBatch, MultiViewBatch, Normalize};
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::distributed::{Group, LossScope};

/// `TrainMethod::backbone` and `map_backbone` for a method whose encoder is its `backbone`
/// field.
macro_rules! backbone_field {
    () => {
        fn backbone(&self) -> &Backbone {
            &self.backbone
        }

        fn map_backbone<E>(
            self,
            f: impl FnOnce(Backbone) -> Result<Backbone, E>,
        ) -> Result<Self, E> {
            Ok(Self {
                backbone: f(self.backbone)?,
                ..self
            })
        }
    };
}

pub mod byol;
pub mod masked_patch;
pub mod simclr;
pub mod supcon;
pub mod supervised;
pub mod triplet;

/// What one training step returns, still on the device.
pub struct StepOutput {
    /// The loss to back-propagate, `[1]`.
    pub loss: Tensor<1>,
    /// Correct predictions, `[1]`, for methods with an accuracy-like metric: correctly classified
    /// images (supervised), anchors whose nearest other view is their positive (SimCLR, out of
    /// two per image).
    pub correct: Option<Tensor<1, Int>>,
    /// What `correct` counts out of: images (supervised), anchors (SimCLR, BYOL: two per
    /// image), corrupted patch cells (masked-patch prediction); 0 without a metric.
    pub counted: usize,
    /// Detached outputs of the step that the method's post-step hook uses (a MoCo method's new
    /// keys for its queue, a DINO method's teacher outputs for its centre); empty otherwise.
    pub kept: Vec<Tensor<2>>,
    /// Whether `loss`, `correct` and `counted` cover this rank's share of the global batch or
    /// the whole global batch (when the step gathered embeddings from every rank).
    pub scope: LossScope,
}

impl StepOutput {
    /// A step's loss (a mean over this rank's images) and metric (counted over them), with
    /// nothing kept for the post-step hook.
    pub fn new(loss: Tensor<1>, correct: Option<Tensor<1, Int>>, counted: usize) -> Self {
        Self {
            loss,
            correct,
            counted,
            kept: Vec::new(),
            scope: LossScope::Shard,
        }
    }

    /// A step's loss and metric over the whole global batch, computed from embeddings
    /// gathered with [`Group::gather_rows`] (the same values on every rank).
    pub fn global(loss: Tensor<1>, correct: Option<Tensor<1, Int>>, counted: usize) -> Self {
        Self {
            scope: LossScope::Global,
            ..Self::new(loss, correct, counted)
        }
    }
}

/// Where a training step sits: its index in the run and the ranks it is spread over.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// The step, counted from 0 over the whole run.
    pub step: usize,
    /// The ranks sharing the global batch (one process: [`Group::one_process`]). A method
    /// whose loss compares images with each other gathers its embeddings over it.
    pub group: &'a Group,
}

impl StepContext<'static> {
    /// Step `step` of a run of one process.
    pub fn one_process(step: usize) -> Self {
        static ONE: std::sync::OnceLock<Group> = std::sync::OnceLock::new();
        StepContext {
            step,
            group: ONE.get_or_init(Group::one_process),
        }
    }
}

/// A training batch: labelled images, or several augmented views of the same images.
// One batch exists per step, moved once: the variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Batch {
    /// One augmented copy of each image, with labels.
    Labeled(ImageBatch),
    /// `views[v]` is the v-th view of every image, with the images' labels.
    Views(MultiViewBatch),
}

impl Batch {
    /// The first two views of a multi-view batch and the labels.
    ///
    /// # Panics
    /// For a single-view batch, or fewer than two views (the loader builds batches from the
    /// method's [`DataNeeds`], and [`MethodSettings::validate`] checks the view count).
    pub fn two_views(self, method: &str) -> (Tensor<4>, Tensor<4>, Tensor<1, Int>) {
        let Batch::Views(b) = self else {
            panic!("{method} trains on augmented views, not single images")
        };
        let mut views = b.views.into_iter();
        match (views.next(), views.next()) {
            (Some(v1), Some(v2)) => (v1, v2, b.targets),
            _ => panic!("{method} needs two views per image"),
        }
    }

    /// The images and labels of a single-view batch.
    ///
    /// # Panics
    /// For a multi-view batch.
    pub fn images(self, method: &str) -> ImageBatch {
        match self {
            Batch::Labeled(b) => b,
            Batch::Views(_) => panic!("{method} trains on single images, not views"),
        }
    }
}

/// What data a method trains on; the loader is built from it.
#[derive(Debug, Clone, PartialEq)]
pub enum DataNeeds {
    /// One augmented copy of each image (the run's `[augment]`: pad-and-crop, flip), with its
    /// label, in a shuffled order.
    Images,
    /// Class-balanced batches of P classes × K images (the run's `[augment]` on each), with
    /// their labels (Hermans et al. 2017).
    ClassBalanced {
        /// P: classes per batch.
        classes_per_batch: usize,
        /// K: images per class.
        images_per_class: usize,
    },
    /// Several augmented views of each image (one pipeline per view), with the labels, in a
    /// shuffled order.
    Views(MultiViewConfig),
}

/// How a method's network is evaluated during and after training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evaluation {
    /// A classifier: test accuracy and loss.
    Classifier,
    /// A representation: kNN and linear probe on the test split, retrieval, baselines.
    Embedding,
}

/// What a method is built from besides its config and encoder.
#[derive(Debug, Clone)]
pub struct RunFacts {
    /// How the loader normalises images (masked-patch targets come from the original pixels).
    pub normalize: Normalize,
    /// The run's seed.
    pub seed: u64,
    /// Channels of the images.
    pub channels: usize,
}

/// What a method's section is checked against: the rest of the run.
#[derive(Debug, Clone, Copy)]
pub struct RunShape<'a> {
    /// `[backbone]`.
    pub backbone: &'a BackboneConfig,
    /// `batch_size`.
    pub batch_size: usize,
    /// `eval.pooling`.
    pub pooling: Option<Pooling>,
}

/// What the post-step hook sees: the step just taken and its outputs.
pub struct AfterStep<'a> {
    /// The step, counted from 0 over the whole run.
    pub step: usize,
    /// Steps of the whole run (the schedule's length).
    pub total: usize,
    /// What the step returned (its loss already back-propagated).
    pub output: &'a StepOutput,
}

/// A method's config section, `[method]`: serde-ready with defaults, unknown keys rejected.
pub trait MethodSettings {
    /// The data the method trains on.
    fn data(&self) -> DataNeeds;

    /// How the network is evaluated.
    fn evaluation(&self) -> Evaluation {
        Evaluation::Embedding
    }

    /// Checks the section, and its fit to the rest of `run` (the backbone, the batch size,
    /// the evaluation's pooling), naming the field (`method.loss.temperature`).
    fn validate(&self, run: &RunShape<'_>) -> Result<(), TrainError>;

    /// The augmented views, for a method that trains on views.
    fn views(&self) -> Option<&MultiViewConfig> {
        None
    }

    /// The augmented views, to change (fitting them to the data, removing flips).
    fn views_mut(&mut self) -> Option<&mut MultiViewConfig> {
        None
    }

    /// The views this method trains on for images of `channels` channels and `size` pixels,
    /// when the views follow the data (a preset).
    fn views_for(&self, channels: usize, size: usize) -> MultiViewConfig {
        match channels {
            1 => MultiViewConfig::simclr_grayscale(size),
            _ if size > 64 => MultiViewConfig::simclr_imagenet(size),
            _ => MultiViewConfig::simclr_cifar(size),
        }
    }
}

/// A method: its network, loss and step.
pub trait TrainMethod: Sized {
    /// Its `[method]` section.
    type Config: MethodSettings;

    /// A fresh network around `backbone` (built by the run from `[backbone]`).
    fn init(
        config: &Self::Config,
        backbone: Backbone,
        run: &RunFacts,
        device: &Device,
    ) -> Result<Self, TrainError>;

    /// Loss (and metric) of one batch: this rank's share of the global batch of step
    /// `at.step`. A loss over pairs or triples of images (NT-Xent, SupCon, triplet mining)
    /// gathers the embeddings of every rank with `at.group` and returns
    /// [`StepOutput::global`]; a loss that is a mean over images returns [`StepOutput::new`].
    fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput;

    /// Work after each optimizer step, with the step's outputs (BYOL moves its target network).
    fn after_step(self, _after: &AfterStep<'_>) -> Self {
        self
    }

    /// The encoder.
    fn backbone(&self) -> &Backbone;

    /// The method with its encoder replaced by `f(encoder)` (copies of it, such as BYOL's
    /// momentum target, are left as they are).
    fn map_backbone<E>(self, f: impl FnOnce(Backbone) -> Result<Backbone, E>) -> Result<Self, E>;

    /// The method with every copy of its encoder (BYOL's momentum target) made equal to the
    /// encoder again: after the encoder was replaced by pre-trained weights.
    fn reset_copies(self) -> Self {
        self
    }

    /// The representation evaluated by kNN, linear probe and retrieval: the encoder's last
    /// layer pooled by `pooling` (`None`: the backbone's own).
    ///
    /// # Panics
    /// For a pooling the backbone cannot give (a ResNet's CLS token), which
    /// `TrainConfig::validate` rejects.
    fn represent(&self, images: Tensor<4>, pooling: Option<Pooling>) -> Tensor<2> {
        match pooling {
            None => self.backbone().embed(images),
            Some(pooling) => self
                .backbone()
                .embed_at(images, None, pooling)
                .expect("eval.pooling is validated against the backbone"),
        }
    }
}

/// A `[method]` error naming `method.<field>`.
pub(crate) fn method_error(field: &str, message: impl std::fmt::Display) -> TrainError {
    TrainError::Config {
        field: format!("method.{field}"),
        message: message.to_string(),
    }
}

/// Checks a component's config, naming the field under `method.<section>.`.
pub(crate) fn check_component(
    section: &str,
    result: Result<(), repr_objectives::ObjectiveError>,
) -> Result<(), TrainError> {
    result.map_err(|e| {
        let repr_objectives::ObjectiveError::OutOfRange { field, .. } = &e;
        method_error(&format!("{section}.{field}"), &e)
    })
}

/// Checks a method's views.
pub(crate) fn check_views(views: &MultiViewConfig) -> Result<(), TrainError> {
    views.validate().map_err(|e| method_error("views", e))
}

/// Checks the sections of a contrastive view method: `[method.head]` (whose input is set from
/// the encoder later), the loss's own check, `[method.views]`.
pub(crate) fn check_head_loss_views(
    head: &repr_objectives::ProjectionHeadConfig,
    loss: Result<(), repr_objectives::ObjectiveError>,
    views: &MultiViewConfig,
) -> Result<(), TrainError> {
    check_component("head", head.for_input(1).validate())?;
    check_component("loss", loss)?;
    check_views(views)
}

/// A method's section read from `value`, an error naming the path of the bad key inside it
/// (a tagged enum would buffer the section and lose it).
fn section<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    value: serde_json::Value,
) -> Result<T, E> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            E::custom(inner)
        } else {
            E::custom(format!("`{path}`: {inner}"))
        }
    })
}

macro_rules! methods {
    ($($(#[$doc:meta])* $variant:ident($module:ty, $config:ty) = $kind:literal,)*) => {
        /// The `[method]` section of a run config, tagged by `kind`:
        ///
        /// ```toml
        /// [method]
        /// kind = "simclr"
        /// [method.head]
        /// hidden = 256
        /// [method.loss]
        /// temperature = 0.5
        /// ```
        ///
        /// Unknown keys and wrong types are errors naming their path inside `[method]`.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind")]
        pub enum MethodConfig {
            $($(#[$doc])* #[serde(rename = $kind)] $variant($config),)*
        }

        /// The network of a run, one variant per method.
        #[derive(Module, Debug)]
        // One network per run, moved rarely: the variants' size difference does not matter.
        #[allow(clippy::large_enum_variant)]
        pub enum Method {
            $($(#[$doc])* $variant($module),)*
        }

        impl<'de> Deserialize<'de> for MethodConfig {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::Error;
                let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
                let kind = match map.remove("kind") {
                    Some(serde_json::Value::String(kind)) => kind,
                    Some(other) => {
                        return Err(D::Error::custom(format!("`kind`: expected a string, found {other}")));
                    }
                    None => return Err(D::Error::missing_field("kind")),
                };
                let rest = serde_json::Value::Object(map);
                match kind.as_str() {
                    $($kind => Ok(Self::$variant(section(rest)?)),)*
                    other => Err(D::Error::unknown_variant(other, Self::KINDS)),
                }
            }
        }

        impl MethodConfig {
            /// Every method's `kind`, in order.
            pub const KINDS: &'static [&'static str] = &[$($kind),*];

            /// The method's `kind` (`"simclr"`), as in config files and `summary.json`.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => $kind,)*
                }
            }

            /// The section's settings.
            pub fn settings(&self) -> &dyn MethodSettings {
                match self {
                    $(Self::$variant(c) => c,)*
                }
            }

            /// The section's settings, to change.
            pub fn settings_mut(&mut self) -> &mut dyn MethodSettings {
                match self {
                    $(Self::$variant(c) => c,)*
                }
            }

            /// A fresh network of this method around `backbone`.
            pub fn init(
                &self,
                backbone: Backbone,
                run: &RunFacts,
                device: &Device,
            ) -> Result<Method, TrainError> {
                Ok(match self {
                    $(Self::$variant(c) => {
                        Method::$variant(<$module as TrainMethod>::init(c, backbone, run, device)?)
                    })*
                })
            }
        }

        impl Method {
            /// Loss (and metric) of one batch (see [`TrainMethod::step`]).
            pub fn step(&self, batch: Batch, at: &StepContext<'_>) -> StepOutput {
                match self {
                    $(Self::$variant(m) => m.step(batch, at),)*
                }
            }

            /// Work after each optimizer step (see [`TrainMethod::after_step`]).
            pub fn after_step(self, after: &AfterStep<'_>) -> Self {
                match self {
                    $(Self::$variant(m) => Self::$variant(m.after_step(after)),)*
                }
            }

            /// The encoder.
            pub fn backbone(&self) -> &Backbone {
                match self {
                    $(Self::$variant(m) => m.backbone(),)*
                }
            }

            /// The method with its encoder replaced by `f(encoder)`.
            pub fn map_backbone<E>(
                self,
                f: impl FnOnce(Backbone) -> Result<Backbone, E>,
            ) -> Result<Self, E> {
                Ok(match self {
                    $(Self::$variant(m) => Self::$variant(m.map_backbone(f)?),)*
                })
            }

            /// The method with every copy of its encoder made equal to it again (see
            /// [`TrainMethod::reset_copies`]).
            pub fn reset_copies(self) -> Self {
                match self {
                    $(Self::$variant(m) => Self::$variant(m.reset_copies()),)*
                }
            }

            /// The evaluated representation with the encoder's last layer pooled by `pooling`
            /// (see [`TrainMethod::represent`]).
            ///
            /// # Shapes
            /// - `images`: `[batch, channels, height, width]`
            /// - output: `[batch, dim]`
            pub fn represent(&self, images: Tensor<4>, pooling: Option<Pooling>) -> Tensor<2> {
                match self {
                    $(Self::$variant(m) => m.represent(images, pooling),)*
                }
            }

            /// The evaluated representation with the backbone's own pooling.
            pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
                self.represent(images, None)
            }

            /// The prefix of the encoder's parameter paths inside this module
            /// (`"Supervised.backbone."`).
            pub fn backbone_path(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => concat!(stringify!($variant), ".backbone."),)*
                }
            }
        }
    };
}

methods! {
    /// A classifier trained with cross-entropy (`supervised`; fine-tuning is this method with
    /// an `[init]` section).
    Supervised(supervised::Supervised, supervised::SupervisedConfig) = "supervised",
    /// SimCLR: encoder + projection head, NT-Xent between two views.
    Simclr(simclr::SimClr, simclr::SimclrConfig) = "simclr",
    /// Encoder + embedding head trained with triplet loss on P×K batches.
    Triplet(triplet::TripletNet, triplet::TripletConfig) = "triplet",
    /// BYOL: online and momentum-target networks, no negatives.
    Byol(byol::Byol, byol::ByolConfig) = "byol",
    /// A ViT predicting its corrupted patches.
    MaskedPatch(masked_patch::MaskedPatchNet, masked_patch::MaskedPatchMethodConfig) = "masked-patch",
    /// Supervised contrastive learning on two views: every same-label view is a positive.
    SupCon(supcon::SupCon, supcon::SupConConfig) = "supcon",
}

impl Default for MethodConfig {
    fn default() -> Self {
        Self::Supervised(supervised::SupervisedConfig::default())
    }
}

impl MethodConfig {
    /// The data the method trains on.
    pub fn data(&self) -> DataNeeds {
        self.settings().data()
    }

    /// How the method's network is evaluated.
    pub fn evaluation(&self) -> Evaluation {
        self.settings().evaluation()
    }

    /// Whether the method learns an embedding (no classifier).
    pub fn is_embedding(&self) -> bool {
        self.evaluation() == Evaluation::Embedding
    }

    /// The augmented views, for a method that trains on views.
    pub fn views(&self) -> Option<&MultiViewConfig> {
        self.settings().views()
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};
    use repr_backbones::{Backbone, BackboneConfig, Pooling, ViTConfig};

    use crate::TrainConfig;

    /// `eval.pooling`: a ViT method evaluates its CLS token by default and its mean patch token
    /// with `"avg"`; both are what the backbone gives for that pooling.
    #[test]
    fn a_vit_method_is_represented_by_the_asked_pooling() {
        let device = Device::flex();
        let mut config = TrainConfig::masked_patch();
        config.backbone = BackboneConfig::ViT(
            ViTConfig::new(8, 4, 16, 1, 2, 32)
                .with_in_channels(1)
                .with_num_classes(0),
        );
        let crate::MethodConfig::MaskedPatch(m) = &mut config.method else {
            unreachable!("the masked-patch preset")
        };
        m.loss.patch_size = 4;
        let normalize = repr_data::Normalize {
            mean: vec![0.5],
            std: vec![0.5],
        };
        let facts = config.run_facts(normalize);
        let method = config.init_method(&facts, &device).unwrap();
        let x = Tensor::<4>::random([3, 1, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let Backbone::ViT(vit) = method.backbone() else {
            unreachable!("a ViT config")
        };
        let tokens = vit.forward_encoder(x.clone());
        let cls = values(vit.pool_tokens(tokens.clone(), Pooling::Cls));
        let avg = values(vit.pool_tokens(tokens, Pooling::Avg));
        assert_eq!(values(method.represent(x.clone(), None)), cls);
        assert_eq!(values(method.represent(x.clone(), Some(Pooling::Cls))), cls);
        assert_eq!(values(method.represent(x, Some(Pooling::Avg))), avg);
        assert_ne!(cls, avg);
    }
}

//! The methods a run can train, as one module enum, and what a training step returns.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_backbones::{Backbone, Pooling};
use repr_data::{ImageBatch, MultiViewBatch, Normalize};
use repr_objectives::{
    CrossEntropyLoss, CrossEntropyLossConfig, NtXentLoss, NtXentLossConfig, ProjectionHeadConfig,
    TripletLoss, TripletLossConfig,
};

use crate::masked_patch::{MaskedPatchNet, MaskedPatchObjective};
use crate::{Byol, Recipe, SimClr, Supervised, TrainConfig, TrainError, TripletNet};

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
}

/// A network and the way it is trained. Adding a method adds a variant here (see
/// `docs/adding-a-method.md`).
#[derive(Module, Debug)]
// One network per run, moved rarely: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Method {
    /// Classifier trained with cross-entropy.
    Supervised(Supervised),
    /// Encoder + projection head trained with NT-Xent on two views.
    Simclr(SimClr),
    /// Encoder + embedding head trained with triplet loss on P×K batches.
    Triplet(TripletNet),
    /// Online and momentum-target networks trained with BYOL's regression loss on two views.
    Byol(Byol),
    /// A ViT predicting its corrupted patches (masked-patch prediction).
    MaskedPatch(MaskedPatchNet),
}

/// A training batch: labelled images, or several augmented views of the same images.
// One batch exists per step, moved once: the variants' size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Batch {
    /// One augmented copy of each image, with labels.
    Labeled(ImageBatch),
    /// `views[v]` is the v-th view of every image.
    Views(MultiViewBatch),
}

/// The losses of the configured method, built once.
#[derive(Debug, Clone)]
pub enum Objective {
    /// Cross-entropy with label smoothing.
    CrossEntropy(CrossEntropyLoss),
    /// NT-Xent.
    NtXent(NtXentLoss),
    /// Triplet loss with its miner.
    Triplet(TripletLoss),
    /// BYOL's normalised regression (no parameters).
    Byol,
    /// Masked-patch prediction: corruption, targets, and what they need from the run.
    MaskedPatch(MaskedPatchObjective),
}

fn config_error(field: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Config {
        field: field.into(),
        message: e.to_string(),
    }
}

impl Objective {
    /// The loss of `config.recipe`, for batches normalised by `normalize`.
    pub fn new(config: &TrainConfig, normalize: &Normalize) -> Result<Self, TrainError> {
        Ok(match config.recipe {
            Recipe::Supervised | Recipe::Finetune => Objective::CrossEntropy(
                CrossEntropyLossConfig::new()
                    .with_smoothing(config.label_smoothing)
                    .init()
                    .map_err(|e| config_error("label_smoothing", e))?,
            ),
            Recipe::Simclr => Objective::NtXent(
                NtXentLossConfig {
                    temperature: config.simclr.temperature,
                    chunk_size: config.simclr.chunk_size,
                }
                .init()
                .map_err(|e| config_error("simclr.temperature", e))?,
            ),
            Recipe::Byol => Objective::Byol,
            Recipe::MaskedPatch => Objective::MaskedPatch(MaskedPatchObjective {
                config: config.masked_patch.clone(),
                normalize: normalize.clone(),
                seed: config.seed,
            }),
            Recipe::Triplet => {
                let t = &config.triplet;
                Objective::Triplet(
                    TripletLossConfig {
                        margin: t.margin,
                        distance: t.distance,
                        miner: t.miner,
                        soft_margin: t.soft_margin,
                        reduction: repr_objectives::TripletReduction::MeanNonZero,
                    }
                    .init()
                    .map_err(|e| config_error("triplet", e))?,
                )
            }
        })
    }
}

impl Method {
    /// A freshly initialised network for `config.recipe`.
    pub fn init(config: &TrainConfig, device: &Device) -> Self {
        let backbone = config.backbone.init(device);
        match config.recipe {
            Recipe::Supervised | Recipe::Finetune => Method::Supervised(Supervised { backbone }),
            Recipe::Simclr => {
                let s = &config.simclr;
                let head = ProjectionHeadConfig {
                    input: backbone.num_features(),
                    hidden: s.head_hidden,
                    output: s.head_output,
                    layers: s.head_layers,
                    batch_norm: s.head_batch_norm,
                }
                .init(device);
                Method::Simclr(SimClr { backbone, head })
            }
            Recipe::Byol => Method::Byol(Byol::new(
                backbone,
                config.byol.hidden,
                config.byol.output,
                device,
            )),
            Recipe::Triplet => Method::Triplet(TripletNet::new(
                backbone,
                config.triplet.embedding_dim,
                device,
            )),
            Recipe::MaskedPatch => {
                let channels = config.backbone.in_channels();
                Method::MaskedPatch(MaskedPatchNet::new(
                    backbone,
                    &config.masked_patch,
                    channels,
                    device,
                ))
            }
        }
    }

    /// The method with its encoder replaced by `f(encoder)`.
    pub fn map_backbone<E>(
        self,
        f: impl FnOnce(Backbone) -> Result<Backbone, E>,
    ) -> Result<Self, E> {
        Ok(match self {
            Method::Supervised(m) => Method::Supervised(Supervised {
                backbone: f(m.backbone)?,
            }),
            Method::Simclr(m) => Method::Simclr(SimClr {
                backbone: f(m.backbone)?,
                head: m.head,
            }),
            Method::Triplet(m) => Method::Triplet(TripletNet {
                backbone: f(m.backbone)?,
                ..m
            }),
            Method::MaskedPatch(m) => Method::MaskedPatch(MaskedPatchNet {
                backbone: f(m.backbone)?,
                head: m.head,
            }),
            // The target encoder follows the online one.
            Method::Byol(m) => {
                let backbone = f(m.backbone)?;
                Method::Byol(Byol {
                    target_backbone: repr_objectives::momentum::momentum_copy(&backbone),
                    backbone,
                    ..m
                })
            }
        })
    }

    /// Work after each optimizer step: BYOL moves its target network towards the online one
    /// with the decay of step `step` of `total`.
    pub fn after_step(self, step: usize, total: usize, config: &TrainConfig) -> Self {
        match self {
            Method::Byol(m) => Method::Byol(m.update_target(repr_objectives::target_decay(
                step,
                total,
                config.byol.base_decay,
            ))),
            other => other,
        }
    }

    /// The encoder.
    pub fn backbone(&self) -> &Backbone {
        match self {
            Method::Supervised(m) => &m.backbone,
            Method::Simclr(m) => &m.backbone,
            Method::Triplet(m) => &m.backbone,
            Method::Byol(m) => &m.backbone,
            Method::MaskedPatch(m) => &m.backbone,
        }
    }

    /// The representation evaluated by kNN, linear probe and retrieval: the encoder's pooled
    /// features, or the L2-normalised embedding for the triplet method (what it was trained to
    /// order).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, dim]`
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        self.represent(images, None)
    }

    /// As [`embed`](Self::embed), with the encoder's last layer pooled by `pooling` (`None`:
    /// the backbone's own; the triplet method always gives its trained embedding).
    ///
    /// # Panics
    /// For a pooling the backbone cannot give (a ResNet's CLS token), which
    /// [`TrainConfig::validate`] rejects.
    pub fn represent(&self, images: Tensor<4>, pooling: Option<Pooling>) -> Tensor<2> {
        match (self, pooling) {
            (Method::Triplet(m), _) => m.embed(images),
            (other, None) => other.backbone().embed(images),
            (other, Some(pooling)) => other
                .backbone()
                .embed_at(images, None, pooling)
                .expect("eval.pooling is validated against the backbone"),
        }
    }

    /// Loss (and metric) of one batch at training step `step` (counted from 0 over the whole
    /// run; masked-patch prediction draws its corruption from it).
    ///
    /// # Panics
    /// If the batch or objective does not belong to the method (a programming error: the
    /// trainer builds all three from the same recipe).
    pub fn step(&self, batch: Batch, objective: &Objective, step: usize) -> StepOutput {
        match (self, batch, objective) {
            (Method::MaskedPatch(m), Batch::Labeled(b), Objective::MaskedPatch(o)) => {
                m.step(b.images, o, step)
            }
            (Method::Supervised(m), Batch::Labeled(b), Objective::CrossEntropy(l)) => m.step(b, l),
            (Method::Triplet(m), Batch::Labeled(b), Objective::Triplet(l)) => {
                m.step(b.images, b.targets, l)
            }
            (Method::Byol(m), Batch::Views(b), Objective::Byol) => {
                let mut views = b.views.into_iter();
                match (views.next(), views.next()) {
                    (Some(v1), Some(v2)) => m.step(v1, v2),
                    _ => panic!("BYOL needs two views per image"),
                }
            }
            (Method::Simclr(m), Batch::Views(b), Objective::NtXent(l)) => {
                let mut views = b.views.into_iter();
                match (views.next(), views.next()) {
                    (Some(v1), Some(v2)) => m.step(v1, v2, l),
                    _ => panic!("SimCLR needs two views per image"),
                }
            }
            _ => panic!("batch kind and objective do not match the method"),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};
    use repr_backbones::{Backbone, BackboneConfig, Pooling, ViTConfig};

    use crate::{Method, Recipe, TrainConfig};

    /// `eval.pooling`: a ViT method evaluates its CLS token by default and its mean patch token
    /// with `"avg"`; both are what the backbone gives for that pooling.
    #[test]
    fn a_vit_method_is_represented_by_the_asked_pooling() {
        let device = Device::flex();
        let mut config = TrainConfig::masked_patch();
        config.recipe = Recipe::MaskedPatch;
        config.backbone = BackboneConfig::ViT(
            ViTConfig::new(8, 4, 16, 1, 2, 32)
                .with_in_channels(1)
                .with_num_classes(0),
        );
        config.masked_patch.patch_size = 4;
        let method = Method::init(&config, &device);
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

//! Validation of a [`TrainConfig`]: every impossible value is named, with its allowed range,
//! before any training work starts.

use repr_backbones::BackboneConfig;

use crate::{OptimizerConfig, Recipe, TrainConfig, TrainError};

impl TrainConfig {
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
            OptimizerConfig::Lars {
                momentum,
                weight_decay,
                eta,
                ..
            } => {
                if !(0.0..1.0).contains(momentum) {
                    return bad("optimizer.momentum", "0 <= value < 1", momentum.to_string());
                }
                if !(*weight_decay >= 0.0) {
                    return bad("optimizer.weight_decay", ">= 0", weight_decay.to_string());
                }
                if !(*eta > 0.0 && eta.is_finite()) {
                    return bad("optimizer.eta", "a finite value > 0", eta.to_string());
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
        self.validate_methods()
    }

    /// The sections of the embedding methods and their evaluation.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn validate_methods(&self) -> Result<(), TrainError> {
        let bad = |field: &str, allowed: &str, value: String| {
            Err(TrainError::Config {
                field: field.to_string(),
                message: format!("{value} is not allowed: expected {allowed}"),
            })
        };
        let simclr = &self.simclr;
        if !(simclr.temperature > 0.0 && simclr.temperature.is_finite()) {
            return bad(
                "simclr.temperature",
                "a finite value > 0",
                simclr.temperature.to_string(),
            );
        }
        if simclr.head_layers == 0 {
            return bad("simclr.head_layers", ">= 1", "0".into());
        }
        if simclr.head_hidden == 0 || simclr.head_output == 0 {
            return bad(
                "simclr.head_hidden / simclr.head_output",
                ">= 1",
                format!("{} / {}", simclr.head_hidden, simclr.head_output),
            );
        }
        if simclr.chunk_size == Some(0) {
            return bad("simclr.chunk_size", ">= 1 when given", "0".into());
        }
        let triplet = &self.triplet;
        if !(triplet.margin >= 0.0 && triplet.margin.is_finite()) {
            return bad(
                "triplet.margin",
                "a finite value >= 0",
                triplet.margin.to_string(),
            );
        }
        if triplet.embedding_dim == 0 {
            return bad("triplet.embedding_dim", ">= 1", "0".into());
        }
        if triplet.classes_per_batch < 2 {
            return bad(
                "triplet.classes_per_batch",
                ">= 2 (a negative needs another class)",
                triplet.classes_per_batch.to_string(),
            );
        }
        if triplet.images_per_class < 2 {
            return bad(
                "triplet.images_per_class",
                ">= 2 (a positive needs another image of the class)",
                triplet.images_per_class.to_string(),
            );
        }
        let pk = triplet.classes_per_batch * triplet.images_per_class;
        if self.recipe == Recipe::Triplet && pk != self.batch_size {
            return bad(
                "batch_size",
                &format!(
                    "triplet.classes_per_batch x triplet.images_per_class = {} x {} = {pk}",
                    triplet.classes_per_batch, triplet.images_per_class
                ),
                self.batch_size.to_string(),
            );
        }
        let eval = &self.eval;
        if eval.knn_k == 0 {
            return bad("eval.knn_k", ">= 1", "0".into());
        }
        if !(eval.knn_temperature > 0.0 && eval.knn_temperature.is_finite()) {
            return bad(
                "eval.knn_temperature",
                "a finite value > 0",
                eval.knn_temperature.to_string(),
            );
        }
        if let Some(pooling) = eval.pooling {
            if self.recipe == crate::Recipe::Triplet {
                return bad(
                    "eval.pooling",
                    "no value for the triplet recipe (it evaluates its trained embedding)",
                    format!("{pooling:?}").to_lowercase(),
                );
            }
            if pooling == repr_backbones::Pooling::Cls
                && !matches!(self.backbone, repr_backbones::BackboneConfig::ViT(_))
            {
                return bad(
                    "eval.pooling",
                    "\"avg\" or \"max\" for a ResNet (\"cls\" is a ViT's class token)",
                    "\"cls\"".into(),
                );
            }
        }
        if eval.memory_limit == Some(0) {
            return bad("eval.memory_limit", ">= 1 when given", "0".into());
        }
        if eval.linear_probe && eval.linear_epochs == 0 {
            return bad(
                "eval.linear_epochs",
                ">= 1 when eval.linear_probe is on",
                "0".into(),
            );
        }
        if let Some(fraction) = self.data.labels_fraction
            && !(fraction > 0.0 && fraction <= 1.0)
        {
            return bad(
                "data.labels_fraction",
                "0 < value <= 1",
                fraction.to_string(),
            );
        }
        let finetune = &self.finetune;
        if !(finetune.backbone_lr_scale >= 0.0 && finetune.backbone_lr_scale.is_finite()) {
            return bad(
                "finetune.backbone_lr_scale",
                "a finite value >= 0",
                finetune.backbone_lr_scale.to_string(),
            );
        }
        let stages = crate::finetune::num_stages(&self.backbone);
        for (field, value) in [
            ("finetune.keep_stages", finetune.keep_stages),
            ("finetune.freeze_stages", finetune.freeze_stages),
        ] {
            if let Some(value) = value
                && value > stages
            {
                return bad(
                    field,
                    &format!("at most {stages} (the stages of {})", self.backbone.name()),
                    value.to_string(),
                );
            }
        }
        if let (Some(frozen), Some(kept)) = (finetune.freeze_stages, finetune.keep_stages)
            && frozen > kept
        {
            return bad(
                "finetune.freeze_stages",
                &format!(
                    "<= finetune.keep_stages ({kept}): later stages are freshly initialised and \
                     would never train"
                ),
                frozen.to_string(),
            );
        }
        if self.recipe == Recipe::Finetune && finetune.from.is_none() {
            return bad(
                "finetune.from",
                "the pre-trained weights (a repr run folder or a .safetensors/.pt file)",
                "nothing".into(),
            );
        }
        if !(self.byol.base_decay >= 0.0 && self.byol.base_decay <= 1.0) {
            return bad(
                "byol.base_decay",
                "0 <= value <= 1",
                self.byol.base_decay.to_string(),
            );
        }
        if self.byol.hidden == 0 || self.byol.output == 0 {
            return bad("byol.hidden / byol.output", ">= 1", "0".into());
        }
        if self.recipe == Recipe::MaskedPatch {
            if let Err(e) = self.masked_patch.validate() {
                let repr_objectives::ObjectiveError::OutOfRange { field, .. } = &e;
                return Err(TrainError::Config {
                    field: format!("masked_patch.{field}"),
                    message: e.to_string(),
                });
            }
            let BackboneConfig::ViT(vit) = &self.backbone else {
                return bad(
                    "backbone.kind",
                    "\"vit\" (masked-patch prediction corrupts a ViT's patch tokens)",
                    format!("{:?}", self.backbone.name()),
                );
            };
            if self.masked_patch.patch_size != vit.patch_size {
                return bad(
                    "masked_patch.patch_size",
                    &format!("the ViT's patch size ({})", vit.patch_size),
                    self.masked_patch.patch_size.to_string(),
                );
            }
        }
        if matches!(self.recipe, Recipe::Simclr | Recipe::Byol)
            && let Err(e) = self.views.validate()
        {
            return Err(TrainError::Config {
                field: "views".into(),
                message: e.to_string(),
            });
        }
        Ok(())
    }
}

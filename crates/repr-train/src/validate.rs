//! Validation of a [`TrainConfig`]: every impossible value is named, with its allowed range,
//! before any training work starts. Each section checks itself (`OptimizerConfig::validate`,
//! `EvalConfig::validate`, ..., the method's `MethodSettings::validate` and the components'
//! own); `TrainConfig::validate` adds the rules that span sections.

use repr_backbones::BackboneConfig;

use crate::{
    AugmentConfig, DataConfig, EvalConfig, InitConfig, OptimizerConfig, TrainConfig, TrainError,
};

fn bad(field: &str, allowed: &str, value: String) -> Result<(), TrainError> {
    Err(TrainError::Config {
        field: field.to_string(),
        message: format!("{value} is not allowed: expected {allowed}"),
    })
}

/// The largest number of epochs.
pub const MAX_EPOCHS: usize = 1_000_000;
/// The largest training or evaluation batch.
pub const MAX_BATCH: usize = 65_536;
/// The largest side of `data.image_size`: images are held in memory at this size.
pub const MAX_IMAGE_SIDE: usize = 4096;
/// The largest `data.max_image_pixels` (a gigapixel).
pub const MAX_IMAGE_PIXELS: u64 = 1_000_000_000;

/// `value` in `min..=max`, or an error naming `field` and the range (`why` explains the
/// lower bound).
fn in_range(
    field: &str,
    value: usize,
    min: usize,
    max: usize,
    why: &str,
) -> Result<(), TrainError> {
    if value < min {
        return bad(field, &format!(">= {min}{why}"), value.to_string());
    }
    if value > max {
        return bad(
            field,
            &format!("at most {max} (an upper bound that keeps allocations sane)"),
            value.to_string(),
        );
    }
    Ok(())
}

impl TrainConfig {
    /// Checks every value before any training work starts, naming the field and allowed range.
    // `!(x >= 0.0)` on purpose: it also rejects NaN.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<(), TrainError> {
        // Upper bounds keep a mistyped value (an extra zero or three) from asking for more
        // memory than any machine has, which would abort the process instead of naming the
        // field; they sit far above any real run.
        let sizes = [
            ("epochs", self.epochs, 1, MAX_EPOCHS, ""),
            (
                "batch_size",
                self.batch_size,
                2,
                MAX_BATCH,
                " (BatchNorm needs two samples)",
            ),
            ("eval_batch_size", self.eval_batch_size, 1, MAX_BATCH, ""),
            ("log_every_steps", self.log_every_steps, 1, usize::MAX, ""),
            ("prefetch_batches", self.prefetch_batches, 1, 64, ""),
            ("checkpoint_keep", self.checkpoint_keep, 1, 1000, ""),
        ];
        for (field, value, min, max, why) in sizes {
            in_range(field, value, min, max, why)?;
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", ">= 1 when given", "0".into());
        }
        self.augment.validate()?;
        self.optimizer.validate()?;
        if self.schedule.reference_batch == 0 {
            return bad("schedule.reference_batch", ">= 1", "0".into());
        }
        let lr = self.peak_lr();
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
                &format!("0 <= value <= the peak learning rate ({lr})"),
                self.schedule.min_lr.to_string(),
            );
        }
        if let Err(e) = self.backbone.validate() {
            return Err(TrainError::Config {
                field: "backbone".into(),
                message: e.to_string(),
            });
        }
        self.data.validate()?;
        self.method.settings().validate(&self.run_shape())?;
        if self.augment_on == crate::AugmentOn::Device && self.method.views().is_none() {
            return bad(
                "augment_on",
                "\"cpu\" for a single-image method (\"device\" applies a view method's \
                 [method.views]; the crop and flip of [augment] run on the CPU)",
                "\"device\"".into(),
            );
        }
        self.eval.validate(&self.backbone)?;
        match &self.init {
            Some(init) => init.validate(&self.backbone),
            None => Ok(()),
        }
    }
}

impl OptimizerConfig {
    /// Checks the learning rate and the optimizer's own ranges, naming `optimizer.<field>`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<(), TrainError> {
        let lr = self.lr();
        if !(lr.is_finite() && lr > 0.0) {
            return bad("optimizer.lr", "a finite value > 0", lr.to_string());
        }
        match self {
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
        Ok(())
    }
}

impl AugmentConfig {
    /// Checks the flip probability.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..=1.0).contains(&self.horizontal_flip) {
            return bad(
                "augment.horizontal_flip",
                "a probability in [0, 1]",
                self.horizontal_flip.to_string(),
            );
        }
        Ok(())
    }
}

impl DataConfig {
    /// Checks channels, image size and the label fraction, naming `data.<field>`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self) -> Result<(), TrainError> {
        if let Some(channels) = self.channels
            && channels != 1
            && channels != 3
        {
            return bad("data.channels", "1 or 3", channels.to_string());
        }
        if let Some([h, w]) = self.image_size
            && (h == 0 || w == 0 || h.max(w) > MAX_IMAGE_SIDE)
        {
            return bad(
                "data.image_size",
                &format!(
                    "both sides in 1..={MAX_IMAGE_SIDE} (every image is held in memory at this \
                     size)"
                ),
                format!("[{h}, {w}]"),
            );
        }
        if !(1..=MAX_IMAGE_PIXELS).contains(&self.max_image_pixels) {
            return bad(
                "data.max_image_pixels",
                &format!("1 ..= {MAX_IMAGE_PIXELS} (8 bytes per pixel while decoding)"),
                self.max_image_pixels.to_string(),
            );
        }
        if let Some(fraction) = self.labels_fraction
            && !(fraction > 0.0 && fraction <= 1.0)
        {
            return bad(
                "data.labels_fraction",
                "0 < value <= 1",
                fraction.to_string(),
            );
        }
        Ok(())
    }
}

impl EvalConfig {
    /// Checks the kNN, probe and memory settings, and the pooling against `backbone` (a CLS
    /// token is a ViT's), naming `eval.<field>`.
    pub fn validate(&self, backbone: &BackboneConfig) -> Result<(), TrainError> {
        in_range("eval.knn_k", self.knn_k, 1, 10_000, "")?;
        if !(self.knn_temperature > 0.0 && self.knn_temperature.is_finite()) {
            return bad(
                "eval.knn_temperature",
                "a finite value > 0",
                self.knn_temperature.to_string(),
            );
        }
        if self.pooling == Some(repr_backbones::Pooling::Cls)
            && !matches!(backbone, BackboneConfig::ViT(_))
        {
            return bad(
                "eval.pooling",
                "\"avg\" or \"max\" for a ResNet (\"cls\" is a ViT's class token)",
                "\"cls\"".into(),
            );
        }
        if self.memory_limit == Some(0) {
            return bad("eval.memory_limit", ">= 1 when given", "0".into());
        }
        if self.linear_probe && self.linear_epochs == 0 {
            return bad(
                "eval.linear_epochs",
                ">= 1 when eval.linear_probe is on",
                "0".into(),
            );
        }
        Ok(())
    }
}

impl InitConfig {
    /// Checks the source and the stage counts against `backbone`'s stages, naming
    /// `init.<field>`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn validate(&self, backbone: &BackboneConfig) -> Result<(), TrainError> {
        if self.from.as_os_str().is_empty() {
            return bad(
                "init.from",
                "the pre-trained weights (a repr run folder or a .safetensors/.pt file; --from)",
                "nothing".into(),
            );
        }
        if !(self.backbone_lr_scale >= 0.0 && self.backbone_lr_scale.is_finite()) {
            return bad(
                "init.backbone_lr_scale",
                "a finite value >= 0",
                self.backbone_lr_scale.to_string(),
            );
        }
        // The stem is stage 0.
        let stages = crate::init::num_stages(backbone);
        for (field, value) in [
            ("init.keep_stages", self.keep_stages),
            ("init.freeze_stages", self.freeze_stages),
        ] {
            if let Some(value) = value
                && value > stages
            {
                return bad(
                    field,
                    &format!("at most {stages} (the stages of {})", backbone.name()),
                    value.to_string(),
                );
            }
        }
        if let (Some(frozen), Some(kept)) = (self.freeze_stages, self.keep_stages)
            && frozen > kept
        {
            return bad(
                "init.freeze_stages",
                &format!(
                    "<= init.keep_stages ({kept}): later stages are freshly initialised and \
                     would never train"
                ),
                frozen.to_string(),
            );
        }
        Ok(())
    }
}

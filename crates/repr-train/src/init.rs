//! `[init]`: a run's first stages from pre-trained weights (fine-tuning, for any method): where
//! the weights come from, which stages are copied, frozen or re-initialised, and the backbone's
//! learning-rate group.
//!
//! A backbone's *stages* are [`BackboneConfig::stages`]: its stem (stage 0: ResNet `conv1` +
//! `bn1`) then its residual stages (`layer1`..`layer4`) or transformer blocks; its classifier head
//! is never copied. Stages are selected by parameter path (the paths of [`Backbone`], variant
//! names included: `ResNet.layer1.0.Basic.conv1.weight`).

use std::path::Path;

use burn::module::{Module, ParamGroup};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::store::{ModuleSnapshot, PathFilter};
use burn::tensor::Device;
use repr_backbones::{Backbone, BackboneConfig};

use crate::{InitConfig, RunDir, TrainConfig, TrainError, saved::TrainedRun};

/// Stages after the stem: ResNet's four residual stages, a ViT's blocks.
pub fn num_stages(config: &BackboneConfig) -> usize {
    config.stages().len() - 1
}

/// Path prefixes (inside [`Backbone`]) of the stem and stages `1..=upto`, or of the whole
/// body without the head when `upto` is `None`.
fn stage_prefixes(config: &BackboneConfig, upto: Option<usize>) -> Vec<String> {
    let stages = config.stages();
    let upto = upto.unwrap_or(stages.len() - 1).min(stages.len() - 1);
    stages
        .into_iter()
        .take(upto + 1)
        .flat_map(|stage| stage.prefixes)
        .collect()
}

/// A regex matching parameter paths that start (after an optional `outer` prefix such as
/// `Supervised.backbone.`) with one of `prefixes`.
fn prefix_regex(outer: &str, prefixes: &[String]) -> String {
    let alternatives: Vec<String> = prefixes.iter().map(|p| regex_escape(p)).collect();
    format!(
        "^(?:{})?(?:{})",
        regex_escape(outer),
        alternatives.join("|")
    )
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

fn init_error(message: impl Into<String>) -> TrainError {
    TrainError::Config {
        field: "init.from".into(),
        message: message.into(),
    }
}

/// The config a fine-tuning run trains with: with a `repr` run as the source, its backbone
/// architecture (this config's number of classes kept), so that every copied tensor fits. A run
/// without `[init]` is returned as it is.
pub fn resolve(config: &TrainConfig) -> Result<TrainConfig, TrainError> {
    let mut resolved = config.clone();
    let Some(init) = &config.init else {
        return Ok(resolved);
    };
    if init.from.as_os_str().is_empty() {
        return Err(init_error(
            "fine-tuning needs pre-trained weights: a repr run folder, or a PyTorch \
             .safetensors/.pt file (--from)",
        ));
    }
    if init.from.is_dir() {
        let source = source_config(&init.from)?;
        resolved.backbone = source
            .backbone
            .with_num_classes(config.backbone.num_classes());
    }
    Ok(resolved)
}

fn source_config(run: &Path) -> Result<TrainConfig, TrainError> {
    let path = run.join("config.toml");
    if !path.exists() {
        return Err(init_error(format!(
            "{} is a folder but not a repr run (no config.toml)",
            run.display()
        )));
    }
    TrainConfig::from_file(&path)
}

/// The pre-trained backbone named by `init.from`, on `device`, for `backbone`.
fn pretrained(
    init: &InitConfig,
    backbone: &BackboneConfig,
    device: &Device,
) -> Result<Backbone, TrainError> {
    if init.from.is_dir() {
        let run = RunDir::open(&init.from, crate::RunMode::Resume)?;
        return Ok(TrainedRun::load(&run, device)?.method.backbone().clone());
    }
    // A PyTorch state dict for this config's architecture; its classifier is never used.
    backbone
        .init(device)
        .load_torchvision(&init.from, &["fc."])
        .map_err(|e| init_error(e.to_string()))
}

/// `fresh` with the pre-trained stem and first `init.keep_stages` stages copied in (all stages
/// when unset); the rest of `fresh`, the head included, keeps its initialisation. A run
/// without `[init]` gets `fresh` back.
pub fn load_pretrained(
    config: &TrainConfig,
    fresh: Backbone,
    device: &Device,
) -> Result<Backbone, TrainError> {
    let Some(init) = &config.init else {
        return Ok(fresh);
    };
    let source = pretrained(init, &config.backbone, device)?;
    transfer(&config.backbone, fresh, &source, init.keep_stages)
}

/// Copies the stem and stages `..=keep` of `source` into `target`.
pub fn transfer(
    backbone: &BackboneConfig,
    mut target: Backbone,
    source: &Backbone,
    keep: Option<usize>,
) -> Result<Backbone, TrainError> {
    let kept = kept_filter(backbone, keep);
    let tensors = source.collect(Some(kept.clone()), None, false);
    if tensors.is_empty() {
        return Err(init_error("the source has none of the stages to copy"));
    }
    let result = target.apply(tensors, Some(kept), None, false);
    if !result.errors.is_empty() || !result.unused.is_empty() {
        let errors: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(init_error(format!(
            "the source does not fit the backbone {}: {}{}",
            backbone.name(),
            errors.join("; "),
            if result.unused.is_empty() {
                String::new()
            } else {
                format!(
                    "; tensors it has that the backbone lacks: {:?}",
                    result.unused
                )
            }
        )));
    }
    let expected = target
        .collect(Some(kept_filter(backbone, keep)), None, false)
        .len();
    if result.applied.len() != expected {
        let missing: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        return Err(init_error(format!(
            "the source lacks {} tensor(s) of the stages to copy: {missing:?}",
            expected - result.applied.len()
        )));
    }
    Ok(target)
}

fn kept_filter(backbone: &BackboneConfig, keep: Option<usize>) -> PathFilter {
    PathFilter::new().with_regex(prefix_regex("", &stage_prefixes(backbone, keep)))
}

/// `backbone` with its stem and first `stages` stages frozen (none when `None`): no gradient,
/// and BatchNorm layers in inference mode, so their running statistics stay as loaded.
pub fn freeze(config: &BackboneConfig, backbone: Backbone, stages: Option<usize>) -> Backbone {
    let Some(stages) = stages else {
        return backbone;
    };
    let group = ParamGroup::from_regex(prefix_regex("", &stage_prefixes(config, Some(stages))))
        .expect("escaped prefixes form a valid regex");
    backbone.freeze_group(group)
}

/// The per-parameter learning rates of a run: `lr` for the head, `lr * scale` for the backbone
/// body. The parameter group is built once (its regex compiled once), not at every step.
pub struct LearningRates {
    body: Option<(ParamGroup, f64)>,
}

impl LearningRates {
    /// The backbone body is the parameters under `outer` (the method's
    /// [`backbone_path`](crate::Method::backbone_path), e.g. `Supervised.backbone.`) in the
    /// stem and stages of `config`; a `scale` of 1 gives one rate for all.
    pub fn new(config: &BackboneConfig, outer: &str, scale: f64) -> Self {
        let body = (scale != 1.0).then(|| {
            let group = ParamGroup::from_regex(prefix_regex(outer, &stage_prefixes(config, None)))
                .expect("escaped prefixes form a valid regex");
            (group, scale)
        });
        Self { body }
    }

    /// The rates at base learning rate `lr`.
    pub fn at(&self, lr: f64) -> ModuleLearningRate {
        match &self.body {
            None => lr.into(),
            Some((group, scale)) => ModuleLrScheduler::new(lr)
                .with_group(group.clone(), lr * scale)
                .step(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_stem_and_stages() {
        let config = BackboneConfig::ResNet(repr_backbones::ResNetConfig::resnet18());
        assert_eq!(
            stage_prefixes(&config, Some(1)),
            ["ResNet.conv1.", "ResNet.bn1.", "ResNet.layer1."]
        );
        assert_eq!(stage_prefixes(&config, None).len(), 6);
        let re = prefix_regex("Supervised.backbone.", &stage_prefixes(&config, Some(0)));
        assert_eq!(
            re,
            r"^(?:Supervised\.backbone\.)?(?:ResNet\.conv1\.|ResNet\.bn1\.)"
        );
    }
}

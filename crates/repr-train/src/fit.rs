//! Presets that fit the dataset: the fields that depend on the data (input channels, number of
//! classes, a ViT's image size, the SSL views' crop and colour ops, the kNN's `k`) are taken
//! from it unless the config sets them, and the named augmentation presets.

use repr_augment::{MultiViewConfig, OpConfig};
use repr_backbones::BackboneConfig;
use serde::{Deserialize, Serialize};

use crate::{Recipe, TrainConfig, TrainError};

/// Which data-dependent fields [`crate::train`] takes from the dataset. `cargo xtask train`
/// sets all of them for a preset and, with a config file, those the file leaves out; a config
/// built in code sets none unless it asks (the default), so what it says is what trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FromData {
    /// `backbone.in_channels` ← the images' channels.
    pub in_channels: bool,
    /// `backbone.num_classes` ← the dataset's classes (0, no classifier, for an embedding
    /// method).
    pub num_classes: bool,
    /// A ViT's `backbone.image_size` ← the images' (square) size.
    pub image_size: bool,
    /// `views` ← the recipe's views for this image size and channel count.
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
            views: !has("views"),
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

/// The dataset facts a config is fitted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataShape {
    /// Channels of every image.
    pub channels: usize,
    /// Height of every image.
    pub height: usize,
    /// Width of every image.
    pub width: usize,
    /// Classes of the training split.
    pub num_classes: usize,
    /// Images in the kNN memory.
    pub memory: usize,
}

/// The views a recipe trains on for images of `channels` channels and `size` pixels.
fn views_for(recipe: Recipe, channels: usize, size: usize) -> MultiViewConfig {
    match (recipe, channels) {
        (_, 1) => MultiViewConfig::simclr_grayscale(size),
        (Recipe::Byol, _) => MultiViewConfig::byol(size),
        (_, _) if size > 64 => MultiViewConfig::simclr_imagenet(size),
        _ => MultiViewConfig::simclr_cifar(size),
    }
}

/// `ops` without horizontal flips (also inside `RandomApply`).
fn strip_flips(ops: &mut Vec<OpConfig>) {
    ops.retain(|op| !matches!(op, OpConfig::HorizontalFlip(_)));
    for op in ops.iter_mut() {
        if let OpConfig::RandomApply(apply) = op {
            strip_flips(&mut apply.ops);
        }
    }
}

impl TrainConfig {
    /// This config with the fields of [`TrainConfig::from_data`] taken from `data` and the
    /// augmentation preset applied. A field the config sets is kept: when it conflicts with the
    /// data, the checks that follow ([`crate::train`]) name it.
    ///
    /// # Errors
    /// A ViT asked to take its image size from non-square images.
    pub fn fitted_to(&self, data: &DataShape) -> Result<Self, TrainError> {
        let mut config = self.clone();
        let from = self.from_data;
        config.from_data = FromData::default();
        // A fine-tuning run's architecture is the pre-trained one's.
        let finetune = config.recipe == Recipe::Finetune;
        if from.in_channels && !finetune {
            match &mut config.backbone {
                BackboneConfig::ResNet(r) => r.in_channels = data.channels,
                BackboneConfig::ViT(v) => v.in_channels = data.channels,
            }
        }
        if from.num_classes {
            let classes = if config.recipe.is_embedding() {
                0
            } else {
                data.num_classes
            };
            config.backbone = config.backbone.with_num_classes(classes);
        }
        if from.image_size
            && !finetune
            && let BackboneConfig::ViT(v) = &mut config.backbone
        {
            if data.height != data.width {
                return Err(TrainError::Config {
                    field: "backbone.image_size".into(),
                    message: format!(
                        "cannot be taken from {}x{} images: a ViT takes square images (resize \
                         them with data.image_size, or set backbone.image_size)",
                        data.height, data.width
                    ),
                });
            }
            v.image_size = data.height;
        }
        if from.views && matches!(config.recipe, Recipe::Simclr | Recipe::Byol) {
            config.views = views_for(config.recipe, data.channels, data.height.min(data.width));
        }
        if from.knn_k {
            config.eval.knn_k = config.eval.knn_k.min(data.memory.max(1));
        }
        if config.augment.preset == AugmentPreset::NoFlip {
            config.augment.horizontal_flip = 0.0;
            for view in &mut config.views.views {
                strip_flips(&mut view.ops);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr_augment::ComposeConfig;

    /// Whether `view` flips images.
    fn flips(view: &ComposeConfig) -> bool {
        view.ops.iter().any(|op| match op {
            OpConfig::HorizontalFlip(f) => f.probability > 0.0,
            OpConfig::RandomApply(a) => flips(&ComposeConfig::new(a.ops.clone())),
            _ => false,
        })
    }

    fn rgb32() -> DataShape {
        DataShape {
            channels: 3,
            height: 32,
            width: 32,
            num_classes: 10,
            memory: 50,
        }
    }

    #[test]
    fn presets_take_channels_classes_views_and_k_from_the_data() {
        let mut simclr = TrainConfig::simclr_short();
        simclr.from_data = FromData::ALL;
        let fitted = simclr.fitted_to(&rgb32()).unwrap();
        assert_eq!(fitted.backbone.in_channels(), 3);
        assert_eq!(fitted.backbone.num_classes(), 0);
        assert_eq!(fitted.views, MultiViewConfig::simclr_cifar(32));
        assert_eq!(fitted.eval.knn_k, 50);
        assert_eq!(fitted.from_data, FromData::default());

        let mut supervised = TrainConfig::supervised();
        supervised.from_data = FromData::ALL;
        let fitted = supervised
            .fitted_to(&DataShape {
                num_classes: 8,
                ..rgb32()
            })
            .unwrap();
        assert_eq!(fitted.backbone.num_classes(), 8);

        let mut vit = TrainConfig::masked_patch();
        vit.from_data = FromData::ALL;
        match vit.fitted_to(&rgb32()).unwrap().backbone {
            BackboneConfig::ViT(v) => assert_eq!((v.image_size, v.in_channels), (32, 3)),
            other => panic!("{other:?}"),
        }
        let err = vit
            .fitted_to(&DataShape {
                width: 24,
                ..rgb32()
            })
            .unwrap_err();
        assert!(err.to_string().contains("backbone.image_size"), "{err}");
    }

    #[test]
    fn set_fields_are_kept_and_nothing_is_fitted_by_default() {
        let config = TrainConfig::simclr_short();
        assert_eq!(config.from_data, FromData::default());
        let fitted = config.fitted_to(&rgb32()).unwrap();
        assert_eq!(fitted.backbone.in_channels(), 1);
        assert_eq!(fitted.views, config.views);

        let keys = ["backbone.kind", "backbone.in_channels", "views.views"].map(String::from);
        let from = FromData::missing_from(&keys);
        assert!(!from.in_channels && !from.views && from.num_classes && from.knn_k);
    }

    #[test]
    fn no_flip_removes_every_flip() {
        let mut config = TrainConfig::simclr_short();
        assert!(config.views.views.iter().all(flips));
        config.augment.preset = AugmentPreset::NoFlip;
        let fitted = config.fitted_to(&rgb32()).unwrap();
        assert!(!fitted.views.views.iter().any(flips));
        assert_eq!(fitted.augment.horizontal_flip, 0.0);
        assert_eq!(AugmentPreset::parse("no-flip"), Some(AugmentPreset::NoFlip));
        assert_eq!(AugmentPreset::parse("mirror"), None);
    }
}

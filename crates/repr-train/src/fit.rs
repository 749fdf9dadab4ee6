//! Presets that fit the dataset: the fields that depend on the data (input channels, number of
//! classes, a ViT's image size, the SSL views' crop and colour ops, the kNN's `k`) are taken
//! from it unless the config sets them, and the named augmentation presets.

use repr_augment::OpConfig;
use repr_backbones::BackboneConfig;

use crate::{AugmentPreset, FromData, TrainConfig, TrainError};

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
        let finetune = config.init.is_some();
        if from.in_channels && !finetune {
            match &mut config.backbone {
                BackboneConfig::ResNet(r) => r.in_channels = data.channels,
                BackboneConfig::ViT(v) => v.in_channels = data.channels,
            }
        }
        if from.num_classes {
            let classes = if config.method.is_embedding() {
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
        if from.views {
            let size = data.height.min(data.width);
            let fitted = config.method.settings().views_for(data.channels, size);
            if let Some(views) = config.method.settings_mut().views_mut() {
                *views = fitted;
            }
        }
        if from.knn_k {
            config.eval.knn_k = config.eval.knn_k.min(data.memory.max(1));
        }
        if config.augment.preset == AugmentPreset::NoFlip {
            config.augment.horizontal_flip = 0.0;
            if let Some(views) = config.method.settings_mut().views_mut() {
                for view in &mut views.views {
                    strip_flips(&mut view.ops);
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repr_augment::{ComposeConfig, MultiViewConfig};

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
        assert_eq!(
            fitted.method.views(),
            Some(&MultiViewConfig::simclr_cifar(32))
        );
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
        assert_eq!(fitted.method.views(), config.method.views());

        let keys = [
            "backbone.kind",
            "backbone.in_channels",
            "method.views.views",
        ]
        .map(String::from);
        let from = FromData::missing_from(&keys);
        assert!(!from.in_channels && !from.views && from.num_classes && from.knn_k);
    }

    #[test]
    fn no_flip_removes_every_flip() {
        let mut config = TrainConfig::simclr_short();
        assert!(config.method.views().unwrap().views.iter().all(flips));
        config.augment.preset = AugmentPreset::NoFlip;
        let fitted = config.fitted_to(&rgb32()).unwrap();
        assert!(!fitted.method.views().unwrap().views.iter().any(flips));
        assert_eq!(fitted.augment.horizontal_flip, 0.0);
        assert_eq!(AugmentPreset::parse("no-flip"), Some(AugmentPreset::NoFlip));
        assert_eq!(AugmentPreset::parse("mirror"), None);
    }
}

//! ResNet hyperparameters and the torchvision presets.

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

use super::{Norm, ResNet};

/// The residual block a ResNet stacks (He et al. 2016, "Deep Residual Learning for Image
/// Recognition", Fig. 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34). Expansion 1.
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand (ResNet-50 and deeper). Expansion 4; the stride sits on the
    /// 3x3 convolution as in torchvision ("ResNet v1.5").
    Bottleneck,
}

impl BlockKind {
    /// Ratio of a block's output channels to its inner width: 1 for [`Basic`](Self::Basic), 4
    /// for [`Bottleneck`](Self::Bottleneck).
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }

    /// Convolutions per block: 2 or 3. Used to name a network by its depth.
    pub fn convs_per_block(self) -> usize {
        match self {
            Self::Basic => 2,
            Self::Bottleneck => 3,
        }
    }
}

/// The layers before the first residual stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stem {
    /// 7x7 stride-2 convolution, BatchNorm, ReLU, then 3x3 stride-2 max pool with padding 1:
    /// the input is reduced 4x before `layer1` (He et al. 2016, Table 1).
    ImageNet,
    /// 3x3 stride-1 convolution, BatchNorm, ReLU, no max pool: for 32x32 (or 28x28) inputs, as
    /// the CIFAR-10 ResNets of He et al. 2016 (Sec. 4.2) and SimCLR's CIFAR variant.
    Cifar,
}

/// Configuration of a [`ResNet`] (He et al. 2016, "Deep Residual Learning for Image
/// Recognition"), with torchvision's layout, so that torchvision weights import by name.
///
/// Stages `layer1..layer4` have `width`, `2 * width`, `4 * width` and `8 * width` inner channels
/// (times [`BlockKind::expansion`] at their outputs); stages 2–4 halve the resolution.
///
/// ```
/// use repr_backbones::{ResNetConfig, Stem};
///
/// let config = ResNetConfig::resnet18()
///     .with_stem(Stem::Cifar)
///     .with_width(32)
///     .with_in_channels(1)
///     .with_num_classes(0);
/// assert_eq!(config.name(), "resnet18-w32-cifar");
/// assert_eq!(config.num_features(), 256);
/// ```
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Number of residual blocks in each of the four stages, e.g. `[2, 2, 2, 2]` for ResNet-18.
    pub layers: [usize; 4],
    /// The residual block stacked in every stage.
    pub block: BlockKind,
    /// The layers before `layer1`.
    #[config(default = "Stem::ImageNet")]
    pub stem: Stem,
    /// Base width: inner channels of `layer1` (torchvision: 64). Later stages double it.
    #[config(default = 64)]
    pub width: usize,
    /// Channels of the input image.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Outputs of the classification head `fc`; 0 builds no head (an encoder only).
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Initialise the last BatchNorm scale (gamma) of every residual block to zero, so that each
    /// block starts as the identity (torchvision's `zero_init_residual`; Goyal et al. 2017).
    #[config(default = false)]
    pub zero_init_residual: bool,
    /// The normalisation after every convolution: BatchNorm (torchvision) or BiT's GroupNorm
    /// with Weight Standardization ([`Norm::GroupWs`], [`Norm::BIT`]).
    #[config(default = "Norm::Batch")]
    pub norm: Norm,
}

impl ResNetConfig {
    /// ResNet-18: basic blocks `[2, 2, 2, 2]`, ImageNet stem, width 64, 1000 classes
    /// (11,689,512 parameters, as torchvision's `resnet18`).
    pub fn resnet18() -> Self {
        Self::new([2, 2, 2, 2], BlockKind::Basic)
    }

    /// ResNet-34: basic blocks `[3, 4, 6, 3]`, ImageNet stem, width 64, 1000 classes
    /// (21,797,672 parameters).
    pub fn resnet34() -> Self {
        Self::new([3, 4, 6, 3], BlockKind::Basic)
    }

    /// ResNet-50: bottleneck blocks `[3, 4, 6, 3]`, ImageNet stem, width 64, 1000 classes
    /// (25,557,032 parameters).
    pub fn resnet50() -> Self {
        Self::new([3, 4, 6, 3], BlockKind::Bottleneck)
    }

    /// Number of weighted layers counted as in the paper: every convolution on the main path
    /// plus the stem convolution and the head (18, 34, 50, ...).
    pub fn depth(&self) -> usize {
        self.layers.iter().sum::<usize>() * self.block.convs_per_block() + 2
    }

    /// Short name for run summaries: `resnet{depth}`, then `-w{width}` when the width is not 64
    /// and `-cifar` for the CIFAR stem, then `-gnws` for BiT's normalisation with 32 groups
    /// (`-gn{groups}ws` with another number), e.g. `"resnet18"`, `"resnet18-w32-cifar"`,
    /// `"resnet50-gnws"`.
    pub fn name(&self) -> String {
        let mut name = format!("resnet{}", self.depth());
        if self.width != 64 {
            name.push_str(&format!("-w{}", self.width));
        }
        if self.stem == Stem::Cifar {
            name.push_str("-cifar");
        }
        match self.norm {
            Norm::Batch => {}
            Norm::GroupWs { groups: 32 } => name.push_str("-gnws"),
            Norm::GroupWs { groups } => name.push_str(&format!("-gn{groups}ws")),
        }
        name
    }

    /// Channels of the `layer4` output, the length of [`ResNet::embed`]:
    /// `8 * width * expansion`.
    pub fn num_features(&self) -> usize {
        8 * self.width * self.block.expansion()
    }

    /// Checks the values a configuration file may get wrong: every stage needs a block,
    /// `width` and `in_channels` must be positive, and GroupNorm's `groups` must divide `width`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.layers.contains(&0) {
            return Err(ConfigError::EmptyStage {
                layers: self.layers,
            });
        }
        for (field, value) in [("width", self.width), ("in_channels", self.in_channels)] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        // Bounds far above any published ResNet (ResNet-152 has 36 blocks in a stage, a
        // 4x-wide ResNet-50 width 256) that keep a mistyped value from allocating terabytes.
        let blocks = self.layers.iter().copied().max().unwrap_or(0);
        for (field, value, max) in [
            ("layers", blocks, 256),
            ("width", self.width, 4096),
            ("in_channels", self.in_channels, 1024),
            ("num_classes", self.num_classes, 1_000_000),
        ] {
            if value > max {
                return Err(ConfigError::TooLarge {
                    network: "resnet",
                    field,
                    value,
                    max,
                });
            }
        }
        if let Norm::GroupWs { groups } = self.norm
            && (groups == 0 || !self.width.is_multiple_of(groups))
        {
            return Err(ConfigError::Groups {
                groups,
                width: self.width,
            });
        }
        Ok(())
    }

    /// Builds the network on `device`, with torchvision's initialisation: Kaiming-normal
    /// (fan-out, ReLU gain) convolutions without bias, BatchNorm (or GroupNorm) gamma 1 and
    /// beta 0 (eps 1e-5, momentum 0.1), and Burn's default `Linear` initialisation, which is
    /// PyTorch's.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails; call it first on configurations read from files.
    pub fn init(&self, device: &Device) -> ResNet {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        ResNet::from_config(self, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_depths_follow_the_paper() {
        assert_eq!(ResNetConfig::resnet18().name(), "resnet18");
        assert_eq!(ResNetConfig::resnet34().name(), "resnet34");
        assert_eq!(ResNetConfig::resnet50().name(), "resnet50");
        let cifar = ResNetConfig::resnet18()
            .with_width(32)
            .with_stem(Stem::Cifar);
        assert_eq!(cifar.name(), "resnet18-w32-cifar");
        assert_eq!(ResNetConfig::resnet50().num_features(), 2048);
        assert_eq!(ResNetConfig::resnet18().num_features(), 512);
    }

    #[test]
    fn validate_names_the_field() {
        let err = ResNetConfig::new([2, 0, 2, 2], BlockKind::Basic)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("layers"), "{err}");
        let err = ResNetConfig::resnet18()
            .with_width(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("width"), "{err}");
        assert!(ResNetConfig::resnet50().validate().is_ok());
        let err = ResNetConfig::resnet18()
            .with_width(100_000)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resnet `width` is 100000: at most 4096 is allowed"
        );
        let err = ResNetConfig::new([2, 2, 1000, 2], BlockKind::Basic)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("`layers` is 1000"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let config = ResNetConfig::resnet50()
            .with_stem(Stem::Cifar)
            .with_zero_init_residual(true);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""block":"bottleneck""#), "{json}");
        assert!(json.contains(r#""stem":"cifar""#), "{json}");
        let back: ResNetConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.layers, config.layers);
        assert_eq!(back.block, config.block);
        assert_eq!(back.stem, config.stem);
        assert!(back.zero_init_residual);
    }
}

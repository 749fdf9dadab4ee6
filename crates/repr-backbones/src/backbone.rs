//! The backbone variants: a configuration enum that builds a module enum.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::{BlockKind, Norm, Pooling, ResNet, ResNetConfig, Stage, Stem};

/// Configuration of any backbone, tagged by `kind` in files:
///
/// ```
/// use repr_backbones::{BackboneConfig, ResNetConfig, Stem};
///
/// let config = BackboneConfig::ResNet(ResNetConfig::resnet18().with_stem(Stem::Cifar));
/// let json = serde_json::to_string(&config).unwrap();
/// assert!(json.starts_with(r#"{"kind":"resnet","layers":[2,2,2,2],"block":"basic""#));
/// let back: BackboneConfig = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.name(), "resnet18-cifar");
/// ```
///
/// In TOML, as a field `backbone` of a run configuration:
///
/// ```toml
/// [backbone]
/// kind = "resnet"
/// layers = [2, 2, 2, 2]
/// block = "basic"        # or "bottleneck"
/// stem = "cifar"         # or "imagenet"
/// width = 32
/// in_channels = 1
/// num_classes = 0        # no head
/// zero_init_residual = false
/// norm = "batch"         # or BiT's GroupNorm + Weight Standardization:
///                        # norm = { group_ws = { groups = 32 } }
/// ```
///
/// `kind` is required; every other field may be left out and takes the default of
/// [`ResNetConfig`] (`layers = [2, 2, 2, 2]` and `block = "basic"`, ResNet-18, when missing), and
/// an unknown key is an error naming it:
///
/// ```
/// use repr_backbones::{BackboneConfig, Stem};
///
/// let config: BackboneConfig = toml::from_str("kind = \"resnet\"\nwidth = 16").unwrap();
/// let BackboneConfig::ResNet(resnet) = &config;
/// assert_eq!((resnet.layers, resnet.width, resnet.stem), ([2, 2, 2, 2], 16, Stem::ImageNet));
/// let err = toml::from_str::<BackboneConfig>("kind = \"resnet\"\nwidht = 16").unwrap_err();
/// assert!(err.to_string().contains("widht"), "{err}");
/// ```
///
/// Serialization is Burn's (every field written); deserialization goes through a serde shadow
/// of the fields, because Burn's `Config` derive neither takes serde defaults nor rejects
/// unknown keys.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BackboneConfig {
    /// A ResNet (He et al. 2016).
    ResNet(ResNetConfig),
}

impl Config for BackboneConfig {}

/// What a config file may hold for [`BackboneConfig`]: `kind` and the fields of every kind, as
/// one flat struct with `deny_unknown_fields` (not a tagged enum, whose buffering would lose the
/// position of a bad value: the parser's message then points at the key itself). A field left
/// out takes the kind's default. When a kind is added, its fields join this struct and each
/// kind rejects the fields of the others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackboneConfigFile {
    kind: BackboneKind,
    layers: Option<[usize; 4]>,
    block: Option<BlockKind>,
    stem: Option<Stem>,
    width: Option<usize>,
    in_channels: Option<usize>,
    num_classes: Option<usize>,
    zero_init_residual: Option<bool>,
    norm: Option<Norm>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackboneKind {
    ResNet,
}

impl<'de> Deserialize<'de> for BackboneConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = BackboneConfigFile::deserialize(deserializer)?;
        Ok(match f.kind {
            BackboneKind::ResNet => {
                // Missing fields: ResNet-18 (`layers`, `block`) and the `#[config(default)]`s.
                let d = ResNetConfig::resnet18();
                Self::ResNet(
                    ResNetConfig::new(f.layers.unwrap_or(d.layers), f.block.unwrap_or(d.block))
                        .with_stem(f.stem.unwrap_or(d.stem))
                        .with_width(f.width.unwrap_or(d.width))
                        .with_in_channels(f.in_channels.unwrap_or(d.in_channels))
                        .with_num_classes(f.num_classes.unwrap_or(d.num_classes))
                        .with_zero_init_residual(
                            f.zero_init_residual.unwrap_or(d.zero_init_residual),
                        )
                        .with_norm(f.norm.unwrap_or(d.norm)),
                )
            }
        })
    }
}

impl From<ResNetConfig> for BackboneConfig {
    fn from(config: ResNetConfig) -> Self {
        Self::ResNet(config)
    }
}

impl BackboneConfig {
    /// Short name for run summaries, e.g. `"resnet18-w32-cifar"`.
    pub fn name(&self) -> String {
        match self {
            Self::ResNet(config) => config.name(),
        }
    }

    /// Length of the embedding [`Backbone::embed`] returns.
    pub fn num_features(&self) -> usize {
        match self {
            Self::ResNet(config) => config.num_features(),
        }
    }

    /// Checks the values a configuration file may get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::ResNet(config) => config.validate(),
        }
    }

    /// Builds the backbone on `device`.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Backbone {
        match self {
            Self::ResNet(config) => Backbone::ResNet(config.init(device)),
        }
    }
}

/// Any backbone, with the staged API they share: [`forward_features`](Self::forward_features)
/// → [`pool`](Self::pool) → [`forward_head`](Self::forward_head).
///
/// Parameter paths carry the variant (`ResNet.layer1.0.Basic.conv1.weight`); burn-store's
/// PyTorch importer skips variant names by default.
#[derive(Module, Debug)]
pub enum Backbone {
    /// A ResNet (He et al. 2016).
    ResNet(ResNet),
}

impl From<ResNet> for Backbone {
    fn from(model: ResNet) -> Self {
        Self::ResNet(model)
    }
}

impl Backbone {
    /// The last feature map, before pooling.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features, height_out, width_out]`
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::ResNet(model) => model.forward_features(x),
        }
    }

    /// The activations of the requested stages, one per entry of `stages` and in that order,
    /// running the network only as deep as the deepest one (timm's `forward_intermediates`).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, channels_i, height_i, width_i]` (see
    ///   [`ResNet::forward_intermediates`])
    pub fn forward_intermediates(&self, x: Tensor<4>, stages: &[Stage]) -> Vec<Tensor<4>> {
        match self {
            Self::ResNet(model) => model.forward_intermediates(x, stages),
        }
    }

    /// Pools a feature map from [`forward_features`](Self::forward_features).
    ///
    /// # Shapes
    /// - features: `[batch, num_features, height, width]`
    /// - output: `[batch, num_features]`
    pub fn pool(&self, features: Tensor<4>, pooling: Pooling) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.pool(features, pooling),
        }
    }

    /// The image embedding with the backbone's default pooling.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features]`
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.embed(x),
        }
    }

    /// Applies the classification head, or returns its input without one.
    ///
    /// # Shapes
    /// - pooled: `[batch, num_features]`
    /// - output: `[batch, num_classes]`, or `[batch, num_features]` without a head
    pub fn forward_head(&self, pooled: Tensor<2>) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.forward_head(pooled),
        }
    }

    /// The logits (or the embedding, without a head).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes]`, or `[batch, num_features]` without a head
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.forward(x),
        }
    }

    /// Length of the embedding.
    pub fn num_features(&self) -> usize {
        match self {
            Self::ResNet(model) => model.num_features(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BlockKind, Stem};

    #[test]
    fn toml_round_trip() {
        let config = BackboneConfig::ResNet(
            ResNetConfig::new([1, 2, 3, 4], BlockKind::Bottleneck)
                .with_stem(Stem::Cifar)
                .with_width(16)
                .with_in_channels(1)
                .with_num_classes(0),
        );
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains(r#"kind = "resnet""#), "{text}");
        assert!(text.contains(r#"block = "bottleneck""#), "{text}");
        let back: BackboneConfig = toml::from_str(&text).unwrap();
        let BackboneConfig::ResNet(back) = back;
        assert_eq!(back.layers, [1, 2, 3, 4]);
        assert_eq!(back.block, BlockKind::Bottleneck);
        assert_eq!(back.stem, Stem::Cifar);
        assert_eq!((back.width, back.in_channels, back.num_classes), (16, 1, 0));
    }

    #[test]
    fn reads_the_documented_toml() {
        let text = r#"
            kind = "resnet"
            layers = [2, 2, 2, 2]
            block = "basic"
            stem = "cifar"
            width = 32
            in_channels = 1
            num_classes = 0
            zero_init_residual = false
        "#;
        let config: BackboneConfig = toml::from_str(text).unwrap();
        assert_eq!(config.name(), "resnet18-w32-cifar");
        assert_eq!(config.num_features(), 256);
        let err = toml::from_str::<BackboneConfig>(r#"kind = "vgg""#).unwrap_err();
        assert!(err.to_string().contains("vgg"), "{err}");
    }

    #[test]
    fn reads_the_norm() {
        let config: BackboneConfig =
            toml::from_str("kind = \"resnet\"\nnorm = { group_ws = { groups = 8 } }").unwrap();
        let BackboneConfig::ResNet(resnet) = &config;
        assert_eq!(resnet.norm, Norm::GroupWs { groups: 8 });
        assert_eq!(config.name(), "resnet18-gn8ws");
        let back: BackboneConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        let BackboneConfig::ResNet(back) = back;
        assert_eq!(back.norm, Norm::GroupWs { groups: 8 });
        let config: BackboneConfig = toml::from_str("kind = \"resnet\"\nnorm = \"batch\"").unwrap();
        let BackboneConfig::ResNet(resnet) = &config;
        assert_eq!(resnet.norm, Norm::Batch);
        let err =
            toml::from_str::<BackboneConfig>("kind = \"resnet\"\nnorm = \"layer\"").unwrap_err();
        assert!(err.to_string().contains("layer"), "{err}");
        let json = r#"{"kind":"resnet","width":48,"norm":{"group_ws":{"groups":32}}}"#;
        let config: BackboneConfig = serde_json::from_str(json).unwrap();
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("groups"), "{err}");
    }

    #[test]
    fn missing_keys_take_defaults_and_unknown_keys_fail() {
        let config: BackboneConfig =
            toml::from_str("kind = \"resnet\"\nin_channels = 1\nstem = \"cifar\"").unwrap();
        let BackboneConfig::ResNet(resnet) = config;
        let d = ResNetConfig::resnet18();
        assert_eq!(resnet.layers, d.layers);
        assert_eq!(resnet.block, d.block);
        assert_eq!((resnet.stem, resnet.in_channels), (Stem::Cifar, 1));
        assert_eq!(
            (resnet.width, resnet.num_classes, resnet.zero_init_residual),
            (d.width, d.num_classes, d.zero_init_residual)
        );
        for bad in [
            "widht = 16",
            "layers = [2, 2]",
            "width = \"wide\"",
            "block = \"dense\"",
        ] {
            let text = format!("kind = \"resnet\"\n{bad}");
            let err = toml::from_str::<BackboneConfig>(&text)
                .unwrap_err()
                .to_string();
            let key = bad.split(' ').next().unwrap();
            assert!(err.contains(key) || err.contains("dense"), "{bad}: {err}");
        }
        let json = r#"{"kind":"resnet","layers":[1,1,1,1],"extra":true}"#;
        let err = serde_json::from_str::<BackboneConfig>(json).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }
}

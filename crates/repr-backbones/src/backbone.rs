//! The backbone variants: a configuration enum that builds a module enum.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::{
    BlockKind, Norm, Pooling, PosEmbedding, ResNet, ResNetConfig, Stage, Stem, ViT, ViTConfig,
};

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
/// A ViT ([`ViTConfig`]):
///
/// ```toml
/// [backbone]
/// kind = "vit"
/// image_size = 32
/// patch_size = 4
/// dim = 192
/// depth = 12
/// heads = 3
/// mlp_dim = 768
/// in_channels = 1
/// num_classes = 0            # no head
/// pos_embedding = "learned"  # or "sincos"
/// layer_norm_eps = 1e-6
/// qkv_bias = true
/// ```
///
/// `kind` is required; every other field may be left out and takes the default of
/// [`ResNetConfig`] (`layers = [2, 2, 2, 2]` and `block = "basic"`, ResNet-18, when missing) or
/// of [`ViTConfig::vit_small`] (ViT-S/16 at 224 px), and an unknown key, or a key of the other
/// kind, is an error naming it:
///
/// ```
/// use repr_backbones::{BackboneConfig, Stem};
///
/// let config: BackboneConfig = toml::from_str("kind = \"resnet\"\nwidth = 16").unwrap();
/// let BackboneConfig::ResNet(resnet) = &config else { unreachable!() };
/// assert_eq!((resnet.layers, resnet.width, resnet.stem), ([2, 2, 2, 2], 16, Stem::ImageNet));
/// let err = toml::from_str::<BackboneConfig>("kind = \"resnet\"\nwidht = 16").unwrap_err();
/// assert!(err.to_string().contains("widht"), "{err}");
/// let config: BackboneConfig =
///     toml::from_str("kind = \"vit\"\nimage_size = 32\npatch_size = 4").unwrap();
/// assert_eq!(config.name(), "vit-small-p4-32");
/// let err = toml::from_str::<BackboneConfig>("kind = \"vit\"\nwidth = 16").unwrap_err();
/// assert!(err.to_string().contains("width"), "{err}");
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
    /// A Vision Transformer (Dosovitskiy et al. 2020).
    ViT(ViTConfig),
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
    image_size: Option<usize>,
    patch_size: Option<usize>,
    dim: Option<usize>,
    depth: Option<usize>,
    heads: Option<usize>,
    mlp_dim: Option<usize>,
    pos_embedding: Option<PosEmbedding>,
    layer_norm_eps: Option<f64>,
    qkv_bias: Option<bool>,
}

impl BackboneConfigFile {
    /// The first field present that belongs to another kind than `kind`.
    fn foreign_field(&self, kind: &BackboneKind) -> Option<&'static str> {
        let resnet = [
            ("layers", self.layers.is_some()),
            ("block", self.block.is_some()),
            ("stem", self.stem.is_some()),
            ("width", self.width.is_some()),
            ("zero_init_residual", self.zero_init_residual.is_some()),
            ("norm", self.norm.is_some()),
        ];
        let vit = [
            ("image_size", self.image_size.is_some()),
            ("patch_size", self.patch_size.is_some()),
            ("dim", self.dim.is_some()),
            ("depth", self.depth.is_some()),
            ("heads", self.heads.is_some()),
            ("mlp_dim", self.mlp_dim.is_some()),
            ("pos_embedding", self.pos_embedding.is_some()),
            ("layer_norm_eps", self.layer_norm_eps.is_some()),
            ("qkv_bias", self.qkv_bias.is_some()),
        ];
        let foreign: &[_] = match kind {
            BackboneKind::ResNet => &vit,
            BackboneKind::ViT => &resnet,
        };
        foreign
            .iter()
            .find(|(_, present)| *present)
            .map(|(name, _)| *name)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BackboneKind {
    ResNet,
    ViT,
}

impl BackboneKind {
    fn name(&self) -> &'static str {
        match self {
            Self::ResNet => "resnet",
            Self::ViT => "vit",
        }
    }
}

impl<'de> Deserialize<'de> for BackboneConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = BackboneConfigFile::deserialize(deserializer)?;
        if let Some(field) = f.foreign_field(&f.kind) {
            return Err(serde::de::Error::custom(format!(
                "unknown field `{field}` for backbone kind `{}`",
                f.kind.name()
            )));
        }
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
            BackboneKind::ViT => {
                // Missing fields: ViT-S/16 at 224 px and the `#[config(default)]`s.
                let d = ViTConfig::vit_small();
                Self::ViT(
                    ViTConfig::new(
                        f.image_size.unwrap_or(d.image_size),
                        f.patch_size.unwrap_or(d.patch_size),
                        f.dim.unwrap_or(d.dim),
                        f.depth.unwrap_or(d.depth),
                        f.heads.unwrap_or(d.heads),
                        f.mlp_dim.unwrap_or(d.mlp_dim),
                    )
                    .with_in_channels(f.in_channels.unwrap_or(d.in_channels))
                    .with_num_classes(f.num_classes.unwrap_or(d.num_classes))
                    .with_pos_embedding(f.pos_embedding.unwrap_or(d.pos_embedding))
                    .with_layer_norm_eps(f.layer_norm_eps.unwrap_or(d.layer_norm_eps))
                    .with_qkv_bias(f.qkv_bias.unwrap_or(d.qkv_bias)),
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

impl From<ViTConfig> for BackboneConfig {
    fn from(config: ViTConfig) -> Self {
        Self::ViT(config)
    }
}

impl BackboneConfig {
    /// Short name for run summaries, e.g. `"resnet18-w32-cifar"`.
    pub fn name(&self) -> String {
        match self {
            Self::ResNet(config) => config.name(),
            Self::ViT(config) => config.name(),
        }
    }

    /// Length of the embedding [`Backbone::embed`] returns.
    pub fn num_features(&self) -> usize {
        match self {
            Self::ResNet(config) => config.num_features(),
            Self::ViT(config) => config.num_features(),
        }
    }

    /// Channels of the input image.
    pub fn in_channels(&self) -> usize {
        match self {
            Self::ResNet(config) => config.in_channels,
            Self::ViT(config) => config.in_channels,
        }
    }

    /// Outputs of the classification head; 0 without one.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::ResNet(config) => config.num_classes,
            Self::ViT(config) => config.num_classes,
        }
    }

    /// The same backbone with `num_classes` head outputs (0: no head).
    pub fn with_num_classes(&self, num_classes: usize) -> Self {
        match self {
            Self::ResNet(config) => Self::ResNet(config.clone().with_num_classes(num_classes)),
            Self::ViT(config) => Self::ViT(config.clone().with_num_classes(num_classes)),
        }
    }

    /// Checks the values a configuration file may get wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            Self::ResNet(config) => config.validate(),
            Self::ViT(config) => config.validate(),
        }
    }

    /// The backbone's stages in order, each by the parameter paths it owns (the paths of
    /// [`Backbone`], variant names included): the stem first (stage 0: ResNet `conv1` + `bn1`;
    /// a ViT's patch embedding, class token, positions and mask token), then ResNet's four
    /// residual stages `layer1`..`layer4` or a ViT's blocks (its last one also owns the final
    /// LayerNorm). The classifier head belongs to no stage. Fine-tuning copies, freezes and
    /// re-initialises backbones by these.
    pub fn stages(&self) -> Vec<BackboneStage> {
        match self {
            Self::ResNet(_) => resnet_stages(),
            Self::ViT(config) => vit_stages(config.depth),
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
            Self::ViT(config) => Backbone::ViT(config.init(device)),
        }
    }
}

fn stage(name: String, prefixes: Vec<String>) -> BackboneStage {
    BackboneStage { name, prefixes }
}

fn resnet_stages() -> Vec<BackboneStage> {
    std::iter::once(stage(
        "stem".into(),
        vec!["ResNet.conv1.".into(), "ResNet.bn1.".into()],
    ))
    .chain((1..=4).map(|i| stage(format!("layer{i}"), vec![format!("ResNet.layer{i}.")])))
    .collect()
}

fn vit_stages(depth: usize) -> Vec<BackboneStage> {
    let stem = ["patch_embed.", "cls_token", "pos_embed", "mask_token"]
        .iter()
        .map(|p| format!("ViT.{p}"))
        .collect();
    std::iter::once(stage("stem".into(), stem))
        .chain((0..depth).map(|i| {
            let mut prefixes = vec![format!("ViT.blocks.{i}.")];
            if i + 1 == depth {
                prefixes.push("ViT.norm.".into());
            }
            stage(format!("block{i}"), prefixes)
        }))
        .collect()
}

/// One stage of a backbone (see [`BackboneConfig::stages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackboneStage {
    /// `"stem"`, `"layer1"`.., `"block0"`..
    pub name: String,
    /// Parameter path prefixes of the stage, e.g. `"ResNet.layer1."`.
    pub prefixes: Vec<String>,
}

/// Any backbone, with the staged API they share: [`forward_features`](Self::forward_features)
/// → [`pool`](Self::pool) → [`forward_head`](Self::forward_head), and
/// [`embed_at`](Self::embed_at) for an embedding from any layer with any pooling (the CLS token
/// of a ViT included).
///
/// Parameter paths carry the variant (`ResNet.layer1.0.Basic.conv1.weight`,
/// `ViT.blocks.0.attn.qkv.weight`); burn-store's PyTorch importer skips variant names by
/// default.
#[derive(Module, Debug)]
pub enum Backbone {
    /// A ResNet (He et al. 2016).
    ResNet(ResNet),
    /// A Vision Transformer (Dosovitskiy et al. 2020).
    ViT(ViT),
}

impl From<ResNet> for Backbone {
    fn from(model: ResNet) -> Self {
        Self::ResNet(model)
    }
}

impl From<ViT> for Backbone {
    fn from(model: ViT) -> Self {
        Self::ViT(model)
    }
}

impl Backbone {
    /// The stages of this network, as [`BackboneConfig::stages`] gives them for its config.
    pub fn stages(&self) -> Vec<BackboneStage> {
        match self {
            Backbone::ResNet(_) => resnet_stages(),
            Backbone::ViT(vit) => vit_stages(vit.blocks.len()),
        }
    }

    /// The last feature map, before pooling: a ResNet's `layer4`; a ViT's patch tokens after
    /// the final LayerNorm, as a map (the CLS token is left out).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features, height_out, width_out]`
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::ResNet(model) => model.forward_features(x),
            Self::ViT(model) => model.forward_features(x),
        }
    }

    /// The activations of the requested ResNet stages, one per entry of `stages` and in that
    /// order, running the network only as deep as the deepest one (timm's
    /// `forward_intermediates`). [`forward_layers`](Self::forward_layers) takes layer indices
    /// and works for every backbone.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, channels_i, height_i, width_i]` (see
    ///   [`ResNet::forward_intermediates`])
    ///
    /// # Panics
    /// For a ViT, which has blocks rather than stages.
    pub fn forward_intermediates(&self, x: Tensor<4>, stages: &[Stage]) -> Vec<Tensor<4>> {
        match self {
            Self::ResNet(model) => model.forward_intermediates(x, stages),
            Self::ViT(_) => panic!(
                "a ViT has blocks, not ResNet stages: use Backbone::forward_layers with block indices"
            ),
        }
    }

    /// The deepest layer index [`forward_layers`](Self::forward_layers) and
    /// [`embed_at`](Self::embed_at) accept: 4 for a ResNet (`layer4`), the depth for a ViT.
    pub fn num_layers(&self) -> usize {
        match self {
            Self::ResNet(_) => 4,
            Self::ViT(model) => model.depth(),
        }
    }

    /// Checks that [`embed_at`](Self::embed_at) accepts `layer` and `pooling`, without running
    /// anything.
    ///
    /// # Errors
    /// [`ConfigError::Layer`] for a layer beyond [`num_layers`](Self::num_layers),
    /// [`ConfigError::Pooling`] for [`Pooling::Cls`] on a ResNet.
    pub fn check_layer(&self, layer: Option<usize>, pooling: Pooling) -> Result<(), ConfigError> {
        let backbone = match self {
            Self::ResNet(_) => "ResNet",
            Self::ViT(_) => "ViT",
        };
        if let Some(layer) = layer
            && layer > self.num_layers()
        {
            return Err(ConfigError::Layer {
                layer,
                max: self.num_layers(),
                backbone,
            });
        }
        if pooling == Pooling::Cls && matches!(self, Self::ResNet(_)) {
            return Err(ConfigError::Pooling {
                pooling: "cls",
                backbone,
                reason: "only a ViT has a CLS token",
            });
        }
        Ok(())
    }

    /// The feature maps after the requested layers, in the order of `layers`, running only as
    /// deep as the deepest. ResNet: layer 0 is the stem (after `conv1`, `bn1`, ReLU), layer `n`
    /// the output of `layer{n}` (1 to 4). ViT: layer 0 is the encoder input (patch embeddings,
    /// CLS and positions), layer `n` the output of block `n` (1 to the depth, before the final
    /// LayerNorm), as maps of the patch tokens.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, channels_i, height_i, width_i]`
    ///
    /// # Errors
    /// [`ConfigError::Layer`] for a layer beyond [`num_layers`](Self::num_layers).
    pub fn forward_layers(
        &self,
        x: Tensor<4>,
        layers: &[usize],
    ) -> Result<Vec<Tensor<4>>, ConfigError> {
        for &layer in layers {
            self.check_layer(Some(layer), Pooling::Avg)?;
        }
        Ok(match self {
            Self::ResNet(model) => {
                let stages: Vec<Stage> = layers.iter().map(|&n| Stage::ALL[n]).collect();
                model.forward_intermediates(x, &stages)
            }
            Self::ViT(model) => model.forward_intermediates(x, layers),
        })
    }

    /// An embedding from any layer: the activations after `layer` (`None`: the final
    /// features, after a ViT's final LayerNorm; `Some(n)`: as in
    /// [`forward_layers`](Self::forward_layers)) pooled by `pooling`. For a ViT, `Avg` and
    /// `Max` pool the patch tokens and `Cls` takes the CLS token; `embed_at(x, None,
    /// Pooling::Cls)` is [`embed`](Self::embed).
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use repr_backbones::{BackboneConfig, Pooling, ResNetConfig, Stem, ViTConfig};
    ///
    /// let device = Device::flex();
    /// let vit = BackboneConfig::from(ViTConfig::new(16, 4, 8, 3, 2, 16)).init(&device);
    /// let x = Tensor::<4>::zeros([2, 3, 16, 16], &device);
    /// assert_eq!(vit.embed_at(x.clone(), Some(2), Pooling::Cls)?.dims(), [2, 8]);
    /// assert_eq!(vit.embed_at(x.clone(), None, Pooling::Avg)?.dims(), [2, 8]);
    /// assert!(vit.embed_at(x.clone(), Some(4), Pooling::Avg).is_err()); // 3 blocks
    ///
    /// let resnet = ResNetConfig::resnet18().with_stem(Stem::Cifar).with_width(4);
    /// let resnet = BackboneConfig::from(resnet).init(&device);
    /// assert_eq!(resnet.embed_at(x.clone(), Some(2), Pooling::Max)?.dims(), [2, 8]);
    /// let err = resnet.embed_at(x, None, Pooling::Cls).unwrap_err();
    /// assert!(err.to_string().contains("CLS"), "{err}");
    /// # Ok::<(), repr_backbones::ConfigError>(())
    /// ```
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, channels]`
    ///
    /// # Errors
    /// As [`check_layer`](Self::check_layer).
    pub fn embed_at(
        &self,
        x: Tensor<4>,
        layer: Option<usize>,
        pooling: Pooling,
    ) -> Result<Tensor<2>, ConfigError> {
        self.check_layer(layer, pooling)?;
        Ok(match (self, layer) {
            (Self::ResNet(model), None) => pooling.pool(model.forward_features(x)),
            (Self::ResNet(model), Some(n)) => {
                pooling.pool(model.forward_intermediates(x, &[Stage::ALL[n]]).remove(0))
            }
            (Self::ViT(model), None) => model.pool_tokens(model.forward_encoder(x), pooling),
            (Self::ViT(model), Some(n)) => {
                let tokens = model.forward_intermediate_tokens(x, &[n]).remove(0);
                model.pool_tokens(tokens, pooling)
            }
        })
    }

    /// Pools a feature map from [`forward_features`](Self::forward_features).
    ///
    /// # Shapes
    /// - features: `[batch, num_features, height, width]`
    /// - output: `[batch, num_features]`
    ///
    /// # Panics
    /// For [`Pooling::Cls`], which a feature map cannot give: use [`embed_at`](Self::embed_at).
    pub fn pool(&self, features: Tensor<4>, pooling: Pooling) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.pool(features, pooling),
            Self::ViT(model) => model.pool(features, pooling),
        }
    }

    /// The image embedding with the backbone's default pooling: a ResNet's global average
    /// pool of `layer4`, a ViT's CLS token after the final LayerNorm (the heads' inputs).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features]`
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::ResNet(model) => model.embed(x),
            Self::ViT(model) => model.embed(x),
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
            Self::ViT(model) => model.forward_head(pooled),
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
            Self::ViT(model) => model.forward(x),
        }
    }

    /// Length of the embedding.
    pub fn num_features(&self) -> usize {
        match self {
            Self::ResNet(model) => model.num_features(),
            Self::ViT(model) => model.num_features(),
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
        let BackboneConfig::ResNet(back) = back else {
            unreachable!()
        };
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
        let BackboneConfig::ResNet(resnet) = &config else {
            unreachable!()
        };
        assert_eq!(resnet.norm, Norm::GroupWs { groups: 8 });
        assert_eq!(config.name(), "resnet18-gn8ws");
        let back: BackboneConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        let BackboneConfig::ResNet(back) = back else {
            unreachable!()
        };
        assert_eq!(back.norm, Norm::GroupWs { groups: 8 });
        let config: BackboneConfig = toml::from_str("kind = \"resnet\"\nnorm = \"batch\"").unwrap();
        let BackboneConfig::ResNet(resnet) = &config else {
            unreachable!()
        };
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
        let BackboneConfig::ResNet(resnet) = config else {
            unreachable!()
        };
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

    #[test]
    fn vit_toml_round_trip_and_foreign_fields() {
        let config = BackboneConfig::from(
            ViTConfig::vit_tiny_p4(28)
                .with_in_channels(1)
                .with_num_classes(0)
                .with_pos_embedding(PosEmbedding::Sincos),
        );
        let text = toml::to_string(&config).unwrap();
        assert!(text.contains(r#"kind = "vit""#), "{text}");
        assert!(text.contains(r#"pos_embedding = "sincos""#), "{text}");
        let back: BackboneConfig = toml::from_str(&text).unwrap();
        assert_eq!(back.name(), "vit-tiny-p4-28-sincos");
        assert_eq!(
            (back.in_channels(), back.num_classes(), back.num_features()),
            (1, 0, 192)
        );
        let BackboneConfig::ViT(vit) = &back else {
            unreachable!()
        };
        assert_eq!((vit.layer_norm_eps, vit.qkv_bias), (1e-6, true));
        assert_eq!(back.with_num_classes(7).num_classes(), 7);

        // Missing keys: ViT-S/16.
        let config: BackboneConfig = serde_json::from_str(r#"{"kind":"vit"}"#).unwrap();
        assert_eq!(config.name(), "vit-small-p16-224");
        // Each kind rejects the other's fields, and unknown ones.
        for (text, key) in [
            ("kind = \"vit\"\nstem = \"cifar\"", "stem"),
            ("kind = \"vit\"\nnorm = \"batch\"", "norm"),
            ("kind = \"resnet\"\ndim = 64", "dim"),
            (
                "kind = \"resnet\"\npos_embedding = \"learned\"",
                "pos_embedding",
            ),
            ("kind = \"vit\"\nheadz = 3", "headz"),
            ("kind = \"vit\"\npos_embedding = \"rope\"", "rope"),
        ] {
            let err = toml::from_str::<BackboneConfig>(text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let config: BackboneConfig =
            toml::from_str("kind = \"vit\"\ndim = 100\nheads = 3").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("heads"), "{err}");
    }
}

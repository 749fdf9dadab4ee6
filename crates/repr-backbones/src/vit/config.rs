//! ViT hyperparameters and the presets.

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

use super::ViT;

/// The position information added to the tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosEmbedding {
    /// A learned embedding per token (CLS and every patch), `Normal(0, 0.02)` at
    /// initialisation: the ViT paper's and torchvision's. For another input size the patch
    /// part is resampled bicubically ([`ViT::pos_embed`]).
    #[default]
    Learned,
    /// Fixed 2-D sine-cosine embedding of each patch's grid row and column, zero for CLS (MAE,
    /// He et al. 2021; [`sincos_2d`](super::sincos_2d)): no parameters, computed for any grid.
    /// Needs `dim` divisible by 4.
    Sincos,
}

/// Configuration of a [`ViT`] (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words:
/// Transformers for Image Recognition at Scale"), laid out as torchvision's
/// `VisionTransformer` so that its weights import ([`ViT::load_torchvision`]).
///
/// ```
/// use repr_backbones::{PosEmbedding, ViTConfig};
///
/// let config = ViTConfig::vit_tiny_p4(32).with_in_channels(1).with_num_classes(0);
/// assert_eq!(config.name(), "vit-tiny-p4-32");
/// assert_eq!((config.num_patches(), config.num_features()), (64, 192));
/// let sincos = ViTConfig::vit_small().with_pos_embedding(PosEmbedding::Sincos);
/// assert_eq!(sincos.name(), "vit-small-p16-224-sincos");
/// let mut odd = ViTConfig::vit_base();
/// odd.heads = 5; // 768 is not divisible by 5
/// assert!(odd.validate().unwrap_err().to_string().contains("heads"));
/// ```
#[derive(Config, Debug)]
pub struct ViTConfig {
    /// Side of the square training image, in pixels; sets the learned positional embedding's
    /// grid (`image_size / patch_size` per side). Other sizes run with a resampled embedding.
    pub image_size: usize,
    /// Side of a square patch, in pixels (the patch embedding's kernel and stride).
    pub patch_size: usize,
    /// Width of every token (the paper's `D`, torchvision's `hidden_dim`).
    pub dim: usize,
    /// Number of encoder blocks (torchvision's `num_layers`).
    pub depth: usize,
    /// Attention heads per block; each has `dim / heads` consecutive features.
    pub heads: usize,
    /// Hidden width of each block's MLP (4 × `dim` in the paper's models).
    pub mlp_dim: usize,
    /// Channels of the input image.
    #[config(default = 3)]
    pub in_channels: usize,
    /// Outputs of the linear head on the CLS token; 0 builds no head (an encoder only).
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Learned or fixed 2-D sine-cosine positional embedding.
    #[config(default = "PosEmbedding::Learned")]
    pub pos_embedding: PosEmbedding,
    /// Epsilon of every LayerNorm: 1e-6 as torchvision and timm (PyTorch's default is 1e-5).
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
    /// Whether the query, key and value projections have a bias (torchvision: yes).
    #[config(default = true)]
    pub qkv_bias: bool,
}

impl ViTConfig {
    fn preset(dim: usize, heads: usize, image_size: usize, patch_size: usize) -> Self {
        Self::new(image_size, patch_size, dim, 12, heads, 4 * dim)
    }

    /// ViT-Ti/16 at 224 px (DeiT's tiny: `dim` 192, 12 blocks, 3 heads, MLP 768), 1000 classes.
    pub fn vit_tiny() -> Self {
        Self::preset(192, 3, 224, 16)
    }

    /// ViT-S/16 at 224 px (`dim` 384, 12 blocks, 6 heads, MLP 1536), 1000 classes.
    pub fn vit_small() -> Self {
        Self::preset(384, 6, 224, 16)
    }

    /// ViT-B/16 at 224 px (`dim` 768, 12 blocks, 12 heads, MLP 3072), 1000 classes: 86,567,656
    /// parameters, torchvision's `vit_b_16`.
    pub fn vit_base() -> Self {
        Self::preset(768, 12, 224, 16)
    }

    /// ViT-Ti with 4-pixel patches for small images (28 or 32 px: 49 or 64 patches).
    pub fn vit_tiny_p4(image_size: usize) -> Self {
        Self::preset(192, 3, image_size, 4)
    }

    /// ViT-S with 4-pixel patches for small images (28 or 32 px: 49 or 64 patches).
    pub fn vit_small_p4(image_size: usize) -> Self {
        Self::preset(384, 6, image_size, 4)
    }

    /// Short name for run summaries: `vit-{size}-p{patch}-{image}` with size `tiny`, `small` or
    /// `base` for the presets' widths (`d{dim}-l{depth}-h{heads}`, plus `-m{mlp_dim}` when
    /// it is not 4 × `dim`, otherwise), then `-sincos` for the fixed positional embedding, e.g.
    /// `"vit-tiny-p16-224"`, `"vit-d192-l2-h3-p4-32"`.
    pub fn name(&self) -> String {
        let size = match (
            self.dim,
            self.depth,
            self.heads,
            self.mlp_dim == 4 * self.dim,
        ) {
            (192, 12, 3, true) => "tiny".to_string(),
            (384, 12, 6, true) => "small".to_string(),
            (768, 12, 12, true) => "base".to_string(),
            (dim, depth, heads, true) => format!("d{dim}-l{depth}-h{heads}"),
            (dim, depth, heads, false) => format!("d{dim}-l{depth}-h{heads}-m{}", self.mlp_dim),
        };
        let mut name = format!("vit-{size}-p{}-{}", self.patch_size, self.image_size);
        if self.pos_embedding == PosEmbedding::Sincos {
            name.push_str("-sincos");
        }
        name
    }

    /// Length of the embedding [`ViT::embed`] returns: `dim`.
    pub fn num_features(&self) -> usize {
        self.dim
    }

    /// Patches per side at the configured `image_size`.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Patch tokens at the configured `image_size`: `(image_size / patch_size)²`.
    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// Checks the values a configuration file may get wrong: every size at least 1, `dim`
    /// divisible by `heads` (and by 4 for [`PosEmbedding::Sincos`]), `image_size` divisible by
    /// `patch_size`, and a positive finite `layer_norm_eps`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("dim", self.dim),
            ("depth", self.depth),
            ("heads", self.heads),
            ("mlp_dim", self.mlp_dim),
            ("in_channels", self.in_channels),
        ] {
            if value == 0 {
                return Err(ConfigError::ViTZero { field });
            }
        }
        // Bounds far above any published ViT (ViT-G: dim 1664, depth 48, MLP 8192) that keep
        // a mistyped value from allocating terabytes.
        for (field, value, max) in [
            ("image_size", self.image_size, 4096),
            ("dim", self.dim, 16_384),
            ("depth", self.depth, 1024),
            ("heads", self.heads, 1024),
            ("mlp_dim", self.mlp_dim, 65_536),
            ("in_channels", self.in_channels, 1024),
            ("num_classes", self.num_classes, 1_000_000),
        ] {
            if value > max {
                return Err(ConfigError::TooLarge {
                    network: "vit",
                    field,
                    value,
                    max,
                });
            }
        }
        let divisible = |field, value: usize, by, divisor| {
            if value.is_multiple_of(divisor) {
                Ok(())
            } else {
                Err(ConfigError::Indivisible {
                    field,
                    value,
                    by,
                    divisor,
                })
            }
        };
        divisible("dim", self.dim, "heads", self.heads)?;
        divisible("image_size", self.image_size, "patch_size", self.patch_size)?;
        if self.pos_embedding == PosEmbedding::Sincos {
            divisible("dim", self.dim, "4 (2-D sin-cos positions)", 4)?;
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return Err(ConfigError::NotPositive {
                field: "layer_norm_eps",
            });
        }
        Ok(())
    }

    /// Learnable parameters of the network this config builds, without building it (as PyTorch
    /// counts `model.parameters()`, plus the `dim` of repr's [`mask_token`](ViT::mask_token),
    /// which torchvision does not have).
    pub fn num_params(&self) -> usize {
        let d = self.dim;
        let linear = |i: usize, o: usize, bias: bool| i * o + if bias { o } else { 0 };
        let layer_norm = 2 * d;
        let patch_embed = self.in_channels * self.patch_size * self.patch_size * d + d;
        let pos = match self.pos_embedding {
            PosEmbedding::Learned => (1 + self.num_patches()) * d,
            PosEmbedding::Sincos => 0,
        };
        let block = layer_norm
            + linear(d, 3 * d, self.qkv_bias)
            + linear(d, d, true)
            + layer_norm
            + linear(d, self.mlp_dim, true)
            + linear(self.mlp_dim, d, true);
        let head = if self.num_classes > 0 {
            linear(d, self.num_classes, true)
        } else {
            0
        };
        // CLS token and mask token: `dim` each.
        patch_embed + 2 * d + pos + self.depth * block + layer_norm + head
    }

    /// Builds the network on `device`, with torchvision's initialisation: patch embedding
    /// `Normal(0, sqrt(1 / fan_in))` with zero bias, CLS token zero, learned positions
    /// `Normal(0, 0.02)`, qkv Xavier-uniform with zero bias, output projection PyTorch's default
    /// `Linear` weight with zero bias, MLP Xavier-uniform weights with `Normal(0, 1e-6)` biases,
    /// LayerNorm 1 and 0, head zero; the mask token `Normal(0, 0.02)`.
    ///
    /// # Panics
    ///
    /// If [`validate`](Self::validate) fails; call it first on configurations read from files.
    pub fn init(&self, device: &Device) -> ViT {
        if let Err(err) = self.validate() {
            panic!("{err}");
        }
        ViT::from_config(self, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(ViTConfig::vit_tiny().name(), "vit-tiny-p16-224");
        assert_eq!(ViTConfig::vit_small().name(), "vit-small-p16-224");
        assert_eq!(ViTConfig::vit_base().name(), "vit-base-p16-224");
        assert_eq!(ViTConfig::vit_small_p4(28).name(), "vit-small-p4-28");
        let mut custom = ViTConfig::new(32, 4, 192, 2, 3, 768);
        assert_eq!(custom.name(), "vit-d192-l2-h3-p4-32");
        custom.mlp_dim = 100;
        assert_eq!(custom.name(), "vit-d192-l2-h3-m100-p4-32");
        assert_eq!(ViTConfig::vit_base().num_patches(), 196);
    }

    #[test]
    fn validate_names_the_field() {
        let tiny = |edit: fn(&mut ViTConfig)| {
            let mut config = ViTConfig::vit_tiny();
            edit(&mut config);
            config
        };
        let cases = [
            (tiny(|c| c.heads = 5), "heads"),
            (tiny(|c| c.patch_size = 15), "patch_size"),
            (tiny(|c| c.depth = 0), "depth"),
            (
                tiny(|c| c.image_size = 100_000),
                "`image_size` is 100000: at most 4096",
            ),
            (tiny(|c| c.mlp_dim = 1 << 20), "`mlp_dim` is 1048576"),
            (
                ViTConfig::vit_tiny().with_layer_norm_eps(0.0),
                "layer_norm_eps",
            ),
            (
                ViTConfig::new(32, 4, 6, 1, 2, 8).with_pos_embedding(PosEmbedding::Sincos),
                "4 (2-D sin-cos",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        assert!(ViTConfig::vit_tiny_p4(28).validate().is_ok());
        assert!(ViTConfig::new(32, 4, 6, 1, 2, 8).validate().is_ok());
    }

    #[test]
    fn json_round_trip() {
        let config = ViTConfig::vit_tiny_p4(32)
            .with_pos_embedding(PosEmbedding::Sincos)
            .with_qkv_bias(false);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""pos_embedding":"sincos""#), "{json}");
        let back: ViTConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), config.name());
        assert!(!back.qkv_bias);
        assert_eq!(back.layer_norm_eps, 1e-6);
    }
}

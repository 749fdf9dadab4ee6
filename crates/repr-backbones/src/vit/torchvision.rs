//! torchvision ViT weights in a repr [`ViT`].
//!
//! The key table is on [`ViT::load_torchvision`].

use std::path::Path;

use super::ViT;
use crate::{ImportError, StateDict};

/// torchvision's key → repr's parameter path (without enum variant names).
fn torchvision_to_repr(key: &str) -> String {
    const LAYERS: &str = "encoder.layers.encoder_layer_";
    if let Some(rest) = key.strip_prefix(LAYERS) {
        // `{i}.{rest}` → `blocks.{i}.{renamed rest}`
        let (index, rest) = rest.split_once('.').unwrap_or((rest, ""));
        let rest = match rest {
            "self_attention.in_proj_weight" => "attn.qkv.weight".to_string(),
            "self_attention.in_proj_bias" => "attn.qkv.bias".to_string(),
            _ => rest
                .replacen("ln_1.", "norm1.", 1)
                .replacen("ln_2.", "norm2.", 1)
                .replacen("self_attention.out_proj.", "attn.proj.", 1)
                .replacen("mlp.0.", "mlp.fc1.", 1)
                .replacen("mlp.3.", "mlp.fc2.", 1),
        };
        return format!("blocks.{index}.{rest}");
    }
    match key {
        "class_token" => "cls_token".to_string(),
        "encoder.pos_embedding" => "pos_embed".to_string(),
        _ => key
            .replacen("conv_proj.", "patch_embed.", 1)
            .replacen("encoder.ln.", "norm.", 1)
            .replacen("heads.head.", "head.", 1),
    }
}

impl ViT {
    /// Loads a torchvision `VisionTransformer` state dict from `path` (`.safetensors`
    /// F32/F16/BF16, or a `torch.save`d `.pt`/`.pth`) by the table below. Parameters and keys
    /// under the `ignore` prefixes (repr paths, e.g. `["head."]` to put a pre-trained body under
    /// a new classifier) are left as they are. The [`mask_token`](ViT::mask_token), which
    /// torchvision does not have, keeps its value.
    ///
    /// The table, torchvision key → repr parameter path (`{i}` the block, from 0):
    ///
    /// | torchvision | repr | note |
    /// | --- | --- | --- |
    /// | `conv_proj.weight` `[d, c, p, p]`, `conv_proj.bias` | `patch_embed.weight`, `patch_embed.bias` | |
    /// | `class_token` `[1, 1, d]` | `cls_token` | |
    /// | `encoder.pos_embedding` `[1, 1 + n, d]` | `pos_embed` | CLS first; absent with sin-cos positions |
    /// | `encoder.layers.encoder_layer_{i}.ln_1.{weight,bias}` | `blocks.{i}.norm1.{gamma,beta}` | |
    /// | `….self_attention.in_proj_weight` `[3d, d]` | `blocks.{i}.attn.qkv.weight` `[d, 3d]` | rows `W_q, W_k, W_v`, transposed |
    /// | `….self_attention.in_proj_bias` `[3d]` | `blocks.{i}.attn.qkv.bias` | `b_q, b_k, b_v` |
    /// | `….self_attention.out_proj.{weight,bias}` | `blocks.{i}.attn.proj.{weight,bias}` | transposed |
    /// | `….ln_2.{weight,bias}` | `blocks.{i}.norm2.{gamma,beta}` | |
    /// | `….mlp.0.{weight,bias}` | `blocks.{i}.mlp.fc1.{weight,bias}` | transposed |
    /// | `….mlp.3.{weight,bias}` | `blocks.{i}.mlp.fc2.{weight,bias}` | transposed |
    /// | `encoder.ln.{weight,bias}` | `norm.{gamma,beta}` | |
    /// | `heads.head.{weight,bias}` `[k, d]` | `head.{weight,bias}` `[d, k]` | transposed |
    /// | — | `mask_token` | repr only, left as is |
    ///
    /// A checkpoint for another image size must have its positional embedding resampled
    /// first (torchvision's `interpolate_embeddings`); the shape error names `pos_embed`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use repr_backbones::ViTConfig;
    ///
    /// let device = Device::flex();
    /// // The fixture: torchvision VisionTransformer(32, 4, 2 layers, 3 heads, 192, 768, 10 classes).
    /// let path = repr_testing::fixture_path("vit_small/weights_f32.safetensors");
    /// let vit = ViTConfig::new(32, 4, 192, 2, 3, 768)
    ///     .with_num_classes(10)
    ///     .init(&device)
    ///     .load_torchvision(&path, &[])?;
    /// assert_eq!(vit.forward(Tensor::zeros([1, 3, 32, 32], &device)).dims(), [1, 10]);
    /// # Ok::<(), repr_backbones::ImportError>(())
    /// ```
    ///
    /// # Errors
    /// [`ImportError::Read`] for an unreadable file, [`ImportError::Dtype`] for an integer
    /// tensor, [`ImportError::Shapes`] naming each tensor whose shape does not fit (e.g.
    /// `head.weight` for another number of classes, `pos_embed` for another grid), and
    /// [`ImportError::Keys`] listing missing and unexpected keys (e.g. `head.*` for a model
    /// without a head, `blocks.2.*` for a deeper model, `pos_embed` with sin-cos positions).
    pub fn load_torchvision(self, path: &Path, ignore: &[&str]) -> Result<Self, ImportError> {
        self.load_state_dict(StateDict::read(path)?, ignore)
    }

    /// [`load_torchvision`](Self::load_torchvision) from a state dict already read, with
    /// torchvision's key names.
    ///
    /// # Errors
    /// As [`load_torchvision`](Self::load_torchvision), without the reading errors.
    pub fn load_state_dict(self, dict: StateDict, ignore: &[&str]) -> Result<Self, ImportError> {
        let mut ignore = ignore.to_vec();
        ignore.push("mask_token");
        dict.rename_keys(torchvision_to_repr)
            .load_into(self, &ignore)
    }
}

#[cfg(test)]
mod tests {
    use super::torchvision_to_repr;

    #[test]
    fn key_table() {
        for (torchvision, repr) in [
            ("conv_proj.weight", "patch_embed.weight"),
            ("class_token", "cls_token"),
            ("encoder.pos_embedding", "pos_embed"),
            (
                "encoder.layers.encoder_layer_0.ln_1.weight",
                "blocks.0.norm1.weight",
            ),
            (
                "encoder.layers.encoder_layer_11.self_attention.in_proj_weight",
                "blocks.11.attn.qkv.weight",
            ),
            (
                "encoder.layers.encoder_layer_1.self_attention.in_proj_bias",
                "blocks.1.attn.qkv.bias",
            ),
            (
                "encoder.layers.encoder_layer_1.self_attention.out_proj.bias",
                "blocks.1.attn.proj.bias",
            ),
            (
                "encoder.layers.encoder_layer_1.ln_2.bias",
                "blocks.1.norm2.bias",
            ),
            (
                "encoder.layers.encoder_layer_1.mlp.0.weight",
                "blocks.1.mlp.fc1.weight",
            ),
            (
                "encoder.layers.encoder_layer_1.mlp.3.bias",
                "blocks.1.mlp.fc2.bias",
            ),
            ("encoder.ln.weight", "norm.weight"),
            ("heads.head.bias", "head.bias"),
        ] {
            assert_eq!(torchvision_to_repr(torchvision), repr);
        }
    }
}

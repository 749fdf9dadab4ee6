//! The ViT module and its staged API.

use burn::module::{Initializer, Module, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::Conv2d;
use repr_kernels::nn::LayerNorm;

use super::pos_embed::{resample, sincos_tensor};
use super::{EncoderBlock, ViTConfig};
use crate::Pooling;

/// A Vision Transformer (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words:
/// Transformers for Image Recognition at Scale", arXiv:2010.11929), laid out as torchvision's
/// `VisionTransformer`, with a learned mask token for masked-patch prediction (the paper's
/// appendix B.1.2).
///
/// The image is cut into `p × p` patches, each linearly embedded (`patch_embed`, a convolution
/// with kernel and stride `p`); a learned CLS token is prepended and positional embeddings
/// added (Eq. 1); pre-norm encoder blocks follow (Eq. 2–3), then a final LayerNorm; the head
/// reads the CLS token (Eq. 4).
///
/// Built by [`ViTConfig::init`]. The staged API follows timm and [`ResNet`](crate::ResNet):
/// [`forward_features`](Self::forward_features) gives the patch tokens as a map
/// `[batch, dim, height / p, width / p]`; [`embed`](Self::embed) is the CLS token;
/// [`forward_intermediates`](Self::forward_intermediates) taps any block. The token-level
/// API for masked-patch prediction: [`embed_patches`](Self::embed_patches) → corrupt the tokens
/// with [`mask_token`](Self::mask_token) → [`forward_tokens`](Self::forward_tokens).
///
/// Any input whose sides are multiples of `p` runs; for another grid than the configured one,
/// the learned positional embedding is resampled ([`pos_embed`](Self::pos_embed)).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use repr_backbones::ViTConfig;
///
/// let device = Device::flex();
/// let vit = ViTConfig::new(16, 4, 8, 2, 2, 16).with_num_classes(3).init(&device);
/// let x = Tensor::<4>::zeros([2, 3, 16, 16], &device);
/// assert_eq!(vit.forward_features(x.clone()).dims(), [2, 8, 4, 4]);
/// assert_eq!(vit.embed(x.clone()).dims(), [2, 8]); // the CLS token
/// assert_eq!(vit.forward(x).dims(), [2, 3]);
/// // Another size: 24 x 8 pixels, a 6 x 2 grid.
/// let tokens = vit.forward_encoder(Tensor::zeros([1, 3, 24, 8], &device));
/// assert_eq!(tokens.dims(), [1, 1 + 12, 8]);
/// ```
#[derive(Module, Debug)]
pub struct ViT {
    /// Patch embedding: `Conv2d(in_channels, dim, kernel = stride = patch_size)` with bias
    /// (torchvision's `conv_proj`).
    pub patch_embed: Conv2d,
    /// The CLS token, `[1, 1, dim]` (torchvision's `class_token`).
    pub cls_token: Param<Tensor<3>>,
    /// Learned positional embedding of CLS and the configured grid's patches,
    /// `[1, 1 + num_patches, dim]` (torchvision's `encoder.pos_embedding`); `None` for the
    /// fixed sine-cosine embedding.
    pub pos_embed: Option<Param<Tensor<3>>>,
    /// The learned token that replaces masked patch embeddings, `[dim]` (not in torchvision).
    pub mask_token: Param<Tensor<1>>,
    /// The encoder blocks (torchvision's `encoder.layers`).
    pub blocks: Vec<EncoderBlock>,
    /// The final LayerNorm (torchvision's `encoder.ln`).
    pub norm: LayerNorm,
    /// Linear head on the CLS token (torchvision's `heads.head`); `None` for 0 classes.
    pub head: Option<Linear>,
    /// Side of a patch.
    patch_size: usize,
    /// Patches per side at the configured image size.
    grid: usize,
}

impl ViT {
    pub(super) fn from_config(config: &ViTConfig, device: &Device) -> Self {
        let dim = config.dim;
        let p = config.patch_size;
        let fan_in = config.in_channels * p * p;
        let mut patch_embed: Conv2d = Conv2dConfig::new([config.in_channels, dim], [p, p])
            .with_stride([p, p])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: (1.0 / fan_in as f64).sqrt(),
            })
            .init(device)
            .into();
        patch_embed.bias = Some(Initializer::Zeros.init([dim], device));
        let pos_embed = match config.pos_embedding {
            super::PosEmbedding::Learned => Some(
                Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                }
                .init([1, 1 + config.num_patches(), dim], device),
            ),
            super::PosEmbedding::Sincos => None,
        };
        let blocks = (0..config.depth)
            .map(|_| {
                EncoderBlock::new(
                    dim,
                    config.heads,
                    config.mlp_dim,
                    config.layer_norm_eps,
                    config.qkv_bias,
                    device,
                )
            })
            .collect();
        let head = (config.num_classes > 0).then(|| {
            LinearConfig::new(dim, config.num_classes)
                .with_initializer(Initializer::Zeros)
                .init(device)
        });
        Self {
            patch_embed,
            cls_token: Initializer::Zeros.init([1, 1, dim], device),
            pos_embed,
            mask_token: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([dim], device),
            blocks,
            norm: LayerNorm::init(
                &LayerNormConfig::new(dim).with_epsilon(config.layer_norm_eps),
                device,
            ),
            head,
            patch_size: p,
            grid: config.grid_size(),
        }
    }

    /// Width of every token, the length of [`embed`](Self::embed).
    pub fn num_features(&self) -> usize {
        self.mask_token.lazy_shape().dims::<1>()[0]
    }

    /// Outputs of the head, or `None` without one.
    pub fn num_classes(&self) -> Option<usize> {
        self.head
            .as_ref()
            .map(|head| head.weight.lazy_shape().dims::<2>()[1])
    }

    /// Number of encoder blocks.
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }

    /// Side of a patch, in pixels.
    pub fn patch_size(&self) -> usize {
        self.patch_size
    }

    /// The patch grid `[rows, cols]` of an image of `[height, width]` pixels.
    ///
    /// # Panics
    /// If a side is not a positive multiple of the patch size.
    pub fn grid_size(&self, [height, width]: [usize; 2]) -> [usize; 2] {
        let p = self.patch_size;
        assert!(
            height >= p && width >= p && height.is_multiple_of(p) && width.is_multiple_of(p),
            "ViT with {p}-pixel patches needs sides that are multiples of {p}, got {height}x{width}"
        );
        [height / p, width / p]
    }

    /// The learned mask token that replaces corrupted patch embeddings in masked-patch
    /// prediction (before the positional embedding is added).
    ///
    /// # Shapes
    /// - output: `[dim]`
    pub fn mask_token(&self) -> Tensor<1> {
        self.mask_token.val()
    }

    /// Linear embedding of every patch, row-major over the grid: token `k` is the patch at row
    /// `k / cols`, column `k % cols` (no CLS, no positions).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`, sides multiples of the patch size
    /// - output: `[batch, (height / p) · (width / p), dim]`
    ///
    /// # Panics
    /// If the channels differ from the configured ones or a side is not a multiple of `p`.
    pub fn embed_patches(&self, x: Tensor<4>) -> Tensor<3> {
        let [_batch, channels, height, width] = x.dims();
        let expected = self.patch_embed.weight.lazy_shape().dims::<4>()[1];
        assert_eq!(
            channels,
            expected,
            "ViT expects {expected} input channels, got {channels} (input shape {:?})",
            x.dims()
        );
        self.grid_size([height, width]);
        self.patch_embed
            .forward(x) // [b, d, rows, cols]
            .flatten::<3>(2, 3)
            .swap_dims(1, 2) // [b, rows · cols, d]
    }

    /// The positional embedding for a `[rows, cols]` patch grid, CLS first. Learned: the
    /// parameter itself on the configured grid; on another grid, the CLS position as is and
    /// the patch positions resampled bicubically (PyTorch's `bicubic`, `align_corners=False`,
    /// as timm). Sine-cosine: computed for the grid.
    ///
    /// # Shapes
    /// - output: `[1, 1 + rows · cols, dim]`
    pub fn pos_embed(&self, grid: [usize; 2]) -> Tensor<3> {
        let device = self.mask_token.device();
        let Some(pos) = &self.pos_embed else {
            return sincos_tensor(self.num_features(), grid, &device);
        };
        let pos = pos.val();
        let native = [self.grid, self.grid];
        if grid == native {
            return pos;
        }
        let [_, tokens, dim] = pos.dims();
        let cls = pos.clone().slice([0..1, 0..1, 0..dim]);
        let patches = pos.slice([0..1, 1..tokens, 0..dim]);
        Tensor::cat(vec![cls, resample(patches, native, grid)], 1)
    }

    /// Prepends CLS to patch tokens and adds the positional embedding: the encoder's input
    /// (Eq. 1), "layer 0" of [`forward_intermediates`](Self::forward_intermediates).
    ///
    /// # Shapes
    /// - `tokens`: `[batch, rows · cols, dim]`
    /// - output: `[batch, 1 + rows · cols, dim]`
    pub fn add_cls_and_positions(&self, tokens: Tensor<3>, grid: [usize; 2]) -> Tensor<3> {
        let [batch, patches, dim] = tokens.dims();
        assert_eq!(
            patches,
            grid[0] * grid[1],
            "{patches} tokens for a {grid:?} grid"
        );
        let cls = self.cls_token.val().expand([batch, 1, dim]);
        Tensor::cat(vec![cls, tokens], 1) + self.pos_embed(grid)
    }

    /// Runs the encoder on patch tokens (e.g. from [`embed_patches`](Self::embed_patches),
    /// some replaced by the [`mask_token`](Self::mask_token)): prepends CLS, adds the positional
    /// embedding for `grid`, runs every block and the final LayerNorm.
    ///
    /// # Shapes
    /// - `tokens`: `[batch, rows · cols, dim]` (no CLS), row-major over `grid = [rows, cols]`
    /// - output: `[batch, 1 + rows · cols, dim]`, CLS first
    pub fn forward_tokens(&self, tokens: Tensor<3>, grid: [usize; 2]) -> Tensor<3> {
        let x = self.add_cls_and_positions(tokens, grid);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        self.norm.forward(x)
    }

    /// All tokens after the final LayerNorm.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, 1 + (height / p) · (width / p), dim]`, CLS first
    pub fn forward_encoder(&self, x: Tensor<4>) -> Tensor<3> {
        let [_, _, height, width] = x.dims();
        let grid = self.grid_size([height, width]);
        self.forward_tokens(self.embed_patches(x), grid)
    }

    /// The tokens after the requested layers, one per entry of `layers` and in that order,
    /// running only as deep as the deepest: layer 0 is the encoder input (patch embeddings +
    /// CLS + positions), layer `n` the output of block `n` (1 to [`depth`](Self::depth)), before
    /// the final LayerNorm.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, 1 + (height / p) · (width / p), dim]`, CLS first
    ///
    /// # Panics
    /// If a layer exceeds the depth.
    pub fn forward_intermediate_tokens(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<3>> {
        let Some(deepest) = layers.iter().max().copied() else {
            return Vec::new();
        };
        assert!(
            deepest <= self.depth(),
            "layer {deepest} does not exist: the ViT has layers 0 to {}",
            self.depth()
        );
        let [_, _, height, width] = x.dims();
        let grid = self.grid_size([height, width]);
        let mut x = self.add_cls_and_positions(self.embed_patches(x), grid);
        let mut taps = vec![None; deepest + 1];
        taps[0] = Some(x.clone());
        for (n, block) in self.blocks[..deepest].iter().enumerate() {
            x = block.forward(x);
            taps[n + 1] = Some(x.clone());
        }
        layers
            .iter()
            .map(|&n| taps[n].clone().expect("computed up to the deepest layer"))
            .collect()
    }

    /// [`forward_intermediate_tokens`](Self::forward_intermediate_tokens) as feature maps of
    /// the patch tokens (CLS dropped), as [`forward_features`](Self::forward_features).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, dim, height / p, width / p]`
    ///
    /// # Panics
    /// If a layer exceeds the depth.
    pub fn forward_intermediates(&self, x: Tensor<4>, layers: &[usize]) -> Vec<Tensor<4>> {
        let [_, _, height, width] = x.dims();
        let grid = self.grid_size([height, width]);
        self.forward_intermediate_tokens(x, layers)
            .into_iter()
            .map(|tokens| tokens_to_map(tokens, grid))
            .collect()
    }

    /// The patch tokens after the final LayerNorm as a feature map (timm's reshape of
    /// `forward_features` for dense use); the CLS token is dropped.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, dim, height / p, width / p]`
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = x.dims();
        let grid = self.grid_size([height, width]);
        tokens_to_map(self.forward_encoder(x), grid)
    }

    /// Pools a feature map from [`forward_features`](Self::forward_features) (average or
    /// maximum over the patches).
    ///
    /// # Shapes
    /// - features: `[batch, dim, rows, cols]`
    /// - output: `[batch, dim]`
    ///
    /// # Panics
    /// For [`Pooling::Cls`]: a map holds no CLS token (use [`pool_tokens`](Self::pool_tokens)).
    pub fn pool(&self, features: Tensor<4>, pooling: Pooling) -> Tensor<2> {
        pooling.pool(features)
    }

    /// Pools tokens, CLS first: [`Pooling::Cls`] takes token 0, `Avg` and `Max` pool the patch
    /// tokens (CLS excluded).
    ///
    /// # Shapes
    /// - tokens: `[batch, 1 + patches, dim]`
    /// - output: `[batch, dim]`
    pub fn pool_tokens(&self, tokens: Tensor<3>, pooling: Pooling) -> Tensor<2> {
        let [batch, count, dim] = tokens.dims();
        let pooled = match pooling {
            Pooling::Cls => tokens.slice([0..batch, 0..1, 0..dim]),
            Pooling::Avg => tokens.slice([0..batch, 1..count, 0..dim]).mean_dim(1),
            Pooling::Max => tokens.slice([0..batch, 1..count, 0..dim]).max_dim(1),
            Pooling::Gem => crate::pool::gem_dim(tokens.slice([0..batch, 1..count, 0..dim]), 1),
        };
        pooled.reshape([batch, dim])
    }

    /// The image embedding: the CLS token after the final LayerNorm, the input of
    /// torchvision's head.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, dim]`
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.pool_tokens(self.forward_encoder(x), Pooling::Cls)
    }

    /// Applies the head; without one, returns its input.
    ///
    /// # Shapes
    /// - pooled: `[batch, dim]`
    /// - output: `[batch, num_classes]`, or `[batch, dim]` without a head
    ///
    /// # Panics
    /// If `pooled` does not have [`num_features`](Self::num_features) columns.
    pub fn forward_head(&self, pooled: Tensor<2>) -> Tensor<2> {
        let [_batch, features] = pooled.dims();
        assert_eq!(
            features,
            self.num_features(),
            "ViT head expects {} features, got {features}",
            self.num_features()
        );
        match &self.head {
            Some(head) => repr_kernels::nn::linear(head, pooled),
            None => pooled,
        }
    }

    /// The logits: [`embed`](Self::embed) then [`forward_head`](Self::forward_head).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes]`, or `[batch, dim]` without a head
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.embed(x))
    }
}

/// Patch tokens (CLS first, dropped) as a map: token `k` goes to row `k / cols`, column
/// `k % cols`.
///
/// # Shapes
/// - tokens: `[batch, 1 + rows · cols, dim]`
/// - output: `[batch, dim, rows, cols]`
fn tokens_to_map(tokens: Tensor<3>, [rows, cols]: [usize; 2]) -> Tensor<4> {
    let [batch, count, dim] = tokens.dims();
    tokens
        .slice([0..batch, 1..count, 0..dim])
        .swap_dims(1, 2) // [b, d, rows · cols]
        .reshape([batch, dim, rows, cols])
}

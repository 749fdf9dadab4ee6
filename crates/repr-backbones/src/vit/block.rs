//! The pre-norm Transformer encoder block of ViT (Dosovitskiy et al. 2020, Eq. 2–3).

use burn::module::{Initializer, Module};
use burn::nn::{LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::{LayerNorm, linear};
use repr_kernels::ops::gelu;

use super::Attention;

/// The block's MLP: `fc2(GELU(fc1(x)))` with the exact GELU `x · Φ(x)` (erf, not the tanh
/// approximation), as torchvision's `MLPBlock` (`mlp.0`, `mlp.3`).
#[derive(Module, Debug)]
pub struct Mlp {
    /// `dim` → `mlp_dim`.
    pub fc1: Linear,
    /// `mlp_dim` → `dim`.
    pub fc2: Linear,
}

impl Mlp {
    /// torchvision's initialisation: Xavier-uniform weights, `Normal(0, 1e-6)` biases.
    pub fn new(dim: usize, hidden: usize, device: &Device) -> Self {
        let linear = |i, o| {
            let mut layer = LinearConfig::new(i, o)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device);
            layer.bias = Some(
                Initializer::Normal {
                    mean: 0.0,
                    std: 1e-6,
                }
                .init([o], device),
            );
            layer
        };
        Self {
            fc1: linear(dim, hidden),
            fc2: linear(hidden, dim),
        }
    }

    /// # Shapes
    /// - input: `[batch, tokens, dim]`
    /// - output: `[batch, tokens, dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.fc2, gelu(linear(&self.fc1, x)))
    }
}

/// One encoder block, pre-norm: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    /// LayerNorm before attention (torchvision's `ln_1`).
    pub norm1: LayerNorm,
    /// Multi-head self-attention (torchvision's `self_attention`).
    pub attn: Attention,
    /// LayerNorm before the MLP (torchvision's `ln_2`).
    pub norm2: LayerNorm,
    /// The MLP.
    pub mlp: Mlp,
}

impl EncoderBlock {
    /// A block of width `dim`, `heads` heads, MLP width `mlp_dim`, LayerNorm epsilon `eps`.
    pub fn new(
        dim: usize,
        heads: usize,
        mlp_dim: usize,
        eps: f64,
        qkv_bias: bool,
        device: &Device,
    ) -> Self {
        let norm = || LayerNorm::init(&LayerNormConfig::new(dim).with_epsilon(eps), device);
        Self {
            norm1: norm(),
            attn: Attention::new(dim, heads, qkv_bias, device),
            norm2: norm(),
            mlp: Mlp::new(dim, mlp_dim, device),
        }
    }

    /// # Shapes
    /// - input: `[batch, tokens, dim]`
    /// - output: `[batch, tokens, dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        x.clone() + self.mlp.forward(self.norm2.forward(x))
    }
}

//! Multi-head self-attention (Vaswani et al. 2017, "Attention Is All You Need") as the ViT
//! encoder uses it, with one fused query-key-value projection.

use burn::module::{Initializer, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::linear;

/// Multi-head self-attention: `proj(concat_h softmax(q_h k_hᵀ / sqrt(dim / heads)) v_h)`, where
/// head `h` takes the features `h · dim/heads .. (h + 1) · dim/heads` of `q`, `k` and `v`
/// (torchvision's and PyTorch's `nn.MultiheadAttention` split).
///
/// `qkv` maps `dim` to `3 · dim` features, `[q | k | v]` in that order: torchvision's
/// `in_proj_weight` (rows `W_q`, `W_k`, `W_v`) transposed.
#[derive(Module, Debug)]
pub struct Attention {
    /// The fused projection to queries, keys and values: `[dim, 3 · dim]`.
    pub qkv: Linear,
    /// The output projection: `[dim, dim]`.
    pub proj: Linear,
    /// Number of heads.
    heads: usize,
}

impl Attention {
    /// `dim` features in `heads` heads; torchvision's initialisation: `qkv` Xavier-uniform over
    /// the whole `[3 · dim, dim]` matrix with zero bias, `proj` PyTorch's default `Linear`
    /// weight with zero bias.
    ///
    /// # Panics
    /// If `heads` does not divide `dim`.
    pub fn new(dim: usize, heads: usize, qkv_bias: bool, device: &Device) -> Self {
        assert!(
            heads > 0 && dim.is_multiple_of(heads),
            "{heads} heads do not divide dim {dim}"
        );
        let mut qkv = LinearConfig::new(dim, 3 * dim)
            .with_bias(qkv_bias)
            .with_initializer(Initializer::XavierUniform { gain: 1.0 })
            .init(device);
        qkv.bias = qkv.bias.map(|_| Initializer::Zeros.init([3 * dim], device));
        let mut proj = LinearConfig::new(dim, dim).init(device);
        proj.bias = Some(Initializer::Zeros.init([dim], device));
        Self { qkv, proj, heads }
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// Every token attends to every token.
    ///
    /// # Shapes
    /// - input: `[batch, tokens, dim]`
    /// - output: `[batch, tokens, dim]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        // On flex one fused kernel reads q, k and v in place from the packed projection.
        let context = repr_kernels::ops::attention_packed(linear(&self.qkv, x), self.heads);
        linear(&self.proj, context)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    /// Against a naive f64 implementation of the formula, with two heads.
    fn matches_the_definition(device: &Device) {
        let (batch, tokens, dim, heads) = (2, 5, 6, 2);
        let attn = Attention::new(dim, heads, true, device);
        // Non-zero biases, so that their place is checked too.
        let mut attn = attn;
        attn.qkv.bias = Some(burn::module::Param::from_tensor(Tensor::random(
            [3 * dim],
            Distribution::Normal(0.0, 0.5),
            device,
        )));
        let x = Tensor::<3>::random([batch, tokens, dim], Distribution::Normal(0.0, 1.0), device);
        let got = attn
            .forward(x.clone())
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap();

        let f = |t: Tensor<2>| t.into_data().try_into_vec_as::<f64>().unwrap();
        let f1 = |t: Tensor<1>| t.into_data().try_into_vec_as::<f64>().unwrap();
        let (w_qkv, b_qkv) = (
            f(attn.qkv.weight.val()),
            f1(attn.qkv.bias.clone().unwrap().val()),
        );
        let (w_o, b_o) = (
            f(attn.proj.weight.val()),
            f1(attn.proj.bias.clone().unwrap().val()),
        );
        let x = x.into_data().try_into_vec_as::<f64>().unwrap();
        // y = x W + b with Burn's [in, out] weights.
        let linear = |x: &[f64], w: &[f64], b: &[f64], out: usize| -> Vec<f64> {
            (0..out)
                .map(|o| {
                    b[o] + x
                        .iter()
                        .enumerate()
                        .map(|(i, v)| v * w[i * out + o])
                        .sum::<f64>()
                })
                .collect()
        };
        let head_dim = dim / heads;
        let mut expected = Vec::new();
        for b in 0..batch {
            let qkv: Vec<Vec<f64>> = (0..tokens)
                .map(|t| linear(&x[(b * tokens + t) * dim..][..dim], &w_qkv, &b_qkv, 3 * dim))
                .collect();
            let mut context = vec![vec![0.0; dim]; tokens];
            for h in 0..heads {
                let feature =
                    |t: usize, part: usize, i: usize| qkv[t][part * dim + h * head_dim + i];
                for (i, row) in context.iter_mut().enumerate() {
                    let scores: Vec<f64> = (0..tokens)
                        .map(|j| {
                            (0..head_dim)
                                .map(|e| feature(i, 0, e) * feature(j, 1, e))
                                .sum::<f64>()
                                / (head_dim as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exp.iter().sum();
                    for e in 0..head_dim {
                        row[h * head_dim + e] =
                            (0..tokens).map(|j| exp[j] / total * feature(j, 2, e)).sum();
                    }
                }
            }
            for row in context {
                expected.extend(linear(&row, &w_o, &b_o, dim));
            }
        }
        repr_testing::assert_close(&got, &expected, 1e-5, 1e-4, "attention");
    }

    repr_testing::backend_tests!(matches_the_definition);
}

//! The normalisation of a ResNet: BatchNorm (He et al. 2016) or, as in BiT (Kolesnikov et al.
//! 2020, "Big Transfer (BiT): General Visual Representation Learning", arXiv:1912.11370, Sec.
//! 2.1/4.3), GroupNorm with Weight Standardization on every convolution.

use burn::module::{Initializer, Module};
use burn::nn::{BatchNormConfig, GroupNorm, GroupNormConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::{BatchNorm, Conv2d};
use serde::{Deserialize, Serialize};

/// Which normalisation a ResNet uses after each convolution.
///
/// In files: `norm = "batch"` or `norm = { group_ws = { groups = 32 } }` (TOML), `"batch"` or
/// `{"group_ws": {"groups": 32}}` (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// BatchNorm (Ioffe & Szegedy 2015), as torchvision: statistics over the batch in training,
    /// running statistics in evaluation.
    #[default]
    Batch,
    /// GroupNorm (Wu & He 2018) with `groups` groups, and Weight Standardization (Qiao et al.
    /// 2019) of every convolution: BiT's replacement of BatchNorm (Kolesnikov et al. 2020), with
    /// 32 groups there. Each sample is normalised on its own, so the output does not depend on
    /// the batch, and there are no running statistics. `groups` must divide the ResNet's `width`
    /// (then it divides every layer's channels).
    GroupWs {
        /// Number of channel groups (BiT: 32).
        groups: usize,
    },
}

impl Norm {
    /// BiT's choice: GroupNorm with 32 groups and Weight Standardization.
    pub const BIT: Norm = Norm::GroupWs { groups: 32 };

    /// Builds the layer for `channels` channels: BatchNorm with PyTorch's defaults (eps 1e-5,
    /// momentum 0.1) or GroupNorm (eps 1e-5, PyTorch's `nn.GroupNorm` default, as BiT), gamma 1
    /// (0 with `zero_gamma`) and beta 0.
    pub(super) fn init(self, channels: usize, zero_gamma: bool, device: &Device) -> NormLayer {
        match self {
            Norm::Batch => {
                let mut bn = BatchNorm::init(&BatchNormConfig::new(channels), device);
                if zero_gamma {
                    bn.gamma = Initializer::Zeros.init([channels], device);
                }
                NormLayer::Batch(bn)
            }
            Norm::GroupWs { groups } => {
                let mut gn = GroupNormConfig::new(groups, channels).init(device);
                if zero_gamma {
                    gn.gamma = Some(Initializer::Zeros.init([channels], device));
                }
                NormLayer::Group(gn)
            }
        }
    }
}

/// A normalisation layer of a ResNet, after a convolution ([`Norm`] chooses which).
///
/// Parameter paths carry the variant: `bn1.Batch.gamma`, `bn1.Group.gamma` (burn-store's
/// importer skips variant names, so torchvision's `bn1.weight` still matches).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum NormLayer {
    /// BatchNorm, with running statistics.
    Batch(BatchNorm),
    /// GroupNorm; the convolution before it is weight-standardised.
    Group(GroupNorm),
}

impl NormLayer {
    /// Normalises a convolution's output.
    ///
    /// # Shapes
    /// - input: `[batch, channels, height, width]`
    /// - output: the same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Batch(bn) => bn.forward(x),
            Self::Group(gn) => gn.forward(x),
        }
    }

    /// `conv` then this layer: with GroupNorm the convolution is weight-standardised
    /// ([`standardized_conv2d`]), as BiT does for every convolution.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height_out, width_out]`
    pub fn conv_forward(&self, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Batch(bn) => bn.forward(conv.forward(x)),
            Self::Group(gn) => gn.forward(standardized_conv2d(conv, x)),
        }
    }

    /// `relu(self.conv_forward(conv, x))`; with BatchNorm the normalisation and the ReLU are one
    /// fused pass on flex.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, height_out, width_out]`
    pub fn conv_forward_relu(&self, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Batch(bn) => bn.forward_relu(conv.forward(x)),
            Self::Group(gn) => relu(gn.forward(standardized_conv2d(conv, x))),
        }
    }

    /// The BatchNorm, or `None` for GroupNorm.
    pub fn batch_norm(&self) -> Option<&BatchNorm> {
        match self {
            Self::Batch(bn) => Some(bn),
            Self::Group(_) => None,
        }
    }

    /// The scale `gamma` (GroupNorm is always built affine).
    pub fn gamma(&self) -> Tensor<1> {
        match self {
            Self::Batch(bn) => bn.gamma.val(),
            Self::Group(gn) => gn.gamma.as_ref().expect("built affine").val(),
        }
    }
}

/// Epsilon of Weight Standardization: `1e-10` inside the square root with the biased variance,
/// as BiT's released PyTorch model (`StdConv2d` in google-research/big_transfer,
/// `bit_pytorch/models.py`), so BiT weights give BiT's outputs.
pub const WS_EPS: f64 = 1e-10;

/// A convolution with Weight Standardization (Qiao et al. 2019, "Micro-Batch Training with
/// Batch-Channel Normalization and Weight Standardization", arXiv:1903.10520; used by BiT):
/// each output channel's kernel is standardised over `(in, kh, kw)` before convolving,
/// `w' = (w − mean) / sqrt(var + WS_EPS)` with the biased variance. The stored weight is left
/// as it is, and the gradient flows through the standardisation.
///
/// # Shapes
/// - input: `[batch, in_channels, height, width]`
/// - output: as [`Conv2d::forward`]
pub fn standardized_conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    conv.forward_with_weight(x, standardize(conv.weight.val()))
}

/// `(w − mean) / sqrt(var + WS_EPS)` per output channel (axis 0), over the other axes.
fn standardize(weight: Tensor<4>) -> Tensor<4> {
    let dims = weight.dims();
    let [out, ..] = dims;
    let flat = weight.reshape([out, dims[1] * dims[2] * dims[3]]);
    let centred = flat.clone() - flat.mean_dim(1);
    let var = (centred.clone() * centred.clone()).mean_dim(1);
    (centred / (var + WS_EPS).sqrt()).reshape(dims)
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    /// A direct f64 convolution of `x` `[n, c, h, w]` with the weight standardised per output
    /// channel, zero padding `pad`, stride `stride`.
    #[allow(clippy::too_many_arguments)]
    fn naive_ws_conv(
        x: &[f32],
        [n, c, h, w]: [usize; 4],
        weight: &[f32],
        [o, _, kh, kw]: [usize; 4],
        bias: &[f32],
        stride: usize,
        pad: usize,
    ) -> Vec<f64> {
        let per = c * kh * kw;
        let mut ws = vec![0.0f64; o * per];
        for oc in 0..o {
            let k = &weight[oc * per..(oc + 1) * per];
            let mean = k.iter().map(|&v| v as f64).sum::<f64>() / per as f64;
            let var = k.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / per as f64;
            for (i, &v) in k.iter().enumerate() {
                ws[oc * per + i] = (v as f64 - mean) / (var + WS_EPS).sqrt();
            }
        }
        let ho = (h + 2 * pad - kh) / stride + 1;
        let wo = (w + 2 * pad - kw) / stride + 1;
        let mut out = vec![0.0f64; n * o * ho * wo];
        for b in 0..n {
            for oc in 0..o {
                for y in 0..ho {
                    for xo in 0..wo {
                        let mut acc = bias[oc] as f64;
                        for ic in 0..c {
                            for dy in 0..kh {
                                for dx in 0..kw {
                                    let (iy, ix) = (y * stride + dy, xo * stride + dx);
                                    if iy < pad || ix < pad || iy - pad >= h || ix - pad >= w {
                                        continue;
                                    }
                                    let xi = ((b * c + ic) * h + iy - pad) * w + ix - pad;
                                    let wi = ((oc * c + ic) * kh + dy) * kw + dx;
                                    acc += x[xi] as f64 * ws[wi];
                                }
                            }
                        }
                        out[((b * o + oc) * ho + y) * wo + xo] = acc;
                    }
                }
            }
        }
        out
    }

    fn ws_conv_matches_the_definition(device: &Device) {
        device.seed(11);
        let conv = Conv2dConfig::new([3, 4], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device);
        let conv = Conv2d::from(conv);
        // A mean offset and a scale per output channel, which standardisation removes.
        let weight = conv.weight.val() * 3.0 + 0.5;
        let conv = Conv2d {
            weight: burn::module::Param::from_tensor(weight),
            ..conv
        };
        let shape = [2, 3, 7, 6];
        let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
        let out = standardized_conv2d(&conv, x.clone());
        assert_eq!(out.dims(), [2, 4, 4, 3]);
        let f = |t: TensorData| t.convert::<f32>().try_to_vec::<f32>().unwrap();
        let expected = naive_ws_conv(
            &f(x.into_data()),
            shape,
            &f(conv.weight.val().into_data()),
            [4, 3, 3, 3],
            &f(conv.bias.as_ref().unwrap().val().into_data()),
            2,
            1,
        );
        let got = f(out.into_data());
        for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g as f64 - e).abs() <= 1e-4 + 1e-4 * e.abs(),
                "{i}: {g} vs {e}"
            );
        }
    }

    repr_testing::backend_tests!(ws_conv_matches_the_definition);
}

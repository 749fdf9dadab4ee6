//! The ResNet module and its staged API.

use burn::module::Module;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::Conv2d;
use serde::{Deserialize, Serialize};

use super::block::conv;
use super::{Block, BlockConfig, NormLayer, ResNetConfig, Stem};
use crate::Pooling;

/// A point of the network whose activation [`ResNet::forward_intermediates`] can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// After `conv1`, `bn1` and ReLU, before the max pool of the ImageNet stem (as timm's
    /// `act1` feature): stride 2 with the ImageNet stem, 1 with the CIFAR stem.
    Stem,
    /// Output of `layer1` (after the max pool with the ImageNet stem).
    Layer1,
    /// Output of `layer2`.
    Layer2,
    /// Output of `layer3`.
    Layer3,
    /// Output of `layer4`, the same as [`ResNet::forward_features`].
    Layer4,
}

impl Stage {
    /// All stages, shallowest first.
    pub const ALL: [Stage; 5] = [
        Stage::Stem,
        Stage::Layer1,
        Stage::Layer2,
        Stage::Layer3,
        Stage::Layer4,
    ];
}

/// A residual network (He et al. 2016, "Deep Residual Learning for Image Recognition",
/// arXiv:1512.03385), with torchvision's field names so that torchvision weights import by name.
///
/// Built by [`ResNetConfig::init`]. The staged API follows timm:
/// [`forward_features`](Self::forward_features) → [`pool`](Self::pool) →
/// [`forward_head`](Self::forward_head), with [`embed`](Self::embed) and
/// [`forward`](Self::forward) composing them and
/// [`forward_intermediates`](Self::forward_intermediates) tapping any [`Stage`].
///
/// Names that differ from torchvision's state dict, for an importer: BatchNorm `weight`/`bias`
/// are `gamma`/`beta`; `fc.weight` is stored transposed (`[in, out]`); blocks and
/// normalisation layers carry their [`Block`] and [`NormLayer`] variant in the path
/// (`layer1.0.Basic.bn1.Batch.gamma`); shortcuts are `downsample.conv`/`downsample.bn`
/// (see [`Downsample`](super::Downsample)). [`ResNet::load_torchvision`] handles them.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution: 7x7 stride 2 (ImageNet stem) or 3x3 stride 1 (CIFAR stem).
    pub conv1: Conv2d,
    /// Normalisation after `conv1` (BatchNorm, or GroupNorm with a weight-standardised
    /// `conv1`: see [`Norm`](super::Norm)).
    pub bn1: NormLayer,
    /// 3x3 stride-2 max pool of the ImageNet stem; `None` for the CIFAR stem.
    pub maxpool: Option<MaxPool2d>,
    /// First stage: `width` inner channels, stride 1.
    pub layer1: Vec<Block>,
    /// Second stage: `2 * width` inner channels, stride 2.
    pub layer2: Vec<Block>,
    /// Third stage: `4 * width` inner channels, stride 2.
    pub layer3: Vec<Block>,
    /// Fourth stage: `8 * width` inner channels, stride 2.
    pub layer4: Vec<Block>,
    /// Classification head; `None` when the config asks for 0 classes.
    pub fc: Option<Linear>,
    /// Channels of the `layer4` output.
    num_features: usize,
}

impl ResNet {
    pub(super) fn from_config(config: &ResNetConfig, device: &Device) -> Self {
        let (conv1, maxpool) = match config.stem {
            Stem::ImageNet => (
                conv(config.in_channels, config.width, 7, 2, device),
                Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            ),
            Stem::Cifar => (conv(config.in_channels, config.width, 3, 1, device), None),
        };
        let mut in_channels = config.width;
        let mut stage = |index: usize| {
            let planes = config.width << index;
            let stride = if index == 0 { 1 } else { 2 };
            (0..config.layers[index])
                .map(|block| {
                    let block_config = BlockConfig::new(config.block, in_channels, planes)
                        .with_stride(if block == 0 { stride } else { 1 })
                        .with_zero_init_residual(config.zero_init_residual)
                        .with_norm(config.norm);
                    in_channels = block_config.out_channels();
                    block_config.init(device)
                })
                .collect::<Vec<_>>()
        };
        let [layer1, layer2, layer3, layer4] = [stage(0), stage(1), stage(2), stage(3)];
        let num_features = config.num_features();
        let fc = (config.num_classes > 0)
            .then(|| LinearConfig::new(num_features, config.num_classes).init(device));
        Self {
            conv1,
            bn1: config.norm.init(config.width, false, device),
            maxpool,
            layer1,
            layer2,
            layer3,
            layer4,
            fc,
            num_features,
        }
    }

    /// Channels of the `layer4` output, the length of [`embed`](Self::embed):
    /// `8 * width * expansion` (512 for ResNet-18, 2048 for ResNet-50).
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Outputs of the head, or `None` without one.
    pub fn num_classes(&self) -> Option<usize> {
        self.fc
            .as_ref()
            .map(|fc| fc.weight.lazy_shape().dims::<2>()[1])
    }

    /// Computes the requested stages' activations, running the network only as deep as the
    /// deepest requested stage. The result has one tensor per entry of `stages`, in that order.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output `i`: `[batch, channels_i, height_i, width_i]`; with the ImageNet stem `Stem` is
    ///   `height / 2`, `Layer1` `height / 4` and each later stage halves again (rounding up);
    ///   the CIFAR stem keeps `height` until `Layer2`.
    ///
    /// # Panics
    ///
    /// If the input does not have the configured number of channels.
    pub fn forward_intermediates(&self, x: Tensor<4>, stages: &[Stage]) -> Vec<Tensor<4>> {
        let Some(deepest) = stages.iter().max().copied() else {
            return Vec::new();
        };
        let mut taps: [Option<Tensor<4>>; 5] = Default::default();
        let mut x = self.forward_stem(x);
        taps[Stage::Stem as usize] = Some(x.clone());
        if let Some(maxpool) = &self.maxpool {
            x = maxpool.forward(x);
        }
        for (stage, layer) in Stage::ALL[1..=deepest as usize].iter().zip(self.stages()) {
            x = layer.iter().fold(x, |x, block| block.forward(x));
            taps[*stage as usize] = Some(x.clone());
        }
        stages
            .iter()
            .map(|&stage| {
                taps[stage as usize]
                    .clone()
                    .expect("computed up to the deepest stage")
            })
            .collect()
    }

    /// The feature map of the last stage (`layer4`), before pooling.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features, height / 32, width / 32]` with the ImageNet stem,
    ///   `[batch, num_features, height / 8, width / 8]` with the CIFAR stem (rounding up).
    ///
    /// # Panics
    ///
    /// If the input does not have the configured number of channels.
    pub fn forward_features(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.forward_stem(x);
        if let Some(maxpool) = &self.maxpool {
            x = maxpool.forward(x);
        }
        self.stages()
            .into_iter()
            .flatten()
            .fold(x, |x, block| block.forward(x))
    }

    /// Pools a feature map from [`forward_features`](Self::forward_features).
    ///
    /// # Shapes
    /// - features: `[batch, num_features, height, width]`
    /// - output: `[batch, num_features]`
    pub fn pool(&self, features: Tensor<4>, pooling: Pooling) -> Tensor<2> {
        pooling.pool(features)
    }

    /// The image embedding: features of `layer4` with global average pooling, the input of
    /// torchvision's `fc`.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_features]`
    pub fn embed(&self, x: Tensor<4>) -> Tensor<2> {
        self.pool(self.forward_features(x), Pooling::Avg)
    }

    /// Applies the classification head `fc`; without a head, returns its input.
    ///
    /// # Shapes
    /// - pooled: `[batch, num_features]`
    /// - output: `[batch, num_classes]`, or `[batch, num_features]` without a head
    ///
    /// # Panics
    ///
    /// If `pooled` does not have [`num_features`](Self::num_features) columns.
    pub fn forward_head(&self, pooled: Tensor<2>) -> Tensor<2> {
        let [_batch, features] = pooled.dims();
        assert_eq!(
            features, self.num_features,
            "ResNet head expects {} features, got {features}",
            self.num_features
        );
        match &self.fc {
            Some(fc) => fc.forward(pooled),
            None => pooled,
        }
    }

    /// The logits: [`embed`](Self::embed) then [`forward_head`](Self::forward_head).
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, num_classes]`, or `[batch, num_features]` without a head
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_head(self.embed(x))
    }

    /// `conv1`, `bn1`, ReLU (the max pool is applied by the callers, after the `Stem` tap).
    pub fn forward_stem(&self, x: Tensor<4>) -> Tensor<4> {
        let [_batch, channels, _height, _width] = x.dims();
        let expected = self.conv1.weight.lazy_shape().dims::<4>()[1];
        assert_eq!(
            channels,
            expected,
            "ResNet expects {expected} input channels, got {channels} (input shape {:?})",
            x.dims()
        );
        self.bn1.conv_forward_relu(&self.conv1, x)
    }

    fn stages(&self) -> [&Vec<Block>; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }
}

//! Residual blocks of He et al. 2016, "Deep Residual Learning for Image Recognition" (Fig. 5),
//! laid out as torchvision's `BasicBlock` and `Bottleneck`.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::{Device, Tensor};
use repr_kernels::nn::Conv2d;

use super::{BlockKind, Norm, NormLayer};

/// Configuration of one residual [`Block`]: the first block of a stage gets the stride and, when
/// the shape changes, a projection shortcut ([`Downsample`]).
#[derive(Config, Debug)]
pub struct BlockConfig {
    /// Basic or bottleneck.
    pub kind: BlockKind,
    /// Channels of the block input.
    pub in_channels: usize,
    /// Inner width (torchvision's `planes`); the output has `planes * expansion` channels.
    pub planes: usize,
    /// Stride of the block (on the first 3x3 convolution, and on the shortcut).
    #[config(default = 1)]
    pub stride: usize,
    /// Start the last normalisation's scale at zero, so the block starts as the identity.
    #[config(default = false)]
    pub zero_init_residual: bool,
    /// The normalisation after each convolution.
    #[config(default = "Norm::Batch")]
    pub norm: Norm,
}

impl BlockConfig {
    /// Channels of the block output: `planes * expansion`.
    pub fn out_channels(&self) -> usize {
        self.planes * self.kind.expansion()
    }

    /// Builds the block; the shortcut is a 1x1 convolution + normalisation when the stride is not 1
    /// or the channels change, the identity otherwise (torchvision's option B).
    pub fn init(&self, device: &Device) -> Block {
        let out_channels = self.out_channels();
        let downsample =
            (self.stride != 1 || self.in_channels != out_channels).then(|| Downsample {
                conv: conv(self.in_channels, out_channels, 1, self.stride, device),
                bn: self.norm.init(out_channels, false, device),
            });
        let zero = self.zero_init_residual;
        let norm = |channels, zero_gamma| self.norm.init(channels, zero_gamma, device);
        match self.kind {
            BlockKind::Basic => Block::Basic(BasicBlock {
                conv1: conv(self.in_channels, self.planes, 3, self.stride, device),
                bn1: norm(self.planes, false),
                conv2: conv(self.planes, self.planes, 3, 1, device),
                bn2: norm(self.planes, zero),
                downsample,
            }),
            BlockKind::Bottleneck => Block::Bottleneck(Bottleneck {
                conv1: conv(self.in_channels, self.planes, 1, 1, device),
                bn1: norm(self.planes, false),
                conv2: conv(self.planes, self.planes, 3, self.stride, device),
                bn2: norm(self.planes, false),
                conv3: conv(self.planes, out_channels, 1, 1, device),
                bn3: norm(out_channels, zero),
                downsample,
            }),
        }
    }
}

/// A convolution as torchvision's ResNet builds it: no bias, padding `kernel / 2`, and
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, i.e. std `sqrt(2 / fan_out)`.
pub(super) fn conv(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    stride: usize,
    device: &Device,
) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
        .init(device)
        .into()
}

/// A residual block of either kind, as stacked in `layer1..layer4`.
///
/// Burn records the variant in parameter paths (`layer1.0.Basic.conv1.weight`); burn-store's
/// `PytorchStore` skips enum variant names by default, so torchvision keys
/// (`layer1.0.conv1.weight`) still match.
#[derive(Module, Debug)]
// Burn has no `Module` impl for `Box`, and a stage holds blocks of one kind anyway.
#[allow(clippy::large_enum_variant)]
pub enum Block {
    /// Two 3x3 convolutions.
    Basic(BasicBlock),
    /// 1x1, 3x3, 1x1 convolutions.
    Bottleneck(Bottleneck),
}

impl Block {
    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, ceil(height / stride), ceil(width / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(block) => block.forward(x),
            Self::Bottleneck(block) => block.forward(x),
        }
    }
}

/// The projection shortcut: 1x1 strided convolution + normalisation.
///
/// Field names differ from torchvision, whose shortcut is an `nn.Sequential`: `conv` is
/// `downsample.0` and `bn` is `downsample.1`. A weight importer remaps
/// `downsample\.0\.` → `downsample.conv.` and `downsample\.1\.` → `downsample.bn.`.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1x1 convolution with the block's stride (torchvision `downsample.0`).
    pub conv: Conv2d,
    /// Normalisation (torchvision `downsample.1`).
    pub bn: NormLayer,
}

impl Downsample {
    /// Projects the block input to the block output's shape.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, out_channels, ceil(height / stride), ceil(width / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.conv_forward(&self.conv, x)
    }
}

/// The basic block of ResNet-18/34: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3x3 convolution carrying the stride.
    pub conv1: Conv2d,
    /// Normalisation after `conv1`.
    pub bn1: NormLayer,
    /// 3x3 convolution.
    pub conv2: Conv2d,
    /// Normalisation after `conv2` (zeroed by `zero_init_residual`).
    pub bn2: NormLayer,
    /// Projection shortcut, `None` for the identity.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, planes, ceil(height / stride), ceil(width / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_batch, channels, _height, _width] = x.dims();
        debug_assert_eq!(channels, self.conv1.weight.lazy_shape().dims::<4>()[1]);
        let shortcut = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = self.bn1.conv_forward_relu(&self.conv1, x);
        let out = self.bn2.conv_forward(&self.conv2, out);
        repr_kernels::ops::add_relu(out, shortcut)
    }
}

/// The bottleneck block of ResNet-50 and deeper:
/// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`, with the stride on
/// the 3x3 `conv2` as torchvision does (ResNet v1.5; the paper puts it on `conv1`).
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 convolution reducing to `planes` channels.
    pub conv1: Conv2d,
    /// Normalisation after `conv1`.
    pub bn1: NormLayer,
    /// 3x3 convolution carrying the stride.
    pub conv2: Conv2d,
    /// Normalisation after `conv2`.
    pub bn2: NormLayer,
    /// 1x1 convolution expanding to `4 * planes` channels.
    pub conv3: Conv2d,
    /// Normalisation after `conv3` (zeroed by `zero_init_residual`).
    pub bn3: NormLayer,
    /// Projection shortcut, `None` for the identity.
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    /// Applies the block.
    ///
    /// # Shapes
    /// - input: `[batch, in_channels, height, width]`
    /// - output: `[batch, 4 * planes, ceil(height / stride), ceil(width / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_batch, channels, _height, _width] = x.dims();
        debug_assert_eq!(channels, self.conv1.weight.lazy_shape().dims::<4>()[1]);
        let shortcut = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = self.bn1.conv_forward_relu(&self.conv1, x);
        let out = self.bn2.conv_forward_relu(&self.conv2, out);
        let out = self.bn3.conv_forward(&self.conv3, out);
        repr_kernels::ops::add_relu(out, shortcut)
    }
}

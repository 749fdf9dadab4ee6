//! A 2-D convolution layer with burn-nn's parameters and record, computed by [`crate::ops`].

use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

/// A 2-D convolution: the fields, names and record of `burn::nn::conv::Conv2d`, so checkpoints
/// and PyTorch imports load unchanged; `forward` runs on this crate's kernels on flex.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// `[channels_out, channels_in / groups, kernel_size_1, kernel_size_2]`
    pub weight: Param<Tensor<4>>,
    /// `[channels_out]`
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride of the convolution.
    pub stride: [usize; 2],
    /// Size of the kernel.
    pub kernel_size: [usize; 2],
    /// Spacing between kernel elements.
    pub dilation: [usize; 2],
    /// Controls the connections between input and output channels.
    pub groups: usize,
    /// The padding configuration.
    #[module(skip)]
    pub padding: PaddingConfig2d,
}

impl Conv2d {
    /// A layer initialised exactly as `config.init(device)` would initialise burn-nn's.
    pub fn init(config: &Conv2dConfig, device: &Device) -> Self {
        config.init(device).into()
    }

    /// The `ConvOptions` for an input of `height × width`, padding resolved as burn-nn does
    /// (`Same` pads the total `(⌈size/stride⌉ − 1)·stride + kernel − size`, the smaller half first).
    pub fn options(&self, height: usize, width: usize) -> ConvOptions<2> {
        let same = |k: usize, s: usize, size: usize| {
            let out = size.div_ceil(s);
            let total = if out > 0 {
                ((out - 1) * s + k).saturating_sub(size)
            } else {
                0
            };
            (total / 2, total - total / 2)
        };
        let padding = match self.padding {
            PaddingConfig2d::Valid => [(0, 0), (0, 0)],
            PaddingConfig2d::Same => [
                same(self.kernel_size[0], self.stride[0], height),
                same(self.kernel_size[1], self.stride[1], width),
            ],
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        };
        ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups)
    }

    /// Applies the convolution.
    ///
    /// # Shapes
    /// - input: `[batch, channels_in, height, width]`
    /// - output: `[batch, channels_out, height_out, width_out]`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        self.forward_with_weight(input, self.weight.val())
    }

    /// The convolution with another weight of the same shape (e.g. a weight-standardised one),
    /// keeping this layer's bias, stride and padding.
    ///
    /// # Shapes
    /// - input: `[batch, channels_in, height, width]`
    /// - weight: as [`Conv2d::weight`]
    pub fn forward_with_weight(&self, input: Tensor<4>, weight: Tensor<4>) -> Tensor<4> {
        let [_, _, height, width] = input.dims();
        let options = self.options(height, width);
        crate::ops::conv2d(input, weight, self.bias.as_ref().map(Param::val), options)
    }
}

impl From<burn::nn::conv::Conv2d> for Conv2d {
    fn from(c: burn::nn::conv::Conv2d) -> Self {
        Self {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

impl From<Conv2d> for burn::nn::conv::Conv2d {
    fn from(c: Conv2d) -> Self {
        Self {
            weight: c.weight,
            bias: c.bias,
            stride: c.stride,
            kernel_size: c.kernel_size,
            dilation: c.dilation,
            groups: c.groups,
            padding: c.padding,
        }
    }
}

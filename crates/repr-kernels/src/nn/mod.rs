//! Layers with burn-nn's parameters and records that run on this crate's kernels on flex (and
//! [`linear`], which runs burn-nn's own `Linear` on them).

mod batch_norm;
mod conv2d;
mod layer_norm;

pub use batch_norm::BatchNorm;
pub use conv2d::Conv2d;
pub use layer_norm::LayerNorm;

/// `layer.forward(input)` for burn-nn's `Linear` (its parameters, names and record unchanged),
/// computed by [`crate::ops::linear`]: on flex one GEMM over every row of the input, forward
/// and backward.
///
/// # Shapes
/// - input: `[..., d_in]`
/// - output: `[..., d_out]`
pub fn linear<const D: usize>(
    layer: &burn::nn::Linear,
    input: burn::tensor::Tensor<D>,
) -> burn::tensor::Tensor<D> {
    crate::ops::linear(
        input,
        layer.weight.val(),
        layer.bias.as_ref().map(burn::module::Param::val),
    )
}

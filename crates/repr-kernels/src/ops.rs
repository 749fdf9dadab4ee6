//! The functional ops: on flex, this crate's kernels; on every other device (and with
//! [`Kernels::Burn`](crate::Kernels::Burn)), Burn's own ops with the same semantics.

use burn::backend::Dispatch;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, activation};

use crate::backend::KernelBackend;
use crate::switch::uses_repr_kernels;

/// 2-D convolution (as `burn::tensor::module::conv2d`).
///
/// # Shapes
/// - `x`: `[batch, c_in, height, width]`
/// - `weight`: `[c_out, c_in / groups, kh, kw]`
/// - `bias`: `[c_out]`
/// - output: `[batch, c_out, height_out, width_out]`
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !uses_repr_kernels(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    Tensor::from_dispatch(match bias {
        Some(b) => <Dispatch as KernelBackend>::repr_conv2d_bias(
            x.into_dispatch(),
            weight.into_dispatch(),
            b.into_dispatch(),
            options,
        ),
        None => <Dispatch as KernelBackend>::repr_conv2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            options,
        ),
    })
}

/// `relu(a + b)` (a ResNet block's residual join), as `activation::relu(a + b)`; on flex one
/// pass forward and one backward, keeping only the output.
///
/// # Panics
/// If the shapes differ (no broadcasting).
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    assert_eq!(a.dims(), b.dims(), "add_relu: shapes differ");
    if !uses_repr_kernels(&a.device()) {
        return activation::relu(a + b);
    }
    Tensor::from_dispatch(<Dispatch as KernelBackend>::repr_add_relu(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// GELU (Hendrycks & Gimpel 2016), exact erf form, as `burn::tensor::activation::gelu`; on
/// flex split over threads and vectorised (Burn's flex GELU runs on one thread).
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !uses_repr_kernels(&x.device()) {
        return activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as KernelBackend>::repr_gelu(x.into_dispatch()))
}

/// Multi-head self-attention (Vaswani et al. 2017) on a packed `[q | k | v]` projection: head
/// `h` takes features `h·dim/heads .. (h+1)·dim/heads` of each part (PyTorch's
/// `nn.MultiheadAttention` split), `softmax(q_h k_hᵀ / √(dim/heads)) v_h`, heads concatenated.
/// On flex one fused kernel that reads the projection in place and keeps only the
/// probabilities for its backward; elsewhere `burn::tensor::module::attention` on the split
/// heads.
///
/// # Shapes
/// - `qkv`: `[batch, tokens, 3·dim]`
/// - output: `[batch, tokens, dim]`
///
/// # Panics
/// If `heads` does not divide `dim` or the last dimension is not a multiple of 3.
pub fn attention_packed(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [_, _, dim3] = qkv.dims();
    assert!(
        heads > 0 && dim3.is_multiple_of(3) && (dim3 / 3).is_multiple_of(heads),
        "attention: {heads} heads do not split a packed width of {dim3}"
    );
    if !uses_repr_kernels(&qkv.device()) {
        return Tensor::from_dispatch(crate::backend::burn_attention_packed::<Dispatch>(
            qkv.into_dispatch(),
            heads,
        ));
    }
    Tensor::from_dispatch(<Dispatch as KernelBackend>::repr_attention(
        qkv.into_dispatch(),
        heads,
    ))
}

/// A linear layer `x · weight + bias` over the last dimension, as
/// `burn::tensor::module::linear` (Burn's layout: `weight` is `[d_in, d_out]`, the transpose of
/// PyTorch's). On flex every leading dimension is merged into the rows of one GEMM, forward and
/// backward, the bias accumulated into the product; Burn's flex runs a `[batch, tokens, d_in]`
/// input as `batch` GEMMs of `tokens` rows when the merged product would not be squarer (the ViT's
/// `768 → 192` and `192 → 192` layers).
///
/// # Shapes
/// - `x`: `[..., d_in]`
/// - `weight`: `[d_in, d_out]`
/// - `bias`: `[d_out]`
/// - output: `[..., d_out]`
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    if D < 2 || !uses_repr_kernels(&x.device()) {
        return burn::tensor::module::linear(x, weight, bias);
    }
    let mut dims = x.dims();
    let [d_in, d_out] = weight.dims();
    assert_eq!(
        dims[D - 1],
        d_in,
        "linear: input features {dims:?} against a [{d_in}, {d_out}] weight"
    );
    let rows = dims[..D - 1].iter().product();
    let x = x.reshape([rows, d_in]).into_dispatch();
    let y = match bias {
        Some(b) => <Dispatch as KernelBackend>::repr_linear_bias(
            x,
            weight.into_dispatch(),
            b.into_dispatch(),
        ),
        None => <Dispatch as KernelBackend>::repr_linear(x, weight.into_dispatch()),
    };
    dims[D - 1] = d_out;
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// Layer norm (Ba et al. 2016) over the last dimension, as
/// `burn::tensor::module::layer_norm`; on flex one pass per row forward and backward.
///
/// # Shapes
/// - `x`: `[..., features]`
/// - `gamma`, `beta`: `[features]`
pub fn layer_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Option<Tensor<1>>,
    epsilon: f64,
) -> Tensor<D> {
    if !uses_repr_kernels(&x.device()) {
        return burn::tensor::module::layer_norm(x, gamma, beta, epsilon);
    }
    Tensor::from_dispatch(match beta {
        Some(beta) => <Dispatch as KernelBackend>::repr_layer_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
        ),
        None => <Dispatch as KernelBackend>::repr_layer_norm_no_shift(
            x.into_dispatch(),
            gamma.into_dispatch(),
            epsilon,
        ),
    })
}

/// What [`batch_norm_train`] returns.
#[derive(Debug, Clone)]
pub struct BatchNormTrainOutput<const D: usize> {
    /// The normalised (and, when asked, rectified) input.
    pub output: Tensor<D>,
    /// Per-channel batch mean (detached).
    pub mean: Tensor<1>,
    /// Per-channel biased batch variance (detached).
    pub variance: Tensor<1>,
}

/// Training-mode batch norm (Ioffe & Szegedy 2015) with the batch's own statistics, followed by
/// a ReLU when `relu` (one fused pass on flex).
///
/// # Shapes
/// - `x`: `[batch, channels, ...]`
/// - `gamma`, `beta`: `[channels]`
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    if !uses_repr_kernels(&x.device()) {
        let out = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
        let output = if relu {
            activation::relu(out.output)
        } else {
            out.output
        };
        return BatchNormTrainOutput {
            output,
            mean: out.mean,
            variance: out.variance,
        };
    }
    let (output, mean, variance) = <Dispatch as KernelBackend>::repr_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    BatchNormTrainOutput {
        output: Tensor::from_dispatch(output),
        mean: Tensor::from_dispatch(mean),
        variance: Tensor::from_dispatch(variance),
    }
}

/// Batch norm with given statistics (evaluation), then a ReLU when `relu`.
///
/// # Shapes
/// - `x`: `[batch, channels, ...]`
/// - `gamma`, `beta`, `mean`, `variance`: `[channels]`
pub fn batch_norm<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    mean: Tensor<1>,
    variance: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Tensor<D> {
    if !uses_repr_kernels(&x.device()) {
        let y = burn::tensor::module::batch_norm(x, gamma, beta, mean, variance, epsilon);
        return if relu { activation::relu(y) } else { y };
    }
    Tensor::from_dispatch(<Dispatch as KernelBackend>::repr_batch_norm(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        mean.into_dispatch(),
        variance.into_dispatch(),
        epsilon,
        relu,
    ))
}

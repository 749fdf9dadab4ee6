//! Our CPU kernels as a Burn backend extension: the [`KernelBackend`] trait, implemented for
//! flex (module `flex`) and for autodiff over flex with hand-written backward passes (module
//! `autodiff`).
//!
//! `#[backend_extension(Flex, Autodiff)]` generates the `Dispatch` routing; calling these ops on
//! any other backend would panic, so [`crate::ops`] only calls them for flex devices.

mod autodiff;
mod flex;

use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata, backend_extension};
use burn::tensor::ops::{AttentionModuleOptions, ConvOptions};
use burn::tensor::{Shape, Slice};

/// Burn's training-mode batch norm, then its ReLU when `relu`: what every backend without our
/// kernels runs (the trait's default, and flex's and autodiff's fallback for other dtypes).
fn burn_batch_norm_train<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    relu: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let out = <B as ModuleOps<B>>::batch_norm_train(x, gamma, beta, epsilon);
    let output = if relu {
        <B as ActivationOps<B>>::relu(out.output)
    } else {
        out.output
    };
    (output, out.mean, out.variance)
}

/// Burn's `relu(a + b)`: the trait's default, and flex's and autodiff's fallback.
fn burn_add_relu<B: Backend>(a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
    <B as ActivationOps<B>>::relu(B::float_add(a, b))
}

/// Burn's batch norm with given statistics, then its ReLU when `relu`.
fn burn_batch_norm<B: Backend>(
    x: FloatTensor<B>,
    [gamma, beta, mean, variance]: [FloatTensor<B>; 4],
    epsilon: f64,
    relu: bool,
) -> FloatTensor<B> {
    let y = <B as ModuleOps<B>>::batch_norm(x, gamma, beta, mean, variance, epsilon);
    if relu {
        <B as ActivationOps<B>>::relu(y)
    } else {
        y
    }
}

/// Burn's attention on a packed `[q | k | v]` projection `[batch, tokens, 3·dim]`: slice the
/// three parts, split them into `heads` heads, `burn::tensor::module::attention` (scale
/// `1/√head_dim`), merge the heads back: the context `[batch, tokens, dim]`.
pub(crate) fn burn_attention_packed<B: Backend>(
    qkv: FloatTensor<B>,
    heads: usize,
) -> FloatTensor<B> {
    let [batch, tokens, dim3] = qkv.shape().dims::<3>();
    let dim = dim3 / 3;
    let head_dim = dim / heads;
    let part = |i: usize| {
        let whole = |n: usize| Slice::new(0, Some(n as isize), 1);
        let cols = Slice::new((i * dim) as isize, Some(((i + 1) * dim) as isize), 1);
        let p = B::float_slice(qkv.clone(), &[whole(batch), whole(tokens), cols]);
        let p = B::float_reshape(p, Shape::new([batch, tokens, heads, head_dim]));
        B::float_swap_dims(p, 1, 2)
    };
    let (q, k, v) = (part(0), part(1), part(2));
    let context =
        <B as ModuleOps<B>>::attention(q, k, v, None, None, AttentionModuleOptions::default());
    B::float_reshape(
        B::float_swap_dims(context, 1, 2),
        Shape::new([batch, tokens, dim]),
    )
}

/// The ops `repr-kernels` replaces. The default bodies compose Burn's own primitives (what
/// `Autodiff<Flex>` inherits where it has no hand-written backward); flex overrides them with
/// the kernels of [`crate::cpu`].
#[backend_extension(Flex, Autodiff)]
pub trait KernelBackend: Backend {
    /// 2-D convolution without bias, as `burn::tensor::module::conv2d`. (With and without bias
    /// are two ops: the extension macro of Burn 0.22.1 does not map `Option` tensor arguments
    /// into the autodiff arm.)
    fn repr_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d(x, weight, None, options)
    }

    /// 2-D convolution with a bias.
    fn repr_conv2d_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::conv2d(x, weight, Some(bias), options)
    }

    /// `relu(a + b)` for tensors of one shape (a ResNet block's residual join).
    fn repr_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_add_relu::<Self>(a, b)
    }

    /// GELU, exact (erf) form, as `burn::tensor::activation::gelu`.
    fn repr_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// Multi-head self-attention on a packed `[q | k | v]` projection `[batch, tokens, 3·dim]`
    /// with `heads` heads and scale `1/√head_dim`: the context `[batch, tokens, dim]`, heads
    /// concatenated (as `burn_attention_packed`, the same computation in Burn's own ops).
    fn repr_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        burn_attention_packed::<Self>(qkv, heads)
    }

    /// Layer norm over the last dimension with a shift, as `burn::tensor::module::layer_norm`.
    fn repr_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::layer_norm(x, gamma, Some(beta), epsilon)
    }

    /// Layer norm over the last dimension without a shift.
    fn repr_layer_norm_no_shift(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::layer_norm(x, gamma, None, epsilon)
    }

    /// `x · weight` for a `[rows, d_in]` input and a `[d_in, d_out]` weight, as
    /// `burn::tensor::module::linear` without a bias.
    fn repr_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, weight, None)
    }

    /// `x · weight + bias`, the bias `[d_out]`.
    fn repr_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::linear(x, weight, Some(bias))
    }

    /// Training-mode batch norm, then a ReLU when `relu`: `(output, mean, biased variance)`.
    fn repr_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        burn_batch_norm_train::<Self>(x, gamma, beta, epsilon, relu)
    }

    /// Batch norm with given statistics (evaluation), then a ReLU when `relu`.
    #[allow(clippy::too_many_arguments)]
    fn repr_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        burn_batch_norm::<Self>(x, [gamma, beta, mean, variance], epsilon, relu)
    }
}

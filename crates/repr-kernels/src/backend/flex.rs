//! [`KernelBackend`] on flex: our kernels for f32, Burn's for everything they do not cover
//! (other dtypes, grouped convolutions).

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use super::{
    KernelBackend, burn_add_relu, burn_attention_packed, burn_batch_norm, burn_batch_norm_train,
};
use crate::cpu::attention::{self, AttentionShape};
use crate::cpu::batch_norm::{self, NormShape};
use crate::cpu::im2col::ConvShape;
use crate::cpu::linear::{self, LinearShape};
use crate::cpu::output::{assume_init_vec, uninit_vec, written};
use crate::cpu::{conv, eltwise, gelu, layer_norm};

type FlexTensor = FloatTensor<Flex>;

/// A contiguous copy (or the tensor itself when it already is one).
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("made contiguous f32 by `contiguous`")
}

fn tensor(data: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, dims.to_vec()))
}

fn dims4(t: &FlexTensor) -> Option<[usize; 4]> {
    let s = t.shape();
    (s.num_dims() == 4).then(|| s.dims::<4>())
}

/// The geometry of a convolution our kernels compute, or `None` for one they leave to Burn.
pub(super) fn conv_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<ConvShape> {
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || options.groups != 1 {
        return None;
    }
    ConvShape::new(
        dims4(x)?,
        dims4(weight)?,
        options.stride,
        options.padding,
        options.dilation,
    )
}

/// `(dx, dweight, dbias)` of a convolution, each when asked for.
pub(super) fn conv2d_backward(
    s: &ConvShape,
    x: FlexTensor,
    weight: FlexTensor,
    dy: FlexTensor,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let (x, weight, dy) = (contiguous(x), contiguous(weight), contiguous(dy));
    let mut dx = want[0].then(|| uninit_vec(s.batch * s.c_in * s.in_pixels()));
    let mut dw = want[1].then(|| vec![0.0; s.c_out * s.k()]);
    let mut db = want[2].then(|| vec![0.0; s.c_out]);
    conv::conv2d_backward(
        s,
        slice(&x),
        slice(&weight),
        slice(&dy),
        dx.as_deref_mut(),
        dw.as_deref_mut(),
        db.as_deref_mut(),
    );
    [
        // SAFETY: the backward wrote the whole input gradient.
        dx.map(|d| tensor(unsafe { assume_init_vec(d) }, &[s.batch, s.c_in, s.h, s.w])),
        dw.map(|d| tensor(d, &[s.c_out, s.c_in, s.kh, s.kw])),
        db.map(|d| tensor(d, &[s.c_out])),
    ]
}

/// Whether our batch-norm kernels take this input.
pub(super) fn norm_shape(x: &FlexTensor) -> Option<NormShape> {
    let s = x.shape();
    (x.dtype() == DType::F32 && s.num_dims() >= 2).then(|| NormShape::of(s.as_slice()))
}

/// `(dx, dgamma, dbeta)` of a training-mode batch norm (with its fused ReLU when `relu_beta`,
/// the forward's beta, is given).
#[allow(clippy::too_many_arguments)]
pub(super) fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    epsilon: f64,
    dy: FlexTensor,
    relu_beta: Option<FlexTensor>,
) -> [FlexTensor; 3] {
    let dims = x.shape().to_vec();
    let s = NormShape::of(&dims);
    let [x, gamma, mean, var, dy] = [x, gamma, mean, var, dy].map(contiguous);
    let relu_beta = relu_beta.map(contiguous);
    // SAFETY: the backward writes every element of `dx`.
    let (dx, (dgamma, dbeta)) = unsafe {
        written(x.shape().num_elements(), |dx| {
            batch_norm::batch_norm_train_backward(
                s,
                slice(&x),
                slice(&gamma),
                slice(&mean),
                slice(&var),
                epsilon,
                slice(&dy),
                relu_beta.as_ref().map(slice),
                dx,
            )
        })
    };
    let c = [s.channels];
    [tensor(dx, &dims), tensor(dgamma, &c), tensor(dbeta, &c)]
}

/// Our convolution forward, or Burn's where our kernels do not apply.
fn conv2d_forward(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    match conv_shape(&x, &weight, &options) {
        Some(s) => conv2d_shaped(&s, x, weight, bias),
        None => <Flex as ModuleOps<Flex>>::conv2d(x, weight, bias, options),
    }
}

/// Our convolution forward, for a geometry [`conv_shape`] accepted.
pub(super) fn conv2d_shaped(
    s: &ConvShape,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), bias.map(contiguous));
    // SAFETY: the forward writes every output element.
    let (y, ()) = unsafe {
        written(s.batch * s.c_out * s.pixels(), |y| {
            conv::conv2d_forward(s, slice(&x), slice(&weight), bias.as_ref().map(slice), y)
        })
    };
    tensor(y, &[s.batch, s.c_out, s.h_out, s.w_out])
}

/// Our GELU, or Burn's for dtypes other than f32.
pub(super) fn gelu_forward(x: FlexTensor) -> FlexTensor {
    if x.dtype() != DType::F32 {
        return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu(x);
    }
    let dims = x.shape().to_vec();
    let x = contiguous(x);
    // SAFETY: the kernel writes every element.
    let (y, ()) = unsafe {
        written(x.shape().num_elements(), |y| {
            gelu::gelu_forward(slice(&x), y)
        })
    };
    tensor(y, &dims)
}

/// The input gradient of GELU.
pub(super) fn gelu_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
    if x.dtype() != DType::F32 || dy.dtype() != DType::F32 {
        return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu_backward(x, dy);
    }
    let dims = x.shape().to_vec();
    let (x, dy) = (contiguous(x), contiguous(dy));
    // SAFETY: the kernel writes every element.
    let (dx, ()) = unsafe {
        written(x.shape().num_elements(), |dx| {
            gelu::gelu_backward(slice(&x), slice(&dy), dx)
        })
    };
    tensor(dx, &dims)
}

/// The geometry our attention kernel takes for a packed `qkv` of `heads` heads, or `None`
/// (another dtype or rank, or widths that do not split) for Burn's.
pub(super) fn attention_shape(qkv: &FlexTensor, heads: usize) -> Option<AttentionShape> {
    let s = qkv.shape();
    if qkv.dtype() != DType::F32 || s.num_dims() != 3 || heads == 0 {
        return None;
    }
    let [batch, tokens, dim3] = s.dims::<3>();
    if dim3 == 0 || !dim3.is_multiple_of(3 * heads) {
        return None;
    }
    let head_dim = dim3 / 3 / heads;
    Some(AttentionShape {
        batch,
        tokens,
        heads,
        head_dim,
        scale: (1.0 / (head_dim as f64).sqrt()) as f32,
    })
}

/// Our attention: `(context, the contiguous qkv, the probabilities)`.
pub(super) fn attention_forward(
    s: &AttentionShape,
    qkv: FlexTensor,
) -> (FlexTensor, FlexTensor, Vec<f32>) {
    let qkv = contiguous(qkv);
    let mut out = vec![0.0; s.out_len()];
    let mut probs = vec![0.0; s.probs_len()];
    attention::attention_forward(s, slice(&qkv), &mut out, &mut probs);
    let out = tensor(out, &[s.batch, s.tokens, s.dim()]);
    (out, qkv, probs)
}

/// The gradient of the packed projection.
pub(super) fn attention_backward(
    s: &AttentionShape,
    qkv: &FlexTensor,
    probs: &[f32],
    dout: FlexTensor,
) -> FlexTensor {
    let dout = contiguous(dout);
    let mut dqkv = vec![0.0; s.qkv_len()];
    attention::attention_backward(s, slice(qkv), probs, slice(&dout), &mut dqkv);
    tensor(dqkv, &[s.batch, s.tokens, 3 * s.dim()])
}

/// Whether our layer-norm kernel takes this input and these parameters.
pub(super) fn layer_norm_applies(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: Option<&FlexTensor>,
) -> bool {
    let (s, g) = (x.shape(), gamma.shape());
    let f32s = x.dtype() == DType::F32
        && gamma.dtype() == DType::F32
        && beta.is_none_or(|b| b.dtype() == DType::F32 && b.shape() == g);
    let (s, g) = (s.as_slice(), g.as_slice());
    f32s && g.len() == 1 && g[0] > 0 && s.last() == Some(&g[0])
}

/// Our layer norm: `(output, the contiguous input, each row's [mean, 1/σ])`.
pub(super) fn layer_norm_forward(
    x: FlexTensor,
    gamma: &FlexTensor,
    beta: Option<&FlexTensor>,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, Vec<f32>) {
    let dims = x.shape().to_vec();
    let x = contiguous(x);
    let gamma = contiguous(gamma.clone());
    let beta = beta.map(|b| contiguous(b.clone()));
    // SAFETY: the kernel writes every element.
    let (y, stats) = unsafe {
        written(x.shape().num_elements(), |y| {
            layer_norm::layer_norm_forward(
                slice(&x),
                slice(&gamma),
                beta.as_ref().map(slice),
                epsilon,
                y,
            )
        })
    };
    (tensor(y, &dims), x, stats)
}

/// `[dx, dgamma, dbeta]` of a layer norm.
pub(super) fn layer_norm_backward(
    x: &FlexTensor,
    gamma: FlexTensor,
    stats: &[f32],
    dy: FlexTensor,
) -> [FlexTensor; 3] {
    let (gamma, dy) = (contiguous(gamma), contiguous(dy));
    let (dx, dgamma, dbeta) =
        layer_norm::layer_norm_backward(slice(x), slice(&gamma), stats, slice(&dy));
    let width = [dgamma.len()];
    [
        tensor(dx, &x.shape().to_vec()),
        tensor(dgamma, &width),
        tensor(dbeta, &width),
    ]
}

/// The geometry of a linear layer our kernels compute (f32, a 2-D input, a `[d_in, d_out]`
/// weight, a `[d_out]` bias), or `None` for one they leave to Burn.
pub(super) fn linear_shape(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> Option<LinearShape> {
    let f32s = [Some(x), Some(weight), bias]
        .into_iter()
        .flatten()
        .all(|t| t.dtype() == DType::F32);
    let (xs, ws) = (x.shape(), weight.shape());
    let (xs, ws) = (xs.as_slice(), ws.as_slice());
    let &[rows, d_in] = xs else { return None };
    let &[w_in, d_out] = ws else { return None };
    let bias_fits = bias.is_none_or(|b| b.shape().as_slice() == [d_out]);
    (f32s && w_in == d_in && bias_fits).then_some(LinearShape { rows, d_in, d_out })
}

/// Our linear layer: `(output, the contiguous input, the contiguous weight)`.
pub(super) fn linear_forward(
    s: LinearShape,
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    // SAFETY: the kernel writes every element.
    let (y, ()) = unsafe {
        written(s.rows * s.d_out, |y| {
            linear::linear_forward(s, slice(&x), slice(&weight), bias.as_ref().map(slice), y)
        })
    };
    (tensor(y, &[s.rows, s.d_out]), x, weight)
}

/// The gradients `[dx, dweight, dbias]` of a linear layer that `want` asks for.
pub(super) fn linear_backward(
    s: LinearShape,
    x: &FlexTensor,
    weight: &FlexTensor,
    dy: FlexTensor,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let dy = contiguous(dy);
    let [dx, dw, db] = linear::linear_backward(s, slice(x), slice(weight), slice(&dy), want);
    [
        dx.map(|d| tensor(d, &[s.rows, s.d_in])),
        dw.map(|d| tensor(d, &[s.d_in, s.d_out])),
        db.map(|d| tensor(d, &[s.d_out])),
    ]
}

/// Whether our add + ReLU takes these inputs (f32, one shape; no broadcasting).
pub(super) fn add_relu_applies(a: &FlexTensor, b: &FlexTensor) -> bool {
    a.dtype() == DType::F32 && b.dtype() == DType::F32 && a.shape() == b.shape()
}

/// Our `relu(a + b)`.
pub(super) fn add_relu_forward(a: FlexTensor, b: FlexTensor) -> FlexTensor {
    let dims = a.shape().to_vec();
    let (a, b) = (contiguous(a), contiguous(b));
    // SAFETY: the kernel writes every element.
    let (y, ()) = unsafe {
        written(a.shape().num_elements(), |y| {
            eltwise::add_relu_forward(slice(&a), slice(&b), y)
        })
    };
    tensor(y, &dims)
}

/// The gradient of both inputs of `relu(a + b)` from its output `y`.
pub(super) fn add_relu_backward(y: &FlexTensor, dy: FlexTensor) -> FlexTensor {
    let dims = y.shape().to_vec();
    let dy = contiguous(dy);
    // SAFETY: the kernel writes every element.
    let (d, ()) = unsafe {
        written(dims.iter().product(), |d| {
            eltwise::relu_backward(slice(y), slice(&dy), d)
        })
    };
    tensor(d, &dims)
}

impl KernelBackend for Flex {
    fn repr_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        if !add_relu_applies(&a, &b) {
            return burn_add_relu::<Flex>(a, b);
        }
        add_relu_forward(a, b)
    }

    fn repr_attention(qkv: FlexTensor, heads: usize) -> FlexTensor {
        match attention_shape(&qkv, heads) {
            Some(s) => attention_forward(&s, qkv).0,
            None => burn_attention_packed::<Flex>(qkv, heads),
        }
    }

    fn repr_layer_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        if !layer_norm_applies(&x, &gamma, Some(&beta)) {
            return <Flex as ModuleOps<Flex>>::layer_norm(x, gamma, Some(beta), epsilon);
        }
        layer_norm_forward(x, &gamma, Some(&beta), epsilon).0
    }

    fn repr_layer_norm_no_shift(x: FlexTensor, gamma: FlexTensor, epsilon: f64) -> FlexTensor {
        if !layer_norm_applies(&x, &gamma, None) {
            return <Flex as ModuleOps<Flex>>::layer_norm(x, gamma, None, epsilon);
        }
        layer_norm_forward(x, &gamma, None, epsilon).0
    }

    fn repr_gelu(x: FlexTensor) -> FlexTensor {
        gelu_forward(x)
    }

    fn repr_linear(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        match linear_shape(&x, &weight, None) {
            Some(s) => linear_forward(s, x, weight, None).0,
            None => <Flex as ModuleOps<Flex>>::linear(x, weight, None),
        }
    }

    fn repr_linear_bias(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        match linear_shape(&x, &weight, Some(&bias)) {
            Some(s) => linear_forward(s, x, weight, Some(bias)).0,
            None => <Flex as ModuleOps<Flex>>::linear(x, weight, Some(bias)),
        }
    }

    fn repr_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv2d_forward(x, weight, None, options)
    }

    fn repr_conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d_forward(x, weight, Some(bias), options)
    }

    fn repr_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let Some(s) = norm_shape(&x) else {
            return burn_batch_norm_train::<Flex>(x, gamma, beta, epsilon, relu);
        };
        let dims = x.shape().to_vec();
        let [x, gamma, beta] = [x, gamma, beta].map(contiguous);
        // SAFETY: the forward writes every element of `y`.
        let (y, (mean, var)) = unsafe {
            written(x.shape().num_elements(), |y| {
                batch_norm::batch_norm_train_forward(
                    s,
                    slice(&x),
                    slice(&gamma),
                    slice(&beta),
                    epsilon,
                    relu,
                    y,
                )
            })
        };
        let c = [s.channels];
        (tensor(y, &dims), tensor(mean, &c), tensor(var, &c))
    }

    fn repr_batch_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> FlexTensor {
        let Some(s) = norm_shape(&x) else {
            return burn_batch_norm::<Flex>(x, [gamma, beta, mean, variance], epsilon, relu);
        };
        let dims = x.shape().to_vec();
        let [x, gamma, beta, mean, variance] = [x, gamma, beta, mean, variance].map(contiguous);
        // SAFETY: the kernel writes every element.
        let (y, ()) = unsafe {
            written(x.shape().num_elements(), |y| {
                batch_norm::batch_norm_apply(
                    s,
                    slice(&x),
                    slice(&gamma),
                    slice(&beta),
                    slice(&mean),
                    slice(&variance),
                    epsilon,
                    relu,
                    y,
                )
            })
        };
        tensor(y, &dims)
    }
}

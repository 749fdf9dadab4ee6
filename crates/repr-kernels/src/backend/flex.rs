//! [`KernelBackend`] on flex: our kernels for f32, Burn's for everything they do not cover
//! (other dtypes, grouped convolutions).

use burn::backend::Flex;
use burn::backend::TensorMetadata;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};

use super::{KernelBackend, burn_batch_norm, burn_batch_norm_train};
use crate::cpu::batch_norm::{self, NormShape};
use crate::cpu::im2col::ConvShape;
use crate::cpu::{conv, gelu};

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
    let mut dx = want[0].then(|| vec![0.0; s.batch * s.c_in * s.in_pixels()]);
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
        dx.map(|d| tensor(d, &[s.batch, s.c_in, s.h, s.w])),
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
    let mut dx = vec![0.0; x.shape().num_elements()];
    let (dgamma, dbeta) = batch_norm::batch_norm_train_backward(
        s,
        slice(&x),
        slice(&gamma),
        slice(&mean),
        slice(&var),
        epsilon,
        slice(&dy),
        relu_beta.as_ref().map(slice),
        &mut dx,
    );
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
    let mut y = vec![0.0; s.batch * s.c_out * s.pixels()];
    conv::conv2d_forward(
        s,
        slice(&x),
        slice(&weight),
        bias.as_ref().map(slice),
        &mut y,
    );
    tensor(y, &[s.batch, s.c_out, s.h_out, s.w_out])
}

/// Our GELU, or Burn's for dtypes other than f32.
pub(super) fn gelu_forward(x: FlexTensor) -> FlexTensor {
    if x.dtype() != DType::F32 {
        return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu(x);
    }
    let dims = x.shape().to_vec();
    let x = contiguous(x);
    let mut y = vec![0.0; x.shape().num_elements()];
    gelu::gelu_forward(slice(&x), &mut y);
    tensor(y, &dims)
}

/// The input gradient of GELU.
pub(super) fn gelu_backward(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
    if x.dtype() != DType::F32 || dy.dtype() != DType::F32 {
        return <Flex as burn::backend::ops::ActivationOps<Flex>>::gelu_backward(x, dy);
    }
    let dims = x.shape().to_vec();
    let (x, dy) = (contiguous(x), contiguous(dy));
    let mut dx = vec![0.0; x.shape().num_elements()];
    gelu::gelu_backward(slice(&x), slice(&dy), &mut dx);
    tensor(dx, &dims)
}

impl KernelBackend for Flex {
    fn repr_gelu(x: FlexTensor) -> FlexTensor {
        gelu_forward(x)
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
        let mut y = vec![0.0; x.shape().num_elements()];
        let (mean, var) = batch_norm::batch_norm_train_forward(
            s,
            slice(&x),
            slice(&gamma),
            slice(&beta),
            epsilon,
            relu,
            &mut y,
        );
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
        let mut y = vec![0.0; x.shape().num_elements()];
        batch_norm::batch_norm_apply(
            s,
            slice(&x),
            slice(&gamma),
            slice(&beta),
            slice(&mean),
            slice(&variance),
            epsilon,
            relu,
            &mut y,
        );
        tensor(y, &dims)
    }
}

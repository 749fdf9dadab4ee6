//! Fast CPU kernels for Burn's flex backend: 2-D convolution (forward, input gradient, and the
//! weight gradient as one GEMM over batch × pixels; a direct 3×3 convolution on AVX-512), batch
//! norm (training forward and backward, fused with ReLU), layer norm, multi-head attention from
//! a packed projection, and GELU, plugged in through Burn's backend extension
//! (`#[backend_extension(Flex, Autodiff)]`) with hand-written backward passes.
//!
//! Use the layers in [`nn`] (same parameters and records as burn-nn's `Conv2d`, `BatchNorm` and
//! `LayerNorm`)
//! or the functions in [`ops`]. On flex they run on [`cpu`]'s kernels; on every other device,
//! and when `REPR_KERNELS=burn` (or [`set_kernels`]`(Kernels::Burn)`), on Burn's own ops.
//!
//! ```
//! use burn::nn::conv::Conv2dConfig;
//! use burn::tensor::{Device, Tensor};
//! use repr_kernels::nn::Conv2d;
//!
//! let device = Device::flex().autodiff();
//! let conv = Conv2d::init(&Conv2dConfig::new([3, 8], [3, 3]), &device);
//! let x = Tensor::<4>::ones([2, 3, 16, 16], &device).require_grad();
//! let y = conv.forward(x.clone());
//! assert_eq!(y.dims(), [2, 8, 14, 14]);
//! let grads = y.sum().backward();
//! assert_eq!(x.grad(&grads).expect("x is tracked").dims(), [2, 3, 16, 16]);
//! ```
#![warn(missing_docs)]

pub mod backend;
pub mod cpu;
mod memory;
pub mod nn;
pub mod ops;
mod switch;

pub use cpu::batch_norm::{StatisticsSum, with_sync_batch_norm};
pub use memory::reuse_freed_memory;
pub use switch::{
    KERNELS_ENV, Kernels, KernelsEnvError, is_flex, kernels, set_kernels, uses_repr_kernels,
};

//! The CPU kernels on plain `f32` slices: no Burn types, so they are tested and benchmarked on
//! their own. [`crate::backend`] wraps them as flex ops.

pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod direct;
pub mod eltwise;
pub mod gelu;
pub mod gemm;
pub mod im2col;
pub mod layer_norm;
pub mod linear;
pub mod output;
mod parallel;
pub mod peak;
mod scratch;
mod vmath;

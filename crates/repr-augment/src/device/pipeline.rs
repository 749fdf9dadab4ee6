//! [`Compose`] and [`MultiView`] on a device batch.

use burn::tensor::Tensor;

use super::{PixelFormat, blur, check_batch, color, geometry};
use crate::op::{Op, OpParams};
use crate::{AugmentError, Compose, ComposeParams, CropBox, MultiView};

impl Compose {
    /// Applies each sample's `params[n]` (from [`Compose::sample`]) to a batch on its device.
    ///
    /// # Shapes
    /// `x`: `[N, C, H, W]` (the input dims) → `[N, C', H', W']` (the output dims).
    ///
    /// # Errors
    /// If `x` does not have the input dims or `params.len() != N`.
    pub fn apply_device(
        &self,
        x: Tensor<4>,
        params: &[&ComposeParams],
        format: PixelFormat,
    ) -> Result<Tensor<4>, AugmentError> {
        check_batch(&x, self.input_dims(), params.len())?;
        if let Some(p) = params.iter().find(|p| p.ops.len() != self.ops().len()) {
            return Err(AugmentError::LengthMismatch {
                field: "params.ops",
                expected: self.ops().len(),
                actual: p.ops.len(),
            });
        }
        let mut x = x;
        for (i, op) in self.ops().iter().enumerate() {
            let per_sample: Vec<Option<&OpParams>> =
                params.iter().map(|p| Some(&p.ops[i])).collect();
            x = apply_op(op, x, &per_sample, format);
        }
        Ok(x)
    }
}

impl MultiView {
    /// Applies every view to a batch on its device: `params[n]` holds image `n`'s parameters of
    /// every view (from [`MultiView::sample_image`]); returns one tensor per view.
    ///
    /// # Shapes
    /// `x`: `[N, C, H, W]` → `num_views` tensors `[N, C, H_v, W_v]`.
    ///
    /// # Errors
    /// If `x` does not have the input dims or `params` has the wrong number of entries.
    pub fn apply_device(
        &self,
        x: Tensor<4>,
        params: &[Vec<ComposeParams>],
        format: PixelFormat,
    ) -> Result<Vec<Tensor<4>>, AugmentError> {
        check_batch(&x, self.input_dims(), params.len())?;
        if let Some(p) = params.iter().find(|p| p.len() != self.num_views()) {
            return Err(AugmentError::LengthMismatch {
                field: "params (views per image)",
                expected: self.num_views(),
                actual: p.len(),
            });
        }
        self.views()
            .iter()
            .enumerate()
            .map(|(v, view)| {
                let view_params: Vec<&ComposeParams> = params.iter().map(|p| &p[v]).collect();
                view.apply_device(x.clone(), &view_params, format)
            })
            .collect()
    }
}

/// Applies one op; `None` marks a sample the op must leave unchanged (inside a `RandomApply`
/// that was not drawn).
fn apply_op(op: &Op, x: Tensor<4>, params: &[Option<&OpParams>], format: PixelFormat) -> Tensor<4> {
    let mismatch = |p: &OpParams| -> ! { panic!("params {p:?} do not belong to op {op:?}") };
    match op {
        Op::RandomResizedCrop(crop) => {
            let [_, _, h, w] = x.dims();
            // An untaken crop inside RandomApply keeps the size (checked at init): the whole image.
            let whole = CropBox {
                top: 0,
                left: 0,
                height: h,
                width: w,
            };
            let boxes: Vec<CropBox> = params
                .iter()
                .map(|p| match p {
                    Some(OpParams::Crop(b)) => *b,
                    None => whole,
                    Some(p) => mismatch(p),
                })
                .collect();
            let config = crop.config();
            geometry::resized_crop(x, &boxes, config.size, config.antialias, format)
        }
        Op::HorizontalFlip(_) => {
            let flags = flags(params, |p| match p {
                OpParams::Flip(f) => *f,
                p => mismatch(p),
            });
            geometry::horizontal_flip(x, &flags)
        }
        Op::ColorJitter(_) => {
            let jitter: Vec<_> = params
                .iter()
                .map(|p| match p {
                    Some(OpParams::Jitter(j)) => j.as_ref(),
                    None => None,
                    Some(p) => mismatch(p),
                })
                .collect();
            color::color_jitter(x, &jitter, format)
        }
        Op::Grayscale(_) => {
            let flags = flags(params, |p| match p {
                OpParams::Grayscale(f) => *f,
                p => mismatch(p),
            });
            color::grayscale(x, &flags, format)
        }
        Op::GaussianBlur(b) => {
            let sigmas: Vec<Option<f64>> = params
                .iter()
                .map(|p| match p {
                    Some(OpParams::Blur(s)) => *s,
                    None => None,
                    Some(p) => mismatch(p),
                })
                .collect();
            blur::gaussian_blur(x, b.config().kernel_size, &sigmas, format)
        }
        Op::Solarize(s) => {
            let flags = flags(params, |p| match p {
                OpParams::Solarize(f) => *f,
                p => mismatch(p),
            });
            color::solarize(x, s.config().threshold, &flags, format)
        }
        Op::RandomApply(group) => {
            let mut x = x;
            for (i, inner) in group.ops.iter().enumerate() {
                let inner_params: Vec<Option<&OpParams>> = params
                    .iter()
                    .map(|p| match p {
                        Some(OpParams::RandomApply(Some(list))) => Some(&list[i]),
                        Some(OpParams::RandomApply(None)) | None => None,
                        Some(p) => mismatch(p),
                    })
                    .collect();
                x = apply_op(inner, x, &inner_params, format);
            }
            x
        }
    }
}

fn flags(params: &[Option<&OpParams>], get: impl Fn(&OpParams) -> bool) -> Vec<bool> {
    params.iter().map(|p| p.is_some_and(&get)).collect()
}

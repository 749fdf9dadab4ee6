//! Batched colour ops with per-sample factors, following torchvision's kernels step by step.

use burn::tensor::{Bool, Tensor};

use super::{PixelFormat, per_sample, select};
use crate::{Adjustment, GRAY_WEIGHTS, JitterParams};

/// The factors of the samples that apply an op; the others get `identity`, which leaves them
/// unchanged exactly (`x * 1 + m * 0 == x`).
fn factors(values: &[Option<f64>], identity: f64) -> (Vec<f32>, Vec<f32>) {
    values
        .iter()
        .map(|v| {
            let f = v.unwrap_or(identity);
            (f as f32, (1.0 - f) as f32)
        })
        .unzip()
}

/// `(r * 0.2989 + g * 0.587) + b * 0.114`, `[N, 1, H, W]`, truncated for `U8` (torch floors the
/// luma of `uint8` images in contrast and saturation).
fn luma(x: &Tensor<4>) -> Tensor<4> {
    let r = x.clone().narrow(1, 0, 1);
    let g = x.clone().narrow(1, 1, 1);
    let b = x.clone().narrow(1, 2, 1);
    (r.mul_scalar(GRAY_WEIGHTS[0]) + g.mul_scalar(GRAY_WEIGHTS[1])) + b.mul_scalar(GRAY_WEIGHTS[2])
}

fn luma_for_blend(x: &Tensor<4>, format: PixelFormat) -> Tensor<4> {
    match format {
        PixelFormat::U8 => luma(x).floor(),
        PixelFormat::Unit => luma(x),
    }
}

/// `adjust_brightness`: `clamp(x * f)` per sample; `None` leaves a sample unchanged.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `factors.len() == N`.
pub fn adjust_brightness(x: Tensor<4>, factor: &[Option<f64>], format: PixelFormat) -> Tensor<4> {
    let (f, _) = factors(factor, 1.0);
    let f = per_sample(&f, &x.device());
    format.clamp_trunc(x * f)
}

/// `adjust_contrast`: blend with the per-sample mean of the luma (of the image itself for 1
/// channel); `None` leaves a sample unchanged.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `factors.len() == N`.
pub fn adjust_contrast(x: Tensor<4>, factor: &[Option<f64>], format: PixelFormat) -> Tensor<4> {
    let [_, c, h, w] = x.dims();
    let device = x.device();
    let gray = if c == 3 {
        luma_for_blend(&x, format)
    } else {
        x.clone()
    };
    // torch.mean: a sum (exact for u8 levels below 2^24) and one division.
    let mean = gray.sum_dims(&[1, 2, 3]).div_scalar((h * w) as f32); // [n, 1, 1, 1]
    let (f, g) = factors(factor, 1.0);
    let (f, g) = (per_sample(&f, &device), per_sample(&g, &device));
    format.clamp_trunc(x * f + mean * g)
}

/// `adjust_saturation`: blend each pixel with its luma; identity on 1 channel.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `factors.len() == N`.
pub fn adjust_saturation(x: Tensor<4>, factor: &[Option<f64>], format: PixelFormat) -> Tensor<4> {
    if x.dims()[1] != 3 {
        return x;
    }
    let device = x.device();
    let gray = luma_for_blend(&x, format);
    let (f, g) = factors(factor, 1.0);
    let (f, g) = (per_sample(&f, &device), per_sample(&g, &device));
    format.clamp_trunc(x * f + gray * g)
}

/// `adjust_hue`: torchvision's RGB → HSV, `(h + shift) mod 1`, HSV → RGB, per sample; for `U8`
/// on `x * (1/255)` and back with `trunc(v * 255.999)`. Identity on 1 channel; `None` leaves a
/// sample unchanged.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `shifts.len() == N`.
pub fn adjust_hue(x: Tensor<4>, shifts: &[Option<f64>], format: PixelFormat) -> Tensor<4> {
    if x.dims()[1] != 3 || shifts.iter().all(Option::is_none) {
        return x;
    }
    let device = x.device();
    let unit = match format {
        PixelFormat::U8 => x.clone().mul_scalar(1.0f32 / 255.0),
        PixelFormat::Unit => x.clone(),
    };
    let (shift, _) = factors(shifts, 0.0);
    let shift = per_sample(&shift, &device);
    let r = unit.clone().narrow(1, 0, 1);
    let g = unit.clone().narrow(1, 1, 1);
    let b = unit.narrow(1, 2, 1);
    let maxc = r.clone().max_pair(g.clone()).max_pair(b.clone());
    let minc = r.clone().min_pair(g.clone()).min_pair(b.clone());
    let eqc = maxc.clone().equal(minc.clone());
    let range = maxc.clone() - minc;
    let ones = maxc.ones_like();
    let s = range.clone()
        / ones
            .clone()
            .mask_where(eqc.clone().bool_not(), maxc.clone());
    let div = ones.mask_where(eqc.bool_not(), range);
    let rc = (maxc.clone() - r.clone()) / div.clone();
    let gc = (maxc.clone() - g.clone()) / div.clone();
    let bc = (maxc.clone() - b) / div;
    let hr = bc.clone() - gc.clone();
    let hg = rc.clone().add_scalar(2.0f32) - bc;
    let hb = gc.add_scalar(4.0f32) - rc;
    let is_r = maxc.clone().equal(r);
    let is_g = maxc.clone().equal(g);
    let h = hb.mask_where(is_g, hg).mask_where(is_r, hr);
    let h = frac(h.mul_scalar(1.0f32 / 6.0).add_scalar(1.0f32));
    let h = frac(h + shift);
    // HSV -> RGB.
    let v = maxc;
    let h6 = h.mul_scalar(6.0f32);
    let i = h6.clone().floor();
    let f = h6 - i.clone();
    let i = i
        .clone()
        .mask_where(i.clone().greater_equal_elem(6.0f32), i.sub_scalar(6.0f32));
    let sxf = s.clone() * f;
    let one_minus_s = s.neg().add_scalar(1.0f32);
    let q = (sxf.clone().neg().add_scalar(1.0f32) * v.clone()).clamp(0.0, 1.0);
    let t = ((sxf + one_minus_s.clone()) * v.clone()).clamp(0.0, 1.0);
    let p = (one_minus_s * v.clone()).clamp(0.0, 1.0);
    let sector = |k: f32| -> Tensor<4, Bool> { i.clone().equal_elem(k) };
    let pick = |choices: [&Tensor<4>; 6]| {
        let mut out = choices[0].clone();
        for (k, choice) in choices.iter().enumerate().skip(1) {
            out = out.mask_where(sector(k as f32), (*choice).clone());
        }
        out
    };
    let rgb = Tensor::cat(
        vec![
            pick([&v, &q, &p, &p, &t, &v]),
            pick([&t, &v, &v, &q, &p, &p]),
            pick([&p, &p, &t, &v, &v, &q]),
        ],
        1,
    );
    let rgb = match format {
        PixelFormat::U8 => rgb.mul_scalar(255.999f32).floor(),
        PixelFormat::Unit => rgb,
    };
    let flags: Vec<bool> = shifts.iter().map(Option::is_some).collect();
    select(x, rgb, &flags)
}

/// `x - floor(x)`: torch's `remainder(x, 1)` (and `fmod` for the positive values it gets).
fn frac(x: Tensor<4>) -> Tensor<4> {
    x.clone() - x.floor()
}

/// `ColorJitter` with each sample's own order and factors (`None`: not jittered): four steps,
/// each applying every adjustment to the samples whose order has it at that step.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `params.len() == N`.
pub fn color_jitter(
    mut x: Tensor<4>,
    params: &[Option<&JitterParams>],
    format: PixelFormat,
) -> Tensor<4> {
    for step in 0..4 {
        for adjustment in Adjustment::ALL {
            let factor: Vec<Option<f64>> = params
                .iter()
                .map(|p| {
                    p.and_then(|p| {
                        (p.order[step] == adjustment)
                            .then(|| p.factor(adjustment))
                            .flatten()
                    })
                })
                .collect();
            if factor.iter().all(Option::is_none) {
                continue;
            }
            x = match adjustment {
                Adjustment::Brightness => adjust_brightness(x, &factor, format),
                Adjustment::Contrast => adjust_contrast(x, &factor, format),
                Adjustment::Saturation => adjust_saturation(x, &factor, format),
                Adjustment::Hue => adjust_hue(x, &factor, format),
            };
        }
    }
    x
}

/// `rgb_to_grayscale(num_output_channels=3)` on the samples with `flags[n]` (truncated for `U8`);
/// identity on 1 channel.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `flags.len() == N`.
pub fn grayscale(x: Tensor<4>, flags: &[bool], format: PixelFormat) -> Tensor<4> {
    if x.dims()[1] != 3 || !flags.iter().any(|&f| f) {
        return x;
    }
    let gray = luma_for_blend(&x, format).repeat_dim(1, 3);
    select(x, gray, flags)
}

/// `solarize`: values `>= threshold * max` become `max - x`, on the samples with `flags[n]`.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → same; `flags.len() == N`.
pub fn solarize(x: Tensor<4>, threshold: f64, flags: &[bool], format: PixelFormat) -> Tensor<4> {
    if !flags.iter().any(|&f| f) {
        return x;
    }
    let max = format.max();
    let bound = match format {
        // An integer level v is inverted when v >= threshold * 255, i.e. v >= ceil(threshold * 255).
        PixelFormat::U8 => (threshold * 255.0).ceil() as f32,
        PixelFormat::Unit => threshold as f32,
    };
    let above = x.clone().greater_equal_elem(bound);
    let inverted = x.clone().mask_where(above, x.clone().neg().add_scalar(max));
    select(x, inverted, flags)
}

//! Colour adjustments on `u8` CHW images, bit-exact with torchvision's `uint8` tensor kernels
//! (`transforms.v2.functional.adjust_*`, `rgb_to_grayscale`, `solarize`): each computes in `f32`
//! exactly as torch does and converts back the way torch does (truncation for blends,
//! `trunc(v * 255.999)` after the float HSV round trip of `adjust_hue`).

/// torchvision's luma weights (tensor path): 0.2989, not ITU-R 601's 0.299.
pub const GRAY_WEIGHTS: [f32; 3] = [0.2989, 0.587, 0.114];

/// `(r * 0.2989 + g * 0.587) + b * 0.114` in `f32`, the order torch evaluates it in.
#[inline]
pub(crate) fn gray_f32(r: f32, g: f32, b: f32) -> f32 {
    (r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1]) + b * GRAY_WEIGHTS[2]
}

/// The truncated luma of every pixel of an RGB image (the `floor` torch applies for `u8` input).
fn gray_floor(image: &[u8], plane: usize, out: &mut Vec<u8>) {
    let (r, rest) = image.split_at(plane);
    let (g, b) = rest.split_at(plane);
    out.clear();
    out.extend(
        r.iter()
            .zip(g)
            .zip(b)
            .map(|((&r, &g), &b)| gray_f32(r as f32, g as f32, b as f32) as u8),
    );
}

fn map_lut(image: &mut [u8], lut: &[u8; 256]) {
    for v in image.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `trunc(clamp(v, 0, 255))`, torch's float -> `u8` cast after a clamped blend.
#[inline]
fn trunc_u8(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// `adjust_brightness(factor)`: `trunc(clamp(x * factor, 0, 255))`.
pub fn adjust_brightness(image: &mut [u8], factor: f64) {
    let f = factor as f32;
    let lut: [u8; 256] = std::array::from_fn(|v| trunc_u8(v as f32 * f));
    map_lut(image, &lut);
}

/// `adjust_contrast(factor)`: blend with the mean of the (truncated) luma, one scalar per image.
pub fn adjust_contrast(image: &mut [u8], channels: usize, factor: f64, scratch: &mut Vec<u8>) {
    let plane = image.len() / channels;
    let sum: u64 = if channels == 3 {
        gray_floor(image, plane, scratch);
        scratch.iter().map(|&v| v as u64).sum()
    } else {
        image.iter().map(|&v| v as u64).sum()
    };
    // torch.mean in f32: the sum of integers is exact below 2^24, then one division.
    let mean = sum as f32 / plane as f32;
    let (f, g) = (factor as f32, (1.0 - factor) as f32);
    let other = mean * g;
    let lut: [u8; 256] = std::array::from_fn(|v| trunc_u8(v as f32 * f + other));
    map_lut(image, &lut);
}

/// `adjust_saturation(factor)`: blend each pixel with its (truncated) luma; identity on 1 channel.
pub fn adjust_saturation(image: &mut [u8], channels: usize, factor: f64, scratch: &mut Vec<u8>) {
    if channels != 3 {
        return;
    }
    let plane = image.len() / 3;
    gray_floor(image, plane, scratch);
    let (f, g) = (factor as f32, (1.0 - factor) as f32);
    let scaled: [f32; 256] = std::array::from_fn(|v| v as f32 * f);
    let gray: [f32; 256] = std::array::from_fn(|v| v as f32 * g);
    for channel in image.chunks_exact_mut(plane) {
        for (v, &l) in channel.iter_mut().zip(scratch.iter()) {
            *v = trunc_u8(scaled[*v as usize] + gray[l as usize]);
        }
    }
}

/// torchvision's `_rgb_to_hsv`, `(h + shift) mod 1` and `_hsv_to_rgb` for one pixel in `[0, 1]`,
/// in `f32` with torch's order of operations.
#[inline]
pub(crate) fn hue_shift_pixel(r: f32, g: f32, b: f32, shift: f32) -> [f32; 3] {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let range = maxc - minc;
    let s = range / if eqc { 1.0 } else { maxc };
    let div = if eqc { 1.0 } else { range };
    let rc = (maxc - r) / div;
    let gc = (maxc - g) / div;
    let bc = (maxc - b) / div;
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        rc + 2.0 - bc
    } else {
        gc + 4.0 - rc
    };
    let h = (h * (1.0f32 / 6.0) + 1.0) % 1.0;
    // torch.remainder: the result takes the divisor's sign.
    let mut h = (h + shift) % 1.0;
    if h < 0.0 {
        h += 1.0;
    }
    let v = maxc;
    let h6 = h * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let sxf = s * f;
    let one_minus_s = 1.0 - s;
    let q = ((1.0 - sxf) * v).clamp(0.0, 1.0);
    let t = ((sxf + one_minus_s) * v).clamp(0.0, 1.0);
    let p = (one_minus_s * v).clamp(0.0, 1.0);
    match (i as i32).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// `adjust_hue(shift)`, `shift` in `[-0.5, 0.5]`: the float HSV round trip on `x * (1/255)`, back
/// with `trunc(v * 255.999)`; identity on 1 channel.
pub fn adjust_hue(image: &mut [u8], channels: usize, shift: f64) {
    if channels != 3 {
        return;
    }
    let plane = image.len() / 3;
    let shift = shift as f32;
    let to_unit: [f32; 256] = std::array::from_fn(|v| v as f32 * (1.0f32 / 255.0));
    let (r, rest) = image.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let [nr, ng, nb] = hue_shift_pixel(
            to_unit[*r as usize],
            to_unit[*g as usize],
            to_unit[*b as usize],
            shift,
        );
        *r = (nr * 255.999) as u8;
        *g = (ng * 255.999) as u8;
        *b = (nb * 255.999) as u8;
    }
}

/// `rgb_to_grayscale(num_output_channels=3)`: the truncated luma in every channel; identity on 1
/// channel.
pub fn to_grayscale(image: &mut [u8], channels: usize) {
    if channels != 3 {
        return;
    }
    let plane = image.len() / 3;
    let (r, rest) = image.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let l = gray_f32(*r as f32, *g as f32, *b as f32) as u8;
        (*r, *g, *b) = (l, l, l);
    }
}

/// `solarize(threshold)`: `x >= threshold ? 255 - x : x`, the threshold as a fraction of 255
/// (0.5 is torchvision's `uint8` threshold 128).
pub fn solarize(image: &mut [u8], threshold: f64) {
    let lut: [u8; 256] = std::array::from_fn(|v| {
        if v as f64 >= threshold * 255.0 {
            255 - v as u8
        } else {
            v as u8
        }
    });
    map_lut(image, &lut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hue_shift_of_zero_keeps_pure_colours() {
        // Up to f32 noise of the HSV round trip (torchvision's too: 2 * (1/6) + 1 is inexact).
        let close = |a: [f32; 3], b: [f32; 3]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6);
        for rgb in [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.5, 0.5, 0.5],
        ] {
            let out = hue_shift_pixel(rgb[0], rgb[1], rgb[2], 0.0);
            assert!(close(out, rgb), "{rgb:?} -> {out:?}");
        }
        // Red shifted by a third of the circle is green.
        let out = hue_shift_pixel(1.0, 0.0, 0.0, 1.0 / 3.0);
        assert!(close(out, [0.0, 1.0, 0.0]), "{out:?}");
    }

    #[test]
    fn grayscale_and_solarize_on_known_pixels() {
        let mut image = vec![255, 0, 0, 255, 0, 0];
        to_grayscale(&mut image, 3);
        // 255 * 0.2989 = 76.2, 255 * 0.587 = 149.7.
        assert_eq!(image, vec![76, 149, 76, 149, 76, 149]);
        let mut image = vec![0, 127, 128, 255];
        solarize(&mut image, 0.5);
        assert_eq!(image, vec![0, 127, 127, 0]);
    }
}

//! Decoded images of any colour mode to 8-bit RGB or grey, as PIL's `Image.convert("RGB")` and
//! `Image.convert("L")` make them (the conversions of torchvision's image loader), so that a
//! model sees the same pixels here as in a PyTorch pipeline:
//!
//! - alpha is dropped, not composited over a background;
//! - 16-bit samples keep their high byte (PIL's reading of 16-bit RGB(A) and grey + alpha; for
//!   16-bit grey PIL clips every value above 255 instead, which turns a 16-bit image white, and
//!   this module keeps the high byte there too);
//! - grey is replicated to RGB; RGB to grey is ITU-R 601-2 luma in PIL's fixed point.
//!
//! Palette and low-bit-depth PNGs reach this module already expanded by the decoder.

use image::{DynamicImage, GrayImage, RgbImage};

/// Interleaved RGB pixels (HWC) as channel-first planes (CHW) in `out`, which holds as many
/// bytes as `rgb`.
pub fn rgb_to_chw(rgb: &[u8], out: &mut [u8]) {
    let plane = rgb.len() / 3;
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        out[i] = px[0];
        out[plane + i] = px[1];
        out[2 * plane + i] = px[2];
    }
}

/// `image` as 8-bit RGB; moved, not copied, when it already is.
pub fn into_rgb8(image: DynamicImage) -> RgbImage {
    let (width, height) = (image.width(), image.height());
    let rgb = |samples: Vec<u8>| {
        RgbImage::from_raw(width, height, samples).expect("three samples per pixel")
    };
    match image {
        DynamicImage::ImageRgb8(rgb8) => rgb8,
        DynamicImage::ImageLuma8(grey) => rgb(to_rgb(grey.as_raw(), 1, |v| v)),
        DynamicImage::ImageLumaA8(grey) => rgb(to_rgb(grey.as_raw(), 2, |v| v)),
        DynamicImage::ImageRgba8(rgba) => rgb(to_rgb(rgba.as_raw(), 4, |v| v)),
        DynamicImage::ImageLuma16(grey) => rgb(to_rgb(grey.as_raw(), 1, high_byte)),
        DynamicImage::ImageLumaA16(grey) => rgb(to_rgb(grey.as_raw(), 2, high_byte)),
        DynamicImage::ImageRgb16(rgb16) => rgb(to_rgb(rgb16.as_raw(), 3, high_byte)),
        DynamicImage::ImageRgba16(rgba) => rgb(to_rgb(rgba.as_raw(), 4, high_byte)),
        // Float images (no decoder enabled here produces them): `image` clamps to [0, 1] and
        // scales.
        other => other.into_rgb8(),
    }
}

/// `image` as 8-bit grey; moved, not copied, when it already is.
pub fn into_luma8(image: DynamicImage) -> GrayImage {
    let (width, height) = (image.width(), image.height());
    let grey = |samples: Vec<u8>| {
        GrayImage::from_raw(width, height, samples).expect("one sample per pixel")
    };
    match image {
        DynamicImage::ImageLuma8(grey8) => grey8,
        DynamicImage::ImageLumaA8(la) => grey(first_of(la.as_raw(), 2, |v| v)),
        DynamicImage::ImageLuma16(grey16) => grey(first_of(grey16.as_raw(), 1, high_byte)),
        DynamicImage::ImageLumaA16(la) => grey(first_of(la.as_raw(), 2, high_byte)),
        colour => {
            let rgb = into_rgb8(colour);
            grey(
                rgb.as_raw()
                    .chunks_exact(3)
                    .map(|p| luma(p[0], p[1], p[2]))
                    .collect(),
            )
        }
    }
}

/// PIL's `L = R * 299/1000 + G * 587/1000 + B * 114/1000`, in its 16-bit fixed point with
/// rounding (`(R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`), which is what its "L"
/// conversion returns (the decimal formula floored differs in about half the colours).
fn luma(r: u8, g: u8, b: u8) -> u8 {
    let l = (u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16;
    l as u8 // the weights sum to 65536: at most 255
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// Interleaved RGB from `samples` of `n` channels per pixel (1, 2: grey and alpha; 3, 4: RGB
/// and alpha), each mapped by `to_u8`; alpha is dropped.
fn to_rgb<T: Copy>(samples: &[T], n: usize, to_u8: impl Fn(T) -> u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() / n * 3);
    for px in samples.chunks_exact(n) {
        if n < 3 {
            let v = to_u8(px[0]);
            out.extend_from_slice(&[v, v, v]);
        } else {
            out.extend_from_slice(&[to_u8(px[0]), to_u8(px[1]), to_u8(px[2])]);
        }
    }
    out
}

/// The first of every `n` samples, mapped by `to_u8`.
fn first_of<T: Copy>(samples: &[T], n: usize, to_u8: impl Fn(T) -> u8) -> Vec<u8> {
    samples.chunks_exact(n).map(|px| to_u8(px[0])).collect()
}

#[cfg(test)]
mod tests {
    use image::{ImageBuffer, Luma, LumaA, Rgb, Rgba};

    use super::*;

    #[test]
    fn luma_is_pil_fixed_point() {
        // PIL 13.0.0: Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)).
        for (rgb, l) in [
            ([13, 114, 215], 95),
            ([80, 181, 26], 133),
            ([214, 59, 160], 117),
            ([255, 255, 255], 255),
            ([0, 0, 0], 0),
            ([1, 2, 3], 2),
        ] {
            assert_eq!(luma(rgb[0], rgb[1], rgb[2]), l, "{rgb:?}");
        }
    }

    #[test]
    fn alpha_is_dropped_and_sixteen_bits_keep_their_high_byte() {
        let rgba16 = ImageBuffer::from_pixel(1, 1, Rgba([0x12ff_u16, 0xff00, 0x80ff, 0]));
        let rgb = into_rgb8(DynamicImage::ImageRgba16(rgba16));
        assert_eq!(rgb.as_raw(), &[0x12, 0xff, 0x80]);

        let la = ImageBuffer::from_pixel(1, 1, LumaA([200_u8, 3]));
        assert_eq!(
            into_rgb8(DynamicImage::ImageLumaA8(la.clone())).as_raw(),
            &[200; 3]
        );
        assert_eq!(into_luma8(DynamicImage::ImageLumaA8(la)).as_raw(), &[200]);

        let grey16 = ImageBuffer::from_pixel(1, 1, Luma([0xfe80_u16]));
        assert_eq!(
            into_luma8(DynamicImage::ImageLuma16(grey16)).as_raw(),
            &[0xfe]
        );
    }

    #[test]
    fn images_of_the_target_type_are_moved() {
        let rgb = ImageBuffer::from_pixel(2, 2, Rgb([1_u8, 2, 3]));
        let before = rgb.as_raw().as_ptr();
        assert_eq!(
            into_rgb8(DynamicImage::ImageRgb8(rgb)).as_raw().as_ptr(),
            before
        );
        let grey = ImageBuffer::from_pixel(2, 2, Luma([9_u8]));
        let before = grey.as_raw().as_ptr();
        assert_eq!(
            into_luma8(DynamicImage::ImageLuma8(grey)).as_raw().as_ptr(),
            before
        );
    }
}

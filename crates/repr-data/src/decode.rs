//! Decoding one image file under a pixel limit: the size is read from the header and checked
//! before any pixel buffer exists, and the decoder itself is bounded by the same limit, so
//! neither a huge real image nor a forged header makes a reader allocate more than the limit
//! allows.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek, SeekFrom};
use std::path::Path;

use image::imageops::{self, FilterType};
use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, Pixel,
};

use crate::DataError;
use crate::colour::{into_luma8, into_rgb8, rgb_to_chw};
use crate::header::declared_size_from;

/// The default of the most pixels (width × height) an image file may declare: 64 megapixels,
/// an 8000 × 8000 photo. Larger images are refused from their header
/// ([`DataError::ImageTooLarge`]) before anything is decoded; `data.max_image_pixels` in a
/// training config, `--max-image-pixels` on the command line and
/// [`crate::LoadOptions::max_image_pixels`] change it.
///
/// # Memory per decoding thread
/// An image of `P` pixels is decoded whole, then converted and resized. While one image is
/// read, a thread holds:
/// - the decoded pixels: `P × b` bytes, `b` = 1 (grey), 2 (grey + alpha), 3 (RGB), 4 (RGBA),
///   twice that for 16-bit samples;
/// - the 8-bit copy the model's channels need, `P × 3` (RGB) or `P` (grey) bytes, unless the
///   decoded image already has that layout (then it is moved, not copied);
/// - the resize's intermediate, `source width × target height × 16` bytes (6 MB for a
///   12,000-pixel-wide photo resized to 32 rows);
/// - for a JPEG, the file itself, and for a progressive JPEG also its coefficients, about
///   2 bytes per pixel and colour component.
///
/// At the default limit an 8-bit RGB photo takes at most 192 MB (`64 M × 3`), an RGBA PNG
/// 448 MB (`64 M × (4 + 3)`), a 16-bit RGBA PNG 704 MB (`64 M × (8 + 3)`). The decoder may
/// allocate at most `8 × max_image_pixels` bytes (the widest pixel, 16-bit RGBA), so a header
/// that lies about its contents cannot make it allocate more. Image folders are decoded by one
/// thread per core, so the peak is this budget times the number of cores: lower the limit on a
/// machine with many cores and little memory.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 64_000_000;

/// The extensions (case-insensitive) of the image files the readers take: what the `image`
/// features of this crate decode.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Whether `path`'s extension is one of [`IMAGE_EXTENSIONS`], in any case.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The widest decoded pixel, 16-bit RGBA, in bytes.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Decodes `path`, converts it to `channels` (1: grey, 3: RGB, as PIL's `convert("L")` and
/// `convert("RGB")`), resizes it to `(height, width)` with bilinear filtering and writes it
/// channel-first into `out` (`channels × height × width` bytes).
///
/// # Errors
/// [`DataError::ImageTooLarge`] for an image of more than `max_pixels` pixels,
/// [`DataError::BadImage`] for one the decoder refuses, [`DataError::Io`].
pub fn decode_into(
    path: &Path,
    channels: usize,
    (height, width): (usize, usize),
    max_pixels: u64,
    out: &mut [u8],
) -> Result<(), DataError> {
    let image = decode_image(path, max_pixels)?;
    let (w, h) = (width as u32, height as u32);
    if channels == 1 {
        out.copy_from_slice(resize_bilinear(into_luma8(image), w, h).as_raw());
    } else {
        rgb_to_chw(resize_bilinear(into_rgb8(image), w, h).as_raw(), out);
    }
    Ok(())
}

/// Decodes `path` (PNG or JPEG, whatever its extension says) unless its header declares more
/// than `max_pixels` pixels ([`DEFAULT_MAX_IMAGE_PIXELS`] describes the memory this takes).
/// [`crate::into_rgb8`] and [`crate::into_luma8`] then give the pixels PIL's conversions give.
///
/// # Errors
/// [`DataError::ImageTooLarge`] for an image of more than `max_pixels` pixels,
/// [`DataError::BadImage`] for one the decoder refuses, [`DataError::Io`].
pub fn decode_image(path: &Path, max_pixels: u64) -> Result<DynamicImage, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    decode_from(BufReader::new(file), path, max_pixels)
}

/// [`decode_image`] of an image held in memory (an upload, an archive member): the format is
/// told by the content alone; errors name the image `name`.
///
/// # Errors
/// As [`decode_image`].
pub fn decode_image_bytes(
    bytes: &[u8],
    name: &Path,
    max_pixels: u64,
) -> Result<DynamicImage, DataError> {
    decode_from(Cursor::new(bytes), name, max_pixels)
}

/// Decodes the image `reader` holds, named `path` in errors (its extension, if any, is the
/// format's hint when the content does not tell it).
fn decode_from(
    mut reader: impl BufRead + Seek,
    path: &Path,
    max_pixels: u64,
) -> Result<DynamicImage, DataError> {
    let io_err = |e| DataError::io(path, e);
    let bad = |e: ImageError| DataError::BadImage {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    // The size the header declares, checked before a decoder reads anything.
    if let Some((width, height)) = declared_size_from(&mut reader).map_err(io_err)? {
        check_size(path, width, height, max_pixels)?;
    }
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    // The decoder is bounded in bytes while it reads the header, and in size after the check
    // of the size it read (which covers a header the check above did not understand): a size
    // over the limit is reported by `check_size`, which names it, not by the decoder.
    let mut limits = Limits::no_limits();
    limits.max_alloc = Some(max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL));
    let mut reader = ImageReader::new(reader);
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let mut reader = reader.with_guessed_format().map_err(io_err)?;
    reader.limits(limits.clone());
    let mut decoder = reader.into_decoder().map_err(bad)?;
    let (width, height) = decoder.dimensions();
    check_size(path, width, height, max_pixels)?;
    let side = u32::try_from(max_pixels).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    decoder.set_limits(limits.clone()).map_err(bad)?;
    limits.reserve(decoder.total_bytes()).map_err(bad)?;
    DynamicImage::from_decoder(decoder).map_err(bad)
}

/// [`DataError::ImageTooLarge`] when `width × height` is over `max_pixels`.
fn check_size(path: &Path, width: u32, height: u32, max_pixels: u64) -> Result<(), DataError> {
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(DataError::ImageTooLarge {
            path: path.to_path_buf(),
            width,
            height,
            limit: max_pixels,
        });
    }
    Ok(())
}

/// `image` resized to `width × height` with bilinear filtering, antialiased when shrinking (as
/// PIL's `BILINEAR`); an image already of that size is returned untouched.
pub fn resize_bilinear<P>(
    image: ImageBuffer<P, Vec<u8>>,
    width: u32,
    height: u32,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if image.dimensions() == (width, height) {
        image
    } else {
        imageops::resize(&image, width, height, FilterType::Triangle)
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgb, RgbImage};

    use super::*;

    #[test]
    fn rgb_is_written_channel_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("px.png");
        let mut img = RgbImage::new(2, 1);
        img.put_pixel(0, 0, Rgb([10, 20, 30]));
        img.put_pixel(1, 0, Rgb([40, 50, 60]));
        img.save(&path).unwrap();
        let mut out = [0u8; 6];
        decode_into(&path, 3, (1, 2), DEFAULT_MAX_IMAGE_PIXELS, &mut out).unwrap();
        assert_eq!(out, [10, 40, 20, 50, 30, 60]);
    }

    #[test]
    fn bytes_decode_as_the_file_does_and_errors_name_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("3x2.png");
        let image = RgbImage::from_fn(3, 2, |x, y| Rgb([x as u8 * 40, y as u8 * 90, 7]));
        image.save(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let name = Path::new("upload");
        let from_bytes = decode_image_bytes(&bytes, name, 6).unwrap();
        assert_eq!(into_rgb8(from_bytes), image);
        let err = decode_image_bytes(&bytes, name, 5).unwrap_err();
        assert!(matches!(err, DataError::ImageTooLarge { .. }), "{err}");
        let err = decode_image_bytes(b"not an image", name, 6).unwrap_err();
        assert!(
            matches!(&err, DataError::BadImage { path, .. } if path == name),
            "{err}"
        );
    }

    #[test]
    fn an_image_at_the_limit_is_read_and_one_pixel_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("6x4.png");
        RgbImage::from_pixel(6, 4, Rgb([1, 2, 3]))
            .save(&path)
            .unwrap();
        assert_eq!(decode_image(&path, 24).unwrap().width(), 6);
        let err = decode_image(&path, 23).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::ImageTooLarge {
                    width: 6,
                    height: 4,
                    limit: 23,
                    ..
                }
            ),
            "{err}"
        );
    }
}

//! How an image file becomes the input of an encoder: decoded under a pixel limit, converted to
//! grey or RGB as PIL converts, sized, and normalised per channel.

use std::path::Path;

use image::imageops;
use image::{DynamicImage, ImageBuffer, Pixel};
use repr_data::{
    DataError, Normalize, decode_image, decode_image_bytes, into_luma8, into_rgb8, resize_bilinear,
    rgb_to_chw,
};
use serde::{Deserialize, Serialize};

use crate::SearchError;

/// The preprocessing of an image before the encoder sees it. It is part of an index's
/// [`crate::ModelIdentity`]: vectors made with another preprocessing are not comparable.
///
/// The default is torchvision's ImageNet evaluation transform: RGB, the shorter side resized
/// to 256, the centre 224 × 224 crop, ImageNet's mean and standard deviation.
///
/// In TOML:
/// ```toml
/// channels = 1
/// size = { resize = { height = 28, width = 28 } }
/// normalize = { mean = [0.286], std = [0.353] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Preprocess {
    /// 1 (grey, PIL's `convert("L")`) or 3 (RGB, PIL's `convert("RGB")`).
    pub channels: usize,
    /// How the image is brought to the encoder's input size.
    pub size: Sizing,
    /// Per channel, `(v / 255 - mean) / std`.
    pub normalize: Normalize,
}

/// How an image is brought to the encoder's input size; both resize with bilinear filtering,
/// antialiased when shrinking (as PIL, which torchvision uses for PIL images).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Sizing {
    /// Resize to exactly `height × width`, whatever the aspect ratio (an image already of
    /// that size is left untouched): what a model trained on a fixed-size dataset such as
    /// Fashion-MNIST expects.
    Resize {
        /// Output height in pixels.
        height: usize,
        /// Output width in pixels.
        width: usize,
    },
    /// torchvision's evaluation transform `Resize(resize_shorter)` then `CenterCrop(crop)`:
    /// the shorter side to `resize_shorter` keeping the aspect ratio (the longer side
    /// truncated, as torchvision computes it), then the centre `crop × crop` square.
    ResizeCrop {
        /// The length of the shorter side after resizing.
        resize_shorter: usize,
        /// The side of the square cut from the centre (at most `resize_shorter`).
        crop: usize,
    },
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            channels: 3,
            size: Sizing::ResizeCrop {
                resize_shorter: 256,
                crop: 224,
            },
            normalize: Normalize {
                mean: vec![0.485, 0.456, 0.406],
                std: vec![0.229, 0.224, 0.225],
            },
        }
    }
}

impl Preprocess {
    /// The shape of one preprocessed image, `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        match self.size {
            Sizing::Resize { height, width } => [self.channels, height, width],
            Sizing::ResizeCrop { crop, .. } => [self.channels, crop, crop],
        }
    }

    /// Checks every field; the error names the first impossible one
    /// (`preprocess.size.crop`, `preprocess.normalize.std[2]`, ...).
    ///
    /// # Errors
    /// [`SearchError::InvalidInput`].
    pub fn check(&self) -> Result<(), SearchError> {
        let invalid = |field: &str, message: String| {
            Err(SearchError::invalid(format!("preprocess.{field}"), message))
        };
        if self.channels != 1 && self.channels != 3 {
            return invalid("channels", format!("{} (must be 1 or 3)", self.channels));
        }
        match self.size {
            Sizing::Resize { height, width } if height == 0 || width == 0 => {
                return invalid(
                    "size.resize",
                    format!("{height} × {width}: both sides must be at least 1"),
                );
            }
            Sizing::ResizeCrop {
                resize_shorter,
                crop,
            } if crop == 0 || crop > resize_shorter => {
                return invalid(
                    "size.resize_crop.crop",
                    format!("{crop}: must be from 1 to resize_shorter ({resize_shorter})"),
                );
            }
            _ => {}
        }
        for (name, values) in [("mean", &self.normalize.mean), ("std", &self.normalize.std)] {
            if values.len() != self.channels {
                return invalid(
                    &format!("normalize.{name}"),
                    format!("{} values for {} channels", values.len(), self.channels),
                );
            }
        }
        for (c, &std) in self.normalize.std.iter().enumerate() {
            if !(std.is_finite() && std > 0.0) {
                return invalid(
                    &format!("normalize.std[{c}]"),
                    format!("{std} (must be positive)"),
                );
            }
        }
        if let Some(c) = self.normalize.mean.iter().position(|m| !m.is_finite()) {
            return invalid(&format!("normalize.mean[{c}]"), "not finite".into());
        }
        Ok(())
    }

    /// Decodes `path` (refused from its header above `max_pixels` pixels), converts and sizes
    /// it: `channels × height × width` bytes, channel-first ([`Preprocess::shape`]).
    /// Normalisation comes later, for a whole batch.
    ///
    /// # Errors
    /// As [`repr_data::decode_image`].
    pub fn load(&self, path: &Path, max_pixels: u64) -> Result<Vec<u8>, DataError> {
        Ok(self.prepare(decode_image(path, max_pixels)?))
    }

    /// [`Preprocess::load`] of an image file's bytes held in memory (an upload); errors name
    /// the image `name`.
    ///
    /// # Errors
    /// As [`repr_data::decode_image_bytes`].
    pub fn load_bytes(
        &self,
        bytes: &[u8],
        name: &Path,
        max_pixels: u64,
    ) -> Result<Vec<u8>, DataError> {
        Ok(self.prepare(decode_image_bytes(bytes, name, max_pixels)?))
    }

    /// A decoded image converted, sized and laid out channel-first.
    fn prepare(&self, image: DynamicImage) -> Vec<u8> {
        if self.channels == 1 {
            // One channel: HWC is CHW.
            self.sized(into_luma8(image)).into_raw()
        } else {
            let rgb = self.sized(into_rgb8(image));
            let mut chw = vec![0; rgb.as_raw().len()];
            rgb_to_chw(rgb.as_raw(), &mut chw);
            chw
        }
    }

    /// The image resized (and cropped) to [`Preprocess::shape`].
    fn sized<P>(&self, image: ImageBuffer<P, Vec<u8>>) -> ImageBuffer<P, Vec<u8>>
    where
        P: Pixel<Subpixel = u8> + 'static,
    {
        match self.size {
            Sizing::Resize { height, width } => resize_bilinear(image, width as u32, height as u32),
            Sizing::ResizeCrop {
                resize_shorter,
                crop,
            } => {
                let (width, height) = shorter_side_to(image.dimensions(), resize_shorter as u32);
                let image = resize_bilinear(image, width, height);
                let crop = crop as u32;
                let (left, top) = (centre_offset(width, crop), centre_offset(height, crop));
                imageops::crop_imm(&image, left, top, crop, crop).to_image()
            }
        }
    }
}

/// torchvision's `Resize(size)` for an int `size`: the shorter side becomes `size`, the longer
/// `int(size * long / short)`.
fn shorter_side_to((width, height): (u32, u32), size: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| u64::from(size) * u64::from(long) / u64::from(short);
    if width <= height {
        (size, scaled(height, width) as u32)
    } else {
        (scaled(width, height) as u32, size)
    }
}

/// torchvision's `CenterCrop` offset `int(round((total - crop) / 2))`, with Python's rounding
/// of halves to even.
fn centre_offset(total: u32, crop: u32) -> u32 {
    let extra = total - crop;
    let half = extra / 2;
    if extra % 2 == 1 && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma, Rgb, RgbImage};

    use super::*;

    fn pattern(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 7 + y * 3) as u8, (x * 31) as u8, (y * 13 + 5) as u8])
        })
    }

    fn grey(height: usize, width: usize) -> Preprocess {
        Preprocess {
            channels: 1,
            size: Sizing::Resize { height, width },
            normalize: Normalize::identity(1),
        }
    }

    #[test]
    fn an_image_of_the_target_size_keeps_its_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("28.png");
        let image = GrayImage::from_fn(28, 28, |x, y| Luma([(x * 9 + y * 5) as u8]));
        image.save(&path).unwrap();
        let pixels = grey(28, 28).load(&path, 1 << 20).unwrap();
        assert_eq!(pixels, image.into_raw());
    }

    #[test]
    fn rgb_is_channel_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rgb.png");
        let image = pattern(3, 2);
        image.save(&path).unwrap();
        let preprocess = Preprocess {
            channels: 3,
            size: Sizing::Resize {
                height: 2,
                width: 3,
            },
            normalize: Normalize::identity(3),
        };
        let pixels = preprocess.load(&path, 1 << 20).unwrap();
        for c in 0..3 {
            for y in 0..2 {
                for x in 0..3 {
                    let expected = image.get_pixel(x, y)[c];
                    assert_eq!(pixels[c * 6 + y as usize * 3 + x as usize], expected);
                }
            }
        }
    }

    /// With the shorter side already at `resize_shorter`, the resize is the identity and the
    /// crop must cut exactly torchvision's window: top = round(2.5) = 2 (half to even),
    /// left = round(1.0) = 1 for an 8-wide, 11-high image cropped to 6.
    #[test]
    fn the_centre_crop_is_torchvisions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tall.png");
        let image = pattern(8, 11);
        image.save(&path).unwrap();
        let preprocess = Preprocess {
            channels: 3,
            size: Sizing::ResizeCrop {
                resize_shorter: 8,
                crop: 6,
            },
            normalize: Normalize::identity(3),
        };
        let pixels = preprocess.load(&path, 1 << 20).unwrap();
        assert_eq!(pixels.len(), 3 * 6 * 6);
        for y in 0..6u32 {
            for x in 0..6u32 {
                let expected = image.get_pixel(x + 1, y + 2)[1];
                assert_eq!(pixels[36 + (y * 6 + x) as usize], expected, "({x}, {y})");
            }
        }
    }

    #[test]
    fn torchvision_sizes_and_offsets() {
        // torchvision: Resize(256) of a 500 × 375 (w × h) image is 341 × 256.
        assert_eq!(shorter_side_to((500, 375), 256), (341, 256));
        assert_eq!(shorter_side_to((375, 500), 256), (256, 341));
        assert_eq!(shorter_side_to((256, 256), 256), (256, 256));
        // int(round(x / 2)) in Python for x = 117, 35, 33, 32.
        assert_eq!(centre_offset(341, 224), 58);
        assert_eq!(centre_offset(259, 224), 18);
        assert_eq!(centre_offset(257, 224), 16);
        assert_eq!(centre_offset(256, 224), 16);
    }

    #[test]
    fn a_large_photo_is_resized_then_cropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wide.png");
        pattern(60, 40).save(&path).unwrap();
        let preprocess = Preprocess {
            channels: 1,
            size: Sizing::ResizeCrop {
                resize_shorter: 20,
                crop: 16,
            },
            normalize: Normalize::identity(1),
        };
        assert_eq!(preprocess.load(&path, 1 << 20).unwrap().len(), 16 * 16);
        assert!(matches!(
            preprocess.load(&path, 60 * 40 - 1),
            Err(DataError::ImageTooLarge { .. })
        ));
    }

    #[test]
    fn checks_name_the_field() {
        let mut p = Preprocess::default();
        assert!(p.check().is_ok());
        assert_eq!(p.shape(), [3, 224, 224]);
        p.size = Sizing::ResizeCrop {
            resize_shorter: 200,
            crop: 224,
        };
        let field = |p: &Preprocess| match p.check() {
            Err(SearchError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&p), "preprocess.size.resize_crop.crop");
        let mut p = grey(28, 28);
        p.normalize.std[0] = 0.0;
        assert_eq!(field(&p), "preprocess.normalize.std[0]");
        p.channels = 2;
        assert_eq!(field(&p), "preprocess.channels");
        let mut p = grey(28, 28);
        p.normalize.mean.push(0.5);
        assert_eq!(field(&p), "preprocess.normalize.mean");
    }

    #[test]
    fn round_trips_through_json_and_refuses_unknown_keys() {
        let p = grey(28, 28);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Preprocess>(&json).unwrap(), p);
        let bad = json.replace("\"channels\"", "\"chanels\"");
        assert!(serde_json::from_str::<Preprocess>(&bad).is_err());
    }
}

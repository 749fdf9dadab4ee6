//! Colour jitter (SimCLR's "colour distortion", Chen et al. 2020, Appendix A), with torchvision's
//! `ColorJitter` semantics: a random order of the four adjustments per image.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::adjust::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation};
use crate::error::{AugmentError, check_probability};
use crate::resized_crop::uniform;

/// Configuration of [`ColorJitter`]: torchvision's `ColorJitter(brightness, contrast, saturation,
/// hue)` with scalar strengths, applied with `probability` (SimCLR wraps it in
/// `RandomApply(p=0.8)`). A strength of 0 leaves that adjustment out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColorJitterConfig {
    /// Brightness factor drawn from `[max(0, 1 - b), 1 + b]`; `b >= 0`.
    pub brightness: f64,
    /// Contrast factor drawn from `[max(0, 1 - c), 1 + c]`; `c >= 0`.
    pub contrast: f64,
    /// Saturation factor drawn from `[max(0, 1 - s), 1 + s]`; `s >= 0` (no effect on 1 channel).
    pub saturation: f64,
    /// Hue shift drawn from `[-h, h]`; `0 <= h <= 0.5` (no effect on 1 channel).
    pub hue: f64,
    /// Probability of jittering an image at all.
    pub probability: f64,
}

impl Default for ColorJitterConfig {
    /// SimCLR's colour distortion at strength 1 (`0.8, 0.8, 0.8, 0.2`), applied with p = 0.8.
    fn default() -> Self {
        Self::simclr(1.0)
    }
}

impl ColorJitterConfig {
    /// SimCLR's colour distortion of strength `s`: `ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)` applied
    /// with p = 0.8 (strength 1 for ImageNet, 0.5 for CIFAR-10).
    pub fn simclr(s: f64) -> Self {
        Self {
            brightness: 0.8 * s,
            contrast: 0.8 * s,
            saturation: 0.8 * s,
            hue: 0.2 * s,
            probability: 0.8,
        }
    }

    /// Builds the op; every strength must be finite and non-negative, hue at most 0.5.
    pub fn init(&self) -> Result<ColorJitter, AugmentError> {
        for (field, value) in [
            ("color_jitter.brightness", self.brightness),
            ("color_jitter.contrast", self.contrast),
            ("color_jitter.saturation", self.saturation),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(AugmentError::OutOfRange {
                    field,
                    value,
                    allowed: "a finite strength >= 0",
                });
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(AugmentError::OutOfRange {
                field: "color_jitter.hue",
                value: self.hue,
                allowed: "0 <= hue <= 0.5",
            });
        }
        check_probability("color_jitter.probability", self.probability)?;
        Ok(ColorJitter { config: *self })
    }
}

/// One of the four adjustments of [`ColorJitter`], numbered as torchvision's `fn_idx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adjustment {
    /// `adjust_brightness`.
    Brightness = 0,
    /// `adjust_contrast`.
    Contrast = 1,
    /// `adjust_saturation`.
    Saturation = 2,
    /// `adjust_hue`.
    Hue = 3,
}

impl Adjustment {
    /// All four, in torchvision's numbering.
    pub const ALL: [Adjustment; 4] = [
        Adjustment::Brightness,
        Adjustment::Contrast,
        Adjustment::Saturation,
        Adjustment::Hue,
    ];
}

/// The factors drawn for one image; `None` for an adjustment configured with strength 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JitterParams {
    /// The order the adjustments are applied in (a permutation of the four).
    pub order: [Adjustment; 4],
    /// Brightness factor.
    pub brightness: Option<f64>,
    /// Contrast factor.
    pub contrast: Option<f64>,
    /// Saturation factor.
    pub saturation: Option<f64>,
    /// Hue shift.
    pub hue: Option<f64>,
}

impl JitterParams {
    /// The factor of `adjustment`, if it is applied.
    pub fn factor(&self, adjustment: Adjustment) -> Option<f64> {
        match adjustment {
            Adjustment::Brightness => self.brightness,
            Adjustment::Contrast => self.contrast,
            Adjustment::Saturation => self.saturation,
            Adjustment::Hue => self.hue,
        }
    }
}

/// Random brightness, contrast, saturation and hue changes in a random order.
#[derive(Debug, Clone)]
pub struct ColorJitter {
    config: ColorJitterConfig,
}

impl ColorJitter {
    /// The configuration.
    pub fn config(&self) -> &ColorJitterConfig {
        &self.config
    }

    /// Draws whether to jitter and, if so, the order and factors (torchvision's
    /// `ColorJitter.get_params`: `randperm(4)`, then each factor uniform in its range).
    pub fn sample(&self, rng: &mut impl Rng) -> Option<JitterParams> {
        let apply = rng.random::<f64>() < self.config.probability;
        if !apply {
            return None;
        }
        let mut order = Adjustment::ALL;
        order.shuffle(rng);
        let c = &self.config;
        let factor =
            |rng: &mut _, s: f64| (s > 0.0).then(|| uniform(rng, (1.0 - s).max(0.0), 1.0 + s));
        let brightness = factor(rng, c.brightness);
        let contrast = factor(rng, c.contrast);
        let saturation = factor(rng, c.saturation);
        let hue = (c.hue > 0.0).then(|| uniform(rng, -c.hue, c.hue));
        Some(JitterParams {
            order,
            brightness,
            contrast,
            saturation,
            hue,
        })
    }

    /// Applies `params` to a CHW `u8` image of `channels` channels, in place.
    pub fn apply(params: &JitterParams, image: &mut [u8], channels: usize, scratch: &mut Vec<u8>) {
        for adjustment in params.order {
            let Some(f) = params.factor(adjustment) else {
                continue;
            };
            match adjustment {
                Adjustment::Brightness => adjust_brightness(image, f),
                Adjustment::Contrast => adjust_contrast(image, channels, f, scratch),
                Adjustment::Saturation => adjust_saturation(image, channels, f, scratch),
                Adjustment::Hue => adjust_hue(image, channels, f),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_rng;

    #[test]
    fn factors_stay_in_their_ranges_and_orders_vary() {
        let op = ColorJitterConfig {
            brightness: 0.4,
            contrast: 1.5,
            saturation: 0.0,
            hue: 0.1,
            probability: 0.8,
        }
        .init()
        .unwrap();
        let (mut applied, mut orders) = (0, std::collections::HashSet::new());
        for i in 0..2000 {
            if let Some(p) = op.sample(&mut image_rng(5, 0, i)) {
                applied += 1;
                orders.insert(p.order.map(|a| a as u8));
                let b = p.brightness.unwrap();
                assert!((0.6..=1.4).contains(&b));
                let c = p.contrast.unwrap();
                assert!((0.0..=2.5).contains(&c));
                assert_eq!(p.saturation, None);
                assert!(p.hue.unwrap().abs() <= 0.1);
            }
        }
        assert!(
            (1500..1700).contains(&applied),
            "{applied} of 2000 at p = 0.8"
        );
        assert_eq!(orders.len(), 24, "every order of the four occurs");
    }

    #[test]
    fn invalid_strengths_name_the_field() {
        let cases = [
            (
                ColorJitterConfig {
                    brightness: -0.1,
                    ..Default::default()
                },
                "brightness",
            ),
            (
                ColorJitterConfig {
                    hue: 0.6,
                    ..Default::default()
                },
                "hue",
            ),
            (
                ColorJitterConfig {
                    probability: 1.1,
                    ..Default::default()
                },
                "probability",
            ),
            (
                ColorJitterConfig {
                    contrast: f64::NAN,
                    ..Default::default()
                },
                "contrast",
            ),
        ];
        for (config, field) in cases {
            let msg = config.init().unwrap_err().to_string();
            assert!(msg.contains(&format!("color_jitter.{field}")), "{msg}");
        }
    }
}

//! One augmentation step of a pipeline: a config enum that builds an op enum, and the parameters
//! one image draws for it.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{AugmentError, check_probability};
use crate::{
    ColorJitter, ColorJitterConfig, CropBox, GaussianBlur, GaussianBlurConfig, ImageDims,
    JitterParams, RandomGrayscale, RandomGrayscaleConfig, RandomHorizontalFlip,
    RandomHorizontalFlipConfig, RandomResizedCrop, RandomResizedCropConfig, Solarize,
    SolarizeConfig,
};

/// Configuration of one step of a [`crate::Compose`] pipeline, written with an `op` tag in
/// config files: `{ op = "color_jitter", brightness = 0.4, ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpConfig {
    /// [`RandomResizedCrop`].
    RandomResizedCrop(RandomResizedCropConfig),
    /// [`RandomHorizontalFlip`].
    HorizontalFlip(RandomHorizontalFlipConfig),
    /// [`ColorJitter`].
    ColorJitter(ColorJitterConfig),
    /// [`RandomGrayscale`].
    Grayscale(RandomGrayscaleConfig),
    /// [`GaussianBlur`].
    GaussianBlur(GaussianBlurConfig),
    /// [`Solarize`].
    Solarize(SolarizeConfig),
    /// [`RandomApply`].
    RandomApply(RandomApplyConfig),
}

/// Configuration of [`RandomApply`]: apply `ops` in order with `probability`, else none of them
/// (torchvision's `RandomApply(transforms, p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomApplyConfig {
    /// Probability of applying the ops.
    pub probability: f64,
    /// The ops; they must keep the image size.
    pub ops: Vec<OpConfig>,
}

/// Ops applied together with a given probability.
#[derive(Debug, Clone)]
pub struct RandomApply {
    /// Probability of applying the ops.
    pub probability: f64,
    /// The ops.
    pub ops: Vec<Op>,
}

/// An initialised step of a pipeline.
#[derive(Debug, Clone)]
pub enum Op {
    /// Crop and resize.
    RandomResizedCrop(RandomResizedCrop),
    /// Horizontal flip.
    HorizontalFlip(RandomHorizontalFlip),
    /// Colour jitter.
    ColorJitter(ColorJitter),
    /// Grayscale.
    Grayscale(RandomGrayscale),
    /// Gaussian blur.
    GaussianBlur(GaussianBlur),
    /// Solarize.
    Solarize(Solarize),
    /// Several ops with one probability.
    RandomApply(RandomApply),
}

/// What one image drew for one [`Op`]; `false` / `None` means the op leaves it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpParams {
    /// The crop window.
    Crop(CropBox),
    /// Whether to flip.
    Flip(bool),
    /// The jitter factors, if jittered.
    Jitter(Option<JitterParams>),
    /// Whether to convert to gray.
    Grayscale(bool),
    /// Sigma, if blurred.
    Blur(Option<f64>),
    /// Whether to solarize.
    Solarize(bool),
    /// The parameters of the inner ops, if applied.
    RandomApply(Option<Vec<OpParams>>),
}

impl OpConfig {
    /// Builds the op for input images of `dims`.
    pub fn init(&self, dims: ImageDims) -> Result<Op, AugmentError> {
        dims.validate()?;
        Ok(match self {
            OpConfig::RandomResizedCrop(c) => Op::RandomResizedCrop(c.init(dims)?),
            OpConfig::HorizontalFlip(c) => Op::HorizontalFlip(c.init(dims)?),
            OpConfig::ColorJitter(c) => Op::ColorJitter(c.init()?),
            OpConfig::Grayscale(c) => Op::Grayscale(c.init()?),
            OpConfig::GaussianBlur(c) => Op::GaussianBlur(c.init(dims)?),
            OpConfig::Solarize(c) => Op::Solarize(c.init()?),
            OpConfig::RandomApply(c) => {
                check_probability("random_apply.probability", c.probability)?;
                let ops = c
                    .ops
                    .iter()
                    .map(|op| {
                        let op = op.init(dims)?;
                        let to = op.output_dims(dims);
                        if to != dims {
                            return Err(AugmentError::SizeChange {
                                field: "random_apply.ops",
                                from: dims,
                                to,
                            });
                        }
                        Ok(op)
                    })
                    .collect::<Result<_, _>>()?;
                Op::RandomApply(RandomApply {
                    probability: c.probability,
                    ops,
                })
            }
        })
    }
}

impl Op {
    /// The dimensions of the output for an input of `input`.
    pub fn output_dims(&self, input: ImageDims) -> ImageDims {
        match self {
            Op::RandomResizedCrop(c) => c.output_dims(),
            _ => input,
        }
    }

    /// Draws this op's parameters for one image.
    pub fn sample(&self, rng: &mut impl Rng) -> OpParams {
        match self {
            Op::RandomResizedCrop(op) => OpParams::Crop(op.sample(rng)),
            Op::HorizontalFlip(op) => OpParams::Flip(op.sample(rng)),
            Op::ColorJitter(op) => OpParams::Jitter(op.sample(rng)),
            Op::Grayscale(op) => OpParams::Grayscale(op.sample(rng)),
            Op::GaussianBlur(op) => OpParams::Blur(op.sample(rng)),
            Op::Solarize(op) => OpParams::Solarize(op.sample(rng)),
            Op::RandomApply(op) => {
                let apply = rng.random::<f64>() < op.probability;
                OpParams::RandomApply(apply.then(|| op.ops.iter().map(|o| o.sample(rng)).collect()))
            }
        }
    }
}

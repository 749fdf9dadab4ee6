//! A pipeline of ops applied one after another to one image.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::adjust::{solarize, to_grayscale};
use crate::flip::flip_rows;
use crate::op::{Op, OpConfig, OpParams};
use crate::resize::ResizeScratch;
use crate::{AugmentError, ColorJitter, ImageDims};

/// Configuration of a [`Compose`] pipeline (torchvision's `Compose`): the ops in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComposeConfig {
    /// The ops, applied in this order.
    pub ops: Vec<OpConfig>,
}

impl ComposeConfig {
    /// A pipeline of `ops`.
    pub fn new(ops: Vec<OpConfig>) -> Self {
        Self { ops }
    }

    /// Builds the pipeline for input images of `dims`, checking every op against the size of
    /// the image it will receive.
    pub fn init(&self, dims: ImageDims) -> Result<Compose, AugmentError> {
        dims.validate()?;
        let mut current = dims;
        let mut ops = Vec::with_capacity(self.ops.len());
        for config in &self.ops {
            let op = config.init(current)?;
            current = op.output_dims(current);
            ops.push(op);
        }
        Ok(Compose {
            ops,
            input: dims,
            output: current,
        })
    }
}

/// The parameters one image drew for every op of a [`Compose`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComposeParams {
    /// One entry per op.
    pub ops: Vec<OpParams>,
}

/// Reusable buffers for [`Compose::apply`], one per thread.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    image: Vec<u8>,
    tmp: Vec<u8>,
    gray: Vec<u8>,
    blur: Vec<f32>,
    resize: ResizeScratch,
}

/// Ops applied in order to one `u8` CHW image.
///
/// ```
/// use repr_augment::{ComposeConfig, ImageDims, OpConfig, RandomResizedCropConfig, Scratch, image_rng};
///
/// let dims = ImageDims { channels: 3, height: 40, width: 30 };
/// let pipeline = ComposeConfig::new(vec![OpConfig::RandomResizedCrop(RandomResizedCropConfig::new(16))])
///     .init(dims)?;
/// let image = vec![128u8; dims.len()];
/// let params = pipeline.sample(&mut image_rng(0, 0, 7));
/// let mut scratch = Scratch::default();
/// let out = pipeline.apply(&params, &image, &mut scratch);
/// assert_eq!(out, vec![128u8; 3 * 16 * 16]);
/// # Ok::<(), repr_augment::AugmentError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Compose {
    ops: Vec<Op>,
    input: ImageDims,
    output: ImageDims,
}

impl Compose {
    /// The ops.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Dimensions of the input images.
    pub fn input_dims(&self) -> ImageDims {
        self.input
    }

    /// Dimensions of the output images.
    pub fn output_dims(&self) -> ImageDims {
        self.output
    }

    /// Draws the parameters of every op for one image (the parameter-sampling step shared by the
    /// CPU and device paths).
    pub fn sample(&self, rng: &mut impl Rng) -> ComposeParams {
        ComposeParams {
            ops: self.ops.iter().map(|op| op.sample(rng)).collect(),
        }
    }

    /// Applies `params` to `src` (input dims) and returns the output (output dims), held in
    /// `scratch`.
    ///
    /// # Panics
    /// If `src` does not have the input's length or `params` was not sampled by this pipeline.
    pub fn apply<'s>(
        &self,
        params: &ComposeParams,
        src: &[u8],
        scratch: &'s mut Scratch,
    ) -> &'s [u8] {
        assert_eq!(src.len(), self.input.len(), "input image length");
        assert_eq!(
            params.ops.len(),
            self.ops.len(),
            "params of another pipeline"
        );
        let mut ops = self.ops.iter().zip(&params.ops).peekable();
        let mut dims = self.input;
        scratch.image.clear();
        // A leading crop reads the source directly, saving a copy of the full image.
        if let Some((Op::RandomResizedCrop(crop), OpParams::Crop(window))) = ops.peek() {
            dims = crop.output_dims();
            scratch.image.resize(dims.len(), 0);
            crop.apply_with(*window, src, &mut scratch.image, &mut scratch.resize);
            ops.next();
        } else {
            scratch.image.extend_from_slice(src);
        }
        for (op, p) in ops {
            apply_op(op, p, &mut dims, scratch);
        }
        &scratch.image
    }

    /// Samples parameters from `rng` and applies them to `src`, returning a new image.
    pub fn run(&self, src: &[u8], rng: &mut impl Rng) -> Vec<u8> {
        let params = self.sample(rng);
        self.apply(&params, src, &mut Scratch::default()).to_vec()
    }
}

fn apply_op(op: &Op, params: &OpParams, dims: &mut ImageDims, s: &mut Scratch) {
    match (op, params) {
        (Op::RandomResizedCrop(crop), OpParams::Crop(window)) => {
            let out = crop.output_dims();
            s.tmp.clear();
            s.tmp.resize(out.len(), 0);
            crop.apply_with(*window, &s.image, &mut s.tmp, &mut s.resize);
            std::mem::swap(&mut s.image, &mut s.tmp);
            *dims = out;
        }
        (Op::HorizontalFlip(_), &OpParams::Flip(flip)) => {
            if flip {
                flip_rows(&mut s.image, dims.width);
            }
        }
        (Op::ColorJitter(_), OpParams::Jitter(jitter)) => {
            if let Some(p) = jitter {
                ColorJitter::apply(p, &mut s.image, dims.channels, &mut s.gray);
            }
        }
        (Op::Grayscale(_), &OpParams::Grayscale(gray)) => {
            if gray {
                to_grayscale(&mut s.image, dims.channels);
            }
        }
        (Op::GaussianBlur(blur), &OpParams::Blur(sigma)) => {
            if let Some(sigma) = sigma {
                blur.apply(sigma, &mut s.image, &mut s.blur);
            }
        }
        (Op::Solarize(op), &OpParams::Solarize(apply)) => {
            if apply {
                solarize(&mut s.image, op.config().threshold);
            }
        }
        (Op::RandomApply(op), OpParams::RandomApply(inner)) => {
            if let Some(inner) = inner {
                assert_eq!(inner.len(), op.ops.len(), "params of another pipeline");
                for (op, p) in op.ops.iter().zip(inner) {
                    apply_op(op, p, dims, s);
                }
            }
        }
        (op, p) => panic!("params {p:?} do not belong to op {op:?}"),
    }
}

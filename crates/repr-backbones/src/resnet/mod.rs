//! ResNet (He et al. 2016, "Deep Residual Learning for Image Recognition") with torchvision's
//! layout: configs and presets, residual blocks, and the network with its staged API.

mod base;
mod block;
mod config;
mod norm;
mod torchvision;

pub use base::{ResNet, Stage};
pub use block::{BasicBlock, Block, BlockConfig, Bottleneck, Downsample};
pub use config::{BlockKind, ResNetConfig, Stem};
pub use norm::{Norm, NormLayer, WS_EPS, standardized_conv2d};

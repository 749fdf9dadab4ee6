//! Backbones for `repr` with one staged feature API: [`forward_features`](Backbone::forward_features)
//! → [`pool`](Backbone::pool) → [`embed`](Backbone::embed) / [`forward`](Backbone::forward).
//!
//! - [`ResNet`]: He et al. 2016, "Deep Residual Learning for Image Recognition", with
//!   torchvision's layout, presets and initialisation ([`ResNetConfig::resnet18`], `resnet34`,
//!   `resnet50`), an ImageNet or CIFAR [`Stem`] and a width multiplier.
//! - [`ViT`]: Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words", with torchvision's
//!   layout ([`ViTConfig::vit_tiny`], `vit_small`, `vit_base`, and `vit_tiny_p4` / `vit_small_p4`
//!   for 28–32 px images), learned or 2-D sine-cosine positions resampled for other input
//!   sizes, and a mask token for masked-patch prediction.
//! - [`Backbone::load_torchvision`] loads torchvision weights (`.safetensors`, `.pt`);
//!   [`StateDict`] reads PyTorch state dicts and loads them by an explicit key table.
//! - [`BackboneConfig`] builds a [`Backbone`], the enum of all variants; it (de)serialises with
//!   serde (JSON, TOML) as part of a run configuration.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use repr_backbones::{BackboneConfig, ResNetConfig, Stem};
//!
//! let device = Device::flex();
//! let config = ResNetConfig::resnet18()
//!     .with_stem(Stem::Cifar)
//!     .with_width(8)
//!     .with_in_channels(1)
//!     .with_num_classes(10);
//! let backbone = BackboneConfig::from(config).init(&device);
//! let images = Tensor::<4>::zeros([2, 1, 28, 28], &device);
//! assert_eq!(backbone.embed(images.clone()).dims(), [2, 64]);
//! assert_eq!(backbone.forward(images).dims(), [2, 10]);
//! ```
#![warn(missing_docs)]

mod backbone;
mod error;
mod import;
mod params;
mod pool;
pub mod resnet;
mod torchvision;
pub mod vit;

pub use backbone::{Backbone, BackboneConfig, BackboneStage};
pub use error::ConfigError;
pub use import::{ImportError, ShapeMismatch, StateDict};
pub use params::num_learnable_params;
pub use pool::{GEM_EPS, GEM_P, Pooling};
pub use resnet::{BlockKind, Norm, ResNet, ResNetConfig, Stage, Stem};
pub use vit::{PosEmbedding, ViT, ViTConfig};

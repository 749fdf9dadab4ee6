//! `repr`: learned image representations with Burn.
//!
//! A facade over the workspace's crates, each usable on its own:
//! [`data`] (dataset readers and batchers), [`augment`] (augmentations), [`backbones`] (ResNet),
//! [`objectives`] (losses), [`train`] (methods, optimizers, checkpoints, devices).
//!
//! The README's à-la-carte example, compiled and run as a test:
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use repr::backbones::{ResNetConfig, Stem};
//! use repr::objectives::CrossEntropyLossConfig;
//!
//! let device = Device::flex();
//! let model = ResNetConfig::resnet18()
//!     .with_stem(Stem::Cifar)
//!     .with_in_channels(1)
//!     .with_num_classes(10)
//!     .init(&device);
//! let images = Tensor::<4>::zeros([8, 1, 28, 28], &device);
//! let embeddings = model.embed(images.clone()); // [8, 512]
//! let logits = model.forward(images); // [8, 10]
//! let targets = Tensor::<1, Int>::zeros([8], &device);
//! let loss = CrossEntropyLossConfig::new().with_smoothing(0.1).init()?.forward(logits, targets);
//! assert_eq!(embeddings.dims(), [8, 512]);
//! assert!(loss.into_scalar::<f32>().is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub use repr_augment as augment;
pub use repr_backbones as backbones;
pub use repr_data as data;
pub use repr_objectives as objectives;
pub use repr_train as train;

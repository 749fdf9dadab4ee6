//! `repr`: learned image representations with Burn.
//!
//! A facade over the workspace's crates, each usable on its own:
//! [`data`] (dataset readers and batchers), [`augment`] (augmentations), [`backbones`] (ResNet,
//! ViT), [`objectives`] (losses, heads, miners), [`train`] (methods, optimizers, checkpoints,
//! devices), [`eval`] (kNN, linear probe, retrieval, plots), [`search`] (an index of a folder of
//! images and exact search over it).
//!
//! The README's à-la-carte example, compiled and run as a test:
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use repr::augment::{ImageDims, MultiViewConfig};
//! use repr::backbones::{ResNetConfig, Stem};
//! use repr::data::{LoadOptions, MultiViewBatcher, Normalize, Split, fashion_mnist_dir, load};
//! use repr::objectives::{
//!     Miner, NtXentLossConfig, ProjectionHeadConfig, TripletLossConfig,
//! };
//!
//! // Two SimCLR views of 8 Fashion-MNIST images (torchvision-style crop, flip, jitter).
//! let device = Device::flex().autodiff();
//! let train = load(&fashion_mnist_dir(), Split::Train, &LoadOptions::default())?;
//! let views = MultiViewConfig::simclr_grayscale(28).init(ImageDims::from_shape(train.shape()))?;
//! let batcher = MultiViewBatcher::new(views, Normalize::from_dataset(&train));
//! let indices: Vec<usize> = (0..8).collect();
//! let batch = batcher.cpu_batch(&train, &indices, 42, 0).to_device(&device);
//!
//! // Encoder (ResNet-18 at width 16, CIFAR stem, no classifier) + projection head + NT-Xent.
//! let encoder = ResNetConfig::resnet18()
//!     .with_stem(Stem::Cifar)
//!     .with_width(16)
//!     .with_in_channels(1)
//!     .with_num_classes(0)
//!     .init(&device);
//! let head = ProjectionHeadConfig { input: 128, hidden: 128, output: 64, layers: 2, batch_norm: true }
//!     .init(&device);
//! let z: Vec<Tensor<2>> = batch.views.iter().map(|v| head.forward(encoder.embed(v.clone()))).collect();
//! let nt_xent = NtXentLossConfig::new().with_temperature(0.5).init()?;
//! let loss = nt_xent.forward(z[0].clone(), z[1].clone());
//! let _gradients = loss.backward();
//!
//! // The same embeddings under a triplet loss with semi-hard mining, using the labels.
//! let triplet = TripletLossConfig::new().with_miner(Miner::SemiHard).init()?;
//! let labels = Tensor::<1, Int>::from_data(
//!     indices.iter().map(|&i| train.label(i) as i64).collect::<Vec<_>>().as_slice(),
//!     &device,
//! );
//! let output = triplet.forward(z[0].clone(), labels);
//! assert!(loss.into_scalar::<f32>().is_finite());
//! assert!(output.loss.into_scalar::<f32>().is_finite());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

pub use repr_augment as augment;
pub use repr_backbones as backbones;
pub use repr_data as data;
pub use repr_eval as eval;
pub use repr_objectives as objectives;
pub use repr_search as search;
pub use repr_train as train;

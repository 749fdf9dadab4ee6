//! `repr`: learned image representations with Burn.
//!
//! A facade over the workspace's crates, each usable on its own:
//! [`data`] (dataset readers and batchers), [`augment`] (augmentations), [`backbones`] (ResNet),
//! [`objectives`] (losses), [`train`] (methods, optimizers, checkpoints, devices).
#![warn(missing_docs)]

pub use repr_augment as augment;
pub use repr_backbones as backbones;
pub use repr_data as data;
pub use repr_objectives as objectives;
pub use repr_train as train;

//! Training for `repr`: methods, optimizers, schedules, checkpoints, devices and run folders.
//!
//! This is the one crate that drives Burn's optimizers, so the next Burn API change touches
//! one place. A run is described by one [`TrainConfig`] (a TOML or JSON file), trained by
//! [`train`] into a [`RunDir`], and summarised by a [`Summary`] (`summary.json`).
#![warn(missing_docs)]

mod checkpoint;
mod config;
mod device;
mod error;
mod evaluate;
mod loader;
mod metrics;
mod optim;
mod progress;
mod run_dir;
mod schedule;
mod summary;
mod supervised;
mod trainer;

pub use checkpoint::{Checkpoint, TrainState};
pub use config::{AugmentConfig, DataConfig, OptimizerConfig, Recipe, ScheduleConfig, TrainConfig};
pub use device::{DeviceChoice, DeviceError};
pub use error::TrainError;
pub use evaluate::{Accuracy, accuracy};
pub use loader::{BatchLoader, LoaderConfig};
pub use metrics::{MetricRecord, MetricsLog};
pub use run_dir::{RunDir, RunMode};
pub use schedule::warmup_cosine;
pub use summary::{EvalSummary, Summary};
pub use supervised::Supervised;
pub use trainer::{TrainOptions, train};

//! Training for `repr`: methods, optimizers, schedules, checkpoints, devices and run folders.
//!
//! This is the one crate that drives Burn's optimizers, so the next Burn API change touches
//! one place. A run is described by one [`TrainConfig`] (a TOML or JSON file), trained by
//! [`train`] into a [`RunDir`], and summarised by a [`Summary`] (`summary.json`).
#![warn(missing_docs)]

mod byol;
mod checkpoint;
mod config;
mod device;
mod error;
mod evaluate;
pub mod finetune;
mod fit;
mod lars;
mod loader;
mod masked_patch;
mod method;
mod metrics;
mod optim;
mod plots;
mod presets;
mod progress;
mod represent;
mod run_dir;
mod saved;
mod schedule;
mod simclr;
mod summary;
mod supervised;
mod trainer;
mod triplet;
mod validate;

pub use byol::Byol;
pub use checkpoint::{Checkpoint, TrainState};
pub use config::{
    AugmentConfig, ByolConfig, DataConfig, EvalConfig, FinetuneConfig, OptimizerConfig, Recipe,
    ScheduleConfig, SimclrConfig, TrainConfig, TripletConfig,
};
pub use device::{DeviceChoice, DeviceError};
pub use error::TrainError;
pub use evaluate::{Accuracy, accuracy};
pub use fit::{AugmentPreset, DataShape, FromData};
pub use lars::Lars;
pub use loader::{BatchLoader, LoaderConfig, Prepared};
pub use masked_patch::{MaskedPatchNet, MaskedPatchObjective};
pub use method::{Batch, Method, Objective, StepOutput};
pub use metrics::{MetricRecord, MetricsLog};
pub use presets::masked_patch_vit;
pub use run_dir::{RunDir, RunMode};
pub use saved::{TrainedRun, embed_run, evaluate_run, retrieve_run};
pub use schedule::warmup_cosine;
pub use simclr::SimClr;
pub use summary::{EvalSummary, Summary};
pub use supervised::Supervised;
pub use trainer::{TrainOptions, train};
pub use triplet::TripletNet;

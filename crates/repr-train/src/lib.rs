//! Training for `repr`: methods, optimizers, schedules, checkpoints, devices and run folders.
//!
//! This is the one crate that drives Burn's optimizers, so the next Burn API change touches
//! one place. A run is described by one [`TrainConfig`] (a TOML or JSON file), trained by
//! [`train`] into a [`RunDir`], and summarised by a [`Summary`] (`summary.json`). A method
//! ([`methods`]) is one file: its `[method]` config, its network and its step; the loop
//! ([`train`]) takes optimizer steps through a [`Stepper`].
//!
//! Its pieces work in your own Burn loop too: here an optimizer built from an
//! [`OptimizerConfig`] (PyTorch's SGD semantics) and the [`warmup_cosine`] schedule fit a
//! linear regression.
//!
//! ```
//! use burn::nn::LinearConfig;
//! use burn::optim::GradientsParams;
//! use burn::tensor::{Device, Distribution, Tensor};
//! use repr_train::{OptimizerConfig, warmup_cosine};
//!
//! let device = Device::flex().autodiff();
//! let x = Tensor::<2>::random([64, 8], Distribution::Normal(0.0, 1.0), &device);
//! let w = Tensor::<2>::random([8, 1], Distribution::Normal(0.0, 1.0), &device);
//! let y = x.clone().matmul(w);
//! let mut model = LinearConfig::new(8, 1).init(&device);
//! let config = OptimizerConfig::Sgd { lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 0.0 };
//! let mut optimizer = config.init();
//! let (steps, mut losses) = (100, Vec::new());
//! for step in 0..steps {
//!     let loss = (model.forward(x.clone()) - y.clone()).square().mean();
//!     losses.push(loss.clone().into_scalar::<f32>());
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     let lr = warmup_cosine(step, steps, 10, config.lr(), 0.0);
//!     model = optimizer.step(lr, model, grads);
//! }
//! assert!(losses[steps - 1] < 1e-3 * losses[0], "MSE {} -> {}", losses[0], losses[steps - 1]);
//! ```
#![warn(missing_docs)]

mod checkpoint;
pub mod checkpoint_file;
mod checkpoint_store;
mod config;
mod data;
mod device;
pub mod distributed;
pub mod equivalence;
mod error;
mod evaluate;
mod evaluation;
mod fit;
pub mod init;
mod lars;
mod legacy;
mod loader;
pub mod methods;
mod metrics;
mod optim;
mod plots;
mod presets;
mod progress;
mod represent;
mod run_dir;
mod saved;
mod schedule;
mod stepper;
mod summary;
mod trainer;
mod validate;

pub use checkpoint::{Checkpoint, TrainState};
pub use config::{
    AugmentConfig, AugmentOn, AugmentPreset, DataConfig, EvalConfig, FromData, InitConfig,
    LrScaling, OptimizerConfig, ScheduleConfig, TrainConfig,
};
pub use device::{DeviceChoice, DeviceError, DeviceSpec};
pub use distributed::{Collective, Group, LocalGroup, LossScope};
pub use error::TrainError;
pub use evaluate::{Accuracy, accuracy};
pub use fit::DataShape;
pub use lars::Lars;
pub use loader::{BatchLoader, LoaderConfig, Prepared};
pub use methods::byol::{Byol, ByolConfig};
pub use methods::masked_patch::{MaskedPatchMethodConfig, MaskedPatchNet, MaskedPatchObjective};
pub use methods::simclr::{SimClr, SimclrConfig};
pub use methods::supcon::{SupCon, SupConConfig};
pub use methods::supervised::{Supervised, SupervisedConfig};
pub use methods::triplet::{TripletConfig, TripletNet};
pub use methods::{
    AfterStep, Batch, DataNeeds, Evaluation, Method, MethodConfig, MethodSettings, RunFacts,
    RunShape, StepContext, StepOutput, TrainMethod,
};
pub use metrics::{MetricRecord, MetricsLog};
pub use presets::{PRESETS, Preset, masked_patch_vit, preset};
pub use run_dir::{RUN_ENTRIES, RunDir, RunMode, check_run_name};
pub use saved::{RunInput, TrainedRun, embed_run, evaluate_run, retrieve_run};
pub use schedule::warmup_cosine;
pub use stepper::{DataParallel, Interval, IntervalStats, StepAt, Stepper};
pub use summary::{BaselineScores, Baselines, Communication, EvalSummary, Summary};
pub use trainer::{TrainOptions, train, train_in};

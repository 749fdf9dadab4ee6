//! Errors of a training run.

use std::path::PathBuf;

use crate::DeviceError;

/// Everything that can stop a run, each naming the file, field or step involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading the dataset failed.
    #[error(transparent)]
    Data(#[from] repr_data::DataError),
    /// The backend cannot be used.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A configuration value is impossible.
    #[error("config field `{field}`: {message}")]
    Config {
        /// The field, dotted (`optimizer.lr`).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A config file could not be parsed.
    #[error("config file {path}: {message}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A file or folder could not be read or written.
    /// (The OS error is part of the message, and not also a `source()`, so that a printed
    /// chain of causes says it once.)
    #[error("{path}: {error}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A checkpoint is missing, truncated or does not fit the model.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The run folder already holds a run.
    #[error(
        "run folder {path} already exists: pass --resume to continue it, --overwrite to replace it, or --name for a new run"
    )]
    RunExists {
        /// The run folder.
        path: PathBuf,
    },
    /// A run name that is not one folder name.
    #[error("run name `{name}`: {reason}")]
    RunName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// A folder that exists and is neither a run folder nor empty, where a run would be
    /// written or replaced: nothing in it is touched.
    #[error(
        "{path} is not a run folder ({holds}); nothing was changed. A run is written only into \
         a new or empty folder, and --overwrite replaces only a run: choose another --name or \
         --runs-dir"
    )]
    NotARunFolder {
        /// The folder.
        path: PathBuf,
        /// What it holds.
        holds: String,
    },
    /// The loss became NaN or infinite.
    #[error(
        "the loss became {value} by step {step}; the last good checkpoint ({checkpoint}) is kept. \
         Resume with a lower learning rate: --resume --lr <smaller>"
    )]
    NonFiniteLoss {
        /// The step at which the non-finite loss was seen.
        step: usize,
        /// The value (NaN or inf).
        value: f32,
        /// The checkpoint left in place.
        checkpoint: String,
    },
    /// A weight or running statistic became NaN or infinite while the loss was still finite
    /// (BatchNorm's running variance overflows before the loss does); found when the
    /// checkpoint would have been taken.
    #[error(
        "the weights became non-finite by step {step} ({tensor}); the last good checkpoint \
         ({checkpoint}) is kept. Resume with a lower learning rate: --resume --lr <smaller>"
    )]
    NonFiniteWeights {
        /// The step after which the non-finite tensor was seen.
        step: usize,
        /// The path of the first non-finite tensor in the model.
        tensor: String,
        /// The checkpoint left in place.
        checkpoint: String,
    },
    /// The ranks of a data-parallel run no longer hold the same parameters (found when a
    /// checkpoint would have been taken; nothing is written from diverged replicas).
    #[error(
        "ranks {ranks:?} hold parameters that differ from rank 0's by step {step}; the last good \
         checkpoint ({checkpoint}) is kept"
    )]
    RanksDiverged {
        /// The step at which the difference was found.
        step: usize,
        /// The ranks that differ from rank 0.
        ranks: Vec<usize>,
        /// The checkpoint left in place.
        checkpoint: String,
    },
    /// Another rank of a data-parallel run failed (its error is the message).
    #[error("rank 0 failed: {message}")]
    Leader {
        /// Rank 0's error.
        message: String,
    },
    /// Evaluating the representation failed.
    #[error("evaluation ({what}): {message}")]
    Eval {
        /// Which evaluation.
        what: String,
        /// What went wrong.
        message: String,
    },
}

impl TrainError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |error| TrainError::Io { path, error }
    }
}

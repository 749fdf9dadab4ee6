//! Using a finished run: load its network, re-evaluate it, export embeddings, draw retrievals.

use std::path::Path;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Bytes, Device};
use repr_data::{ImageDataset, Split};

use crate::represent::{EvalSets, embed_split, final_report};
use crate::{Method, RunDir, TrainConfig, TrainError};

/// A trained network with the config it was trained with.
pub struct TrainedRun {
    /// The run's resolved `config.toml`.
    pub config: TrainConfig,
    /// The network of `model.bpk` (or, failing that, of the last checkpoint), in inference mode.
    pub method: Method,
}

impl TrainedRun {
    /// Loads `run`'s config and final model onto `device` (the last checkpoint when the run
    /// has not finished).
    pub fn load(run: &RunDir, device: &Device) -> Result<Self, TrainError> {
        let config = TrainConfig::from_file(&run.config())?;
        // For inference: the normalisation only matters to a training step.
        let facts = config.run_facts(repr_data::Normalize::identity(
            config.backbone.in_channels(),
        ));
        let method = config.init_method(&facts, device)?;
        let final_model = run.final_model();
        let method = if final_model.exists() {
            let bytes = std::fs::read(&final_model).map_err(TrainError::io(&final_model))?;
            load_bytes(method, bytes, &final_model)?
        } else {
            let checkpoint = crate::Checkpoint::load(&run.last_checkpoint())?;
            checkpoint.restore_model(method, &run.last_checkpoint())?
        };
        Ok(Self {
            config,
            method: method.valid(),
        })
    }
}

/// What an image must become before a run's network sees it: the shape of its dataset's
/// images and the normalisation of its training split (as its evaluation applies them).
#[derive(Debug, Clone, PartialEq)]
pub struct RunInput {
    /// Channels of the images (1: grey, 3: RGB).
    pub channels: usize,
    /// Height of the images, in pixels.
    pub height: usize,
    /// Width of the images, in pixels.
    pub width: usize,
    /// Per-channel mean and standard deviation of the training split.
    pub normalize: repr_data::Normalize,
}

impl TrainedRun {
    /// The run's input: reads its dataset (with the config's limits) for the image shape and
    /// the training split's normalisation.
    pub fn input(&self) -> Result<RunInput, TrainError> {
        let data = crate::data::RunData::load(&self.config)?;
        let [channels, height, width] = data.train.shape();
        Ok(RunInput {
            channels,
            height,
            width,
            normalize: data.normalize,
        })
    }
}

fn load_bytes(method: Method, bytes: Vec<u8>, path: &Path) -> Result<Method, TrainError> {
    let bad = |reason: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    crate::checkpoint::load_module_bytes(method, Bytes::from_bytes_vec(bytes)).map_err(bad)
}

/// The datasets of a run's config (both splits, its limits, its normalisation).
fn eval_sets(config: &TrainConfig) -> Result<EvalSets, TrainError> {
    let data = crate::data::RunData::load(config)?;
    Ok(EvalSets {
        memory: data.memory,
        test: data.test,
        normalize: data.normalize,
        pooling: config.eval.pooling,
        progress: crate::progress::Progress::new(false),
    })
}

/// Re-runs the final evaluation of an embedding run (kNN, linear probe, retrieval, baselines,
/// pictures into the run folder) and returns the table.
pub fn evaluate_run(run: &RunDir, device: &Device) -> Result<String, TrainError> {
    let trained = TrainedRun::load(run, device)?;
    let sets = eval_sets(&trained.config)?;
    let report = final_report(&trained.method, &sets, &trained.config, run, device)?;
    Ok(report.table)
}

/// Embeddings of one split of the run's dataset: `[len, dim]` row-major, with the labels.
pub fn embed_run(
    run: &RunDir,
    split: Split,
    device: &Device,
) -> Result<(repr_eval::Embeddings, Vec<u32>), TrainError> {
    let trained = TrainedRun::load(run, device)?;
    let sets = eval_sets(&trained.config)?;
    let dataset: Arc<ImageDataset> = match split {
        Split::Train => sets.memory.clone(),
        Split::Test => sets.test.clone(),
    };
    let labels = dataset.labels().to_vec();
    let embeddings = embed_split(
        &trained.method,
        dataset,
        &sets,
        "the split",
        trained.config.eval_batch_size,
        device,
    )?;
    Ok((embeddings, labels))
}

/// A retrieval picture: the first `queries` test images down the left, their `k` nearest
/// training images to the right, framed green when the label matches and red when not.
pub fn retrieve_run(
    run: &RunDir,
    queries: usize,
    k: usize,
    out: &Path,
    device: &Device,
) -> Result<(), TrainError> {
    let trained = TrainedRun::load(run, device)?;
    let sets = eval_sets(&trained.config)?;
    let batch = trained.config.eval_batch_size;
    let queries = queries.min(sets.test.len());
    let query_set = Arc::new(sets.test.subset(&(0..queries).collect::<Vec<_>>()));
    let query_embeddings = embed_split(
        &trained.method,
        query_set,
        &sets,
        "the queries",
        batch,
        device,
    )?;
    let gallery = embed_split(
        &trained.method,
        sets.memory.clone(),
        &sets,
        "the gallery",
        batch,
        device,
    )?;
    crate::represent::draw_retrieval(&query_embeddings, &gallery, &sets, k, out, device)
}

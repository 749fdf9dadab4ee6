//! The training loop shared by the recipes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor};
use repr_augment::{ImageDims, RandomCropConfig, RandomHorizontalFlipConfig};
use repr_data::{
    ImageDataset, LoadOptions, MultiViewBatcher, Normalize, PkSampler, SkippedImage, Split,
};

use crate::checkpoint::{non_finite_tensor, write_atomic};
use crate::progress::Progress;
use crate::represent::{EvalSets, final_report, knn_and_linear};
use crate::{
    Accuracy, BatchLoader, Checkpoint, DeviceChoice, EvalSummary, LoaderConfig, Method,
    MetricRecord, MetricsLog, Objective, Recipe, RunDir, Summary, TrainConfig, TrainError,
    TrainState, accuracy, warmup_cosine,
};

/// How [`train`] runs, beside the config.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The backend.
    pub device: DeviceChoice,
    /// Continue from the run folder's last checkpoint.
    pub resume: bool,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Trains `config` into `run`, evaluates on the test split and writes `summary.json`.
///
/// Checkpoints of the state every `checkpoint_every_steps` and at the end of each epoch go to
/// `run.last_checkpoint()` at the next loss read-back, once the loss that their weights produced
/// is known to be finite (the last one at the end of the run), so a NaN stops the run with the
/// last good checkpoint in place.
pub fn train(
    config: &TrainConfig,
    run: &RunDir,
    options: &TrainOptions,
) -> Result<Summary, TrainError> {
    config.validate()?;
    // Fine-tuning from a repr run takes that run's backbone architecture.
    let resolved;
    let config = if config.recipe == Recipe::Finetune {
        resolved = crate::finetune::resolve(config)?;
        &resolved
    } else {
        config
    };
    let started = Instant::now();
    let progress = Progress::new(options.progress);
    let device = options.device.device()?;
    device.seed(config.seed);
    let train_device = device.clone().autodiff();

    let data = Data::load(config)?;
    // The fields left to the data (channels, classes, image size, views, k) are filled in.
    let fitted = config.fitted_to(&data.shape())?;
    let config = &fitted;
    check_backbone_fits(config, &data.train)?;
    let objective = Objective::new(config, &data.normalize)?;
    let loader = loader_config(config, &data)?;
    let steps_per_epoch = BatchLoader::batches_per_epoch(data.train.len(), &loader);
    if steps_per_epoch == 0 {
        return Err(TrainError::Config {
            field: "batch_size".into(),
            message: format!(
                "{} is larger than the training set ({} images)",
                config.batch_size,
                data.train.len()
            ),
        });
    }
    if config.recipe.is_embedding() && config.eval.knn_k > data.memory.len() {
        return Err(TrainError::Config {
            field: "eval.knn_k".into(),
            message: format!(
                "{} is not allowed: expected at most the kNN memory's {} images",
                config.eval.knn_k,
                data.memory.len()
            ),
        });
    }
    let total_steps = steps_per_epoch * config.epochs;
    let warmup_steps = (config.schedule.warmup_epochs * steps_per_epoch as f64).round() as usize;
    let base_lr = config.optimizer.lr();

    let mut model = Method::init(config, &train_device);
    if config.recipe == Recipe::Finetune && !options.resume {
        model =
            model.map_backbone(|fresh| crate::finetune::load_pretrained(config, fresh, &device))?;
    }
    let mut optimizer = config.optimizer.init();
    let mut state = TrainState::default();
    if options.resume {
        let path = run.last_checkpoint();
        let checkpoint = Checkpoint::load(&path)?;
        model = checkpoint.restore_model(model, &path)?;
        optimizer = checkpoint.restore_optimizer(optimizer, &path)?;
        state = checkpoint.state;
        // Records logged after this checkpoint are logged again from here on (the final
        // evaluation too, when the checkpoint is the last one).
        let step = state.global_step;
        let finished =
            state.epoch >= config.epochs || config.max_steps.is_some_and(|max| step >= max);
        run.retain_metrics(|split, s| s < step || (s == step && !(finished && split == "test")))?;
        progress.message(&format!(
            "resuming {} at epoch {}, batch {} (step {})",
            run.root().display(),
            state.epoch + 1,
            state.batch_in_epoch,
            state.global_step
        ));
    }
    if config.recipe == Recipe::Finetune {
        let freeze = config.finetune.freeze_stages;
        model = model.map_backbone(|b| {
            Ok::<_, TrainError>(crate::finetune::freeze(&config.backbone, b, freeze))
        })?;
    }
    // Every check has passed: only now is anything written to the run folder.
    run.begin()?;
    report_skipped(run, &data.skipped)?;
    // The resolved config of this session (a resume may have changed the learning rate).
    write_atomic(&run.config(), config.to_toml().as_bytes())?;
    let mut log = MetricsLog::open(run)?;
    let session_start_wall = state.wall_seconds;
    let wall = |started: &Instant| session_start_wall + started.elapsed().as_secs_f64();
    let max_steps = config.max_steps.unwrap_or(usize::MAX);
    // A run killed between an epoch-end checkpoint and that epoch's evaluation record gets
    // the evaluation now, so the resumed log has every record of an uninterrupted run.
    if options.resume && missed_epoch_eval(run, config, state) {
        let test = data.evaluate(&model, config, progress, &device)?;
        log.write(&test.record(state, steps_per_epoch, wall(&started)))?;
    }

    // A checkpoint is captured when due but written only once the loss of the next step, which
    // its weights produced, has been read back finite (or at the very end): so a NaN never
    // leaves a checkpoint whose weights produce it, and the one on disk is the last good one.
    // The same read-back also checks that every weight and running statistic is finite: a
    // running variance can overflow while the loss is still finite, and a checkpoint whose
    // next forward pass overflows it is no better than one whose next loss is NaN.
    let mut pending: Option<Checkpoint> = None;
    let rates = crate::finetune::LearningRates::new(
        &config.backbone,
        "Supervised.backbone.",
        config.finetune.backbone_lr_scale,
    );
    'epochs: while state.epoch < config.epochs && state.global_step < max_steps {
        let epoch = state.epoch;
        let batches = BatchLoader::start(
            data.train.clone(),
            data.normalize.clone(),
            loader.clone(),
            epoch,
            state.batch_in_epoch,
        );
        let mut interval = Interval::new(&train_device);
        for batch in batches {
            let lr = warmup_cosine(
                state.global_step,
                total_steps,
                warmup_steps,
                base_lr,
                config.schedule.min_lr,
            );
            let images = batch.len();
            let output = model.step(
                batch.into_device(&train_device),
                &objective,
                state.global_step,
            );
            interval.add(
                output.loss.clone().detach(),
                output.correct,
                output.counted,
                images,
            );
            let grads = GradientsParams::from_grads(output.loss.backward(), &model);
            model = optimizer.step(rates.at(lr), model, grads).after_step(
                state.global_step,
                total_steps,
                config,
            );
            state.global_step += 1;
            state.batch_in_epoch += 1;

            let checkpoint_due = config.checkpoint_every_steps > 0
                && state.global_step % config.checkpoint_every_steps == 0;
            let stop = state.global_step >= max_steps;
            if state.global_step % config.log_every_steps == 0
                || checkpoint_due
                || stop
                || state.batch_in_epoch == steps_per_epoch
            {
                // The one host read of the interval: also the finiteness check that must pass
                // before any checkpoint is written.
                let (loss, acc, images_per_second, seconds, images) = interval.read();
                if !loss.is_finite() {
                    return Err(TrainError::NonFiniteLoss {
                        step: state.global_step,
                        value: loss as f32,
                        checkpoint: checkpoint_name(run),
                    });
                }
                let captures_next =
                    checkpoint_due || stop || state.batch_in_epoch == steps_per_epoch;
                if (pending.is_some() || captures_next)
                    && let Some(tensor) = non_finite_tensor(&model.valid())
                {
                    return Err(TrainError::NonFiniteWeights {
                        step: state.global_step,
                        tensor,
                        checkpoint: checkpoint_name(run),
                    });
                }
                state.train_seconds += seconds;
                state.images_trained += images as u64;
                let record = MetricRecord {
                    split: "train".into(),
                    epoch: epoch as f64 + state.batch_in_epoch as f64 / steps_per_epoch as f64,
                    step: state.global_step,
                    loss: Some(loss),
                    accuracy: acc,
                    knn_top1: None,
                    linear_top1: None,
                    lr: Some(lr),
                    images_per_second: Some(images_per_second),
                    wall_seconds: wall(&started),
                };
                log.write(&record)?;
                if let Some(checkpoint) = pending.take() {
                    checkpoint.save(&run.last_checkpoint())?;
                }
                progress.update(
                    epoch,
                    config.epochs,
                    state.batch_in_epoch,
                    steps_per_epoch,
                    loss,
                    acc,
                    lr,
                    images_per_second,
                    // Training steps left (evaluation not counted).
                    total_steps.min(max_steps).saturating_sub(state.global_step) as f64
                        * config.batch_size as f64
                        / images_per_second.max(1e-9),
                );
                interval = Interval::new(&train_device);
            }
            if state.batch_in_epoch == steps_per_epoch {
                state.epoch += 1;
                state.batch_in_epoch = 0;
            }
            if checkpoint_due || stop || state.batch_in_epoch == 0 {
                state.wall_seconds = wall(&started);
                let checkpoint = capture_checkpoint(run, state, &model, &optimizer)?;
                if stop {
                    checkpoint.save(&run.last_checkpoint())?;
                } else {
                    pending = Some(checkpoint);
                }
            }
            if stop {
                break 'epochs;
            }
        }
        let finished_epoch = state.batch_in_epoch == 0 && state.epoch == epoch + 1;
        if finished_epoch
            && state.epoch < config.epochs
            && config.eval_every_epochs > 0
            && state.epoch % config.eval_every_epochs == 0
        {
            let test = data.evaluate(&model, config, progress, &device)?;
            log.write(&test.record(state, steps_per_epoch, wall(&started)))?;
            progress.message(&format!("epoch {} test: {}", state.epoch, test.describe()));
            // The evaluation ran the epoch-end weights to finite results: their checkpoint is
            // written now, so a run killed from here on resumes after the evaluation.
            if let Some(checkpoint) = pending.take() {
                checkpoint.save(&run.last_checkpoint())?;
            }
        }
    }

    if let Some(checkpoint) = pending.take() {
        checkpoint.save(&run.last_checkpoint())?;
    }
    // The final evaluation: classifier accuracy, or the representation report, whose kNN is
    // also the last test record (the embeddings of both splits are computed once).
    let (test, eval, baselines, table) = match config.recipe {
        Recipe::Supervised | Recipe::Finetune => {
            let test = data.evaluate(&model, config, progress, &device)?;
            let Test::Classifier(accuracy) = &test else {
                unreachable!("a supervised model is evaluated as a classifier")
            };
            let eval = EvalSummary {
                accuracy: Some(accuracy.accuracy),
                loss: Some(accuracy.loss),
                ..EvalSummary::default()
            };
            (test, eval, None, None)
        }
        _ => {
            progress
                .message("evaluating the representation (kNN, linear probe, retrieval, baselines)");
            let report = final_report(
                &model,
                &data.eval_sets(config, progress),
                config,
                run,
                &device,
            )?;
            let knn = report.eval.knn_top1.expect("the report always has kNN");
            (
                Test::Embedding {
                    knn,
                    linear: report.eval.linear_top1,
                },
                report.eval,
                report.baselines,
                Some(report.table),
            )
        }
    };
    state.wall_seconds = wall(&started);
    log.write(&test.record(state, steps_per_epoch, state.wall_seconds))?;
    progress.message(&format!("final test: {}", test.describe()));
    let record = model.clone().valid().into_record();
    let bytes = record.into_bytes().map_err(|e| TrainError::Checkpoint {
        path: run.final_model(),
        reason: e.to_string(),
    })?;
    write_atomic(&run.final_model(), &bytes)?;
    if config.eval.plots {
        crate::plots::training_curves(run)?;
    }
    if let Some(table) = &table {
        write_atomic(&run.root().join("eval.md"), table.as_bytes())?;
    }
    let summary = Summary {
        recipe: config.recipe.name().into(),
        device: options.device.name().into(),
        backbone: config.backbone.name(),
        dataset: data.name.clone(),
        epochs: config.epochs,
        steps: state.global_step,
        wall_seconds: state.wall_seconds,
        train_images_per_second: state.images_trained as f64 / state.train_seconds.max(1e-9),
        eval,
        baselines,
        table,
    };
    let json = serde_json::to_string_pretty(&summary).expect("summaries serialize");
    write_atomic(&run.summary(), json.as_bytes())?;
    Ok(summary)
}

/// The datasets of `config`: both splits with its limits, the kNN memory, the normalisation.
pub(crate) fn load_data(config: &TrainConfig) -> Result<Data, TrainError> {
    Data::load(config)
}

/// The two splits, shared with the loader threads, and their normalisation.
pub(crate) struct Data {
    name: String,
    train: Arc<ImageDataset>,
    pub(crate) test: Arc<ImageDataset>,
    /// The kNN memory and linear-probe training set of embedding methods.
    pub(crate) memory: Arc<ImageDataset>,
    pub(crate) normalize: Normalize,
    /// Image files left out of either split under `on_bad_image = "skip"`.
    skipped: Vec<SkippedImage>,
}

impl Data {
    fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let dir = config
            .data
            .dir
            .clone()
            .unwrap_or_else(repr_data::fashion_mnist_dir);
        let options = LoadOptions {
            image_size: config.data.image_size.map(|[h, w]| (h, w)),
            channels: config.data.channels,
            on_bad_image: config.data.on_bad_image,
        };
        let (mut train, mut skipped) = repr_data::load_with_skipped(&dir, Split::Train, &options)?;
        let (mut test, skipped_test) = repr_data::load_with_skipped(&dir, Split::Test, &options)?;
        skipped.extend(skipped_test);
        if let Some(limit) = config.data.train_limit {
            train = first_shuffled(&train, limit, config.seed);
        }
        if let Some(fraction) = config.data.labels_fraction {
            train = labelled_fraction(&train, fraction, config.seed);
        }
        if let Some(limit) = config.data.test_limit {
            test = first_shuffled(&test, limit, config.seed);
        }
        let train = Arc::new(train);
        let memory = match config.eval.memory_limit {
            Some(limit) if limit < train.len() => {
                Arc::new(first_shuffled(&train, limit, config.seed))
            }
            _ => train.clone(),
        };
        let normalize = Normalize::from_dataset(&train);
        Ok(Self {
            name: dataset_name(&dir),
            train,
            test: Arc::new(test),
            memory,
            normalize,
            skipped,
        })
    }

    /// What a config is fitted to.
    fn shape(&self) -> crate::DataShape {
        let [channels, height, width] = self.train.shape();
        crate::DataShape {
            channels,
            height,
            width,
            num_classes: self.train.num_classes(),
            memory: self.memory.len(),
        }
    }

    fn eval_sets(&self, config: &TrainConfig, progress: Progress) -> EvalSets {
        EvalSets {
            memory: self.memory.clone(),
            test: self.test.clone(),
            normalize: self.normalize.clone(),
            pooling: config.eval.pooling,
            progress,
        }
    }

    /// The per-epoch test metric: classifier accuracy, or kNN top-1 of the embeddings.
    fn evaluate(
        &self,
        model: &Method,
        config: &TrainConfig,
        progress: Progress,
        device: &Device,
    ) -> Result<Test, TrainError> {
        Ok(match model {
            Method::Supervised(classifier) => Test::Classifier(accuracy(
                classifier,
                self.test.clone(),
                &self.normalize,
                config.eval_batch_size,
                device,
            )),
            _ => {
                let (knn, linear) =
                    knn_and_linear(model, &self.eval_sets(config, progress), config, device)?;
                Test::Embedding { knn, linear }
            }
        })
    }
}

/// A per-epoch test result: classifier accuracy, or kNN (and linear-probe) top-1 of the
/// embeddings.
enum Test {
    Classifier(Accuracy),
    Embedding { knn: f64, linear: Option<f64> },
}

impl Test {
    fn describe(&self) -> String {
        match self {
            Test::Classifier(t) => {
                format!("loss {:.4}, accuracy {:.2}%", t.loss, 100.0 * t.accuracy)
            }
            Test::Embedding { knn, linear } => match linear {
                Some(linear) => format!(
                    "kNN top-1 {:.2}%, linear top-1 {:.2}%",
                    100.0 * knn,
                    100.0 * linear
                ),
                None => format!("kNN top-1 {:.2}%", 100.0 * knn),
            },
        }
    }

    fn record(&self, state: TrainState, steps_per_epoch: usize, wall_seconds: f64) -> MetricRecord {
        let (loss, accuracy, knn_top1, linear_top1) = match self {
            Test::Classifier(t) => (Some(t.loss), Some(t.accuracy), None, None),
            Test::Embedding { knn, linear } => (None, None, Some(*knn), *linear),
        };
        MetricRecord {
            split: "test".into(),
            epoch: state.epoch as f64 + state.batch_in_epoch as f64 / steps_per_epoch as f64,
            step: state.global_step,
            loss,
            accuracy,
            knn_top1,
            linear_top1,
            lr: None,
            images_per_second: None,
            wall_seconds,
        }
    }
}

/// A seeded random subset of `limit` images (all of them if the set is smaller).
fn first_shuffled(dataset: &ImageDataset, limit: usize, seed: u64) -> ImageDataset {
    let order = repr_data::epoch_permutation(dataset.len(), seed, usize::MAX);
    dataset.subset(&order[..limit.min(dataset.len())])
}

/// The same fraction of every class, at least one image each (the first of a seeded shuffle),
/// in the shuffled order.
fn labelled_fraction(dataset: &ImageDataset, fraction: f64, seed: u64) -> ImageDataset {
    let order = repr_data::epoch_permutation(dataset.len(), seed, usize::MAX);
    let labels = dataset.labels();
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut per_class = vec![0usize; classes];
    for &label in labels {
        per_class[label as usize] += 1;
    }
    let mut quota: Vec<usize> = per_class
        .iter()
        .map(|&n| ((n as f64 * fraction).round() as usize).clamp(n.min(1), n))
        .collect();
    let chosen: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let q = &mut quota[labels[i] as usize];
            let take = *q > 0;
            *q = q.saturating_sub(1);
            take
        })
        .collect();
    dataset.subset(&chosen)
}

fn dataset_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}

/// Writes the skipped image files to `skipped.txt` and prints them (the first ten) to stderr,
/// even without progress output.
fn report_skipped(run: &RunDir, skipped: &[SkippedImage]) -> Result<(), TrainError> {
    if skipped.is_empty() {
        return Ok(());
    }
    let path = run.skipped_images();
    let text: String = skipped
        .iter()
        .map(|s| format!("{}\t{}\n", s.path.display(), s.reason.replace('\n', " ")))
        .collect();
    write_atomic(&path, text.as_bytes())?;
    let mut message = format!(
        "warning: skipped {} unreadable image file(s) (on_bad_image = skip), listed in {}",
        skipped.len(),
        path.display()
    );
    for s in skipped.iter().take(10) {
        message.push_str(&format!("\n  {s}"));
    }
    if skipped.len() > 10 {
        message.push_str(&format!("\n  ... and {} more", skipped.len() - 10));
    }
    eprintln!("{message}");
    Ok(())
}

/// Whether the checkpoint `state` sits at the end of an epoch that is evaluated, and the log
/// has no test record for it.
fn missed_epoch_eval(run: &RunDir, config: &TrainConfig, state: TrainState) -> bool {
    let due = state.batch_in_epoch == 0
        && state.epoch > 0
        && state.epoch < config.epochs
        && config.eval_every_epochs > 0
        && state.epoch.is_multiple_of(config.eval_every_epochs);
    due && !MetricsLog::read(run)
        .unwrap_or_default()
        .iter()
        .any(|r| r.split == "test" && r.step == state.global_step)
}

fn check_backbone_fits(config: &TrainConfig, train: &ImageDataset) -> Result<(), TrainError> {
    let backbone = &config.backbone;
    if backbone.in_channels() != train.channels() {
        return Err(TrainError::Config {
            field: "backbone.in_channels".into(),
            message: format!(
                "{} does not match the dataset's {} channels",
                backbone.in_channels(),
                train.channels()
            ),
        });
    }
    if let repr_backbones::BackboneConfig::ViT(vit) = backbone {
        let [_, height, width] = train.shape();
        let p = vit.patch_size;
        if !(height.is_multiple_of(p) && width.is_multiple_of(p)) {
            return Err(TrainError::Config {
                field: "backbone.patch_size".into(),
                message: format!(
                    "{p} does not divide the dataset's {height}x{width} images (a ViT cuts them \
                     into whole patches)"
                ),
            });
        }
    }
    let (expected, why) = if config.recipe.is_embedding() {
        (
            0,
            "an embedding method trains an encoder without a classifier",
        )
    } else {
        (train.num_classes(), "the dataset's number of classes")
    };
    if backbone.num_classes() != expected {
        return Err(TrainError::Config {
            field: "backbone.num_classes".into(),
            message: format!(
                "{} is not allowed: expected {expected} ({why})",
                backbone.num_classes()
            ),
        });
    }
    Ok(())
}

fn loader_config(config: &TrainConfig, data: &Data) -> Result<LoaderConfig, TrainError> {
    let train = &data.train;
    let [channels, height, width] = train.shape();
    let dims = ImageDims {
        channels,
        height,
        width,
    };
    let augment_error = |field: &str, e: repr_augment::AugmentError| TrainError::Config {
        field: field.to_string(),
        message: e.to_string(),
    };
    let single_view = !matches!(config.recipe, Recipe::Simclr | Recipe::Byol);
    let crop = (single_view && config.augment.crop_padding > 0)
        .then(|| {
            RandomCropConfig {
                padding: config.augment.crop_padding,
            }
            .init(dims)
        })
        .transpose()
        .map_err(|e| augment_error("augment.crop_padding", e))?;
    let flip = (single_view && config.augment.horizontal_flip > 0.0)
        .then(|| {
            RandomHorizontalFlipConfig {
                probability: config.augment.horizontal_flip,
            }
            .init(dims)
        })
        .transpose()
        .map_err(|e| augment_error("augment.horizontal_flip", e))?;
    let views = if single_view {
        None
    } else {
        let views = config
            .views
            .init(dims)
            .map_err(|e| augment_error("views", e))?;
        Some(Arc::new(MultiViewBatcher::new(
            views,
            data.normalize.clone(),
        )))
    };
    let sampler = if config.recipe == Recipe::Triplet {
        let t = &config.triplet;
        Some(
            PkSampler::new(
                train.labels(),
                t.classes_per_batch,
                t.images_per_class,
                config.seed,
            )
            .map_err(|e| TrainError::Config {
                field: "triplet.classes_per_batch".into(),
                message: e.to_string(),
            })?,
        )
    } else {
        None
    };
    Ok(LoaderConfig {
        batch_size: config.batch_size,
        prefetch: config.prefetch_batches,
        seed: config.seed,
        shuffle: true,
        drop_last: true,
        crop,
        flip,
        views,
        sampler,
    })
}

fn capture_checkpoint(
    run: &RunDir,
    state: TrainState,
    model: &Method,
    optimizer: &burn::optim::ModuleOptimizer,
) -> Result<Checkpoint, TrainError> {
    Checkpoint::capture(state, model.valid(), optimizer).map_err(|reason| TrainError::Checkpoint {
        path: run.last_checkpoint(),
        reason,
    })
}

fn checkpoint_name(run: &RunDir) -> String {
    let path = run.last_checkpoint();
    if path.exists() {
        path.display().to_string()
    } else {
        "none written yet".into()
    }
}

/// Sums over the steps since the last log, kept on the device until read.
struct Interval {
    loss: Tensor<1>,
    correct: Option<Tensor<1, Int>>,
    counted: usize,
    steps: usize,
    images: usize,
    started: Instant,
}

impl Interval {
    fn new(device: &Device) -> Self {
        let device = device.clone().without_autodiff();
        Self {
            loss: Tensor::zeros([1], &device),
            correct: None,
            counted: 0,
            steps: 0,
            images: 0,
            started: Instant::now(),
        }
    }

    fn add(
        &mut self,
        loss: Tensor<1>,
        correct: Option<Tensor<1, Int>>,
        counted: usize,
        images: usize,
    ) {
        self.loss = self.loss.clone() + loss.without_autodiff();
        if let Some(correct) = correct {
            let correct = correct.without_autodiff();
            self.correct = Some(match self.correct.take() {
                Some(sum) => sum + correct,
                None => correct,
            });
        }
        self.counted += counted;
        self.steps += 1;
        self.images += images;
    }

    /// Mean loss, metric, images/s, seconds and images of the interval (one device read).
    fn read(&self) -> (f64, Option<f64>, f64, f64, usize) {
        let loss = self.loss.clone().into_scalar::<f32>() as f64 / self.steps.max(1) as f64;
        let metric = self
            .correct
            .clone()
            .map(|correct| correct.into_scalar::<i64>() as f64 / self.counted.max(1) as f64);
        let seconds = self.started.elapsed().as_secs_f64();
        (
            loss,
            metric,
            self.images as f64 / seconds.max(1e-9),
            seconds,
            self.images,
        )
    }
}

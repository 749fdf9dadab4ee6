//! The training loop: a short loop over small parts. [`Setup`] checks everything and builds the
//! run's data, loader and [`Stepper`] before anything is written; [`Recorder`] owns the metrics
//! log and the checkpoints; [`crate::evaluation`] evaluates; the loop itself matches no method.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use repr_data::SkippedImage;

use crate::checkpoint::{non_finite_tensor, write_atomic};
use crate::checkpoint_store::CheckpointStore;
use crate::data::RunData;
use crate::distributed::{Group, SeededDraw};
use crate::evaluation::{Test, evaluate, final_evaluation};
use crate::init::LearningRates;
use crate::progress::Progress;
use crate::stepper::{DataParallel, IntervalStats, StepAt, Stepper};
use crate::{
    BatchLoader, Checkpoint, DeviceSpec, LoaderConfig, MetricRecord, MetricsLog, RunDir, Summary,
    TrainConfig, TrainError, TrainState, warmup_cosine,
};

/// How [`train`] runs, beside the config.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// The backend, and which of its devices.
    pub device: DeviceSpec,
    /// Continue from the run folder's last checkpoint.
    pub resume: bool,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Trains `config` into `run`, evaluates on the test split and writes `summary.json`: a run
/// of one process ([`train_in`] spreads it over several).
pub fn train(
    config: &TrainConfig,
    run: &RunDir,
    options: &TrainOptions,
) -> Result<Summary, TrainError> {
    train_in(config, run, options, &Group::one_process())
}

/// Trains `config` into `run` on this rank of `group` (every rank calls it with the same
/// config): each rank steps on its share of every global batch of `batch_size` images; rank 0
/// alone writes the run folder (config, metrics, checkpoints, evaluation, summary), and every
/// rank returns rank 0's summary. With a group of one process this is [`train`].
///
/// Checkpoints of the state every `checkpoint_every_steps` and at the end of each epoch go to
/// `run.last_checkpoint()` at the next loss read-back, once the loss that their weights produced
/// is known to be finite (the last one at the end of the run), so a NaN stops the run with the
/// last good checkpoint in place.
pub fn train_in(
    config: &TrainConfig,
    run: &RunDir,
    options: &TrainOptions,
    group: &Group,
) -> Result<Summary, TrainError> {
    let started = Instant::now();
    let Setup {
        config,
        data,
        loader,
        schedule,
        device,
        mut stepper,
        mut state,
        progress,
        mut drawing,
    } = Setup::new(config, run, options, group)?;
    let config = &config;
    let leader = group.is_leader();
    // Every check has passed: only now is anything written to the run folder (by rank 0).
    let mut recorder = Recorder::begin(run, config, &data.skipped, state, started, leader)?;
    recorder.traffic_before = group.totals();
    // A run killed between an epoch-end checkpoint and that epoch's evaluation record gets
    // the evaluation now, so the resumed log has every record of an uninterrupted run.
    if leader && options.resume && missed_epoch_eval(run, config, state) {
        let test = evaluate(stepper.model(), &data, config, progress, &device)?;
        recorder.log_test(&test, state, schedule.steps_per_epoch, recorder.wall())?;
    }
    let max_steps = config.max_steps.unwrap_or(usize::MAX);
    'epochs: while state.epoch < config.epochs && state.global_step < max_steps {
        let epoch = state.epoch;
        let batches = BatchLoader::start(
            data.train.clone(),
            data.normalize.clone(),
            loader.clone(),
            epoch,
            state.batch_in_epoch,
        );
        let mut interval = stepper.interval();
        for batch in batches {
            let at = schedule.at(state.global_step, config);
            stepper.step(batch, at, &mut interval);
            if let Some(drawing) = drawing.take() {
                drawing.finish(stepper.model());
            }
            state.global_step += 1;
            state.batch_in_epoch += 1;
            let epoch_done = state.batch_in_epoch == schedule.steps_per_epoch;
            let checkpoint_due = config.checkpoint_every_steps > 0
                && state.global_step % config.checkpoint_every_steps == 0;
            let stop = state.global_step >= max_steps;
            let captures = checkpoint_due || stop || epoch_done;
            if captures || state.global_step % config.log_every_steps == 0 {
                // The one host read of the interval: also the finiteness check that must pass
                // before any checkpoint is written.
                let stats = interval.read();
                recorder.check_finite(&stats, stepper.as_ref(), state, captures)?;
                recorder.log_train(&stats, &mut state, at.lr, schedule.steps_per_epoch)?;
                let left = schedule
                    .total
                    .min(max_steps)
                    .saturating_sub(state.global_step);
                progress.update(
                    epoch,
                    config.epochs,
                    state.batch_in_epoch,
                    schedule.steps_per_epoch,
                    stats.loss,
                    stats.metric,
                    at.lr,
                    stats.images_per_second,
                    // Training steps left (evaluation not counted).
                    left as f64 * config.batch_size as f64 / stats.images_per_second.max(1e-9),
                );
                interval = stepper.interval();
            }
            if epoch_done {
                state.epoch += 1;
                state.batch_in_epoch = 0;
            }
            if captures {
                recorder.capture(&mut state, stepper.as_ref(), stop)?;
            }
            if stop {
                break 'epochs;
            }
        }
        let finished_epoch = state.batch_in_epoch == 0 && state.epoch == epoch + 1;
        if leader
            && finished_epoch
            && state.epoch < config.epochs
            && config.eval_every_epochs > 0
            && state.epoch % config.eval_every_epochs == 0
        {
            let test = evaluate(stepper.model(), &data, config, progress, &device)?;
            recorder.log_test(&test, state, schedule.steps_per_epoch, recorder.wall())?;
            progress.message(&format!("epoch {} test: {}", state.epoch, test.describe()));
            // The evaluation ran the epoch-end weights to finite results: their checkpoint is
            // written now, so a run killed from here on resumes after the evaluation.
            recorder.save_pending()?;
        }
    }
    recorder.save_pending()?;
    if !leader {
        // Rank 0 evaluates and writes; the others wait for its summary.
        return follow_summary(group);
    }
    let result = finish(
        config,
        run,
        options,
        &data,
        stepper.as_ref(),
        &mut recorder,
        state,
        &schedule,
        progress,
        &device,
    );
    if group.size() > 1 {
        let message = result
            .as_ref()
            .map(|summary| serde_json::to_vec(summary).expect("summaries serialize"))
            .map_err(|e| e.to_string());
        group.broadcast_result(message).ok();
    }
    result
}

/// The summary that rank 0 broadcast at the end of the run (or its error).
fn follow_summary(group: &Group) -> Result<Summary, TrainError> {
    let bytes = group
        .broadcast_result(Ok(Vec::new()))
        .map_err(|message| TrainError::Leader { message })?;
    serde_json::from_slice(&bytes).map_err(|e| TrainError::Leader {
        message: format!("its summary did not parse: {e}"),
    })
}

/// The final evaluation, the trained model, plots and `summary.json` (rank 0).
#[allow(clippy::too_many_arguments)]
fn finish(
    config: &TrainConfig,
    run: &RunDir,
    options: &TrainOptions,
    data: &RunData,
    stepper: &dyn Stepper,
    recorder: &mut Recorder<'_>,
    mut state: TrainState,
    schedule: &Schedule,
    progress: Progress,
    device: &Device,
) -> Result<Summary, TrainError> {
    let model = stepper.valid_model();
    let last = final_evaluation(&model, data, config, run, progress, device)?;
    state.wall_seconds = recorder.wall();
    recorder.log_test(
        &last.test,
        state,
        schedule.steps_per_epoch,
        state.wall_seconds,
    )?;
    progress.message(&format!("final test: {}", last.test.describe()));
    let bytes = model
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::Checkpoint {
            path: run.final_model(),
            reason: e.to_string(),
        })?;
    write_atomic(&run.final_model(), &bytes)?;
    if config.eval.plots {
        crate::plots::training_curves(run)?;
    }
    if let Some(table) = &last.table {
        write_atomic(&run.root().join("eval.md"), table.as_bytes())?;
    }
    let summary = Summary {
        recipe: config.method.kind().into(),
        device: options.device.name().into(),
        backbone: config.backbone.name(),
        dataset: data.name.clone(),
        epochs: config.epochs,
        batch_size: config.batch_size,
        ranks: stepper.group().size(),
        steps: state.global_step,
        wall_seconds: state.wall_seconds,
        train_images_per_second: state.images_trained as f64 / state.train_seconds.max(1e-9),
        eval: last.eval,
        baselines: last.baselines,
        communication: recorder.communication(stepper.group(), state.global_step),
        table: last.table,
    };
    let json = serde_json::to_string_pretty(&summary).expect("summaries serialize");
    write_atomic(&run.summary(), json.as_bytes())?;
    Ok(summary)
}

/// Everything a run needs, built and checked before anything is written.
struct Setup {
    /// The config fitted to the data (and, for fine-tuning, to the pre-trained architecture).
    config: TrainConfig,
    data: RunData,
    loader: LoaderConfig,
    schedule: Schedule,
    /// The evaluation device (without autodiff).
    device: Device,
    stepper: Box<dyn Stepper>,
    state: TrainState,
    progress: Progress,
    /// The device's generator, held until the model's first step (one rank).
    drawing: Option<SeededDraw>,
}

impl Setup {
    fn new(
        config: &TrainConfig,
        run: &RunDir,
        options: &TrainOptions,
        group: &Group,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let ranks = group.size();
        if !config.batch_size.is_multiple_of(ranks) {
            return Err(TrainError::Config {
                field: "batch_size".into(),
                message: format!(
                    "the global batch of {} images does not split evenly over {ranks} ranks",
                    config.batch_size
                ),
            });
        }
        // Fine-tuning from a repr run takes that run's backbone architecture.
        let config = crate::init::resolve(config)?;
        let progress = Progress::new(options.progress && group.is_leader());
        let device = options.device.device()?;
        let train_device = device.clone().autodiff();

        let data = RunData::load(&config)?;
        // The fields left to the data (channels, classes, image size, views, k) are filled in.
        let config = config.fitted_to(&data.shape())?;
        data.check(&config)?;
        let loader = LoaderConfig::for_training(
            &config.method.data(),
            &config.augment,
            config.augment_on,
            &data.train,
            &data.normalize,
            config.batch_size,
            config.prefetch_batches,
            config.seed,
        )?
        .sharded(group.rank(), ranks);
        let schedule = Schedule::new(
            &config,
            BatchLoader::batches_per_epoch(data.train.len(), &loader),
        )
        .ok_or_else(|| TrainError::Config {
            field: "batch_size".into(),
            message: format!(
                "{} is larger than the training set ({} images)",
                config.batch_size,
                data.train.len()
            ),
        })?;
        data.check_memory(&config)?;

        let facts = config.run_facts(data.normalize.clone());
        // With one rank the draw stays open until the first step (Burn draws on first use).
        let (mut model, drawing) =
            crate::distributed::draw_model(group, &device, config.seed, || {
                config.init_method(&facts, &train_device)
            })?;
        if config.init.is_some() && !options.resume {
            model = model
                .map_backbone(|fresh| crate::init::load_pretrained(&config, fresh, &device))?
                .reset_copies();
        }
        let mut optimizer = config.optimizer.init();
        let mut state = TrainState::default();
        if options.resume {
            // Rank 0's file (the only one written), verified, on every rank.
            let store = CheckpointStore::new(run, config.checkpoint_keep);
            let (path, checkpoint) = if ranks == 1 {
                let selected = store.select_for_resume(run.fallback())?;
                let checkpoint = Checkpoint::parse(&selected.bytes, &selected.path)?;
                (selected.path, checkpoint)
            } else {
                let selected = if group.is_leader() {
                    store
                        .select_for_resume(run.fallback())
                        .map(|s| s.bytes)
                        .map_err(|e| e.to_string())
                } else {
                    Ok(Vec::new())
                };
                let bytes = group
                    .broadcast_result(selected)
                    .map_err(|message| TrainError::Leader { message })?;
                let path = run.last_checkpoint();
                let checkpoint = Checkpoint::parse(&bytes, &path)?;
                (path, checkpoint)
            };
            model = checkpoint.restore_model(model, &path)?;
            optimizer = checkpoint.restore_optimizer(optimizer, &path)?;
            state = checkpoint.state;
            // Records logged after this checkpoint are logged again from here on (the final
            // evaluation too, when the checkpoint is the last one).
            let step = state.global_step;
            let finished =
                state.epoch >= config.epochs || config.max_steps.is_some_and(|max| step >= max);
            if group.is_leader() {
                run.retain_metrics(|split, s| {
                    s < step || (s == step && !(finished && split == "test"))
                })?;
            }
            progress.message(&format!(
                "resuming {} from {} at epoch {}, batch {} (step {})",
                run.root().display(),
                path.file_name().unwrap_or_default().to_string_lossy(),
                state.epoch + 1,
                state.batch_in_epoch,
                state.global_step
            ));
        }
        let (freeze, scale) = config
            .init
            .as_ref()
            .map_or((None, 1.0), |i| (i.freeze_stages, i.backbone_lr_scale));
        if freeze.is_some() {
            model = model.map_backbone(|b| {
                Ok::<_, TrainError>(crate::init::freeze(&config.backbone, b, freeze))
            })?;
        }
        let rates = LearningRates::new(&config.backbone, model.backbone_path(), scale);
        let stepper: Box<dyn Stepper> = if ranks == 1 {
            Box::new(DataParallel::single_device(
                train_device,
                model,
                optimizer,
                rates,
            ))
        } else {
            if !options.resume {
                // Every rank starts from rank 0's parameters (a resumed run already loaded
                // rank 0's checkpoint everywhere).
                model = crate::distributed::broadcast_module(group, model, &train_device)?;
            }
            if config.sync_batch_norm && !repr_kernels::uses_repr_kernels(&device) {
                return Err(TrainError::Config {
                    field: "sync_batch_norm".into(),
                    message: format!(
                        "synchronised BatchNorm runs in repr's CPU kernels: it needs the flex \
                         device with REPR_KERNELS unset or \"repr\" (this run: {})",
                        options.device.name()
                    ),
                });
            }
            Box::new(
                DataParallel::new(train_device, model, optimizer, rates, group.clone())
                    .with_sync_batch_norm(config.sync_batch_norm),
            )
        };
        Ok(Self {
            config,
            data,
            loader,
            schedule,
            device,
            stepper,
            state,
            progress,
            drawing,
        })
    }
}

/// The run's length and learning-rate schedule.
struct Schedule {
    steps_per_epoch: usize,
    total: usize,
    warmup: usize,
}

impl Schedule {
    /// `None` when an epoch has no full batch.
    fn new(config: &TrainConfig, steps_per_epoch: usize) -> Option<Self> {
        (steps_per_epoch > 0).then(|| Self {
            steps_per_epoch,
            total: steps_per_epoch * config.epochs,
            warmup: (config.schedule.warmup_epochs * steps_per_epoch as f64).round() as usize,
        })
    }

    fn at(&self, step: usize, config: &TrainConfig) -> StepAt {
        StepAt {
            step,
            total: self.total,
            lr: warmup_cosine(
                step,
                self.total,
                self.warmup,
                config.peak_lr(),
                config.schedule.min_lr,
            ),
        }
    }
}

/// The run folder's metrics log and checkpoints. A checkpoint is captured when due but written
/// only once the loss of the next step, which its weights produced, has been read back finite
/// (or at the very end): so a NaN never leaves a checkpoint whose weights produce it, and the
/// one on disk is the last good one. The same read-back also checks that every weight and
/// running statistic is finite: a running variance can overflow while the loss is still finite,
/// and a checkpoint whose next forward pass overflows it is no better than one whose next loss
/// is NaN.
struct Recorder<'a> {
    run: &'a RunDir,
    checkpoints: CheckpointStore<'a>,
    /// `None` on ranks other than 0, which write nothing.
    log: Option<MetricsLog>,
    pending: Option<Checkpoint>,
    /// Wall time of earlier sessions.
    before: f64,
    /// The step this session started at.
    first_step: usize,
    /// The group's traffic when the loop started (after the start-up broadcasts).
    traffic_before: crate::distributed::CommTotals,
    started: Instant,
}

impl<'a> Recorder<'a> {
    /// Starts writing the run folder: the skipped files, the resolved config of this session (a
    /// resume may have changed the learning rate, and an old-shape config is written back in
    /// the current shape), the metrics log.
    fn begin(
        run: &'a RunDir,
        config: &TrainConfig,
        skipped: &[SkippedImage],
        state: TrainState,
        started: Instant,
        leader: bool,
    ) -> Result<Self, TrainError> {
        let log = if leader {
            run.begin()?;
            report_skipped(run, skipped)?;
            write_atomic(&run.config(), config.to_toml().as_bytes())?;
            Some(MetricsLog::open(run)?)
        } else {
            None
        };
        Ok(Self {
            run,
            checkpoints: CheckpointStore::new(run, config.checkpoint_keep),
            log,
            pending: None,
            before: state.wall_seconds,
            first_step: state.global_step,
            traffic_before: Default::default(),
            started,
        })
    }

    /// Traffic per step of this session, in a data-parallel run.
    fn communication(&self, group: &Group, step: usize) -> Option<crate::Communication> {
        let steps = step.saturating_sub(self.first_step).max(1) as f64;
        let (now, before) = (group.totals(), self.traffic_before);
        (group.size() > 1).then(|| crate::Communication {
            bytes_per_step: (now.bytes - before.bytes) as f64 / steps,
            seconds_per_step: (now.seconds - before.seconds) / steps,
            calls_per_step: (now.calls - before.calls) as f64 / steps,
        })
    }

    fn wall(&self) -> f64 {
        self.before + self.started.elapsed().as_secs_f64()
    }

    /// A non-finite loss, or non-finite weights before a checkpoint, stop the run.
    fn check_finite(
        &self,
        stats: &IntervalStats,
        stepper: &dyn Stepper,
        state: TrainState,
        captures: bool,
    ) -> Result<(), TrainError> {
        if !stats.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: state.global_step,
                value: stats.loss as f32,
                checkpoint: checkpoint_name(self.run),
            });
        }
        if (self.pending.is_some() || captures)
            && let Some(tensor) = non_finite_tensor(&stepper.model().valid())
        {
            return Err(TrainError::NonFiniteWeights {
                step: state.global_step,
                tensor,
                checkpoint: checkpoint_name(self.run),
            });
        }
        // A collective: every rank checks at the same steps (a pending checkpoint exists on
        // rank 0 alone).
        if captures {
            let ranks = stepper.diverged_ranks();
            if !ranks.is_empty() {
                return Err(TrainError::RanksDiverged {
                    step: state.global_step,
                    ranks,
                    checkpoint: checkpoint_name(self.run),
                });
            }
        }
        Ok(())
    }

    /// Logs the interval read back at `state` and writes the pending checkpoint (its weights
    /// gave finite losses).
    fn log_train(
        &mut self,
        stats: &IntervalStats,
        state: &mut TrainState,
        lr: f64,
        steps_per_epoch: usize,
    ) -> Result<(), TrainError> {
        state.train_seconds += stats.seconds;
        state.images_trained += stats.images as u64;
        let wall = self.wall();
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        log.write(&MetricRecord {
            split: "train".into(),
            epoch: state.epoch as f64 + state.batch_in_epoch as f64 / steps_per_epoch as f64,
            step: state.global_step,
            loss: Some(stats.loss),
            accuracy: stats.metric,
            knn_top1: None,
            linear_top1: None,
            lr: Some(lr),
            images_per_second: Some(stats.images_per_second),
            wall_seconds: wall,
        })?;
        self.save_pending()
    }

    /// Logs a test result at `state`, at wall time `wall`.
    fn log_test(
        &mut self,
        test: &Test,
        state: TrainState,
        steps_per_epoch: usize,
        wall: f64,
    ) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.write(&test.record(state, steps_per_epoch, wall)),
            None => Ok(()),
        }
    }

    /// Captures the state; at the `last` step it is written at once.
    fn capture(
        &mut self,
        state: &mut TrainState,
        stepper: &dyn Stepper,
        last: bool,
    ) -> Result<(), TrainError> {
        state.wall_seconds = self.wall();
        if self.log.is_none() {
            return Ok(());
        }
        let checkpoint = Checkpoint::capture(*state, stepper.model().valid(), stepper.optimizer())
            .map_err(|reason| TrainError::Checkpoint {
                path: self.run.last_checkpoint(),
                reason,
            })?;
        if last {
            self.checkpoints.save(&checkpoint)
        } else {
            self.pending = Some(checkpoint);
            Ok(())
        }
    }

    fn save_pending(&mut self) -> Result<(), TrainError> {
        match self.pending.take() {
            Some(checkpoint) => self.checkpoints.save(&checkpoint),
            None => Ok(()),
        }
    }
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

fn checkpoint_name(run: &RunDir) -> String {
    let path = run.last_checkpoint();
    if path.exists() {
        path.display().to_string()
    } else {
        "none written yet".into()
    }
}

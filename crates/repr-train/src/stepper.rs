//! The step seam: how one batch becomes one optimizer step. [`DataParallel`] steps on one
//! device ([`DataParallel::single_device`]) or on each rank of a group of devices or processes,
//! behind one trait, so the training loop does not change.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};

use crate::distributed::{Group, LossScope, all_reduce_gradients, diverged_ranks};
use crate::init::LearningRates;
use crate::methods::StepContext;
use crate::{AfterStep, Method, Prepared};

/// Where a step sits in the run.
#[derive(Debug, Clone, Copy)]
pub struct StepAt {
    /// The step, counted from 0 over the whole run.
    pub step: usize,
    /// Steps of the whole run (the schedule's length).
    pub total: usize,
    /// The learning rate of this step (before any learning-rate group's scale).
    pub lr: f64,
}

/// Takes optimizer steps: forward, backward, update and the method's post-step hook.
pub trait Stepper {
    /// One optimizer step on `batch`; the step's loss and metric are added to `interval`.
    fn step(&mut self, batch: Prepared, at: StepAt, interval: &mut Interval);

    /// The network as it is now.
    fn model(&self) -> &Method;

    /// The optimizer (for checkpoints).
    fn optimizer(&self) -> &ModuleOptimizer;

    /// The device the step's outputs are read on.
    fn device(&self) -> &Device;

    /// The ranks the global batch is spread over (one process on a single device).
    fn group(&self) -> &Group;

    /// A new, empty interval of steps to log.
    fn interval(&self) -> Interval {
        Interval::new(self.device(), self.group().clone())
    }

    /// The network in inference mode.
    fn valid_model(&self) -> Method {
        self.model().valid()
    }

    /// Ranks whose trained parameters differ from rank 0's (empty: they agree, bit for bit).
    fn diverged_ranks(&self) -> Vec<usize> {
        Vec::new()
    }
}

/// Several ranks (processes, one per device or machine), each with a replica of the network:
/// rank `r` steps on its share of every global batch (the loader gives it), the gradients are
/// all-reduced (summed, in flat buckets; divided by the ranks for a loss that is a mean over
/// shares) and every rank takes the same optimizer step, so the replicas stay bit-identical.
/// BatchNorm normalises each rank's share by its own statistics and keeps each rank's running
/// statistics (rank 0's are saved and evaluated), unless synchronised
/// ([`DataParallel::with_sync_batch_norm`]). Over one process ([`DataParallel::single_device`])
/// it is the plain step on one device: nothing to reduce, gather or synchronise.
pub struct DataParallel {
    device: Device,
    model: Option<Method>,
    optimizer: ModuleOptimizer,
    rates: LearningRates,
    group: Group,
    sync_batch_norm: bool,
}

impl DataParallel {
    /// A stepper for `model` (on the autodiff `device`, the same initial parameters on every
    /// rank) over the ranks of `group`.
    pub fn new(
        device: Device,
        model: Method,
        optimizer: ModuleOptimizer,
        rates: LearningRates,
        group: Group,
    ) -> Self {
        Self {
            device,
            model: Some(model),
            optimizer,
            rates,
            group,
            sync_batch_norm: false,
        }
    }

    /// A stepper for `model` on the autodiff `device` alone (one process: no collective is
    /// called, the gradients are the step's own).
    pub fn single_device(
        device: Device,
        model: Method,
        optimizer: ModuleOptimizer,
        rates: LearningRates,
    ) -> Self {
        Self::new(device, model, optimizer, rates, Group::one_process())
    }

    /// With `sync`, BatchNorm layers normalise with the statistics of the whole global batch
    /// (summed over the ranks in the forward and backward pass; flex with repr's kernels).
    pub fn with_sync_batch_norm(self, sync: bool) -> Self {
        Self {
            sync_batch_norm: sync,
            ..self
        }
    }
}

impl Stepper for DataParallel {
    fn step(&mut self, batch: Prepared, at: StepAt, interval: &mut Interval) {
        let model = self
            .model
            .take()
            .expect("the model is put back after every step");
        let images = batch.len();
        let context = StepContext {
            step: at.step,
            group: &self.group,
        };
        let step = || {
            let output = model.step(batch.into_device(&self.device), &context);
            let grads = GradientsParams::from_grads(output.loss.backward(), &model);
            (output, grads)
        };
        let (output, grads) = match self.sync_batch_norm && self.group.size() > 1 {
            true => repr_kernels::with_sync_batch_norm(self.group.statistics_sum(), step),
            false => step(),
        };
        interval.add(&output, images * self.group.size());
        let scale = match output.scope {
            LossScope::Shard => 1.0 / self.group.size() as f32,
            LossScope::Global => 1.0,
        };
        let grads = all_reduce_gradients(&self.group, &model, grads, scale);
        let model = self.optimizer.step(self.rates.at(at.lr), model, grads);
        let after = AfterStep {
            step: at.step,
            total: at.total,
            output: &output,
        };
        self.model = Some(model.after_step(&after));
    }

    fn model(&self) -> &Method {
        self.model
            .as_ref()
            .expect("the model is put back after every step")
    }

    fn optimizer(&self) -> &ModuleOptimizer {
        &self.optimizer
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn group(&self) -> &Group {
        &self.group
    }

    fn diverged_ranks(&self) -> Vec<usize> {
        match self.group.size() {
            1 => Vec::new(),
            _ => diverged_ranks(&self.group, self.model()),
        }
    }
}

/// Sums over the steps since the last log, kept on the device until read.
pub struct Interval {
    loss: Tensor<1>,
    correct: Option<Tensor<1, Int>>,
    counted: usize,
    steps: usize,
    images: usize,
    started: Instant,
    group: Group,
    scope: LossScope,
}

/// What an interval read back: mean loss and metric, throughput.
pub struct IntervalStats {
    /// Mean loss over the interval's steps.
    pub loss: f64,
    /// Correct / counted, for methods with a metric.
    pub metric: Option<f64>,
    /// Images per second over the interval.
    pub images_per_second: f64,
    /// Seconds the interval took.
    pub seconds: f64,
    /// Images trained in the interval.
    pub images: usize,
}

impl Interval {
    /// An empty interval starting now, summing on `device` (without autodiff); its steps are
    /// spread over the ranks of `group`.
    pub fn new(device: &Device, group: Group) -> Self {
        let device = device.clone().without_autodiff();
        Self {
            loss: Tensor::zeros([1], &device),
            correct: None,
            counted: 0,
            steps: 0,
            images: 0,
            started: Instant::now(),
            group,
            scope: LossScope::Shard,
        }
    }

    /// Adds one step's detached loss and metric, and the images it trained on (over every
    /// rank).
    pub fn add(&mut self, output: &crate::StepOutput, images: usize) {
        self.scope = output.scope;
        self.loss = self.loss.clone() + output.loss.clone().detach().without_autodiff();
        if let Some(correct) = output.correct.clone() {
            let correct = correct.without_autodiff();
            self.correct = Some(match self.correct.take() {
                Some(sum) => sum + correct,
                None => correct,
            });
        }
        self.counted += output.counted;
        self.steps += 1;
        self.images += images;
    }

    /// Reads the interval back (one device read; across ranks, one all-reduce of a shard
    /// loss's sums, so every rank reads the same global values).
    pub fn read(&self) -> IntervalStats {
        let mut sums = [
            self.loss.clone().into_scalar::<f32>() as f64,
            self.correct
                .clone()
                .map_or(0.0, |correct| correct.into_scalar::<i64>() as f64),
            self.counted as f64,
        ];
        let ranks = self.group.size();
        if ranks > 1 && self.scope == LossScope::Shard {
            self.group.all_reduce_sum_f64(&mut sums);
            sums[0] /= ranks as f64;
        }
        let [loss, correct, counted] = sums;
        let loss = loss / self.steps.max(1) as f64;
        let metric = self.correct.as_ref().map(|_| correct / counted.max(1.0));
        let seconds = self.started.elapsed().as_secs_f64();
        IntervalStats {
            loss,
            metric,
            images_per_second: self.images as f64 / seconds.max(1e-9),
            seconds,
            images: self.images,
        }
    }
}

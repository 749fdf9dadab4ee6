//! The step seam: how one batch becomes one optimizer step. [`SingleDevice`] trains on one
//! device; a data-parallel stepper (several devices or processes) implements the same trait, so
//! the training loop does not change.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};

use crate::init::LearningRates;
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
}

/// One device: the batch is uploaded to it and stepped there.
pub struct SingleDevice {
    device: Device,
    model: Option<Method>,
    optimizer: ModuleOptimizer,
    rates: LearningRates,
}

impl SingleDevice {
    /// A stepper for `model` (on the autodiff `device`) with `optimizer` and per-group `rates`.
    pub fn new(
        device: Device,
        model: Method,
        optimizer: ModuleOptimizer,
        rates: LearningRates,
    ) -> Self {
        Self {
            device,
            model: Some(model),
            optimizer,
            rates,
        }
    }

    /// The network in inference mode.
    pub fn valid_model(&self) -> Method {
        self.model().valid()
    }
}

impl Stepper for SingleDevice {
    fn step(&mut self, batch: Prepared, at: StepAt, interval: &mut Interval) {
        let model = self
            .model
            .take()
            .expect("the model is put back after every step");
        let images = batch.len();
        let output = model.step(batch.into_device(&self.device), at.step);
        interval.add(
            output.loss.clone().detach(),
            output.correct.clone(),
            output.counted,
            images,
        );
        let grads = GradientsParams::from_grads(output.loss.backward(), &model);
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
}

/// Sums over the steps since the last log, kept on the device until read.
pub struct Interval {
    loss: Tensor<1>,
    correct: Option<Tensor<1, Int>>,
    counted: usize,
    steps: usize,
    images: usize,
    started: Instant,
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
    /// An empty interval starting now, summing on `device` (without autodiff).
    pub fn new(device: &Device) -> Self {
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

    /// Adds one step's detached loss, metric and image count.
    pub fn add(
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

    /// Reads the interval back (one device read).
    pub fn read(&self) -> IntervalStats {
        let loss = self.loss.clone().into_scalar::<f32>() as f64 / self.steps.max(1) as f64;
        let metric = self
            .correct
            .clone()
            .map(|correct| correct.into_scalar::<i64>() as f64 / self.counted.max(1) as f64);
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

//! Linear probe: a logistic-regression classifier trained on frozen embeddings.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{check_label_count, check_labels};
use crate::{Embeddings, EvalError};

/// Settings of [`linear_probe`]. The defaults are the reference protocol our SimCLR runs are
/// compared with: multinomial logistic regression on standardised features, Adam with learning
/// rate 1e-3 (PyTorch's betas and epsilon), 30 epochs of batches of 256, no weight decay.
#[derive(Config, Debug)]
pub struct LinearProbeConfig {
    /// Adam's learning rate, constant.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Passes over the training embeddings.
    #[config(default = 30)]
    pub epochs: usize,
    /// Embeddings per step; the last batch of an epoch may be smaller.
    #[config(default = 256)]
    pub batch_size: usize,
    /// Standardise each dimension with the training set's mean and standard deviation (a
    /// constant dimension keeps scale 1), as scikit-learn's `StandardScaler`.
    #[config(default = true)]
    pub standardize: bool,
    /// L2 penalty added to the gradient (PyTorch Adam's `weight_decay`).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Start from zero weights instead of PyTorch `nn.Linear`'s `U(-1/√d, 1/√d)`. The loss is
    /// convex, so both reach the same optimum; zeros make the first steps computable by hand.
    #[config(default = false)]
    pub zero_init: bool,
    /// Seed of the initial weights and the batch order.
    #[config(default = 0)]
    pub seed: u64,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of [`linear_probe`].
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbeResult {
    /// Top-1 accuracy on the training embeddings after training.
    pub train_top1: f64,
    /// Top-1 accuracy on the test embeddings.
    pub test_top1: f64,
    /// Mean cross-entropy of each epoch's batches, weighted by batch size.
    pub epoch_losses: Vec<f64>,
}

/// `logits = x W + b`, initialised as PyTorch's `nn.Linear`: `U(-1/√d, 1/√d)`.
#[derive(Module, Debug)]
struct Probe {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

impl Probe {
    fn init(dim: usize, classes: usize, zero: bool, rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let bound = 1.0 / (dim as f32).sqrt();
        let mut uniform = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    if zero {
                        0.0
                    } else {
                        rng.random_range(-bound..bound)
                    }
                })
                .collect()
        };
        let weight = TensorData::new(uniform(dim * classes), [dim, classes]);
        let bias = TensorData::new(uniform(classes), [classes]);
        Self {
            weight: Param::from_tensor(Tensor::from_data(weight, device)),
            bias: Param::from_tensor(Tensor::from_data(bias, device)),
        }
    }

    /// # Shapes
    /// - x: `[batch, dim]` → `[batch, classes]`
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze()
    }
}

/// Trains a linear classifier on frozen `train` embeddings with Adam and cross-entropy, on
/// `device` with autodiff, and reports its top-1 accuracy on both splits.
///
/// ```
/// use burn::tensor::Device;
/// use repr_eval::{linear_probe, Embeddings, LinearProbeConfig};
///
/// // Two classes separated by the sign of the first coordinate.
/// let train = Embeddings::new(vec![1.0, 0.3, 2.0, -0.1, -1.0, 0.2, -2.0, 0.0], 4, 2)?;
/// let test = Embeddings::new(vec![1.5, 0.0, -1.5, 0.1], 2, 2)?;
/// let config = LinearProbeConfig::new().with_learning_rate(0.1).with_epochs(50).with_batch_size(4);
/// let result = linear_probe(&train, &[1, 1, 0, 0], &test, &[1, 0], 2, &config, &Device::flex())?;
/// assert_eq!((result.train_top1, result.test_top1), (1.0, 1.0));
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
///
/// # Errors
/// [`EvalError`] naming the argument when sizes disagree, a label is out of range, a value is
/// not finite, the training set is empty, a setting is 0 or negative, or the loss becomes
/// non-finite.
pub fn linear_probe(
    train: &Embeddings,
    train_labels: &[u32],
    test: &Embeddings,
    test_labels: &[u32],
    num_classes: usize,
    config: &LinearProbeConfig,
    device: &Device,
) -> Result<LinearProbeResult, EvalError> {
    linear_probe_with_progress(
        train,
        train_labels,
        test,
        test_labels,
        num_classes,
        config,
        device,
        &mut |_| {},
    )
}

/// As [`linear_probe`], calling `on_epoch(epochs_done)` after each training epoch (for a
/// progress display).
///
/// # Errors
/// As [`linear_probe`].
#[allow(clippy::too_many_arguments)]
pub fn linear_probe_with_progress(
    train: &Embeddings,
    train_labels: &[u32],
    test: &Embeddings,
    test_labels: &[u32],
    num_classes: usize,
    config: &LinearProbeConfig,
    device: &Device,
    on_epoch: &mut dyn FnMut(usize),
) -> Result<LinearProbeResult, EvalError> {
    check_inputs(train, train_labels, test, test_labels, num_classes, config)?;
    let (train_x, test_x) = if config.standardize {
        let (mean, scale) = standardization(train);
        (
            standardize(train, &mean, &scale),
            standardize(test, &mean, &scale),
        )
    } else {
        (train.data.clone(), test.data.clone())
    };
    let plain = device.clone().without_autodiff();
    let autodiff = plain.clone().autodiff();
    let features = |data: Vec<f32>, len: usize, device: &Device| {
        Tensor::<2>::from_data(TensorData::new(data, [len, train.dim]), device)
    };
    let labels = |labels: &[u32], device: &Device| {
        let labels: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), device)
    };
    let x = features(train_x.clone(), train.len, &autodiff);
    let y = labels(train_labels, &autodiff);

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut model = Probe::init(
        train.dim,
        num_classes,
        config.zero_init,
        &mut rng,
        &autodiff,
    );
    // PyTorch's Adam epsilon (Burn's default is 1e-5).
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(
            (config.weight_decay > 0.0).then(|| WeightDecayConfig::new(config.weight_decay as f32)),
        )
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let mut order: Vec<usize> = (0..train.len).collect();
    let mut epoch_losses = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = Tensor::<1>::zeros([1], &plain);
        for batch in order.chunks(config.batch_size) {
            let index: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [batch.len()]), &autodiff);
            let logits = model.forward(x.clone().select(0, index.clone()));
            let loss = loss_fn.forward(logits, y.clone().select(0, index));
            loss_sum = loss_sum
                + loss
                    .clone()
                    .detach()
                    .without_autodiff()
                    .mul_scalar(batch.len() as f64);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(config.learning_rate, model, grads);
        }
        let loss = loss_sum.into_scalar::<f32>() as f64 / train.len as f64;
        if !loss.is_finite() {
            return Err(EvalError::NonFinite {
                field: format!("linear probe loss (epoch {})", epoch + 1),
                index: epoch,
            });
        }
        epoch_losses.push(loss);
        on_epoch(epoch + 1);
    }

    let model = model.valid();
    let accuracy = |data: Vec<f32>, targets: &[u32]| -> f64 {
        if targets.is_empty() {
            return 0.0;
        }
        let predicted = model
            .forward(features(data, targets.len(), &plain))
            .argmax(1);
        let right = predicted
            .reshape([targets.len()])
            .equal(labels(targets, &plain))
            .int()
            .sum()
            .into_scalar::<i64>();
        right as f64 / targets.len() as f64
    };
    Ok(LinearProbeResult {
        train_top1: accuracy(train_x, train_labels),
        test_top1: accuracy(test_x, test_labels),
        epoch_losses,
    })
}

fn check_inputs(
    train: &Embeddings,
    train_labels: &[u32],
    test: &Embeddings,
    test_labels: &[u32],
    num_classes: usize,
    config: &LinearProbeConfig,
) -> Result<(), EvalError> {
    train.check("train")?;
    test.check("test")?;
    if train.is_empty() {
        return Err(EvalError::invalid("train", "no training embeddings"));
    }
    if train.dim != test.dim {
        return Err(EvalError::mismatch(
            "train",
            train.dim,
            "test",
            test.dim,
            "dimensions",
        ));
    }
    check_label_count("train", train, "train_labels", train_labels)?;
    check_label_count("test", test, "test_labels", test_labels)?;
    if num_classes == 0 {
        return Err(EvalError::invalid("num_classes", "must be at least 1"));
    }
    check_labels("train_labels", train_labels, num_classes)?;
    check_labels("test_labels", test_labels, num_classes)?;
    if config.batch_size == 0 {
        return Err(EvalError::invalid(
            "config.batch_size",
            "must be at least 1",
        ));
    }
    if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        return Err(EvalError::invalid(
            "config.learning_rate",
            format!("{} is not a positive number", config.learning_rate),
        ));
    }
    if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
        return Err(EvalError::invalid(
            "config.weight_decay",
            format!("{} is negative or not finite", config.weight_decay),
        ));
    }
    Ok(())
}

/// Per-dimension mean and population standard deviation of `train` (1 where it is 0).
fn standardization(train: &Embeddings) -> (Vec<f64>, Vec<f64>) {
    let n = train.len as f64;
    let mut mean = vec![0.0f64; train.dim];
    for row in train.data.chunks_exact(train.dim) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0.0f64; train.dim];
    for row in train.data.chunks_exact(train.dim) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v as f64 - m).powi(2);
        }
    }
    let scale = var
        .into_iter()
        .map(|s| {
            let std = (s / n).sqrt();
            if std > 1e-12 { std } else { 1.0 }
        })
        .collect();
    (mean, scale)
}

fn standardize(e: &Embeddings, mean: &[f64], scale: &[f64]) -> Vec<f32> {
    e.data
        .chunks_exact(e.dim.max(1))
        .flat_map(|row| {
            row.iter()
                .zip(mean.iter().zip(scale))
                .map(|(&v, (m, s))| ((v as f64 - m) / s) as f32)
        })
        .collect()
}

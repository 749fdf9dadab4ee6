//! What the data-parallel equivalence checks measure (`tests/distributed.rs` over MPI,
//! `tests/data_parallel.rs` over threads): one global batch's loss and gradients, and a few
//! steps of the [`DataParallel`] stepper, on this rank of a group.

use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use repr_data::{ImageDataset, Normalize};

use repr_backbones::{BackboneConfig, BlockKind, Norm, ResNetConfig, Stem};

use crate::distributed::{Group, LossScope, all_reduce_gradients};
use crate::init::LearningRates;
use crate::methods::StepContext;
use crate::{
    BatchLoader, DataParallel, EvalConfig, Interval, LoaderConfig, Method, MethodConfig, StepAt,
    Stepper, TrainConfig, TrainError,
};

/// The global batch of the equivalence checks.
pub const GLOBAL_BATCH: usize = 128;

/// A small ResNet with GroupNorm: no statistic couples the images of a batch, so a share of it
/// gives the same outputs as the whole.
pub fn group_norm_resnet(num_classes: usize) -> BackboneConfig {
    BackboneConfig::ResNet(
        ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
            .with_stem(Stem::Cifar)
            .with_width(8)
            .with_norm(Norm::GroupWs { groups: 4 })
            .with_in_channels(1)
            .with_num_classes(num_classes),
    )
}

/// A small supervised run on [`group_norm_resnet`] for the tests that train whole runs on
/// several ranks (killed and resumed, on several devices): `train_limit` images in global
/// batches of 32 for `epochs`, a loss logged every step, a checkpoint every 4 steps and a
/// minimal final evaluation (kNN on 50 test images).
pub fn small_run(train_limit: usize, epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::supervised();
    config.backbone = group_norm_resnet(10);
    config.data.train_limit = Some(train_limit);
    config.data.test_limit = Some(50);
    config.batch_size = 32;
    config.eval_batch_size = 50;
    config.epochs = epochs;
    config.log_every_steps = 1;
    config.checkpoint_every_steps = 4;
    config.eval_every_epochs = 0;
    config.eval = EvalConfig::knn_only(5);
    config
}

/// The training losses a run folder logged, `(step, loss)` in order.
///
/// # Panics
/// When the folder or its metrics cannot be read: this is for tests.
pub fn logged_train_losses(run: &std::path::Path) -> Vec<(usize, f64)> {
    let dir = crate::RunDir::open(run, crate::RunMode::Resume).expect("a run folder");
    crate::MetricsLog::read(&dir)
        .expect("its metrics")
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| (r.step, r.loss.expect("a training record has a loss")))
        .collect()
}

/// The run the equivalence checks step: `method`'s preset (`supervised`, `simclr`,
/// `triplet`) on [`group_norm_resnet`], global batch [`GLOBAL_BATCH`] (triplet: 8 classes × 16
/// images), seed 7; `sync-bn`: the supervised preset on the same ResNet with BatchNorm and
/// `sync_batch_norm` on.
pub fn equivalence_config(method: &str) -> Result<TrainConfig, String> {
    let mut config = match method {
        "supervised" | "sync-bn" => TrainConfig::supervised(),
        "simclr" => TrainConfig::simclr(),
        "triplet" => TrainConfig::triplet(),
        other => return Err(format!("no equivalence check for `{other}`")),
    };
    config.backbone = group_norm_resnet(if config.method.is_embedding() { 0 } else { 10 });
    if method == "sync-bn" {
        config.backbone = BackboneConfig::ResNet(
            ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
                .with_stem(Stem::Cifar)
                .with_width(8)
                .with_in_channels(1)
                .with_num_classes(10),
        );
        config.sync_batch_norm = true;
    }
    config.batch_size = GLOBAL_BATCH;
    config.seed = 7;
    match &mut config.method {
        MethodConfig::Triplet(t) => {
            t.classes_per_batch = 8;
            t.images_per_class = 16;
        }
        MethodConfig::Simclr(s) => {
            s.head.hidden = 32;
            s.head.output = 16;
        }
        _ => {}
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The training loader of `config` on `dataset`, as rank `group.rank()` of `group` sees it.
pub fn loader(
    config: &TrainConfig,
    dataset: &ImageDataset,
    normalize: &Normalize,
    group: &Group,
) -> Result<LoaderConfig, TrainError> {
    Ok(LoaderConfig::for_training(
        &config.method.data(),
        &config.augment,
        config.augment_on,
        dataset,
        normalize,
        config.batch_size,
        2,
        config.seed,
    )?
    .sharded(group.rank(), group.size()))
}

/// The loss of the first global batch of epoch 0 (this rank's share of it through `model` on the
/// autodiff `device`) and the gradient of every parameter, all-reduced over `group`, in the
/// module's visiting order; BatchNorm synchronised over `group` with `sync_batch_norm`.
pub fn first_step(
    model: &Method,
    sync_batch_norm: bool,
    dataset: Arc<ImageDataset>,
    normalize: Normalize,
    loader: LoaderConfig,
    group: &Group,
    device: &Device,
) -> (f64, Vec<Vec<f32>>) {
    let batch = BatchLoader::start(dataset, normalize, loader, 0, 0)
        .next()
        .expect("an epoch has a batch");
    let images = batch.len() * group.size();
    let context = StepContext { step: 0, group };
    let step = || {
        let output = model.step(batch.into_device(device), &context);
        let grads = GradientsParams::from_grads(output.loss.backward(), model);
        (output, grads)
    };
    // One rank: plain BatchNorm, the reference a synchronised one is compared with.
    let (output, grads) = match sync_batch_norm && group.size() > 1 {
        true => repr_kernels::with_sync_batch_norm(group.statistics_sum(), step),
        false => step(),
    };
    let mut interval = Interval::new(device, group.clone());
    interval.add(&output, images);
    let loss = interval.read().loss;
    let scale = match output.scope {
        LossScope::Shard => 1.0 / group.size() as f32,
        LossScope::Global => 1.0,
    };
    let grads = all_reduce_gradients(group, model, grads, scale);
    let mut collect = Collect {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut collect);
    (loss, collect.out)
}

#[allow(clippy::too_many_arguments)]
/// `steps` steps of the [`DataParallel`] stepper from `model` over the first batches of epoch 0
/// at `config`'s peak learning rate: the global loss of each step and the trained model.
pub fn train_steps(
    config: &TrainConfig,
    model: Method,
    dataset: Arc<ImageDataset>,
    normalize: Normalize,
    loader: LoaderConfig,
    steps: usize,
    group: &Group,
    device: &Device,
) -> (Vec<f64>, Method) {
    let rates = LearningRates::new(&config.backbone, model.backbone_path(), 1.0);
    let mut stepper = DataParallel::new(
        device.clone(),
        model,
        config.optimizer.init(),
        rates,
        group.clone(),
    )
    .with_sync_batch_norm(config.sync_batch_norm);
    let mut losses = Vec::with_capacity(steps);
    for (step, batch) in BatchLoader::start(dataset, normalize, loader, 0, 0)
        .take(steps)
        .enumerate()
    {
        let mut interval = stepper.interval();
        let at = StepAt {
            step,
            total: steps,
            lr: config.peak_lr(),
        };
        stepper.step(batch, at, &mut interval);
        losses.push(interval.read().loss);
    }
    let model = stepper.model().clone();
    (losses, model)
}

/// Every trainable parameter of `model`, in visiting order.
pub fn trainable_parameters<M: Module>(model: &M) -> Vec<Vec<f32>> {
    struct Params(Vec<Vec<f32>>);
    impl ModuleVisitor for Params {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            if tensor.is_require_grad() {
                self.0.push(values(tensor));
            }
        }
    }
    let mut params = Params(Vec::new());
    model.visit(&mut params);
    params.0
}

/// Every parameter's gradient, in visiting order.
struct Collect<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            self.out.push(values(grad));
        }
    }
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 after convert")
}

/// Largest difference between `a` and `b` relative to `a`'s largest magnitude.
pub fn relative_difference(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors of different sizes");
    let scale = a.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
    a.iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()))
        / scale
}

//! The benchmarked workloads: one training step (forward, loss, backward, optimizer step) or one
//! inference forward of the shared reference models, on synthetic inputs built once.

use anyhow::{Result, anyhow};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use repr_backbones::{BackboneConfig, ResNetConfig, Stem, ViTConfig, num_learnable_params};
use repr_data::{ImageBatch, MultiViewBatch};
use repr_objectives::{
    CrossEntropyLossConfig, Miner, NtXentLossConfig, ProjectionHeadConfig, TripletLossConfig,
};
use repr_train::{Batch, OptimizerConfig, SimClr, Supervised, TrainMethod, TripletNet};

/// A benchmarked workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// ResNet-18 CIFAR variant, 10 classes: cross-entropy training step, SGD (lr 0.1, momentum
    /// 0.9).
    Resnet18Train,
    /// ResNet-18 CIFAR variant: inference forward (BatchNorm running statistics, no autodiff).
    Resnet18Infer,
    /// SimCLR: ResNet-18 CIFAR encoder + head 512-512-128, NT-Xent (τ = 0.5) of two views.
    SimclrTrain,
    /// Triplet: ResNet-18 CIFAR encoder + linear 128-d embedding, batch-hard mining on P×K = 16×4.
    TripletTrain,
    /// The small ViT (patch 4, dim 192, depth 6): training step.
    VitTrain,
    /// The small ViT: inference forward.
    VitInfer,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 6] = [
        Self::Resnet18Train,
        Self::Resnet18Infer,
        Self::SimclrTrain,
        Self::TripletTrain,
        Self::VitTrain,
        Self::VitInfer,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Resnet18Train => "resnet18-train",
            Self::Resnet18Infer => "resnet18-infer",
            Self::SimclrTrain => "simclr-train",
            Self::TripletTrain => "triplet-train",
            Self::VitTrain => "vit-train",
            Self::VitInfer => "vit-infer",
        }
    }

    /// A description for the table.
    pub fn title(self) -> &'static str {
        match self {
            Self::Resnet18Train => "ResNet-18 CIFAR, train step",
            Self::Resnet18Infer => "ResNet-18 CIFAR, inference",
            Self::SimclrTrain => "SimCLR step (2 views, NT-Xent τ=0.5)",
            Self::TripletTrain => "Triplet step (batch-hard, P×K=16×4)",
            Self::VitTrain => "ViT small, train step",
            Self::VitInfer => "ViT small, inference",
        }
    }

    /// The `bench` name of the matching PyTorch peer measurement, if there is one.
    pub fn pytorch_bench(self) -> Option<&'static str> {
        match self {
            Self::Resnet18Train => Some("resnet_train"),
            Self::Resnet18Infer => Some("resnet_eval"),
            Self::SimclrTrain => Some("simclr_train"),
            Self::TripletTrain => None,
            Self::VitTrain => Some("vit_train"),
            Self::VitInfer => Some("vit_eval"),
        }
    }
}

/// The ResNet-18 CIFAR variant of the shared reference workload (3×3 stride-1 stem, no max pool,
/// `[2, 2, 2, 2]` basic blocks, widths 64..512); `num_classes` 0 builds the encoder only.
pub fn resnet18_cifar(num_classes: usize) -> BackboneConfig {
    ResNetConfig::resnet18()
        .with_stem(Stem::Cifar)
        .with_num_classes(num_classes)
        .into()
}

/// The small ViT of the shared reference workload: 32×32 RGB images in 4-pixel patches (an 8×8
/// grid), `dim` 192, 6 pre-norm blocks of 3 heads, MLP 768, learned positions, CLS, 10 classes.
pub fn vit_small_cifar() -> BackboneConfig {
    ViTConfig::new(32, 4, 192, 6, 3, 768)
        .with_in_channels(3)
        .with_num_classes(10)
        .into()
}

/// One SGD step (lr 0.1, momentum 0.9) of `model` per call, on the loss `loss(&model)`.
fn sgd_steps<M: Module + 'static>(
    model: M,
    images_per_step: usize,
    loss: impl Fn(&M) -> Tensor<1> + 'static,
    sync: impl Fn() -> Result<()> + 'static,
) -> Prepared {
    let params = num_learnable_params(&model);
    let mut model = Some(model);
    let mut optimizer = sgd().init();
    Prepared {
        step: Box::new(move || {
            let m = model.take().expect("the model is put back after each step");
            let loss = loss(&m);
            let value = loss.clone().detach();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            model = Some(optimizer.step(0.1, m, grads));
            sync()?;
            Ok(value.into_scalar::<f32>())
        }),
        params,
        images_per_step,
    }
}

/// A classifier's cross-entropy training step with SGD (lr 0.1, momentum 0.9) on `batch`
/// synthetic images.
fn classifier_train(
    backbone: BackboneConfig,
    train: &Device,
    batch: usize,
    sync: impl Fn() -> Result<()> + 'static,
) -> Result<Prepared> {
    let loss_fn = CrossEntropyLossConfig::new().init()?;
    let model = Supervised {
        backbone: backbone.init(train),
        loss: loss_fn.clone(),
    };
    let x = images(batch, train);
    let y = labels((0..batch).map(|i| (i * 7 % 10) as i64).collect(), train);
    let loss = move |m: &Supervised| loss_fn.forward(m.forward(x.clone()), y.clone());
    Ok(sgd_steps(model, batch, loss, sync))
}

/// A classifier's inference forward (`valid()`: no autodiff, BatchNorm running statistics) of
/// `batch` synthetic images.
fn classifier_infer(
    backbone: BackboneConfig,
    train: &Device,
    batch: usize,
    sync: impl Fn() -> Result<()> + 'static,
) -> Result<Prepared> {
    let model = Supervised {
        backbone: backbone.init(train),
        loss: CrossEntropyLossConfig::new().init()?,
    }
    .valid();
    let params = num_learnable_params(&model);
    let x = images(batch, &train.clone().without_autodiff());
    Ok(Prepared {
        step: Box::new(move || {
            let out = model.forward(x.clone());
            sync()?;
            Ok(out.slice([0..1, 0..1]).into_scalar::<f32>())
        }),
        params,
        images_per_step: batch,
    })
}

/// SGD with lr 0.1 and momentum 0.9, as the PyTorch peer script.
pub fn sgd() -> OptimizerConfig {
    OptimizerConfig::Sgd {
        lr: 0.1,
        momentum: 0.9,
        nesterov: false,
        weight_decay: 0.0,
    }
}

/// Random normal images `[n, 3, 32, 32]`.
pub fn images(n: usize, device: &Device) -> Tensor<4> {
    Tensor::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), device)
}

/// Class labels `[n]`.
pub fn labels(values: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), device)
}

/// One prepared workload: the model, optimizer and inputs live inside `step`.
pub struct Prepared {
    /// Runs one step and returns a scalar read back from the device (the loss, or an output
    /// value), after synchronising the device, so that the step is complete when it returns.
    pub step: Box<dyn FnMut() -> Result<f32>>,
    /// Learnable parameters of the model.
    pub params: usize,
    /// Images per step (source images for SimCLR, whose step sees two views of each).
    pub images_per_step: usize,
}

/// Builds `workload` on `device` (a device without autodiff; training workloads add it).
pub fn prepare(
    workload: Workload,
    device: &Device,
    train_batch: usize,
    infer_batch: usize,
) -> Result<Prepared> {
    device.seed(0);
    let inner = device.clone().without_autodiff();
    let train = device.clone().autodiff();
    let sync = {
        let device = inner.clone();
        move || {
            device
                .sync()
                .map_err(|e| anyhow!("device sync failed: {e:?}"))
        }
    };
    match workload {
        Workload::Resnet18Train => classifier_train(resnet18_cifar(10), &train, train_batch, sync),
        Workload::Resnet18Infer => classifier_infer(resnet18_cifar(10), &train, infer_batch, sync),
        Workload::VitTrain => classifier_train(vit_small_cifar(), &train, train_batch, sync),
        Workload::VitInfer => classifier_infer(vit_small_cifar(), &train, infer_batch, sync),
        Workload::SimclrTrain => {
            let model = SimClr {
                backbone: resnet18_cifar(0).init(&train),
                head: ProjectionHeadConfig::new(512, 512, 128).init(&train),
                loss: NtXentLossConfig::new().with_temperature(0.5).init()?,
            };
            let (v1, v2) = (images(train_batch, &train), images(train_batch, &train));
            let targets = labels(vec![0; train_batch], &train);
            let loss = move |m: &SimClr| {
                let views = MultiViewBatch {
                    views: vec![v1.clone(), v2.clone()],
                    targets: targets.clone(),
                };
                m.step(
                    Batch::Views(views),
                    &repr_train::StepContext::one_process(0),
                )
                .loss
            };
            Ok(sgd_steps(model, train_batch, loss, sync))
        }
        Workload::TripletTrain => {
            let (p, k) = (16, train_batch.div_ceil(16).max(2));
            let batch = p * k;
            let backbone = resnet18_cifar(0).init(&train);
            let model = TripletNet {
                head: burn::nn::LinearConfig::new(backbone.num_features(), 128).init(&train),
                backbone,
                loss: TripletLossConfig::new()
                    .with_miner(Miner::BatchHard)
                    .init()?,
            };
            let x = images(batch, &train);
            let y = labels((0..batch).map(|i| (i / k) as i64).collect(), &train);
            let loss = move |m: &TripletNet| {
                let batch = ImageBatch {
                    images: x.clone(),
                    targets: y.clone(),
                };
                m.step(
                    Batch::Labeled(batch),
                    &repr_train::StepContext::one_process(0),
                )
                .loss
            };
            Ok(sgd_steps(model, batch, loss, sync))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_resnet_has_the_shared_parameter_count() {
        let device = Device::flex();
        let model = resnet18_cifar(10).init(&device);
        assert_eq!(num_learnable_params(&model), 11_173_962);
    }

    #[test]
    fn reference_vit_has_the_peer_parameter_count() {
        // The PyTorch peer's ViTSmallCifar (bench_models.py) has 2,693,578 parameters; ours adds
        // the 192 of the mask token.
        let device = Device::flex();
        let model = vit_small_cifar().init(&device);
        assert_eq!(num_learnable_params(&model), 2_693_578 + 192);
    }

    #[test]
    fn names_parse_back() {
        use clap::ValueEnum;
        for w in Workload::ALL {
            assert_eq!(Workload::from_str(w.name(), false).unwrap(), w);
        }
    }
}

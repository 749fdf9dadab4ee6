//! Classifier accuracy on a labelled split.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use repr_data::{ImageDataset, Normalize};
use repr_objectives::CrossEntropyLoss;

use repr_backbones::Backbone;

use crate::methods::supervised::correct_count;
use crate::{Batch, BatchLoader, LoaderConfig};

/// Loss and top-1 accuracy of a classifier over a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of images whose arg-max class is the label.
    pub accuracy: f64,
    /// Images evaluated.
    pub count: usize,
}

/// Evaluates the classifier `model` (a backbone with its head; switched to inference mode: no autodiff, BatchNorm running statistics) on
/// every image of `dataset`, in order, without augmentation. Sums stay on the device and are read
/// once at the end.
pub fn accuracy(
    model: &Backbone,
    dataset: Arc<ImageDataset>,
    normalize: &Normalize,
    batch_size: usize,
    device: &Device,
) -> Accuracy {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let loss_fn = repr_objectives::CrossEntropyLossConfig::new()
        .with_reduction(repr_objectives::Reduction::Sum)
        .init()
        .expect("the default cross-entropy config is valid");
    let count = dataset.len();
    let config = LoaderConfig::evaluation(batch_size);
    let mut loss_sum = Tensor::<1>::zeros([1], &device);
    let mut correct = Tensor::<1, Int>::zeros([1], &device);
    for batch in BatchLoader::start(dataset, normalize.clone(), config, 0, 0) {
        let Batch::Labeled(batch) = batch.into_device(&device) else {
            unreachable!("evaluation batches are single-view")
        };
        let (loss, right) = evaluate_batch(&model, &loss_fn, batch.images, batch.targets);
        loss_sum = loss_sum + loss;
        correct = correct + right;
    }
    let loss_sum: f64 = loss_sum.into_scalar::<f32>() as f64;
    let correct: i64 = correct.into_scalar::<i64>();
    Accuracy {
        loss: loss_sum / count.max(1) as f64,
        accuracy: correct as f64 / count.max(1) as f64,
        count,
    }
}

fn evaluate_batch(
    model: &Backbone,
    loss_fn: &CrossEntropyLoss,
    images: Tensor<4>,
    targets: Tensor<1, Int>,
) -> (Tensor<1>, Tensor<1, Int>) {
    let logits = model.forward(images);
    let right = correct_count(logits.clone(), targets.clone());
    (loss_fn.forward(logits, targets), right)
}

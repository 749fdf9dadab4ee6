//! `augment_on = "device"`: a SimCLR run's loader gives, for the same seed, the views of the CPU
//! path (the equality repr-data tests on its batcher, now through the training loader), on
//! every backend; and a run trains with it.

mod common;

use std::sync::Arc;

use burn::tensor::{Device, Tensor};
use repr::data::Normalize;
use repr::train::{AugmentOn, Batch, BatchLoader, LoaderConfig, TrainConfig};

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The first two batches' views, and the normalisation's standard deviation.
fn first_batches(
    config: &TrainConfig,
    on: AugmentOn,
    device: &Device,
) -> (Vec<Vec<Vec<f32>>>, f32) {
    let dataset = repr::data::load(
        &repr::data::fashion_mnist_dir(),
        repr::data::Split::Test,
        &repr::data::LoadOptions::default(),
    )
    .unwrap();
    let dataset = Arc::new(dataset.subset(&(0..96).collect::<Vec<_>>()));
    let normalize = Normalize::from_dataset(&dataset);
    let std = normalize.std[0];
    let loader = LoaderConfig::for_training(
        &config.method.data(),
        &config.augment,
        on,
        &dataset,
        &normalize,
        32,
        2,
        config.seed,
    )
    .unwrap();
    let batches = BatchLoader::start(dataset, normalize, loader, 1, 0)
        .take(2)
        .map(|prepared| {
            let Batch::Views(batch) = prepared.into_device(device) else {
                unreachable!("a view method's batches")
            };
            batch.views.into_iter().map(values).collect()
        })
        .collect();
    (batches, std)
}

fn device_views_equal_cpu_views(device: &Device) {
    let config = common::preset("simclr");
    let (cpu, std) = first_batches(&config, AugmentOn::Cpu, device);
    let (dev, _) = first_batches(&config, AugmentOn::Device, device);
    // One u8 level is 1 / (255 std) after normalisation; rounding differs on at most 1% of
    // the pixels, by one level.
    let level = 1.0 / (255.0 * std);
    assert_eq!(cpu.len(), 2);
    for (c_batch, d_batch) in cpu.iter().zip(&dev) {
        assert_eq!(c_batch.len(), 2, "two views");
        for (c, d) in c_batch.iter().zip(d_batch) {
            assert_eq!(c.len(), 32 * 28 * 28);
            let differing = c
                .iter()
                .zip(d)
                .filter(|(a, b)| (*a - *b).abs() > 1e-5)
                .count();
            let max = c
                .iter()
                .zip(d)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                max <= 1.01 * level && differing * 100 <= c.len(),
                "{differing} of {} values differ, max {max}",
                c.len()
            );
        }
    }
}

repr_testing::backend_tests!(device_views_equal_cpu_views);

#[test]
fn a_run_trains_with_device_augmentation_and_single_image_methods_refuse_it() {
    // SimCLR on the same 32 images for 6 steps with AdamW at a constant 3e-3, as
    // tests/embedding_recipes.rs trains it with views made on the CPU: NT-Xent must fall.
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::preset("simclr");
    config.backbone = common::tiny_backbone(0);
    config.data.train_limit = Some(32);
    config.data.test_limit = Some(20);
    config.batch_size = 32;
    config.epochs = 6;
    common::constant_adamw(&mut config, 3e-3);
    config.log_every_steps = 1;
    config.eval.knn_k = 5;
    config.eval.linear_probe = false;
    config.eval.baselines = false;
    config.eval.plots = false;
    config.augment_on = AugmentOn::Device;
    let run = repr::train::RunDir::open(dir.path().join("run"), repr::train::RunMode::New).unwrap();
    let options = repr::train::TrainOptions {
        device: repr::train::DeviceChoice::Flex.into(),
        resume: false,
        progress: false,
    };
    let summary = repr::train::train(&config, &run, &options).unwrap();
    assert_eq!(summary.steps, 6);
    let losses: Vec<f64> = repr::train::MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss.expect("train records have a loss"))
        .collect();
    // Measured 0.931, as with views made on the CPU; 0.998 at a learning rate of ~0.
    common::assert_fell("flex", "NT-Xent", &losses, 0.96);
    assert!(summary.eval.knn_top1.is_some(), "kNN is evaluated");

    let mut supervised = common::tiny_supervised(64, 20, 16, 1);
    supervised.augment_on = AugmentOn::Device;
    let err = supervised.validate().unwrap_err().to_string();
    assert!(err.contains("augment_on"), "{err}");
}

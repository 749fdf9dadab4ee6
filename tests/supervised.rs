//! The supervised recipe end to end on every backend: the same code path as
//! `cargo xtask train --recipe supervised --device <backend>`, on a small network and a small
//! slice of the embedded Fashion-MNIST, must lower the training loss and write its outputs.

mod common;

use repr::train::{DeviceChoice, MetricsLog, RunDir, RunMode, Summary, TrainConfig, TrainOptions};

/// 64 images, 2 steps per epoch, 6 epochs: the loss must fall on data seen repeatedly.
fn tiny_config() -> TrainConfig {
    common::tiny_supervised(64, 64, 32, 6)
}

fn loss_decreases(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
    let options = TrainOptions {
        device: backend.parse::<DeviceChoice>().unwrap().into(),
        resume: false,
        progress: false,
    };
    let config = tiny_config();
    let summary = repr::train::train(&config, &run, &options).unwrap();

    let records = MetricsLog::read(&run).unwrap();
    let train: Vec<f64> = records
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss.expect("train records have a loss"))
        .collect();
    assert_eq!(train.len(), 12, "one record per step");
    assert!(train.iter().all(|l| l.is_finite()), "{train:?}");
    let first = (train[0] + train[1]) / 2.0;
    let last = (train[10] + train[11]) / 2.0;
    assert!(
        last < 0.8 * first,
        "{backend}: training loss did not fall: {first:.4} -> {last:.4} ({train:?})"
    );

    // Outputs a user and scripts rely on.
    assert_eq!(summary.steps, 12);
    assert_eq!(summary.device, backend);
    assert_eq!(summary.dataset, "fashion-mnist");
    let accuracy = summary.eval.accuracy.unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert!(summary.train_images_per_second > 0.0);
    let written: Summary =
        serde_json::from_str(&std::fs::read_to_string(run.summary()).unwrap()).unwrap();
    // serde_json's float parsing may differ from the value in the last bit.
    assert_eq!(
        (written.steps, &written.backbone),
        (summary.steps, &summary.backbone)
    );
    assert!((written.eval.accuracy.unwrap() - accuracy).abs() < 1e-12);
    assert!(run.final_model().exists() && run.last_checkpoint().exists());
    let config_back = TrainConfig::from_file(&run.config()).unwrap();
    assert_eq!(config_back.to_toml(), config.to_toml());
}

repr_testing::named_backend_tests!(loss_decreases);

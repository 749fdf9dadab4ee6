//! `xtask train --devices`: data parallel over several devices of one process, one thread per
//! device. Two flex devices train the run one flex device trains (the same logged losses up to
//! rounding, rank 0 alone writing the run folder); bad device lists fail before the run folder
//! exists.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repr_backbones::{BackboneConfig, BlockKind, Norm, ResNetConfig, Stem};
use repr_train::{EvalConfig, MetricsLog, RunDir, RunMode, TrainConfig};

fn xtask(runs: &Path, config: &Path, name: &str, devices: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "--recipe", "supervised", "--quiet"])
        .arg("--runs-dir")
        .arg(runs)
        .arg("--config")
        .arg(config)
        .args(["--name", name])
        .args(devices)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// 16 steps of a small GroupNorm ResNet (no statistic over the batch: one and two devices
/// train the same model), global batch 32.
fn config(dir: &Path) -> PathBuf {
    let mut config = TrainConfig::supervised();
    config.backbone = BackboneConfig::ResNet(
        ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
            .with_stem(Stem::Cifar)
            .with_width(8)
            .with_norm(Norm::GroupWs { groups: 4 })
            .with_in_channels(1)
            .with_num_classes(10),
    );
    config.data.train_limit = Some(256);
    config.data.test_limit = Some(50);
    config.batch_size = 32;
    config.eval_batch_size = 50;
    config.epochs = 2;
    config.log_every_steps = 1;
    config.checkpoint_every_steps = 4;
    config.eval_every_epochs = 0;
    config.eval = EvalConfig {
        knn_k: 5,
        linear_probe: false,
        baselines: false,
        plots: false,
        ..EvalConfig::default()
    };
    let path = dir.join("config.toml");
    std::fs::write(&path, config.to_toml()).unwrap();
    path
}

fn succeed(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn losses(run: &Path) -> Vec<(usize, f64)> {
    let dir = RunDir::open(run, RunMode::Resume).unwrap();
    MetricsLog::read(&dir)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| (r.step, r.loss.unwrap()))
        .collect()
}

#[test]
fn two_flex_devices_train_the_one_device_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let runs = dir.path().join("runs");
    succeed(&xtask(&runs, &config, "one", &["--device", "flex"]));
    succeed(&xtask(&runs, &config, "two", &["--devices", "flex,flex:0"]));

    let (one, two) = (losses(&runs.join("one")), losses(&runs.join("two")));
    assert_eq!((one.len(), two.len()), (16, 16));
    for ((s, a), (t, b)) in one.iter().zip(&two) {
        assert_eq!(s, t);
        // Rounding, amplified by every step, parts the runs slowly: the first steps agree.
        let tolerance = if *s <= 3 { 1e-4 } else { 2e-2 };
        assert!(
            ((a - b) / a).abs() <= tolerance,
            "step {s}: loss {a} on one device, {b} on two"
        );
    }
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(runs.join("two/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["ranks"], 2);
    assert_eq!(summary["batch_size"], 32);
    assert_eq!(summary["steps"], 16);
    assert!(summary["communication"]["bytes_per_step"].as_f64().unwrap() > 0.0);
    assert!(runs.join("two/checkpoints/last.ckpt").exists());
}

#[test]
fn bad_device_lists_fail_before_the_run_folder_exists() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let runs = dir.path().join("runs");
    for (devices, needle) in [
        ("flex", "at least two devices"),
        ("flex,ndarray", "one backend"),
        ("flex,flex:1", "flex:1"),
        ("flex,tpu", "tpu"),
    ] {
        let output = xtask(&runs, &config, "bad", &["--devices", devices]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--devices {devices} succeeded");
        assert!(
            stderr.contains(needle),
            "--devices {devices}: {needle:?} not in {stderr}"
        );
        assert!(!runs.join("bad").exists(), "--devices {devices}");
    }
}

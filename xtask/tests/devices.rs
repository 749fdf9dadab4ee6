//! `xtask train --devices`: data parallel over several devices of one process, one thread per
//! device. Two flex devices continue a run as one flex device does (the same logged losses up
//! to rounding, bit-identical from run to run); bad device lists fail before the run folder
//! exists.

use std::path::{Path, PathBuf};

use common::{succeed, train as xtask};
use repr_train::equivalence::logged_train_losses as losses;

mod common;

/// 16 steps of a small GroupNorm ResNet (no statistic over the batch: one and two devices
/// train the same model), global batch 32.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, repr_train::equivalence::small_run(256, 2).to_toml()).unwrap();
    path
}

/// From one checkpoint, two flex devices continue the run as one device does (the same
/// losses up to rounding), the same bits every time; rank 0 alone writes the run folder.
/// (A fresh run on several ranks starts from rank 0's parameters drawn in the module's order,
/// one rank draws them in the order of the first forward pass: the same distribution, not the
/// same values. Starting from a checkpoint compares the training itself.)
#[test]
fn two_flex_devices_continue_a_run_as_one_device_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let runs = dir.path().join("runs");
    succeed(&xtask(
        &runs,
        &config,
        "base",
        &["--device", "flex", "--max-steps", "4"],
    ));
    for name in ["one", "two", "again"] {
        repr_testing::copy_dir(&runs.join("base"), &runs.join(name));
    }
    let resume = ["--resume", "--max-steps", "16"];
    succeed(&xtask(
        &runs,
        &config,
        "one",
        &[&["--device", "flex"][..], &resume].concat(),
    ));
    for name in ["two", "again"] {
        let devices = [&["--devices", "flex,flex:0"][..], &resume].concat();
        succeed(&xtask(&runs, &config, name, &devices));
    }

    let (one, two) = (losses(&runs.join("one")), losses(&runs.join("two")));
    assert_eq!((one.len(), two.len()), (16, 16));
    assert_eq!(two, losses(&runs.join("again")), "two devices, two runs");
    for ((s, a), (t, b)) in one.iter().zip(&two) {
        assert_eq!(s, t);
        // The base run's log up to step 4; then rounding, amplified by every step, parts the
        // runs slowly: the first steps agree closely.
        let tolerance = match *s {
            0..=4 => 0.0,
            5..=7 => 1e-4,
            _ => 2e-2,
        };
        assert!(
            ((a - b) / a).abs() <= tolerance,
            "step {s}: loss {a} on one device, {b} on two"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("two/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["ranks"], 2);
    assert_eq!(summary["batch_size"], 32);
    assert_eq!(summary["steps"], 16);
    assert!(summary["communication"]["bytes_per_step"].as_f64().unwrap() > 0.0);
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
        // wgpu's device thread panics with the reason; the error carries it, not just "the
        // channel closed" (no machine of ours has eight discrete GPUs).
        (
            "wgpu:7,wgpu:8",
            "`wgpu:7` is not usable here: Unable to acquire wgpu device",
        ),
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

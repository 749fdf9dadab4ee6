//! SIGKILL a real `xtask train` at several points, `--resume` each time, and compare with an
//! uninterrupted run: the tensors of the final `model.bpk` must be bit-identical (flex on one
//! rayon thread, so no reduction order can change) and the metrics log must hold the same
//! records (losses, accuracies, learning rates: bit-identical too), once each.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use repr_train::{Checkpoint, MetricRecord, MetricsLog, RunDir, TrainConfig};

/// Supervised, ResNet of width 4 with one block per stage, 512 images in batches of 16 (32
/// steps per epoch), 2 epochs, a checkpoint every 4 steps, crop and flip on, a test evaluation
/// after each epoch.
fn small_config() -> TrainConfig {
    let mut config = TrainConfig::supervised();
    {
        let repr_backbones::BackboneConfig::ResNet(resnet) = &mut config.backbone else {
            unreachable!("the supervised preset is a ResNet")
        };
        resnet.width = 4;
        resnet.layers = [1, 1, 1, 1];
    }
    config.data.train_limit = Some(512);
    config.data.test_limit = Some(64);
    config.batch_size = 16;
    config.epochs = 2;
    config.checkpoint_every_steps = 4;
    config.log_every_steps = 2;
    config.eval_every_epochs = 1;
    config.eval.plots = false;
    config
}

const TOTAL_STEPS: usize = 64;

fn xtask(runs: &Path, config: &Path, name: &str, resume: bool) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(["train", "--device", "flex", "--quiet", "--name", name])
        .arg("--runs-dir")
        .arg(runs)
        .arg("--config")
        .arg(config)
        .args(resume.then_some("--resume"))
        // One thread: flex's kernels and the loader's rayon work split no reduction.
        .env("RAYON_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn succeed(output: Output) {
    assert!(
        output.status.success(),
        "xtask failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Waits until `child` has written a checkpoint at step `>= min_step`, polling every
/// millisecond; returns false if the child finished first.
fn wait_for_checkpoint(child: &mut Child, path: &Path, min_step: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if let Ok(checkpoint) = Checkpoint::load(path)
            && checkpoint.state.global_step >= min_step
        {
            return true;
        }
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The metadata length and the tensor-data section of a burnpack file (`NRUB`, u16 version,
/// u32 LE metadata length, CBOR metadata, data aligned to 256 bytes). The metadata itself
/// differs between processes: it holds each parameter's `ParamId`, drawn at random when the
/// module is built, so only the tensor bytes can be compared bit for bit.
fn burnpack_sections(bytes: &[u8]) -> (usize, Vec<u8>) {
    assert_eq!(&bytes[..4], b"NRUB", "not a burnpack file");
    let metadata = u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize;
    let start = (10 + metadata).div_ceil(256) * 256;
    (metadata, bytes[start..].to_vec())
}

/// The records without their timings, which differ between runs.
type Record = (String, usize, Option<f64>, Option<f64>, Option<f64>);

fn records(run: &RunDir) -> Vec<Record> {
    MetricsLog::read(run)
        .unwrap()
        .into_iter()
        .map(|r: MetricRecord| (r.split, r.step, r.loss, r.accuracy, r.lr))
        .collect()
}

#[test]
fn killed_three_times_and_resumed_matches_an_uninterrupted_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let config_path = dir.path().join("small.toml");
    std::fs::write(&config_path, small_config().to_toml()).unwrap();

    succeed(
        xtask(&runs, &config_path, "straight", false)
            .output()
            .unwrap(),
    );
    let straight = RunDir::open(runs.join("straight"), repr_train::RunMode::Resume).unwrap();

    // Session k (k = 1, 2, 3) is killed once it has written its k-th checkpoint, at whatever
    // point of the following step the signal lands; session 4 finishes.
    let killed = runs.join("killed");
    let last = killed.join("checkpoints/last.ckpt");
    let mut resumed_from = Vec::new();
    let mut from_step = 0;
    for k in 1..=3 {
        let mut child = xtask(&runs, &config_path, "killed", k > 1).spawn().unwrap();
        let target = from_step + 4 * k;
        let caught = wait_for_checkpoint(&mut child, &last, target);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            caught,
            "session {k} finished before it was killed ({status})"
        );
        assert!(
            !killed.join("summary.json").exists(),
            "a killed run has no summary"
        );
        // The previous (or a newer) checkpoint is always loadable after a kill.
        from_step = Checkpoint::load(&last).unwrap().state.global_step;
        assert!(
            from_step >= target && from_step < TOTAL_STEPS,
            "{from_step}"
        );
        resumed_from.push(from_step);
    }
    succeed(xtask(&runs, &config_path, "killed", true).output().unwrap());
    let killed = RunDir::open(&killed, repr_train::RunMode::Resume).unwrap();

    let (a_meta, a) = burnpack_sections(&std::fs::read(straight.final_model()).unwrap());
    let (b_meta, b) = burnpack_sections(&std::fs::read(killed.final_model()).unwrap());
    assert_eq!(a_meta, b_meta, "the same tensors, same layout");
    assert!(
        a == b,
        "model.bpk tensor data differs after kills at steps {resumed_from:?}"
    );
    let expected = records(&straight);
    let got = records(&killed);
    assert_eq!(
        got, expected,
        "metrics after kills at steps {resumed_from:?}"
    );
    let steps: Vec<usize> = got.iter().filter(|r| r.0 == "train").map(|r| r.1).collect();
    assert_eq!(
        steps,
        (1..=TOTAL_STEPS / 2).map(|i| 2 * i).collect::<Vec<_>>()
    );
    // The CSV continues the same way: a header and one row per record.
    let csv = std::fs::read_to_string(killed.metrics_csv()).unwrap();
    assert_eq!(csv.lines().count(), 1 + expected.len());
}

/// One flipped byte in the tensor data of the newest checkpoint: `--resume` stops with one
/// error naming the file and the section and changes nothing; `--resume --fallback` continues
/// from the checkpoint before it (kept by `checkpoint_keep = 2`), keeps the damaged file as
/// `last.ckpt.corrupt`, and logs exactly what the uninterrupted run logged.
#[test]
fn a_damaged_last_checkpoint_is_named_and_the_previous_one_resumes_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let config_path = dir.path().join("small.toml");
    std::fs::write(&config_path, small_config().to_toml()).unwrap();
    for name in ["straight", "damaged"] {
        succeed(xtask(&runs, &config_path, name, false).output().unwrap());
    }
    let straight = RunDir::open(runs.join("straight"), repr_train::RunMode::Resume).unwrap();
    let damaged = RunDir::open(runs.join("damaged"), repr_train::RunMode::Resume).unwrap();
    let previous = damaged.checkpoints().join("step-000000060.ckpt");
    assert_eq!(Checkpoint::load(&previous).unwrap().state.global_step, 60);

    // The model section starts after the magic (10 bytes), the state section (u64 length,
    // SHA-256, JSON) and the model section's own length and SHA-256.
    let last = damaged.last_checkpoint();
    let mut bytes = std::fs::read(&last).unwrap();
    let state_len = u64::from_le_bytes(bytes[10..18].try_into().unwrap()) as usize;
    let model_start = 10 + 8 + 32 + state_len + 8 + 32;
    let model_len = u64::from_le_bytes(
        bytes[model_start - 40..model_start - 32]
            .try_into()
            .unwrap(),
    ) as usize;
    bytes[model_start + model_len / 2] ^= 0x04;
    std::fs::write(&last, &bytes).unwrap();
    let log_before = std::fs::read(damaged.metrics()).unwrap();

    let refused = xtask(&runs, &config_path, "damaged", true)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("checkpoints/last.ckpt") && stderr.contains("model section is corrupt"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--fallback") && stderr.contains("step-000000060.ckpt"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&last).unwrap(),
        bytes,
        "the damaged file is left as it was"
    );
    assert_eq!(std::fs::read(damaged.metrics()).unwrap(), log_before);

    let resumed = xtask(&runs, &config_path, "damaged", true)
        .arg("--fallback")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming from") && stderr.contains("step-000000060.ckpt"),
        "{stderr}"
    );
    let aside = damaged.checkpoints().join("last.ckpt.corrupt");
    assert_eq!(std::fs::read(&aside).unwrap(), bytes);
    assert_eq!(
        Checkpoint::load(&last).unwrap().state.global_step,
        TOTAL_STEPS
    );
    assert_eq!(records(&damaged), records(&straight));
    let (_, a) = burnpack_sections(&std::fs::read(straight.final_model()).unwrap());
    let (_, b) = burnpack_sections(&std::fs::read(damaged.final_model()).unwrap());
    assert!(
        a == b,
        "model.bpk tensor data differs from the uninterrupted run's"
    );
}

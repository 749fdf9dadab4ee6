//! Failures during a run: a loss that becomes NaN/inf, a disk that fills up while a checkpoint
//! is written, a checkpoint path that cannot be replaced, an output folder that cannot be
//! created, an existing run. Each gives a clear error, and the previous checkpoint stays
//! loadable. (Killing a real process and resuming it: xtask/tests/crash_resume.rs.)

use std::path::Path;

mod common;

use repr::train::{
    Checkpoint, DeviceChoice, OptimizerConfig, RunDir, RunMode, TrainConfig, TrainError,
    TrainOptions, TrainState,
};

/// ResNet of width 4, 64 Fashion-MNIST images in batches of 16, a checkpoint every step.
fn tiny_config() -> TrainConfig {
    let mut config = common::tiny_supervised(64, 32, 16, 5);
    config.eval_batch_size = 32;
    config.checkpoint_every_steps = 1;
    config.eval.plots = false;
    config
}

fn options(resume: bool) -> TrainOptions {
    TrainOptions {
        device: DeviceChoice::Flex.into(),
        resume,
        progress: false,
    }
}

/// Every f32 of a burnpack file's data section (alignment padding is zeros).
fn burnpack_floats(bytes: &[u8]) -> Vec<f32> {
    assert_eq!(&bytes[..4], b"NRUB");
    let metadata = u32::from_le_bytes(bytes[6..10].try_into().unwrap()) as usize;
    let start = (10 + metadata).div_ceil(256) * 256;
    bytes[start..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
    let mut config = tiny_config();
    // SGD at learning rate 100 with weight decay 1: every weight is multiplied by
    // 1 - 100 = -99 each step, the BatchNorm scales and the head together grow ~10^4 per step,
    // and the logits overflow after a few steps.
    config.optimizer = OptimizerConfig::Sgd {
        lr: 100.0,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 1.0,
    };
    let err = repr::train::train(&config, &run, &options(false)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("--resume --lr"), "{message}");
    // Two ways to notice the divergence at `step`: its loss is NaN/inf, or a weight or running
    // statistic is (the running variance overflows while the loss is still finite). Either
    // way the state after step - 1 was never written: its weights gave the divergence at
    // `step`, so resuming from it would diverge again whatever the learning rate. The one in
    // place is step - 2's, whose weights gave step - 1 its finite loss and finite statistics,
    // the last record logged.
    let (step, checkpoint) = match &err {
        TrainError::NonFiniteLoss {
            step,
            value,
            checkpoint,
        } => {
            assert!(!value.is_finite());
            (*step, checkpoint)
        }
        TrainError::NonFiniteWeights {
            step,
            tensor,
            checkpoint,
        } => {
            assert!(tensor.contains('.'), "a module path: {message}");
            (*step, checkpoint)
        }
        _ => panic!("expected a non-finite loss or weights, got {err}"),
    };
    assert!(message.contains(&format!("step {step}")), "{message}");
    assert_eq!(Path::new(checkpoint), run.last_checkpoint());
    let kept = step.saturating_sub(2);
    // Every value in the checkpoint kept is finite; there is no final model or summary.
    assert!(
        kept >= 1,
        "diverged too early to leave a checkpoint: {message}"
    );
    let last = Checkpoint::load(&run.last_checkpoint()).unwrap();
    assert_eq!(last.state.global_step, kept, "{message}");
    let floats = burnpack_floats(&last.model);
    assert!(floats.len() > 1000);
    assert!(floats.iter().all(|v| v.is_finite()), "{message}");
    assert!(!run.final_model().exists() && !run.summary().exists());
    let logged = repr::train::MetricsLog::read(&run).unwrap();
    assert!(logged.iter().all(|r| r.loss.is_some_and(f64::is_finite)));
    assert_eq!(logged.last().unwrap().step, kept + 1);

    // Resuming (lower learning rate, stopping after one step) starts from that checkpoint:
    // its weights give step kept + 1 the very loss logged before, finite; the log has each
    // step once.
    let before = logged.last().unwrap().loss.unwrap();
    if let OptimizerConfig::Sgd { lr, .. } = &mut config.optimizer {
        *lr = 0.01;
    }
    config.max_steps = Some(kept + 1);
    let summary = repr::train::train(&config, &run, &options(true)).unwrap();
    assert_eq!(summary.steps, kept + 1);
    let train: Vec<_> = repr::train::MetricsLog::read(&run)
        .unwrap()
        .into_iter()
        .filter(|r| r.split == "train")
        .collect();
    let steps: Vec<usize> = train.iter().map(|r| r.step).collect();
    assert_eq!(steps, (1..=kept + 1).collect::<Vec<_>>());
    assert_eq!(train.last().unwrap().loss.unwrap(), before);
}

fn sample_checkpoint(step: usize) -> Checkpoint {
    Checkpoint {
        state: TrainState {
            global_step: step,
            ..TrainState::default()
        },
        model: burn::tensor::Bytes::from_bytes_vec(vec![step as u8; 64]),
        optimizer: burn::tensor::Bytes::from_bytes_vec(vec![1; 16]),
    }
}

#[test]
fn a_full_disk_while_saving_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.ckpt");
    sample_checkpoint(7).save(&path).unwrap();

    // The temporary file the next save writes is /dev/full: every write fails with ENOSPC.
    let tmp = dir.path().join("last.ckpt.tmp");
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    let err = sample_checkpoint(8).save(&path).unwrap_err();
    let TrainError::Io { path: at, error } = &err else {
        panic!("expected an I/O error, got {err}");
    };
    assert_eq!(at, &path);
    assert_eq!(error.raw_os_error(), Some(28), "ENOSPC: {err}");
    assert!(err.to_string().contains("No space left"), "{err}");
    assert_eq!(Checkpoint::load(&path).unwrap().state.global_step, 7);
    assert!(
        !tmp.exists() && std::fs::symlink_metadata(&tmp).is_err(),
        "tmp removed"
    );

    // In a run: the first checkpoint cannot be written, the run stops with that error.
    let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
    std::fs::create_dir_all(run.checkpoints()).unwrap();
    std::os::unix::fs::symlink("/dev/full", run.checkpoints().join("last.ckpt.tmp")).unwrap();
    let err = repr::train::train(&tiny_config(), &run, &options(false)).unwrap_err();
    assert!(
        matches!(&err, TrainError::Io { path, error }
            if path == &run.last_checkpoint() && error.raw_os_error() == Some(28)),
        "{err}"
    );
    assert!(err.to_string().contains("last.ckpt"), "{err}");
}

#[test]
fn a_checkpoint_path_that_cannot_be_replaced_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("last.ckpt");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("keep"), b"x").unwrap();
    let err = sample_checkpoint(1).save(&path).unwrap_err();
    assert!(
        matches!(&err, TrainError::Io { path: at, .. } if at == &path),
        "{err}"
    );
    assert!(path.join("keep").exists(), "nothing deleted");
    assert!(!dir.path().join("last.ckpt.tmp").exists(), "tmp removed");
}

#[test]
fn output_folders_that_cannot_be_made_or_exist_already_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing can be made below a file: the runs folder, or a folder further up, is a file.
    let file = dir.path().join("runs");
    std::fs::write(&file, b"not a folder").unwrap();
    for root in [file.join("run"), file.join("a/b/run")] {
        for mode in [RunMode::New, RunMode::Overwrite] {
            let err = RunDir::open(&root, mode).unwrap_err();
            assert!(
                matches!(&err, TrainError::Io { path, .. } if path == &root),
                "{err}"
            );
            let message = err.to_string();
            assert!(
                message.contains(&format!("{}: ", root.display()))
                    && message.contains(&format!("{} is not a folder", file.display())),
                "{message}"
            );
        }
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a folder");

    // A read-only folder is refused from its permission bits before anything is written. Root
    // gets the same error (the kernel would let root write there), so this runs in CI as root.
    use std::os::unix::fs::PermissionsExt;
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root = ro.join("run");
    let opened = RunDir::open(&root, RunMode::New);
    let entries = std::fs::read_dir(&ro).unwrap().count();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = opened.unwrap_err();
    assert!(
        matches!(&err, TrainError::Io { path, .. } if path == &root),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}: ", root.display())) && message.contains("read-only"),
        "{message}"
    );
    assert_eq!(entries, 0, "nothing written into the read-only folder");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "only the file and the read-only folder made here"
    );

    // An existing run is never overwritten without RunMode::Overwrite.
    let root = dir.path().join("done");
    let run = RunDir::open(&root, RunMode::New).unwrap();
    let summary = repr::train::train(&tiny_config(), &run, &options(false)).unwrap();
    let model = std::fs::read(run.final_model()).unwrap();
    let err = RunDir::open(&root, RunMode::New).unwrap_err();
    assert!(matches!(err, TrainError::RunExists { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("--resume") && message.contains("--overwrite"),
        "{message}"
    );
    assert_eq!(std::fs::read(run.final_model()).unwrap(), model);
    assert_eq!(summary.steps, 20);
}

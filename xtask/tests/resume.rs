//! Kill a real `xtask train` process mid-epoch with SIGKILL, then `--resume` it: the run must
//! continue from its last checkpoint (not from scratch) and finish with every step trained.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repr_train::{AugmentConfig, Checkpoint, MetricsLog, RunDir, RunMode, TrainConfig};

fn xtask(runs: &Path, config: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args([
            "train",
            "--recipe",
            "supervised",
            "--device",
            "flex",
            "--quiet",
        ])
        .arg("--runs-dir")
        .arg(runs)
        .arg("--config")
        .arg(config)
        .args(["--name", "killed"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn small_config() -> TrainConfig {
    let mut config = TrainConfig::supervised();
    {
        let repr_backbones::BackboneConfig::ResNet(resnet) = &mut config.backbone else {
            unreachable!("the supervised preset is a ResNet")
        };
        resnet.width = 4;
        resnet.layers = [1, 1, 1, 1];
    }
    config.data.train_limit = Some(1024);
    config.data.test_limit = Some(200);
    config.batch_size = 32;
    config.epochs = 3; // 32 steps per epoch, 96 in all
    config.checkpoint_every_steps = 5;
    config.log_every_steps = 5;
    config.eval_every_epochs = 0;
    config.augment = AugmentConfig::default();
    config
}

fn wait_for_checkpoint(child: &mut Child, path: &Path, min_step: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        if let Ok(checkpoint) = Checkpoint::load(path)
            && checkpoint.state.global_step >= min_step
        {
            return checkpoint.state.global_step;
        }
        assert!(Instant::now() < deadline, "no checkpoint after 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_then_resume_continues_from_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let config_path = dir.path().join("small.toml");
    std::fs::write(&config_path, small_config().to_toml()).unwrap();
    let run = RunDir::open(runs.join("killed"), RunMode::Overwrite).unwrap();

    // Kill it mid-epoch, after a checkpoint past the first epoch's first third.
    let mut child = xtask(&runs, &config_path, &[]).spawn().unwrap();
    let seen = wait_for_checkpoint(&mut child, &run.last_checkpoint(), 10);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let killed_at = Checkpoint::load(&run.last_checkpoint()).unwrap().state;
    assert!(killed_at.global_step >= seen && killed_at.global_step < 96);
    assert!(!run.summary().exists(), "a killed run has no summary");
    // Records logged after the checkpoint are dropped on resume and logged again.
    let logged_before = MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.step <= killed_at.global_step)
        .count();

    // A second plain start refuses to overwrite the killed run.
    let refused = xtask(&runs, &config_path, &[]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let resumed = xtask(&runs, &config_path, &["--resume"]).output().unwrap();
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let summary: repr_train::Summary =
        serde_json::from_str(&std::fs::read_to_string(run.summary()).unwrap()).unwrap();
    assert_eq!(summary.steps, 96);

    // The resumed session's first logged step is the first log point after the checkpoint:
    // it continued from there instead of retraining from step 0.
    let steps: Vec<usize> = MetricsLog::read(&run).unwrap()[logged_before..]
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.step)
        .collect();
    assert_eq!(steps[0], killed_at.global_step + 5, "{steps:?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), 96);
    let all: Vec<usize> = MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.step)
        .collect();
    assert_eq!(
        all,
        (1..=96 / 5)
            .map(|i| 5 * i)
            .chain([32, 64, 96])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "each step logged once"
    );
}

/// Killed right after an epoch's evaluation: the epoch-end checkpoint is already on disk (it is
/// written as soon as that evaluation succeeds, not at the next loss read-back), so the resumed
/// run starts the next epoch with no step trained twice and the evaluation not repeated.
#[test]
fn killed_right_after_an_epoch_evaluation_resumes_with_no_repeated_step() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let config_path = dir.path().join("eval.toml");
    let mut config = small_config();
    config.checkpoint_every_steps = 0; // epoch ends only
    config.log_every_steps = 32; // one loss read-back per epoch
    config.eval_every_epochs = 1;
    std::fs::write(&config_path, config.to_toml()).unwrap();
    let run = RunDir::open(runs.join("killed"), RunMode::Overwrite).unwrap();

    let mut child = xtask(&runs, &config_path, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Wait for the epoch-1 test record, then for the epoch-end checkpoint it makes safe.
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended too early"
        );
        let tested = MetricsLog::read(&run)
            .unwrap_or_default()
            .iter()
            .any(|r| r.split == "test" && r.step == 32);
        if tested
            && Checkpoint::load(&run.last_checkpoint()).is_ok_and(|c| c.state.global_step == 32)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no evaluated epoch-end checkpoint after 300 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let log = MetricsLog::read(&run).unwrap();
    assert!(
        log.iter().all(|r| r.step <= 32),
        "killed before the next read-back (step 64): {:?}",
        log.iter()
            .map(|r| (r.split.clone(), r.step))
            .collect::<Vec<_>>()
    );

    let resumed = xtask(&runs, &config_path, &["--resume"]).output().unwrap();
    assert!(
        resumed.status.success(),
        "resume failed: {}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let log = MetricsLog::read(&run).unwrap();
    let train: Vec<usize> = log
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.step)
        .collect();
    assert_eq!(train, vec![32, 64, 96], "each step trained and logged once");
    let tests: Vec<usize> = log
        .iter()
        .filter(|r| r.split == "test")
        .map(|r| r.step)
        .collect();
    assert_eq!(
        tests,
        vec![32, 64, 96],
        "the epoch-1 evaluation is not repeated"
    );
}

//! Data-parallel training over MPI, with `mpiexec -n 2` on this machine (two processes, one
//! thread each): needs the `mpi` feature and an MPI installation (`.ci/run` installs MPICH).
//!
//! - `equivalence_*`: 2 ranks × 64 images give the loss and every parameter's gradient of 1 rank
//!   × 128 (1e-5 relative), for cross-entropy, SimCLR with negatives gathered over ranks and
//!   triplet loss with batch-hard mining over the gathered batch, and SyncBatchNorm on 2 ranks
//!   against BatchNorm over the 128 images; after 20 steps the two ranks' parameters are
//!   bit-identical.
//! - `faults_*`: killing one rank stops the job with an error and leaves the checkpoint intact;
//!   `--resume` on 2 ranks then logs exactly the losses of an uninterrupted run, and on 1 rank
//!   continues the same run (its first steps within 1e-4 of the 2-rank run's).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use repr_train::Checkpoint;
use repr_train::equivalence::{self as check, logged_train_losses as losses};
use serde_json::Value;

/// Each test starts two processes on a two-core machine: one at a time.
static ONE_JOB: Mutex<()> = Mutex::new(());

const CHECK: &str = env!("CARGO_BIN_EXE_repr-dist-check");

fn mpiexec(ranks: usize) -> Command {
    let mut command = Command::new(std::env::var("MPIEXEC").unwrap_or_else(|_| "mpiexec".into()));
    command
        .arg("-n")
        .arg(ranks.to_string())
        .arg(CHECK)
        .env("RAYON_NUM_THREADS", "1");
    command
}

fn run(mut command: Command) -> Output {
    let output = command
        .output()
        .expect("mpiexec starts (is MPI installed?)");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Largest difference relative to the reference's largest magnitude.
fn relative(reference: &[f64], other: &[f64]) -> f64 {
    assert_eq!(reference.len(), other.len());
    let scale = reference
        .iter()
        .fold(0f64, |m, v| m.max(v.abs()))
        .max(1e-30);
    reference
        .iter()
        .zip(other)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// One rank × 128 against two ranks × 64 for `method`.
fn equivalence(method: &str) {
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let mut single = mpiexec(1);
    single.arg("equivalence").arg(method).arg(&one);
    run(single);
    let mut pair = mpiexec(2);
    pair.arg("equivalence").arg(method).arg(&two);
    run(pair);

    let (a, b) = (read(&one.join("step.json")), read(&two.join("step.json")));
    assert_eq!(
        (a["ranks"].as_u64(), b["ranks"].as_u64()),
        (Some(1), Some(2))
    );
    let (loss_a, loss_b) = (a["loss"].as_f64().unwrap(), b["loss"].as_f64().unwrap());
    assert!(
        loss_a.is_finite() && loss_a > 0.0,
        "{method}: loss {loss_a}"
    );
    assert!(
        ((loss_a - loss_b) / loss_a).abs() <= 1e-5,
        "{method}: loss {loss_a} on one rank, {loss_b} on two"
    );
    let (grads_a, grads_b) = (
        a["grads"].as_array().unwrap(),
        b["grads"].as_array().unwrap(),
    );
    assert!(!grads_a.is_empty());
    assert_eq!(grads_a.len(), grads_b.len(), "{method}: gradient count");
    for (i, (ga, gb)) in grads_a.iter().zip(grads_b).enumerate() {
        let (ga, gb) = (floats(ga), floats(gb));
        assert!(
            ga.iter().any(|v| *v != 0.0),
            "{method}: gradient {i} is zero"
        );
        let r = relative(&ga, &gb);
        assert!(
            r <= 1e-5,
            "{method}: gradient {i} differs by {r:e} (relative)"
        );
    }

    let (r0, r1) = (read(&two.join("rank0.json")), read(&two.join("rank1.json")));
    assert_eq!(
        r0["fingerprint"], r1["fingerprint"],
        "{method}: the ranks' parameters differ after 20 steps"
    );
    assert_eq!(
        r0["losses"], r1["losses"],
        "{method}: ranks logged other losses"
    );
    assert!(r0["communication"]["bytes"].as_u64().unwrap() > 0);
    // The same run on one rank: the same losses up to rounding, which every step amplifies
    // (after 17 steps of cross-entropy they are ~0.5% apart): the first 3 within 1e-4.
    let (single_losses, pair_losses) = (
        floats(&read(&one.join("rank0.json"))["losses"]),
        floats(&r0["losses"]),
    );
    assert_eq!((single_losses.len(), pair_losses.len()), (20, 20));
    assert!(pair_losses.iter().all(|l| l.is_finite()));
    let r = relative(&single_losses[..3], &pair_losses[..3]);
    assert!(
        r <= 1e-4,
        "{method}: first losses differ by {r:e}: {single_losses:?} {pair_losses:?}"
    );
}

#[test]
fn equivalence_supervised_cross_entropy() {
    equivalence("supervised");
}

#[test]
fn equivalence_simclr_gathered_negatives() {
    equivalence("simclr");
}

#[test]
fn equivalence_triplet_batch_hard_over_the_gathered_batch() {
    equivalence("triplet");
}

#[test]
fn equivalence_sync_batch_norm_against_batch_norm() {
    equivalence("sync-bn");
}

/// A small supervised run (GroupNorm, so 1 and 2 ranks train the same model) of 96 steps,
/// a checkpoint every 4.
fn fault_config(dir: &Path) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, check::small_run(512, 6).to_toml()).unwrap();
    path
}

fn train(ranks: usize, config: &Path, run: &Path, resume: bool) -> Command {
    let mut command = mpiexec(ranks);
    command.arg("train").arg(config).arg(run);
    if resume {
        command.arg("--resume");
    }
    command
}

#[test]
fn faults_killing_a_rank_stops_the_job_and_resume_is_bit_exact() {
    let _one = ONE_JOB.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let config = fault_config(dir.path());

    let reference = dir.path().join("reference");
    run(train(2, &config, &reference, false));
    let expected = losses(&reference);
    assert_eq!(expected.len(), 96);

    // Kill rank 1 once a checkpoint past step 8 is on disk.
    let faulty = dir.path().join("faulty");
    let mut job = train(2, &config, &faulty, false)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let checkpoint = faulty.join("checkpoints/last.ckpt");
    let pid = PathBuf::from(format!("{}.rank1.pid", faulty.display()));
    let started = Instant::now();
    loop {
        let saved = Checkpoint::load(&checkpoint).map(|c| c.state.global_step);
        if matches!(saved, Ok(step) if step >= 8) && pid.exists() {
            break;
        }
        assert!(
            job.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let rank1 = std::fs::read_to_string(&pid).unwrap();
    let killed = Command::new("kill")
        .arg("-9")
        .arg(rank1.trim())
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = job.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not stop after rank 1 died"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // MPICH's launcher prints its "BAD TERMINATION" banner on stdout.
    let stderr = std::io::read_to_string(job.stderr.take().unwrap()).unwrap()
        + &std::io::read_to_string(job.stdout.take().unwrap()).unwrap();
    assert!(
        !status.success(),
        "the job reported success after a rank died"
    );
    assert!(
        stderr.contains("KILLED") || stderr.contains("signal 9") || stderr.contains("Killed"),
        "mpiexec says why it stopped: {stderr}"
    );
    let saved = Checkpoint::load(&checkpoint).expect("the checkpoint is intact");
    assert!(saved.state.global_step >= 8 && saved.state.global_step < 96);

    // Resumed on 2 ranks: every logged loss is the uninterrupted run's, bit for bit.
    run(train(2, &config, &faulty, true));
    assert_eq!(losses(&faulty), expected);

    // Resumed on 1 rank from the same checkpoint: the same run, up to rounding.
    let other = dir.path().join("one-rank");
    repr_testing::copy_dir(&faulty, &other);
    saved.save(&other.join("checkpoints/last.ckpt")).unwrap();
    run(train(1, &config, &other, true));
    let one_rank = losses(&other);
    assert_eq!(one_rank.len(), 96);
    let resumed_at = saved.state.global_step;
    for ((s, a), (t, b)) in expected.iter().zip(&one_rank) {
        assert_eq!(s, t);
        // Before the checkpoint: the 2-rank run's own log, kept. After it: one rank follows
        // for a few steps (rounding, amplified by every step, parts the runs later).
        let tolerance = match *s {
            s if s <= resumed_at => 0.0,
            s if s <= resumed_at + 3 => 1e-4,
            _ => f64::INFINITY,
        };
        assert!(
            ((a - b) / a).abs() <= tolerance && b.is_finite(),
            "step {s}: loss {a} on 2 ranks, {b} resumed on 1"
        );
    }
}

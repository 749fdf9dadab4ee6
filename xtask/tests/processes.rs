//! `xtask train --processes 2`, the command docs/distributed.md gives, through a binary built
//! with xtask's `mpi` feature (MPI installed; `.ci/run` builds and runs it): the binary starts
//! itself again under `mpiexec -n 2` and the two ranks continue a run as one process does.
#![cfg(feature = "mpi")]

use common::{succeed, train as xtask};
use repr_train::equivalence::logged_train_losses as losses;

mod common;

/// From one checkpoint (a fresh run's ranks draw their parameters in another order than one
/// process does), two MPI ranks log the losses of one process up to rounding, and rank 0
/// writes a summary that counts both ranks.
#[test]
fn two_processes_continue_a_run_as_one_process_does() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // 8 steps of a small GroupNorm ResNet (no batch statistic), global batch 32.
    std::fs::write(
        &config,
        repr_train::equivalence::small_run(128, 2).to_toml(),
    )
    .unwrap();
    let runs = dir.path().join("runs");
    succeed(&xtask(&runs, &config, "base", &["--max-steps", "4"]));
    for name in ["one", "two"] {
        repr_testing::copy_dir(&runs.join("base"), &runs.join(name));
    }
    succeed(&xtask(&runs, &config, "one", &["--resume"]));
    succeed(&xtask(
        &runs,
        &config,
        "two",
        &["--resume", "--processes", "2"],
    ));

    let (one, two) = (losses(&runs.join("one")), losses(&runs.join("two")));
    assert_eq!((one.len(), two.len()), (8, 8));
    for ((s, a), (t, b)) in one.iter().zip(&two) {
        assert_eq!(s, t);
        let tolerance = if *s <= 4 { 0.0 } else { 1e-4 };
        assert!(
            ((a - b) / a).abs() <= tolerance,
            "step {s}: loss {a} in one process, {b} in two"
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("two/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["ranks"], 2);
    assert_eq!(summary["steps"], 8);
}

//! Running the `xtask` binary in the command-line tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `xtask train --recipe supervised --quiet` into `runs/name` with `config`, then `extra`, on
/// one rayon thread per process.
pub fn train(runs: &Path, config: &Path, name: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["train", "--recipe", "supervised", "--quiet"])
        .arg("--runs-dir")
        .arg(runs)
        .arg("--config")
        .arg(config)
        .args(["--name", name])
        .args(extra)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// Fails with the command's output unless it succeeded.
pub fn succeed(output: &Output) {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

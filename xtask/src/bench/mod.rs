//! `cargo xtask bench models|profile`: training-step and inference throughput of the shared
//! reference workloads (ResNet-18 CIFAR variant, SimCLR step, triplet step) on each backend, with
//! PyTorch's CPU numbers beside them (`--compare`), and a timing profile of the hot paths.
//!
//! `cargo xtask bench` without a target runs every benchmark with its defaults.

use anyhow::{Result, bail};
use clap::Args;

/// Options of `cargo xtask bench models`.
#[derive(Args, Debug, Clone)]
pub struct ModelsArgs {}

/// Options of `cargo xtask bench profile`.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {}

/// Runs `cargo xtask bench models`.
pub fn run_models(_args: &ModelsArgs) -> Result<()> {
    bail!("not implemented yet")
}

/// Runs `cargo xtask bench profile`.
pub fn run_profile(_args: &ProfileArgs) -> Result<()> {
    bail!("not implemented yet")
}

/// `cargo xtask bench` without a target: models (with `--compare`), then augmentations.
pub fn run_all() -> Result<()> {
    bail!("not implemented yet")
}

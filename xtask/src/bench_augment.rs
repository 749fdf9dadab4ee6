//! `cargo xtask bench augment`: throughput of the SimCLR augmentation pipelines.

use anyhow::{Result, bail};
use clap::Args;

/// Options of `cargo xtask bench augment`.
#[derive(Args, Debug, Clone)]
pub struct BenchAugmentArgs {
    /// Threads of the "all threads" CPU measurement (default: all available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed runs per measurement (the median is reported), after one warm-up run.
    #[arg(long, default_value_t = 7)]
    pub iters: usize,
    /// Devices of the device-path measurements, comma separated (flex, ndarray, wgpu, cuda); empty
    /// for none.
    #[arg(long, value_delimiter = ',', default_value = "flex,wgpu")]
    pub devices: Vec<String>,
}

/// Runs the benchmark and writes `runs/bench/augment.md` and `.json`.
pub fn run(args: &BenchAugmentArgs) -> Result<()> {
    bail!("bench augment is not wired to the pipelines yet ({args:?})")
}

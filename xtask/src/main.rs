//! `cargo xtask`: the repr command line.
//!
//! - `cargo xtask train [--recipe supervised] [--device flex|ndarray|wgpu|cuda] ...`
//! - `cargo xtask bench augment [--threads N] [--iters N] [--devices flex,wgpu]`: augmentation
//!   throughput (writes `runs/bench/augment.md` and `.json`).
//! - `cargo xtask ci`: the test command that `.ci/run` runs.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use repr_train::{DeviceChoice, RunDir, RunMode, TrainConfig, TrainOptions};

mod bench_augment;

/// The test command of the README and `.ci/run` (a test checks that all three agree).
const TEST_COMMAND: &str = "cargo test --workspace --features repr-testing/test-wgpu";

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Train and evaluate image representations with Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a recipe (default: supervised on the embedded Fashion-MNIST), then evaluate it.
    Train(Box<TrainArgs>),
    /// Measure throughput (augmentations, ...).
    Bench(BenchArgs),
    /// Run the test suite exactly as CI does.
    Ci,
}

#[derive(Parser)]
struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Augmentation pipelines: CPU (1 thread and all threads) and device paths.
    Augment(bench_augment::BenchAugmentArgs),
}

#[derive(Parser, Default)]
struct TrainArgs {
    /// Recipe to train.
    #[arg(long, default_value = "supervised", value_parser = ["supervised"])]
    recipe: String,
    /// Backend: flex (default CPU), ndarray, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    device: String,
    /// A TOML or JSON config file (fields left out take the recipe's defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run name: outputs go to `<runs-dir>/<name>/` (default: the recipe's name).
    #[arg(long)]
    name: Option<String>,
    /// Folder holding the runs.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// A dataset folder: IDX files, CIFAR binaries, or `class/*.png` image folders.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Passes over the training split.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per training step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Stop after this many optimizer steps (smoke runs).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Train on a seeded random subset of this many training images.
    #[arg(long)]
    train_limit: Option<usize>,
    /// Evaluate on a seeded random subset of this many test images.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Write a checkpoint every this many steps (0: at epoch ends only).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Continue the run from its last checkpoint (its config.toml is the base config).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace an existing run of the same name.
    #[arg(long)]
    overwrite: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Cmd::Train(Box::new(TrainArgs {
        recipe: "supervised".into(),
        device: "flex".into(),
        runs_dir: "runs".into(),
        ..TrainArgs::default()
    }))) {
        Cmd::Train(args) => train(*args),
        Cmd::Bench(args) => match args.target {
            BenchTarget::Augment(args) => bench_augment::run(&args),
        },
        Cmd::Ci => ci(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let device: DeviceChoice = args.device.parse()?;
    let name = args.name.clone().unwrap_or_else(|| args.recipe.clone());
    let root = args.runs_dir.join(&name);
    let mode = match (args.resume, args.overwrite) {
        (true, _) => RunMode::Resume,
        (false, true) => RunMode::Overwrite,
        (false, false) => RunMode::New,
    };
    // Resolve the config before touching the run folder, so a bad config changes nothing.
    let base = match (&args.config, args.resume) {
        (Some(path), _) => TrainConfig::from_file(path)?,
        (None, true) => TrainConfig::from_file(&root.join("config.toml"))
            .with_context(|| format!("resuming {}", root.display()))?,
        (None, false) => TrainConfig::supervised(),
    };
    let config = apply_overrides(base, &args);
    config.validate()?;
    let run = RunDir::open(&root, mode)?;

    println!(
        "training `{}` ({}) on {} with {} -> {}",
        config.recipe.name(),
        config.backbone.name(),
        config
            .data
            .dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "the embedded Fashion-MNIST".into()),
        device,
        run.root().display()
    );
    let options = TrainOptions {
        device,
        resume: args.resume,
        progress: !args.quiet,
    };
    let summary = repr_train::train(&config, &run, &options)?;
    println!();
    println!(
        "| run | device | backbone | epochs | steps | test accuracy | wall time | train img/s |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {name} | {} | {} | {} | {} | {:.2}% | {:.1} s | {:.0} |",
        summary.device,
        summary.backbone,
        summary.epochs,
        summary.steps,
        100.0 * summary.eval.accuracy.unwrap_or(f64::NAN),
        summary.wall_seconds,
        summary.train_images_per_second
    );
    println!("outputs: {}", run.root().display());
    Ok(())
}

fn apply_overrides(mut config: TrainConfig, args: &TrainArgs) -> TrainConfig {
    if let Some(dir) = &args.data_dir {
        config.data.dir = Some(dir.clone());
    }
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
        config.schedule.warmup_epochs = config.schedule.warmup_epochs.min(epochs as f64);
    }
    if let Some(batch_size) = args.batch_size {
        config.batch_size = batch_size;
    }
    if let Some(lr) = args.lr {
        match &mut config.optimizer {
            repr_train::OptimizerConfig::Sgd { lr: l, .. }
            | repr_train::OptimizerConfig::Adamw { lr: l, .. } => *l = lr,
        }
    }
    if args.max_steps.is_some() {
        config.max_steps = args.max_steps;
    }
    if args.train_limit.is_some() {
        config.data.train_limit = args.train_limit;
    }
    if args.test_limit.is_some() {
        config.data.test_limit = args.test_limit;
    }
    if let Some(every) = args.checkpoint_every {
        config.checkpoint_every_steps = every;
    }
    config
}

fn ci() -> Result<()> {
    let mut parts = TEST_COMMAND.split_whitespace();
    let program = parts.next().expect("the test command is not empty");
    let status = Command::new(program)
        .args(parts)
        .env("CI", "true")
        .status()
        .with_context(|| format!("running `{TEST_COMMAND}`"))?;
    if !status.success() {
        bail!("`{TEST_COMMAND}` failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_ci_and_xtask_run_the_same_test_command() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
        assert!(
            readme.contains(TEST_COMMAND),
            "README.md lacks `{TEST_COMMAND}`"
        );
        assert!(ci.contains(TEST_COMMAND), ".ci/run lacks `{TEST_COMMAND}`");
    }
}

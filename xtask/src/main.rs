//! `cargo xtask`: the repr command line.
//!
//! - `cargo xtask train [--recipe <preset>] [--device flex|ndarray|wgpu|cuda] ...` (presets:
//!   `repr_train::PRESETS`; no `--recipe`: the short SimCLR default, `simclr-short`)
//! - `cargo xtask eval --run runs/<name>`: kNN, linear probe, retrieval and baselines again
//! - `cargo xtask embed --run runs/<name> --split test --out e.npy`: embeddings as `.npy`
//! - `cargo xtask retrieve --run runs/<name> --out grid.png`: a retrieval picture
//! - `cargo xtask index --index <dir> --images <photos> --run runs/<name>` (or `--weights
//!   <file> --arch resnet50`): index a folder of images, incrementally
//! - `cargo xtask search --index <dir> --query <image>...`: the most similar indexed images
//! - `cargo xtask duplicates --index <dir>`: groups of near-duplicate images
//! - `cargo xtask serve --index <dir>`: a search page and JSON API over HTTP
//! - `cargo xtask bench augment [--threads N] [--iters N] [--devices flex,wgpu]`: augmentation
//!   throughput (writes `runs/bench/augment.md` and `.json`).
//! - `cargo xtask bench models [--devices flex,ndarray,wgpu] [--compare] [--docs FILE]`:
//!   training-step and inference throughput per backend (`runs/bench/models.md`, `.json`;
//!   `--docs` also rewrites the generated section of FILE). `--compare` adds PyTorch's CPU
//!   numbers: measured live when `python3` (or `$REPR_PYTHON`) imports `torch`, else the
//!   stored ones with the machine they were measured on. `cargo xtask bench profile`: where a
//!   step's time goes; `cargo xtask bench search [--sizes 100000,1000000] [--index <dir>]`:
//!   exact and approximate search beside faiss (`runs/bench/search.md`, `.json`);
//!   `cargo xtask bench` alone runs models and augment. Bench writes only
//!   into an `--out-dir` it created (`.repr-bench` marker) or an empty one.
//! - `cargo xtask ci`: the test command that `.ci/run` runs.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use repr_train::{DeviceSpec, InitConfig, RunDir, RunMode, TrainConfig, TrainOptions};

mod bench;
mod bench_augment;
mod bench_search;
mod distributed;
mod outputs;
mod photos;
mod use_run;

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
    /// Train a recipe (default: a short SimCLR on the embedded Fashion-MNIST), then evaluate it.
    Train(Box<TrainArgs>),
    /// Evaluate a finished run again: kNN, linear probe, retrieval, baselines, pictures.
    Eval(use_run::EvalArgs),
    /// Write the embeddings of a split as a `.npy` file (float32 `[n, dim]`) and its labels.
    Embed(use_run::EmbedArgs),
    /// Draw a retrieval grid: test queries and their nearest training images.
    Retrieve(use_run::RetrieveArgs),
    /// Index a folder of images with a trained run or torchvision weights (incremental:
    /// only new and changed files are embedded).
    Index(Box<photos::IndexArgs>),
    /// Search an index with query images: paths and similarities, and a picture.
    Search(Box<photos::SearchArgs>),
    /// Groups of near-duplicate images in an index, and a picture of them.
    Duplicates(Box<photos::DuplicatesArgs>),
    /// Serve an index: a search page and a JSON API over HTTP.
    Serve(Box<photos::ServeArgs>),
    /// Measure throughput (augmentations, ...).
    Bench(BenchArgs),
    /// Run the test suite exactly as CI does.
    Ci,
}

#[derive(Parser)]
struct BenchArgs {
    #[command(subcommand)]
    target: Option<BenchTarget>,
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Augmentation pipelines: CPU (1 thread and all threads) and device paths.
    Augment(bench_augment::BenchAugmentArgs),
    /// Training steps and inference of the reference models on each backend (`--compare`:
    /// PyTorch, live or stored).
    Models(bench::ModelsArgs),
    /// Where the time of a training step goes (phases, per-layer forward at several widths).
    Profile(bench::ProfileArgs),
    /// Exact and approximate image search beside faiss-cpu: build, memory, latency, recall.
    Search(bench_search::BenchSearchArgs),
}

#[derive(Parser, Default)]
struct TrainArgs {
    /// Preset to train; without it, the short SimCLR default (`simclr-short`). With
    /// `--config`, the preset's method replaces a method of another kind in the file (and its
    /// `[init]` is added when the file has none).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(
        repr_train::PRESETS.iter().map(|p| p.name)
    ))]
    recipe: Option<String>,
    /// Backend: flex (default CPU), ndarray, wgpu, cuda; `wgpu:1`, `cuda:1`: a machine's second
    /// GPU.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Data parallel over several devices of this machine in one process, one thread each,
    /// e.g. `wgpu:0,wgpu:1` (collectives through host memory; docs/distributed.md).
    /// `--batch-size` stays the global batch.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["device", "processes"])]
    devices: Vec<String>,
    /// A TOML or JSON config file (fields left out take the recipe's defaults).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run name: outputs go to `<runs-dir>/<name>/` (default: the recipe's name); one folder
    /// name, not a path.
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
    /// Image folders: `skip` leaves out files that cannot be read or decoded (listed with the
    /// reason in `<run>/skipped.txt`), `fail` (the config's default) stops on the first.
    #[arg(long, value_name = "skip|fail")]
    on_bad_image: Option<repr_data::OnBadImage>,
    /// Image folders: the most pixels (width × height) one image may declare; a larger one is
    /// refused from its header before it is decoded (`data.max_image_pixels`, default
    /// 64,000,000).
    #[arg(long, value_name = "PIXELS")]
    max_image_pixels: Option<u64>,
    /// Augmentation preset: `standard` (the recipe's, fitted to the data) or `no-flip` (the
    /// same without horizontal flips, for data whose meaning changes when mirrored).
    #[arg(long, value_parser = ["standard", "no-flip"])]
    augment: Option<String>,
    /// Where a view method's augmentations run: `cpu` (the loader's threads) or `device`
    /// (batched tensor ops on the training device, what a GPU run wants).
    #[arg(long, value_parser = ["cpu", "device"])]
    augment_on: Option<String>,
    /// Pre-trained weights (`[init] from`, for `--recipe finetune` or any method): a repr run
    /// folder, or a PyTorch state dict with torchvision names (`.safetensors` or `.pt`).
    #[arg(long)]
    from: Option<PathBuf>,
    /// Train on this fraction of the labelled training split, class-balanced (e.g. 0.01).
    #[arg(long)]
    labels_fraction: Option<f64>,
    /// Continue the run from its last checkpoint (its config.toml is the base config).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// With --resume: when the newest checkpoint does not verify (a damaged file), continue
    /// from the newest earlier one that does (`checkpoint_keep` keeps them), keeping the
    /// damaged file as `<name>.corrupt`.
    #[arg(long, requires = "resume")]
    fallback: bool,
    /// Checkpoints to keep: the newest and the ones before it (`checkpoint_keep`, default 2).
    #[arg(long)]
    checkpoint_keep: Option<usize>,
    /// Replace the run of the same name: only a run folder (its config.toml or checkpoints/
    /// present) or an empty folder, and only the files a run writes.
    #[arg(long)]
    overwrite: bool,
    /// No progress output.
    #[arg(long)]
    quiet: bool,
    /// Spread the run over this many processes on this machine (data parallel over MPI:
    /// `mpiexec -n N` with this command; needs the `mpi` feature, docs/distributed.md).
    /// `--batch-size` stays the global batch.
    #[arg(long)]
    processes: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A misspelt REPR_KERNELS is an error here, not a silent fallback mid-run.
    if let Err(e) = repr_kernels::Kernels::from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Before any thread allocates: tensors freed by one step are reused by the next.
    repr_kernels::reuse_freed_memory();
    let result = match cli.command.unwrap_or(Cmd::Train(Box::new(TrainArgs {
        device: "flex".into(),
        runs_dir: "runs".into(),
        ..TrainArgs::default()
    }))) {
        Cmd::Train(args) => match args.processes {
            Some(n) => match distributed::launch(n) {
                Ok(code) => return code,
                Err(e) => Err(e),
            },
            None if !args.devices.is_empty() => train_on_devices(&args),
            None => train(*args),
        },
        Cmd::Bench(args) => match args.target {
            Some(BenchTarget::Augment(args)) => bench_augment::run(&args),
            Some(BenchTarget::Models(args)) => bench::run_models(&args),
            Some(BenchTarget::Profile(args)) => bench::run_profile(&args),
            Some(BenchTarget::Search(args)) => bench_search::run(&args),
            None => bench::run_all(),
        },
        Cmd::Eval(args) => use_run::eval(&args),
        Cmd::Embed(args) => use_run::embed(&args),
        Cmd::Retrieve(args) => use_run::retrieve(&args),
        Cmd::Index(args) => photos::index(&args),
        Cmd::Search(args) => photos::search(&args),
        Cmd::Duplicates(args) => photos::duplicates(&args),
        Cmd::Serve(args) => photos::serve(&args),
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
    let group = distributed::group()?;
    let device: DeviceSpec = args.device.parse()?;
    train_rank(&args, device, &group)
}

/// `--devices`: one rank per device, each on a thread of this process.
fn train_on_devices(args: &TrainArgs) -> Result<()> {
    let devices = args
        .devices
        .iter()
        .map(|d| d.parse::<DeviceSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    distributed::on_devices(&devices, |device, group| train_rank(args, device, group))
}

/// The run of this rank; with several ranks, an error stops them all.
fn train_rank(args: &TrainArgs, device: DeviceSpec, group: &repr_train::Group) -> Result<()> {
    if group.size() == 1 {
        return train_in(args, device, group);
    }
    let result = train_in(args, device, group);
    if let Err(e) = &result {
        // Another rank may be waiting in a collective for this one: stop them all, after
        // saying why (the checkpoints written so far are intact: writes are atomic).
        eprintln!("error (rank {} of {}): {e:#}", group.rank(), group.size());
        group.abort(1);
    }
    // MPI is never finalised: a rank that exits first would have the launcher stop the
    // others, maybe while rank 0 still writes. Leave together.
    group.barrier();
    result
}

/// The run of this rank: rank 0 resolves the config and the run folder (only it can read a
/// resumed run's files) and hands them to the others.
fn train_in(args: &TrainArgs, device: DeviceSpec, group: &repr_train::Group) -> Result<()> {
    let (config, run) = if group.size() == 1 {
        resolve_run(args)?
    } else {
        let shared = group
            .share(|| {
                resolve_run(args)
                    .map(|(config, run)| {
                        let from_data = config.from_data;
                        (config, from_data, run.root().to_path_buf())
                    })
                    .map_err(|e| format!("{e:#}"))
            })
            .map_err(anyhow::Error::msg)?;
        let (mut config, from_data, root): (TrainConfig, repr_train::FromData, PathBuf) = shared;
        config.from_data = from_data;
        let run = if group.is_leader() {
            let mode = run_mode(args);
            RunDir::open(&root, mode)?.with_fallback(args.fallback)
        } else {
            RunDir::for_follower(&root)
        };
        (config, run)
    };
    if group.is_leader() {
        println!(
            "training `{}` ({}) on {} with {}{} -> {}",
            config.method.kind(),
            config.backbone.name(),
            config
                .data
                .dir
                .as_deref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the embedded Fashion-MNIST".into()),
            device,
            if group.size() > 1 {
                format!(
                    " on {} ranks ({}), global batch {}",
                    group.size(),
                    group.describe(),
                    config.batch_size
                )
            } else {
                String::new()
            },
            run.root().display()
        );
    }
    let options = TrainOptions {
        device,
        resume: args.resume,
        progress: !args.quiet,
    };
    let summary = repr_train::train_in(&config, &run, &options, group)?;
    if !group.is_leader() {
        return Ok(());
    }
    let name = run
        .root()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    print_summary(&name, &summary, &run);
    Ok(())
}

fn run_mode(args: &TrainArgs) -> RunMode {
    match (args.resume, args.overwrite) {
        (true, _) => RunMode::Resume,
        (false, true) => RunMode::Overwrite,
        (false, false) => RunMode::New,
    }
}

/// The config of the run `args` ask for, and its run folder (checked, not written yet).
fn resolve_run(args: &TrainArgs) -> Result<(TrainConfig, RunDir)> {
    let preset = repr_train::preset(args.recipe.as_deref().unwrap_or("simclr-short"))
        .expect("clap only accepts the listed presets");
    let name = args.name.clone().unwrap_or_else(|| preset.name.to_string());
    // Before anything is read or written: `--name` is one folder name inside `--runs-dir`.
    repr_train::check_run_name(&name)?;
    let root = args.runs_dir.join(&name);
    let mode = run_mode(args);
    // Resolve the config before touching the run folder, so a bad config changes nothing.
    let base = match (&args.config, args.resume) {
        (Some(path), _) => TrainConfig::from_file(path)?,
        (None, true) => TrainConfig::from_file(&root.join("config.toml"))
            .with_context(|| format!("resuming {}", root.display()))?,
        (None, false) => (preset.config)(),
    };
    let mut config = apply_overrides(base, args);
    // A preset takes channels, classes, image size, views and k from the data (a config file
    // sets which it leaves out, a resumed run keeps its own).
    if args.config.is_none() && !args.resume {
        config.from_data = repr_train::FromData::ALL;
    }
    config.validate()?;
    // A fine-tuning run takes the architecture of the repr run it starts from.
    let config = repr_train::init::resolve(&config)?;
    let run = RunDir::open(&root, mode)?.with_fallback(args.fallback);
    Ok((config, run))
}

/// The result table of a finished run.
fn print_summary(name: &str, summary: &repr_train::Summary, run: &RunDir) {
    let percent =
        |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{:.2}%", 100.0 * v));
    println!();
    println!(
        "| run | device | backbone | epochs | steps | test accuracy | kNN top-1 | linear top-1 | wall time | train img/s |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {:.0} |",
        summary.device,
        summary.backbone,
        summary.epochs,
        summary.steps,
        percent(summary.eval.accuracy),
        percent(summary.eval.knn_top1),
        percent(summary.eval.linear_top1),
        summary.wall_seconds,
        summary.train_images_per_second
    );
    if let Some(table) = &summary.table {
        println!();
        println!("{table}");
    }
    println!("outputs: {}", run.root().display());
}

fn apply_overrides(mut config: TrainConfig, args: &TrainArgs) -> TrainConfig {
    // With a config file, `--recipe` brings its preset's method (one file can describe a
    // network trained from scratch and fine-tuned).
    if args.config.is_some()
        && let Some(preset) = args.recipe.as_deref().and_then(repr_train::preset)
    {
        let preset = (preset.config)();
        if preset.method.kind() != config.method.kind() {
            config.method = preset.method;
        }
        if config.init.is_none() {
            config.init = preset.init;
        }
    }
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
    if let Some(on) = args
        .augment_on
        .as_deref()
        .and_then(repr_train::AugmentOn::parse)
    {
        config.augment_on = on;
    }
    if let Some(from) = &args.from {
        match &mut config.init {
            Some(init) => init.from = from.clone(),
            None => config.init = Some(InitConfig::from(from.clone())),
        }
    }
    if let Some(fraction) = args.labels_fraction {
        config.data.labels_fraction = Some(fraction);
    }
    if let Some(lr) = args.lr {
        // A constant schedule (min_lr = lr) stays constant at the new rate.
        if config.schedule.min_lr == config.optimizer.lr() {
            config.schedule.min_lr = lr;
        }
        match &mut config.optimizer {
            repr_train::OptimizerConfig::Sgd { lr: l, .. }
            | repr_train::OptimizerConfig::Adamw { lr: l, .. }
            | repr_train::OptimizerConfig::Lars { lr: l, .. } => *l = lr,
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
    if let Some(keep) = args.checkpoint_keep {
        config.checkpoint_keep = keep;
    }
    if let Some(preset) = args
        .augment
        .as_deref()
        .and_then(repr_train::AugmentPreset::parse)
    {
        config.augment.preset = preset;
    }
    if let Some(on_bad_image) = args.on_bad_image {
        config.data.on_bad_image = on_bad_image;
    }
    if let Some(pixels) = args.max_image_pixels {
        config.data.max_image_pixels = pixels;
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

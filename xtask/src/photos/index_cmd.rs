//! `cargo xtask index`: embed every image under a folder into an index, incrementally.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use repr_backbones::Pooling;
use repr_search::{Index, UpdateOptions, UpdateReport};
use repr_train::DeviceChoice;

use super::model::{Arch, Encoder, ModelSpec, Source, hash_file, hash_run_model};

/// Which network embeds the images (for a new index; an existing one keeps its own).
#[derive(Parser, Debug, Default)]
pub struct ModelArgs {
    /// A trained run folder (`runs/<name>`): its representation, as `cargo xtask eval` measures it.
    #[arg(long, conflicts_with_all = ["weights", "arch"])]
    run: Option<PathBuf>,
    /// A torchvision state dict (`.safetensors` or `.pt`) for `--arch`.
    #[arg(long, requires = "arch")]
    weights: Option<PathBuf>,
    /// The architecture of `--weights`; alone, seeded random weights (for speed tests).
    #[arg(long, value_enum)]
    arch: Option<Arch>,
    /// The seed of random weights (`--arch` without `--weights`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The layer whose activations are pooled: ResNet `stem`, `layer1`..`layer4` (or 0-4), a
    /// ViT's block number; default the network's own representation.
    #[arg(long)]
    layer: Option<String>,
    /// Pooling of the layer: avg, max, gem (generalized mean, p = 3), cls (a ViT's class token).
    #[arg(long, value_parser = parse_pool)]
    pool: Option<Pooling>,
    /// Input side for `--arch` networks: images are resized (shorter side to size·256/224) and
    /// centre-cropped to it, as torchvision evaluates (default 224).
    #[arg(long)]
    size: Option<usize>,
}

/// `cargo xtask index`.
#[derive(Parser, Debug)]
pub struct IndexArgs {
    /// The index folder (created when missing or empty; an existing index is brought up to date).
    #[arg(long)]
    index: PathBuf,
    /// The folder of images (every image below it; labels from its subfolders' names). Needed
    /// to create an index; an existing index remembers its folder.
    #[arg(long)]
    images: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Backend: flex (default CPU), ndarray, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Images per batch (and per commit: a killed run loses at most one batch).
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// The most pixels (width × height) one image may declare; larger files are listed as
    /// failures without being decoded.
    #[arg(long, value_name = "PIXELS", default_value_t = repr_data::DEFAULT_MAX_IMAGE_PIXELS)]
    max_image_pixels: u64,
    /// List every unreadable file (those of this update and those left from earlier ones),
    /// not the first ten.
    #[arg(long)]
    show_failures: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl ModelArgs {
    fn given(&self) -> bool {
        self.run.is_some() || self.arch.is_some()
    }

    /// The model these arguments name (weights hashed now).
    fn spec(&self) -> Result<ModelSpec> {
        let source = match (&self.run, &self.weights, self.arch) {
            (Some(dir), _, _) => {
                let dir = std::fs::canonicalize(dir)
                    .with_context(|| format!("--run {}: no such run folder", dir.display()))?;
                Source::Run {
                    sha256: hash_run_model(&dir)?,
                    dir,
                }
            }
            (None, Some(file), Some(arch)) => {
                let file = std::fs::canonicalize(file)
                    .with_context(|| format!("--weights {}: no such file", file.display()))?;
                Source::Weights {
                    sha256: hash_file(&file)?,
                    file,
                    arch,
                }
            }
            (None, None, Some(arch)) => Source::Random {
                arch,
                seed: self.seed,
            },
            _ => bail!("name the model: --run runs/<name>, or --weights <file> --arch <arch>"),
        };
        let layer = self.layer.as_deref().map(parse_layer).transpose()?;
        Ok(ModelSpec {
            source,
            layer,
            pool: self.pool,
        })
    }
}

/// `--layer`: a number, or a ResNet stage name.
fn parse_layer(text: &str) -> Result<usize> {
    match text {
        "stem" => Ok(0),
        _ => {
            let number = text.strip_prefix("layer").unwrap_or(text);
            number.parse().map_err(|_| {
                anyhow::anyhow!("--layer {text:?}: expected stem, layer1..layer4 or a layer number")
            })
        }
    }
}

/// `--pool`: avg, max, gem or cls.
pub fn parse_pool(text: &str) -> Result<Pooling, String> {
    serde_json::from_value(serde_json::Value::String(text.to_lowercase()))
        .map_err(|_| format!("{text:?}: expected avg, max, gem or cls"))
}

pub fn run(args: &IndexArgs) -> Result<()> {
    let device = args.device.parse::<DeviceChoice>()?.device()?;
    let (encoder, mut index) = open(args, &device)?;
    println!(
        "indexing {} into {} with {}",
        index.root().display(),
        args.index.display(),
        encoder.describe()
    );
    let options = UpdateOptions {
        batch_size: args.batch_size,
        max_image_pixels: args.max_image_pixels,
        auto_compact: true,
    };
    let bar = progress_bar(args.quiet);
    let started = Instant::now();
    let report = index.update(
        &options,
        encoder.device(),
        |images| encoder.embed(images),
        |progress| {
            bar.set_length(progress.total as u64);
            bar.set_position(progress.done as u64);
        },
    )?;
    bar.finish_and_clear();
    print_report(&report, started.elapsed(), index.len()?, args);
    Ok(())
}

/// The index and the encoder that fills it: a new index takes the model of the arguments; an
/// existing one rebuilds its own (and refuses different model arguments).
fn open(args: &IndexArgs, device: &burn::tensor::Device) -> Result<(Encoder, Index)> {
    let existing = repr_search::Index::open(&args.index);
    match existing {
        Ok(index) => {
            let encoder = Encoder::for_index(index.identity(), device)?;
            if args.model.given() {
                let asked = Encoder::build(args.model.spec()?, args.model.size, device)?;
                if asked.identity() != encoder.identity() {
                    bail!(
                        "{} was made with {}; these arguments name {}. Index into a new folder \
                         (or delete this index) to change the model",
                        args.index.display(),
                        encoder.describe(),
                        asked.describe()
                    );
                }
            }
            if let Some(images) = &args.images {
                let given = std::fs::canonicalize(images)
                    .with_context(|| format!("--images {}", images.display()))?;
                if given != index.root() {
                    bail!(
                        "{} indexes {}, not {}",
                        args.index.display(),
                        index.root().display(),
                        given.display()
                    );
                }
            }
            Ok((encoder, index))
        }
        Err(repr_search::SearchError::NotAnIndex { .. }) if !has_index_files(&args.index) => {
            let Some(images) = &args.images else {
                bail!(
                    "{} is not an index yet: give --images <folder>",
                    args.index.display()
                );
            };
            if !args.model.given() {
                bail!(
                    "{} is not an index yet: name the model with --run runs/<name>, or \
                     --weights <file> --arch <arch>",
                    args.index.display()
                );
            }
            let encoder = Encoder::build(args.model.spec()?, args.model.size, device)?;
            let index = Index::open_or_create(&args.index, images, &encoder.identity())?;
            Ok((encoder, index))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `dir` holds an index's database (so that an error opening it is not "create one").
fn has_index_files(dir: &Path) -> bool {
    dir.join("index.sqlite").exists()
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} images, {per_sec}, ETA {eta}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

fn print_report(report: &UpdateReport, elapsed: Duration, total: usize, args: &IndexArgs) {
    let dir = &args.index;
    let seconds = elapsed.as_secs_f64();
    println!(
        "{} added, {} changed, {} unchanged, {} removed, {} unreadable; {} images embedded in {:.1} s ({:.1} images/s); {} images in {}",
        report.added.len(),
        report.changed.len(),
        report.unchanged,
        report.removed.len(),
        report.failed.len() + report.known_failures.len(),
        report.embedded,
        seconds,
        report.embedded as f64 / seconds.max(1e-9),
        total,
        dir.display()
    );
    let failures: Vec<_> = if args.show_failures {
        report.failed.iter().chain(&report.known_failures).collect()
    } else {
        report.failed.iter().collect()
    };
    let shown = if args.show_failures { usize::MAX } else { 10 };
    for failure in failures.iter().take(shown) {
        println!("  unreadable: {}: {}", failure.path, failure.reason);
    }
    if failures.len() > shown {
        println!(
            "  ... and {} more (--show-failures lists them all)",
            failures.len() - shown
        );
    }
}

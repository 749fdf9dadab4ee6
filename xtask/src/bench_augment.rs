//! `cargo xtask bench augment`: throughput of the SimCLR augmentation pipelines, CPU path (one
//! thread and all threads, each in its own rayon pool) and device path (flex, wgpu, ...).
//!
//! Workloads: SimCLR's CIFAR view (`simclr_cifar(32)`) on 32x32 RGB images, and SimCLR's
//! ImageNet view (`simclr_imagenet(224)`, blur included) on 256x256 images. One view per image,
//! ending in normalised `f32` (as the training loop consumes it), so "images/s" is views/s.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use clap::Args;
use repr_augment::device::{self, PixelFormat};
use repr_augment::{ComposeConfig, ImageDims, MultiViewConfig, NormalizeConfig};
use repr_train::DeviceChoice;

/// Options of `cargo xtask bench augment`.
#[derive(Args, Debug, Clone)]
pub struct BenchAugmentArgs {
    /// Threads of the "all threads" CPU measurement (default: all available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed runs per measurement (the median is reported), after one warm-up run.
    #[arg(long, default_value_t = 7)]
    pub iters: usize,
    /// Devices of the device-path measurements, comma separated (flex, ndarray, wgpu, cuda); `none`
    /// for none.
    #[arg(long, value_delimiter = ',', default_value = "flex,wgpu")]
    pub devices: Vec<String>,
    /// Folder of `augment.md` and `augment.json`: absent, empty, or one bench wrote before (its
    /// `.repr-bench` marker); any other folder is refused before measuring.
    #[arg(long, default_value = "runs/bench")]
    pub out_dir: std::path::PathBuf,
}

/// One workload: a view pipeline and the images it is applied to.
struct Workload {
    name: &'static str,
    view: ComposeConfig,
    side: usize,
    cpu_batch: usize,
    device_batch: usize,
}

/// One measured row.
struct Row {
    workload: &'static str,
    path: String,
    threads: String,
    batch: usize,
    images_per_second: f64,
    runs_ms: Vec<f64>,
}

/// Runs the benchmark and writes `augment.md` and `.json` under `--out-dir`.
pub fn run(args: &BenchAugmentArgs) -> Result<()> {
    crate::bench::prepare_out_dir(&args.out_dir)?;
    let all_threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let iters = args.iters.max(1);
    let workloads = [
        Workload {
            name: "SimCLR CIFAR view, 32x32 -> 32x32",
            view: ComposeConfig::simclr_cifar(32),
            side: 32,
            cpu_batch: 1024,
            device_batch: 256,
        },
        Workload {
            name: "SimCLR ImageNet view, 256x256 -> 224x224",
            view: ComposeConfig::simclr_imagenet(224),
            side: 256,
            cpu_batch: 64,
            device_batch: 64,
        },
    ];
    let mut rows = Vec::new();
    for w in &workloads {
        let dims = ImageDims {
            channels: 3,
            height: w.side,
            width: w.side,
        };
        let views = MultiViewConfig {
            views: vec![w.view.clone()],
        }
        .init(dims)?;
        let normalize = NormalizeConfig::default().init(3)?;
        let images = synthetic_images(w.cpu_batch.max(w.device_batch), dims);
        let cpu_images: Vec<&[u8]> = images
            .iter()
            .take(w.cpu_batch)
            .map(|v| v.as_slice())
            .collect();
        let indices: Vec<u64> = (0..cpu_images.len() as u64).collect();
        for threads in dedup([1, all_threads]) {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()?;
            let mut epoch = 0;
            let runs = time_runs(iters, || {
                epoch += 1;
                let out = pool.install(|| {
                    views.augment_batch_with(
                        &cpu_images,
                        &indices,
                        0,
                        epoch,
                        |_, view, out: &mut [f32]| normalize.apply(view, out),
                    )
                })?;
                std::hint::black_box(out);
                Ok(())
            })?;
            rows.push(row(
                w.name,
                "cpu".into(),
                threads.to_string(),
                w.cpu_batch,
                runs,
            ));
        }
        let dev_images: Vec<&[u8]> = images
            .iter()
            .take(w.device_batch)
            .map(|v| v.as_slice())
            .collect();
        let dev_indices: Vec<u64> = (0..dev_images.len() as u64).collect();
        for name in args.devices.iter().filter(|d| d.as_str() != "none") {
            let choice = name.parse::<DeviceChoice>()?;
            if !choice.is_compiled() {
                eprintln!(
                    "SKIPPED: device {name} is not compiled into this build (cargo run -p xtask \
                     --features {name} -- bench augment ...)"
                );
                continue;
            }
            let device = choice.device().with_context(|| format!("device {name}"))?;
            let mut epoch = 0;
            let runs = time_runs(iters, || {
                epoch += 1;
                // Everything a training step would wait for: sampling the parameters, uploading
                // the u8 images, augmenting and normalising on the device.
                let params = views.sample_batch(&dev_indices, 0, epoch);
                let x = device::upload(&dev_images, dims, &device)?;
                let out = views.apply_device(x, &params, PixelFormat::U8)?;
                let normalized: Vec<Tensor<4>> =
                    out.into_iter().map(|v| v.div_scalar(255.0f32)).collect();
                std::hint::black_box(&normalized);
                device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                Ok(())
            })?;
            rows.push(row(
                w.name,
                format!("device {name}"),
                "-".into(),
                w.device_batch,
                runs,
            ));
        }
    }
    let table = markdown(&rows, iters);
    println!("{table}");
    write_outputs(&args.out_dir, &table, &rows, iters)
}

fn dedup(threads: [usize; 2]) -> Vec<usize> {
    let mut t = threads.to_vec();
    t.dedup();
    t
}

/// Pseudo-random smooth RGB images (a seeded LCG plus gradients), so the content is not constant.
fn synthetic_images(n: usize, dims: ImageDims) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            (0..dims.len())
                .map(|k| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let noise = (state >> 59) as usize;
                    let (c, y, x) = (
                        k / dims.plane(),
                        (k / dims.width) % dims.height,
                        k % dims.width,
                    );
                    ((x * (c + 1) + y * 2 + i * 13 + noise * 4) % 256) as u8
                })
                .collect()
        })
        .collect()
}

fn time_runs(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    f()?; // warm-up (and, on wgpu, kernel compilation)
    (0..iters)
        .map(|_| {
            let start = Instant::now();
            f()?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect()
}

fn row(
    workload: &'static str,
    path: String,
    threads: String,
    batch: usize,
    runs_ms: Vec<f64>,
) -> Row {
    let mut sorted = runs_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    eprintln!("{workload} | {path} | {threads} | median {median:.2} ms per batch of {batch}");
    Row {
        workload,
        path,
        threads,
        batch,
        images_per_second: batch as f64 / (median / 1e3),
        runs_ms,
    }
}

fn markdown(rows: &[Row], iters: usize) -> String {
    let mut s = format!(
        "Augmentation throughput (median of {iters} runs after one warm-up; one view per image, \
         ending in normalised f32; dev profile: Burn at opt-level 3, repr crates at opt-level 1)\n\n\
         | workload | path | threads | batch | images/s | median ms/batch |\n\
         | --- | --- | ---: | ---: | ---: | ---: |\n"
    );
    for r in rows {
        let mut sorted = r.runs_ms.clone();
        sorted.sort_by(f64::total_cmp);
        s += &format!(
            "| {} | {} | {} | {} | {:.0} | {:.2} |\n",
            r.workload,
            r.path,
            r.threads,
            r.batch,
            r.images_per_second,
            sorted[sorted.len() / 2]
        );
    }
    s
}

fn write_outputs(dir: &Path, table: &str, rows: &[Row], iters: usize) -> Result<()> {
    crate::bench::prepare_out_dir(dir)?;
    let md = dir.join("augment.md");
    std::fs::write(&md, table).with_context(|| format!("writing {}", md.display()))?;
    let json = serde_json::json!({
        "iters": iters,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "rows": rows.iter().map(|r| serde_json::json!({
            "workload": r.workload,
            "path": r.path,
            "threads": r.threads,
            "batch": r.batch,
            "images_per_second": r.images_per_second,
            "runs_ms": r.runs_ms,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("augment.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} and {}", md.display(), path.display());
    Ok(())
}

//! `cargo xtask bench models|profile`: training-step and inference throughput of the shared
//! reference workloads (ResNet-18 CIFAR variant, SimCLR step, triplet step) on each backend, with
//! PyTorch's CPU numbers beside them (`--compare`), and a timing profile of the hot paths.
//!
//! `cargo xtask bench` without a target runs `models --compare` and `augment` with their defaults.
//!
//! Each (backend, workload) pair runs in a child process of the same binary, so that its peak
//! resident memory (`VmHWM`) is its own and a backend that fails cannot take the others down.
//! Ratios between backends come from the same invocation. The PyTorch numbers of `--compare`
//! are measured live, in the same invocation, by `benches/pytorch/bench_models.py` when the
//! interpreter (`$REPR_PYTHON`, else `python3` on `PATH`) can `import torch`; otherwise they
//! are the stored ones of `benches/pytorch/pytorch-cpu-results.jsonl`, which name the machine
//! they were measured on. The table says which, and marks with `*` every ratio between
//! numbers from different machines.
//!
//! `--out-dir` is created by bench or refused ([`prepare_out_dir`]); `--docs` only replaces
//! the generated section between its marker lines.

mod docs_section;
mod measure;
mod out_dir;
mod profile;
mod pytorch;
mod report;
mod workloads;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser};
use repr_kernels::Kernels;
use repr_train::DeviceChoice;
use serde_json::{Value, json};

pub use measure::{Contention, commit, machine};
pub use out_dir::prepare_out_dir;
pub use profile::{ProfileArgs, run_profile};
use workloads::Workload;

/// Prefix of the one stdout line a child process reports its result on.
const RESULT_PREFIX: &str = "BENCH-RESULT ";

/// Options of `cargo xtask bench models`.
#[derive(Args, Debug, Clone)]
pub struct ModelsArgs {
    /// Backends, comma separated: flex (with repr-kernels), flex-burn (flex with Burn's own
    /// kernels, `REPR_KERNELS=burn`), ndarray, wgpu, cuda. The first is the baseline of the
    /// ratio column ("vs flex" when flex comes first).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "flex,flex-burn,ndarray,wgpu"
    )]
    pub devices: Vec<String>,
    /// Workloads, comma separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub workloads: Vec<Workload>,
    /// Timed steps per workload (median, min and max are reported).
    #[arg(long, default_value_t = 7)]
    pub steps: usize,
    /// Untimed warm-up steps before them.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Backends too slow for `--steps` on this machine (ndarray's convolution backward takes
    /// ~90 s per ResNet-18 step; wgpu here is lavapipe, a CPU Vulkan driver); they get
    /// `--slow-steps` and `--slow-warmup` instead. `none` for none.
    #[arg(long, value_delimiter = ',', default_value = "ndarray,wgpu")]
    pub slow_devices: Vec<String>,
    /// Timed steps on the slow backends.
    #[arg(long, default_value_t = 2)]
    pub slow_steps: usize,
    /// Warm-up steps on the slow backends (wgpu compiles its kernels in the first step).
    #[arg(long, default_value_t = 1)]
    pub slow_warmup: usize,
    /// The workloads the slow backends run (the others get a "skipped" row). Each ndarray
    /// training step of the ResNet-18 encoder takes minutes; `--time-limit` bounds every row.
    #[arg(
        long,
        value_delimiter = ',',
        value_enum,
        default_value = "resnet18-train,resnet18-infer,simclr-train,triplet-train,vit-train,vit-infer"
    )]
    pub slow_workloads: Vec<Workload>,
    /// Images per training step (P×K = 16 × batch/16 for the triplet step).
    #[arg(long, default_value_t = 64)]
    pub train_batch: usize,
    /// Images per inference forward (256, as the PyTorch reference).
    #[arg(long, default_value_t = 256)]
    pub infer_batch: usize,
    /// Add PyTorch's CPU numbers to the table, with our/PyTorch ratios. PyTorch runs live
    /// (`benches/pytorch/bench_models.py`, in this invocation, on as many threads as our
    /// backends use) when `$REPR_PYTHON` (default `python3` on `PATH`) can `import torch`;
    /// otherwise the numbers stored in `benches/pytorch/` stand in, and the table names the
    /// machine they were measured on and marks ratios across machines with `*`.
    #[arg(long)]
    pub compare: bool,
    /// Before each measurement, wait at most this many seconds for other processes to use less
    /// than `--max-other` cores (0: do not wait).
    #[arg(long, default_value_t = 600)]
    pub wait_idle: u64,
    /// Other processes' CPU use (cores) above which a measurement is taken again, once.
    #[arg(long, default_value_t = 0.25)]
    pub max_other: f64,
    /// Folder of `models.md` and `models.json`: absent, empty, or one bench wrote before (its
    /// `.repr-bench` marker); any other folder is refused before measuring.
    #[arg(long, default_value = "runs/bench")]
    pub out_dir: PathBuf,
    /// Also write the table into the generated section of this Markdown file (e.g.
    /// `docs/benchmarks.md`): only the text between its `<!-- bench-models:begin ... -->` and
    /// `<!-- bench-models:end -->` lines is replaced, and a file without them is refused before
    /// measuring. By default only `--out-dir` is written.
    #[arg(long)]
    pub docs: Option<PathBuf>,
    /// Stop a measurement (one backend × workload, warm-up included) that runs longer than this
    /// many seconds and record it as timed out (0: no limit).
    #[arg(long, default_value_t = 900)]
    pub time_limit: u64,
    /// Internal: measure one `device:workload` in this process and print the result.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

impl Default for ModelsArgs {
    fn default() -> Self {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ModelsArgs,
        }
        Wrapper::parse_from(["models"]).args
    }
}

/// Runs `cargo xtask bench models`.
pub fn run_models(args: &ModelsArgs) -> Result<()> {
    if let Some(spec) = &args.child {
        return child(args, spec);
    }
    // Both refusals come before anything is written or measured.
    if let Some(docs) = &args.docs {
        docs_section::check_docs(docs)?;
    }
    prepare_out_dir(&args.out_dir)?;
    let (devices, missing): (Vec<BenchDevice>, Vec<BenchDevice>) = args
        .devices
        .iter()
        .map(|d| BenchDevice::parse(d))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .partition(|d| d.choice.is_compiled());
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|d| d.name()).collect();
        eprintln!(
            "SKIPPED: {} not compiled into this build (cargo run -p xtask --features {} -- bench \
             models ...)",
            names.join(", "),
            names.join(",")
        );
    }
    if devices.is_empty() {
        bail!("--devices: none of the devices asked for is compiled into this build");
    }
    let workloads = if args.workloads.is_empty() {
        Workload::ALL.to_vec()
    } else {
        args.workloads.clone()
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; the numbers of docs/benchmarks.md come from \
             `cargo run --release -p xtask -- bench models`"
        );
    }
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut results = Vec::new();
    for &workload in &workloads {
        for device in &devices {
            let slow = args
                .slow_devices
                .iter()
                .any(|d| d.eq_ignore_ascii_case(device.name()));
            if slow && !args.slow_workloads.contains(&workload) {
                results.push(json!({
                    "workload": workload.name(), "device": device.name(), "status": "skipped",
                    "note": "slow backend here: not in --slow-workloads",
                }));
                continue;
            }
            let (steps, warmup) = if slow {
                (args.slow_steps, args.slow_warmup)
            } else {
                (args.steps, args.warmup)
            };
            eprintln!(
                "{} on {device}: {warmup} warm-up + {steps} timed steps",
                workload.name()
            );
            let mut attempts = 0;
            let mut waited = 0.0;
            let record = loop {
                attempts += 1;
                if args.wait_idle > 0 {
                    waited +=
                        measure::wait_idle(Duration::from_secs(args.wait_idle), args.max_other, 5)
                            .0;
                }
                let mut record = spawn_child(&exe, args, device, workload, steps, warmup)?;
                let other = record["other_procs_cores"].as_f64().unwrap_or(0.0);
                let retry = record["status"] == "ok" && other > args.max_other && attempts < 2;
                record["attempts"] = json!(attempts);
                record["waited_for_idle_s"] = json!((waited * 10.0f64).round() / 10.0);
                if !retry {
                    break record;
                }
                eprintln!("  other processes used {other:.2} cores; measuring again");
            };
            results.push(record);
        }
    }
    let pytorch = args.compare.then(|| report::pytorch_rows(&workloads, args));
    let mut report = json!({
        "machine": measure::machine(),
        "commit": measure::commit(),
        "command": command_line(),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "date": date(),
        "baseline": devices[0].name(),
        "results": results,
    });
    if let Some(rows) = pytorch {
        report["pytorch"] = json!(rows);
    }
    report::write(&report, &workloads, args)
}

/// `cargo xtask bench` without a target: `models --compare`, then `augment`.
pub fn run_all() -> Result<()> {
    let models = ModelsArgs {
        compare: true,
        ..ModelsArgs::default()
    };
    run_models(&models)?;
    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: crate::bench_augment::BenchAugmentArgs,
    }
    crate::bench_augment::run(&Wrapper::parse_from(["augment"]).args)
}

/// A backend row of the table: a device and, on flex, whose kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchDevice {
    /// The device.
    pub choice: DeviceChoice,
    /// The kernels flex runs (ignored on other devices).
    pub kernels: Kernels,
}

impl BenchDevice {
    /// `flex`, `flex-burn`, `ndarray`, `wgpu` or `cuda`.
    pub fn parse(name: &str) -> Result<Self> {
        if name.trim().eq_ignore_ascii_case("flex-burn") {
            return Ok(Self {
                choice: DeviceChoice::Flex,
                kernels: Kernels::Burn,
            });
        }
        let choice: DeviceChoice = name
            .parse()
            .map_err(|e| anyhow::anyhow!("--devices: {e} (or flex-burn)"))?;
        Ok(Self {
            choice,
            kernels: Kernels::Repr,
        })
    }

    /// The row's name: the device's, `flex-burn` for flex with Burn's kernels.
    pub fn name(&self) -> &'static str {
        match (self.choice, self.kernels) {
            (DeviceChoice::Flex, Kernels::Burn) => "flex-burn",
            (choice, _) => choice.name(),
        }
    }
}

impl std::fmt::Display for BenchDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Measures `workload` on `device` in a child process and returns its record.
fn spawn_child(
    exe: &std::path::Path,
    args: &ModelsArgs,
    device: &BenchDevice,
    workload: Workload,
    steps: usize,
    warmup: usize,
) -> Result<Value> {
    let mut child = Command::new(exe)
        .args(["bench", "models", "--docs", "none"])
        .arg("--child")
        .arg(format!("{}:{}", device.name(), workload.name()))
        .args([
            "--steps",
            &steps.to_string(),
            "--warmup",
            &warmup.to_string(),
        ])
        .args(["--train-batch", &args.train_batch.to_string()])
        .args(["--infer-batch", &args.infer_batch.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    // The child's output is read on a thread so that the time limit can be enforced here.
    let reader = std::thread::spawn(move || -> Result<Option<Value>> {
        let mut record = None;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            match line.strip_prefix(RESULT_PREFIX) {
                Some(json) => record = Some(serde_json::from_str::<Value>(json)?),
                None => println!("{line}"),
            }
        }
        Ok(record)
    });
    let limit = (args.time_limit > 0).then(|| Duration::from_secs(args.time_limit));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if limit.is_some_and(|l| start.elapsed() > l) {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let record = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the output reader of the measuring process panicked"))??;
    let note = match status {
        None => format!(
            "stopped after the {} s time limit (--time-limit), warm-up included",
            args.time_limit
        ),
        Some(status) => format!("the measuring process ended without a result ({status})"),
    };
    Ok(record.unwrap_or_else(|| {
        json!({
            "workload": workload.name(), "device": device.name(), "status": "error",
            "note": note,
        })
    }))
}

/// The child side: measure one workload and print its record.
fn child(args: &ModelsArgs, spec: &str) -> Result<()> {
    let (device_name, workload_name) = spec
        .split_once(':')
        .context("--child takes DEVICE:WORKLOAD")?;
    let device = BenchDevice::parse(device_name)?;
    repr_kernels::set_kernels(device.kernels);
    let workload = <Workload as clap::ValueEnum>::from_str(workload_name, false)
        .map_err(|e| anyhow::anyhow!("unknown workload `{workload_name}`: {e}"))?;
    let record = match measure_one(args, &device, workload) {
        Ok(record) => record,
        Err(e) => json!({
            "workload": workload.name(), "device": device.name(), "status": "error",
            "note": format!("{e:#}"),
        }),
    };
    println!("{RESULT_PREFIX}{record}");
    Ok(())
}

fn measure_one(args: &ModelsArgs, device: &BenchDevice, workload: Workload) -> Result<Value> {
    let dev = device.choice.device()?;
    let mut prepared = workloads::prepare(workload, &dev, args.train_batch, args.infer_batch)?;
    let mut failure = None;
    let (times, cores, last) =
        measure::time_steps(args.warmup, args.steps.max(1), || match (prepared.step)() {
            Ok(v) => v,
            Err(e) => {
                failure.get_or_insert(e);
                f32::NAN
            }
        });
    if let Some(e) = failure {
        return Err(e);
    }
    let ips: Vec<f64> = times
        .iter()
        .map(|t| prepared.images_per_step as f64 / t)
        .collect();
    let (ips_median, ips_min, ips_max) = measure::median_min_max(&ips);
    let (ms_median, ms_min, ms_max) =
        measure::median_min_max(&times.iter().map(|t| t * 1000.0).collect::<Vec<_>>());
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    Ok(json!({
        "workload": workload.name(),
        "device": device.name(),
        "status": "ok",
        "batch_images": prepared.images_per_step,
        "params": prepared.params,
        "warmup": args.warmup,
        "n": times.len(),
        "ips_median": round(ips_median, 3),
        "ips_min": round(ips_min, 3),
        "ips_max": round(ips_max, 3),
        "ms_median": round(ms_median, 2),
        "ms_min": round(ms_min, 2),
        "ms_max": round(ms_max, 2),
        "raw_s": times.iter().map(|t| round(*t, 6)).collect::<Vec<_>>(),
        "peak_rss_mib": measure::peak_rss_mib().map(|m| round(m, 1)),
        "own_cores": round(cores.own, 3),
        "other_procs_cores": round(cores.other, 3),
        "last_loss_or_out": last,
    }))
}

/// The command as typed, with the binary's path shortened to `xtask`.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let build = if cfg!(debug_assertions) {
        "cargo xtask"
    } else {
        "cargo run --release -p xtask --"
    };
    format!("{build} {}", args.join(" "))
}

/// The UTC date and time, from `date` (no clock crate in the workspace).
pub(crate) fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

//! `cargo xtask bench profile`: where the time of a training step goes, by timing
//! instrumentation (there is no `perf` on the reference machine).
//!
//! 1. Phases of a ResNet-18 CIFAR training step at each width: host→device upload of the batch,
//!    forward + loss, backward (+ gradient collection), optimizer step; each ended by a device
//!    sync, so a phase's time is its own.
//! 2. Per-operation forward times (training mode, on the autodiff device) of the same networks,
//!    grouped by kind (3×3 convolutions, 1×1 shortcut convolutions, BatchNorm, ReLU, residual
//!    add, pool + linear), with the convolutions' FLOP rate per stage.
//! 3. Forward + backward of the two SimCLR views, separately and concatenated.
//! 4. The backend's kernel ceiling: the FLOP rate of a plain matmul at the shapes the network
//!    reduces to, and of one convolution forward and forward + backward, beside the FLOP rate
//!    PyTorch's stored ResNet-18 training step implies, with the machine it was measured on
//!    (its share of this machine's peak is marked `*` when that is another machine).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use clap::Args;
use repr_backbones::resnet::Block;
use repr_backbones::{ResNet, ResNetConfig, Stem};
use repr_kernels::nn::Conv2d;
use repr_kernels::{Kernels, kernels, set_kernels};
use repr_objectives::CrossEntropyLossConfig;
use repr_train::{DeviceChoice, Supervised};
use serde_json::{Value, json};

use super::measure;
use super::pytorch::PeerMachine;
use super::workloads::{labels, sgd};

/// Options of `cargo xtask bench profile`.
#[derive(Args, Debug, Clone)]
pub struct ProfileArgs {
    /// Backend to profile.
    #[arg(long, default_value = "flex")]
    pub device: String,
    /// ResNet-18 CIFAR base widths to profile (64 is the reference network).
    #[arg(long, value_delimiter = ',', default_value = "16,32,64")]
    pub widths: Vec<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed repetitions (medians are reported).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Wait at most this many seconds for other processes to go quiet first (0: do not wait).
    #[arg(long, default_value_t = 600)]
    pub wait_idle: u64,
    /// Folder of `profile.md` and `profile.json`: absent, empty, or one bench wrote before (its
    /// `.repr-bench` marker); any other folder is refused before profiling.
    #[arg(long, default_value = "runs/bench")]
    pub out_dir: PathBuf,
    /// Sections to run: `phases` (and the per-operation forward), `views`, `kernels`.
    #[arg(long, value_delimiter = ',', default_value = "phases,views,kernels")]
    pub sections: Vec<Section>,
}

/// A part of the profile.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Phases of a training step and the per-operation forward, at each width.
    Phases,
    /// The SimCLR encoder on two views, separately and concatenated.
    Views,
    /// Matmul and convolution FLOP rates against PyTorch's whole-step rate.
    Kernels,
}

/// Runs `cargo xtask bench profile`.
pub fn run_profile(args: &ProfileArgs) -> Result<()> {
    let choice: DeviceChoice = args.device.parse()?;
    super::prepare_out_dir(&args.out_dir)?;
    let device = choice.device()?;
    let steps = args.steps.max(1);
    if args.wait_idle > 0 {
        measure::wait_idle(Duration::from_secs(args.wait_idle), 0.25, 5);
    }
    let contention = measure::Contention::start();
    let mut phases = Vec::new();
    let mut ops = Vec::new();
    let wants = |s: Section| args.sections.contains(&s);
    if wants(Section::Phases) {
        for &width in &args.widths {
            eprintln!("width {width}: phases of a training step");
            phases.push(phase_profile(&device, width, args.batch, steps)?);
            eprintln!("width {width}: per-operation forward");
            ops.push(op_profile(&device, width, args.batch, steps)?);
        }
    }
    let views = if wants(Section::Views) {
        eprintln!(
            "SimCLR encoder: two views of {} vs one batch of {}",
            args.batch,
            2 * args.batch
        );
        views_profile(&device, args.batch, steps)?
    } else {
        Value::Null
    };
    let kernels = if wants(Section::Kernels) {
        eprintln!("kernel ceiling: matmul and convolution FLOP rates");
        kernel_profile(&device, args.batch, steps)?
    } else {
        Value::Null
    };
    let cores = contention.finish();
    let report = json!({
        "machine": measure::machine(),
        "commit": measure::commit(),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "device": choice.name(),
        "batch": args.batch,
        "steps": steps,
        "own_cores": cores.own,
        "other_procs_cores": cores.other,
        "phases": phases,
        "ops": ops,
        "simclr_views": views,
        "kernels": kernels,
    });
    let table = markdown(&report);
    super::prepare_out_dir(&args.out_dir)?;
    let md_path = args.out_dir.join("profile.md");
    std::fs::write(&md_path, &table).with_context(|| format!("writing {}", md_path.display()))?;
    let json_path = args.out_dir.join("profile.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{table}");
    println!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

fn resnet(width: usize) -> ResNetConfig {
    ResNetConfig::resnet18()
        .with_stem(Stem::Cifar)
        .with_width(width)
        .with_num_classes(10)
}

fn sync(device: &Device) -> Result<()> {
    device
        .sync()
        .map_err(|e| anyhow!("device sync failed: {e:?}"))
}

fn median(v: &[f64]) -> f64 {
    measure::median_min_max(v).0
}

/// A seeded host batch, `[n, 3, 32, 32]` values in about `[-2, 2]`.
fn host_batch(n: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n * 3 * 32 * 32)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// Forward multiply-add FLOPs (2 per MAC) of the convolutions and the linear head.
fn forward_flops(model: &ResNet, batch: usize) -> f64 {
    let mut side = 32usize;
    let mut total = conv_flops(&model.conv1, batch, side, side);
    for (stage, blocks) in [&model.layer1, &model.layer2, &model.layer3, &model.layer4]
        .into_iter()
        .enumerate()
    {
        for (i, block) in blocks.iter().enumerate() {
            let Block::Basic(b) = block else { continue };
            let out = if stage > 0 && i == 0 { side / 2 } else { side };
            total += conv_flops(&b.conv1, batch, out, out) + conv_flops(&b.conv2, batch, out, out);
            if let Some(d) = &b.downsample {
                total += conv_flops(&d.conv, batch, out, out);
            }
            side = out;
        }
    }
    if let Some(fc) = &model.fc {
        let [i, o] = fc.weight.val().dims();
        total += 2.0 * (batch * i * o) as f64;
    }
    total
}

fn conv_flops(conv: &Conv2d, batch: usize, out_h: usize, out_w: usize) -> f64 {
    let [cout, cin, kh, kw] = conv.weight.val().dims();
    2.0 * (batch * cout * out_h * out_w * cin * kh * kw) as f64
}

/// Medians of the phases of a training step.
fn phase_profile(device: &Device, width: usize, batch: usize, steps: usize) -> Result<Value> {
    let train = device.clone().autodiff();
    let loss_fn = CrossEntropyLossConfig::new().init()?;
    let mut model = Supervised {
        backbone: resnet(width).init(&train).into(),
        loss: loss_fn.clone(),
    };
    let flops = match &model.backbone {
        repr_backbones::Backbone::ResNet(r) => forward_flops(r, batch),
        repr_backbones::Backbone::ViT(_) => unreachable!("the profiled backbone is a ResNet"),
    };
    let mut optimizer = sgd().init();
    let host = host_batch(batch);
    let y = labels((0..batch).map(|i| (i % 10) as i64).collect(), &train);
    let mut t = [Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for step in 0..=steps {
        let start = Instant::now();
        let x = Tensor::<4>::from_data(TensorData::new(host.clone(), [batch, 3, 32, 32]), &train);
        sync(device)?;
        let upload = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let loss = loss_fn.forward(model.forward(x), y.clone());
        sync(device)?;
        let forward = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        sync(device)?;
        let backward = start.elapsed().as_secs_f64();
        let start = Instant::now();
        model = optimizer.step(0.1, model, grads);
        sync(device)?;
        let optim = start.elapsed().as_secs_f64();
        if step > 0 {
            // Step 0 is the warm-up.
            for (v, x) in t.iter_mut().zip([
                upload,
                forward,
                backward,
                optim,
                upload + forward + backward + optim,
            ]) {
                v.push(x);
            }
        }
    }
    let [upload, forward, backward, optim, total] = t.map(|v| median(&v));
    Ok(json!({
        "width": width,
        "params": repr_backbones::num_learnable_params(&model),
        "forward_gflop": flops / 1e9,
        "upload_s": upload, "forward_s": forward, "backward_s": backward,
        "optimizer_s": optim, "step_s": total,
        "images_per_s": batch as f64 / total,
        "train_gflops_per_s": 3.0 * flops / total / 1e9,
        "forward_gflops_per_s": flops / forward / 1e9,
    }))
}

/// Per-kind accumulator of the per-operation profile.
/// Median time of `op` on `x` over `repeats` runs after one warm-up, and its output.
fn timed(
    device: &Device,
    repeats: usize,
    x: Tensor<4>,
    op: impl Fn(Tensor<4>) -> Tensor<4>,
) -> Result<(Tensor<4>, f64)> {
    let mut times = Vec::new();
    let mut out = None;
    for _ in 0..=repeats {
        let start = Instant::now();
        let y = op(x.clone());
        sync(device)?;
        times.push(start.elapsed().as_secs_f64());
        out = Some(y);
    }
    Ok((out.expect("at least one run"), median(&times[1..])))
}

/// Forward times of the width-`width` network by stage, training mode, each stage run through
/// the real modules (`ResNet::forward_stem`, each `Block::forward`, `pool` + `forward_head`), so
/// the profile cannot drift from the network it profiles; with the FLOP rate of each stage's
/// convolutions over the stage's whole time (BatchNorm, ReLU and residual joins included).
fn op_profile(device: &Device, width: usize, batch: usize, steps: usize) -> Result<Value> {
    let train = device.clone().autodiff();
    let model = resnet(width).init(&train);
    let x = Tensor::<4>::from_data(
        TensorData::new(host_batch(batch), [batch, 3, 32, 32]),
        &train,
    );
    let mut stages = Vec::new();
    let (mut x, t) = timed(device, steps, x, |x| model.forward_stem(x))?;
    let [_, _, side, _] = x.dims();
    stages.push(("stem", t, conv_flops(&model.conv1, batch, side, side)));
    for (name, blocks) in [
        ("layer1", &model.layer1),
        ("layer2", &model.layer2),
        ("layer3", &model.layer3),
        ("layer4", &model.layer4),
    ] {
        let (mut seconds, mut flops) = (0.0, 0.0);
        for block in blocks {
            let (y, t) = timed(device, steps, x, |x| block.forward(x))?;
            let [_, _, out, _] = y.dims();
            let Block::Basic(b) = block else {
                return Err(anyhow!("the profile expects basic blocks"));
            };
            flops += conv_flops(&b.conv1, batch, out, out) + conv_flops(&b.conv2, batch, out, out);
            if let Some(d) = &b.downsample {
                flops += conv_flops(&d.conv, batch, out, out);
            }
            seconds += t;
            x = y;
        }
        stages.push((name, seconds, flops));
    }
    let (_, head) = timed(device, steps, x, |x| {
        let [b, _, _, _] = x.dims();
        model
            .forward_head(model.pool(x, repr_backbones::Pooling::Avg))
            .reshape([b, 10, 1, 1])
    })?;
    let total: f64 = stages.iter().map(|s| s.1).sum::<f64>() + head;
    Ok(json!({
        "width": width,
        "total_s": total,
        "head_s": head,
        "conv_stages": stages.iter().map(|(name, s, f)| json!({
            "stage": name, "seconds": s, "share": s / total, "gflop": f / 1e9,
            "gflops_per_s": f / s / 1e9,
        })).collect::<Vec<_>>(),
    }))
}

/// Forward + backward of the ResNet-18 CIFAR encoder on two views of `batch` images run
/// separately (as `SimClr::step` does, per-view BatchNorm statistics) against one concatenated
/// batch of `2 * batch` (PyTorch's reference script; BatchNorm statistics shared by the views).
fn views_profile(device: &Device, batch: usize, steps: usize) -> Result<Value> {
    let train = device.clone().autodiff();
    let model = super::workloads::resnet18_cifar(0).init(&train);
    let v1 = super::workloads::images(batch, &train);
    let v2 = super::workloads::images(batch, &train);
    let mut separate = Vec::new();
    let mut joint = Vec::new();
    for step in 0..=steps {
        let start = Instant::now();
        let loss = model.embed(v1.clone()).mean() + model.embed(v2.clone()).mean();
        let _grads = loss.backward();
        sync(device)?;
        let a = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let both = Tensor::cat(vec![v1.clone(), v2.clone()], 0);
        let _grads = model.embed(both).mean().backward();
        sync(device)?;
        let b = start.elapsed().as_secs_f64();
        if step > 0 {
            separate.push(a);
            joint.push(b);
        }
    }
    Ok(json!({
        "batch_per_view": batch,
        "separate_s": median(&separate),
        "concatenated_s": median(&joint),
    }))
}

/// FLOP rate of `op` (which does `flops` FLOPs): its fastest of `steps` timed runs after one
/// warm-up ([`measure::time_steps`]), each ended by a device sync.
fn rate(device: &Device, flops: f64, steps: usize, op: impl Fn()) -> Result<f64> {
    let mut failure = None;
    let (times, _, _) = measure::time_steps(1, steps.max(1), || {
        op();
        if let Err(e) = sync(device) {
            failure.get_or_insert(e);
        }
        0.0
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let best = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(flops / best / 1e9)
}

/// The backend's kernel rates against the machine's measured FMA peak. Matmuls: a square
/// 1024³ one, and the GEMMs an im2col convolution of the reference network reduces to (layer1:
/// `[batch·32·32, 64·9] × [64·9, 64]`; layer4: `[batch·4·4, 512·9] × [512·9, 512]`).
/// Convolutions of the reference network (3×3 at each stage's map size, the 1×1 stride-2
/// shortcut), forward and forward + backward (3× the forward FLOPs), and BatchNorm training
/// forward + backward (as GB/s-bound work, reported in ms), each with repr-kernels and with
/// Burn's flex kernels when the device is flex. PyTorch: its stored ResNet-18 CIFAR training
/// step, as FLOPs per second (3× the forward FLOPs per image).
fn kernel_profile(device: &Device, batch: usize, steps: usize) -> Result<Value> {
    let peak = repr_kernels::cpu::peak::fma_peak(Duration::from_millis(1500));
    eprintln!(
        "  FMA peak ({}): {:.0} GFLOP/s on 1 thread, {:.0} on {}",
        peak.isa, peak.one_thread, peak.all_threads, peak.threads
    );
    let mut rows = Vec::new();
    for (name, m, k, n) in [
        ("matmul 1024×1024×1024", 1024, 1024, 1024),
        ("matmul, layer1 im2col GEMM", batch * 32 * 32, 64 * 9, 64),
        ("matmul, layer4 im2col GEMM", batch * 4 * 4, 512 * 9, 512),
    ] {
        let a = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), device);
        let b = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), device);
        let gflops = rate(device, 2.0 * (m * k * n) as f64, steps, || {
            let _ = a.clone().matmul(b.clone());
        })?;
        rows.push(
            json!({"kernel": name, "kernels": "burn", "shape": [m, k, n], "gflops_per_s": gflops}),
        );
    }
    let train = device.clone().autodiff();
    let choices: &[Kernels] = if repr_kernels::is_flex(device) {
        &[Kernels::Repr, Kernels::Burn]
    } else {
        &[Kernels::Burn]
    };
    let before = kernels();
    // (name, c_in, c_out, kernel, stride, input side)
    let convs = [
        ("conv 3×3 64→64 at 32×32", 64, 64, 3, 1, 32),
        ("conv 3×3 128→128 at 16×16", 128, 128, 3, 1, 16),
        ("conv 3×3 512→512 at 4×4", 512, 512, 3, 1, 4),
        ("conv 1×1 64→128 stride 2, 32×32", 64, 128, 1, 2, 32),
    ];
    for &choice in choices {
        set_kernels(choice);
        for (name, cin, cout, k, stride, side) in convs {
            let pad = k / 2;
            let conv: Conv2d = burn::nn::conv::Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(burn::nn::PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(&train)
                .into();
            let x = Tensor::<4>::random(
                [batch, cin, side, side],
                Distribution::Normal(0.0, 1.0),
                &train,
            );
            let out = (side + 2 * pad - k) / stride + 1;
            let flops = conv_flops(&conv, batch, out, out);
            let forward = rate(device, flops, steps, || {
                let _ = conv.forward(x.clone().detach());
            })?;
            let x_grad = x.clone().require_grad();
            let both = rate(device, 3.0 * flops, steps, || {
                let _grads = conv.forward(x_grad.clone()).sum().backward();
            })?;
            rows.push(json!({"kernel": format!("{name}, forward"), "kernels": choice.name(), "gflops_per_s": forward}));
            rows.push(json!({"kernel": format!("{name}, forward + backward"), "kernels": choice.name(), "gflops_per_s": both}));
        }
        let bn = repr_kernels::nn::BatchNorm::init(&burn::nn::BatchNormConfig::new(64), &train);
        let x = Tensor::<4>::random([batch, 64, 32, 32], Distribution::Normal(0.0, 1.0), &train)
            .require_grad();
        // Bytes moved at the least: read x twice and write y (forward), read x, dy and write dx
        // twice over (backward) — 8 passes of 4-byte floats.
        let bytes = 8.0 * 4.0 * (batch * 64 * 32 * 32) as f64;
        let gbs = rate(device, bytes, steps, || {
            let _grads = bn.forward_relu(x.clone()).sum().backward();
        })?;
        rows.push(json!({"kernel": "BatchNorm+ReLU 64 ch at 32×32, forward + backward (GB/s)", "kernels": choice.name(), "gb_per_s": gbs}));
    }
    set_kernels(before);
    let per_image = 3.0 * forward_flops(&resnet(64).init(device), 1);
    let pytorch = super::pytorch::reference("resnet_train").map(|r| {
        json!({
            "torch": r.torch, "images_per_s": r.median, "gflops_per_s": r.median * per_image / 1e9,
            "source": r.source.name(), "file": super::pytorch::STORED_FILE,
            "machine": r.machine.as_ref().map(super::pytorch::PeerMachine::to_json),
        })
    });
    Ok(json!({
        "batch": batch,
        "peak": {"isa": peak.isa, "one_thread_gflops": peak.one_thread, "all_threads_gflops": peak.all_threads, "threads": peak.threads},
        "rows": rows,
        "pytorch_resnet_train": pytorch,
    }))
}

fn markdown(report: &Value) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Profile on {} ({} build, commit `{}`), batch {}, medians of {} repetitions; other processes used {:.2} cores.\n",
        report["device"].as_str().unwrap_or("?"),
        report["profile"].as_str().unwrap_or("?"),
        report["commit"].as_str().unwrap_or("?"),
        report["batch"],
        report["steps"],
        report["other_procs_cores"].as_f64().unwrap_or(f64::NAN),
    );
    if report["phases"].as_array().is_some_and(|p| !p.is_empty()) {
        phases_markdown(&mut s, report);
    }
    if !report["simclr_views"].is_null() {
        views_markdown(&mut s, &report["simclr_views"]);
    }
    if !report["kernels"].is_null() {
        kernels_markdown(&mut s, &report["kernels"], &report["machine"]);
    }
    s
}

/// Seconds in a report value, as milliseconds.
fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN) * 1000.0
}

fn phases_markdown(s: &mut String, report: &Value) {
    s.push_str("Training step phases (ms), ResNet-18 CIFAR at base width w:\n\n");
    s.push_str("| w | params | fwd GFLOP | upload | forward + loss | backward | optimizer | step | images/s | train GFLOP/s (3× fwd) | forward GFLOP/s |\n");
    s.push_str("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for p in report["phases"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
            p["width"],
            p["params"],
            p["forward_gflop"].as_f64().unwrap_or(f64::NAN),
            ms(&p["upload_s"]),
            ms(&p["forward_s"]),
            ms(&p["backward_s"]),
            ms(&p["optimizer_s"]),
            ms(&p["step_s"]),
            p["images_per_s"].as_f64().unwrap_or(f64::NAN),
            p["train_gflops_per_s"].as_f64().unwrap_or(f64::NAN),
            p["forward_gflops_per_s"].as_f64().unwrap_or(f64::NAN),
        );
    }
    s.push_str(
        "\nForward by stage (training mode, the real modules), ms and share of the forward:\n\n",
    );
    for o in report["ops"].as_array().into_iter().flatten() {
        let stages: Vec<String> = o["conv_stages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| {
                format!(
                    "{} {:.1} ({:.0}%)",
                    k["stage"].as_str().unwrap_or("?"),
                    ms(&k["seconds"]),
                    100.0 * k["share"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "- w={}: total {:.0} ms; {}, pool + head {:.1}",
            o["width"],
            ms(&o["total_s"]),
            stages.join(", "),
            ms(&o["head_s"])
        );
    }
    s.push_str("\nConvolution FLOP rate per stage over the stage's whole forward (GFLOP/s):\n\n| w | stem | layer1 | layer2 | layer3 | layer4 |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for o in report["ops"].as_array().into_iter().flatten() {
        let rates: Vec<String> = o["conv_stages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{:.1}", c["gflops_per_s"].as_f64().unwrap_or(f64::NAN)))
            .collect();
        let _ = writeln!(s, "| {} | {} |", o["width"], rates.join(" | "));
    }
}

fn views_markdown(s: &mut String, v: &Value) {
    let _ = writeln!(
        s,
        "\nSimCLR encoder forward + backward: two views of {} separately {:.0} ms, one \
         concatenated batch {:.0} ms.",
        v["batch_per_view"],
        ms(&v["separate_s"]),
        ms(&v["concatenated_s"]),
    );
}

fn kernels_markdown(s: &mut String, k: &Value, machine: &Value) {
    let peak = k["peak"]["all_threads_gflops"].as_f64();
    let _ = writeln!(
        s,
        "\nKernel rates (batch {}, best of the repetitions; convolution forward + backward \
         counted as 3× the forward FLOPs). Machine peak: {} FMA loop at {:.0} GFLOP/s on {} \
         threads ({:.0} on one).\n\n| kernel | kernels | GFLOP/s | of peak |\n| --- | --- | ---: | ---: |",
        k["batch"],
        k["peak"]["isa"].as_str().unwrap_or("?"),
        peak.unwrap_or(f64::NAN),
        k["peak"]["threads"],
        k["peak"]["one_thread_gflops"].as_f64().unwrap_or(f64::NAN),
    );
    for r in k["rows"].as_array().into_iter().flatten() {
        let name = r["kernel"].as_str().unwrap_or("?");
        let kernels = r["kernels"].as_str().unwrap_or("burn");
        match (r["gflops_per_s"].as_f64(), r["gb_per_s"].as_f64()) {
            (Some(g), _) => {
                let share = peak.map_or_else(|| "—".into(), |p| format!("{:.0}%", 100.0 * g / p));
                let _ = writeln!(s, "| {name} | {kernels} | {g:.1} | {share} |");
            }
            (None, Some(gb)) => {
                let _ = writeln!(s, "| {name} | {kernels} | {gb:.1} GB/s | — |");
            }
            _ => {}
        }
    }
    let p = &k["pytorch_resnet_train"];
    if !p.is_null() {
        let g = p["gflops_per_s"].as_f64().unwrap_or(f64::NAN);
        let stored = PeerMachine::from_json(&p["machine"]);
        let here = stored.as_ref().is_some_and(|m| m.matches(machine));
        let star = if here { "" } else { "*" };
        let share = peak.map_or_else(|| "—".into(), |pk| format!("{:.0}%{star}", 100.0 * g / pk));
        let measured = stored
            .as_ref()
            .map_or_else(|| "an unrecorded machine".into(), PeerMachine::describe);
        let _ = writeln!(
            s,
            "| PyTorch {} ResNet-18 CIFAR training step, whole step ({:.1} images/s, stored{star}) | oneDNN | {g:.1} | {share} |",
            p["torch"].as_str().unwrap_or("?"),
            p["images_per_s"].as_f64().unwrap_or(f64::NAN),
        );
        let verdict = if here {
            "the same CPU model and core count as this machine, another run".to_string()
        } else {
            format!(
                "not this machine ({}, {} cores): `*` marks a share of this machine's peak \
                 computed from another machine's rate, which is not comparable",
                machine["cpu"].as_str().unwrap_or("unknown CPU"),
                machine["cores"]
            )
        };
        let _ = writeln!(
            s,
            "\nPyTorch stored: `{}`, measured on {measured} — {verdict}.",
            p["file"].as_str().unwrap_or(super::pytorch::STORED_FILE),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_flops_of_the_reference_resnet() {
        // 0.556 GMAC per 32×32 image for the CIFAR ResNet-18 (convolutions + linear).
        let model = resnet(64).init(&Device::flex());
        let gflop = forward_flops(&model, 1) / 1e9;
        assert!((gflop - 1.1117).abs() < 0.01, "{gflop}");
    }

    #[test]
    fn a_kernels_only_report_renders_only_its_table() {
        let report = json!({
            "machine": {"cpu": "Intel(R) Xeon(R) Processor", "cores": 2},
            "device": "flex", "profile": "debug", "commit": "abc", "batch": 64, "steps": 3,
            "other_procs_cores": 0.1, "phases": [], "simclr_views": null,
            "kernels": {"batch": 64,
                        "peak": {"isa": "avx512f", "one_thread_gflops": 250.0, "all_threads_gflops": 500.0, "threads": 2},
                        "rows": [{"kernel": "matmul 1024×1024×1024", "kernels": "burn", "gflops_per_s": 44.25},
                                 {"kernel": "conv, forward", "kernels": "repr", "gflops_per_s": 250.0}],
                        "pytorch_resnet_train": {"torch": "2.15.0", "images_per_s": 89.2, "gflops_per_s": 297.3,
                                                 "source": "stored",
                                                 "machine": {"cpu": "AMD EPYC (model not recorded)", "cores": 2, "date": "2026-11-28"}}},
        });
        let md = markdown(&report);
        assert!(
            md.contains("| matmul 1024×1024×1024 | burn | 44.2 | 9% |"),
            "{md}"
        );
        assert!(
            md.contains("| conv, forward | repr | 250.0 | 50% |"),
            "{md}"
        );
        assert!(
            md.contains("avx512f FMA loop at 500 GFLOP/s on 2 threads (250 on one)"),
            "{md}"
        );
        assert!(
            md.contains("(89.2 images/s, stored*) | oneDNN | 297.3 | 59%* |"),
            "{md}"
        );
        assert!(
            md.contains(
                "measured on AMD EPYC (model not recorded), 2 cores, 2026-11-28 — not this \
                 machine (Intel(R) Xeon(R) Processor, 2 cores)"
            ),
            "{md}"
        );
        assert!(
            !md.contains("Training step phases") && !md.contains("SimCLR encoder"),
            "{md}"
        );
    }
}

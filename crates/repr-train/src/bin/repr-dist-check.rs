//! Checks of data-parallel training, run under `mpiexec` by `tests/distributed.rs` (and by hand:
//! `docs/distributed.md`). Built with the `mpi` and `flex` features.
//!
//! - `repr-dist-check equivalence <supervised|simclr|triplet> <out-dir>`: the first global batch
//!   of 128 images (each rank its share) through one step: the global loss and the all-reduced
//!   gradient of every parameter, written by rank 0 to `<out-dir>/step.json`; then 20 steps of
//!   the data-parallel stepper, each rank writing `<out-dir>/rank<r>.json` with its parameters'
//!   fingerprint, the 20 losses and its traffic (rank 0 also its parameters).
//! - `repr-dist-check train <config> <run-dir> [--resume]`: `repr_train::train_in` on flex over
//!   the MPI world, each rank writing its process id to `<run-dir>.rank<r>.pid` first.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use repr_data::{LoadOptions, Normalize, Split};
use repr_train::distributed::mpi::MpiWorld;
use repr_train::distributed::{broadcast_module, fingerprint, materialize};
use repr_train::equivalence as check;
use repr_train::{DeviceChoice, Group, RunDir, RunMode, TrainConfig, TrainOptions};
use serde_json::json;

/// Steps after which the ranks' parameters are compared.
const STEPS: usize = 20;

fn main() {
    let group = MpiWorld::init().expect("MPI initialises").group();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("equivalence") if args.len() == 3 => {
            equivalence(&group, &args[1], Path::new(&args[2]))
        }
        Some("train") if args.len() >= 3 => train(
            &group,
            Path::new(&args[1]),
            Path::new(&args[2]),
            args.get(3).is_some_and(|a| a == "--resume"),
        ),
        _ => Err(
            "usage: repr-dist-check equivalence <method> <out-dir> | train <config> <run-dir> [--resume]"
                .into(),
        ),
    };
    if result.is_ok() {
        // MPI is never finalised (distributed/mpi.rs): a rank that exits first would have the
        // launcher stop the others, maybe mid-write. Leave together.
        group.barrier();
    }
    if let Err(e) = result {
        eprintln!("error (rank {} of {}): {e}", group.rank(), group.size());
        if group.size() > 1 {
            group.abort(1);
        }
        std::process::exit(1);
    }
}

fn equivalence(group: &Group, method: &str, out: &Path) -> Result<(), String> {
    let config = check::equivalence_config(method)?;
    let device = Device::flex();
    device.seed(config.seed);
    let train_device = device.autodiff();
    let dataset = Arc::new(
        repr_data::load(
            &repr_data::fashion_mnist_dir(),
            Split::Train,
            &LoadOptions::default(),
        )
        .map_err(|e| e.to_string())?,
    );
    let normalize = Normalize::from_dataset(&dataset);
    let loader = check::loader(&config, &dataset, &normalize, group).map_err(|e| e.to_string())?;
    let model = config
        .init_method(&config.run_facts(normalize.clone()), &train_device)
        .map_err(|e| e.to_string())?;
    // Drawn now, in the module's order, on one rank as on several (Burn would draw them on
    // first use, in the forward pass's order, on one rank).
    materialize(&model);
    let model = broadcast_module(group, model, &train_device).map_err(|e| e.to_string())?;

    let (loss, grads) = check::first_step(
        &model,
        config.sync_batch_norm,
        dataset.clone(),
        normalize.clone(),
        loader.clone(),
        group,
        &train_device,
    );
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    if group.is_leader() {
        write(
            &out.join("step.json"),
            &json!({"ranks": group.size(), "loss": loss, "grads": grads}),
        )?;
    }
    let before = group.totals();
    let started = std::time::Instant::now();
    let (losses, model) = check::train_steps(
        &config,
        model,
        dataset,
        normalize,
        loader,
        STEPS,
        group,
        &train_device,
    );
    let seconds = started.elapsed().as_secs_f64();
    let after = group.totals();
    let mut report = json!({
        "rank": group.rank(),
        "ranks": group.size(),
        "fingerprint": format!("{:016x}", fingerprint(&model)),
        "losses": losses,
        "seconds": seconds,
        "communication": {
            "bytes": after.bytes - before.bytes,
            "seconds": after.seconds - before.seconds,
            "calls": after.calls - before.calls,
        },
    });
    if group.is_leader() {
        report["params"] = json!(check::trainable_parameters(&model));
    }
    write(&out.join(format!("rank{}.json", group.rank())), &report)
}

fn write(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    std::fs::write(path, value.to_string()).map_err(|e| format!("{}: {e}", path.display()))
}

fn train(group: &Group, config: &Path, root: &Path, resume: bool) -> Result<(), String> {
    let pid = PathBuf::from(format!("{}.rank{}.pid", root.display(), group.rank()));
    std::fs::write(&pid, std::process::id().to_string()).map_err(|e| e.to_string())?;
    let config = TrainConfig::from_file(config).map_err(|e| e.to_string())?;
    let run = if group.is_leader() {
        let mode = if resume {
            RunMode::Resume
        } else {
            RunMode::New
        };
        RunDir::open(root, mode).map_err(|e| e.to_string())?
    } else {
        RunDir::for_follower(root)
    };
    let options = TrainOptions {
        device: DeviceChoice::Flex.into(),
        resume,
        progress: false,
    };
    repr_train::train_in(&config, &run, &options, group)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

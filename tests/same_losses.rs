//! The first 50 logged training losses of every method, with a fixed seed, equal those of the
//! code before repr-train's redesign ("one method, one file"): the values in
//! `fixtures/same_losses/` were written by this test (`REPR_WRITE_SAME_LOSSES=1`) at commit
//! c589f0f, before the change, and must not be regenerated to make a change pass.
//!
//! Each run is a small network on 64 Fashion-MNIST images in batches of 16 (4 steps an epoch),
//! its recipe's own optimizer, schedule and augmentation, one logged loss per step. On ndarray
//! the losses must be bit-identical; on flex, whose kernels pick AVX-512 or AVX2 code (different
//! rounding) from the CPU they run on, within 1e-4 relative.

mod common;

use std::path::PathBuf;

use repr::backbones::{BackboneConfig, ViTConfig};
use repr::train::{
    DeviceChoice, EvalConfig, MetricsLog, Recipe, RunDir, RunMode, TrainConfig, TrainOptions,
};

const STEPS: usize = 50;

/// Burn seeds a device's generator once per process: runs in parallel test threads would draw
/// from it in turn. One run at a time.
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `recipe`'s preset on a small network and 64 images, 50 steps, a minimal final evaluation.
fn small(recipe: Recipe) -> TrainConfig {
    let mut config = recipe.config();
    config.backbone = common::tiny_backbone(if recipe.is_embedding() { 0 } else { 10 });
    config.data.train_limit = Some(64);
    config.data.test_limit = Some(20);
    config.batch_size = 16;
    config.eval_batch_size = 20;
    config.epochs = STEPS.div_ceil(4) + 1;
    config.max_steps = Some(STEPS);
    config.log_every_steps = 1;
    config.checkpoint_every_steps = 0;
    config.eval_every_epochs = 0;
    config.eval = EvalConfig {
        knn_k: 5,
        memory_limit: None,
        linear_probe: false,
        baselines: false,
        plots: false,
        ..EvalConfig::default()
    };
    match recipe {
        Recipe::Triplet => {
            config.triplet.classes_per_batch = 4;
            config.triplet.images_per_class = 4;
        }
        Recipe::Byol => {
            config.byol.hidden = 64;
            config.byol.output = 32;
        }
        Recipe::Simclr => {
            config.simclr.head_hidden = 32;
            config.simclr.head_output = 16;
        }
        Recipe::MaskedPatch => {
            config.backbone = BackboneConfig::ViT(
                ViTConfig::new(28, 4, 16, 1, 2, 32)
                    .with_in_channels(1)
                    .with_num_classes(0),
            );
        }
        _ => {}
    }
    config
}

fn losses(recipe: Recipe, backend: &str) -> Vec<f64> {
    let _one = ONE_RUN.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
    let options = TrainOptions {
        device: backend.parse::<DeviceChoice>().unwrap(),
        resume: false,
        progress: false,
    };
    repr::train::train(&small(recipe), &run, &options).unwrap();
    MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss.expect("train records have a loss"))
        .collect()
}

fn fixture(recipe: Recipe, backend: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/same_losses")
        .join(format!("{}-{backend}.json", recipe.name()))
}

fn check(recipe: Recipe, backend: &str, relative: f64) {
    let got = losses(recipe, backend);
    assert_eq!(got.len(), STEPS, "{}: one loss per step", recipe.name());
    let path = fixture(recipe, backend);
    if std::env::var_os("REPR_WRITE_SAME_LOSSES").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap()).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the committed fixture)", path.display()));
    let expected: Vec<f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(expected.len(), STEPS);
    for (step, (g, e)) in got.iter().zip(&expected).enumerate() {
        let ok = if relative == 0.0 {
            g.to_bits() == e.to_bits()
        } else {
            (g - e).abs() <= relative * e.abs().max(1e-6)
        };
        assert!(
            ok,
            "{} on {backend}, step {}: loss {g} against {e} before the change\n got {got:?}\n \
             expected {expected:?}",
            recipe.name(),
            step + 1
        );
    }
}

macro_rules! same_losses {
    ($($name:ident: $recipe:expr,)*) => {
        $(
            #[test]
            fn $name() {
                check($recipe, "ndarray", 0.0);
                check($recipe, "flex", 1e-4);
            }
        )*
    };
}

same_losses! {
    supervised_losses_are_unchanged: Recipe::Supervised,
    simclr_losses_are_unchanged: Recipe::Simclr,
    triplet_losses_are_unchanged: Recipe::Triplet,
    byol_losses_are_unchanged: Recipe::Byol,
    masked_patch_losses_are_unchanged: Recipe::MaskedPatch,
}

/// Writes the config of every `small` run, and of a fine-tuning run, as this code writes
/// `config.toml` (the shape before `[method]`), to `fixtures/old_runs/` (with
/// `REPR_WRITE_SAME_LOSSES=1`).
#[test]
fn write_old_shape_configs() {
    if std::env::var_os("REPR_WRITE_SAME_LOSSES").is_none() {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/old_runs");
    std::fs::create_dir_all(&dir).unwrap();
    for recipe in [
        Recipe::Supervised,
        Recipe::Simclr,
        Recipe::Triplet,
        Recipe::Byol,
        Recipe::MaskedPatch,
    ] {
        let path = dir.join(format!("{}.toml", recipe.name()));
        std::fs::write(path, small(recipe).to_toml()).unwrap();
    }
    let mut finetune = TrainConfig::finetune();
    finetune.finetune.from = Some(PathBuf::from("runs/source"));
    finetune.finetune.keep_stages = Some(3);
    finetune.finetune.freeze_stages = Some(2);
    finetune.finetune.backbone_lr_scale = 0.1;
    finetune.label_smoothing = 0.1;
    std::fs::write(dir.join("finetune.toml"), finetune.to_toml()).unwrap();
}

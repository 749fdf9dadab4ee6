//! The first 50 logged training losses of every method, with a fixed seed, equal those of the
//! code before repr-train's redesign ("one method, one file"): the values in
//! `fixtures/same_losses/` were written by this test (`REPR_WRITE_SAME_LOSSES=1`) at commit
//! c589f0f, before the change, and must not be regenerated to make a change pass.
//!
//! Each run is a small network on 64 Fashion-MNIST images in batches of 16 (4 steps an epoch),
//! its recipe's own optimizer, schedule and augmentation, one logged loss per step. On ndarray
//! all 50 losses must be bit-identical. Flex's kernels pick AVX-512 or AVX2 code from the CPU
//! they run on and the fixtures were written on an AVX-512 machine: the two round differently,
//! and 50 steps of training amplify a last-bit difference into percents (on an AVX2-only AMD
//! EPYC the first difference above 1e-4 is at step 6 to 15, step 40 differs by up to 8%). So on
//! flex the first `FLEX_STEPS` losses — the initial draw, augmentation, loss and more than one
//! epoch of optimizer and schedule updates — must agree within 1e-4 relative. The runs go in parallel test
//! threads: a run draws its model from the process's one generator under
//! `repr_train::distributed::SeededDraw`, so what else trains meanwhile does not change it.

mod common;

use std::path::PathBuf;

use repr::backbones::{BackboneConfig, ViTConfig};
use repr::train::{
    DeviceChoice, EvalConfig, MethodConfig, MetricsLog, RunDir, RunMode, TrainConfig, TrainOptions,
};

const STEPS: usize = 50;
/// The steps compared on flex, before rounding differences between CPUs compound.
const FLEX_STEPS: usize = 5;

/// `recipe`'s preset on a small network and 64 images, 50 steps, a minimal final evaluation.
fn small(recipe: &str) -> TrainConfig {
    let mut config = common::preset(recipe);
    config.backbone = common::tiny_backbone(if config.method.is_embedding() { 0 } else { 10 });
    config.data.train_limit = Some(64);
    config.data.test_limit = Some(20);
    config.batch_size = 16;
    config.eval_batch_size = 20;
    config.epochs = STEPS.div_ceil(4) + 1;
    config.max_steps = Some(STEPS);
    config.log_every_steps = 1;
    config.checkpoint_every_steps = 0;
    config.eval_every_epochs = 0;
    config.eval = EvalConfig::knn_only(5);
    match &mut config.method {
        MethodConfig::Triplet(t) => {
            t.classes_per_batch = 4;
            t.images_per_class = 4;
        }
        MethodConfig::Byol(b) => {
            b.hidden = 64;
            b.output = 32;
        }
        MethodConfig::Simclr(s) => {
            s.head.hidden = 32;
            s.head.output = 16;
        }
        MethodConfig::MaskedPatch(_) => {
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

fn losses(recipe: &str, backend: &str) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
    let options = TrainOptions {
        device: backend.parse::<DeviceChoice>().unwrap().into(),
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

fn fixture(recipe: &str, backend: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/same_losses")
        .join(format!("{recipe}-{backend}.json"))
}

fn check(recipe: &str, backend: &str, compared: usize, relative: f64) {
    let got = losses(recipe, backend);
    assert_eq!(got.len(), STEPS, "{recipe}: one loss per step");
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
    for (step, (g, e)) in got.iter().zip(&expected).take(compared).enumerate() {
        let ok = if relative == 0.0 {
            g.to_bits() == e.to_bits()
        } else {
            (g - e).abs() <= relative * e.abs().max(1e-6)
        };
        assert!(
            ok,
            "{recipe} on {backend}, step {}: loss {g} against {e} before the change\n got \
             {got:?}\n expected {expected:?}",
            step + 1
        );
    }
}

macro_rules! same_losses {
    ($($name:ident: $recipe:expr,)*) => {
        $(
            #[test]
            fn $name() {
                check($recipe, "ndarray", STEPS, 0.0);
                check($recipe, "flex", FLEX_STEPS, 1e-4);
            }
        )*
    };
}

same_losses! {
    supervised_losses_are_unchanged: "supervised",
    simclr_losses_are_unchanged: "simclr",
    triplet_losses_are_unchanged: "triplet",
    byol_losses_are_unchanged: "byol",
    masked_patch_losses_are_unchanged: "masked-patch",
}

/// The `config.toml` of each run above, and of a fine-tuning run, as the code before the change
/// wrote it (`fixtures/old_runs/`: `recipe = ...` with `[simclr]`, `[triplet]`, `[byol]`,
/// `[masked_patch]`, `[views]`, `[finetune]`, `label_smoothing`), reads as the same config in the
/// current shape: an old run folder resumes with the settings it was trained with.
#[test]
fn old_shape_configs_read_as_the_same_runs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/old_runs");
    for recipe in ["supervised", "simclr", "triplet", "byol", "masked-patch"] {
        let old = TrainConfig::from_file(&dir.join(format!("{recipe}.toml"))).unwrap();
        assert_eq!(old.to_toml(), small(recipe).to_toml(), "{recipe}");
    }
    let old = TrainConfig::from_file(&dir.join("finetune.toml")).unwrap();
    let mut finetune = common::preset("finetune");
    finetune.init = Some(repr::train::InitConfig {
        from: PathBuf::from("runs/source"),
        keep_stages: Some(3),
        freeze_stages: Some(2),
        backbone_lr_scale: 0.1,
    });
    finetune.method = MethodConfig::Supervised(repr::train::SupervisedConfig {
        loss: repr::objectives::CrossEntropyLossConfig::new().with_smoothing(0.1),
    });
    assert_eq!(old.to_toml(), finetune.to_toml());
}

/// A run folder of the old shape resumes: 20 steps of the SimCLR run, its `config.toml`
/// replaced by the one the code before the change wrote, then resumed from that file to step
/// 50: the 50 losses are those of the uninterrupted run before the change, bit for bit, and the
/// folder's `config.toml` is now in the current shape.
#[test]
fn an_old_run_folder_resumes_with_the_same_losses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("run");
    let mut first = small("simclr");
    first.max_steps = Some(20);
    let options = |resume| TrainOptions {
        device: "ndarray".parse::<DeviceChoice>().unwrap().into(),
        resume,
        progress: false,
    };
    let run = RunDir::open(&root, RunMode::New).unwrap();
    repr::train::train(&first, &run, &options(false)).unwrap();
    let old = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/old_runs/simclr.toml");
    std::fs::copy(&old, run.config()).unwrap();
    let run = RunDir::open(&root, RunMode::Resume).unwrap();
    let config = TrainConfig::from_file(&run.config()).unwrap();
    repr::train::train(&config, &run, &options(true)).unwrap();
    let got: Vec<f64> = MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss.unwrap())
        .collect();
    let text = std::fs::read_to_string(fixture("simclr", "ndarray")).unwrap();
    let expected: Vec<f64> = serde_json::from_str(&text).unwrap();
    assert_eq!(got, expected);
    let written = std::fs::read_to_string(run.config()).unwrap();
    assert!(
        written.contains("[method]") && !written.contains("recipe"),
        "{written}"
    );
}

//! The `finetune` recipe end to end: a small supervised run is the pre-trained source; a
//! fine-tuning run copies its first stages, re-initialises the rest, freezes a prefix (no
//! gradient, BatchNorm statistics fixed) and trains on a class-balanced fraction of the labels,
//! ending better than chance on held-out images.

use std::collections::BTreeMap;

mod common;

use burn::store::ModuleSnapshot;
use repr::train::{
    DeviceChoice, InitConfig, MethodConfig, MetricsLog, RunDir, RunMode, TrainConfig, TrainOptions,
    TrainedRun,
};

fn options() -> TrainOptions {
    TrainOptions {
        device: DeviceChoice::Flex.into(),
        resume: false,
        progress: false,
    }
}

/// Every tensor of the run's backbone (parameters and BatchNorm statistics), by path, as bytes.
fn backbone_tensors(run: &RunDir) -> BTreeMap<String, Vec<u8>> {
    let trained = TrainedRun::load(run, &burn::tensor::Device::flex()).unwrap();
    tensors(trained.method.backbone())
}

fn source_run(dir: &std::path::Path) -> RunDir {
    let run = RunDir::open(dir.join("source"), RunMode::New).unwrap();
    let mut config = common::tiny_supervised(64, 32, 16, 2);
    config.eval.plots = false;
    repr::train::train(&config, &run, &options()).unwrap();
    run
}

fn finetune_config(from: &std::path::Path) -> TrainConfig {
    let mut config = TrainConfig::finetune();
    let tiny = common::tiny_supervised(600, 32, 16, 1);
    config.data = tiny.data.clone();
    config.data.labels_fraction = Some(0.1);
    config.augment = tiny.augment.clone();
    config.batch_size = 16;
    config.epochs = 1;
    config.log_every_steps = 1;
    config.eval_every_epochs = 0;
    config.eval.plots = false;
    config.init = Some(InitConfig {
        from: from.to_path_buf(),
        keep_stages: Some(3),
        freeze_stages: Some(2),
        backbone_lr_scale: 0.1,
    });
    config
}

/// The `[init]` section of a fine-tuning config.
fn init(config: &mut TrainConfig) -> &mut InitConfig {
    config.init.as_mut().expect("a fine-tuning config")
}

#[test]
fn copies_freezes_and_reinitialises_the_stages_it_is_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let source = source_run(dir.path());
    let run = RunDir::open(dir.path().join("finetune"), RunMode::New).unwrap();
    let mut config = finetune_config(source.root());
    // A different architecture in this config: a repr run as source imposes its own (the
    // number of classes stays this config's).
    config.backbone = repr::backbones::BackboneConfig::ResNet(
        repr::backbones::ResNetConfig::resnet18()
            .with_stem(repr::backbones::Stem::Cifar)
            .with_in_channels(1)
            .with_num_classes(10),
    );
    // 8 epochs and 100 test images, so that the fine-tuned classifier is measurably better
    // than the untrained one (below).
    config.epochs = 8;
    config.data.test_limit = Some(100);
    let summary = repr::train::train(&config, &run, &options()).unwrap();
    // 600 images, 10% of each class = 60, in batches of 16: 3 full steps an epoch.
    assert_eq!(summary.steps, 24);
    let written = TrainConfig::from_file(&run.config()).unwrap();
    assert_eq!(written.method.kind(), "supervised");
    assert_eq!(written.init, config.init);
    assert_eq!(written.backbone.name(), common::tiny_backbone(10).name());

    // The fine-tuning learned. Its training loss fell: measured 0.815, and 1.002 at a learning
    // rate of ~0. On the 100 test images it beats the same run at a learning rate of ~0
    // (accuracy 0.06, test loss 2.54): measured 0.23 and 2.16; the bounds are 1.5 times
    // chance and ln 10 = 2.30, the loss of a uniform guess.
    let losses: Vec<f64> = MetricsLog::read(&run)
        .unwrap()
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.loss.expect("train records have a loss"))
        .collect();
    common::assert_fell("flex", "fine-tuning", &losses, 0.9);
    let accuracy = summary.eval.accuracy.expect("a test accuracy");
    assert!(accuracy >= 0.15, "test accuracy {accuracy}");
    let test_loss = summary.eval.loss.expect("a test loss");
    assert!(test_loss <= 10f64.ln(), "test loss {test_loss}");

    let before = backbone_tensors(&source);
    let after = backbone_tensors(&run);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let stage = |path: &str| -> usize {
        [
            "conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.", "fc.",
        ]
        .iter()
        .position(|p| path.starts_with(&format!("ResNet.{p}")))
        .unwrap_or_else(|| panic!("unexpected path {path}"))
    };
    let (mut frozen, mut trained, mut fresh) = (0, 0, 0);
    for (path, value) in &after {
        let same = before[path] == *value;
        match stage(path) {
            // Stem and layers 1-2: frozen, weights and running statistics bit-identical.
            0..=3 => {
                assert!(same, "frozen {path} changed");
                frozen += 1;
            }
            // layer3: copied, then trained (a scalar such as a BN parameter may not move
            // much, but every tensor moves).
            4 => {
                assert!(!same, "trained {path} did not change");
                trained += 1;
            }
            // layer4 and the head: freshly initialised, never the source's values.
            _ => {
                assert!(!same, "re-initialised {path} equals the source");
                fresh += 1;
            }
        }
    }
    assert!(
        frozen >= 15 && trained >= 10 && fresh >= 10,
        "{frozen} {trained} {fresh}"
    );
}

#[test]
fn layer3_starts_from_the_source_weights() {
    // With every stage kept and a learning rate scale of 0 for the backbone, nothing in the
    // backbone body moves except BatchNorm running statistics of unfrozen stages: the
    // weights of every stage equal the source's after training.
    let dir = tempfile::tempdir().unwrap();
    let source = source_run(dir.path());
    let run = RunDir::open(dir.path().join("finetune"), RunMode::New).unwrap();
    let mut config = finetune_config(source.root());
    init(&mut config).keep_stages = None;
    init(&mut config).freeze_stages = None;
    init(&mut config).backbone_lr_scale = 0.0;
    if let repr::train::OptimizerConfig::Sgd { weight_decay, .. } = &mut config.optimizer {
        *weight_decay = 0.0;
    }
    repr::train::train(&config, &run, &options()).unwrap();
    let before = backbone_tensors(&source);
    let after = backbone_tensors(&run);
    for (path, value) in &after {
        let statistic = path.ends_with("running_mean") || path.ends_with("running_var");
        let head = path.starts_with("ResNet.fc.");
        let same = before[path] == *value;
        if head || statistic {
            assert!(!same, "{path} should have changed");
        } else {
            assert!(same, "{path} moved at learning rate 0");
        }
    }
}

#[test]
fn a_masked_patch_vit_is_a_source() {
    // Pre-train a two-block ViT by masked-patch prediction, then fine-tune it keeping and
    // freezing the stem (patch embedding, CLS, positions, mask token) and the first block.
    let dir = tempfile::tempdir().unwrap();
    let source = RunDir::open(dir.path().join("source"), RunMode::New).unwrap();
    let mut pretrain = common::tiny_supervised(64, 32, 16, 1);
    pretrain.method = MethodConfig::MaskedPatch(Default::default());
    pretrain.backbone = repr::backbones::BackboneConfig::ViT(
        repr::backbones::ViTConfig::new(28, 4, 16, 2, 2, 32)
            .with_in_channels(1)
            .with_num_classes(0),
    );
    pretrain.eval.plots = false;
    pretrain.eval.linear_probe = false;
    pretrain.eval.knn_k = 5;
    repr::train::train(&pretrain, &source, &options()).unwrap();

    let run = RunDir::open(dir.path().join("finetune"), RunMode::New).unwrap();
    let mut config = finetune_config(source.root());
    init(&mut config).keep_stages = Some(1);
    init(&mut config).freeze_stages = Some(1);
    init(&mut config).backbone_lr_scale = 1.0;
    let summary = repr::train::train(&config, &run, &options()).unwrap();
    assert_eq!(summary.backbone, "vit-d16-l2-h2-m32-p4-28");
    let before = backbone_tensors(&source);
    let after = backbone_tensors(&run);
    assert!(after.contains_key("ViT.head.weight") && !before.contains_key("ViT.head.weight"));
    let stem = [
        "patch_embed.",
        "cls_token",
        "pos_embed",
        "mask_token",
        "blocks.0.",
    ];
    let mut frozen = 0;
    for (path, value) in &before {
        let same = after[path] == *value;
        if stem.iter().any(|p| path.starts_with(&format!("ViT.{p}"))) {
            assert!(same, "frozen {path} changed");
            frozen += 1;
        } else {
            // Block 1 and the final norm: freshly initialised, then trained.
            assert!(!same, "re-initialised {path} equals the source");
        }
    }
    assert!(frozen >= 14, "{frozen} frozen tensors");
}

#[test]
fn bad_finetune_settings_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| RunDir::open(dir.path().join(name), RunMode::New).unwrap();
    let mut config = TrainConfig::finetune();
    let err = repr::train::train(&config, &run("a"), &options()).unwrap_err();
    assert!(err.to_string().contains("init.from"), "{err}");

    init(&mut config).from = dir.path().join("missing");
    let err = repr::train::train(&config, &run("b"), &options()).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");

    init(&mut config).freeze_stages = Some(3);
    init(&mut config).keep_stages = Some(1);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("init.freeze_stages"), "{err}");

    init(&mut config).keep_stages = Some(5);
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("init.keep_stages") && err.contains("at most 4"),
        "{err}"
    );

    init(&mut config).keep_stages = None;
    config.data.labels_fraction = Some(0.0);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("data.labels_fraction"), "{err}");
}

#[test]
fn torchvision_weights_are_a_source_too() {
    use repr::backbones::{BackboneConfig, ResNetConfig};
    let device = burn::tensor::Device::flex();
    let weights = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/resnet18/weights_f16.safetensors");
    let mut config = TrainConfig::finetune();
    config.backbone = BackboneConfig::ResNet(ResNetConfig::resnet18().with_num_classes(7));
    init(&mut config).from = weights.clone();
    init(&mut config).keep_stages = Some(1);
    let config = repr::train::init::resolve(&config).unwrap();
    let fresh = config.backbone.init(&device);
    let fresh_tensors = tensors(&fresh);
    let loaded = repr::train::init::load_pretrained(&config, fresh, &device).unwrap();
    let reference = BackboneConfig::ResNet(ResNetConfig::resnet18().with_num_classes(10))
        .init(&device)
        .load_torchvision(&weights, &[])
        .unwrap();
    let reference = tensors(&reference);
    let mut copied = 0;
    for (path, value) in tensors(&loaded) {
        let kept = ["ResNet.conv1.", "ResNet.bn1.", "ResNet.layer1."]
            .iter()
            .any(|p| path.starts_with(p));
        if kept {
            assert_eq!(value, reference[&path], "{path} not copied");
            copied += 1;
        } else {
            assert_eq!(value, fresh_tensors[&path], "{path} not left fresh");
        }
    }
    assert_eq!(
        copied,
        5 + 2 * 10,
        "stem conv + BN (4) and layer1's two blocks"
    );
}

fn tensors(backbone: &repr::backbones::Backbone) -> BTreeMap<String, Vec<u8>> {
    backbone
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.to_bytes().unwrap().to_vec()))
        .collect()
}

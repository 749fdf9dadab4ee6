//! Config files with unknown keys, wrong types and impossible values: one error naming the
//! field (and the allowed range), before any training work starts.

use std::path::Path;

mod common;

use repr::train::{DeviceChoice, RunDir, RunMode, TrainConfig, TrainError, TrainOptions};

fn from_toml(text: &str) -> Result<TrainConfig, TrainError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(&path, text).unwrap();
    TrainConfig::from_file(&path)
}

fn error_of(text: &str) -> String {
    from_toml(text).unwrap_err().to_string()
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key() {
    let cases = [
        ("epochz = 3", "epochz"),
        ("[data]\ndirr = \"x\"", "dirr"),
        (
            "[method]\nkind = \"simclr\"\n[method.loss]\ntemprature = 0.1",
            "temprature",
        ),
        (
            "[method]\nkind = \"simclr\"\n[method.head]\nhiden = 8",
            "hiden",
        ),
        ("[method]\nkind = \"simclr\"\nviews = 2", "views"),
        ("[method]\nkind = \"moco\"", "moco"),
        // A file of the old shape (`recipe = ...`) is converted; its unknown keys are named.
        (
            "recipe = \"simclr\"\n[simclr]\ntemprature = 0.1",
            "temprature",
        ),
        ("recipe = \"simclr\"\n[method]\nkind = \"simclr\"", "mixes"),
        // Inside [backbone] too, whose fields come from Burn's Config derive.
        ("[backbone]\nkind = \"resnet\"\nwidht = 8", "widht"),
        ("[backbone]\nkind = \"vgg\"", "vgg"),
        ("batch_size = \"64\"", "batch_size"),
        ("[backbone]\nkind = \"resnet\"\nlayers = [1, 1]", "layers"),
        ("[data]\non_bad_image = \"ignore\"", "on_bad_image"),
    ];
    for (text, key) in cases {
        let err = error_of(text);
        assert!(err.contains(key), "{text:?}: {err}");
        assert!(err.contains("run.toml"), "{text:?}: {err}");
    }
}

#[test]
fn missing_backbone_keys_take_their_defaults() {
    let config = from_toml(
        "[backbone]\nkind = \"resnet\"\nstem = \"cifar\"\nwidth = 8\nin_channels = 1\n\
         num_classes = 10\n[data]\non_bad_image = \"skip\"",
    )
    .unwrap();
    let repr::backbones::BackboneConfig::ResNet(resnet) = &config.backbone else {
        unreachable!("a ResNet preset")
    };
    assert_eq!((resnet.layers, resnet.width), ([2, 2, 2, 2], 8));
    assert!(!resnet.zero_init_residual);
    assert_eq!(config.data.on_bad_image, repr::data::OnBadImage::Skip);
}

#[test]
fn impossible_values_name_the_field_and_the_allowed_range() {
    let sgd = |lr: &str| {
        format!(
            "[optimizer]\nkind = \"sgd\"\nlr = {lr}\nmomentum = 0.9\nnesterov = false\nweight_decay = 0.0"
        )
    };
    let cases = [
        ("batch_size = 0".to_string(), "batch_size", ">= 2"),
        ("epochs = 0".into(), "epochs", ">= 1"),
        (sgd("-0.1"), "optimizer.lr", "> 0"),
        (sgd("0.0"), "optimizer.lr", "> 0"),
        (
            "[method]\nkind = \"simclr\"\n[method.loss]\ntemperature = 0.0".into(),
            "method.loss.temperature",
            "> 0",
        ),
        (
            "recipe = \"simclr\"\n[simclr]\ntemperature = 0.0".into(),
            "method.loss.temperature",
            "> 0",
        ),
        (
            "[method]\nkind = \"supcon\"\n[method.loss]\ntemperature = -1.0".into(),
            "method.loss.temperature",
            "> 0",
        ),
        ("[eval]\nknn_temperature = -1.0".into(), "eval.knn_temperature", "> 0"),
        (
            "[method]\nkind = \"supervised\"\n[method.loss]\nsmoothing = 1.0".into(),
            "method.loss.smoothing",
            "< 1",
        ),
        ("label_smoothing = 1.0".into(), "method.loss.smoothing", "< 1"),
        (
            "batch_size = 128\n[method]\nkind = \"triplet\"\nimages_per_class = 1".into(),
            "method.images_per_class",
            ">= 2",
        ),
        (
            "recipe = \"triplet\"\n[triplet]\nimages_per_class = 1".into(),
            "method.images_per_class",
            ">= 2",
        ),
        (
            "recipe = \"triplet\"\nbatch_size = 100\n[backbone]\nkind = \"resnet\"\nnum_classes = 0".into(),
            "batch_size",
            "8 x 16 = 128",
        ),
        ("[data]\nimage_size = [0, 32]".into(), "data.image_size", "1..=4096"),
        (
            "[data]\nimage_size = [100000, 100000]".into(),
            "data.image_size",
            "1..=4096",
        ),
        ("[data]\nmax_image_pixels = 0".into(), "data.max_image_pixels", "1 ..= 1000000000"),
        ("epochs = 100000000".into(), "epochs", "at most 1000000"),
        ("eval_batch_size = 1000000".into(), "eval_batch_size", "at most 65536"),
        ("checkpoint_keep = 0".into(), "checkpoint_keep", ">= 1"),
        ("[eval]\nknn_k = 1000000".into(), "eval.knn_k", "at most 10000"),
        (
            "recipe = \"simclr\"\n[backbone]\nkind = \"resnet\"\nnum_classes = 0\n[eval]\npooling = \"cls\"".into(),
            "eval.pooling",
            "\"avg\" or \"max\" for a ResNet",
        ),
        (
            "recipe = \"triplet\"\nbatch_size = 128\n[backbone]\nkind = \"resnet\"\nnum_classes = 0\n[eval]\npooling = \"avg\"".into(),
            "eval.pooling",
            "no value for the triplet recipe",
        ),
        (
            "[backbone]\nkind = \"resnet\"\nwidth = 0".into(),
            "backbone",
            "resnet `width` must be at least 1, got 0",
        ),
        (
            "recipe = \"masked-patch\"\n[backbone]\nkind = \"resnet\"\nnum_classes = 0".into(),
            "backbone.kind",
            "\"vit\"",
        ),
        (
            // Missing ViT keys are ViT-S/16's: 16-pixel patches.
            "recipe = \"masked-patch\"\n[backbone]\nkind = \"vit\"\nnum_classes = 0".into(),
            "method.loss.patch_size",
            "the ViT's patch size (16)",
        ),
        (
            "recipe = \"masked-patch\"\n[masked_patch]\nmask_ratio = 1.5".into(),
            "method.loss.mask_ratio",
            "[0, 1]",
        ),
        (
            "[method]\nkind = \"masked-patch\"\n[method.loss]\nkeep = 0.2".into(),
            "method.loss.replace_with_mask + replace_with_random + keep",
            "1 (the three fractions",
        ),
    ];
    for (text, field, allowed) in cases {
        // An empty expectation is contained in every message: it would check nothing.
        assert!(
            !field.is_empty() && !allowed.is_empty(),
            "{text:?}: name the field and the reason"
        );
        let err = error_of(&text);
        assert!(
            err.contains(&format!("`{field}`")) || err.contains(field),
            "{text:?}: {err}"
        );
        assert!(err.contains(allowed), "{text:?}: {err}");
    }
}

fn fails_before_training(config: &TrainConfig, field: &str, dir: &Path) -> String {
    let run = RunDir::open(dir.join(field), RunMode::New).unwrap();
    let options = TrainOptions {
        device: DeviceChoice::Flex.into(),
        resume: false,
        progress: false,
    };
    let err = repr::train::train(config, &run, &options).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, TrainError::Config { field: f, .. } if f == field),
        "{field}: {message}"
    );
    // Nothing of a run was written.
    assert!(!run.last_checkpoint().exists() && !run.metrics().exists() && !run.config().exists());
    message
}

#[test]
fn values_impossible_for_the_dataset_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    // P × K = 8 × 16 = 128 images per batch, from a training set of 40 (4 per class).
    let mut triplet = common::preset("triplet");
    triplet.data.train_limit = Some(40);
    triplet.data.test_limit = Some(40);
    let message = fails_before_training(&triplet, "method.classes_per_batch", dir.path());
    assert!(message.contains("16"), "{message}");

    // A batch larger than the training set.
    let mut supervised = common::preset("supervised");
    supervised.data.train_limit = Some(100);
    supervised.data.test_limit = Some(10);
    supervised.batch_size = 128;
    let message = fails_before_training(&supervised, "batch_size", dir.path());
    assert!(message.contains("100 images"), "{message}");

    // A backbone built for RGB on grayscale images.
    let mut rgb = common::preset("supervised");
    rgb.data.train_limit = Some(100);
    rgb.data.test_limit = Some(10);
    let repr::backbones::BackboneConfig::ResNet(resnet) = &mut rgb.backbone else {
        unreachable!("a ResNet preset")
    };
    resnet.in_channels = 3;
    let message = fails_before_training(&rgb, "backbone.in_channels", dir.path());
    assert!(message.contains("1 channels"), "{message}");

    // kNN with more neighbours than the memory has images: caught before training, not at
    // the first evaluation.
    let mut knn = common::preset("byol");
    knn.data.train_limit = Some(150);
    knn.data.test_limit = Some(10);
    let message = fails_before_training(&knn, "eval.knn_k", dir.path());
    assert!(message.contains("150 images"), "{message}");

    // A ViT whose 8-pixel patches do not tile the 28x28 images.
    let mut vit = common::preset("masked-patch");
    vit.data.train_limit = Some(100);
    vit.data.test_limit = Some(10);
    vit.backbone = repr::backbones::BackboneConfig::ViT(
        repr::backbones::ViTConfig::new(32, 8, 16, 1, 2, 32)
            .with_in_channels(1)
            .with_num_classes(0),
    );
    let repr::train::MethodConfig::MaskedPatch(masked) = &mut vit.method else {
        unreachable!("the masked-patch preset")
    };
    masked.loss.patch_size = 8;
    let message = fails_before_training(&vit, "backbone.patch_size", dir.path());
    assert!(message.contains("28x28"), "{message}");
}

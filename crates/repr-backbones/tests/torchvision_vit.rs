//! torchvision weights in a repr ViT: `fixtures/vit_small/weights_f32.safetensors` (torchvision
//! `VisionTransformer(image_size=32, patch_size=4, num_layers=2, num_heads=3, hidden_dim=192,
//! mlp_dim=768, num_classes=10)`, biases, LayerNorms, CLS token and head randomised) must give
//! PyTorch's logits and CLS features, and files that do not fit must name their keys.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use repr_backbones::{BackboneConfig, ImportError, PosEmbedding, StateDict, ViT, ViTConfig};
use repr_testing::{Array, assert_close, fixture_path, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    input: Array,
    logits: Array,
    cls_features: Array,
    keys: Vec<Key>,
    trainable_parameters: usize,
}

#[derive(Deserialize)]
struct Key {
    name: String,
    shape: Vec<usize>,
}

fn weights() -> std::path::PathBuf {
    fixture_path("vit_small/weights_f32.safetensors")
}

/// The fixture's architecture.
fn config() -> ViTConfig {
    ViTConfig::new(32, 4, 192, 2, 3, 768).with_num_classes(10)
}

fn max_abs_error(actual: &[f32], expected: &[f64]) -> f64 {
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| (a as f64 - e).abs())
        .fold(0.0, f64::max)
}

fn matches_torchvision(device: &Device) {
    let reference: Reference = read_fixture("vit_small/reference.json");
    let model: ViT = config()
        .init(device)
        .load_torchvision(&weights(), &[])
        .unwrap()
        .valid();
    let input = Tensor::<4>::from_data(
        TensorData::new(reference.input.f32(), reference.input.dims::<4>()),
        device,
    );
    let features = model.embed(input.clone());
    let logits = model.forward(input);
    assert_eq!(features.dims(), reference.cls_features.dims::<2>());
    let features = features.into_data().try_to_vec::<f32>().unwrap();
    let logits = logits.into_data().try_to_vec::<f32>().unwrap();
    eprintln!(
        "vit_small parity: cls_features max abs error {:.2e}, logits {:.2e}",
        max_abs_error(&features, &reference.cls_features.data),
        max_abs_error(&logits, &reference.logits.data)
    );
    assert_close(
        &features,
        &reference.cls_features.data,
        1e-4,
        1e-4,
        "CLS features",
    );
    assert_close(&logits, &reference.logits.data, 1e-4, 1e-4, "logits");
}

repr_testing::backend_tests!(matches_torchvision);

/// `weights_f32.pt`, the same tensors written by `torch.save` itself (`make_pt.py`), loads
/// through the `.pt` reader into the same model: the same logits as the safetensors file, and
/// PyTorch's.
#[test]
fn a_pt_file_written_by_pytorch_gives_the_same_logits() {
    let device = Device::flex();
    let reference: Reference = read_fixture("vit_small/reference.json");
    let input = Tensor::<4>::from_data(
        TensorData::new(reference.input.f32(), reference.input.dims::<4>()),
        &device,
    );
    let logits = |path: &std::path::Path| {
        let model: ViT = config()
            .init(&device)
            .load_torchvision(path, &[])
            .unwrap()
            .valid();
        model
            .forward(input.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let from_pt = logits(&fixture_path("vit_small/weights_f32.pt"));
    assert_eq!(
        from_pt,
        logits(&weights()),
        "bit-identical to the safetensors file"
    );
    assert_close(&from_pt, &reference.logits.data, 1e-4, 1e-4, "logits");
}

/// The same through the backbone enum, as the fine-tuning recipe loads it.
#[test]
fn the_backbone_enum_loads_it() {
    let device = Device::flex();
    let reference: Reference = read_fixture("vit_small/reference.json");
    let backbone = BackboneConfig::from(config())
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap();
    let input = Tensor::<4>::from_data(
        TensorData::new(reference.input.f32(), reference.input.dims::<4>()),
        &device,
    );
    let logits = backbone
        .forward(input)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_close(&logits, &reference.logits.data, 1e-4, 1e-4, "logits");
}

#[test]
fn the_file_has_the_documented_keys_and_parameter_count() {
    let reference: Reference = read_fixture("vit_small/reference.json");
    let dict = StateDict::read(&weights()).unwrap();
    let mut keys: Vec<&str> = reference.keys.iter().map(|k| k.name.as_str()).collect();
    keys.sort();
    assert_eq!(dict.keys().collect::<Vec<_>>(), keys);
    for key in &reference.keys {
        assert_eq!(
            dict.get(&key.name).unwrap().shape().to_vec(),
            key.shape,
            "{}",
            key.name
        );
    }
    // repr adds the mask token to torchvision's parameters.
    assert_eq!(config().num_params(), reference.trainable_parameters + 192);
}

#[test]
fn a_new_head_can_be_left_out() {
    let device = Device::flex();
    let headless = || config().with_num_classes(0).init(&device);
    let err = headless().load_torchvision(&weights(), &[]).unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    assert!(missing.is_empty(), "{err}");
    assert_eq!(unexpected, &["head.bias", "head.weight"], "{err}");
    headless().load_torchvision(&weights(), &["head."]).unwrap();

    // Seven classes: the file's head does not fit, and is kept fresh when ignored.
    let err = config()
        .with_num_classes(7)
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    assert!(
        matches!(err, ImportError::Shapes { .. }) && err.to_string().contains("head.weight"),
        "{err}"
    );
    let seven = config().with_num_classes(7).init(&device);
    let mask_before = seven.mask_token().into_data();
    let before = seven
        .forward_head(Tensor::ones([1, 192], &device))
        .into_data();
    let loaded = seven.load_torchvision(&weights(), &["head."]).unwrap();
    let after = loaded
        .forward_head(Tensor::ones([1, 192], &device))
        .into_data();
    assert_eq!(before, after, "the ignored head is untouched");
    assert_eq!(
        loaded.mask_token().into_data(),
        mask_before,
        "mask token kept"
    );
}

#[test]
fn architectures_that_do_not_fit_name_their_keys() {
    let device = Device::flex();
    // A deeper model: the file lacks block 2.
    let mut deeper = config();
    deeper.depth = 3;
    let err = deeper
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    assert!(unexpected.is_empty(), "{err}");
    assert!(missing.iter().all(|k| k.starts_with("blocks.2.")), "{err}");
    assert_eq!(missing.len(), 12, "{err}"); // 2 norms x 2, qkv, proj, fc1, fc2 x 2

    // Sin-cos positions: the learned table is unexpected.
    let err = config()
        .with_pos_embedding(PosEmbedding::Sincos)
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    assert!(
        matches!(&err, ImportError::Keys { missing, unexpected, .. }
            if missing.is_empty() && unexpected == &["pos_embed"]),
        "{err}"
    );

    // Another image size: the positional table's shape differs.
    let mut larger = config();
    larger.image_size = 64;
    let err = larger
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    assert!(
        matches!(err, ImportError::Shapes { .. }) && err.to_string().contains("pos_embed"),
        "{err}"
    );

    // No qkv bias: the file's in_proj_bias is unexpected.
    let err = config()
        .with_qkv_bias(false)
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    assert!(
        matches!(&err, ImportError::Keys { unexpected, .. }
            if unexpected == &["blocks.0.attn.qkv.bias", "blocks.1.attn.qkv.bias"]),
        "{err}"
    );
}

/// The imported model also runs on another input size (48 px: a 12x12 grid, positions
/// resampled) and gives finite, different CLS features.
#[test]
fn imported_weights_run_at_another_size() {
    let device = Device::flex();
    let model = config()
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap();
    let x = Tensor::<4>::random(
        [1, 3, 48, 48],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let features = model.embed(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(features.len(), 192);
    assert!(features.iter().all(|v| v.is_finite()));
}

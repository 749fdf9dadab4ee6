//! torchvision weights in a repr ResNet: `fixtures/resnet18/weights_f16.safetensors` (torchvision
//! `resnet18(num_classes=10)` with randomised BatchNorm parameters and statistics, float16) must
//! give PyTorch's logits and pooled features, and files that do not fit must name their keys.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use repr_backbones::{Backbone, BackboneConfig, ImportError, Norm, ResNetConfig, StateDict, Stem};
use repr_testing::{Array, assert_close, fixture_path, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    input: Array,
    logits: Array,
    features: Array,
}

fn weights() -> std::path::PathBuf {
    fixture_path("resnet18/weights_f16.safetensors")
}

fn resnet18(config: ResNetConfig, device: &Device) -> Backbone {
    BackboneConfig::from(config).init(device)
}

fn matches_torchvision(device: &Device) {
    let reference: Reference = read_fixture("resnet18/reference.json");
    let model = resnet18(ResNetConfig::resnet18().with_num_classes(10), device)
        .load_torchvision(&weights(), &[])
        .unwrap()
        .valid();
    let input = Tensor::<4>::from_data(
        TensorData::new(reference.input.f32(), reference.input.dims::<4>()),
        device,
    );
    let features = model.embed(input.clone());
    let logits = model.forward(input);
    let features = features.into_data().try_to_vec::<f32>().unwrap();
    let logits = logits.into_data().try_to_vec::<f32>().unwrap();
    assert_close(
        &features,
        &reference.features.data,
        1e-4,
        1e-4,
        "pooled features",
    );
    assert_close(&logits, &reference.logits.data, 1e-4, 1e-4, "logits");
}

repr_testing::backend_tests!(matches_torchvision);

#[test]
fn a_new_head_can_be_left_out() {
    let device = Device::flex();
    // A body without a classifier: fc.* is unexpected unless ignored.
    let headless = || resnet18(ResNetConfig::resnet18().with_num_classes(0), &device);
    let err = headless().load_torchvision(&weights(), &[]).unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    assert!(missing.is_empty(), "{err}");
    assert_eq!(unexpected, &["fc.bias", "fc.weight"], "{err}");
    headless().load_torchvision(&weights(), &["fc."]).unwrap();

    // Seven classes: the file's head does not fit, and is kept fresh when ignored.
    let seven = resnet18(ResNetConfig::resnet18().with_num_classes(7), &device);
    let err = seven.load_torchvision(&weights(), &[]).unwrap_err();
    assert!(
        matches!(err, ImportError::Shapes { .. }) && err.to_string().contains("fc.weight"),
        "{err}"
    );
    let seven = resnet18(ResNetConfig::resnet18().with_num_classes(7), &device);
    let before = seven
        .clone()
        .valid()
        .forward_head(Tensor::ones([1, 512], &device));
    let loaded = seven.load_torchvision(&weights(), &["fc."]).unwrap();
    let after = loaded.valid().forward_head(Tensor::ones([1, 512], &device));
    assert_eq!(
        before.into_data(),
        after.into_data(),
        "the ignored head is untouched"
    );
}

#[test]
fn architectures_that_do_not_fit_name_their_keys() {
    let device = Device::flex();
    // The CIFAR stem has a 3x3 conv1 and no max pool: conv1.weight's shape differs.
    let cifar = resnet18(
        ResNetConfig::resnet18()
            .with_stem(Stem::Cifar)
            .with_num_classes(10),
        &device,
    );
    let err = cifar.load_torchvision(&weights(), &[]).unwrap_err();
    assert!(err.to_string().contains("conv1.weight"), "{err}");

    // ResNet-34 has more blocks: the file lacks them.
    let deeper = resnet18(ResNetConfig::resnet34().with_num_classes(10), &device);
    let err = deeper.load_torchvision(&weights(), &[]).unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    assert!(unexpected.is_empty(), "{err}");
    assert!(missing.iter().any(|k| k.starts_with("layer1.2.")), "{err}");
    assert!(missing.iter().all(|k| !k.starts_with("layer1.0.")), "{err}");

    let err = resnet18(ResNetConfig::resnet18(), &device)
        .load_torchvision(std::path::Path::new("weights.onnx"), &[])
        .unwrap_err();
    assert!(
        err.to_string().contains(".onnx") || err.to_string().contains("onnx"),
        "{err}"
    );
    let err = resnet18(ResNetConfig::resnet18(), &device)
        .load_torchvision(&fixture_path("resnet18/missing.safetensors"), &[])
        .unwrap_err();
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
}

/// Writes a `.safetensors` file by the format's definition (little-endian u64 header length,
/// JSON header of dtype/shape/byte offsets, then the raw little-endian bytes).
fn write_safetensors(path: &std::path::Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json::Map::new();
    let mut body = Vec::new();
    for (name, dtype, shape, bytes) in tensors {
        let start = body.len();
        body.extend_from_slice(bytes);
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, body.len()]}),
        );
    }
    let header = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&body);
    std::fs::write(path, file).unwrap();
}

#[test]
fn a_renamed_key_is_listed_as_missing_and_unexpected() {
    let device = Device::flex();
    let dict = StateDict::read(&weights()).unwrap();
    // The fixture's key list (reference.json), without num_batches_tracked.
    assert_eq!(dict.len(), 102);
    let renamed = dict.rename_keys(|k| k.replace("layer2.1.bn1.", "layer2.1.bn_1."));
    let model = ResNetConfig::resnet18().with_num_classes(10).init(&device);
    let err = model.load_state_dict(renamed, &[]).unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    let names = |stem: &str, fields: &[&str]| -> Vec<String> {
        fields.iter().map(|f| format!("{stem}.{f}")).collect()
    };
    let mut expected_missing = names(
        "layer2.1.bn1",
        &["beta", "gamma", "running_mean", "running_var"],
    );
    expected_missing.sort();
    let mut sorted_missing = missing.to_vec();
    sorted_missing.sort();
    assert_eq!(sorted_missing, expected_missing, "{err}");
    assert_eq!(
        unexpected,
        &names(
            "layer2.1.bn_1",
            &["bias", "running_mean", "running_var", "weight"]
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("layer2.1.bn1.gamma") && message.contains("layer2.1.bn_1.weight"),
        "{message}"
    );
}

#[test]
fn bf16_and_f16_files_are_cast_and_integer_tensors_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // 1.5, -2, 0.375 and 3 are exact in bfloat16: the upper 16 bits of their f32 pattern.
    let values = [1.5f32, -2.0, 0.375, 3.0];
    let bf16: Vec<u8> = values
        .iter()
        .flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes())
        .collect();
    // The same values in IEEE half precision: sign, 5-bit exponent (bias 15), 10-bit mantissa.
    let f16: Vec<u8> = [0x3E00u16, 0xC000, 0x3600, 0x4200]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    let counter = 7i64.to_le_bytes().to_vec();
    let path = dir.path().join("mixed.safetensors");
    write_safetensors(
        &path,
        &[
            ("a", "BF16", vec![2, 2], bf16),
            ("b", "F16", vec![4], f16),
            ("bn.num_batches_tracked", "I64", vec![], counter.clone()),
        ],
    );
    let dict = StateDict::read(&path).unwrap();
    assert_eq!(dict.keys().collect::<Vec<_>>(), ["a", "b"]);
    for key in ["a", "b"] {
        let data = dict.get(key).unwrap().clone();
        assert_eq!(data.try_to_vec::<f32>().unwrap(), values, "{key}");
    }
    assert_eq!(dict.get("a").unwrap().shape().to_vec(), [2, 2]);

    let path = dir.path().join("step.safetensors");
    write_safetensors(&path, &[("step", "I64", vec![], counter)]);
    let err = StateDict::read(&path).unwrap_err();
    assert!(
        matches!(&err, ImportError::Dtype { key, .. } if key == "step"),
        "{err}"
    );
}

/// A GroupNorm ResNet has no running statistics: torchvision's 20 BatchNorms' are unexpected
/// (and nothing else: the affine parameters fit GroupNorm's).
#[test]
fn a_group_norm_model_reports_running_statistics_as_unexpected() {
    let device = Device::flex();
    let config = ResNetConfig::resnet18()
        .with_num_classes(10)
        .with_norm(Norm::BIT);
    let err = config
        .init(&device)
        .load_torchvision(&weights(), &[])
        .unwrap_err();
    let (missing, unexpected) = common::key_lists(&err);
    assert!(missing.is_empty(), "{err}");
    assert_eq!(unexpected.len(), 2 * 20, "{err}");
    assert!(
        unexpected
            .iter()
            .all(|k| k.ends_with("running_mean") || k.ends_with("running_var")),
        "{err}"
    );
}

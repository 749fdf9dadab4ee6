//! torchvision weights in a repr ResNet: `fixtures/resnet18/weights_f16.safetensors` (torchvision
//! `resnet18(num_classes=10)` with randomised BatchNorm parameters and statistics, float16) must
//! give PyTorch's logits and pooled features, and files that do not fit must name their keys.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use repr_backbones::{Backbone, BackboneConfig, ImportError, ResNetConfig, Stem};
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
    let ImportError::Keys {
        missing,
        unexpected,
        ..
    } = &err
    else {
        panic!("expected a key error, got {err}");
    };
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
    let ImportError::Keys {
        missing,
        unexpected,
        ..
    } = &err
    else {
        panic!("expected a key error, got {err}");
    };
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

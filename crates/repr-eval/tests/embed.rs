//! Embeddings from a backbone's layers and the raw-pixel baseline.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_backbones::{Backbone, BackboneConfig, Pooling, ResNetConfig, Stage, Stem};
use repr_data::{ImageDataset, Normalize};
use repr_eval::{EmbedConfig, EvalError, Layer, embed_dataset, raw_pixel_embeddings};

fn dataset(n: usize) -> ImageDataset {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let pixels = (0..n * 8 * 8).map(|_| rng.random()).collect();
    let labels = (0..n as u32).map(|i| i % 2).collect();
    ImageDataset::new(pixels, labels, [1, 8, 8], vec!["a".into(), "b".into()]).unwrap()
}

fn backbone(device: &Device) -> Backbone {
    let config = ResNetConfig::resnet18()
        .with_stem(Stem::Cifar)
        .with_width(4)
        .with_in_channels(1)
        .with_num_classes(0);
    BackboneConfig::from(config).init(device)
}

fn images(data: &ImageDataset, normalize: &Normalize, device: &Device) -> Tensor<4> {
    let raw = raw_pixel_embeddings(data, normalize);
    Tensor::from_data(TensorData::new(raw.data, [data.len(), 1, 8, 8]), device)
}

/// Final layer with average pooling equals `Backbone::embed` on the whole normalised batch;
/// stage 2 with max pooling equals the max over `forward_intermediates`; neither depends on
/// the batch size (inference mode: BatchNorm running statistics).
fn matches_the_backbone(device: &Device) {
    let data = dataset(5);
    let normalize = Normalize {
        mean: vec![0.3],
        std: vec![0.2],
    };
    let model = backbone(device);
    let x = images(&data, &normalize, device);

    let e = embed_dataset(
        &model,
        &data,
        &normalize,
        &EmbedConfig::new().with_batch_size(2),
        device,
    )
    .unwrap();
    assert_eq!((e.len, e.dim), (5, 32));
    let expected: Vec<f64> = model.embed(x.clone()).into_data().iter::<f64>().collect();
    repr_testing::assert_close(&e.data, &expected, 1e-5, 1e-4, "final avg");

    let config = EmbedConfig::new()
        .with_layer(Layer::Stage(2))
        .with_pooling(Pooling::Max)
        .with_batch_size(5);
    let e = embed_dataset(&model, &data, &normalize, &config, device).unwrap();
    assert_eq!((e.len, e.dim), (5, 8));
    let map = model
        .forward_intermediates(x, &[Stage::Layer2])
        .pop()
        .unwrap();
    let expected: Vec<f64> = Pooling::Max.pool(map).into_data().iter::<f64>().collect();
    repr_testing::assert_close(&e.data, &expected, 1e-5, 1e-4, "stage 2 max");
    let small = embed_dataset(
        &model,
        &data,
        &normalize,
        &config.clone().with_batch_size(1),
        device,
    )
    .unwrap();
    let e64: Vec<f64> = e.data.iter().map(|&v| v as f64).collect();
    repr_testing::assert_close(&small.data, &e64, 1e-5, 1e-4, "batch size 1 vs 5");

    // A training (autodiff) copy gives the same embeddings.
    let trained = backbone(&device.clone().autodiff());
    let a = embed_dataset(&trained, &data, &normalize, &EmbedConfig::new(), device).unwrap();
    assert!(a.data.iter().all(|v| v.is_finite()));
}

fn rejects_bad_layers(device: &Device) {
    let data = dataset(2);
    let config = EmbedConfig::new().with_layer(Layer::Stage(5));
    let err = embed_dataset(
        &backbone(device),
        &data,
        &Normalize::identity(1),
        &config,
        device,
    )
    .unwrap_err();
    assert!(
        matches!(&err, EvalError::InvalidInput { field, .. } if field == "config.layer"),
        "{err}"
    );
    let err = embed_dataset(
        &backbone(device),
        &data,
        &Normalize::identity(3),
        &EmbedConfig::new(),
        device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("normalize"), "{err}");
}

repr_testing::backend_tests!(matches_the_backbone, rejects_bad_layers);

/// Raw pixels: (v / 255 - mean) / std in CHW order. Image 0 holds 0, 51, 102, 255 → with
/// mean 0.2, std 0.5: (0 - 0.2)/0.5 = -0.4, (0.2 - 0.2)/0.5 = 0, (0.4 - 0.2)/0.5 = 0.4, 1.6.
#[test]
fn raw_pixels_by_hand() {
    let data = ImageDataset::new(
        vec![0, 51, 102, 255, 255, 255, 0, 0],
        vec![0, 1],
        [1, 2, 2],
        vec!["a".into(), "b".into()],
    )
    .unwrap();
    let e = raw_pixel_embeddings(
        &data,
        &Normalize {
            mean: vec![0.2],
            std: vec![0.5],
        },
    );
    assert_eq!((e.len, e.dim), (2, 4));
    repr_testing::assert_close(
        &e.data,
        &[-0.4, 0.0, 0.4, 1.6, 1.6, 1.6, -0.4, -0.4],
        1e-6,
        0.0,
        "raw",
    );
}

#[test]
fn layer_in_config_files() {
    let config = EmbedConfig::new().with_layer(Layer::Stage(3));
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains(r#""layer":{"stage":3}"#), "{json}");
    let toml_text = "layer = \"final\"\npooling = \"max\"\nbatch_size = 64\n";
    let back: EmbedConfig = toml::from_str(toml_text).unwrap();
    assert_eq!(
        (back.layer, back.pooling, back.batch_size),
        (Layer::Final, Pooling::Max, 64)
    );
}

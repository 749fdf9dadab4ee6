//! The backbone contract (DESIGN.md) for the ViT, as `contract.rs` for the ResNet: parameter
//! counts equal to torchvision's, output shapes and finite values, a gradient for every
//! parameter, a save/load round trip; and the positional embedding resampled for another input
//! size, against its definition.

#[macro_use]
mod contract_common;

use contract_common::check_gradients;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Distribution, Tensor};
use repr_backbones::vit::{bicubic_matrix, sincos_2d};
use repr_backbones::{BackboneConfig, Pooling, PosEmbedding, ViT, ViTConfig, num_learnable_params};

/// A configuration with the input its tests feed it.
struct Preset {
    config: ViTConfig,
    /// `[batch, channels, height, width]`.
    input: [usize; 4],
}

/// Small enough for wgpu on lavapipe: 16 px, patch 4 (a 4x4 grid), width 16, 2 blocks.
fn vit_d16_l2() -> Preset {
    Preset {
        config: ViTConfig::new(16, 4, 16, 2, 2, 32).with_num_classes(5),
        input: [2, 3, 16, 16],
    }
}

/// Sin-cos positions, one channel, no head, no qkv bias; an input of another (non-square)
/// size than the configured 16 px.
fn vit_sincos_encoder() -> Preset {
    Preset {
        config: ViTConfig::new(16, 4, 16, 2, 4, 24)
            .with_in_channels(1)
            .with_num_classes(0)
            .with_pos_embedding(PosEmbedding::Sincos)
            .with_qkv_bias(false),
        input: [2, 1, 12, 20],
    }
}

/// Learned positions at another input size than the configured one: resampled, with gradients
/// flowing back to the table.
fn vit_d16_l2_at_12x20() -> Preset {
    Preset {
        input: [2, 3, 12, 20],
        ..vit_d16_l2()
    }
}

/// The Fashion-MNIST shape: ViT-Ti with 4-pixel patches at 28 px, one channel, ten classes.
fn vit_tiny_p4_28() -> Preset {
    Preset {
        config: ViTConfig::vit_tiny_p4(28)
            .with_in_channels(1)
            .with_num_classes(10),
        input: [2, 1, 28, 28],
    }
}

fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data().try_into_vec_as::<f32>().unwrap()
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn shapes_and_finite(preset: &Preset, device: &Device) {
    let config = &preset.config;
    let model = config.init(device);
    let [batch, _, height, width] = preset.input;
    let p = config.patch_size;
    let (rows, cols) = (height / p, width / p);
    let dim = config.dim;
    let x = random(preset.input, device);
    assert_eq!(model.num_features(), dim);
    assert_eq!(model.grid_size([height, width]), [rows, cols]);

    let tokens = model.forward_encoder(x.clone());
    assert_eq!(tokens.dims(), [batch, 1 + rows * cols, dim]);
    assert!(values(tokens.clone()).iter().all(|v| v.is_finite()));

    // The map holds the patch tokens row-major: token 1 + k at (k / cols, k % cols).
    let map = model.forward_features(x.clone());
    assert_eq!(map.dims(), [batch, dim, rows, cols]);
    let k = rows * cols - 2; // the last row, second to last column
    let (r, c) = (k / cols, k % cols);
    let from_map = map.clone().slice([0..batch, 0..dim, r..r + 1, c..c + 1]);
    let from_tokens = tokens.clone().slice([0..batch, 1 + k..2 + k, 0..dim]);
    let diff = max_abs_diff(
        from_map.reshape([batch, dim]),
        from_tokens.reshape([batch, dim]),
    );
    assert!(diff == 0.0, "map and tokens differ by {diff}");

    // Every layer, in the requested order; the last block before the final LayerNorm.
    let depth = config.depth;
    let layers: Vec<usize> = (0..=depth).rev().collect();
    let taps = model.forward_intermediates(x.clone(), &layers);
    assert_eq!(taps.len(), depth + 1);
    for tap in &taps {
        assert_eq!(tap.dims(), [batch, dim, rows, cols]);
        assert!(values(tap.clone()).iter().all(|v| v.is_finite()));
    }
    let normed = model.norm.forward(
        model
            .forward_intermediate_tokens(x.clone(), &[depth])
            .remove(0),
    );
    assert!(max_abs_diff(normed, tokens.clone()) < 1e-5);
    assert!(model.forward_intermediates(x.clone(), &[]).is_empty());

    // embed = CLS; forward = forward_head(embed); poolings of the tokens.
    let embedding = model.embed(x.clone());
    let cls = tokens
        .clone()
        .slice([0..batch, 0..1, 0..dim])
        .reshape([batch, dim]);
    assert_eq!(max_abs_diff(embedding.clone(), cls), 0.0);
    let avg = model.pool_tokens(tokens, Pooling::Avg);
    assert!(max_abs_diff(avg, model.pool(map, Pooling::Avg)) < 1e-5);
    let logits = model.forward(x);
    let outputs = match config.num_classes {
        0 => dim,
        classes => classes,
    };
    assert_eq!(logits.dims(), [batch, outputs]);
    assert!(max_abs_diff(model.forward_head(embedding), logits) < 1e-5);
}

/// Through the token-level API, with the first patch of each image replaced by the mask token
/// (as masked-patch prediction does), so that the mask token gets a gradient too. Random
/// projections of all tokens and of the logits: torchvision's head starts at zero, so a loss of
/// the logits alone would give the body no gradient.
fn gradients(preset: &Preset, device: &Device) {
    let device = device.clone().autodiff();
    let model = preset.config.init(&device);
    let [batch, _, height, width] = preset.input;
    let grid = model.grid_size([height, width]);
    let tokens = model.embed_patches(random(preset.input, &device));
    let [_, patches, dim] = tokens.dims();
    let mask = model
        .mask_token()
        .reshape([1, 1, dim])
        .expand([batch, 1, dim]);
    let tokens = Tensor::cat(vec![mask, tokens.slice([0..batch, 1..patches, 0..dim])], 1);
    let out = model.forward_tokens(tokens, grid);
    let cls = model.pool_tokens(out.clone(), Pooling::Cls);
    let logits = model.forward_head(cls);
    let loss = (out.clone() * random(out.dims(), &device)).sum()
        + (logits.clone() * random(logits.dims(), &device)).sum();
    let grads = loss.backward();

    let checked = check_gradients(&model, &grads);
    // 4 + 12 per block + norm 2 + head 2, less what the config leaves out.
    assert!(
        checked.len() >= 4 + 11 * preset.config.depth,
        "only {checked:?} visited"
    );
    assert!(checked.iter().any(|p| p == "mask_token"));
}

fn record_round_trip(preset: &Preset, device: &Device) {
    let model = preset.config.init(device);
    let bytes = model.clone().into_record().into_bytes().unwrap();
    device.seed(7); // another initialisation
    let fresh = preset.config.init(device);
    let x = random(preset.input, device);
    assert!(max_abs_diff(fresh.mask_token(), model.mask_token()) > 1e-4);
    assert!(max_abs_diff(fresh.embed(x.clone()), model.embed(x.clone())) > 1e-4);
    let loaded = fresh.load_record(ModuleRecord::from_bytes(bytes).unwrap());
    assert_eq!(values(loaded.mask_token()), values(model.mask_token()));
    let diff = max_abs_diff(loaded.forward_encoder(x.clone()), model.forward_encoder(x));
    assert!(diff < 1e-6, "loaded model differs by {diff}");
}

contract_tests!(vit_d16_l2, backend_tests);
contract_tests!(vit_sincos_encoder, backend_tests);
contract_tests!(vit_d16_l2_at_12x20, backend_tests);
// 12 blocks of width 192 on 50 tokens: too slow to compile for wgpu on lavapipe.
contract_tests!(vit_tiny_p4_28, cpu_backend_tests);

/// torchvision's counts (`sum(p.numel() for p in model.parameters())`) plus repr's mask token
/// (`dim`). Parameters are lazy: counting initialises nothing, so ViT-B/16 costs nothing here.
#[test]
fn parameter_counts_match_torchvision() {
    let device = repr_testing::flex();
    let cases = [
        // fixtures/vit_small: VisionTransformer(32, 4, 2, 3, 192, 768, num_classes=10).
        (
            ViTConfig::new(32, 4, 192, 2, 3, 768).with_num_classes(10),
            914_122,
        ),
        // torchvision.models.vit_b_16().
        (ViTConfig::vit_base(), 86_567_656),
    ];
    for (config, torchvision) in cases {
        let model = config.init(&device);
        let expected = torchvision + config.dim;
        assert_eq!(num_learnable_params(&model), expected, "{}", config.name());
        assert_eq!(config.num_params(), expected, "{}", config.name());
        // No buffers: Burn's count is the same.
        assert_eq!(model.num_params(), expected, "{}", config.name());
    }
    // The config's count agrees with the module's for the other variants.
    for config in [
        ViTConfig::vit_tiny(),
        ViTConfig::vit_small(),
        ViTConfig::vit_small_p4(32)
            .with_in_channels(1)
            .with_num_classes(0),
        vit_sincos_encoder().config,
    ] {
        let model = config.init(&device);
        assert_eq!(
            num_learnable_params(&model),
            config.num_params(),
            "{}",
            config.name()
        );
    }
}

/// A learned table resampled to another grid is the bicubic interpolation (PyTorch's
/// definition, `align_corners = False`) of each feature, computed here in f64 from
/// `bicubic_matrix`; the CLS position is kept; the configured grid returns the parameter.
fn resampled_positions_match_the_definition(device: &Device) {
    let config = ViTConfig::new(16, 4, 8, 1, 2, 16); // a 4x4 grid
    let model = config.init(device);
    let table = values(model.pos_embed.as_ref().unwrap().val()); // [1, 17, 8]
    assert_eq!(values(model.pos_embed([4, 4])), table);

    let (from, to, dim) = ([4, 4], [6, 3], 8);
    let got = values(model.pos_embed(to));
    assert_eq!(got.len(), (1 + to[0] * to[1]) * dim);
    assert_eq!(&got[..dim], &table[..dim], "CLS position");
    let rows = bicubic_matrix(from[0], to[0]);
    let cols = bicubic_matrix(from[1], to[1]);
    let mut expected = Vec::new();
    for r in 0..to[0] {
        for c in 0..to[1] {
            for d in 0..dim {
                let mut sum = 0.0;
                for i in 0..from[0] {
                    for j in 0..from[1] {
                        let value = table[(1 + i * from[1] + j) * dim + d] as f64;
                        sum += rows[r * from[0] + i] * cols[c * from[1] + j] * value;
                    }
                }
                expected.push(sum);
            }
        }
    }
    repr_testing::assert_close(&got[dim..], &expected, 1e-6, 1e-5, "resampled positions");

    // The model runs at that size (24 x 12 pixels), and the result depends on the positions.
    let x = random([2, 3, 24, 12], device);
    let map = model.forward_features(x.clone());
    assert_eq!(map.dims(), [2, 8, 6, 3]);
    assert!(values(map).iter().all(|v| v.is_finite()));

    // Sin-cos positions are computed for any grid, CLS zero.
    let sincos = config.with_pos_embedding(PosEmbedding::Sincos).init(device);
    let got = values(sincos.pos_embed(to));
    assert!(got[..dim].iter().all(|&v| v == 0.0));
    assert_eq!(&got[dim..], sincos_2d(dim, to).as_slice());
}

/// The patch embedding is the paper's `x_p E`: token `k` is patch `k` (row-major), flattened in
/// (channel, row, column) order, times the kernel reshaped to `[dim, c·p·p]`, plus the bias.
fn patch_embedding_matches_the_definition(device: &Device) {
    let (p, dim) = (4, 6);
    let model = ViTConfig::new(8, p, dim, 1, 2, 8)
        .with_in_channels(2)
        .init(device);
    let x = random([1, 2, 8, 12], device);
    let tokens = values(model.embed_patches(x.clone())); // [1, 6, dim]
    let image = values(x);
    let weight = values(model.patch_embed.weight.val()); // [dim, 2, p, p]
    let bias = values(model.patch_embed.bias.as_ref().unwrap().val());
    let (rows, cols, width) = (2, 3, 12);
    let mut expected = Vec::new();
    for k in 0..rows * cols {
        let (r, c) = (k / cols, k % cols);
        for d in 0..dim {
            let mut sum = bias[d] as f64;
            for ch in 0..2 {
                for i in 0..p {
                    for j in 0..p {
                        let pixel = image[(ch * 8 + r * p + i) * width + c * p + j] as f64;
                        sum += weight[((d * 2 + ch) * p + i) * p + j] as f64 * pixel;
                    }
                }
            }
            expected.push(sum);
        }
    }
    repr_testing::assert_close(&tokens, &expected, 1e-5, 1e-5, "patch embedding");
}

/// The backbone enum runs a ViT: features, CLS embedding, logits, layers, and a file round trip.
fn backbone_enum(device: &Device) {
    let preset = vit_d16_l2();
    let config = BackboneConfig::from(preset.config.clone());
    let backbone = config.init(device);
    let x = random(preset.input, device);
    assert_eq!(backbone.num_features(), 16);
    assert_eq!(backbone.num_layers(), 2);
    assert_eq!(backbone.forward_features(x.clone()).dims(), [2, 16, 4, 4]);
    let embedding = backbone.embed(x.clone());
    assert_eq!(embedding.dims(), [2, 16]);
    let cls = backbone.embed_at(x.clone(), None, Pooling::Cls).unwrap();
    assert_eq!(max_abs_diff(cls, embedding), 0.0);
    let layers = backbone.forward_layers(x.clone(), &[0, 2]).unwrap();
    assert_eq!(layers[1].dims(), [2, 16, 4, 4]);
    assert!(backbone.forward_layers(x.clone(), &[3]).is_err());
    assert_eq!(backbone.forward(x.clone()).dims(), [2, 5]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backbone.bpk");
    backbone.clone().save_file(&path).unwrap();
    device.seed(11);
    let loaded = config.init(device).load_file(&path);
    assert!(max_abs_diff(loaded.embed(x.clone()), backbone.embed(x)) < 1e-6);
}

repr_testing::backend_tests!(
    resampled_positions_match_the_definition,
    patch_embedding_matches_the_definition,
    backbone_enum
);

/// The model runs on whatever input fits the patches, and the tokens of two images do not mix.
#[test]
fn images_do_not_interact() {
    let device = repr_testing::flex();
    let model: ViT = vit_d16_l2().config.init(&device);
    let x = random([3, 3, 16, 16], &device);
    let alone = model.embed(x.clone().slice(0..1));
    let within = model.embed(x).slice(0..1);
    assert!(max_abs_diff(alone, within) < 1e-5);
}

//! The contract every backbone preset passes (DESIGN.md): parameter counts equal to the
//! reference implementation's, output shapes and finite values, a gradient for every parameter,
//! and a save/load round trip that keeps BatchNorm running statistics.

#[macro_use]
mod contract_common;

use contract_common::check_gradients;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Distribution, Tensor};
use repr_backbones::resnet::{Block, standardized_conv2d};
use repr_backbones::{
    BackboneConfig, BlockKind, Norm, Pooling, ResNet, ResNetConfig, Stage, Stem,
    num_learnable_params,
};

/// A configuration with the input its tests feed it.
struct Preset {
    config: ResNetConfig,
    /// `[batch, channels, height, width]`.
    input: [usize; 4],
}

// The ImageNet presets get odd, unequal sides (40x24) so that every stride-2 layer rounds up
// somewhere, and stay small because ndarray's convolution is direct (slow).
fn resnet18() -> Preset {
    Preset {
        config: ResNetConfig::resnet18(),
        input: [2, 3, 40, 24],
    }
}

fn resnet34() -> Preset {
    Preset {
        config: ResNetConfig::resnet34(),
        input: [2, 3, 40, 24],
    }
}

fn resnet50() -> Preset {
    Preset {
        config: ResNetConfig::resnet50(),
        input: [2, 3, 40, 24],
    }
}

/// The Fashion-MNIST encoder shape: CIFAR stem, one input channel, ten classes.
fn resnet18_w16_cifar() -> Preset {
    Preset {
        config: ResNetConfig::resnet18()
            .with_stem(Stem::Cifar)
            .with_width(16)
            .with_in_channels(1)
            .with_num_classes(10),
        input: [2, 1, 28, 28],
    }
}

/// Small enough for wgpu on lavapipe.
fn resnet18_w8_cifar() -> Preset {
    Preset {
        config: ResNetConfig::resnet18()
            .with_stem(Stem::Cifar)
            .with_width(8)
            .with_in_channels(1)
            .with_num_classes(10),
        input: [2, 1, 16, 16],
    }
}

/// Bottleneck blocks, CIFAR stem, three channels, no head: an encoder.
fn bottleneck_w8_cifar_encoder() -> Preset {
    Preset {
        config: ResNetConfig::new([1, 1, 1, 1], BlockKind::Bottleneck)
            .with_stem(Stem::Cifar)
            .with_width(8)
            .with_num_classes(0),
        input: [2, 3, 18, 14],
    }
}

fn random_input(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data().try_into_vec_as::<f32>().unwrap()
}

fn assert_finite<const D: usize>(x: Tensor<D>, what: &str) {
    let values = values(x);
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{what} has non-finite values"
    );
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Spatial size after a 3x3 (or 7x7, or 1x1) convolution or pool of stride 2 with torchvision's
/// padding: `ceil(n / 2)`.
fn half(n: usize) -> usize {
    n.div_ceil(2)
}

fn shapes_and_finite(preset: &Preset, device: &Device) {
    let config = &preset.config;
    let model = config.init(device);
    let [batch, _, height, width] = preset.input;
    let x = random_input(preset.input, device);
    let features_channels = config.num_features();
    assert_eq!(model.num_features(), features_channels);

    // Expected resolution of each stage.
    let (stem, layer1) = match config.stem {
        Stem::ImageNet => {
            let stem = [half(height), half(width)];
            (stem, [half(stem[0]), half(stem[1])])
        }
        Stem::Cifar => ([height, width], [height, width]),
    };
    let layer2 = layer1.map(half);
    let layer3 = layer2.map(half);
    let layer4 = layer3.map(half);
    let w = config.width * config.block.expansion();
    let expected = [
        [batch, config.width, stem[0], stem[1]],
        [batch, w, layer1[0], layer1[1]],
        [batch, 2 * w, layer2[0], layer2[1]],
        [batch, 4 * w, layer3[0], layer3[1]],
        [batch, 8 * w, layer4[0], layer4[1]],
    ];

    let taps = model.forward_intermediates(x.clone(), &Stage::ALL);
    assert_eq!(taps.len(), 5);
    for ((tap, expected), stage) in taps.iter().zip(expected).zip(Stage::ALL) {
        assert_eq!(tap.dims(), expected, "{stage:?}");
        assert_finite(tap.clone(), &format!("{stage:?}"));
    }
    // Any subset, in the requested order.
    let some = model.forward_intermediates(x.clone(), &[Stage::Layer2, Stage::Stem]);
    assert_eq!(some[0].dims(), expected[2]);
    assert_eq!(some[1].dims(), expected[0]);
    assert!(model.forward_intermediates(x.clone(), &[]).is_empty());

    // forward = forward_head(embed) = forward_head(pool(forward_features)).
    let embedding = model.pool(taps[4].clone(), Pooling::Avg);
    assert_eq!(embedding.dims(), [batch, features_channels]);
    let logits = model.forward(x);
    let outputs = match config.num_classes {
        0 => features_channels,
        classes => classes,
    };
    assert_eq!(logits.dims(), [batch, outputs]);
    assert_finite(logits.clone(), "logits");
    let diff = max_abs_diff(model.forward_head(embedding), logits);
    assert!(diff < 1e-4, "forward differs from the staged API by {diff}");
}

fn gradients(preset: &Preset, device: &Device) {
    let device = device.clone().autodiff();
    let model = preset.config.init(&device);
    let x = random_input(preset.input, &device);
    // Squares, not a plain sum: the sum of a batch-normalised output has a zero gradient.
    let loss = model.forward(x).powf_scalar(2.0).mean();
    let grads = loss.backward();

    let checked = check_gradients(&model, &grads);
    let convs = preset.config.layers.iter().sum::<usize>() * preset.config.block.convs_per_block();
    assert!(
        checked.len() > 3 * convs,
        "only {} parameters visited",
        checked.len()
    );
}

/// The running statistics of the stem's BatchNorm.
fn stem_running_stats(model: &ResNet) -> Vec<f32> {
    let bn = model.bn1.batch_norm().expect("a BatchNorm ResNet");
    let mut stats = values(bn.running_mean.value());
    stats.extend(values(bn.running_var.value()));
    stats
}

fn max_abs_diff_vec(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// A training-mode forward that moves BatchNorm's running statistics away from 0 and 1.
fn train_forward(model: &ResNet, preset: &Preset, autodiff: &Device) {
    let x = random_input(preset.input, autodiff);
    let _ = model.forward(x.mul_scalar(3.0).add_scalar(1.0));
}

fn record_round_trip(preset: &Preset, device: &Device) {
    let autodiff = device.clone().autodiff();
    let model = preset.config.init(&autodiff);
    train_forward(&model, preset, &autodiff);
    // `valid()` first: see `record_of_a_training_model_lags_one_update`.
    let trained = model.valid();
    let bytes = trained.clone().into_record().into_bytes().unwrap();

    device.seed(7); // another initialisation
    let fresh = preset.config.init(device);
    let fresh_stats = stem_running_stats(&fresh);
    let fresh_conv = values(fresh.conv1.weight.val());
    let loaded = fresh.load_record(ModuleRecord::from_bytes(bytes).unwrap());

    let trained_stats = stem_running_stats(&trained);
    let moved = max_abs_diff_vec(&trained_stats, &fresh_stats);
    assert!(moved > 1e-2, "running statistics did not move ({moved})");
    let trained_conv = values(trained.conv1.weight.val());
    assert!(
        max_abs_diff_vec(&trained_conv, &fresh_conv) > 1e-3,
        "same initialisation"
    );
    let loaded_stats = stem_running_stats(&loaded);
    assert_eq!(
        loaded_stats, trained_stats,
        "bn1 running statistics after loading"
    );

    let x = random_input(preset.input, device);
    let diff = max_abs_diff(loaded.forward(x.clone()), trained.forward(x));
    assert!(diff < 1e-5, "loaded model differs by {diff}");
}

/// Burn 0.22.1: a BatchNorm running-statistics update stays pending (per thread) until the next
/// training forward, `valid()` or `train()` folds it in, and `into_record` reads the folded value
/// only. A record taken straight after training therefore lags one update; `valid()` (which also
/// folds the pending update into the original module, whose state it shares) fixes it.
fn record_of_a_training_model_lags_one_update(device: &Device) {
    let preset = resnet18_w8_cifar();
    let autodiff = device.clone().autodiff();
    let model = preset.config.init(&autodiff);
    let stats_in_record = |model: &ResNet| {
        let record = model.clone().into_record();
        stem_running_stats(&preset.config.init(device).load_record(record))
    };
    let initial = stats_in_record(&model);
    train_forward(&model, &preset, &autodiff);

    assert_eq!(stats_in_record(&model), initial, "the update is pending");
    let synced = stem_running_stats(&model.valid());
    assert!(max_abs_diff_vec(&synced, &initial) > 1e-2);
    assert_eq!(stats_in_record(&model), synced, "valid() folded it in");
}

// The ImageNet presets are too large for wgpu on lavapipe (kernel compilation takes minutes).
contract_tests!(resnet18, cpu_backend_tests);
contract_tests!(resnet34, cpu_backend_tests);
contract_tests!(resnet50, cpu_backend_tests);
contract_tests!(resnet18_w16_cifar, cpu_backend_tests);
contract_tests!(resnet18_w8_cifar, backend_tests);
contract_tests!(bottleneck_w8_cifar_encoder, backend_tests);

/// torchvision's counts (`sum(p.numel() for p in model.parameters())`) and the PyTorch peers'.
#[test]
fn parameter_counts_match_pytorch() {
    let device = repr_testing::flex();
    let cases = [
        (ResNetConfig::resnet18(), 11_689_512),
        (ResNetConfig::resnet34(), 21_797_672),
        (ResNetConfig::resnet50(), 25_557_032),
        (
            ResNetConfig::resnet18()
                .with_stem(Stem::Cifar)
                .with_num_classes(10),
            11_173_962,
        ),
        (
            ResNetConfig::resnet18()
                .with_stem(Stem::Cifar)
                .with_width(32)
                .with_in_channels(1)
                .with_num_classes(0),
            2_794_464,
        ),
    ];
    for (config, expected) in cases {
        // Parameters are lazy: counting initialises nothing.
        let model = config.init(&device);
        assert_eq!(num_learnable_params(&model), expected, "{}", config.name());
        // Burn's own count adds BatchNorm's running mean and variance.
        let bn_channels = batch_norm_channels(&model);
        assert_eq!(
            model.num_params(),
            expected + 2 * bn_channels,
            "{}",
            config.name()
        );
    }
}

fn batch_norm_channels(model: &ResNet) -> usize {
    struct Counter(usize, Vec<String>);
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.1.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.1.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.1.last().is_some_and(|name| name == "gamma") {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter(0, Vec::new());
    model.visit(&mut counter);
    counter.0
}

/// The last BatchNorm of every block starts at zero with `zero_init_residual`.
#[test]
fn zero_init_residual_zeroes_the_last_gamma() {
    let device = repr_testing::flex();
    for kind in [BlockKind::Basic, BlockKind::Bottleneck] {
        let model = ResNetConfig::new([1, 1, 1, 1], kind)
            .with_width(4)
            .with_zero_init_residual(true)
            .init(&device);
        for block in [&model.layer1, &model.layer2, &model.layer3, &model.layer4]
            .into_iter()
            .flatten()
        {
            let (last, first) = match block {
                Block::Basic(block) => (&block.bn2, &block.bn1),
                Block::Bottleneck(block) => (&block.bn3, &block.bn1),
            };
            assert!(values(last.gamma()).iter().all(|&g| g == 0.0));
            assert!(values(first.gamma()).iter().all(|&g| g == 1.0));
        }
    }
}

/// BatchNorm uses batch statistics in training mode on an autodiff device, and running
/// statistics after `valid()`.
fn batch_norm_train_and_eval(device: &Device) {
    let preset = resnet18_w8_cifar();
    let autodiff = device.clone().autodiff();
    let model = preset.config.init(&autodiff);
    let x = random_input(preset.input, &autodiff)
        .mul_scalar(2.0)
        .add_scalar(3.0);

    // Training: every channel of bn1's output has batch mean beta = 0 and variance gamma^2 = 1.
    let normalised = model.bn1.forward(model.conv1.forward(x.clone()));
    let [_, channels, _, _] = normalised.dims();
    let per_channel = normalised.swap_dims(0, 1).reshape([channels as i32, -1]);
    let (var, mean) = per_channel.var_mean_bias(1);
    repr_testing::assert_close(&values(mean), &vec![0.0; channels], 1e-4, 0.0, "batch mean");
    repr_testing::assert_close(
        &values(var),
        &vec![1.0; channels],
        1e-3,
        1e-3,
        "batch variance",
    );

    // Evaluation with fresh running statistics (mean 0, variance 1): bn1 is the identity
    // up to eps.
    let eval = preset.config.init(&autodiff).valid();
    let x_plain = x.clone().without_autodiff();
    let conv = eval.conv1.forward(x_plain.clone());
    let normalised = eval.bn1.forward(conv.clone());
    let expected = conv.div_scalar((1.0f64 + 1e-5).sqrt());
    assert!(max_abs_diff(normalised, expected) < 1e-4);

    // The whole network: training and evaluation outputs differ.
    let train_out = model.forward(x);
    let eval_out = model.valid().forward(x_plain);
    assert!(max_abs_diff(train_out.without_autodiff(), eval_out) > 1e-3);
}

/// The backbone enum forwards the staged API and survives a record round trip.
fn backbone_enum(device: &Device) {
    let preset = resnet18_w8_cifar();
    let config = BackboneConfig::from(preset.config.clone());
    let backbone = config.init(device);
    let x = random_input(preset.input, device);
    assert_eq!(backbone.num_features(), 64);
    assert_eq!(backbone.forward_features(x.clone()).dims(), [2, 64, 2, 2]);
    assert_eq!(backbone.embed(x.clone()).dims(), [2, 64]);
    assert_eq!(backbone.forward(x.clone()).dims(), [2, 10]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backbone.bpk");
    backbone.clone().save_file(&path).unwrap();
    device.seed(11);
    let loaded = config.init(device).load_file(&path);
    assert!(max_abs_diff(loaded.forward(x.clone()), backbone.forward(x)) < 1e-6);
}

repr_testing::backend_tests!(
    batch_norm_train_and_eval,
    backbone_enum,
    record_of_a_training_model_lags_one_update,
    group_norm_is_batch_independent,
    group_norm_stem_matches_the_definition
);

// BiT normalisation (Kolesnikov et al. 2020): GroupNorm + Weight Standardization.

/// Width 8 with 4 groups (32 would not divide 8), the small CIFAR encoder of the BN presets.
fn gn_ws_w8_cifar() -> Preset {
    Preset {
        config: resnet18_w8_cifar()
            .config
            .with_norm(Norm::GroupWs { groups: 4 }),
        input: [2, 1, 16, 16],
    }
}

/// BiT's 32 groups on bottleneck blocks, no head.
fn gn_ws_bottleneck_w32_encoder() -> Preset {
    Preset {
        config: ResNetConfig::new([1, 1, 1, 1], BlockKind::Bottleneck)
            .with_stem(Stem::Cifar)
            .with_width(32)
            .with_num_classes(0)
            .with_norm(Norm::BIT),
        input: [2, 3, 12, 10],
    }
}

mod group_norm {
    use burn::tensor::Device;

    fn shapes_and_finite(device: &Device) {
        super::shapes_and_finite(&super::gn_ws_w8_cifar(), device);
        super::shapes_and_finite(&super::gn_ws_bottleneck_w32_encoder(), device);
    }
    fn gradients(device: &Device) {
        super::gradients(&super::gn_ws_w8_cifar(), device);
        super::gradients(&super::gn_ws_bottleneck_w32_encoder(), device);
    }

    repr_testing::backend_tests!(shapes_and_finite, gradients);
}

/// GroupNorm has the same learnable parameters as BatchNorm (gamma, beta per channel) and no
/// running statistics: Burn's count equals the learnable count.
#[test]
fn group_norm_has_no_running_statistics() {
    let device = repr_testing::flex();
    for preset in [gn_ws_w8_cifar(), gn_ws_bottleneck_w32_encoder()] {
        let gn = preset.config.init(&device);
        let mut bn_config = preset.config.clone();
        bn_config.norm = Norm::Batch;
        let bn = bn_config.init(&device);
        assert_eq!(num_learnable_params(&gn), num_learnable_params(&bn));
        assert_eq!(gn.num_params(), num_learnable_params(&gn));
        assert_eq!(
            bn.num_params(),
            num_learnable_params(&bn) + 2 * batch_norm_channels(&bn)
        );
        assert!(gn.bn1.batch_norm().is_none() && bn.bn1.batch_norm().is_some());
    }
    assert_eq!(gn_ws_w8_cifar().config.name(), "resnet18-w8-cifar-gn4ws");
    assert_eq!(
        ResNetConfig::resnet50().with_norm(Norm::BIT).name(),
        "resnet50-gnws"
    );
    // Groups must divide the width (and so every layer's channels).
    for groups in [0, 3, 32] {
        let err = gn_ws_w8_cifar()
            .config
            .with_norm(Norm::GroupWs { groups })
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("groups"), "{err}");
    }
}

#[test]
fn zero_init_residual_zeroes_the_last_group_norm_gamma() {
    let device = repr_testing::flex();
    let model = ResNetConfig::new([1, 1, 1, 1], BlockKind::Bottleneck)
        .with_width(4)
        .with_norm(Norm::GroupWs { groups: 2 })
        .with_zero_init_residual(true)
        .init(&device);
    for block in [&model.layer1, &model.layer2, &model.layer3, &model.layer4]
        .into_iter()
        .flatten()
    {
        let Block::Bottleneck(block) = block else {
            unreachable!()
        };
        assert!(values(block.bn3.gamma()).iter().all(|&g| g == 0.0));
        assert!(values(block.bn1.gamma()).iter().all(|&g| g == 1.0));
    }
}

/// The point of GroupNorm for BiT: in training mode a sample's output does not depend on the
/// rest of its batch (each sample is normalised over its own channel groups), so a batch of
/// one works and gives the same output as within a batch. BatchNorm's does depend on it.
fn group_norm_is_batch_independent(device: &Device) {
    let autodiff = device.clone().autodiff();
    device.seed(3);
    let preset = gn_ws_w8_cifar();
    let gn = preset.config.init(&autodiff);
    let x = random_input([3, 1, 16, 16], &autodiff);
    let alone = gn.forward(x.clone().slice(0..1));
    let within = gn.forward(x.clone()).slice(0..1);
    let diff = max_abs_diff(alone.clone(), within);
    assert!(
        diff < 1e-5,
        "GroupNorm: sample 0 alone vs in the batch differs by {diff}"
    );
    assert_finite(alone, "batch of one");
    // Another batch around the same sample: still the same output.
    let other = Tensor::cat(
        vec![
            x.clone().slice(0..1),
            random_input([2, 1, 16, 16], &autodiff).mul_scalar(5.0),
        ],
        0,
    );
    let diff = max_abs_diff(
        gn.forward(other).slice(0..1),
        gn.forward(x.clone()).slice(0..1),
    );
    assert!(
        diff < 1e-5,
        "GroupNorm: depends on the other samples ({diff})"
    );

    // BatchNorm in training mode: sample 0's output changes with its batch.
    let mut bn_config = preset.config.clone();
    bn_config.norm = Norm::Batch;
    let bn = bn_config.init(&autodiff);
    let pair = bn.forward(x.clone().slice(0..2)).slice(0..1);
    let triple = bn.forward(x).slice(0..1);
    assert!(
        max_abs_diff(pair, triple) > 1e-3,
        "BatchNorm should depend on the batch"
    );
}

/// GroupNorm + WS layers are the definition: the stem output equals a GroupNorm (biased
/// variance over each sample's channel group, eps 1e-5) of the weight-standardised convolution,
/// computed in f64 from the convolution's output.
fn group_norm_stem_matches_the_definition(device: &Device) {
    device.seed(5);
    let preset = gn_ws_w8_cifar();
    let model = preset.config.init(device);
    let x = random_input([2, 1, 16, 16], device);
    let conv = values(standardized_conv2d(&model.conv1, x.clone()));
    let got = values(model.forward_intermediates(x, &[Stage::Stem]).remove(0));
    let (channels, groups, plane) = (8, 4, 16 * 16);
    let per_group = channels / groups * plane;
    let mut expected = vec![0.0f64; conv.len()];
    for (g, chunk) in conv.chunks(per_group).enumerate() {
        let mean = chunk.iter().map(|&v| v as f64).sum::<f64>() / per_group as f64;
        let var = chunk
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / per_group as f64;
        for (i, &v) in chunk.iter().enumerate() {
            // gamma 1, beta 0, then the stem's ReLU.
            expected[g * per_group + i] = ((v as f64 - mean) / (var + 1e-5).sqrt()).max(0.0);
        }
    }
    repr_testing::assert_close(&got, &expected, 1e-4, 1e-4, "GroupNorm stem");
}

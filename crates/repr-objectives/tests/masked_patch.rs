//! Masked-patch prediction (Dosovitskiy et al. 2020, appendix B.1.2): targets equal the
//! PyTorch fixture `fixtures/masked_patch.json` exactly (host and device paths), the corruption
//! follows the 50% / 80-10-10 recipe, and the loss covers the corrupted patches only.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use repr_objectives::{
    CorruptionPlan, MaskedPatchConfig, MaskedPatchTarget, PatchAction, PatchTargets, TargetTensors,
};
use repr_testing::{Array, assert_close, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    image_hwc: Array,
    target_mean_color_class: Array,
    target_2x2_color_classes: Array,
    target_4x4_color_classes: Array,
    target_pixels_l2: Array,
}

/// The fixture image as u8 CHW `[1, 3, 32, 32]`.
fn image(fixture: &Fixture) -> Vec<u8> {
    let hwc: Vec<u8> = fixture.image_hwc.data.iter().map(|&v| v as u8).collect();
    (0..3)
        .flat_map(|c| (0..32 * 32).map(move |i| (c, i)))
        .map(|(c, i)| hwc[i * 3 + c])
        .collect()
}

/// u8 CHW images as a `[0, 1]` tensor (`v / 255`, as the data pipeline gives them).
fn unit_images(pixels: &[u8], shape: [usize; 4], device: &Device) -> Tensor<4> {
    let values: Vec<f32> = pixels.iter().map(|&v| v as f32 / 255.0).collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn classes(targets: PatchTargets) -> (Vec<i64>, usize) {
    match targets {
        PatchTargets::Classes { classes, per_patch } => (classes, per_patch),
        PatchTargets::Pixels(_) => panic!("expected classes"),
    }
}

fn class_tensor(targets: TargetTensors) -> ([usize; 3], Vec<i64>) {
    match targets {
        TargetTensors::Classes(t) => (
            t.dims(),
            t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(),
        ),
        TargetTensors::Pixels(_) => panic!("expected classes"),
    }
}

fn config(target: MaskedPatchTarget) -> MaskedPatchConfig {
    MaskedPatchConfig {
        target,
        ..MaskedPatchConfig::default()
    }
}

const TARGETS: [MaskedPatchTarget; 3] = [
    MaskedPatchTarget::MeanColor,
    MaskedPatchTarget::DownsizedColor { cells: 2 },
    MaskedPatchTarget::DownsizedColor { cells: 4 },
];

#[test]
fn targets_match_the_fixture_exactly() {
    let fixture: Fixture = read_fixture("masked_patch.json");
    let image = image(&fixture);
    let shape = [1, 3, 32, 32];
    let (mean, per) = classes(config(MaskedPatchTarget::MeanColor).targets(&image, shape));
    assert_eq!(per, 1);
    assert_eq!(mean, fixture.target_mean_color_class.i64());
    // The boundary patches of the fixture's README: 0, 511, 15, 146, 82.
    assert_eq!(&mean[..5], &[0, 511, 15, 146, 82]);
    let (two, per) =
        classes(config(MaskedPatchTarget::DownsizedColor { cells: 2 }).targets(&image, shape));
    assert_eq!(per, 4);
    assert_eq!(two, fixture.target_2x2_color_classes.i64());
    let (four, per) =
        classes(config(MaskedPatchTarget::DownsizedColor { cells: 4 }).targets(&image, shape));
    assert_eq!(per, 16);
    assert_eq!(four, fixture.target_4x4_color_classes.i64());
    let PatchTargets::Pixels(pixels) = config(MaskedPatchTarget::Pixels).targets(&image, shape)
    else {
        panic!("expected pixels")
    };
    assert_close(
        &pixels,
        &fixture.target_pixels_l2.data,
        1e-7,
        0.0,
        "pixel targets",
    );
}

/// The device path from `[0, 1]` images gives the fixture's classes exactly, and its pixels.
fn device_targets_match_the_fixture(device: &Device) {
    let fixture: Fixture = read_fixture("masked_patch.json");
    let images = unit_images(&image(&fixture), [1, 3, 32, 32], device);
    let expected = [
        &fixture.target_mean_color_class,
        &fixture.target_2x2_color_classes,
        &fixture.target_4x4_color_classes,
    ];
    for (target, expected) in TARGETS.into_iter().zip(expected) {
        let (dims, got) = class_tensor(config(target).target_tensors(images.clone()));
        let per_patch = expected.data.len() / 64;
        assert_eq!(dims, [1, 64, per_patch], "{target:?}");
        assert_eq!(got, expected.i64(), "{target:?}");
    }
    let TargetTensors::Pixels(pixels) = config(MaskedPatchTarget::Pixels).target_tensors(images)
    else {
        panic!("expected pixels")
    };
    assert_eq!(pixels.dims(), [1, 64, 48]);
    let pixels = pixels.into_data().try_to_vec::<f32>().unwrap();
    assert_close(
        &pixels,
        &fixture.target_pixels_l2.data,
        1e-7,
        0.0,
        "pixel targets",
    );
}

/// On random batches (RGB and grey, patch 4 and 16) the device path equals the exact integer
/// host path, including sums that land on a bin boundary.
fn device_targets_equal_the_host_targets(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let cases = [
        (3, 16, 4, MaskedPatchTarget::MeanColor),
        (3, 16, 4, MaskedPatchTarget::DownsizedColor { cells: 2 }),
        (1, 28, 4, MaskedPatchTarget::MeanColor),
        (1, 28, 4, MaskedPatchTarget::DownsizedColor { cells: 2 }),
        (3, 32, 16, MaskedPatchTarget::DownsizedColor { cells: 4 }),
        (3, 32, 16, MaskedPatchTarget::MeanColor),
        (1, 28, 4, MaskedPatchTarget::Pixels),
    ];
    for (channels, side, patch, target) in cases {
        let shape = [3, channels, side, side];
        // Values on the bin boundaries 31/32, 63/64, ... half of the time.
        let pixels: Vec<u8> = (0..shape.iter().product::<usize>())
            .map(|_| {
                if rng.random_bool(0.5) {
                    (32 * rng.random_range(0..8u32) + rng.random_range(0..2u32)).saturating_sub(1)
                        as u8
                } else {
                    rng.random()
                }
            })
            .collect();
        let config = MaskedPatchConfig {
            patch_size: patch,
            target,
            ..MaskedPatchConfig::default()
        };
        config.validate().unwrap();
        let patches = (side / patch).pow(2);
        let host = config
            .targets(&pixels, shape)
            .to_tensors(3, patches, device);
        let got = config.target_tensors(unit_images(&pixels, shape, device));
        let what = format!("{channels} channels, {side} px, patch {patch}, {target:?}");
        match (host, got) {
            (TargetTensors::Classes(host), got) => {
                let (dims, got) = class_tensor(got);
                assert_eq!(dims, host.dims(), "{what}");
                let host = host
                    .into_data()
                    .convert::<i64>()
                    .try_to_vec::<i64>()
                    .unwrap();
                assert_eq!(got, host, "{what}");
                let max = 8i64.pow(channels as u32);
                assert!(got.iter().all(|&c| (0..max).contains(&c)), "{what}");
            }
            (TargetTensors::Pixels(host), TargetTensors::Pixels(got)) => {
                assert_eq!(got.dims(), [3, patches, patch * patch * channels]);
                let host = host.into_data().try_to_vec::<f32>().unwrap();
                let got = got.into_data().try_to_vec::<f32>().unwrap();
                assert_eq!(got, host, "{what}");
            }
            _ => panic!("{what}: target kinds differ"),
        }
    }
}

#[test]
fn grayscale_images_have_eight_classes() {
    // One channel of 28x28, patch 4: 49 patches; a patch of value 100 everywhere is bin 3.
    let image = vec![100u8; 28 * 28];
    let config = config(MaskedPatchTarget::MeanColor);
    assert_eq!(config.head_outputs(1), 8);
    assert_eq!(config.head_outputs(3), 512);
    let two = MaskedPatchConfig {
        target: MaskedPatchTarget::DownsizedColor { cells: 2 },
        ..config.clone()
    };
    assert_eq!(two.head_outputs(1), 4 * 8);
    let pixels = MaskedPatchConfig {
        target: MaskedPatchTarget::Pixels,
        ..config.clone()
    };
    assert_eq!(pixels.head_outputs(1), 16);
    assert_eq!(pixels.head_outputs(3), 48);
    let (classes, _) = classes(config.targets(&image, [1, 1, 28, 28]));
    assert_eq!(classes, vec![3; 49]);
}

/// Counts of the four actions over many seeded plans.
#[test]
fn corruption_follows_the_recipe() {
    let config = MaskedPatchConfig::default();
    let (batch, patches) = (8, 64);
    let (mut masked, mut moved, mut kept) = (0usize, 0usize, 0usize);
    for seed in 0..200 {
        let plan = config.plan(batch, patches, seed);
        assert_eq!(plan.corrupted().len(), batch * 32, "half of the batch");
        for (b, image) in plan.actions().chunks(patches).enumerate() {
            let corrupted = image.iter().filter(|a| a.is_corrupted()).count();
            assert_eq!(corrupted, 32, "exactly half of image {b}");
            for (k, action) in image.iter().enumerate() {
                match *action {
                    PatchAction::Untouched => {}
                    PatchAction::Mask => masked += 1,
                    PatchAction::Keep => kept += 1,
                    PatchAction::Random { source } => {
                        assert!(source < patches && source != k, "seed {seed} patch {k}");
                        moved += 1;
                    }
                }
            }
        }
        let rows: Vec<usize> = (0..batch * patches)
            .filter(|&r| plan.actions()[r].is_corrupted())
            .collect();
        assert_eq!(plan.corrupted(), &rows[..]);
        // Seeded: the same seed gives the same plan, another seed another one.
        assert_eq!(plan, config.plan(batch, patches, seed));
        assert_ne!(plan, config.plan(batch, patches, seed + 1000));
    }
    let total = (masked + moved + kept) as f64;
    assert_eq!(total, (200 * batch * 32) as f64);
    assert!(
        (masked as f64 / total - 0.8).abs() < 0.01,
        "{masked}/{total}"
    );
    assert!((moved as f64 / total - 0.1).abs() < 0.01, "{moved}/{total}");
    assert!((kept as f64 / total - 0.1).abs() < 0.01, "{kept}/{total}");
}

#[test]
fn the_caller_gives_the_generator_and_the_count_is_rounded() {
    let config = MaskedPatchConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    assert_eq!(config.plan_with_rng(4, 16, &mut rng), config.plan(4, 16, 9));
    // The generator moves on: the next plan differs.
    assert_ne!(config.plan_with_rng(4, 16, &mut rng), config.plan(4, 16, 9));
    // 49 patches (28 px, patch 4): round(24.5) = 25 per image; 0.3 of 10 = 3.
    assert_eq!(config.plan(2, 49, 1).corrupted().len(), 50);
    let config = MaskedPatchConfig {
        mask_ratio: 0.3,
        ..config
    };
    assert_eq!(config.plan(5, 10, 1).corrupted().len(), 15);
    // Random replacement everywhere: every corrupted patch takes another patch's embedding.
    let random = MaskedPatchConfig {
        mask_ratio: 1.0,
        replace_with_mask: 0.0,
        replace_with_random: 1.0,
        keep: 0.0,
        ..MaskedPatchConfig::default()
    };
    let plan = random.plan(3, 2, 4);
    for (row, action) in plan.actions().iter().enumerate() {
        assert_eq!(
            *action,
            PatchAction::Random {
                source: 1 - row % 2
            }
        );
    }
}

/// Masked rows get the mask token, random rows their source's embedding, every other row is
/// bit-identical to the input; the corrupted mask marks exactly the corrupted rows.
fn apply_replaces_exactly_the_planned_rows(device: &Device) {
    let config = MaskedPatchConfig::default();
    for seed in 0..4 {
        let plan = config.plan(3, 10, seed);
        let tokens = Tensor::<3>::random([3, 10, 4], Distribution::Normal(0.0, 1.0), device);
        let mask = Tensor::<1>::from_floats([9.0, 8.0, 7.0, 6.0], device);
        let out = plan.apply(tokens.clone(), mask);
        assert_eq!(out.dims(), [3, 10, 4]);
        let out = out.into_data().try_to_vec::<f32>().unwrap();
        let input = tokens.into_data().try_to_vec::<f32>().unwrap();
        for (row, action) in plan.actions().iter().enumerate() {
            let got = &out[row * 4..][..4];
            let expected = match *action {
                PatchAction::Mask => &[9.0, 8.0, 7.0, 6.0][..],
                PatchAction::Random { source } => &input[(row - row % 10 + source) * 4..][..4],
                PatchAction::Untouched | PatchAction::Keep => &input[row * 4..][..4],
            };
            let same = got
                .iter()
                .zip(expected)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(
                same,
                "seed {seed} row {row} ({action:?}): {got:?} vs {expected:?}"
            );
        }
        let flags = plan
            .corrupted_mask(device)
            .int() // wgpu stores booleans as u32
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        let expected: Vec<i64> = plan
            .actions()
            .iter()
            .map(|a| a.is_corrupted() as i64)
            .collect();
        assert_eq!(flags, expected);
        let rows = plan
            .corrupted_rows(device)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        let expected: Vec<i64> = plan.corrupted().iter().map(|&r| r as i64).collect();
        assert_eq!(rows, expected);
    }
}

/// Naive f64 cross-entropy over the corrupted rows; also the number of correct argmaxes.
fn reference_cross_entropy(
    plan: &CorruptionPlan,
    values: &[f32],
    classes: &[i64],
    cells: usize,
    num_classes: usize,
) -> (f64, i64) {
    let outputs = cells * num_classes;
    let (mut sum, mut hits) = (0.0, 0);
    for &row in plan.corrupted() {
        for cell in 0..cells {
            let z = &values[row * outputs + cell * num_classes..][..num_classes];
            let max = z.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let lse = max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            let t = classes[row * cells + cell] as usize;
            sum += lse - z[t] as f64;
            let best = (0..num_classes)
                .max_by(|&a, &b| z[a].total_cmp(&z[b]).then(b.cmp(&a)))
                .unwrap();
            hits += (best == t) as i64;
        }
    }
    (sum / (plan.corrupted().len() * cells) as f64, hits)
}

/// Cross-entropy over the corrupted rows only, against an f64 reference with the accuracy;
/// gradients are zero on the other rows, at the head's output and at its input.
fn loss_covers_the_corrupted_patches_only(device: &Device) {
    let device = device.clone().autodiff();
    let config = config(MaskedPatchTarget::DownsizedColor { cells: 2 });
    let (batch, patches, dim) = (2, 4, 5);
    let plan = config.plan(batch, patches, 11);
    let outputs = config.head_outputs(1); // 4 cells x 8 classes
    let values: Vec<f32> = (0..batch * patches * outputs)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let classes: Vec<i64> = (0..batch * patches * 4)
        .map(|i| (i * 5 % 8) as i64)
        .collect();
    let targets = TargetTensors::Classes(Tensor::<3, Int>::from_data(
        TensorData::new(classes.clone(), [batch, patches, 4]),
        &device,
    ));
    let logits = Tensor::<3>::from_data(
        TensorData::new(values.clone(), [batch, patches, outputs]),
        &device,
    )
    .require_grad();
    let output = plan.loss(logits.clone(), &targets);
    let (expected, hits) = reference_cross_entropy(&plan, &values, &classes, 4, 8);
    let got = output.loss.clone().into_data().try_to_vec::<f32>().unwrap();
    assert_close(&got, &[expected], 1e-6, 1e-5, "masked-patch cross-entropy");
    assert_eq!(output.predicted, plan.corrupted().len() * 4);
    let correct: i64 = output.correct.clone().unwrap().into_scalar();
    assert_eq!(correct, hits);
    let accuracy: f32 = output.accuracy().unwrap().into_scalar();
    assert!((accuracy as f64 - hits as f64 / output.predicted as f64).abs() < 1e-6);
    let grads = output.loss.backward();
    let grad = logits
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for row in 0..batch * patches {
        let zero = grad[row * outputs..][..outputs].iter().all(|&g| g == 0.0);
        assert_eq!(zero, !plan.actions()[row].is_corrupted(), "row {row}");
    }

    // Through the head: the gradient at an uncorrupted token is exactly zero.
    let head = config.init_head(dim, 1, &device);
    let tokens = Tensor::<3>::random(
        [batch, patches, dim],
        Distribution::Normal(0.0, 1.0),
        &device,
    )
    .require_grad();
    let predictions = head.forward(tokens.clone());
    assert_eq!(predictions.dims(), [batch, patches, outputs]);
    let grads = plan.loss(predictions, &targets).loss.backward();
    let grad = tokens
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for row in 0..batch * patches {
        let zero = grad[row * dim..][..dim].iter().all(|&g| g == 0.0);
        assert_eq!(zero, !plan.actions()[row].is_corrupted(), "token {row}");
    }
}

/// L2 on pixels: the mean squared error over the corrupted rows; no accuracy.
fn pixel_loss_is_the_mean_squared_error(device: &Device) {
    let config = config(MaskedPatchTarget::Pixels);
    let plan = config.plan(2, 4, 5);
    let outputs = config.head_outputs(1); // 16
    let predictions: Vec<f32> = (0..8 * outputs).map(|i| (i % 7) as f32 / 7.0).collect();
    let targets: Vec<f32> = (0..8 * outputs).map(|i| (i % 5) as f32 / 5.0).collect();
    let logits = Tensor::<3>::from_data(
        TensorData::new(predictions.clone(), [2, 4, outputs]),
        device,
    );
    let targets_t = PatchTargets::Pixels(targets.clone()).to_tensors(2, 4, device);
    let output = plan.loss(logits, &targets_t);
    assert!(output.correct.is_none() && output.accuracy().is_none());
    let mut sum = 0.0;
    for &row in plan.corrupted() {
        for i in 0..outputs {
            let d = predictions[row * outputs + i] as f64 - targets[row * outputs + i] as f64;
            sum += d * d;
        }
    }
    let expected = sum / (plan.corrupted().len() * outputs) as f64;
    let got = output.loss.into_data().try_to_vec::<f32>().unwrap();
    assert_close(&got, &[expected], 1e-6, 1e-5, "pixel MSE");
}

/// A ratio that corrupts nothing gives a zero loss and zero gradient, not NaN.
fn nothing_corrupted_gives_zero(device: &Device) {
    let device = device.clone().autodiff();
    let config = MaskedPatchConfig {
        mask_ratio: 0.0,
        ..MaskedPatchConfig::default()
    };
    let plan = config.plan(2, 4, 0);
    assert!(plan.corrupted().is_empty());
    let logits =
        Tensor::<3>::random([2, 4, 8], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let targets = TargetTensors::Classes(Tensor::zeros([2, 4, 1], &device));
    let output = plan.loss(logits.clone(), &targets);
    let loss: f32 = output.loss.clone().into_scalar();
    assert_eq!(loss, 0.0);
    let accuracy: f32 = output.accuracy().unwrap().into_scalar();
    assert_eq!(accuracy, 0.0);
    let grad = logits.grad(&output.loss.backward()).unwrap();
    let grad = grad.into_data().try_to_vec::<f32>().unwrap();
    assert!(grad.iter().all(|&g| g == 0.0));
}

repr_testing::backend_tests!(
    device_targets_match_the_fixture,
    device_targets_equal_the_host_targets,
    apply_replaces_exactly_the_planned_rows,
    loss_covers_the_corrupted_patches_only,
    pixel_loss_is_the_mean_squared_error,
    nothing_corrupted_gives_zero
);

#[test]
fn bad_settings_are_named() {
    let bad = [
        (
            MaskedPatchConfig {
                mask_ratio: 1.5,
                ..MaskedPatchConfig::default()
            },
            "mask_ratio",
        ),
        (
            MaskedPatchConfig {
                keep: -0.1,
                ..MaskedPatchConfig::default()
            },
            "`keep`",
        ),
        (
            MaskedPatchConfig {
                replace_with_mask: 0.9,
                ..MaskedPatchConfig::default()
            },
            "replace_with_mask + replace_with_random + keep",
        ),
        (
            config(MaskedPatchTarget::DownsizedColor { cells: 3 }),
            "target.cells",
        ),
        (
            MaskedPatchConfig {
                patch_size: 0,
                ..MaskedPatchConfig::default()
            },
            "patch_size",
        ),
    ];
    for (config, field) in bad {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    MaskedPatchConfig::default().validate().unwrap();
}

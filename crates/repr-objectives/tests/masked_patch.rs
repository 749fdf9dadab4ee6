//! Masked-patch prediction (Dosovitskiy et al. 2020, appendix B.1.2): targets equal the
//! team's fixture `fixtures/masked_patch.json` exactly, the corruption follows the 50% / 80-10-10
//! recipe, and the loss covers the corrupted patches only.

use burn::tensor::{Device, Distribution, Tensor, TensorData};
use repr_objectives::{CorruptionPlan, MaskedPatchConfig, MaskedPatchTarget, PatchTargets};
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

fn classes(targets: PatchTargets) -> (Vec<i64>, usize) {
    match targets {
        PatchTargets::Classes { classes, per_patch } => (classes, per_patch),
        PatchTargets::Pixels(_) => panic!("expected classes"),
    }
}

fn config(target: MaskedPatchTarget) -> MaskedPatchConfig {
    MaskedPatchConfig {
        target,
        ..MaskedPatchConfig::default()
    }
}

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

#[test]
fn grayscale_images_have_eight_classes() {
    // One channel of 28x28, patch 4: 49 patches; a patch of value 100 everywhere is bin 3.
    let image = vec![100u8; 28 * 28];
    let config = config(MaskedPatchTarget::MeanColor);
    assert_eq!(config.head_outputs(1), 8);
    assert_eq!(config.head_outputs(3), 512);
    let (classes, _) = classes(config.targets(&image, [1, 1, 28, 28]));
    assert_eq!(classes, vec![3; 49]);
}

#[test]
fn corruption_follows_the_recipe() {
    let config = MaskedPatchConfig::default();
    let (batch, patches) = (8, 64);
    let (mut masked, mut moved, mut kept) = (0usize, 0usize, 0usize);
    for seed in 0..200 {
        let plan = config.plan(batch, patches, seed);
        assert_eq!(
            plan.corrupted.len(),
            batch * 32,
            "exactly half of every image"
        );
        for b in 0..batch {
            let rows = plan.corrupted.iter().filter(|&&r| r / patches == b).count();
            assert_eq!(rows, 32);
        }
        for row in 0..batch * patches {
            let corrupted = plan.corrupted.contains(&row);
            let source = plan.source[row] as usize;
            if !corrupted {
                assert!(!plan.masked[row] && source == row, "untouched row {row}");
                continue;
            }
            if plan.masked[row] {
                masked += 1;
            } else if source != row {
                assert_eq!(
                    source / patches,
                    row / patches,
                    "another patch of the same image"
                );
                moved += 1;
            } else {
                kept += 1;
            }
        }
        // Seeded: the same seed gives the same plan.
        assert_eq!(plan, config.plan(batch, patches, seed));
    }
    let total = (masked + moved + kept) as f64;
    assert!(
        (masked as f64 / total - 0.8).abs() < 0.01,
        "{masked}/{total}"
    );
    assert!((moved as f64 / total - 0.1).abs() < 0.01, "{moved}/{total}");
    assert!((kept as f64 / total - 0.1).abs() < 0.01, "{kept}/{total}");
}

fn apply_replaces_exactly_the_planned_rows(device: &Device) {
    let config = MaskedPatchConfig::default();
    let plan = config.plan(2, 6, 3);
    let tokens = Tensor::<3>::random([2, 6, 4], Distribution::Normal(0.0, 1.0), device);
    let mask = Tensor::<1>::from_floats([9.0, 8.0, 7.0, 6.0], device);
    let out = plan.apply(tokens.clone(), mask);
    let out = out.into_data().try_to_vec::<f32>().unwrap();
    let input = tokens.into_data().try_to_vec::<f32>().unwrap();
    for row in 0..12 {
        let got = &out[row * 4..][..4];
        let expected: Vec<f32> = if plan.masked[row] {
            vec![9.0, 8.0, 7.0, 6.0]
        } else {
            let source = plan.source[row] as usize;
            input[source * 4..][..4].to_vec()
        };
        assert_eq!(got, &expected[..], "row {row}");
    }
}

/// Cross-entropy over the corrupted rows only, against an f64 reference; gradients are zero on
/// the other rows.
fn loss_covers_the_corrupted_patches_only(device: &Device) {
    let device = device.clone().autodiff();
    let config = config(MaskedPatchTarget::DownsizedColor { cells: 2 });
    let plan = config.plan(2, 4, 11);
    let outputs = config.head_outputs(1); // 4 cells x 8 classes
    let values: Vec<f32> = (0..8 * outputs)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    let classes: Vec<i64> = (0..8 * 4).map(|i| (i * 5 % 8) as i64).collect();
    let targets = PatchTargets::Classes {
        classes: classes.clone(),
        per_patch: 4,
    };
    let logits = Tensor::<2>::from_data(TensorData::new(values.clone(), [8, outputs]), &device)
        .require_grad();
    let (loss, correct) = plan.loss(logits.clone(), &targets);
    let mut sum = 0.0;
    let mut hits = 0;
    for &row in &plan.corrupted {
        for cell in 0..4 {
            let z = &values[row * outputs + cell * 8..][..8];
            let max = z.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let lse = max + z.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
            let t = classes[row * 4 + cell] as usize;
            sum += lse - z[t] as f64;
            let best = (0..8).max_by(|&a, &b| z[a].total_cmp(&z[b])).unwrap();
            hits += (best == t) as i64;
        }
    }
    let expected = sum / (plan.corrupted.len() * 4) as f64;
    let got = loss.clone().into_data().try_to_vec::<f32>().unwrap();
    assert_close(&got, &[expected], 1e-6, 1e-5, "masked-patch cross-entropy");
    let correct = correct
        .unwrap()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    assert_eq!(correct, vec![hits]);
    let grads = loss.backward();
    let grad = logits
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for row in 0..8 {
        let zero = grad[row * outputs..][..outputs].iter().all(|&g| g == 0.0);
        assert_eq!(zero, !plan.corrupted.contains(&row), "row {row}");
    }
}

/// L2 on pixels: the mean squared error over the corrupted rows.
fn pixel_loss_is_the_mean_squared_error(device: &Device) {
    let config = config(MaskedPatchTarget::Pixels);
    let plan: CorruptionPlan = config.plan(1, 4, 5);
    let outputs = config.head_outputs(1); // 16
    let predictions: Vec<f32> = (0..4 * outputs).map(|i| (i % 7) as f32 / 7.0).collect();
    let targets: Vec<f32> = (0..4 * outputs).map(|i| (i % 5) as f32 / 5.0).collect();
    let logits = Tensor::<2>::from_data(TensorData::new(predictions.clone(), [4, outputs]), device);
    let (loss, correct) = plan.loss(logits, &PatchTargets::Pixels(targets.clone()));
    assert!(correct.is_none());
    let mut sum = 0.0;
    for &row in &plan.corrupted {
        for i in 0..outputs {
            let d = predictions[row * outputs + i] as f64 - targets[row * outputs + i] as f64;
            sum += d * d;
        }
    }
    let expected = sum / (plan.corrupted.len() * outputs) as f64;
    let got = loss.into_data().try_to_vec::<f32>().unwrap();
    assert_close(&got, &[expected], 1e-6, 1e-5, "pixel MSE");
}

repr_testing::backend_tests!(
    apply_replaces_exactly_the_planned_rows,
    loss_covers_the_corrupted_patches_only,
    pixel_loss_is_the_mean_squared_error
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
                replace_with_mask: 0.95,
                replace_with_random: 0.1,
                ..MaskedPatchConfig::default()
            },
            "replace_with_mask + replace_with_random",
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

//! Properties of the pipelines: shapes and ranges, determinism under a seed (whatever the thread
//! count), different images get different views, the crop statistics follow the config, bad
//! configs give an error naming the field, and the CPU and device paths agree.

use burn::tensor::Device;
use repr_augment::device::{self, PixelFormat};
use repr_augment::{
    AugmentError, ColorJitterConfig, ComposeConfig, GaussianBlurConfig, ImageDims, MultiView,
    MultiViewConfig, OpConfig, RandomApplyConfig, RandomHorizontalFlipConfig,
    RandomResizedCropConfig, SolarizeConfig, image_rng,
};

/// `n` different RGB images of `size`: crops of the fixture photo at different offsets.
fn photos(n: usize, size: usize) -> (Vec<Vec<u8>>, ImageDims) {
    let path = repr_testing::fixture_path("augment/source.png");
    let rgb = image::open(path).unwrap().to_rgb8();
    let dims = ImageDims {
        channels: 3,
        height: size,
        width: size,
    };
    let images = (0..n)
        .map(|i| {
            let (oy, ox) = ((i * 37) % (256 - size), (i * 61) % (256 - size));
            let mut chw = vec![0u8; dims.len()];
            for y in 0..size {
                for x in 0..size {
                    let p = rgb.get_pixel((ox + x) as u32, (oy + y) as u32);
                    for c in 0..3 {
                        chw[(c * size + y) * size + x] = p[c];
                    }
                }
            }
            chw
        })
        .collect();
    (images, dims)
}

/// The luma of [`photos`], as 1-channel images.
fn gray_photos(n: usize, size: usize) -> (Vec<Vec<u8>>, ImageDims) {
    let (rgb, dims) = photos(n, size);
    let plane = dims.plane();
    let gray = rgb
        .iter()
        .map(|im| {
            (0..plane)
                .map(|i| {
                    ((im[i] as u32 * 3 + im[plane + i] as u32 * 6 + im[2 * plane + i] as u32) / 10)
                        as u8
                })
                .collect()
        })
        .collect();
    (
        gray,
        ImageDims {
            channels: 1,
            ..dims
        },
    )
}

fn refs(images: &[Vec<u8>]) -> Vec<&[u8]> {
    images.iter().map(|v| v.as_slice()).collect()
}

fn presets() -> Vec<(&'static str, MultiViewConfig, usize, bool)> {
    // (name, views, input side, gray input)
    vec![
        ("simclr_cifar", MultiViewConfig::simclr_cifar(32), 32, false),
        (
            "simclr_imagenet",
            MultiViewConfig::simclr_imagenet(48),
            64,
            false,
        ),
        ("byol", MultiViewConfig::byol(48), 64, false),
        (
            "simclr_grayscale",
            MultiViewConfig::simclr_grayscale(28),
            28,
            true,
        ),
    ]
}

fn build(config: &MultiViewConfig, side: usize, gray: bool, n: usize) -> (MultiView, Vec<Vec<u8>>) {
    let (images, dims) = if gray {
        gray_photos(n, side)
    } else {
        photos(n, side)
    };
    (config.init(dims).unwrap(), images)
}

#[test]
fn grayscale_preset_is_the_simclr_reference() {
    let config = MultiViewConfig::simclr_grayscale(28);
    assert_eq!(config.views.len(), 2);
    assert_eq!(config.views[0], config.views[1]);
    assert_eq!(
        config.views[0].ops,
        vec![
            OpConfig::RandomResizedCrop(RandomResizedCropConfig {
                size: [28, 28],
                scale: [0.2, 1.0],
                ratio: [3.0 / 4.0, 4.0 / 3.0],
                ..Default::default()
            }),
            OpConfig::HorizontalFlip(RandomHorizontalFlipConfig { probability: 0.5 }),
            OpConfig::ColorJitter(ColorJitterConfig {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.0,
                hue: 0.0,
                probability: 0.8,
            }),
        ]
    );
    // BYOL's asymmetry and SimCLR's ImageNet blur.
    let byol = MultiViewConfig::byol(224);
    let blur_p: Vec<f64> = byol
        .views
        .iter()
        .map(|v| match &v.ops[4] {
            OpConfig::GaussianBlur(b) => b.probability,
            _ => panic!("no blur"),
        })
        .collect();
    assert_eq!(blur_p, vec![1.0, 0.1]);
    match &MultiViewConfig::simclr_imagenet(224).views[0].ops[4] {
        OpConfig::GaussianBlur(b) => assert_eq!((b.kernel_size, b.sigma), (23, [0.1, 2.0])),
        _ => panic!("no blur"),
    }
}

#[test]
fn shapes_ranges_and_seeds() {
    for (name, config, side, gray) in presets() {
        let (views, images) = build(&config, side, gray, 6);
        let indices: Vec<u64> = (100..106).collect();
        let a = views.augment_batch(&refs(&images), &indices, 7, 3).unwrap();
        let b = views.augment_batch(&refs(&images), &indices, 7, 3).unwrap();
        assert_eq!(a, b, "{name}: the same seed gives the same batch");
        let c = views.augment_batch(&refs(&images), &indices, 8, 3).unwrap();
        assert_ne!(a, c, "{name}: another seed gives another batch");
        assert_eq!(a.len(), 2);
        for (v, view) in a.iter().enumerate() {
            assert_eq!(view.len(), 6 * views.view_dims(v).len(), "{name}");
        }
        // Two views of one image differ; the same image under two indices gets other views.
        let len = views.view_dims(0).len();
        assert_ne!(
            a[0][..len],
            a[1][..len],
            "{name}: the two views of an image"
        );
        let same = vec![images[0].clone(), images[0].clone()];
        let d = views.augment_batch(&refs(&same), &[1, 2], 7, 3).unwrap();
        assert_ne!(
            d[0][..len],
            d[0][len..],
            "{name}: different indices, different views"
        );
    }
}

#[test]
fn batches_do_not_depend_on_the_thread_count() {
    let (views, images) = build(&MultiViewConfig::simclr_imagenet(48), 64, false, 16);
    let indices: Vec<u64> = (0..16).collect();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| views.augment_batch(&refs(&images), &indices, 1, 0).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(5));
    // And each image's views equal augmenting it alone.
    let alone = views
        .augment_batch(&[images[9].as_slice()], &[9], 1, 0)
        .unwrap();
    let len = views.view_dims(0).len();
    assert_eq!(alone[1], one[1][9 * len..10 * len]);
}

#[test]
fn crop_area_and_aspect_follow_the_config() {
    let dims = ImageDims {
        channels: 3,
        height: 200,
        width: 300,
    };
    let op = RandomResizedCropConfig {
        scale: [0.2, 0.8],
        ratio: [0.5, 2.0],
        ..RandomResizedCropConfig::new(32)
    }
    .init(dims)
    .unwrap();
    let n = 20_000;
    let (mut area_sum, mut log_ratio_sum) = (0.0, 0.0);
    let mut bins = [0usize; 6];
    for i in 0..n {
        let c = op.sample(&mut image_rng(3, 0, i));
        let area = (c.height * c.width) as f64 / (200.0 * 300.0);
        let ratio = c.width as f64 / c.height as f64;
        // Integer rounding of the sides moves the area and ratio slightly off the range.
        assert!((0.19..=0.81).contains(&area), "area {area}");
        assert!((0.48..=2.05).contains(&ratio), "ratio {ratio}");
        area_sum += area;
        log_ratio_sum += ratio.ln();
        bins[(((area - 0.2) / 0.1).floor().clamp(0.0, 5.0)) as usize] += 1;
    }
    // Expected values from a Python transcription of torchvision's `get_params` (200,000 draws
    // with `random.uniform`, f64): mean area 0.4474, mean ln(ratio) 0.1464. Not 0.5 and 0: wide
    // or tall crops of large area do not fit the 200x300 image and are redrawn, more often the
    // tall ones. Standard errors at 20,000 draws: ~0.001 and ~0.003.
    let mean_area = area_sum / n as f64;
    assert!((mean_area - 0.4474).abs() < 0.006, "mean area {mean_area}");
    let mean_log_ratio = log_ratio_sum / n as f64;
    assert!(
        (mean_log_ratio - 0.1464).abs() < 0.015,
        "mean log ratio {mean_log_ratio}"
    );
    for (b, &count) in bins.iter().enumerate() {
        assert!(count > n as usize / 12, "area bin {b}: {count}");
    }
}

#[test]
fn bad_configs_and_inputs_are_errors_naming_the_field() {
    let dims = ImageDims {
        channels: 3,
        height: 32,
        width: 32,
    };
    let mut view = ComposeConfig::simclr_cifar(32);
    view.ops.push(OpConfig::GaussianBlur(GaussianBlurConfig {
        sigma: [-1.0, 2.0],
        kernel_size: 3,
        probability: 0.5,
    }));
    let err = view.init(dims).unwrap_err().to_string();
    assert!(err.contains("gaussian_blur.sigma"), "{err}");

    // A blur kernel as large as the (cropped) image.
    let mut view = ComposeConfig::simclr_cifar(8);
    view.ops.push(OpConfig::GaussianBlur(GaussianBlurConfig {
        kernel_size: 17,
        ..Default::default()
    }));
    assert!(
        view.init(dims)
            .unwrap_err()
            .to_string()
            .contains("kernel_size")
    );

    // A crop inside RandomApply that changes the size.
    let view = ComposeConfig::new(vec![OpConfig::RandomApply(RandomApplyConfig {
        probability: 0.5,
        ops: vec![OpConfig::RandomResizedCrop(RandomResizedCropConfig::new(
            16,
        ))],
    })]);
    assert!(matches!(
        view.init(dims),
        Err(AugmentError::SizeChange { .. })
    ));
    let view = ComposeConfig::new(vec![OpConfig::Solarize(SolarizeConfig {
        threshold: 0.5,
        probability: 2.0,
    })]);
    assert!(
        view.init(dims)
            .unwrap_err()
            .to_string()
            .contains("solarize.probability")
    );

    // A zero-sized image and an empty view list.
    let empty = ImageDims {
        channels: 3,
        height: 0,
        width: 32,
    };
    assert!(matches!(
        MultiViewConfig::simclr_cifar(32).init(empty),
        Err(AugmentError::InvalidImage { .. })
    ));
    assert!(MultiViewConfig { views: vec![] }.validate().is_err());
    assert!(MultiViewConfig::byol(224).validate().is_ok());

    // A batch with a wrong-sized image is rejected before anything is augmented.
    let views = MultiViewConfig::simclr_cifar(32).init(dims).unwrap();
    let good = vec![0u8; dims.len()];
    let bad = vec![0u8; 10];
    let err = views
        .augment_batch(&[&good, &bad], &[0, 1], 0, 0)
        .unwrap_err();
    assert!(
        matches!(err, AugmentError::ImageLength { index: 1, .. }),
        "{err}"
    );
    assert!(views.augment_batch(&[&good], &[0, 1], 0, 0).is_err());
}

#[test]
fn configs_round_trip_through_json_and_reject_unknown_keys() {
    let config = MultiViewConfig::byol(96);
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains("\"op\":\"gaussian_blur\""), "{json}");
    let back: MultiViewConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, config);
    // Fields left out take their defaults.
    let partial: OpConfig = serde_json::from_str(r#"{"op": "color_jitter", "hue": 0.0}"#).unwrap();
    assert_eq!(
        partial,
        OpConfig::ColorJitter(ColorJitterConfig {
            hue: 0.0,
            ..Default::default()
        })
    );
    let typo = serde_json::from_str::<OpConfig>(r#"{"op": "color_jitter", "brightnes": 0.4}"#);
    assert!(typo.unwrap_err().to_string().contains("brightnes"));
}

/// Values agree between the CPU path and the device path fed with the same parameters.
fn cpu_and_device_paths_agree(device: &Device) {
    for (name, config, side, gray) in presets() {
        let n = 6;
        let (views, images) = build(&config, side, gray, n);
        let indices: Vec<u64> = (0..n as u64).map(|i| i * 7 + 1).collect();
        let cpu = views
            .augment_batch(&refs(&images), &indices, 11, 2)
            .unwrap();
        let params = views.sample_batch(&indices, 11, 2);
        let x = device::upload(&refs(&images), views.input_dims(), device).unwrap();
        let dev = views.apply_device(x, &params, PixelFormat::U8).unwrap();
        for (v, (c, d)) in cpu.iter().zip(dev).enumerate() {
            let d: Vec<f32> = d.into_data().iter::<f32>().collect();
            assert_eq!(c.len(), d.len());
            let diffs: Vec<f32> = c
                .iter()
                .zip(&d)
                .map(|(&a, &b)| (a as f32 - b).abs())
                .collect();
            let max = diffs.iter().cloned().fold(0.0, f32::max);
            let differing = diffs.iter().filter(|&&e| e > 0.0).count();
            eprintln!(
                "{name} view {v}: {differing} of {} values differ, max {max}",
                c.len()
            );
            assert!(
                d.iter()
                    .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0),
                "{name} view {v}: values off the u8 lattice"
            );
            assert!(
                max <= 2.0 && differing * 100 <= c.len(),
                "{name} view {v}: {differing} of {} values differ, max {max}",
                c.len()
            );
        }
    }
}

repr_testing::backend_tests!(cpu_and_device_paths_agree);

//! Images in every colour mode the PNG and JPEG decoders produce, read at their own size with
//! 3 and 1 channels, against what PIL's `convert("RGB")` / `convert("L")` give for the same
//! files (torchvision's loader). The files and the expected values come from
//! `tests/fixtures/colour-modes/make_fixtures.py`; its output is pasted below.

use std::path::Path;

use repr_data::{DEFAULT_MAX_IMAGE_PIXELS, OnBadImage, read_image_folder_with};

// PIL 13.0.0: convert("RGB") (interleaved) and convert("L") of each file.
// grey.png: PIL opens it as L
const GREY_RGB: [u8; 36] = [
    13, 13, 13, 80, 80, 80, 147, 147, 147, 214, 214, 214, 42, 42, 42, 109, 109, 109, 176, 176, 176,
    243, 243, 243, 71, 71, 71, 138, 138, 138, 205, 205, 205, 16, 16, 16,
];
const GREY_L: [u8; 12] = [13, 80, 147, 214, 42, 109, 176, 243, 71, 138, 205, 16];
// grey-alpha.png: PIL opens it as LA
const GREY_ALPHA_RGB: [u8; 36] = [
    13, 13, 13, 80, 80, 80, 147, 147, 147, 214, 214, 214, 42, 42, 42, 109, 109, 109, 176, 176, 176,
    243, 243, 243, 71, 71, 71, 138, 138, 138, 205, 205, 205, 16, 16, 16,
];
const GREY_ALPHA_L: [u8; 12] = [13, 80, 147, 214, 42, 109, 176, 243, 71, 138, 205, 16];
// rgb.png: PIL opens it as RGB
const RGB_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const RGB_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// rgba.png: PIL opens it as RGBA
const RGBA_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const RGBA_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// grey16.png: PIL opens it as I;16; PIL's clipped L: [255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255]
const GREY16_RGB: [u8; 36] = [
    13, 13, 13, 80, 80, 80, 147, 147, 147, 214, 214, 214, 42, 42, 42, 109, 109, 109, 176, 176, 176,
    243, 243, 243, 71, 71, 71, 138, 138, 138, 205, 205, 205, 16, 16, 16,
];
const GREY16_L: [u8; 12] = [13, 80, 147, 214, 42, 109, 176, 243, 71, 138, 205, 16];
// grey-alpha16.png: PIL opens it as RGBA
const GREY_ALPHA16_RGB: [u8; 36] = [
    13, 13, 13, 80, 80, 80, 147, 147, 147, 214, 214, 214, 42, 42, 42, 109, 109, 109, 176, 176, 176,
    243, 243, 243, 71, 71, 71, 138, 138, 138, 205, 205, 205, 16, 16, 16,
];
const GREY_ALPHA16_L: [u8; 12] = [13, 80, 147, 214, 42, 109, 176, 243, 71, 138, 205, 16];
// rgb16.png: PIL opens it as RGB
const RGB16_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const RGB16_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// rgba16.png: PIL opens it as RGBA
const RGBA16_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const RGBA16_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// grey1.png: PIL opens it as 1
const GREY1_RGB: [u8; 36] = [
    0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0,
    0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255,
];
const GREY1_L: [u8; 12] = [0, 255, 0, 255, 255, 0, 255, 0, 0, 255, 0, 255];
// palette.png: PIL opens it as P
const PALETTE_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const PALETTE_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// palette-4bit.png: PIL opens it as P
const PALETTE_4BIT_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const PALETTE_4BIT_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// palette-trns.png: PIL opens it as P
const PALETTE_TRNS_RGB: [u8; 36] = [
    13, 114, 215, 80, 181, 26, 147, 248, 93, 214, 59, 160, 42, 143, 244, 109, 210, 55, 176, 21,
    122, 243, 88, 189, 71, 172, 17, 138, 239, 84, 205, 50, 151, 16, 117, 218,
];
const PALETTE_TRNS_L: [u8; 12] = [95, 133, 200, 117, 124, 162, 79, 146, 124, 191, 108, 98];
// cmyk.jpg: PIL opens it as CMYK
const CMYK_RGB: [u8; 36] = [
    185, 108, 31, 88, 37, 115, 26, 2, 39, 40, 192, 93, 139, 74, 7, 57, 17, 77, 10, 29, 17, 10, 145,
    57, 99, 45, 128, 32, 4, 47, 1, 2, 1, 180, 103, 28,
];
const CMYK_L: [u8; 12] = [122, 61, 13, 135, 86, 36, 22, 95, 71, 17, 2, 117];

/// Each fixture with its expected RGB (interleaved) and grey pixels, and the largest difference
/// allowed (JPEG decoders may round their inverse DCT differently).
const CASES: [(&str, &[u8; 36], &[u8; 12], u8); 13] = [
    ("grey.png", &GREY_RGB, &GREY_L, 0),
    ("grey-alpha.png", &GREY_ALPHA_RGB, &GREY_ALPHA_L, 0),
    ("rgb.png", &RGB_RGB, &RGB_L, 0),
    ("rgba.png", &RGBA_RGB, &RGBA_L, 0),
    ("grey16.png", &GREY16_RGB, &GREY16_L, 0),
    ("grey-alpha16.png", &GREY_ALPHA16_RGB, &GREY_ALPHA16_L, 0),
    ("rgb16.png", &RGB16_RGB, &RGB16_L, 0),
    ("rgba16.png", &RGBA16_RGB, &RGBA16_L, 0),
    ("grey1.png", &GREY1_RGB, &GREY1_L, 0),
    ("palette.png", &PALETTE_RGB, &PALETTE_L, 0),
    ("palette-4bit.png", &PALETTE_4BIT_RGB, &PALETTE_4BIT_L, 0),
    ("palette-trns.png", &PALETTE_TRNS_RGB, &PALETTE_TRNS_L, 0),
    ("cmyk.jpg", &CMYK_RGB, &CMYK_L, CMYK_TOLERANCE),
];

/// Largest difference from PIL allowed on the CMYK JPEG (zune-jpeg and PIL's libjpeg agree
/// exactly on x86-64; a decoder's SIMD path may round its inverse DCT by one level).
const CMYK_TOLERANCE: u8 = 1;

/// A folder with one class per fixture (named after it), so that image `i` of the dataset is
/// `CASES[i]` (class folders are sorted, and so is `CASES`' order by class name below).
fn fixture_folder() -> (tempfile::TempDir, Vec<usize>) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/colour-modes");
    let root = tempfile::tempdir().unwrap();
    for (name, ..) in CASES {
        let class = root.path().join(name.replace('.', "_"));
        std::fs::create_dir(&class).unwrap();
        std::fs::copy(fixtures.join(name), class.join(name)).unwrap();
    }
    // The dataset's order: CASES sorted by class-folder name.
    let mut order: Vec<usize> = (0..CASES.len()).collect();
    order.sort_by_key(|&i| CASES[i].0.replace('.', "_"));
    (root, order)
}

fn assert_close(file: &str, what: &str, got: &[u8], want: &[u8], tolerance: u8) {
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| g.abs_diff(*w))
        .max()
        .unwrap();
    assert!(
        got.len() == want.len() && worst <= tolerance,
        "{file} {what}: got {got:?}, PIL {want:?}"
    );
}

#[test]
fn every_colour_mode_reads_as_pil_converts_it() {
    let (root, order) = fixture_folder();
    for channels in [3, 1] {
        let (dataset, skipped) = read_image_folder_with(
            root.path(),
            channels,
            (3, 4),
            OnBadImage::Fail,
            DEFAULT_MAX_IMAGE_PIXELS,
        )
        .unwrap();
        assert!(skipped.is_empty());
        assert_eq!(dataset.len(), CASES.len());
        for (index, &case) in order.iter().enumerate() {
            let (file, rgb, grey, tolerance) = CASES[case];
            let image = dataset.image(index);
            if channels == 3 {
                // CHW -> interleaved, as PIL lists it.
                let interleaved: Vec<u8> = (0..12)
                    .flat_map(|i| [image[i], image[12 + i], image[24 + i]])
                    .collect();
                assert_close(file, "RGB", &interleaved, rgb, tolerance);
            } else {
                assert_close(file, "L", image, grey, tolerance);
            }
        }
    }
}

//! Image-folder reader: any bytes as `a/x.png` beside a valid `b/ok.png`, read with
//! `OnBadImage::Fail` and `OnBadImage::Skip` under a 1-megapixel limit. Fail errors exactly when
//! Skip skips the file, and Skip always keeps the valid image.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use repr_fuzz::folder::{OnBadImage, read_image_folder_with};

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// The per-image pixel limit of both reads.
const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let root = DIR.get_or_init(|| {
        let root = repr_fuzz::scratch_dir("image_folder");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b")).unwrap();
        image::RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]))
            .save(root.join("b/ok.png"))
            .unwrap();
        root
    });
    std::fs::write(root.join("a/x.png"), data).unwrap();
    let fail = read_image_folder_with(root, 3, (4, 5), OnBadImage::Fail, MAX_PIXELS);
    let (skip, skipped) = read_image_folder_with(root, 1, (4, 5), OnBadImage::Skip, MAX_PIXELS)
        .expect("the valid image is always kept");
    assert_eq!(fail.is_err(), skipped.len() == 1, "{fail:?} / {skipped:?}");
    assert_eq!(skip.labels.len() + skipped.len(), 2);
    assert_eq!(skip.pixels.len(), skip.labels.len() * 20);
    if let Ok((ds, none)) = fail {
        assert!(none.is_empty());
        assert_eq!(ds.pixels.len(), 2 * 3 * 20);
    }
});

//! IDX reader: any bytes, raw or (first byte odd) gzip-compressed, read as images and as labels.
//! Either a typed error or data whose length matches the header.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use repr_fuzz::idx::{read_idx_images, read_idx_labels};

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let path = DIR
        .get_or_init(|| repr_fuzz::scratch_dir("idx"))
        .join("file");
    let bytes = if mode & 1 == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).unwrap();
        gz.finish().unwrap()
    } else {
        body.to_vec()
    };
    std::fs::write(&path, &bytes).unwrap();
    if let Ok((pixels, count, rows, cols)) = read_idx_images(&path) {
        assert_eq!(pixels.len(), count * rows * cols);
        assert!(rows > 0 && cols > 0);
        assert_eq!(pixels.len() + 16, body.len());
    }
    if let Ok(labels) = read_idx_labels(&path) {
        assert_eq!(labels.len() + 8, body.len());
    }
});

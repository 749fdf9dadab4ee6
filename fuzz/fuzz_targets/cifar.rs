//! CIFAR binary reader: any bytes as a CIFAR-10 `test_batch.bin` and a CIFAR-100 `test.bin`,
//! beside a class-name file taken from the first byte's count of lines. Either a typed error
//! or whole records with labels in range.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use repr_fuzz::Split;
use repr_fuzz::cifar::{read_cifar_batch, read_cifar10, read_cifar100};

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&names, body)) = data.split_first() else {
        return;
    };
    let dir = DIR.get_or_init(|| repr_fuzz::scratch_dir("cifar"));
    std::fs::write(dir.join("test_batch.bin"), body).unwrap();
    std::fs::write(dir.join("test.bin"), body).unwrap();
    // 0: no name file (defaults); otherwise `names` lines (10 fits CIFAR-10, 100 CIFAR-100).
    for file in ["batches.meta.txt", "fine_label_names.txt"] {
        let path = dir.join(file);
        if names == 0 {
            let _ = std::fs::remove_file(&path);
        } else {
            let text: String = (0..names).map(|i| format!("c{i}\n")).collect();
            std::fs::write(&path, text).unwrap();
        }
    }
    for label_bytes in 0..4 {
        if let Ok((pixels, labels)) = read_cifar_batch(&dir.join("test.bin"), label_bytes) {
            assert_eq!(pixels.len(), labels.len() * 3072);
            assert_eq!(body.len(), labels.len() * (3072 + label_bytes));
        }
    }
    type Reader =
        fn(&std::path::Path, Split) -> Result<repr_fuzz::ImageDataset, repr_fuzz::DataError>;
    for (read, classes) in [(read_cifar10 as Reader, 10), (read_cifar100 as Reader, 100)] {
        if let Ok(ds) = read(dir.as_path(), Split::Test) {
            assert_eq!(ds.class_names.len(), classes);
            assert!(ds.labels.iter().all(|&l| (l as usize) < classes));
        }
    }
});

//! Weight and checkpoint files: the readers under `repr-backbones`' `StateDict::read` (`.pt` /
//! `.pth` through `pytorch-reader`, `.safetensors` through `safetensors`) and under `.bpk`
//! models and checkpoints (`burn-pack`'s `Reader`). The first byte picks the format, the rest is
//! the file. A corrupt or hostile file must be an error: never a panic, an allocation over the
//! fuzzer's 2 GiB limit, or code execution (the pickle reader only builds tensors and plain
//! values; it has no way to call anything).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, file)) = data.split_first() else {
        return;
    };
    match kind % 3 {
        0 => {
            if let Ok(tensors) = safetensors::SafeTensors::deserialize(file) {
                for (name, view) in tensors.tensors() {
                    let elements: usize = view.shape().iter().product();
                    // A view's data is the bytes its dtype and shape describe.
                    assert_eq!(
                        view.data().len() * 8,
                        elements * view.dtype().bitsize(),
                        "{name}"
                    );
                }
            }
        }
        1 => {
            let bytes = burn_pack::Bytes::from_bytes_vec(file.to_vec());
            if let Ok(reader) = burn_pack::Reader::from_bytes(bytes) {
                let names: Vec<String> =
                    reader.tensor_names().iter().map(|n| n.to_string()).collect();
                for name in names {
                    let _ = reader.tensor_data(&name);
                }
            }
        }
        _ => {
            // The reader takes a path (a zip's members are read lazily).
            let path = std::env::temp_dir().join(format!("repr-fuzz-{}.pt", std::process::id()));
            std::fs::write(&path, file).expect("temporary file");
            if let Ok(reader) = pytorch_reader::PytorchReader::new(&path) {
                for tensor in reader.tensors().values() {
                    let _ = tensor.read();
                }
            }
        }
    }
});

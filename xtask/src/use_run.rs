//! `eval`, `embed` and `retrieve`: using the network of a finished run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use repr_data::Split;
use repr_train::{DeviceChoice, RunDir, RunMode};

use crate::outputs::{Format, check_output_file};

/// Which run, on which backend.
#[derive(Parser)]
pub struct RunArgs {
    /// The run folder (`runs/<name>`).
    #[arg(long)]
    run: PathBuf,
    /// Backend: flex (default CPU), ndarray, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    device: String,
}

impl RunArgs {
    fn open(&self) -> Result<(RunDir, burn::tensor::Device)> {
        let run = RunDir::open(&self.run, RunMode::Resume)
            .with_context(|| format!("opening run {}", self.run.display()))?;
        let device: DeviceChoice = self.device.parse()?;
        Ok((run, device.device()?))
    }
}

/// `cargo xtask eval`.
#[derive(Parser)]
pub struct EvalArgs {
    #[command(flatten)]
    run: RunArgs,
}

/// `cargo xtask embed`.
#[derive(Parser)]
pub struct EmbedArgs {
    #[command(flatten)]
    run: RunArgs,
    /// `train` (the run's kNN memory) or `test`.
    #[arg(long, default_value = "test", value_parser = ["train", "test"])]
    split: String,
    /// Output `.npy` file; labels go beside it as `<stem>.labels.npy`.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing `.npy` files at `--out` (a file of another kind is never replaced).
    #[arg(long)]
    overwrite: bool,
}

/// `cargo xtask retrieve`.
#[derive(Parser)]
pub struct RetrieveArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Test images used as queries (the first ones of the split).
    #[arg(long, default_value_t = 8)]
    queries: usize,
    /// Neighbours shown per query.
    #[arg(long, default_value_t = 8)]
    k: usize,
    /// Output PNG.
    #[arg(long, default_value = "retrieval.png")]
    out: PathBuf,
    /// Replace an existing PNG at `--out` (a file of another kind is never replaced).
    #[arg(long)]
    overwrite: bool,
}

pub fn eval(args: &EvalArgs) -> Result<()> {
    let (run, device) = args.run.open()?;
    let table = repr_train::evaluate_run(&run, &device)?;
    std::fs::write(run.root().join("eval.md"), &table)
        .with_context(|| format!("writing {}", run.root().join("eval.md").display()))?;
    println!("{table}");
    Ok(())
}

pub fn embed(args: &EmbedArgs) -> Result<()> {
    let labels_path = args.out.with_extension("labels.npy");
    check_output_file(&args.out, "--out", Format::Npy, args.overwrite)?;
    check_output_file(&labels_path, "--out (labels)", Format::Npy, args.overwrite)?;
    let (run, device) = args.run.open()?;
    let split = if args.split == "train" {
        Split::Train
    } else {
        Split::Test
    };
    let (embeddings, labels) = repr_train::embed_run(&run, split, &device)?;
    write_npy(
        &args.out,
        "<f4",
        &[embeddings.len, embeddings.dim],
        &embeddings
            .data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )?;
    write_npy(
        &labels_path,
        "<u4",
        &[labels.len()],
        &labels
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<_>>(),
    )?;
    println!(
        "{} embeddings of dimension {} -> {} (labels: {})",
        embeddings.len,
        embeddings.dim,
        args.out.display(),
        labels_path.display()
    );
    Ok(())
}

pub fn retrieve(args: &RetrieveArgs) -> Result<()> {
    check_output_file(&args.out, "--out", Format::Png, args.overwrite)?;
    let (run, device) = args.run.open()?;
    repr_train::retrieve_run(&run, args.queries, args.k, &args.out, &device)?;
    println!("retrieval grid -> {}", args.out.display());
    Ok(())
}

/// Writes a NumPy `.npy` file (format version 1.0, C order).
pub(crate) fn write_npy(path: &Path, dtype: &str, shape: &[usize], data: &[u8]) -> Result<()> {
    let shape = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&(header.len() as u16).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    file.write_all(data)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_header_is_aligned_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npy");
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        super::write_npy(&path, "<f4", &[2, 3], &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        assert_eq!(&bytes[10 + header_len..], &data[..]);
    }
}

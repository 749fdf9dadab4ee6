//! The PyTorch CPU reference numbers: measured live by `benches/pytorch/bench_models.py` when
//! `python3` can import `torch`, otherwise the stored ones compiled in from `benches/pytorch/`
//! (see its README for their provenance).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const PASS1: &str = include_str!("../../../benches/pytorch/pytorch-cpu-results.jsonl");
const PASS2: &str = include_str!("../../../benches/pytorch/pytorch-cpu-results-pass2.jsonl");

/// One PyTorch measurement: images/s over its timed steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The peer script's workload name, e.g. `resnet_train` or `resnet_train_cl`.
    pub bench: String,
    /// Images per step.
    pub batch: usize,
    /// Images/s of the fastest, median and slowest step.
    pub min: f64,
    /// Median images/s.
    pub median: f64,
    /// Slowest step's images/s.
    pub max: f64,
    /// Timed steps.
    pub steps: usize,
    /// Cores other processes used during the timed steps.
    pub other_cores: f64,
    /// Peak resident memory, MiB.
    pub maxrss_mib: f64,
    /// Median images/s of the second pass, where there is one.
    pub pass2_median: Option<f64>,
    /// The PyTorch version.
    pub torch: String,
}

fn parse(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Whether `python3` here can import `torch` (then `--compare` measures PyTorch live).
pub fn torch_available() -> bool {
    Command::new("python3")
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the peer script for `bench` now (same machine, same run), with PyTorch on `threads`
/// threads, and returns its record. `batch` is images per step (source images for SimCLR).
pub fn live(
    bench: &str,
    batch: usize,
    steps: usize,
    warmup: usize,
    threads: usize,
) -> anyhow::Result<Reference> {
    use anyhow::Context;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/pytorch/bench_models.py");
    let out =
        std::env::temp_dir().join(format!("repr-pytorch-{}-{bench}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let status = Command::new("python3")
        .arg(&script)
        .arg(bench)
        .args([
            "--threads",
            &threads.to_string(),
            "--steps",
            &steps.to_string(),
        ])
        .args([
            "--warmup",
            &warmup.to_string(),
            "--batch",
            &batch.to_string(),
            "--no-wait",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        status.success(),
        "{} {bench} failed ({status})",
        script.display()
    );
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = std::fs::remove_file(&out);
    let record = parse(&text)
        .pop()
        .context("the PyTorch script wrote no record")?;
    Ok(from_record(bench, &record, None))
}

/// A [`Reference`] from one JSON record of the peer script (or of our report).
pub fn from_record(bench: &str, r: &Value, pass2_median: Option<f64>) -> Reference {
    let f = |key: &str| r.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Reference {
        bench: bench.to_string(),
        batch: f("batch_images") as usize,
        min: f("ips_min"),
        median: f("ips_median"),
        max: f("ips_max"),
        steps: f("n") as usize,
        other_cores: f("other_procs_cores"),
        maxrss_mib: f("maxrss_mb"),
        pass2_median,
        torch: r
            .get("torch")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    }
}

/// The first-pass stored measurement of `bench` (with the second pass's median beside it).
pub fn reference(bench: &str) -> Option<Reference> {
    let find = |records: Vec<Value>| {
        records
            .into_iter()
            .find(|r| r.get("bench").and_then(Value::as_str) == Some(bench))
    };
    let r = find(parse(PASS1))?;
    let pass2 = find(parse(PASS2)).and_then(|p| p.get("ips_median")?.as_f64());
    Some(from_record(bench, &r, pass2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stored_numbers() {
        let r = reference("resnet_train").unwrap();
        assert_eq!(r.batch, 64);
        assert!((r.median - 89.2).abs() < 0.1, "{r:?}");
        assert!((r.pass2_median.unwrap() - 91.2).abs() < 0.1);
        let cl = reference("resnet_train_cl").unwrap();
        assert!(cl.median > r.median && cl.pass2_median.is_none());
        assert!(reference("triplet_train").is_none());
    }
}

//! The PyTorch CPU reference numbers of `--compare`, each with where it came from.
//!
//! - **live**: `benches/pytorch/bench_models.py` run in this invocation, on this machine, when
//!   the interpreter (`$REPR_PYTHON`, else `python3` on `PATH`) can `import torch`;
//! - **stored**: otherwise (or when a live run fails), the records of
//!   `benches/pytorch/pytorch-cpu-results.jsonl`, compiled in. Each record carries the machine
//!   it was measured on (`machine`: CPU model, cores, date), so a ratio against it can say
//!   whether it crosses machines.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

const PASS1: &str = include_str!("../../../benches/pytorch/pytorch-cpu-results.jsonl");
const PASS2: &str = include_str!("../../../benches/pytorch/pytorch-cpu-results-pass2.jsonl");

/// The file the stored numbers come from, as the reports name it.
pub const STORED_FILE: &str = "benches/pytorch/pytorch-cpu-results.jsonl";

/// Where a PyTorch number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Measured in this invocation, on this machine.
    Live,
    /// Read from [`STORED_FILE`]; measured wherever its `machine` says.
    Stored,
}

impl Source {
    /// `live` or `stored`, as the table and the JSON write it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Live => "live",
            Source::Stored => "stored",
        }
    }
}

/// The machine a PyTorch number was measured on, as the peer script records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMachine {
    /// CPU model (`model name` of `/proc/cpuinfo`).
    pub cpu: String,
    /// Cores available to the script.
    pub cores: usize,
    /// When it was measured (ISO 8601).
    pub date: String,
}

impl PeerMachine {
    /// Reads a record's `machine` object; `None` when absent or incomplete.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            cpu: v.get("cpu")?.as_str()?.to_string(),
            cores: usize::try_from(v.get("cores")?.as_u64()?).ok()?,
            date: v.get("date")?.as_str()?.to_string(),
        })
    }

    /// The `machine` object of a record.
    pub fn to_json(&self) -> Value {
        json!({"cpu": self.cpu, "cores": self.cores, "date": self.date})
    }

    /// Whether a report's `machine` (from `measure::machine()`) has the same CPU model and core
    /// count. The same model is still another run, but not another kind of machine.
    pub fn matches(&self, machine: &Value) -> bool {
        machine["cpu"].as_str() == Some(self.cpu.as_str())
            && machine["cores"].as_u64() == Some(self.cores as u64)
    }

    /// `<cpu>, <cores> cores, <date>`.
    pub fn describe(&self) -> String {
        format!("{}, {} cores, {}", self.cpu, self.cores, self.date)
    }
}

/// One PyTorch measurement: images/s over its timed steps, and where it was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// The peer script's workload name, e.g. `resnet_train` or `resnet_train_cl`.
    pub bench: String,
    /// Images per step.
    pub batch: usize,
    /// Fastest step's images/s.
    pub min: f64,
    /// Median images/s.
    pub median: f64,
    /// Slowest step's images/s.
    pub max: f64,
    /// Timed steps.
    pub steps: usize,
    /// Untimed warm-up steps before them.
    pub warmup: usize,
    /// Cores other processes used during the timed steps.
    pub other_cores: f64,
    /// Peak resident memory, MiB.
    pub maxrss_mib: f64,
    /// Median images/s of the second pass, where there is one.
    pub pass2_median: Option<f64>,
    /// The PyTorch version.
    pub torch: String,
    /// `torch.set_num_threads` of the run (0 where not recorded).
    pub threads: usize,
    /// Live or stored.
    pub source: Source,
    /// The machine it was measured on, where recorded.
    pub machine: Option<PeerMachine>,
}

impl Reference {
    /// The record of this measurement in `models.json`.
    pub fn to_json(&self) -> Value {
        json!({
            "bench": self.bench, "batch_images": self.batch, "ips_median": self.median,
            "ips_min": self.min, "ips_max": self.max, "n": self.steps, "warmup": self.warmup,
            "pass2_ips_median": self.pass2_median, "other_procs_cores": self.other_cores,
            "maxrss_mb": self.maxrss_mib, "torch": self.torch, "threads": self.threads,
            "source": self.source.name(),
            "file": (self.source == Source::Stored).then_some(STORED_FILE),
            "machine": self.machine.as_ref().map(PeerMachine::to_json),
        })
    }

    /// Whether this number was measured on the machine a report describes: live ones always,
    /// stored ones when their CPU model and core count are the report's.
    pub fn on_machine(&self, machine: &Value) -> bool {
        self.source == Source::Live || self.machine.as_ref().is_some_and(|m| m.matches(machine))
    }

    /// Whether this and `other` come from the same machine (a stored number without a
    /// recorded machine matches nothing).
    pub fn same_machine_as(&self, other: &Reference, machine: &Value) -> bool {
        match (self.on_machine(machine), other.on_machine(machine)) {
            (true, true) => true,
            (false, false) => self.machine.is_some() && self.machine == other.machine,
            _ => false,
        }
    }
}

fn parse(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The interpreter that runs the peer script: `$REPR_PYTHON`, else `python3` on `PATH`.
pub fn python() -> OsString {
    std::env::var_os("REPR_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// The version of `torch` that [`python`] imports, or why it cannot (then `--compare` uses
/// the stored numbers).
pub fn torch_version() -> Result<String, String> {
    let python = python();
    let shown = python.to_string_lossy().into_owned();
    match Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
    {
        Err(e) => Err(format!("`{shown}` does not run ({e})")),
        Ok(o) if !o.status.success() => Err(format!("`{shown}` cannot import torch")),
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
    }
}

/// Runs the peer script for `bench` now (this machine, this invocation), with PyTorch on
/// `threads` threads, and returns its record. `batch` is images per step (source images for
/// SimCLR).
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
    let status = Command::new(python())
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
    Ok(from_record(bench, &record, None, Source::Live))
}

/// A [`Reference`] from one JSON record of the peer script (or of our report).
pub fn from_record(bench: &str, r: &Value, pass2_median: Option<f64>, source: Source) -> Reference {
    let f = |key: &str| r.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
    Reference {
        bench: bench.to_string(),
        batch: f("batch_images") as usize,
        min: f("ips_min"),
        median: f("ips_median"),
        max: f("ips_max"),
        steps: f("n") as usize,
        warmup: f("warmup") as usize,
        other_cores: f("other_procs_cores"),
        maxrss_mib: f("maxrss_mb"),
        pass2_median,
        torch: r
            .get("torch")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        threads: r.get("threads").and_then(Value::as_u64).unwrap_or(0) as usize,
        source,
        machine: r.get("machine").and_then(PeerMachine::from_json),
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
    Some(from_record(bench, &r, pass2, Source::Stored))
}

/// One line per distinct origin of `refs` saying where those PyTorch numbers come from,
/// judged against `machine` (the report's): live ones with their torch version and threads,
/// stored ones with the machine they were measured on and whether it is this one. Ends with
/// the meaning of `*` when some ratio crosses machines.
pub fn provenance(refs: &[&Reference], machine: &Value) -> String {
    let this = format!(
        "{}, {} cores",
        machine["cpu"].as_str().unwrap_or("unknown CPU"),
        machine["cores"]
    );
    let mut lines: Vec<String> = Vec::new();
    let mut cross = false;
    for r in refs {
        let threads = match r.threads {
            0 => String::new(),
            1 => ", 1 thread".to_string(),
            n => format!(", {n} threads"),
        };
        let line = match r.source {
            Source::Live => format!(
                "PyTorch live: measured in this invocation on this machine by \
                 `benches/pytorch/bench_models.py` (torch {}{threads}).",
                r.torch
            ),
            Source::Stored => {
                let measured = r.machine.as_ref().map_or_else(
                    || "an unrecorded machine".to_string(),
                    PeerMachine::describe,
                );
                let verdict = if r.on_machine(machine) {
                    format!(
                        "the same CPU model and core count as this machine ({this}), another run"
                    )
                } else {
                    cross = true;
                    format!("not this machine ({this}); ratios across machines are not comparable")
                };
                format!(
                    "PyTorch stored: `{STORED_FILE}`, measured on {measured} (torch {}{threads}) \
                     — {verdict}.",
                    r.torch
                )
            }
        };
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if cross {
        lines.push(
            "`*`: the ratio divides numbers measured on different machines; read it as a rough \
             scale, not as a comparison."
                .to_string(),
        );
    }
    lines.iter().map(|l| format!("{l}  \n")).collect()
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

    #[test]
    fn every_stored_record_names_its_machine() {
        for text in [PASS1, PASS2] {
            let records = parse(text);
            assert!(records.len() >= 5);
            for record in records {
                let bench = record["bench"].as_str().unwrap();
                let r = from_record(bench, &record, None, Source::Stored);
                let machine = r
                    .machine
                    .unwrap_or_else(|| panic!("{bench}: no machine in {record}"));
                assert_eq!(machine.cpu, "AMD EPYC (model not recorded)", "{bench}");
                assert_eq!(machine.cores, 2, "{bench}");
                assert_eq!(machine.date, "2026-11-28", "{bench}");
                assert_eq!((r.torch.as_str(), r.threads), ("2.15.0+cu132", 2));
            }
        }
    }

    #[test]
    fn stored_numbers_from_another_cpu_say_so() {
        let stored = reference("resnet_train").unwrap();
        let here = json!({"cpu": "Intel(R) Xeon(R) Processor", "cores": 2});
        assert!(!stored.on_machine(&here));
        let text = provenance(&[&stored], &here);
        assert!(
            text.contains(
                "measured on AMD EPYC (model not recorded), 2 cores, 2026-11-28 \
                 (torch 2.15.0+cu132, 2 threads) — not this machine (Intel(R) Xeon(R) \
                 Processor, 2 cores); ratios across machines are not comparable"
            ),
            "{text}"
        );
        assert!(text.contains("`*`: the ratio divides"), "{text}");
        assert!(!text.contains("same machine"), "{text}");

        let same = json!({"cpu": "AMD EPYC (model not recorded)", "cores": 2});
        let text = provenance(&[&stored], &same);
        assert!(text.contains("the same CPU model and core count"), "{text}");
        assert!(!text.contains('*'), "{text}");
    }

    #[test]
    fn a_live_number_is_on_this_machine() {
        let here = json!({"cpu": "Intel(R) Xeon(R) Processor", "cores": 2});
        let mut live = reference("resnet_train").unwrap();
        live.source = Source::Live;
        live.machine = None;
        let stored = reference("resnet_train_cl").unwrap();
        assert!(live.on_machine(&here));
        assert!(!live.same_machine_as(&stored, &here));
        assert!(stored.same_machine_as(&reference("resnet_train").unwrap(), &here));
        let mut unrecorded = stored.clone();
        unrecorded.machine = None;
        assert!(!unrecorded.same_machine_as(&unrecorded, &here));
        let text = provenance(&[&live], &here);
        assert!(
            text.contains("PyTorch live: measured in this invocation on this machine"),
            "{text}"
        );
        assert!(text.contains("torch 2.15.0+cu132, 2 threads"), "{text}");
        assert!(!text.contains('*'), "{text}");
    }
}

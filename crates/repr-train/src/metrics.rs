//! The metrics log: `metrics.jsonl` (one JSON object per line) and `metrics.csv`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{RunDir, TrainError};

/// One logged measurement: a training interval or an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRecord {
    /// `train` (mean over the steps since the previous record) or `test`.
    pub split: String,
    /// Epoch, counting fractions: 2.5 is half-way through the third epoch.
    pub epoch: f64,
    /// Optimizer steps taken.
    pub step: usize,
    /// Mean loss (none for the evaluation of an embedding method, which has no test loss).
    pub loss: Option<f64>,
    /// Top-1 accuracy in [0, 1]: classifier accuracy (supervised), contrastive accuracy on the
    /// training batches (SimCLR).
    pub accuracy: Option<f64>,
    /// kNN top-1 accuracy of the embeddings on the test split (embedding methods).
    #[serde(default)]
    pub knn_top1: Option<f64>,
    /// Linear-probe top-1 accuracy on the test split (embedding methods with
    /// `eval.linear_probe`).
    #[serde(default)]
    pub linear_top1: Option<f64>,
    /// Learning rate of the last step.
    pub lr: Option<f64>,
    /// Training images per second over the interval.
    pub images_per_second: Option<f64>,
    /// Seconds since the run started (summed over resumed sessions).
    pub wall_seconds: f64,
}

/// Appends records to the run's metrics files (a resumed run continues them).
pub struct MetricsLog {
    jsonl: File,
    csv: File,
    path: PathBuf,
}

const CSV_HEADER: &str =
    "split,epoch,step,loss,accuracy,knn_top1,linear_top1,lr,images_per_second,wall_seconds\n";

impl MetricsLog {
    /// Opens (or creates) the run's metrics files for appending.
    pub fn open(run: &RunDir) -> Result<Self, TrainError> {
        let append = |path: PathBuf| {
            drop_torn_line(&path).map_err(TrainError::io(&path))?;
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(TrainError::io(path))
        };
        let jsonl = append(run.metrics())?;
        let mut csv = append(run.metrics_csv())?;
        let csv_path = run.metrics_csv();
        if csv.metadata().map_err(TrainError::io(&csv_path))?.len() == 0 {
            csv.write_all(CSV_HEADER.as_bytes())
                .map_err(TrainError::io(&csv_path))?;
        }
        Ok(Self {
            jsonl,
            csv,
            path: run.metrics(),
        })
    }

    /// Appends one record to both files and flushes, so a crash loses at most this line.
    pub fn write(&mut self, record: &MetricRecord) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let row = format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            record.split,
            record.epoch,
            record.step,
            opt(record.loss),
            opt(record.accuracy),
            opt(record.knn_top1),
            opt(record.linear_top1),
            opt(record.lr),
            opt(record.images_per_second),
            record.wall_seconds
        );
        // One write per line, so a kill leaves at most one torn line, which `open` drops.
        self.jsonl
            .write_all(line.as_bytes())
            .and_then(|_| self.jsonl.flush())
            .and_then(|_| self.csv.write_all(row.as_bytes()))
            .and_then(|_| self.csv.flush())
            .map_err(TrainError::io(&self.path))
    }

    /// Reads every record of a run's `metrics.jsonl` (for plots and tests).
    pub fn read(run: &RunDir) -> Result<Vec<MetricRecord>, TrainError> {
        let path = run.metrics();
        let text = std::fs::read_to_string(&path).map_err(TrainError::io(&path))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|e| TrainError::Checkpoint {
                    path: path.clone(),
                    reason: format!("bad metrics line `{l}`: {e}"),
                })
            })
            .collect()
    }
}

/// A run killed mid-write may leave a last line without its newline: cut it off before
/// appending, so the log stays one record per line.
fn drop_torn_line(path: &std::path::Path) -> std::io::Result<()> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(()); // Not there yet.
    };
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(keep as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunMode;

    fn record(step: usize) -> MetricRecord {
        MetricRecord {
            split: "train".into(),
            epoch: 0.5,
            step,
            loss: Some(1.25),
            accuracy: Some(0.5),
            knn_top1: None,
            linear_top1: None,
            lr: Some(0.1),
            images_per_second: None,
            wall_seconds: 3.0,
        }
    }

    #[test]
    fn appends_across_sessions_and_drops_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::open(dir.path().join("run"), RunMode::New).unwrap();
        run.begin().unwrap();
        MetricsLog::open(&run).unwrap().write(&record(1)).unwrap();
        // A kill in the middle of the second line.
        let mut file = OpenOptions::new().append(true).open(run.metrics()).unwrap();
        file.write_all(b"{\"split\":\"tra").unwrap();
        MetricsLog::open(&run).unwrap().write(&record(2)).unwrap();
        let records = MetricsLog::read(&run).unwrap();
        assert_eq!(records, vec![record(1), record(2)]);
        let csv = std::fs::read_to_string(run.metrics_csv()).unwrap();
        assert_eq!(csv.lines().count(), 3, "{csv}");
        assert!(csv.starts_with("split,epoch,step"));
    }
}

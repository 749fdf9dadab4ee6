//! The training curves of a run (`curves.png`), drawn from its metrics log.

use repr_eval::Series;

use crate::{MetricsLog, RunDir, TrainError};

/// Draws loss, learning rate and the test metric against epochs into `curves.png`.
pub(crate) fn training_curves(run: &RunDir) -> Result<(), TrainError> {
    let records = MetricsLog::read(run)?;
    let series =
        |name: &str, split: &str, value: &dyn Fn(&crate::MetricRecord) -> Option<f64>| Series {
            name: name.to_string(),
            points: records
                .iter()
                .filter(|r| r.split == split)
                .filter_map(|r| value(r).map(|v| (r.epoch, v)))
                .collect(),
        };
    let mut panels = vec![
        (
            "loss".to_string(),
            vec![series("train loss", "train", &|r| r.loss)],
        ),
        (
            "learning rate".to_string(),
            vec![series("lr", "train", &|r| r.lr)],
        ),
    ];
    let metric: Vec<Series> = [
        series("train accuracy", "train", &|r| {
            r.accuracy.map(|a| 100.0 * a)
        }),
        series("test accuracy", "test", &|r| r.accuracy.map(|a| 100.0 * a)),
        series("test kNN top-1", "test", &|r| r.knn_top1.map(|a| 100.0 * a)),
        series("test linear top-1", "test", &|r| {
            r.linear_top1.map(|a| 100.0 * a)
        }),
    ]
    .into_iter()
    .filter(|s| !s.points.is_empty())
    .collect();
    if !metric.is_empty() {
        panels.push(("percent".to_string(), metric));
    }
    let path = run.root().join("curves.png");
    repr_eval::plot_curves("training curves", "epoch", &panels, &path).map_err(|e| {
        TrainError::Eval {
            what: "training curves".into(),
            message: format!("{}: {e}", path.display()),
        }
    })
}

//! A run's evaluations: the per-epoch test metric and the final report, chosen by the method's
//! [`Evaluation`](crate::Evaluation).

use burn::tensor::Device;

use crate::data::RunData;
use crate::progress::Progress;
use crate::represent::{final_report, knn_and_linear};
use crate::{
    Accuracy, EvalSummary, Evaluation, Method, MetricRecord, RunDir, TrainConfig, TrainError,
    TrainState, accuracy,
};

/// A test result: classifier accuracy, or kNN (and linear-probe) top-1 of the embeddings.
pub(crate) enum Test {
    Classifier(Accuracy),
    Embedding { knn: f64, linear: Option<f64> },
}

/// The final evaluation: the last test record and what `summary.json` reports.
pub(crate) struct Final {
    pub test: Test,
    pub eval: EvalSummary,
    pub baselines: Option<crate::Baselines>,
    /// The representation report (Markdown) of an embedding method.
    pub table: Option<String>,
}

/// The per-epoch test metric of `model`.
pub(crate) fn evaluate(
    model: &Method,
    data: &RunData,
    config: &TrainConfig,
    progress: Progress,
    device: &Device,
) -> Result<Test, TrainError> {
    Ok(match config.method.evaluation() {
        Evaluation::Classifier => Test::Classifier(accuracy(
            model.backbone(),
            data.test.clone(),
            &data.normalize,
            config.eval_batch_size,
            device,
        )),
        Evaluation::Embedding => {
            let (knn, linear) =
                knn_and_linear(model, &data.eval_sets(config, progress), config, device)?;
            Test::Embedding { knn, linear }
        }
    })
}

/// The final evaluation: classifier accuracy, or the representation report (kNN, linear probe,
/// retrieval, baselines, pictures), whose kNN is also the last test record (the embeddings of
/// both splits are computed once).
pub(crate) fn final_evaluation(
    model: &Method,
    data: &RunData,
    config: &TrainConfig,
    run: &RunDir,
    progress: Progress,
    device: &Device,
) -> Result<Final, TrainError> {
    if config.method.evaluation() == Evaluation::Classifier {
        let test = evaluate(model, data, config, progress, device)?;
        let Test::Classifier(accuracy) = &test else {
            unreachable!("a classifier is evaluated as one")
        };
        let eval = EvalSummary {
            accuracy: Some(accuracy.accuracy),
            loss: Some(accuracy.loss),
            ..EvalSummary::default()
        };
        return Ok(Final {
            test,
            eval,
            baselines: None,
            table: None,
        });
    }
    progress.message("evaluating the representation (kNN, linear probe, retrieval, baselines)");
    let sets = data.eval_sets(config, progress);
    let report = final_report(model, &sets, config, run, device)?;
    let knn = report.eval.knn_top1.expect("the report always has kNN");
    Ok(Final {
        test: Test::Embedding {
            knn,
            linear: report.eval.linear_top1,
        },
        eval: report.eval,
        baselines: report.baselines,
        table: Some(report.table),
    })
}

impl Test {
    pub fn describe(&self) -> String {
        match self {
            Test::Classifier(t) => {
                format!("loss {:.4}, accuracy {:.2}%", t.loss, 100.0 * t.accuracy)
            }
            Test::Embedding { knn, linear } => match linear {
                Some(linear) => format!(
                    "kNN top-1 {:.2}%, linear top-1 {:.2}%",
                    100.0 * knn,
                    100.0 * linear
                ),
                None => format!("kNN top-1 {:.2}%", 100.0 * knn),
            },
        }
    }

    /// The test record of this result at `state`.
    pub fn record(
        &self,
        state: TrainState,
        steps_per_epoch: usize,
        wall_seconds: f64,
    ) -> MetricRecord {
        let (loss, accuracy, knn_top1, linear_top1) = match self {
            Test::Classifier(t) => (Some(t.loss), Some(t.accuracy), None, None),
            Test::Embedding { knn, linear } => (None, None, Some(*knn), *linear),
        };
        MetricRecord {
            split: "test".into(),
            epoch: state.epoch as f64 + state.batch_in_epoch as f64 / steps_per_epoch as f64,
            step: state.global_step,
            loss,
            accuracy,
            knn_top1,
            linear_top1,
            lr: None,
            images_per_second: None,
            wall_seconds,
        }
    }
}

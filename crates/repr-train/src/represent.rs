//! Evaluation of a learned representation: embeddings of both splits, kNN and linear probe on
//! the test split with the training split as memory, retrieval metrics, the raw-pixel and
//! random-init baselines, and the run's pictures.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use repr_backbones::Pooling;
use repr_data::{ImageDataset, Normalize};
use repr_eval::{Embeddings, KnnConfig, LinearProbeConfig};

use crate::progress::Progress;
use crate::{EvalSummary, Method, RunDir, TrainConfig, TrainError};

/// The images an evaluation uses: memory (training split, possibly limited) and queries.
pub(crate) struct EvalSets {
    pub memory: Arc<ImageDataset>,
    pub test: Arc<ImageDataset>,
    pub normalize: Normalize,
    /// `eval.pooling` of the run.
    pub pooling: Option<Pooling>,
    /// Where each stage's progress goes.
    pub progress: Progress,
}

/// Embeddings of every image of `dataset`, in order, with `method` in inference mode: repr-eval's
/// one embedding loop with the method's representation as the encoder.
pub(crate) fn embed_split(
    method: &Method,
    dataset: Arc<ImageDataset>,
    sets: &EvalSets,
    what: &str,
    batch_size: usize,
    device: &Device,
) -> Result<Embeddings, TrainError> {
    let (normalize, pooling) = (&sets.normalize, sets.pooling);
    let started = Instant::now();
    let method = method.valid();
    let len = dataset.len();
    repr_eval::embed_with(
        &dataset,
        normalize,
        batch_size,
        device,
        |images| method.represent(images, pooling),
        |done| sets.progress.stage(what, done, len, "images", started),
    )
    .map_err(|e| eval_error(what, e))
}

fn labels(dataset: &ImageDataset) -> Vec<u32> {
    dataset.labels().to_vec()
}

fn knn_config(config: &TrainConfig) -> KnnConfig {
    KnnConfig {
        k: config.eval.knn_k,
        temperature: config.eval.knn_temperature,
        ..KnnConfig::default()
    }
}

fn eval_error(what: &str, e: impl std::fmt::Display) -> TrainError {
    TrainError::Eval {
        what: what.into(),
        message: e.to_string(),
    }
}

/// Embeddings of the memory and the test split, with `method` in inference mode; `who` names
/// the representation in the progress lines.
fn embed_sets(
    method: &Method,
    sets: &EvalSets,
    who: &str,
    batch_size: usize,
    device: &Device,
) -> Result<(Embeddings, Embeddings), TrainError> {
    let embed = |dataset: &Arc<ImageDataset>, what: &str| {
        let what = format!("{who}: embedding the {what}");
        embed_split(method, dataset.clone(), sets, &what, batch_size, device)
    };
    Ok((
        embed(&sets.memory, "memory")?,
        embed(&sets.test, "test split")?,
    ))
}

/// kNN top-1 of `method`'s embeddings.
pub(crate) fn knn_and_linear(
    method: &Method,
    sets: &EvalSets,
    config: &TrainConfig,
    device: &Device,
) -> Result<(f64, Option<f64>), TrainError> {
    let who = config.method.kind();
    let (memory, test) = embed_sets(method, sets, who, config.eval_batch_size, device)?;
    Ok((
        knn(&memory, &test, sets, config, who, device)?,
        linear(&memory, &test, sets, config, who, device)?,
    ))
}

fn knn(
    memory: &Embeddings,
    test: &Embeddings,
    sets: &EvalSets,
    config: &TrainConfig,
    who: &str,
    device: &Device,
) -> Result<f64, TrainError> {
    let device = device.clone().without_autodiff();
    let (stage, started) = (
        format!("{who}: kNN (k={})", config.eval.knn_k),
        Instant::now(),
    );
    sets.progress.stage(&stage, 0, test.len, "queries", started);
    let top1 = repr_eval::knn_classify(
        memory,
        &labels(&sets.memory),
        test,
        &labels(&sets.test),
        sets.memory.num_classes(),
        &knn_config(config),
        &device,
    )
    .map(|r| r.top1)
    .map_err(|e| eval_error("kNN", e))?;
    sets.progress
        .stage(&stage, test.len, test.len, "queries", started);
    Ok(top1)
}

fn linear(
    memory: &Embeddings,
    test: &Embeddings,
    sets: &EvalSets,
    config: &TrainConfig,
    who: &str,
    device: &Device,
) -> Result<Option<f64>, TrainError> {
    if !config.eval.linear_probe {
        return Ok(None);
    }
    let probe = LinearProbeConfig {
        epochs: config.eval.linear_epochs,
        ..LinearProbeConfig::default()
    };
    let (stage, started) = (format!("{who}: linear probe"), Instant::now());
    sets.progress
        .stage(&stage, 0, probe.epochs, "epochs", started);
    repr_eval::linear_probe_with_progress(
        memory,
        &labels(&sets.memory),
        test,
        &labels(&sets.test),
        sets.memory.num_classes(),
        &probe,
        &device.clone().without_autodiff(),
        &mut |done| {
            sets.progress
                .stage(&stage, done, probe.epochs, "epochs", started)
        },
    )
    .map(|r| Some(r.test_top1))
    .map_err(|e| eval_error("linear probe", e))
}

/// One row of the final table.
struct Row {
    name: String,
    knn: f64,
    linear: Option<f64>,
}

/// The final evaluation of an embedding method: kNN, linear probe and retrieval on the test
/// split, the baselines, the pictures, and a printable table.
pub(crate) struct Report {
    pub eval: EvalSummary,
    pub baselines: Option<crate::Baselines>,
    pub table: String,
}

pub(crate) fn final_report(
    method: &Method,
    sets: &EvalSets,
    config: &TrainConfig,
    run: &RunDir,
    device: &Device,
) -> Result<Report, TrainError> {
    let batch = config.eval_batch_size;
    let who = config.method.kind();
    let (memory, test) = embed_sets(method, sets, who, batch, device)?;
    let plain = device.clone().without_autodiff();
    let knn_top1 = knn(&memory, &test, sets, config, who, device)?;
    let linear_top1 = linear(&memory, &test, sets, config, who, device)?;
    let retrieval = repr_eval::retrieval_metrics(
        &test,
        &labels(&sets.test),
        &memory,
        &labels(&sets.memory),
        &[1, 5, 10],
        false,
        &plain,
    )
    .map_err(|e| eval_error("retrieval", e))?;
    let recall_at_1 = retrieval.recall_at.first().map(|&(_, r)| r);
    let mut rows = vec![Row {
        name: format!("{} ({})", config.method.kind(), config.backbone.name()),
        knn: knn_top1,
        linear: linear_top1,
    }];

    let mut baselines = None;
    if config.eval.baselines {
        let raw_memory = repr_eval::raw_pixel_embeddings(&sets.memory, &sets.normalize);
        let raw_test = repr_eval::raw_pixel_embeddings(&sets.test, &sets.normalize);
        let raw = Row {
            name: "raw pixels".into(),
            knn: knn(&raw_memory, &raw_test, sets, config, "raw pixels", device)?,
            linear: linear(&raw_memory, &raw_test, sets, config, "raw pixels", device)?,
        };
        // Same architecture, same seed policy, no training.
        let facts = config.run_facts(sets.normalize.clone());
        let random = config.init_method(&facts, &plain)?;
        let who = "random-init network";
        let (random_memory, random_test) = embed_sets(&random, sets, who, batch, device)?;
        let random = Row {
            name: "random-init network".into(),
            knn: knn(&random_memory, &random_test, sets, config, who, device)?,
            linear: linear(&random_memory, &random_test, sets, config, who, device)?,
        };
        let scores = |row: &Row| crate::BaselineScores {
            knn_top1: row.knn,
            linear_top1: row.linear,
        };
        baselines = Some(crate::Baselines {
            raw_pixels: scores(&raw),
            random_init: scores(&random),
        });
        rows.push(raw);
        rows.push(random);
    }

    if config.eval.plots {
        pictures(&test, &memory, sets, run, &plain)?;
    }

    let mut table = format!(
        "test split: {} queries, memory: {} training images, kNN k={} T={}\n",
        sets.test.len(),
        sets.memory.len(),
        config.eval.knn_k,
        config.eval.knn_temperature
    );
    table.push_str("| representation | kNN top-1 | linear top-1 |\n| --- | ---: | ---: |\n");
    for row in &rows {
        let linear = row
            .linear
            .map(|l| format!("{:.2}%", 100.0 * l))
            .unwrap_or_else(|| "—".into());
        table.push_str(&format!(
            "| {} | {:.2}% | {} |\n",
            row.name,
            100.0 * row.knn,
            linear
        ));
    }
    table.push_str(&format!(
        "retrieval (test queries, training gallery): {}, mAP@R {:.4}\n",
        retrieval
            .recall_at
            .iter()
            .map(|(k, r)| format!("recall@{k} {:.2}%", 100.0 * r))
            .collect::<Vec<_>>()
            .join(", "),
        retrieval.map_at_r
    ));
    let embedding_std = normalised_std(&test);
    table.push_str(&format!(
        "embedding std (L2-normalised, mean over {} dims): {embedding_std:.4} (1/sqrt(dim) = {:.4})\n",
        test.dim,
        1.0 / (test.dim as f64).sqrt()
    ));
    Ok(Report {
        eval: EvalSummary {
            knn_top1: Some(knn_top1),
            linear_top1,
            recall_at_1,
            map_at_r: Some(retrieval.map_at_r),
            embedding_std: Some(embedding_std),
            ..EvalSummary::default()
        },
        baselines,
        table,
    })
}

/// Per-dimension standard deviation of the L2-normalised rows, averaged over dimensions.
fn normalised_std(e: &Embeddings) -> f64 {
    if e.len == 0 || e.dim == 0 {
        return 0.0;
    }
    let mut sum = vec![0.0f64; e.dim];
    let mut sum_sq = vec![0.0f64; e.dim];
    for row in e.data.chunks_exact(e.dim) {
        let norm = row
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        for (d, &v) in row.iter().enumerate() {
            let u = v as f64 / norm;
            sum[d] += u;
            sum_sq[d] += u * u;
        }
    }
    let n = e.len as f64;
    sum.iter()
        .zip(&sum_sq)
        .map(|(s, q)| (q / n - (s / n).powi(2)).max(0.0).sqrt())
        .sum::<f64>()
        / e.dim as f64
}

/// `embedding.png` (PCA of the test embeddings, by class) and `retrieval.png` (the first test
/// images and their nearest training images).
fn pictures(
    test: &Embeddings,
    memory: &Embeddings,
    sets: &EvalSets,
    run: &RunDir,
    device: &Device,
) -> Result<(), TrainError> {
    let points = repr_eval::pca_2d(test);
    repr_eval::plot_embedding(
        &points,
        &labels(&sets.test),
        sets.test.class_names(),
        &run.root().join("embedding.png"),
    )
    .map_err(|e| eval_error("embedding plot", e))?;
    let queries = 8.min(test.len);
    let query_set = Embeddings {
        data: test.data[..queries * test.dim].to_vec(),
        len: queries,
        dim: test.dim,
    };
    draw_retrieval(
        &query_set,
        memory,
        sets,
        8,
        &run.root().join("retrieval.png"),
        device,
    )
}

/// Draws the retrieval grid of `queries` (the first test images) against `gallery` (the
/// memory images) into `path`.
pub(crate) fn draw_retrieval(
    queries: &Embeddings,
    gallery: &Embeddings,
    sets: &EvalSets,
    k: usize,
    path: &std::path::Path,
    device: &Device,
) -> Result<(), TrainError> {
    let plain = device.clone().without_autodiff();
    let neighbours = repr_eval::nearest_neighbours(queries, gallery, k, false, &plain)
        .map_err(|e| eval_error("retrieval grid", e))?;
    let query_images: Vec<(&[u8], u32)> = (0..queries.len)
        .map(|i| (sets.test.image(i), sets.test.labels()[i]))
        .collect();
    let found: Vec<Vec<(&[u8], u32)>> = neighbours
        .indices
        .iter()
        .map(|row| {
            row.iter()
                .map(|&j| (sets.memory.image(j), sets.memory.labels()[j]))
                .collect()
        })
        .collect();
    let grid = repr_eval::retrieval_grid(&query_images, &found, sets.test.shape(), 3);
    grid.save(path)
        .map_err(|e| eval_error("retrieval grid", format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collapse_check_is_zero_for_a_collapsed_set_and_half_for_two_axes() {
        let collapsed = Embeddings {
            data: [0.6f32, 0.8].repeat(5),
            len: 5,
            dim: 2,
        };
        assert!(normalised_std(&collapsed) < 1e-7);
        // Rows alternate between the two axes (one scaled by 3: normalisation removes it):
        // each dimension is 0 or 1 half of the time, std 0.5.
        let axes = Embeddings {
            data: vec![1.0, 0.0, 0.0, 3.0, 1.0, 0.0, 0.0, 3.0],
            len: 4,
            dim: 2,
        };
        assert!((normalised_std(&axes) - 0.5).abs() < 1e-12);
    }
}

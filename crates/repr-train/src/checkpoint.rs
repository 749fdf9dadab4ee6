//! Checkpoints: model, optimizer and loop state in one file, written atomically.
//!
//! Three sections, each with its SHA-256 ([`crate::checkpoint_file`] has the layout): the
//! [`TrainState`] as JSON, the model's burnpack bytes, the optimizer's burnpack bytes. Loading
//! verifies every section, so a damaged file is an error naming it and the section, never
//! weights loaded silently. The file is written next to its destination, fsynced, renamed over
//! it and the folder fsynced, so a crash at any moment leaves either the old or the new
//! checkpoint, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// Where the training loop stands.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct TrainState {
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// Batches of `epoch` already trained on; the next batch has this index.
    pub batch_in_epoch: usize,
    /// Optimizer steps taken since the start of the run.
    pub global_step: usize,
    /// Seconds the run has taken so far, over all sessions.
    pub wall_seconds: f64,
    /// Seconds spent in training steps (not evaluation) so far.
    pub train_seconds: f64,
    /// Images trained on so far.
    pub images_trained: u64,
}

/// The path (`encoder.layer1.0.bn1.running_var`) of the first float tensor of `model`, a
/// parameter or a running statistic, that holds a NaN or an infinity; `None` when all are
/// finite. One host read for the whole model.
pub fn non_finite_tensor<M: Module>(model: &M) -> Option<String> {
    let mut visitor = FiniteVisitor::default();
    model.visit(&mut visitor);
    if visitor.flags.is_empty() {
        return None;
    }
    let flags = burn::tensor::Tensor::cat(visitor.flags, 0).into_data();
    let flags = flags.iter::<bool>().collect::<Vec<_>>();
    let first = flags.iter().position(|&bad| bad)?;
    Some(visitor.paths.swap_remove(first))
}

#[derive(Default)]
struct FiniteVisitor {
    path: Vec<String>,
    paths: Vec<String>,
    flags: Vec<burn::tensor::Tensor<1, burn::tensor::Bool>>,
}

impl burn::module::ModuleVisitor for FiniteVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        // The derived `visit` enters every field, the parameter's own name included.
        self.paths.push(self.path.join("."));
        let flat: burn::tensor::Tensor<1> = param.val().flatten(0, D - 1);
        self.flags.push(flat.is_finite().bool_not().any());
    }
}

/// Loads burnpack `bytes` (a checkpoint's model section, a `model.bpk`) into `model`.
///
/// Records written before ResNets got the normalisation option name BatchNorm tensors
/// `…bn1.gamma`; the layer is now an enum (`…bn1.Batch.gamma`). Such a record is renamed and
/// loaded, so runs from before the change still resume and evaluate.
pub(crate) fn load_module_bytes<M: Module>(model: M, bytes: Bytes) -> Result<M, String> {
    let record =
        ModuleRecord::from_bytes(bytes.clone()).map_err(|e| format!("model record: {e}"))?;
    match model.clone().try_load_record(record) {
        Ok(model) => Ok(model),
        Err(error) => {
            let error = format!("does not fit this model (another backbone config?): {error}");
            match migrate_norm_paths(bytes) {
                Some(migrated) => ModuleRecord::from_bytes(migrated)
                    .ok()
                    .and_then(|record| model.try_load_record(record).ok())
                    .ok_or(error),
                None => Err(error),
            }
        }
    }
}

/// The record with `ResNet…bnN.x` renamed `ResNet…bnN.Batch.x`; `None` when no name changes.
fn migrate_norm_paths(bytes: Bytes) -> Option<Bytes> {
    use burn::store::burn_pack::{Reader, Writer};
    let mut tensors = Reader::from_bytes(bytes).ok()?.into_tensors().ok()?;
    let mut changed = false;
    for tensor in &mut tensors {
        let segments: Vec<&str> = tensor.name.split('.').collect();
        if !segments.contains(&"ResNet") {
            continue;
        }
        let mut renamed = Vec::with_capacity(segments.len() + 1);
        for (i, segment) in segments.iter().enumerate() {
            renamed.push(*segment);
            let is_norm = *segment == "bn"
                || (segment.len() == 3
                    && segment.starts_with("bn")
                    && segment[2..].parse::<u8>().is_ok());
            let next = segments.get(i + 1).copied();
            if is_norm && i + 2 == segments.len() && !matches!(next, Some("Batch" | "Group")) {
                renamed.push("Batch");
                changed = true;
            }
        }
        tensor.name = renamed.join(".");
    }
    changed
        .then(|| Writer::new(tensors).into_bytes().ok())
        .flatten()
}

/// A saved training state.
pub struct Checkpoint {
    /// The loop position.
    pub state: TrainState,
    /// Model parameters and buffers (burnpack).
    pub model: Bytes,
    /// Optimizer state (burnpack).
    pub optimizer: Bytes,
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("state", &self.state)
            .field("model_bytes", &self.model.len())
            .field("optimizer_bytes", &self.optimizer.len())
            .finish()
    }
}

impl Checkpoint {
    /// Captures the model and optimizer. `model` is the evaluation view of the training
    /// module (`valid()`), which has BatchNorm's pending running-statistics update folded in;
    /// a record of the training module itself would lag one step behind.
    pub fn capture<M: Module>(
        state: TrainState,
        model: M,
        optimizer: &ModuleOptimizer,
    ) -> Result<Self, String> {
        let model = model
            .into_record()
            .into_bytes()
            .map_err(|e| format!("serializing the model: {e}"))?;
        let optimizer = optimizer
            .into_bytes()
            .map_err(|e| format!("serializing the optimizer: {e}"))?;
        Ok(Self {
            state,
            model,
            optimizer,
        })
    }

    /// Writes the checkpoint atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let state = serde_json::to_vec(&self.state).expect("TrainState serializes");
        write_atomic(
            path,
            &crate::checkpoint_file::encode(&state, &self.model, &self.optimizer),
        )
    }

    /// Reads a checkpoint, checking its magic and section lengths.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        Self::parse(&Self::read_bytes(path)?, path)
    }

    /// The bytes of the checkpoint file at `path` (not checked yet).
    pub fn read_bytes(path: &Path) -> Result<Vec<u8>, TrainError> {
        std::fs::read(path).map_err(|e| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason: if e.kind() == std::io::ErrorKind::NotFound {
                "not found".into()
            } else {
                e.to_string()
            },
        })
    }

    /// A checkpoint from the bytes of a checkpoint file (read from `path`, which errors name),
    /// checking its magic, section lengths and section checksums.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, TrainError> {
        let bad = |reason: String| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        };
        let sections = crate::checkpoint_file::decode(bytes).map_err(|e| bad(e.to_string()))?;
        let state = serde_json::from_slice(sections.state)
            .map_err(|e| bad(format!("state section: {e}")))?;
        Ok(Self {
            state,
            model: Bytes::from_bytes_vec(sections.model.to_vec()),
            optimizer: Bytes::from_bytes_vec(sections.optimizer.to_vec()),
        })
    }

    /// The loop position of the checkpoint file at `path`, from its first bytes only (not
    /// verified): `None` when the file cannot be read or does not start like a checkpoint.
    pub fn peek_state(path: &Path) -> Option<TrainState> {
        use std::io::Read;
        let mut head = Vec::with_capacity(4096);
        File::open(path)
            .ok()?
            .take(4096)
            .read_to_end(&mut head)
            .ok()?;
        serde_json::from_slice(crate::checkpoint_file::peek_state(&head)?).ok()
    }

    /// Applies the saved parameters to `model` (which must have the same architecture).
    pub fn restore_model<M: Module>(&self, model: M, path: &Path) -> Result<M, TrainError> {
        load_module_bytes(model, self.model.clone()).map_err(|reason| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Applies the saved optimizer state.
    pub fn restore_optimizer(
        &self,
        optimizer: ModuleOptimizer,
        path: &Path,
    ) -> Result<ModuleOptimizer, TrainError> {
        optimizer
            .from_bytes(self.optimizer.clone())
            .map_err(|e| TrainError::Checkpoint {
                path: path.to_path_buf(),
                reason: format!("optimizer section: {e}"),
            })
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename, fsync of the folder).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        sync_parent(path)
    };
    write().map_err(|error| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::Io {
            path: path.to_path_buf(),
            error,
        }
    })
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    repr_testing::backend_tests!(the_first_non_finite_tensor_is_named_by_its_path);

    /// A record from before the ResNet normalisation option (`bn1.gamma` instead of
    /// `bn1.Batch.gamma`) still loads, with the same values.
    #[test]
    fn records_with_the_old_batch_norm_paths_load() {
        use burn::store::burn_pack::{Reader, Writer};
        use repr_backbones::{BackboneConfig, BlockKind, ResNetConfig, Stem};
        let device = burn::tensor::Device::flex();
        let config = BackboneConfig::from(
            ResNetConfig::new([1, 1, 1, 1], BlockKind::Basic)
                .with_stem(Stem::Cifar)
                .with_width(4)
                .with_in_channels(1),
        );
        let trained = config.init(&device);
        let bytes = trained.clone().into_record().into_bytes().unwrap();
        let mut tensors = Reader::from_bytes(bytes).unwrap().into_tensors().unwrap();
        let mut old_names = 0;
        for t in &mut tensors {
            if t.name.contains(".Batch.") {
                t.name = t.name.replace(".Batch.", ".");
                old_names += 1;
            }
        }
        assert!(old_names >= 40, "{old_names}");
        let old = Writer::new(tensors).into_bytes().unwrap();
        let fresh = config.init(&device);
        let loaded = load_module_bytes(fresh, old).unwrap();
        let values = |b: &repr_backbones::Backbone| {
            use burn::store::ModuleSnapshot;
            b.collect(None, None, false)
                .into_iter()
                .map(|t| (t.name.clone(), t.to_bytes().unwrap().to_vec()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let (loaded, trained_values) = (values(&loaded), values(&trained));
        assert_eq!(loaded.len(), trained_values.len());
        let differing: Vec<&String> = loaded
            .iter()
            .filter(|(name, v)| trained_values.get(*name) != Some(v))
            .map(|(name, _)| name)
            .collect();
        assert!(differing.is_empty(), "{differing:?}");
        // A record of another architecture still fails, with the first error.
        let wider = BackboneConfig::from(ResNetConfig::resnet18().with_width(8)).init(&device);
        let err = load_module_bytes(wider, trained.into_record().into_bytes().unwrap());
        assert!(err.unwrap_err().contains("does not fit"));
    }

    fn the_first_non_finite_tensor_is_named_by_its_path(device: &burn::tensor::Device) {
        use burn::module::Param;
        use burn::nn::LinearConfig;
        use burn::tensor::Tensor;
        let mut linear = LinearConfig::new(3, 2).init(device);
        assert_eq!(non_finite_tensor(&linear), None);
        let bias = Tensor::<1>::from_floats([0.0, f32::INFINITY], device);
        linear.bias = Some(Param::from_tensor(bias));
        assert_eq!(non_finite_tensor(&linear).as_deref(), Some("bias"));
        let weight = Tensor::<2>::from_floats([[0.0, 1.0, 2.0], [3.0, f32::NAN, 5.0]], device);
        linear.weight = Param::from_tensor(weight);
        assert_eq!(non_finite_tensor(&linear).as_deref(), Some("weight"));
    }

    fn sample() -> Checkpoint {
        Checkpoint {
            state: TrainState {
                epoch: 2,
                batch_in_epoch: 17,
                global_step: 1234,
                wall_seconds: 12.5,
                train_seconds: 10.0,
                images_trained: 99,
            },
            model: Bytes::from_bytes_vec(vec![1, 2, 3, 4]),
            optimizer: Bytes::from_bytes_vec(vec![9; 10]),
        }
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        sample().save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.state, sample().state);
        assert_eq!(&back.model[..], &[1, 2, 3, 4]);
        assert_eq!(&back.optimizer[..], &[9; 10]);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn truncated_or_foreign_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        sample().save(&path).unwrap();
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 3]).unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("last.ckpt") && err.contains("truncated"),
            "{err}"
        );
        std::fs::write(&path, b"hello").unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("bad magic"), "{err}");
        let err = Checkpoint::load(&dir.path().join("missing.ckpt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.ckpt") && err.contains("not found"),
            "{err}"
        );
    }
}

//! torchvision ResNet weights in a repr [`ResNet`].
//!
//! The key table is on [`ResNet::load_torchvision`].

use std::path::Path;

use super::ResNet;
use crate::{ImportError, StateDict};

/// torchvision's name for a key of the shortcut's `nn.Sequential` → repr's field name.
fn torchvision_to_repr(key: &str) -> String {
    key.replace(".downsample.0.", ".downsample.conv.")
        .replace(".downsample.1.", ".downsample.bn.")
}

impl ResNet {
    /// Loads a torchvision ResNet state dict from `path` (`.safetensors` F32/F16/BF16, or a
    /// `torch.save`d `.pt`/`.pth`) by the table below; BatchNorm running
    /// statistics are loaded too. Parameters and keys under the `ignore` prefixes (repr paths,
    /// e.g. `["fc."]` to put a pre-trained body under a new classifier) are left as they are.
    ///
    /// repr's ResNet keeps torchvision's field names, so most keys map onto themselves. The table,
    /// torchvision key → repr parameter path (paths shown without the enum variants `ResNet`,
    /// `Basic`, `Bottleneck`, which the loader skips):
    ///
    /// | torchvision | repr | note |
    /// | --- | --- | --- |
    /// | `conv1.weight` `[w, c, k, k]` | `conv1.weight` | `k` = 7 (ImageNet stem) or 3 (CIFAR stem) |
    /// | `bn1.weight`, `bn1.bias` | `bn1.gamma`, `bn1.beta` | the same for every BatchNorm |
    /// | `bn1.running_mean`, `bn1.running_var` | `bn1.running_mean`, `bn1.running_var` | |
    /// | `layer{i}.{j}.conv{k}.weight` | `layer{i}.{j}.conv{k}.weight` | `k` ≤ 2 (basic) or 3 (bottleneck) |
    /// | `layer{i}.{j}.bn{k}.*` | `layer{i}.{j}.bn{k}.*` | as `bn1` |
    /// | `layer{i}.0.downsample.0.weight` | `layer{i}.0.downsample.conv.weight` | 1×1 shortcut conv |
    /// | `layer{i}.0.downsample.1.*` | `layer{i}.0.downsample.bn.*` | its BatchNorm, as `bn1` |
    /// | `fc.weight` `[out, in]`, `fc.bias` | `fc.weight` `[in, out]`, `fc.bias` | transposed |
    /// | `*.num_batches_tracked` | — | dropped when reading |
    ///
    /// # Errors
    /// [`ImportError::Read`] for an unreadable file, [`ImportError::Dtype`] for an integer
    /// tensor, [`ImportError::Shapes`] naming each tensor whose shape does not fit (e.g.
    /// `fc.weight` for another number of classes, `conv1.weight` for another stem), and
    /// [`ImportError::Keys`] listing missing and unexpected keys (e.g. `fc.*` for a model
    /// without a head, `layer1.2.*` for a deeper model).
    pub fn load_torchvision(self, path: &Path, ignore: &[&str]) -> Result<Self, ImportError> {
        self.load_state_dict(StateDict::read(path)?, ignore)
    }

    /// [`load_torchvision`](Self::load_torchvision) from a state dict already read, with
    /// torchvision's key names.
    ///
    /// # Errors
    /// As [`load_torchvision`](Self::load_torchvision), without the reading errors.
    pub fn load_state_dict(self, dict: StateDict, ignore: &[&str]) -> Result<Self, ImportError> {
        dict.rename_keys(torchvision_to_repr)
            .load_into(self, ignore)
    }
}

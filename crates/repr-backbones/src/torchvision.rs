//! Loading PyTorch weights with torchvision's parameter names into a [`Backbone`].
//!
//! Each variant has its own key table, documented on its loader:
//! [`ResNet::load_torchvision`](crate::ResNet::load_torchvision),
//! [`ViT::load_torchvision`](crate::ViT::load_torchvision).

use std::path::Path;

use crate::{Backbone, ImportError, StateDict};

impl Backbone {
    /// Loads a torchvision state dict from `path` (`.safetensors` F32/F16/BF16, or a
    /// `torch.save`d `.pt`/`.pth`) by the variant's key table, leaving the parameters under the
    /// `ignore` prefixes (repr paths without variant names, e.g. `"fc."`) as they are.
    ///
    /// # Errors
    /// [`ImportError::Read`] for an unreadable file or extension, [`ImportError::Dtype`] for a
    /// non-float tensor, [`ImportError::Shapes`] naming every tensor whose shape does not fit,
    /// [`ImportError::Keys`] listing missing and unexpected keys.
    pub fn load_torchvision(self, path: &Path, ignore: &[&str]) -> Result<Self, ImportError> {
        let dict = StateDict::read(path)?;
        match self {
            Self::ResNet(model) => model.load_state_dict(dict, ignore).map(Self::ResNet),
            Self::ViT(model) => model.load_state_dict(dict, ignore).map(Self::ViT),
        }
    }
}

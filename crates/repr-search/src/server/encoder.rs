//! The model a server embeds query images with, as the caller supplies it.

use std::fmt;
use std::sync::Arc;

use burn::tensor::{Device, Tensor};

/// The encoder of query images: the same function of the same model that built the index,
/// from a batch of preprocessed images `[n, channels, height, width]` to vectors `[n, dim]`,
/// and the device it runs on. It is called on blocking threads, a bounded number at a time
/// ([`crate::server::ServerConfig::max_concurrent_embeddings`]).
#[derive(Clone)]
pub struct QueryEncoder {
    encode: Arc<dyn Fn(Tensor<4>) -> Tensor<2> + Send + Sync>,
    device: Device,
}

impl QueryEncoder {
    /// An encoder running `encode` on `device` (without autodiff).
    pub fn new(
        device: Device,
        encode: impl Fn(Tensor<4>) -> Tensor<2> + Send + Sync + 'static,
    ) -> Self {
        Self {
            encode: Arc::new(encode),
            device,
        }
    }

    /// The device the encoder runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Encodes a batch.
    ///
    /// # Shapes
    /// - `images`: `[n, channels, height, width]`
    /// - output: `[n, dim]`
    pub fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        (self.encode)(images)
    }
}

impl fmt::Debug for QueryEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryEncoder")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

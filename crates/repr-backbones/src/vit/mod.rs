//! Vision Transformer (Dosovitskiy et al. 2020, "An Image is Worth 16x16 Words: Transformers
//! for Image Recognition at Scale") with torchvision's layout: configs and presets, the encoder
//! block, positional embeddings, the network with its staged and token-level API, and the
//! torchvision weight import.

mod attention;
mod base;
mod block;
mod config;
mod pos_embed;
mod torchvision;

pub use attention::Attention;
pub use base::ViT;
pub use block::{EncoderBlock, Mlp};
pub use config::{PosEmbedding, ViTConfig};
pub use pos_embed::{bicubic_matrix, sincos_2d};

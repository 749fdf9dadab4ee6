//! Global pooling of a feature map into one vector per image.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Global pooling over the spatial axes, turning `forward_features` output into an embedding.
///
/// `Avg` is the global average pooling of He et al. 2016 (ResNet, Sec. 3.4) and torchvision's
/// `avgpool`. `Cls` is the ViT's class token (Dosovitskiy et al. 2020, Eq. 4), which a feature
/// map does not hold: it is taken from the tokens by
/// [`Backbone::embed_at`](crate::Backbone::embed_at) or [`ViT::pool_tokens`](crate::ViT::pool_tokens).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over all positions.
    #[default]
    Avg,
    /// Maximum over all positions.
    Max,
    /// The CLS token of a ViT (serde `"cls"`).
    Cls,
}

impl Pooling {
    /// Pools every channel over height and width.
    ///
    /// # Shapes
    /// - input: `[batch, channels, height, width]`
    /// - output: `[batch, channels]`
    ///
    /// # Panics
    /// For [`Pooling::Cls`]: a feature map has no CLS token.
    pub fn pool(&self, x: Tensor<4>) -> Tensor<2> {
        let [batch, channels, _height, _width] = x.dims();
        let x = x.flatten::<3>(2, 3); // [b, c, h * w]
        let pooled = match self {
            Self::Avg => x.mean_dim(2),
            Self::Max => x.max_dim(2),
            Self::Cls => panic!(
                "Pooling::Cls takes a ViT's CLS token, which a feature map does not hold; \
                 use Backbone::embed_at or ViT::pool_tokens"
            ),
        };
        pooled.reshape([batch, channels])
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::*;

    fn pools_by_hand(device: &Device) {
        // [1, 2, 2, 2]: channel 0 holds 1..=4, channel 1 holds -1, -2, 7, 0.
        let x = Tensor::<4>::from_floats(
            [[[[1.0, 2.0], [3.0, 4.0]], [[-1.0, -2.0], [7.0, 0.0]]]],
            device,
        );
        let avg = Pooling::Avg.pool(x.clone());
        let max = Pooling::Max.pool(x);
        assert_eq!(avg.dims(), [1, 2]);
        let avg = avg.into_data().try_into_vec_as::<f32>().unwrap();
        let max = max.into_data().try_into_vec_as::<f32>().unwrap();
        repr_testing::assert_close(&avg, &[2.5, 1.0], 1e-6, 1e-6, "avg pool");
        repr_testing::assert_close(&max, &[4.0, 7.0], 1e-6, 1e-6, "max pool");
    }

    repr_testing::backend_tests!(pools_by_hand);
}

//! Global pooling of a feature map into one vector per image.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Global pooling over the spatial axes, turning `forward_features` output into an embedding.
///
/// `Avg` is the global average pooling of He et al. 2016 (ResNet, Sec. 3.4) and torchvision's
/// `avgpool`. `Gem` is the generalized mean of Radenović, Tolias and Chum 2018 (Eq. 1) with
/// the exponent fixed at [`GEM_P`], the pooling of image-retrieval networks. `Cls` is the ViT's class token (Dosovitskiy et al. 2020, Eq. 4), which a feature
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
    /// Generalized mean `(mean x^p)^(1/p)` over all positions with `p` = [`GEM_P`], values
    /// clamped below at [`GEM_EPS`] (between `Avg`, `p = 1`, and `Max`, `p → ∞`).
    Gem,
    /// The CLS token of a ViT (serde `"cls"`).
    Cls,
}

/// The exponent of [`Pooling::Gem`]: 3, the value Radenović et al. 2018 learn for retrieval and
/// use fixed in their fine-tuned networks.
pub const GEM_P: f32 = 3.0;

/// The floor of [`Pooling::Gem`]'s input, so that the `p`-th root is taken of positive values.
pub const GEM_EPS: f32 = 1e-6;

/// Generalized mean along `dim` of a 3-D tensor (see [`Pooling::Gem`]).
pub(crate) fn gem_dim(x: Tensor<3>, dim: usize) -> Tensor<3> {
    x.clamp_min(GEM_EPS)
        .powf_scalar(GEM_P)
        .mean_dim(dim)
        .powf_scalar(1.0 / GEM_P)
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
            Self::Gem => gem_dim(x, 2),
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
        let max = Pooling::Max.pool(x.clone());
        let gem = Pooling::Gem.pool(x);
        assert_eq!(avg.dims(), [1, 2]);
        let avg = avg.into_data().try_into_vec_as::<f32>().unwrap();
        let max = max.into_data().try_into_vec_as::<f32>().unwrap();
        repr_testing::assert_close(&avg, &[2.5, 1.0], 1e-6, 1e-6, "avg pool");
        repr_testing::assert_close(&max, &[4.0, 7.0], 1e-6, 1e-6, "max pool");
        // In f64 from the definition: channel 0 ((1 + 8 + 27 + 64) / 4)^(1/3); channel 1 has
        // -1, -2 and 0 clamped to 1e-6 (their cubes vanish): (343 / 4)^(1/3).
        let gem = gem.into_data().try_into_vec_as::<f32>().unwrap();
        let expected = [(100.0f64 / 4.0).cbrt(), (343.0f64 / 4.0).cbrt()];
        repr_testing::assert_close(&gem, &expected, 1e-5, 1e-5, "GeM pool");
    }

    repr_testing::backend_tests!(pools_by_hand);
}

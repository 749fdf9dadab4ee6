//! Errors in backbone configurations.

/// A backbone configuration value that cannot build a network, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A ResNet stage with no residual block.
    #[error("resnet `layers` needs at least one block per stage, got {layers:?}")]
    EmptyStage {
        /// The offending `layers` value.
        layers: [usize; 4],
    },
    /// A size that must be positive is zero.
    #[error("resnet `{field}` must be at least 1, got 0")]
    Zero {
        /// Name of the configuration field.
        field: &'static str,
    },
    /// GroupNorm groups that do not divide the channels.
    #[error(
        "resnet `norm.group_ws.groups` ({groups}) must be at least 1 and divide `width` ({width}), \
         so that it divides every layer's channels"
    )]
    Groups {
        /// The number of groups.
        groups: usize,
        /// The ResNet's base width.
        width: usize,
    },
    /// A size above the bound that keeps the network's allocations sane (a typo such as an
    /// extra zero would otherwise ask for terabytes and abort the process).
    #[error("{network} `{field}` is {value}: at most {max} is allowed")]
    TooLarge {
        /// `"resnet"` or `"vit"`.
        network: &'static str,
        /// Name of the configuration field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The largest value allowed.
        max: usize,
    },
    /// A ViT size that must be positive is zero.
    #[error("vit `{field}` must be at least 1, got 0")]
    ViTZero {
        /// Name of the configuration field.
        field: &'static str,
    },
    /// A ViT size that must divide another does not.
    #[error("vit `{field}` ({value}) must be divisible by `{by}` ({divisor})")]
    Indivisible {
        /// Name of the configuration field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What must divide it.
        by: &'static str,
        /// The divisor's value.
        divisor: usize,
    },
    /// A value that must be positive and finite is not.
    #[error("vit `{field}` must be positive and finite")]
    NotPositive {
        /// Name of the configuration field.
        field: &'static str,
    },
    /// A layer index beyond the network (see [`Backbone::embed_at`](crate::Backbone::embed_at)).
    #[error("layer {layer} does not exist: a {backbone} has layers 0 to {max}")]
    Layer {
        /// The requested layer.
        layer: usize,
        /// The deepest layer.
        max: usize,
        /// The backbone's kind, e.g. `"ResNet"`.
        backbone: &'static str,
    },
    /// A pooling the backbone cannot apply (e.g. the CLS token of a ResNet).
    #[error("pooling `{pooling}` is not available for a {backbone}: {reason}")]
    Pooling {
        /// The pooling, as written in a config file.
        pooling: &'static str,
        /// The backbone's kind.
        backbone: &'static str,
        /// Why.
        reason: &'static str,
    },
}

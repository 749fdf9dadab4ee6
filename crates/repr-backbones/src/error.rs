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
}

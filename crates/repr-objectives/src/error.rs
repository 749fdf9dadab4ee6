//! Errors of loss configurations.

/// A loss or head configuration that cannot be used, naming the field and the allowed range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ObjectiveError {
    /// A field is outside its allowed range.
    #[error("`{field}` = {value} is out of range: expected {allowed}")]
    OutOfRange {
        /// The configuration field.
        field: &'static str,
        /// The value given.
        value: f64,
        /// The allowed range, in words.
        allowed: &'static str,
    },
}

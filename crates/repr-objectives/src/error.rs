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

/// A temperature must be finite and > 0 (`field` names it in the error).
pub(crate) fn check_temperature(field: &'static str, value: f64) -> Result<(), ObjectiveError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(ObjectiveError::OutOfRange {
            field,
            value,
            allowed: "a finite temperature > 0",
        })
    }
}

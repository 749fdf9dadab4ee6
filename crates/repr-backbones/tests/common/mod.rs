//! Helpers shared by the torchvision import tests.

use repr_backbones::ImportError;

/// The missing and unexpected key lists of an [`ImportError::Keys`], panicking with the error
/// for any other kind.
pub fn key_lists(err: &ImportError) -> (&[String], &[String]) {
    match err {
        ImportError::Keys {
            missing,
            unexpected,
            ..
        } => (missing, unexpected),
        other => panic!("expected a key error, got {other}"),
    }
}

//! Test support for `repr`: run one test body on every backend, read the PyTorch fixtures, and
//! compare floats with a tolerance.
//!
//! Numeric tests are plain functions taking `&Device`; [`backend_tests!`] instantiates each of them
//! once per backend in modules named after the backend, so `cargo test flex` selects one backend
//! and a failure names it (`loss::tests::ndarray::matches_fixture`).
//!
//! A numeric test of your own Burn code against reference values (e.g. computed by PyTorch), run
//! once per backend:
//!
//! ```
//! use burn::tensor::{Device, Tensor, activation::softmax};
//! use repr_testing::assert_close;
//!
//! fn softmax_matches_torch(device: &Device) {
//!     let x = Tensor::<1>::from_floats([1.0, 2.0, 3.0], device);
//!     let y = softmax(x, 0).into_data().to_vec::<f32>().unwrap();
//!     // torch.softmax(torch.tensor([1., 2., 3.]), 0)
//!     assert_close(&y, &[0.09003057, 0.24472847, 0.66524096], 1e-6, 1e-5, "softmax");
//! }
//! // In a test file: `#[test]`s `flex::softmax_matches_torch`, `ndarray::…` (and `wgpu::…`).
//! repr_testing::backend_tests!(softmax_matches_torch);
//! # fn main() {
//! #     softmax_matches_torch(&repr_testing::flex());
//! #     softmax_matches_torch(&repr_testing::ndarray());
//! # }
//! ```
#![warn(missing_docs)]

use std::path::PathBuf;

use burn::tensor::{Device, DeviceKind};
mod fixture;
pub use fixture::{Array, assert_close, fixture_path, read_fixture};

/// The flex device (the default CPU backend), seeded so that parameter initialisation repeats.
pub fn flex() -> Device {
    seeded(Device::flex())
}

/// The ndarray device, seeded.
#[allow(deprecated)] // ndarray stays a supported, tested backend (docs/architecture.md)
pub fn ndarray() -> Device {
    seeded(Device::ndarray())
}

/// The default wgpu device (lavapipe's CPU Vulkan adapter on a machine without a GPU), seeded.
pub fn wgpu() -> Device {
    ensure_runtime_dir();
    seeded(Device::wgpu(DeviceKind::DefaultDevice))
}

fn seeded(device: Device) -> Device {
    device.seed(0x5eed);
    device
}

/// Copies the folder `from` (a run folder, say) to `to`, recursively.
///
/// # Panics
/// On any I/O error: this is for tests.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// wgpu's Vulkan loader warns on every start without `XDG_RUNTIME_DIR`; `.cargo/config.toml`
/// points it into `target/`, which may not exist yet.
fn ensure_runtime_dir() {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let _ = std::fs::create_dir_all(PathBuf::from(dir));
    }
}

/// Instantiates each listed `fn name(device: &Device)` once per backend: `flex`, `ndarray`, and
/// `wgpu` when `repr-testing`'s `test-wgpu` feature is on.
///
/// ```
/// use burn::tensor::{Device, Tensor};
///
/// fn adds(device: &Device) {
///     let x = Tensor::<1>::from_floats([1.0, 2.0], device);
///     let sum: f32 = (x.clone() + x).sum().into_scalar();
///     assert_eq!(sum, 6.0);
/// }
/// // Expands to `mod flex { #[test] fn adds() }`, `mod ndarray { .. }` (and `mod wgpu`).
/// repr_testing::backend_tests!(adds);
/// # fn main() { adds(&repr_testing::flex()); }
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        $crate::cpu_backend_tests!($($name),+);
        $crate::__wgpu_tests!($($name),+);
    };
}

/// Like [`backend_tests!`] but for flex and ndarray only: for tests whose shapes are too large for
/// wgpu on lavapipe (kernel compilation alone takes minutes there). Say why at the call site.
#[macro_export]
macro_rules! cpu_backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod flex {
            $( #[test] pub fn $name() { super::$name(&$crate::flex()); } )+
        }
        mod ndarray {
            $( #[test] pub fn $name() { super::$name(&$crate::ndarray()); } )+
        }
    };
}

/// Like [`backend_tests!`] for tests that pick the backend by name (`"flex"`, `"ndarray"`,
/// `"wgpu"`), such as end-to-end runs that go through the same device parsing as the CLI:
/// instantiates each listed `fn name(backend: &str)`.
#[macro_export]
macro_rules! named_backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod flex {
            $( #[test] pub fn $name() { super::$name("flex"); } )+
        }
        mod ndarray {
            $( #[test] pub fn $name() { super::$name("ndarray"); } )+
        }
        $crate::__wgpu_named_tests!($($name),+);
    };
}

#[cfg(feature = "test-wgpu")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wgpu_named_tests {
    ($($name:ident),+) => {
        mod wgpu {
            $( #[test] pub fn $name() { super::$name("wgpu"); } )+
        }
    };
}

#[cfg(not(feature = "test-wgpu"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wgpu_named_tests {
    ($($name:ident),+) => {};
}

#[cfg(feature = "test-wgpu")]
#[doc(hidden)]
#[macro_export]
macro_rules! __wgpu_tests {
    ($($name:ident),+) => {
        mod wgpu {
            $( #[test] pub fn $name() { super::$name(&$crate::wgpu()); } )+
        }
    };
}

#[cfg(not(feature = "test-wgpu"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __wgpu_tests {
    ($($name:ident),+) => {};
}

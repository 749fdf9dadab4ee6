//! Which kernels run on flex: ours (the default) or Burn's, for comparison.
//!
//! Set `REPR_KERNELS=burn` (or `repr`) in the environment, or call [`set_kernels`]; the call wins
//! over the environment. Devices other than flex always use Burn's kernels.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use burn::backend::DispatchDevice;
use burn::tensor::Device;

/// The environment variable that selects the kernels.
pub const KERNELS_ENV: &str = "REPR_KERNELS";

/// A choice of kernels for the flex backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// This crate's convolution and batch-norm kernels.
    Repr,
    /// Burn's own flex kernels.
    Burn,
}

/// `REPR_KERNELS` holds something other than `repr` or `burn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelsEnvError(pub String);

impl std::fmt::Display for KernelsEnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{KERNELS_ENV}={:?}: expected `repr` or `burn`", self.0)
    }
}

impl std::error::Error for KernelsEnvError {}

impl Kernels {
    /// The name used in the environment and in benchmark rows.
    pub fn name(self) -> &'static str {
        match self {
            Self::Repr => "repr",
            Self::Burn => "burn",
        }
    }

    /// The choice in `REPR_KERNELS`, `Repr` when unset; binaries call this at start-up so a
    /// typo is an error rather than a silent default.
    pub fn from_env() -> Result<Self, KernelsEnvError> {
        match std::env::var(KERNELS_ENV) {
            Err(_) => Ok(Self::Repr),
            Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" | "repr" => Ok(Self::Repr),
                "burn" => Ok(Self::Burn),
                _ => Err(KernelsEnvError(v)),
            },
        }
    }
}

const UNSET: u8 = 0;
static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

fn encode(k: Kernels) -> u8 {
    match k {
        Kernels::Repr => 1,
        Kernels::Burn => 2,
    }
}

/// Selects the kernels for every later op in this process.
pub fn set_kernels(kernels: Kernels) {
    CHOICE.store(encode(kernels), Ordering::Relaxed);
}

/// The kernels in use: the last [`set_kernels`], else `REPR_KERNELS`, else `Repr`. An invalid
/// `REPR_KERNELS` warns once and keeps the default.
pub fn kernels() -> Kernels {
    match CHOICE.load(Ordering::Relaxed) {
        1 => Kernels::Repr,
        2 => Kernels::Burn,
        _ => {
            static FROM_ENV: OnceLock<Kernels> = OnceLock::new();
            *FROM_ENV.get_or_init(|| {
                Kernels::from_env().unwrap_or_else(|e| {
                    eprintln!("warning: {e}; using repr's kernels");
                    Kernels::Repr
                })
            })
        }
    }
}

/// Whether ops on `device` run on this crate's kernels: flex (with or without autodiff) and the
/// `Repr` choice.
pub fn uses_repr_kernels(device: &Device) -> bool {
    kernels() == Kernels::Repr && is_flex(device)
}

/// Whether `device` is flex, with or without autodiff.
pub fn is_flex(device: &Device) -> bool {
    matches!(
        device.clone().without_autodiff().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

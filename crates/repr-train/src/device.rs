//! Turning a backend name into a Burn [`Device`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;

/// The execution backends `repr` can train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// Burn's pure-Rust CPU backend: the default on a CPU.
    Flex,
    /// The ndarray CPU backend (deprecated by Burn, still supported here).
    Ndarray,
    /// wgpu: Vulkan, Metal or DX12 GPUs, or lavapipe's CPU Vulkan adapter.
    Wgpu,
    /// NVIDIA GPUs through CUDA (cargo feature `cuda`).
    Cuda,
}

/// A backend that cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The name is not one of the backends.
    #[error("unknown device `{0}`: expected one of flex, ndarray, wgpu, cuda")]
    Unknown(String),
    /// The backend was not compiled into this binary.
    #[error(
        "device `{device}` is not compiled into this build: build with the cargo feature \
         `{feature}` (`cargo run -p xtask --features {feature} -- train --device {device}`)"
    )]
    NotCompiled {
        /// The backend asked for.
        device: DeviceChoice,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },
    /// A device index the backend does not have (`flex:1`: a CPU backend has one device).
    #[error(
        "device `{device}:{index}` does not exist: {device} has one device (`{device}` or `{device}:0`)"
    )]
    NoSuchIndex {
        /// The backend asked for.
        device: DeviceChoice,
        /// The index asked for.
        index: usize,
    },
    /// The backend is compiled in but found no usable adapter or driver.
    #[error("device `{device}` is not usable here: {reason}")]
    Unavailable {
        /// The device asked for (`wgpu`, `wgpu:1`).
        device: DeviceSpec,
        /// What failed, as the backend said it.
        reason: String,
    },
}

impl DeviceChoice {
    /// All choices, in the order the CLI lists them.
    pub const ALL: [DeviceChoice; 4] = [Self::Flex, Self::Ndarray, Self::Wgpu, Self::Cuda];

    /// The name used on the command line and in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::Ndarray => "ndarray",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        }
    }

    /// Whether this build has the backend (its cargo feature was on).
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Flex => cfg!(feature = "flex"),
            Self::Ndarray => cfg!(feature = "ndarray"),
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The device, without autodiff (call `.autodiff()` to train), checked by running one tiny
    /// operation on it so that a missing adapter is an error here rather than a panic mid-run.
    pub fn device(self) -> Result<Device, DeviceError> {
        DeviceSpec::from(self).device()
    }

    #[allow(unreachable_code, unused_variables, deprecated)]
    fn construct(self, index: Option<usize>) -> Result<Device, DeviceError> {
        let not_compiled = |feature| DeviceError::NotCompiled {
            device: self,
            feature,
        };
        match self {
            Self::Flex | Self::Ndarray if index.is_some_and(|i| i > 0) => {
                Err(DeviceError::NoSuchIndex {
                    device: self,
                    index: index.unwrap_or_default(),
                })
            }
            Self::Flex => {
                #[cfg(feature = "flex")]
                return Ok(Device::flex());
                Err(not_compiled("flex"))
            }
            Self::Ndarray => {
                #[cfg(feature = "ndarray")]
                return Ok(Device::ndarray());
                Err(not_compiled("ndarray"))
            }
            Self::Wgpu => {
                #[cfg(feature = "wgpu")]
                {
                    // The Vulkan loader complains on every start without it.
                    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
                        let dir = std::env::temp_dir().join("repr-xdg-runtime");
                        let _ = std::fs::create_dir_all(&dir);
                        // SAFETY: called before any other thread of ours reads the environment.
                        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
                    } else if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    use burn::tensor::DeviceKind;
                    let kind = index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu);
                    return Ok(Device::wgpu(kind));
                }
                Err(not_compiled("wgpu"))
            }
            Self::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(index.unwrap_or(0)));
                Err(not_compiled("cuda"))
            }
        }
    }
}

/// A backend and, for a machine with several GPUs, which of them: `wgpu`, `wgpu:1` (wgpu's
/// second discrete GPU), `cuda:0`; `flex` and `ndarray` have one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The backend.
    pub backend: DeviceChoice,
    /// The device of that backend (none: its default, wgpu's "best available" adapter).
    pub index: Option<usize>,
}

impl DeviceSpec {
    /// The backend's name, as `summary.json` reports it.
    pub fn name(self) -> &'static str {
        self.backend.name()
    }

    /// The device (without autodiff), checked by running one tiny operation on it.
    pub fn device(self) -> Result<Device, DeviceError> {
        let device = self.backend.construct(self.index)?;
        probe(self, &device)?;
        Ok(device)
    }
}

impl From<DeviceChoice> for DeviceSpec {
    fn from(backend: DeviceChoice) -> Self {
        Self {
            backend,
            index: None,
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, index) = match s.split_once(':') {
            Some((name, index)) => match index.parse::<usize>() {
                Ok(i) => (name, Some(i)),
                Err(_) => return Err(DeviceError::Unknown(s.to_string())),
            },
            None => (s, None),
        };
        Ok(Self {
            backend: name.parse()?,
            index,
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}:{i}", self.backend),
            None => write!(f, "{}", self.backend),
        }
    }
}

/// The first panic message since [`probe`] cleared it, from any thread: wgpu's and CUDA's
/// device threads panic with the reason (no adapter of that kind, the adapters found), and
/// the caller only sees a closed channel.
static FIRST_PANIC: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records panic messages into [`FIRST_PANIC`], then does what the previous hook did.
fn record_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut first) = FIRST_PANIC.lock()
                && first.is_none()
            {
                *first = Some(payload_message(info.payload()));
            }
            previous(info);
        }));
    });
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the backend panicked".into())
}

/// Runs `1 + 1` on the device, turning a backend panic (no adapter, no driver) into an error
/// that says why.
fn probe(spec: DeviceSpec, device: &Device) -> Result<(), DeviceError> {
    record_panics();
    if let Ok(mut first) = FIRST_PANIC.lock() {
        *first = None;
    }
    let device = device.clone();
    let result = std::panic::catch_unwind(move || {
        let x = burn::tensor::Tensor::<1>::ones([1], &device);
        (x.clone() + x).into_scalar::<f32>()
    });
    match result {
        Ok(value) if (value - 2.0).abs() < 1e-6 => Ok(()),
        Ok(value) => Err(DeviceError::Unavailable {
            device: spec,
            reason: format!("1 + 1 gave {value}"),
        }),
        Err(panic) => {
            let first = FIRST_PANIC.lock().ok().and_then(|mut first| first.take());
            Err(DeviceError::Unavailable {
                device: spec,
                reason: first.unwrap_or_else(|| payload_message(panic.as_ref())),
            })
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| DeviceError::Unknown(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!("flex".parse::<DeviceChoice>().unwrap(), DeviceChoice::Flex);
        assert_eq!("WGPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Wgpu);
        let err = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert!(err.to_string().contains("tpu") && err.to_string().contains("flex"));
    }

    #[test]
    fn device_specs_name_a_backend_and_an_index() {
        let spec: DeviceSpec = "wgpu:1".parse().unwrap();
        assert_eq!((spec.backend, spec.index), (DeviceChoice::Wgpu, Some(1)));
        assert_eq!(spec.to_string(), "wgpu:1");
        let spec: DeviceSpec = "flex".parse().unwrap();
        assert_eq!((spec.backend, spec.index), (DeviceChoice::Flex, None));
        assert!("wgpu:one".parse::<DeviceSpec>().is_err());
        assert!("tpu:0".parse::<DeviceSpec>().is_err());
        let err = "flex:1"
            .parse::<DeviceSpec>()
            .unwrap()
            .device()
            .unwrap_err();
        assert!(err.to_string().contains("flex:1"), "{err}");
        // flex:0 is flex (compiled in when a dependent turns the feature on).
        let flex0 = "flex:0".parse::<DeviceSpec>().unwrap().device();
        assert_eq!(flex0.is_ok(), DeviceChoice::Flex.device().is_ok());
    }
}

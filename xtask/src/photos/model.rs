//! The network behind an index: which weights, which layer, which pooling, recorded in the
//! index as JSON so that `search` and `serve` rebuild exactly the encoder that indexed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor};
use repr_backbones::{Backbone, BackboneConfig, Pooling, ResNetConfig, ViTConfig};
use repr_data::Normalize;
use repr_search::{ModelIdentity, Preprocess, Sizing};
use repr_train::{Method, RunDir, RunMode, TrainedRun};
use serde::{Deserialize, Serialize};

/// ImageNet's per-channel mean and standard deviation (torchvision's weights expect them).
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// A torchvision architecture, as `--arch` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// torchvision's `resnet18`.
    Resnet18,
    /// torchvision's `resnet34`.
    Resnet34,
    /// torchvision's `resnet50`.
    Resnet50,
    /// torchvision's `vit_b_16`.
    #[value(name = "vit-b16")]
    #[serde(rename = "vit-b16")]
    VitB16,
}

impl Arch {
    /// The backbone without its classifier, for `size`-pixel square inputs.
    fn config(self, size: usize) -> BackboneConfig {
        match self {
            Self::Resnet18 => ResNetConfig::resnet18().with_num_classes(0).into(),
            Self::Resnet34 => ResNetConfig::resnet34().with_num_classes(0).into(),
            Self::Resnet50 => ResNetConfig::resnet50().with_num_classes(0).into(),
            Self::VitB16 => {
                let mut vit = ViTConfig::vit_base().with_num_classes(0);
                vit.image_size = size;
                vit.into()
            }
        }
    }
}

/// Where the weights come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A repr run folder and the SHA-256 of its final model (or last checkpoint).
    Run { dir: PathBuf, sha256: String },
    /// A torchvision state dict (`.safetensors`, `.pt`) and its SHA-256.
    Weights {
        file: PathBuf,
        sha256: String,
        arch: Arch,
    },
    /// Seeded random weights of an architecture (for speed measurements and tests).
    Random { arch: Arch, seed: u64 },
}

/// An index's model: its weights and the representation taken from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct ModelSpec {
    pub source: Source,
    /// The layer whose activations are pooled (ResNet: 0 the stem, 1-4 `layer1`-`layer4`; ViT:
    /// the output of block n); `None`: the network's own representation.
    pub layer: Option<usize>,
    /// The pooling; `None`: the network's own.
    pub pool: Option<Pooling>,
}

/// The network that turns a batch of preprocessed images into vectors.
enum Net {
    /// A trained method (its own representation) or its backbone at a layer.
    Run(Box<Method>),
    /// A bare backbone.
    Backbone(Box<Backbone>),
}

/// An encoder ready to embed images as an index expects them.
pub struct Encoder {
    spec: ModelSpec,
    preprocess: Preprocess,
    net: Net,
    dim: usize,
    device: Device,
}

impl Encoder {
    /// Builds the encoder of `spec` on `device`; `size` is the crop side for torchvision
    /// architectures (224 when `None`; a run uses its own image size). Checks the layer and
    /// pooling against the network and measures the vector's dimension.
    pub fn build(spec: ModelSpec, size: Option<usize>, device: &Device) -> Result<Self> {
        let (net, preprocess) = match &spec.source {
            Source::Run { dir, .. } => {
                let run = RunDir::open(dir, RunMode::Resume)
                    .with_context(|| format!("opening run {}", dir.display()))?;
                let trained = TrainedRun::load(&run, device)?;
                let input = trained.input()?;
                if size.is_some() {
                    bail!(
                        "--size applies to --arch networks; a run takes its own image size ({}×{})",
                        input.height,
                        input.width
                    );
                }
                let preprocess = Preprocess {
                    channels: input.channels,
                    size: Sizing::Resize {
                        height: input.height,
                        width: input.width,
                    },
                    normalize: input.normalize,
                };
                if spec.layer.is_none()
                    && spec.pool.is_some()
                    && matches!(trained.method, Method::Triplet(_))
                {
                    bail!(
                        "--pool without --layer: a triplet run's representation is its embedding head's \
                         output, which is not pooled; give --layer to pool a backbone layer"
                    );
                }
                (Net::Run(Box::new(trained.method)), preprocess)
            }
            Source::Weights { file, arch, .. } => {
                let side = size.unwrap_or(224);
                let backbone = arch
                    .config(side)
                    .init(device)
                    .load_torchvision(file, &["fc.", "heads."])
                    .with_context(|| format!("loading {arch:?} weights from {}", file.display()))?;
                (Net::Backbone(Box::new(backbone)), imagenet_preprocess(side))
            }
            Source::Random { arch, seed } => {
                let side = size.unwrap_or(224);
                // Parameters are drawn on first use: seeded here, drawn before anything else.
                let draw = repr_train::distributed::SeededDraw::begin(device, *seed);
                let backbone = arch.config(side).init(device);
                draw.finish(&backbone);
                (Net::Backbone(Box::new(backbone)), imagenet_preprocess(side))
            }
        };
        let backbone = match &net {
            Net::Run(method) => method.backbone(),
            Net::Backbone(backbone) => backbone,
        };
        if spec.layer.is_some() || matches!(net, Net::Backbone(_)) {
            backbone.check_layer(spec.layer, spec.pool.unwrap_or(default_pool(backbone)))?;
        }
        let device = device.clone().without_autodiff();
        let mut encoder = Self {
            spec,
            preprocess,
            net,
            dim: 0,
            device,
        };
        let [c, h, w] = encoder.preprocess.shape();
        let probe = encoder.embed(Tensor::<4>::zeros([1, c, h, w], &encoder.device));
        encoder.dim = probe.dims()[1];
        Ok(encoder)
    }

    /// Rebuilds the encoder an index was made with, checking that its weights did not change.
    pub fn for_index(identity: &ModelIdentity, device: &Device) -> Result<Self> {
        let spec: ModelSpec = serde_json::from_str(&identity.model).with_context(|| {
            "the index's model description is not one `cargo xtask index` writes".to_string()
        })?;
        let now = match &spec.source {
            Source::Run { dir, sha256 } => Some((dir, sha256, hash_run_model(dir)?)),
            Source::Weights { file, sha256, .. } => Some((file, sha256, hash_file(file)?)),
            Source::Random { .. } => None,
        };
        if let Some((path, then, now)) = now
            && *then != now
        {
            bail!(
                "the weights in {} changed since the index was made (SHA-256 {} then, {} now): \
                 index again with `cargo xtask index`",
                path.display(),
                short(then),
                short(&now)
            );
        }
        let size = match identity.preprocess.size {
            Sizing::ResizeCrop { crop, .. } if !matches!(spec.source, Source::Run { .. }) => {
                Some(crop)
            }
            _ => None,
        };
        let encoder = Self::build(spec, size, device)?;
        if encoder.preprocess != identity.preprocess || encoder.dim != identity.dim {
            bail!(
                "the model rebuilt from the index's description does not match the index \
                 (preprocessing or dimension {} vs {})",
                encoder.dim,
                identity.dim
            );
        }
        Ok(encoder)
    }

    /// What the index records of this encoder.
    pub fn identity(&self) -> ModelIdentity {
        ModelIdentity {
            model: serde_json::to_string(&self.spec).expect("a model spec serialises"),
            preprocess: self.preprocess.clone(),
            dim: self.dim,
        }
    }

    /// How images are prepared for this encoder.
    pub fn preprocess(&self) -> &Preprocess {
        &self.preprocess
    }

    /// The device it runs on (without autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// One line naming the model for progress output.
    pub fn describe(&self) -> String {
        let source = match &self.spec.source {
            Source::Run { dir, .. } => format!("run {}", dir.display()),
            Source::Weights { file, arch, .. } => format!("{arch:?} weights {}", file.display()),
            Source::Random { arch, seed } => format!("{arch:?} with random weights (seed {seed})"),
        };
        let layer = self
            .spec
            .layer
            .map_or("its representation".to_string(), |l| format!("layer {l}"));
        let pool = self
            .spec
            .pool
            .map_or(String::new(), |p| format!(", {p:?} pooling").to_lowercase());
        let [c, h, w] = self.preprocess.shape();
        format!(
            "{source}: {layer}{pool}, {} values per image, input {c}×{h}×{w}",
            self.dim
        )
    }

    /// The vectors of a batch of preprocessed, normalised images.
    ///
    /// # Shapes
    /// - images: `[batch, channels, height, width]`
    /// - output: `[batch, dim]`
    pub fn embed(&self, images: Tensor<4>) -> Tensor<2> {
        let (layer, pool) = (self.spec.layer, self.spec.pool);
        match &self.net {
            Net::Run(method) => match layer {
                None => method.represent(images, pool),
                Some(_) => {
                    let backbone = method.backbone();
                    let pool = pool.unwrap_or(default_pool(backbone));
                    backbone
                        .embed_at(images, layer, pool)
                        .expect("layer and pooling checked when the encoder was built")
                }
            },
            Net::Backbone(backbone) => backbone
                .embed_at(images, layer, pool.unwrap_or(default_pool(backbone)))
                .expect("layer and pooling checked when the encoder was built"),
        }
    }
}

/// A backbone's own pooling: average for a ResNet, the CLS token for a ViT.
fn default_pool(backbone: &Backbone) -> Pooling {
    match backbone {
        Backbone::ResNet(_) => Pooling::Avg,
        Backbone::ViT(_) => Pooling::Cls,
    }
}

/// torchvision's evaluation transform for ImageNet weights at crop `side` (256 → 224).
fn imagenet_preprocess(side: usize) -> Preprocess {
    Preprocess {
        channels: 3,
        size: Sizing::ResizeCrop {
            resize_shorter: (side * 256).div_ceil(224),
            crop: side,
        },
        normalize: Normalize {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
        },
    }
}

/// The SHA-256 of a file, in hex (the hash the index records for its files).
pub fn hash_file(path: &Path) -> Result<String> {
    let hash =
        repr_search::sha256_of(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hash.iter().map(|b| format!("{b:02x}")).collect())
}

/// The SHA-256 of a run's network, its final model: an index records the weights it was made
/// with, so a run still training (whose last checkpoint changes) is refused.
pub fn hash_run_model(dir: &Path) -> Result<String> {
    let run = RunDir::open(dir, RunMode::Resume)
        .with_context(|| format!("opening run {}", dir.display()))?;
    let model = run.final_model();
    if !model.exists() {
        bail!(
            "run {} has not finished (no {}): an index records the final weights; finish the \
             run (`cargo xtask train --resume`) first",
            dir.display(),
            model.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    hash_file(&model)
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

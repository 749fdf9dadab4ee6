//! The view pipelines of SimCLR (Chen et al. 2020, Appendix A) and BYOL (Grill et al. 2020,
//! Table 6), and a 1-channel variant for Fashion-MNIST-like data.

use crate::{
    ColorJitterConfig, ComposeConfig, GaussianBlurConfig, MultiViewConfig, OpConfig,
    RandomGrayscaleConfig, RandomHorizontalFlipConfig, RandomResizedCropConfig, SolarizeConfig,
};

impl ComposeConfig {
    /// SimCLR's view for CIFAR-size images: `RandomResizedCrop(size, scale 0.08-1)` →
    /// `HorizontalFlip(0.5)` → `ColorJitter(0.4, 0.4, 0.4, 0.1)` with p 0.8 (strength 0.5) →
    /// `RandomGrayscale(0.2)`; no blur.
    pub fn simclr_cifar(size: usize) -> Self {
        Self::new(vec![
            OpConfig::RandomResizedCrop(RandomResizedCropConfig::new(size)),
            OpConfig::HorizontalFlip(RandomHorizontalFlipConfig::default()),
            OpConfig::ColorJitter(ColorJitterConfig::simclr(0.5)),
            OpConfig::Grayscale(RandomGrayscaleConfig { probability: 0.2 }),
        ])
    }

    /// SimCLR's view for ImageNet-size images: as [`ComposeConfig::simclr_cifar`] with colour
    /// strength 1 (`0.8, 0.8, 0.8, 0.2`) and a Gaussian blur (kernel 10% of `size`, made odd;
    /// sigma 0.1-2.0) with p 0.5.
    pub fn simclr_imagenet(size: usize) -> Self {
        Self::new(vec![
            OpConfig::RandomResizedCrop(RandomResizedCropConfig::new(size)),
            OpConfig::HorizontalFlip(RandomHorizontalFlipConfig::default()),
            OpConfig::ColorJitter(ColorJitterConfig::simclr(1.0)),
            OpConfig::Grayscale(RandomGrayscaleConfig { probability: 0.2 }),
            OpConfig::GaussianBlur(GaussianBlurConfig::simclr(size, 0.5)),
        ])
    }

    /// One of BYOL's views: crop, flip, `ColorJitter(0.4, 0.4, 0.2, 0.1)` with p 0.8,
    /// grayscale p 0.2, blur with `blur_p`, solarize with `solarize_p`.
    pub fn byol(size: usize, blur_p: f64, solarize_p: f64) -> Self {
        Self::new(vec![
            OpConfig::RandomResizedCrop(RandomResizedCropConfig::new(size)),
            OpConfig::HorizontalFlip(RandomHorizontalFlipConfig::default()),
            OpConfig::ColorJitter(ColorJitterConfig {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.2,
                hue: 0.1,
                probability: 0.8,
            }),
            OpConfig::Grayscale(RandomGrayscaleConfig { probability: 0.2 }),
            OpConfig::GaussianBlur(GaussianBlurConfig::simclr(size, blur_p)),
            OpConfig::Solarize(SolarizeConfig {
                threshold: 0.5,
                probability: solarize_p,
            }),
        ])
    }

    /// The SimCLR view for 1-channel images (the project's Fashion-MNIST reference):
    /// `RandomResizedCrop(size, scale 0.2-1.0)` → `HorizontalFlip(0.5)` →
    /// `ColorJitter(brightness 0.4, contrast 0.4)` with p 0.8; no saturation, hue or grayscale.
    pub fn simclr_grayscale(size: usize) -> Self {
        Self::new(vec![
            OpConfig::RandomResizedCrop(RandomResizedCropConfig {
                scale: [0.2, 1.0],
                ..RandomResizedCropConfig::new(size)
            }),
            OpConfig::HorizontalFlip(RandomHorizontalFlipConfig { probability: 0.5 }),
            OpConfig::ColorJitter(ColorJitterConfig {
                brightness: 0.4,
                contrast: 0.4,
                saturation: 0.0,
                hue: 0.0,
                probability: 0.8,
            }),
        ])
    }
}

impl MultiViewConfig {
    /// Two [`ComposeConfig::simclr_cifar`] views (crop 32 for CIFAR-10).
    pub fn simclr_cifar(size: usize) -> Self {
        Self::two(ComposeConfig::simclr_cifar(size))
    }

    /// Two [`ComposeConfig::simclr_imagenet`] views (crop 224 for ImageNet).
    pub fn simclr_imagenet(size: usize) -> Self {
        Self::two(ComposeConfig::simclr_imagenet(size))
    }

    /// BYOL's asymmetric pair: blur p 1.0 / 0.1, solarize p 0.0 / 0.2.
    pub fn byol(size: usize) -> Self {
        Self {
            views: vec![
                ComposeConfig::byol(size, 1.0, 0.0),
                ComposeConfig::byol(size, 0.1, 0.2),
            ],
        }
    }

    /// Two [`ComposeConfig::simclr_grayscale`] views (size 28 for Fashion-MNIST; the SimCLR
    /// recipe's default).
    pub fn simclr_grayscale(size: usize) -> Self {
        Self::two(ComposeConfig::simclr_grayscale(size))
    }

    fn two(view: ComposeConfig) -> Self {
        Self {
            views: vec![view.clone(), view],
        }
    }
}

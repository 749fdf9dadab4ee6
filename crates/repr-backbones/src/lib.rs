//! repr-backbones

//! repr-augment

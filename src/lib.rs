//! repr

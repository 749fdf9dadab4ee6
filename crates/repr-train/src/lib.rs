//! repr-train

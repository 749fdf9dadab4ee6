//! repr-eval

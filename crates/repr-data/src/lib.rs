//! repr-data

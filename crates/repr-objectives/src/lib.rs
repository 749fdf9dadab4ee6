//! repr-objectives

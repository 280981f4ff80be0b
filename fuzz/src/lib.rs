//! Shared pieces of the fuzz targets in `fuzz_targets/`: the plain-text input format their seed
//! corpora are written in, orders to decide commands against, and an independent HS256 check.

pub mod fixtures;
pub mod input;
pub mod jwt;

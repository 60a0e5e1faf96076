//! Tools of the `gateway` binary that are not the service: one file per command group.
pub mod audit;
pub mod codec;
pub mod keys;

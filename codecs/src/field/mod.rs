//! Field encodings shared by the formats.
pub mod gbk;
pub mod scan;

pub use gbk::GbkError;

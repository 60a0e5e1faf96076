//! Field encodings shared by the formats.
pub mod gbk;

pub use gbk::GbkError;

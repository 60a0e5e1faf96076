//! Length-prefixed framing: bytes on a stream -> frames.
pub mod ascii_len;

pub use ascii_len::{AsciiLenCodec, FramingError};

//! Length-prefixed framing: bytes on a stream -> frames.
pub mod ascii_len;
pub mod u16_len;

pub use ascii_len::{AsciiLenCodec, FramingError};
pub use u16_len::U16LenCodec;

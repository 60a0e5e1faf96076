//! ASCII decimal length header, as bank A uses it.
//!
//! ```text
//! +---------------------------+----------------------------+
//! | length: N ASCII digits    | body: `length` bytes        |
//! | zero-padded, e.g. 00000404|                            |
//! +---------------------------+----------------------------+
//! ```
//! The header counts the body only. A header with a non-digit, or announcing more than the configured
//! maximum, is an error: the peer is out of step and the connection must be closed.
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Errors of the length-header framing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A header byte is not an ASCII digit.
    #[error("length header byte {offset} is not an ASCII digit")]
    HeaderNotDigits {
        /// Offset of the bad byte inside the header.
        offset: usize,
    },
    /// The announced body is larger than allowed.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// Announced length.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({have} of {want} bytes)")]
    Truncated {
        /// Bytes received of the frame (header included).
        have: usize,
        /// Bytes the frame needs (header included).
        want: usize,
    },
    /// Transport error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Frames with an N-digit ASCII length header (bank A: 8 digits, bodies up to 16 MiB).
#[derive(Debug, Clone, Copy)]
pub struct AsciiLenCodec {
    digits: usize,
    max_len: usize,
}

impl AsciiLenCodec {
    /// A codec with `digits` header digits and bodies of at most `max_len` bytes.
    ///
    /// `max_len` is clamped to what `digits` can express.
    pub fn new(digits: usize, max_len: usize) -> Self {
        let digits = digits.clamp(1, 18);
        let expressible = 10usize.saturating_pow(digits as u32).saturating_sub(1);
        Self {
            digits,
            max_len: max_len.min(expressible),
        }
    }

    /// Number of header digits.
    pub fn digits(&self) -> usize {
        self.digits
    }

    /// Largest body accepted or produced.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Parses a header; `Ok(len)` of the body.
    pub fn parse_header(&self, header: &[u8]) -> Result<usize, FramingError> {
        let mut len: usize = 0;
        for (offset, b) in header.iter().take(self.digits).enumerate() {
            if !b.is_ascii_digit() {
                return Err(FramingError::HeaderNotDigits { offset });
            }
            len = len.saturating_mul(10).saturating_add(usize::from(b - b'0'));
        }
        if len > self.max_len {
            return Err(FramingError::TooLong {
                len,
                max: self.max_len,
            });
        }
        Ok(len)
    }

    /// Writes the header for a body of `len` bytes.
    pub fn write_header(&self, len: usize, dst: &mut impl BufMut) -> Result<(), FramingError> {
        if len > self.max_len {
            return Err(FramingError::TooLong {
                len,
                max: self.max_len,
            });
        }
        let text = format!("{len:0width$}", width = self.digits);
        dst.put_slice(text.as_bytes());
        Ok(())
    }

    /// The header as bytes, for writers that stream the body themselves.
    pub fn header(&self, len: usize) -> Result<Vec<u8>, FramingError> {
        let mut v = Vec::with_capacity(self.digits);
        self.write_header(len, &mut v)?;
        Ok(v)
    }
}

impl Decoder for AsciiLenCodec {
    type Item = BytesMut;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        if src.len() < self.digits {
            return Ok(None);
        }
        let len = self.parse_header(&src[..self.digits])?;
        let total = self.digits.checked_add(len).ok_or(FramingError::TooLong {
            len,
            max: self.max_len,
        })?;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(self.digits);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => {
                let want = if buf.len() >= self.digits {
                    self.parse_header(&buf[..self.digits])
                        .map(|l| l + self.digits)
                        .unwrap_or(0)
                } else {
                    self.digits
                };
                Err(FramingError::Truncated {
                    have: buf.len(),
                    want,
                })
            }
        }
    }
}

impl Encoder<Bytes> for AsciiLenCodec {
    type Error = FramingError;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), FramingError> {
        dst.reserve(self.digits + body.len());
        self.write_header(body.len(), dst)?;
        dst.put_slice(&body);
        Ok(())
    }
}

impl Encoder<&[u8]> for AsciiLenCodec {
    type Error = FramingError;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), FramingError> {
        dst.reserve(self.digits + body.len());
        self.write_header(body.len(), dst)?;
        dst.put_slice(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> AsciiLenCodec {
        AsciiLenCodec::new(8, 16 * 1024 * 1024)
    }

    #[test]
    fn encodes_zero_padded_header() {
        let mut dst = BytesMut::new();
        codec().encode(&b"hello"[..], &mut dst).expect("encode");
        assert_eq!(&dst[..], b"00000005hello");
    }

    #[test]
    fn decodes_frames_split_at_every_byte() {
        let mut wire = BytesMut::new();
        codec().encode(&b"first"[..], &mut wire).expect("encode");
        codec().encode(&b""[..], &mut wire).expect("encode");
        codec()
            .encode(&b"second frame"[..], &mut wire)
            .expect("encode");
        let wire = wire.freeze();
        for chunk in 1..=wire.len() {
            let mut c = codec();
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = c.decode(&mut buf).expect("decode") {
                    frames.push(f.freeze());
                }
            }
            assert_eq!(
                frames,
                vec![
                    Bytes::from_static(b"first"),
                    Bytes::new(),
                    Bytes::from_static(b"second frame")
                ]
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn rejects_non_digit_header() {
        let mut buf = BytesMut::from(&b"0000x005hello"[..]);
        let err = codec().decode(&mut buf).expect_err("must fail");
        assert!(
            matches!(err, FramingError::HeaderNotDigits { offset: 4 }),
            "{err}"
        );
    }

    #[test]
    fn rejects_oversize_before_reading_body() {
        let mut buf = BytesMut::from(&b"16777217"[..]);
        let err = codec().decode(&mut buf).expect_err("must fail");
        assert!(
            matches!(
                err,
                FramingError::TooLong {
                    len: 16_777_217,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn eof_inside_frame_is_an_error() {
        let mut buf = BytesMut::from(&b"00000010abc"[..]);
        let mut c = codec();
        assert!(c.decode(&mut buf).expect("partial").is_none());
        let err = c.decode_eof(&mut buf).expect_err("truncated");
        assert!(
            matches!(err, FramingError::Truncated { have: 11, want: 18 }),
            "{err}"
        );
    }

    #[test]
    fn refuses_to_encode_oversize() {
        let mut dst = BytesMut::new();
        let mut small = AsciiLenCodec::new(2, 1000);
        assert_eq!(small.max_len(), 99);
        assert!(small.encode(&[0u8; 100][..], &mut dst).is_err());
    }
}

//! Two-byte binary length header, as bank C uses it.
//!
//! ```text
//! +--------+--------+----------------------------+
//! | len hi | len lo | message: `len` bytes        |
//! +--------+--------+----------------------------+
//!   unsigned big-endian, counts the message only
//! ```
//! Bank C allows messages of at most 4,096 bytes ([`U16LenCodec::BANK_C_MAX`]); a header announcing more
//! is an error before any of the body is buffered: the peer is out of step (or hostile) and the
//! connection must be closed. The header cannot be "not digits", so the only header error is
//! [`FramingError::TooLong`].
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::FramingError;

/// Header size in bytes.
const HEADER: usize = 2;

/// Frames with a 2-byte unsigned big-endian length header.
#[derive(Debug, Clone, Copy)]
pub struct U16LenCodec {
    max_len: usize,
}

impl Default for U16LenCodec {
    /// Bank C's limit: 4,096 bytes.
    fn default() -> Self {
        Self::new(Self::BANK_C_MAX)
    }
}

impl U16LenCodec {
    /// Bank C's maximum message length.
    pub const BANK_C_MAX: usize = 4096;

    /// A codec accepting and producing messages of at most `max_len` bytes.
    ///
    /// `max_len` is clamped to what two bytes can express (65,535).
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.min(usize::from(u16::MAX)),
        }
    }

    /// Largest message accepted or produced.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Parses a header; `Ok(len)` of the message.
    pub fn parse_header(&self, header: [u8; 2]) -> Result<usize, FramingError> {
        let len = usize::from(u16::from_be_bytes(header));
        if len > self.max_len {
            return Err(FramingError::TooLong {
                len,
                max: self.max_len,
            });
        }
        Ok(len)
    }

    /// The header for a message of `len` bytes.
    pub fn header(&self, len: usize) -> Result<[u8; 2], FramingError> {
        if len > self.max_len {
            return Err(FramingError::TooLong {
                len,
                max: self.max_len,
            });
        }
        // max_len <= u16::MAX, so this never fails; checked anyway rather than cast.
        u16::try_from(len)
            .map(u16::to_be_bytes)
            .map_err(|_| FramingError::TooLong {
                len,
                max: self.max_len,
            })
    }

    fn peek_header(src: &[u8]) -> Option<[u8; 2]> {
        match src {
            [hi, lo, ..] => Some([*hi, *lo]),
            _ => None,
        }
    }

    fn encode_slice(&self, body: &[u8], dst: &mut BytesMut) -> Result<(), FramingError> {
        let header = self.header(body.len())?;
        dst.reserve(HEADER + body.len());
        dst.put_slice(&header);
        dst.put_slice(body);
        Ok(())
    }
}

impl Decoder for U16LenCodec {
    type Item = BytesMut;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        let Some(header) = Self::peek_header(src) else {
            return Ok(None);
        };
        let len = self.parse_header(header)?;
        // len <= 65,535: no overflow possible, but keep the arithmetic checked like every length here.
        let total = HEADER.checked_add(len).ok_or(FramingError::TooLong {
            len,
            max: self.max_len,
        })?;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(HEADER);
        Ok(Some(src.split_to(len)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FramingError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => {
                let want = match Self::peek_header(buf) {
                    Some(header) => self.parse_header(header)? + HEADER,
                    None => HEADER,
                };
                Err(FramingError::Truncated {
                    have: buf.len(),
                    want,
                })
            }
        }
    }
}

impl Encoder<Bytes> for U16LenCodec {
    type Error = FramingError;

    fn encode(&mut self, body: Bytes, dst: &mut BytesMut) -> Result<(), FramingError> {
        self.encode_slice(&body, dst)
    }
}

impl Encoder<&[u8]> for U16LenCodec {
    type Error = FramingError;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), FramingError> {
        self.encode_slice(body, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> U16LenCodec {
        U16LenCodec::default()
    }

    #[test]
    fn encodes_big_endian_header() {
        let mut dst = BytesMut::new();
        codec().encode(&b"hello"[..], &mut dst).expect("encode");
        assert_eq!(&dst[..], b"\x00\x05hello");
        let mut dst = BytesMut::new();
        codec().encode(&[7u8; 300][..], &mut dst).expect("encode");
        assert_eq!(&dst[..2], &[0x01, 0x2C]);
        assert_eq!(dst.len(), 302);
    }

    #[test]
    fn decodes_frames_split_at_every_chunk_size() {
        let big = vec![0xA5u8; 4096];
        let mut wire = BytesMut::new();
        codec().encode(&b"first"[..], &mut wire).expect("encode");
        codec().encode(&b""[..], &mut wire).expect("encode");
        codec().encode(&big[..], &mut wire).expect("encode");
        codec()
            .encode(Bytes::from_static(b"\x00\x01last"), &mut wire)
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
            assert!(c.decode_eof(&mut buf).expect("clean eof").is_none());
            assert_eq!(
                frames,
                vec![
                    Bytes::from_static(b"first"),
                    Bytes::new(),
                    Bytes::from(big.clone()),
                    Bytes::from_static(b"\x00\x01last"),
                ],
                "chunk size {chunk}"
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn needs_more_bytes_until_header_and_body_are_in() {
        let mut c = codec();
        let mut buf = BytesMut::from(&b"\x00"[..]);
        assert!(c.decode(&mut buf).expect("partial header").is_none());
        buf.extend_from_slice(b"\x03ab");
        assert!(c.decode(&mut buf).expect("partial body").is_none());
        assert_eq!(buf.len(), 4, "nothing consumed while incomplete");
        buf.extend_from_slice(b"c");
        assert_eq!(
            &c.decode(&mut buf).expect("whole").expect("frame")[..],
            b"abc"
        );
    }

    #[test]
    fn rejects_oversize_before_reading_body() {
        // 4,097 announced, nothing of the body there yet.
        let mut buf = BytesMut::from(&[0x10u8, 0x01][..]);
        let err = codec().decode(&mut buf).expect_err("must fail");
        assert!(
            matches!(
                err,
                FramingError::TooLong {
                    len: 4097,
                    max: 4096
                }
            ),
            "{err}"
        );
        // Exactly the maximum is fine.
        let mut buf = BytesMut::from(&[0x10u8, 0x00][..]);
        assert!(codec().decode(&mut buf).expect("at max").is_none());
    }

    #[test]
    fn maximum_is_configurable_and_clamped() {
        let mut small = U16LenCodec::new(10);
        let mut buf = BytesMut::from(&b"\x00\x0bhello world"[..]);
        assert!(matches!(
            small.decode(&mut buf),
            Err(FramingError::TooLong { len: 11, max: 10 })
        ));
        assert_eq!(U16LenCodec::new(1 << 20).max_len(), 65_535);
        let mut dst = BytesMut::new();
        assert!(small.encode(&[0u8; 11][..], &mut dst).is_err());
        assert!(dst.is_empty(), "nothing written on error");
        assert!(codec().encode(&[0u8; 4097][..], &mut dst).is_err());
    }

    #[test]
    fn eof_inside_frame_is_an_error() {
        let mut c = codec();
        let mut buf = BytesMut::from(&b"\x00\x0aabc"[..]);
        assert!(c.decode(&mut buf).expect("partial").is_none());
        let err = c.decode_eof(&mut buf).expect_err("truncated");
        assert!(
            matches!(err, FramingError::Truncated { have: 5, want: 12 }),
            "{err}"
        );
        let mut buf = BytesMut::from(&b"\x00"[..]);
        let err = c.decode_eof(&mut buf).expect_err("truncated header");
        assert!(
            matches!(err, FramingError::Truncated { have: 1, want: 2 }),
            "{err}"
        );
    }
}

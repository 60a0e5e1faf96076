//! PDU framing: the 16-octet header every SMPP PDU starts with, and a codec that cuts a byte stream
//! into PDUs and reads each with `rusmpp`.
//!
//! ```text
//! 0               4               8               12              16
//! +---------------+---------------+---------------+---------------+------------------+
//! | command_length| command_id    | command_status| sequence_num  | body ...         |
//! | u32 BE, >= 16 | u32 BE        | u32 BE        | u32 BE        | length - 16 octs |
//! +---------------+---------------+---------------+---------------+------------------+
//! ```
//!
//! Why not `rusmpp`'s own `CommandCodec` alone: it leaves a body it does not expect in the buffer
//! (an `enquire_link` with a body desynchronises the stream) and a body it cannot read ends the stream
//! without telling which PDU it was, so the peer could not be answered. Here the length header cuts the
//! frame first; then `rusmpp` reads exactly that frame, and what it cannot read (or reads with octets
//! left over) comes out as [`Inbound::Malformed`] with the header, so the session answers
//! `generic_nack` or the matching `*_resp` with an error and goes on. Only a length outside
//! `16..=max` is fatal to the connection: nothing after it can be trusted.
use bytes::{Buf, BytesMut};
use rusmpp::Command;
use rusmpp::tokio_codec::CommandCodec;
use tokio_util::codec::{Decoder, Encoder};

/// Octets of the header.
pub const HEADER_LEN: usize = 16;
/// Default largest PDU accepted (a `deliver_sm` with a long `message_payload` stays well below).
pub const DEFAULT_MAX_PDU: usize = 8192;

/// The header of a PDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Octets of the whole PDU, header included.
    pub command_length: u32,
    /// Which PDU (`0x80000000` set for responses).
    pub command_id: u32,
    /// Status (responses).
    pub command_status: u32,
    /// Matches a response to its request.
    pub sequence_number: u32,
}

impl Header {
    /// Reads the first 16 octets of `pdu`.
    pub fn read(pdu: &[u8]) -> Option<Header> {
        let word = |i: usize| -> Option<u32> {
            let b: [u8; 4] = pdu.get(i..i + 4)?.try_into().ok()?;
            Some(u32::from_be_bytes(b))
        };
        Some(Header {
            command_length: word(0)?,
            command_id: word(4)?,
            command_status: word(8)?,
            sequence_number: word(12)?,
        })
    }

    /// Whether the PDU is a response (`command_id` high bit).
    pub fn is_response(&self) -> bool {
        self.command_id & 0x8000_0000 != 0
    }
}

/// A PDU read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Read in full (boxed: a command is some 300 octets, the malformed case a few dozen).
    Pdu(Box<Command>),
    /// Framed correctly, but the body could not be read: answer it with an error and go on.
    Malformed {
        /// Its header.
        header: Header,
        /// What is wrong.
        error: PduError,
    },
}

/// Why a framed PDU could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PduError {
    /// The body does not read as the PDU its `command_id` names (`rusmpp`'s reason, which names the
    /// kind of problem, never the content).
    #[error("{command_id:#010x} body unreadable: {reason}")]
    Body {
        /// The PDU's `command_id`.
        command_id: u32,
        /// Why.
        reason: String,
    },
    /// The body read, but `extra` octets were left after it.
    #[error("{command_id:#010x}: {extra} octet(s) after the body")]
    TrailingOctets {
        /// The PDU's `command_id`.
        command_id: u32,
        /// Octets left over.
        extra: usize,
    },
}

/// Why the stream cannot be read further.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A `command_length` outside `16..=max`.
    #[error("command_length {length} outside {min}..={max}")]
    Length {
        /// The length read.
        length: u32,
        /// 16.
        min: usize,
        /// The codec's limit.
        max: usize,
    },
    /// The stream ended inside a PDU.
    #[error("stream ended {buffered} octet(s) into a PDU")]
    Truncated {
        /// Octets of the unfinished PDU.
        buffered: usize,
    },
    /// Reading or writing the socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Cuts a stream into PDUs ([`Decoder`]) and writes [`Command`]s ([`Encoder`]).
#[derive(Debug, Clone, Copy)]
pub struct SmppCodec {
    max_pdu: usize,
}

impl Default for SmppCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PDU)
    }
}

impl SmppCodec {
    /// A codec accepting PDUs of at most `max_pdu` octets (at least 16).
    pub fn new(max_pdu: usize) -> Self {
        Self {
            max_pdu: max_pdu.max(HEADER_LEN),
        }
    }

    /// The largest PDU accepted.
    pub fn max_pdu(&self) -> usize {
        self.max_pdu
    }
}

/// Reads one complete PDU (`pdu.len()` equal to its `command_length`, checked by the caller).
fn read_pdu(header: Header, pdu: &[u8]) -> Inbound {
    let mut buf = BytesMut::from(pdu);
    let mut inner = CommandCodec::new().without_max_length();
    let malformed = |error| Inbound::Malformed { header, error };
    match inner.decode(&mut buf) {
        Ok(Some(cmd)) if buf.is_empty() => Inbound::Pdu(Box::new(cmd)),
        Ok(Some(_)) => malformed(PduError::TrailingOctets {
            command_id: header.command_id,
            extra: buf.len(),
        }),
        Ok(None) => malformed(PduError::Body {
            command_id: header.command_id,
            reason: "incomplete".to_owned(),
        }),
        Err(e) => malformed(PduError::Body {
            command_id: header.command_id,
            reason: e.to_string(),
        }),
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        let Some(len_octets) = src.get(..4) else {
            return Ok(None);
        };
        let mut word = [0u8; 4];
        word.copy_from_slice(len_octets);
        let length = u32::from_be_bytes(word);
        let len = usize::try_from(length).unwrap_or(usize::MAX);
        if len < HEADER_LEN || len > self.max_pdu {
            return Err(FrameError::Length {
                length,
                min: HEADER_LEN,
                max: self.max_pdu,
            });
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let pdu = src.split_to(len);
        let Some(header) = Header::read(&pdu) else {
            // Unreachable: len >= 16 was checked; kept total rather than panicking.
            return Err(FrameError::Truncated {
                buffered: pdu.len(),
            });
        };
        Ok(Some(read_pdu(header, &pdu)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let buffered = src.remaining();
                src.clear();
                Err(FrameError::Truncated { buffered })
            }
        }
    }
}

impl Encoder<&Command> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, cmd: &Command, dst: &mut BytesMut) -> Result<(), FrameError> {
        let mut inner = CommandCodec::new().without_max_length();
        inner.encode(cmd, dst).map_err(|e| match e {
            rusmpp::tokio_codec::EncodeError::Io(io) => FrameError::Io(io),
            other => FrameError::Io(std::io::Error::other(other.to_string())),
        })
    }
}

impl Encoder<Command> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, cmd: Command, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&cmd, dst)
    }
}

/// Encodes one command to octets (tests, golden files, the fuzz corpus).
pub fn to_octets(cmd: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    // Encoding into memory cannot fail: `rusmpp`'s only encode error is I/O.
    let _ = SmppCodec::default().encode(cmd, &mut buf);
    buf.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusmpp::{CommandId, CommandStatus, Pdu};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn all(codec: &mut SmppCodec, bytes: &[u8]) -> (Vec<Inbound>, Option<FrameError>) {
        let mut src = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match codec.decode_eof(&mut src) {
                Ok(Some(f)) => out.push(f),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn a_body_on_a_bodiless_pdu_is_malformed_and_the_stream_stays_in_step() {
        let bytes = hex("00000014 00000015 00000000 00000001 deadbeef
             00000010 00000015 00000000 00000002");
        let (frames, err) = all(&mut SmppCodec::default(), &bytes);
        assert!(err.is_none());
        assert!(matches!(
            &frames[0],
            Inbound::Malformed { header, error: PduError::TrailingOctets { extra: 4, .. } }
                if header.sequence_number == 1
        ));
        assert!(
            matches!(&frames[1], Inbound::Pdu(c) if c.id() == CommandId::EnquireLink && c.sequence_number == 2)
        );
    }

    #[test]
    fn an_unreadable_body_keeps_its_header() {
        // deliver_sm whose body stops after service_type.
        let bytes =
            hex("00000011 00000005 00000000 00000007 00 00000010 00000015 00000000 00000008");
        let (frames, err) = all(&mut SmppCodec::default(), &bytes);
        assert!(err.is_none());
        assert!(matches!(
            &frames[0],
            Inbound::Malformed { header, error: PduError::Body { command_id: 5, .. } }
                if header.sequence_number == 7
        ));
        assert!(matches!(&frames[1], Inbound::Pdu(c) if c.sequence_number == 8));
    }

    #[test]
    fn lengths_outside_the_bounds_end_the_stream() {
        let mut c = SmppCodec::new(64);
        let (_, err) = all(&mut c, &hex("0000000f 00000015 00000000 00000001"));
        assert!(matches!(err, Some(FrameError::Length { length: 15, .. })));
        let (_, err) = all(&mut c, &hex("00000041 00000015 00000000 00000001"));
        assert!(matches!(
            err,
            Some(FrameError::Length {
                length: 65,
                max: 64,
                ..
            })
        ));
        let (_, err) = all(&mut c, &hex("00000010 00000015 0000"));
        assert!(matches!(err, Some(FrameError::Truncated { buffered: 10 })));
    }

    #[test]
    fn split_reads_yield_the_same_pdus() {
        let one = to_octets(&Command::new(CommandStatus::EsmeRok, 9, Pdu::EnquireLink));
        let stream: Vec<u8> = [one.clone(), one.clone(), one].concat();
        for step in 1..stream.len() {
            let mut c = SmppCodec::default();
            let mut src = BytesMut::new();
            let mut n = 0;
            for chunk in stream.chunks(step) {
                src.extend_from_slice(chunk);
                while let Some(f) = c.decode(&mut src).expect("decode") {
                    assert!(matches!(f, Inbound::Pdu(ref c) if c.sequence_number == 9));
                    n += 1;
                }
            }
            assert_eq!(n, 3, "step {step}");
        }
    }

    #[test]
    fn header_reads_responses() {
        let h = Header::read(&hex("00000010 80000004 00000058 0000002a")).expect("header");
        assert!(h.is_response());
        assert_eq!((h.command_status, h.sequence_number), (0x58, 42));
        assert!(Header::read(&[0; 15]).is_none());
    }
}

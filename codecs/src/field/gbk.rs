//! Strict GBK text, as the banks' interfaces define it.
//!
//! "GBK" here is the GBK of the WHATWG encoding standard **without** the single byte `0x80` (which that
//! standard maps to `€`) and **without** four-byte GB 18030 sequences. Text with a character outside that
//! set is an error: it is never replaced by `?` or dropped. Byte layout:
//!
//! ```text
//! 0x00..=0x7F          one byte (ASCII)
//! 0x81..=0xFE  trail   two bytes, trail in 0x40..=0x7E | 0x80..=0xFE
//! 0x80, 0xFF           never valid; lead + 0x30..=0x39 (GB 18030 four-byte) never valid
//! ```
use encoding_rs::{DecoderResult, EncoderResult, GBK};

/// Why text is not strict GBK. Positions, never content, so personal data stays out of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GbkError {
    /// The character at `position` (1-based, in characters) has no GBK form.
    #[error("character {position} has no GBK form")]
    Unmappable {
        /// 1-based character position in the text.
        position: usize,
    },
    /// The bytes at `offset` are not a GBK character.
    #[error("byte {offset} is not valid GBK")]
    Malformed {
        /// Byte offset of the first bad byte.
        offset: usize,
    },
}

/// Appends the strict GBK bytes of `text` to `out`. On error `out` may hold a partial encoding.
pub fn encode_into(text: &str, out: &mut Vec<u8>) -> Result<(), GbkError> {
    if text.is_ascii() {
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    let mut encoder = GBK.new_encoder();
    let start = out.len();
    let room = encoder
        .max_buffer_length_from_utf8_without_replacement(text.len())
        .unwrap_or(text.len() * 2);
    out.resize(start + room, 0);
    let (result, read, written) =
        encoder.encode_from_utf8_without_replacement(text, &mut out[start..], true);
    out.truncate(start + written);
    match result {
        EncoderResult::InputEmpty => {}
        EncoderResult::Unmappable(c) => {
            let consumed = read - c.len_utf8();
            return Err(GbkError::Unmappable {
                position: text[..consumed].chars().count() + 1,
            });
        }
        // The buffer was sized by the encoder's own bound: report rather than panic should it ever lie.
        EncoderResult::OutputFull => {
            return Err(GbkError::Unmappable {
                position: text[..read].chars().count() + 1,
            });
        }
    }
    // WHATWG GBK encodes U+20AC as the single byte 0x80, which the banks do not accept.
    if let Some(pos) = text.chars().position(|c| c == '\u{20AC}') {
        out.truncate(start);
        return Err(GbkError::Unmappable { position: pos + 1 });
    }
    Ok(())
}

/// The strict GBK bytes of `text`.
pub fn encode(text: &str) -> Result<Vec<u8>, GbkError> {
    let mut out = Vec::with_capacity(text.len());
    encode_into(text, &mut out)?;
    Ok(out)
}

/// Checks that `text` has a strict GBK form and returns its length in bytes.
pub fn encoded_len(text: &str) -> Result<usize, GbkError> {
    if text.is_ascii() {
        return Ok(text.len());
    }
    encode(text).map(|v| v.len())
}

/// Checks the byte structure (no `0x80`/`0xFF`, no four-byte sequences, no lone lead byte).
pub fn check_structure(bytes: &[u8]) -> Result<(), GbkError> {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x80 {
            i += 1;
            continue;
        }
        if b == 0x80 || b == 0xFF {
            return Err(GbkError::Malformed { offset: i });
        }
        match bytes.get(i + 1) {
            Some(&t) if (0x40..=0x7E).contains(&t) || (0x80..=0xFE).contains(&t) => i += 2,
            _ => return Err(GbkError::Malformed { offset: i }),
        }
    }
    Ok(())
}

/// Decodes strict GBK bytes.
pub fn decode(bytes: &[u8]) -> Result<String, GbkError> {
    if bytes.is_ascii() {
        // ASCII is valid UTF-8 as it is.
        return Ok(bytes.iter().map(|&b| char::from(b)).collect());
    }
    check_structure(bytes)?;
    let mut decoder = GBK.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 3 / 2 + 4);
    let mut read_total = 0;
    loop {
        let (result, read) =
            decoder.decode_to_string_without_replacement(&bytes[read_total..], &mut out, true);
        read_total += read;
        match result {
            DecoderResult::InputEmpty => {
                // Strict: every character must come back to the same bytes (WHATWG GBK decodes a few
                // byte pairs, e.g. A2E3 -> U+20AC, that the banks' code page does not have).
                let again = encode(&out).map_err(|e| GbkError::Malformed {
                    offset: match e {
                        GbkError::Unmappable { position } => offset_of_char(bytes, position),
                        GbkError::Malformed { offset } => offset,
                    },
                })?;
                if again != bytes {
                    return Err(GbkError::Malformed {
                        offset: first_difference(bytes, &again),
                    });
                }
                return Ok(out);
            }
            DecoderResult::OutputFull => out.reserve(bytes.len()),
            DecoderResult::Malformed(bad, extra) => {
                let offset = read_total.saturating_sub(usize::from(bad) + usize::from(extra));
                return Err(GbkError::Malformed { offset });
            }
        }
    }
}

fn offset_of_char(bytes: &[u8], position: usize) -> usize {
    let mut i = 0;
    for _ in 1..position {
        if i >= bytes.len() {
            break;
        }
        i += if bytes[i] < 0x80 { 1 } else { 2 };
    }
    i.min(bytes.len())
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    let mut i = 0;
    while i < a.len() {
        let step = if a[i] < 0x80 { 1 } else { 2 };
        if a.get(i..i + step) != b.get(i..i + step) {
            return i;
        }
        i += step;
    }
    i
}

/// The largest prefix length of `bytes` (valid GBK) that is at most `max` and ends on a character
/// boundary: cutting there never splits a double-byte character.
pub fn boundary_at_most(bytes: &[u8], max: usize) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        let step = if bytes[i] < 0x80 { 1 } else { 2 };
        if i + step > max {
            break;
        }
        i += step;
    }
    i.min(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_common_hanzi_in_two_bytes() {
        assert_eq!(encode("张三").expect("gbk"), vec![0xD5, 0xC5, 0xC8, 0xFD]);
        assert_eq!(encode("A张").expect("gbk"), vec![b'A', 0xD5, 0xC5]);
    }

    #[test]
    fn refuses_characters_outside_gbk() {
        // 𠀀 (U+20000) exists only in GB 18030 (four bytes).
        assert_eq!(encode("王𠀀明"), Err(GbkError::Unmappable { position: 2 }));
        // The euro sign is the single byte 0x80 in WHATWG GBK: not accepted by the banks.
        assert_eq!(encode("ab€"), Err(GbkError::Unmappable { position: 3 }));
        // U+00B7 middle dot is fine (A1A4).
        assert!(encode("阿依·买买提").is_ok());
    }

    #[test]
    fn decodes_and_rejects_four_byte_and_0x80() {
        assert_eq!(decode(&[0xD5, 0xC5, 0xC8, 0xFD]).expect("ok"), "张三");
        assert_eq!(
            decode(&[b'a', 0x80]),
            Err(GbkError::Malformed { offset: 1 })
        );
        assert_eq!(
            decode(&[0x81, 0x30, 0x81, 0x30]),
            Err(GbkError::Malformed { offset: 0 })
        );
        assert_eq!(
            decode(&[b'x', 0xD5]),
            Err(GbkError::Malformed { offset: 1 })
        );
        // A2E3 is U+20AC in WHATWG GBK, which the banks' code page lacks; A3A0 would come back as A1A1.
        assert_eq!(
            decode(&[b'a', 0xA2, 0xE3]),
            Err(GbkError::Malformed { offset: 1 })
        );
        assert_eq!(
            decode(&[0xA3, 0xA0]),
            Err(GbkError::Malformed { offset: 0 })
        );
    }

    #[test]
    fn boundary_never_splits_a_character() {
        let b = encode("a张三").expect("gbk");
        assert_eq!(boundary_at_most(&b, 5), 5);
        assert_eq!(boundary_at_most(&b, 4), 3);
        assert_eq!(boundary_at_most(&b, 2), 1);
        assert_eq!(boundary_at_most(&b, 0), 0);
        assert_eq!(boundary_at_most(&b, 100), 5);
    }
}

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

use super::scan;

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
    let start = out.len();
    if encode_fast(text, out) {
        return Ok(());
    }
    // A character without a strict pair: the reference encoder says which, and how.
    out.truncate(start);
    encode_slow(text, out)
}

/// Encodes by the inverse of the pair table: ASCII runs copied, other characters looked up. `false`
/// (with `out` holding part of the text) at the first character without a strict pair, which is
/// also what [`encode_slow`] refuses: a character encoding_rs writes as a pair is that pair's
/// character, so the pair is strict (a test compares the two over the whole BMP).
fn encode_fast(text: &str, out: &mut Vec<u8>) -> bool {
    let table = char_table();
    // A GBK character never takes more bytes than its UTF-8 form.
    out.reserve(text.len());
    let mut rest = text;
    loop {
        let run = scan::prefix(rest.as_bytes(), |b| b < 0x80);
        let (ascii, tail) = rest.split_at(run);
        out.extend_from_slice(ascii.as_bytes());
        let mut chars = tail.chars();
        let Some(c) = chars.next() else {
            return true;
        };
        let pair = usize::try_from(u32::from(c))
            .ok()
            .and_then(|i| table.get(i).copied())
            .unwrap_or(0);
        if pair == 0 {
            return false;
        }
        out.extend_from_slice(&pair.to_be_bytes());
        rest = chars.as_str();
    }
}

/// The strict pair (lead byte high) of every character of the Basic Multilingual Plane that has one,
/// by code point (0: none; pairs start at 0x8140): the inverse of [`pair_table`].
fn char_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Box<[u16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let pairs = pair_table();
        let mut table = vec![0u16; 0x1_0000];
        for lead in LEADS {
            for trail in (0x40..=0x7Eu8).chain(0x80..=0xFE) {
                let unit = pair_index(lead, trail)
                    .and_then(|i| pairs.get(i).copied())
                    .unwrap_or(0);
                if let (true, Some(slot)) = (unit != 0, table.get_mut(usize::from(unit))) {
                    *slot = u16::from_be_bytes([lead, trail]);
                }
            }
        }
        table.into_boxed_slice()
    })
}

/// The reference encoder: encoding_rs, then the euro sign refused.
fn encode_slow(text: &str, out: &mut Vec<u8>) -> Result<(), GbkError> {
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
    if text.contains('\u{20AC}')
        && let Some(pos) = text.chars().position(|c| c == '\u{20AC}')
    {
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
    match decode_fast(bytes) {
        Some(text) => Ok(text),
        None => decode_slow(bytes),
    }
}

/// Checks that `bytes` are strict GBK (what [`decode`] accepts) without building the text.
pub fn check(bytes: &[u8]) -> Result<(), GbkError> {
    if is_strict(bytes) {
        Ok(())
    } else {
        decode_slow(bytes).map(drop)
    }
}

/// Lead bytes of two-byte characters.
const LEADS: std::ops::RangeInclusive<u8> = 0x81..=0xFE;
/// Trail bytes per lead: 0x40..=0x7E and 0x80..=0xFE.
const TRAILS: usize = 63 + 127;

/// The character of every strict two-byte pair (0: not strict), by `(lead - 0x81) * TRAILS + trail
/// index`. Built once from encoding_rs by the same rule as the reference decoder (a pair is strict when
/// it decodes to one character that encodes back to the same pair), so the fast paths accept exactly
/// what [`decode_slow`] accepts: every GBK two-byte character is in the Basic Multilingual Plane.
fn pair_table() -> &'static [u16] {
    static TABLE: std::sync::OnceLock<Box<[u16]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = vec![0u16; LEADS.len() * TRAILS];
        let mut decoder = GBK.new_decoder_without_bom_handling();
        for lead in LEADS {
            for trail in (0x40..=0x7Eu8).chain(0x80..=0xFE) {
                let pair = [lead, trail];
                let mut buf = [0u8; 8];
                let (result, _, written) =
                    decoder.decode_to_utf8_without_replacement(&pair, &mut buf, true);
                decoder = GBK.new_decoder_without_bom_handling();
                let Ok(text) = std::str::from_utf8(&buf[..written]) else {
                    continue;
                };
                let mut chars = text.chars();
                let (Some(c), None) = (chars.next(), chars.next()) else {
                    continue;
                };
                // The reference encoder: the fast one is built from this table.
                let mut again = Vec::new();
                if result != DecoderResult::InputEmpty
                    || encode_slow(text, &mut again).is_err()
                    || again != pair
                {
                    continue;
                }
                if let (Some(i), Ok(unit)) = (pair_index(lead, trail), u16::try_from(u32::from(c)))
                {
                    table[i] = unit;
                }
            }
        }
        table.into_boxed_slice()
    })
}

fn pair_index(lead: u8, trail: u8) -> Option<usize> {
    let t = match trail {
        0x40..=0x7E => trail - 0x40,
        0x80..=0xFE => trail - 0x80 + 63,
        _ => return None,
    };
    if !LEADS.contains(&lead) {
        return None;
    }
    Some(usize::from(lead - 0x81) * TRAILS + usize::from(t))
}

/// The character of a strict pair.
fn pair_char(table: &[u16], lead: u8, trail: u8) -> Option<char> {
    let unit = *table.get(pair_index(lead, trail)?)?;
    if unit == 0 {
        return None;
    }
    char::from_u32(u32::from(unit))
}

/// Whether `bytes` are strict GBK, by the pair table.
fn is_strict(bytes: &[u8]) -> bool {
    strict_with(bytes, |b| b < 0x80)
}

/// Whether `bytes` are strict GBK text without control characters (C0 and DEL: in GBK those are
/// single bytes, since every trail byte is 0x40 or above): what a text field may hold.
pub fn is_strict_text(bytes: &[u8]) -> bool {
    strict_with(bytes, scan::printable)
}

/// Strict GBK whose single bytes are all `single`, runs of them skipped a chunk at a time.
#[inline]
fn strict_with(bytes: &[u8], single: impl Fn(u8) -> bool + Copy) -> bool {
    let table = pair_table();
    let mut i = 0;
    while i < bytes.len() {
        i += scan::prefix(&bytes[i..], single);
        let Some(&lead) = bytes.get(i) else {
            break;
        };
        match bytes.get(i + 1) {
            Some(&trail) if lead >= 0x80 && pair_char(table, lead, trail).is_some() => i += 2,
            _ => return false,
        }
    }
    true
}

/// Decodes strict GBK text without control characters (see [`is_strict_text`]) in one pass; `None`
/// when the bytes are not that (ask [`check`] and a control-byte scan which it is).
pub fn decode_text(bytes: &[u8]) -> Option<String> {
    let mut out = String::new();
    decode_text_into(bytes, &mut out).then_some(out)
}

/// [`decode_text`] appending to `out` (a buffer reused from record to record: no allocation once it
/// is large enough). `false`, with `out` as it was, when the bytes are not strict GBK text.
pub fn decode_text_into(bytes: &[u8], out: &mut String) -> bool {
    let start = out.len();
    if decode_with(bytes, scan::printable, out).is_some() {
        return true;
    }
    out.truncate(start);
    false
}

/// Decodes by the pair table: ASCII runs copied, pairs looked up. `None` for anything that is not
/// strict GBK (the caller asks [`decode_slow`] which error it is).
fn decode_fast(bytes: &[u8]) -> Option<String> {
    if bytes.is_ascii() {
        return std::str::from_utf8(bytes).ok().map(str::to_owned);
    }
    let mut out = String::new();
    decode_with(bytes, |b| b < 0x80, &mut out).map(|()| out)
}

/// Strict GBK whose single bytes are all `single`, decoded and appended to `out` (which holds part of
/// it when the answer is `None`).
#[inline]
fn decode_with(bytes: &[u8], single: impl Fn(u8) -> bool + Copy, out: &mut String) -> Option<()> {
    let table = pair_table();
    // Two GBK bytes become at most three UTF-8 bytes.
    out.reserve(bytes.len() + bytes.len() / 2);
    let mut i = 0;
    while i < bytes.len() {
        let run = scan::prefix(&bytes[i..], single);
        if run > 0 {
            out.push_str(std::str::from_utf8(&bytes[i..i + run]).ok()?);
            i += run;
            continue;
        }
        let lead = bytes[i];
        if lead < 0x80 {
            return None;
        }
        out.push(pair_char(table, lead, *bytes.get(i + 1)?)?);
        i += 2;
    }
    Some(())
}

/// The reference decoder: encoding_rs, then every character encoded back and compared. Only run when
/// [`decode_fast`] refused the bytes, to find the error (and as the oracle of the table's tests).
fn decode_slow(bytes: &[u8]) -> Result<String, GbkError> {
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
                let mut again = Vec::with_capacity(bytes.len());
                encode_slow(&out, &mut again).map_err(|e| GbkError::Malformed {
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
    fn pair_table_accepts_exactly_what_the_reference_decoder_accepts() {
        let mut strict = 0;
        for lead in 0x80..=0xFFu8 {
            for trail in 0x00..=0xFFu8 {
                let pair = [b'a', lead, trail, b'z'];
                let slow = decode_slow(&pair);
                assert_eq!(decode(&pair), slow, "{lead:02X}{trail:02X}");
                assert_eq!(check(&pair), slow.as_ref().map(drop).map_err(|e| *e));
                strict += usize::from(slow.is_ok());
            }
        }
        // GBK's two-byte area less the pairs that do not come back (A2E3 and a few others).
        assert!(strict > 21_000, "{strict}");
        for cut in [
            &[0xD5][..],
            &[b'a', 0xD5, 0xC5, 0xC8],
            &[0xD5, 0x30],
            &[0x81, 0x30, 0x81, 0x30],
        ] {
            assert_eq!(decode(cut), decode_slow(cut), "{cut:02X?}");
            assert!(check(cut).is_err());
        }
        for b in 0..=0xFFu8 {
            let bytes = [0xD5, 0xC5, b, b'a'];
            let text_ok = check(&bytes).is_ok() && !bytes.iter().any(|&c| c < 0x20 || c == 0x7F);
            assert_eq!(is_strict_text(&bytes), text_ok, "{b:02X}");
            assert_eq!(
                decode_text(&bytes),
                text_ok.then(|| decode(&bytes).expect("ok"))
            );
            // Into a buffer: appended after what it holds, or the buffer left as it was.
            let mut buf = String::from("前");
            assert_eq!(decode_text_into(&bytes, &mut buf), text_ok, "{b:02X}");
            let expected = match decode_text(&bytes) {
                Some(t) => format!("前{t}"),
                None => "前".to_owned(),
            };
            assert_eq!(buf, expected, "{b:02X}");
        }
        let text = "阿依古丽·买买提 NM004张三 2026年耕地地力保护补贴";
        let bytes = encode(text).expect("gbk");
        assert_eq!(decode(&bytes).expect("decode"), text);
        assert_eq!(check(&bytes), Ok(()));
    }

    #[test]
    fn fast_encoder_writes_what_the_reference_encoder_writes() {
        let mut encoded = 0;
        for c in (0x80..=0xFFFFu32).filter_map(char::from_u32) {
            let text = format!("a{c}z");
            let mut slow = Vec::new();
            let slow = encode_slow(&text, &mut slow).map(|()| slow);
            let mut fast = Vec::new();
            if encode_fast(&text, &mut fast) {
                assert_eq!(Ok(&fast), slow.as_ref(), "U+{:04X}", u32::from(c));
                encoded += 1;
            }
            let mut out = Vec::new();
            assert_eq!(
                encode_into(&text, &mut out).map(|()| out),
                slow,
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert!(encoded > 21_000, "{encoded}");
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

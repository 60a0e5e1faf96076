//! Text of a short message: UCS-2 big-endian (`data_coding` `0x08`) and concatenation with a UDH.
//!
//! ```text
//! one part (<= 70 UTF-16 units):   esm_class 0x00   short_message = UTF-16BE text (<= 140 octets)
//! concatenated (> 70 units):       esm_class 0x40   short_message = 05 00 03 <ref> <total> <seq> | UTF-16BE
//!                                                                  \______ UDH, 6 octets ____/   (<= 67 units)
//!   05 UDH length (5 octets follow)   00 IEI "concatenated short message, 8-bit reference"
//!   03 IE length                      ref: the same on every part, total: parts, seq: 1-based
//! ```
//!
//! Lengths are counted in UTF-16 code units, not characters: a character outside the Basic
//! Multilingual Plane (an emoji, a rare hanzi of CJK extension B) takes two units (a surrogate pair)
//! and is never split between two parts — a part then carries 66 units. Handsets read `0x08` as
//! UTF-16 in practice; strict UCS-2 has no surrogates, and a centre that insists on it would garble
//! such a character whatever we do.
use std::fmt;

/// UTF-16 units of a message sent alone.
pub const SINGLE_UNITS: usize = 70;
/// UTF-16 units of one part of a concatenated message (140 octets less the 6-octet UDH, halved).
pub const PART_UNITS: usize = 67;
/// Most parts a concatenated message can have (`total` is one octet).
pub const MAX_PARTS: usize = 255;
/// `esm_class` of a part that starts with a UDH (UDHI, bit 6).
pub const ESM_CLASS_UDHI: u8 = 0x40;
/// `data_coding` of UCS-2.
pub const DATA_CODING_UCS2: u8 = 0x08;

/// Where a part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// Reference shared by every part of the message.
    pub reference: u8,
    /// Number of parts.
    pub total: u8,
    /// This part, `1..=total`.
    pub seq: u8,
}

impl Concat {
    /// The 6-octet UDH `05 00 03 ref total seq`.
    pub fn udh(&self) -> [u8; 6] {
        [0x05, 0x00, 0x03, self.reference, self.total, self.seq]
    }
}

/// One `short_message` ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Part {
    /// Its place in a concatenated message; `None` for a message sent alone.
    pub concat: Option<Concat>,
    /// The octets of `short_message`: the UDH (if any), then the UTF-16BE text.
    pub short_message: Vec<u8>,
}

impl Part {
    /// `esm_class` to send it with: `0x40` with a UDH, `0x00` without.
    pub fn esm_class(&self) -> u8 {
        if self.concat.is_some() {
            ESM_CLASS_UDHI
        } else {
            0
        }
    }
}

// The text is the recipient's notice: lengths only.
impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("concat", &self.concat)
            .field("octets", &self.short_message.len())
            .finish()
    }
}

/// Why a text cannot be sent or read. Offsets are in octets of the `short_message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The text is empty: an empty SMS is never what was meant.
    #[error("the text is empty")]
    Empty,
    /// More than 255 parts would be needed.
    #[error("the text needs {units} UTF-16 units, more than {max_parts} parts can carry")]
    TooLong {
        /// UTF-16 units of the text.
        units: usize,
        /// The most parts a message can have.
        max_parts: usize,
    },
    /// A UCS-2 text of an odd number of octets.
    #[error("UCS-2 text of {len} octets: not a whole number of units")]
    OddLength {
        /// Octets of the text.
        len: usize,
    },
    /// A surrogate without its other half.
    #[error("unpaired UTF-16 surrogate at octet {offset}")]
    UnpairedSurrogate {
        /// Octet offset of the unit.
        offset: usize,
    },
    /// The UDH is cut short or its length disagrees with its elements.
    #[error("user data header malformed at octet {offset}: {what}")]
    Udh {
        /// Octet offset of the problem.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}

/// UTF-16 units of `text`: what the 70/67 limits count.
pub fn utf16_units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `text` as UTF-16 big-endian octets.
pub fn encode_ucs2(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 2);
    for unit in text.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out
}

/// UTF-16 big-endian octets as text; odd lengths and unpaired surrogates are errors, not `U+FFFD`.
///
/// # Errors
/// [`TextError::OddLength`], [`TextError::UnpairedSurrogate`].
pub fn decode_ucs2(octets: &[u8]) -> Result<String, TextError> {
    if !octets.len().is_multiple_of(2) {
        return Err(TextError::OddLength { len: octets.len() });
    }
    let units = octets
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    let mut out = String::with_capacity(octets.len());
    for (i, r) in char::decode_utf16(units).enumerate() {
        match r {
            Ok(c) => out.push(c),
            Err(_) => {
                // `i` counts decoded items, not units: find the unit's offset again.
                return Err(TextError::UnpairedSurrogate {
                    offset: unpaired_offset(octets).unwrap_or(i * 2),
                });
            }
        }
    }
    Ok(out)
}

fn unpaired_offset(octets: &[u8]) -> Option<usize> {
    let units: Vec<u16> = octets
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        if (0xD800..0xDC00).contains(&u) {
            match units.get(i + 1) {
                Some(l) if (0xDC00..0xE000).contains(l) => i += 2,
                _ => return Some(i * 2),
            }
        } else if (0xDC00..0xE000).contains(&u) {
            return Some(i * 2);
        } else {
            i += 1;
        }
    }
    None
}

/// Splits `text` into the parts to send: one part without UDH when it fits in 70 units, else parts of
/// at most 67 units, each with the UDH `05 00 03 reference total seq`.
///
/// # Errors
/// [`TextError::Empty`], [`TextError::TooLong`] (more than 255 parts).
pub fn split(text: &str, reference: u8) -> Result<Vec<Part>, TextError> {
    let units: Vec<u16> = text.encode_utf16().collect();
    if units.is_empty() {
        return Err(TextError::Empty);
    }
    if units.len() <= SINGLE_UNITS {
        return Ok(vec![Part {
            concat: None,
            short_message: be_octets(&units),
        }]);
    }
    let mut chunks: Vec<&[u16]> = Vec::new();
    let mut rest = units.as_slice();
    while !rest.is_empty() {
        let mut take = rest.len().min(PART_UNITS);
        // Never end a part on a high surrogate: its low half would open the next part.
        if take < rest.len() && is_high_surrogate(rest[take - 1]) {
            take -= 1;
        }
        let (head, tail) = rest.split_at(take);
        chunks.push(head);
        rest = tail;
    }
    let total = u8::try_from(chunks.len())
        .ok()
        .filter(|t| usize::from(*t) <= MAX_PARTS)
        .ok_or(TextError::TooLong {
            units: units.len(),
            max_parts: MAX_PARTS,
        })?;
    Ok(chunks
        .iter()
        .zip(1..=total)
        .map(|(chunk, seq)| {
            let concat = Concat {
                reference,
                total,
                seq,
            };
            let mut short_message = concat.udh().to_vec();
            short_message.extend_from_slice(&be_octets(chunk));
            Part {
                concat: Some(concat),
                short_message,
            }
        })
        .collect())
}

fn is_high_surrogate(u: u16) -> bool {
    (0xD800..0xDC00).contains(&u)
}

fn be_octets(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// Reads a `short_message` sent with `esm_class` `esm_class`: its concatenation element (if the UDHI
/// bit is set and the UDH has one, 8-bit or 16-bit reference) and the user data after the UDH.
/// Other information elements are skipped. A 16-bit reference is reported by its low octet.
///
/// # Errors
/// [`TextError::Udh`] when the UDH is cut short or an element overruns it.
pub fn read_udh(esm_class: u8, short_message: &[u8]) -> Result<(Option<Concat>, &[u8]), TextError> {
    if esm_class & ESM_CLASS_UDHI == 0 {
        return Ok((None, short_message));
    }
    let Some((&udhl, _)) = short_message.split_first() else {
        return Err(TextError::Udh {
            offset: 0,
            what: "UDHI set but the message is empty",
        });
    };
    let end = 1 + usize::from(udhl);
    if short_message.len() < end {
        return Err(TextError::Udh {
            offset: 0,
            what: "UDH length beyond the message",
        });
    }
    let mut concat = None;
    let mut at = 1;
    while at < end {
        let (Some(&iei), Some(&len)) = (short_message.get(at), short_message.get(at + 1)) else {
            return Err(TextError::Udh {
                offset: at,
                what: "information element cut short",
            });
        };
        let body_start = at + 2;
        let body_end = body_start + usize::from(len);
        if body_end > end {
            return Err(TextError::Udh {
                offset: at,
                what: "information element overruns the UDH",
            });
        }
        let body = &short_message[body_start..body_end];
        match (iei, body) {
            (0x00, &[reference, total, seq]) => {
                concat = Some(Concat {
                    reference,
                    total,
                    seq,
                })
            }
            (0x08, &[_, reference, total, seq]) => {
                concat = Some(Concat {
                    reference,
                    total,
                    seq,
                })
            }
            (0x00 | 0x08, _) => {
                return Err(TextError::Udh {
                    offset: at,
                    what: "concatenation element of the wrong length",
                });
            }
            _ => {}
        }
        at = body_end;
    }
    Ok((concat, &short_message[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(parts: &[Part]) -> String {
        parts
            .iter()
            .map(|p| {
                let (c, ud) = read_udh(p.esm_class(), &p.short_message).expect("udh");
                assert_eq!(c, p.concat);
                decode_ucs2(ud).expect("ucs2")
            })
            .collect()
    }

    #[test]
    fn seventy_units_go_alone_without_udh() {
        let t = "补".repeat(70);
        let parts = split(&t, 9).expect("split");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].concat, None);
        assert_eq!(parts[0].esm_class(), 0);
        assert_eq!(parts[0].short_message.len(), 140);
        assert_eq!(&parts[0].short_message[..2], &[0x88, 0x65]);
        assert_eq!(text_of(&parts), t);
    }

    #[test]
    fn seventy_one_units_make_two_parts_with_the_same_reference() {
        let t = "贴".repeat(71);
        let parts = split(&t, 0xA7).expect("split");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].short_message[..6], [5, 0, 3, 0xA7, 2, 1]);
        assert_eq!(parts[1].short_message[..6], [5, 0, 3, 0xA7, 2, 2]);
        assert_eq!(parts[0].short_message.len(), 6 + 134);
        assert_eq!(parts[1].short_message.len(), 6 + 8);
        assert!(parts.iter().all(|p| p.esm_class() == 0x40));
        assert_eq!(text_of(&parts), t);
    }

    #[test]
    fn a_200_character_notice_takes_three_parts() {
        let t: String = "【惠民惠农】您的耕地地力保护补贴1,234.56元已于3月5日发放至您尾号1234的社保卡，请注意查收。"
            .chars()
            .cycle()
            .take(200)
            .collect();
        assert_eq!(t.chars().count(), 200);
        let parts = split(&t, 1).expect("split");
        // 67 + 67 + 66 units.
        assert_eq!(parts.len(), 3);
        let sizes: Vec<usize> = parts.iter().map(|p| p.short_message.len() - 6).collect();
        assert_eq!(sizes, vec![134, 134, 132]);
        assert_eq!(text_of(&parts), t);
    }

    #[test]
    fn characters_outside_the_bmp_count_two_units_and_are_never_split() {
        // 66 BMP characters, then an emoji whose pair would straddle units 67/68.
        let t = format!("{}😀{}", "a".repeat(66), "b".repeat(10));
        assert_eq!(utf16_units(&t), 78);
        let parts = split(&t, 3).expect("split");
        assert_eq!(parts.len(), 2);
        // The first part stops before the pair: 66 units.
        assert_eq!(parts[0].short_message.len(), 6 + 132);
        assert_eq!(&parts[1].short_message[6..10], &[0xD8, 0x3D, 0xDE, 0x00]);
        assert_eq!(text_of(&parts), t);
        // 35 emoji = 70 units: still one part; 36 = 72 units: two.
        assert_eq!(split(&"😀".repeat(35), 0).expect("35").len(), 1);
        let p = split(&"𠀀".repeat(36), 0).expect("36");
        assert_eq!(p.len(), 2);
        assert_eq!(text_of(&p), "𠀀".repeat(36));
        for part in &p {
            let units = (part.short_message.len() - 6) / 2;
            assert!(units <= PART_UNITS && units % 2 == 0, "{units}");
        }
    }

    #[test]
    fn empty_and_oversize_texts_are_refused() {
        assert_eq!(split("", 0), Err(TextError::Empty));
        assert_eq!(
            split(&"x".repeat(255 * 67), 0).expect("255 parts").len(),
            255
        );
        assert!(matches!(
            split(&"x".repeat(255 * 67 + 1), 0),
            Err(TextError::TooLong { units: 17086, .. })
        ));
    }

    #[test]
    fn decoding_is_strict() {
        assert_eq!(decode_ucs2(&[0x4F]), Err(TextError::OddLength { len: 1 }));
        assert_eq!(
            decode_ucs2(&[0x00, 0x41, 0xD8, 0x3D, 0x00, 0x41]),
            Err(TextError::UnpairedSurrogate { offset: 2 })
        );
        assert_eq!(
            decode_ucs2(&[0xDE, 0x00]),
            Err(TextError::UnpairedSurrogate { offset: 0 })
        );
        assert_eq!(decode_ucs2(&encode_ucs2("您好😀")).expect("ok"), "您好😀");
    }

    #[test]
    fn udh_reader_handles_other_elements_and_16_bit_references_and_refuses_overruns() {
        // Port addressing (05, 4 octets) then 16-bit concat (08, 4 octets).
        let sm = [
            12, 0x05, 4, 0, 1, 0, 2, 0x08, 4, 0x12, 0x34, 3, 2, 0x00, 0x41,
        ];
        let (c, ud) = read_udh(0x40, &sm).expect("udh");
        assert_eq!(
            c,
            Some(Concat {
                reference: 0x34,
                total: 3,
                seq: 2
            })
        );
        assert_eq!(ud, &[0x00, 0x41]);
        assert!(read_udh(0x40, &[]).is_err());
        assert!(read_udh(0x40, &[5, 0, 3, 1]).is_err());
        assert!(read_udh(0x40, &[3, 0, 3, 1]).is_err());
        assert!(read_udh(0x40, &[4, 0, 2, 1, 2]).is_err());
        assert_eq!(
            read_udh(0x00, &[5, 0]).expect("no udhi"),
            (None, &[5u8, 0][..])
        );
    }

    #[test]
    fn debug_shows_no_text() {
        let p = split("您好", 0).expect("split");
        assert!(!format!("{p:?}").contains("4F60"));
        assert_eq!(format!("{:?}", p[0]), "Part { concat: None, octets: 4 }");
    }
}

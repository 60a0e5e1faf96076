//! Tag lists inside bank C's F48 (recipient data) and F121 (result data).
//!
//! ```text
//! +-----+-----+---------------+-----+-----+------- ...
//! | tag (2)   | len (3)       | value (len bytes) | tag | len | value ...
//! | ASCII     | ASCII digits  | GBK               |
//! +-----+-----+---------------+-----+-----+------- ...
//! e.g. NM004张三IT0011ID01822012219800101123X   (张三 is 4 GBK bytes)
//! ```
//! Writers keep the order they are given (the bank lists the order tags are written in); readers accept
//! any order but refuse a tag given twice. Values are personal data: `Debug` shows tags only, and errors
//! carry tags (two ASCII letters or digits, not personal) and byte offsets, never values.
use std::fmt;

use crate::field::gbk::{self, GbkError};

/// Bytes of a tag.
const TAG_LEN: usize = 2;
/// Digits of a length.
const LEN_DIGITS: usize = 3;
/// Largest value a three-digit length can announce.
pub const MAX_VALUE_LEN: usize = 999;

/// Why a tag list could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlvError {
    /// A tag that is not two ASCII letters or digits (writing: entry `index`, 0-based).
    #[error("entry {index}: a tag is two ASCII letters or digits")]
    BadTagName {
        /// 0-based entry index.
        index: usize,
    },
    /// Reading: the bytes at `offset` are not a tag.
    #[error("byte {offset}: not a tag (two ASCII letters or digits)")]
    BadTag {
        /// Offset of the tag.
        offset: usize,
    },
    /// A tag appears twice.
    #[error("tag {tag} appears twice (again at byte {offset})")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// Offset of the second occurrence (writing: its byte offset in the output).
        offset: usize,
    },
    /// The list ends inside an entry.
    #[error("entry at byte {offset}: {need} bytes needed, {have} left")]
    Truncated {
        /// Offset where the entry (or its value) starts.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A length that is not three ASCII digits.
    #[error("tag {tag}: length at byte {offset} is not three ASCII digits")]
    BadLength {
        /// The tag.
        tag: String,
        /// Offset of the length.
        offset: usize,
    },
    /// A value that is not strict GBK, or holds a control character.
    #[error("tag {tag}: value byte {offset} is {problem}")]
    BadValue {
        /// The tag.
        tag: String,
        /// Offset of the bad byte in the list.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// Writing: a value with a character that has no GBK form, or a control character.
    #[error("tag {tag}: character {position} cannot be written ({problem})")]
    BadCharacter {
        /// The tag.
        tag: String,
        /// 1-based character position in the value.
        position: usize,
        /// Why.
        problem: &'static str,
    },
    /// Writing: a value longer than three digits can say.
    #[error("tag {tag}: {len} bytes, at most 999")]
    TooLong {
        /// The tag.
        tag: String,
        /// Encoded length.
        len: usize,
    },
    /// The list as a whole is not strict GBK text (reading from text).
    #[error("the list is not GBK text: {0}")]
    NotGbk(GbkError),
}

/// An ordered tag list.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tlv {
    entries: Vec<(String, String)>,
}

impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(t, _)| (t, format_args!("***"))))
            .finish()
    }
}

impl Tlv {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry, builder style (checked when written).
    pub fn with(mut self, tag: &str, value: impl Into<String>) -> Self {
        self.push(tag, value);
        self
    }

    /// Appends an entry (checked when written).
    pub fn push(&mut self, tag: &str, value: impl Into<String>) {
        self.entries.push((tag.to_owned(), value.into()));
    }

    /// The value of `tag` (the first, should a list being built hold it twice).
    pub fn get(&self, tag: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_str())
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(t, v)| (t.as_str(), v.as_str()))
    }

    /// Tags in order.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(t, _)| t.as_str())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The list as GBK bytes, entries in the order given.
    pub fn encode_gbk(&self) -> Result<Vec<u8>, TlvError> {
        let mut out = Vec::new();
        for (index, (tag, value)) in self.entries.iter().enumerate() {
            if !is_tag(tag.as_bytes()) {
                return Err(TlvError::BadTagName { index });
            }
            if self.entries[..index].iter().any(|(t, _)| t == tag) {
                return Err(TlvError::DuplicateTag {
                    tag: tag.clone(),
                    offset: out.len(),
                });
            }
            if let Some(p) = value.chars().position(char::is_control) {
                return Err(TlvError::BadCharacter {
                    tag: tag.clone(),
                    position: p + 1,
                    problem: "control character",
                });
            }
            let bytes = gbk::encode(value).map_err(|e| TlvError::BadCharacter {
                tag: tag.clone(),
                position: match e {
                    GbkError::Unmappable { position } => position,
                    GbkError::Malformed { .. } => 0,
                },
                problem: "no GBK form",
            })?;
            if bytes.len() > MAX_VALUE_LEN {
                return Err(TlvError::TooLong {
                    tag: tag.clone(),
                    len: bytes.len(),
                });
            }
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(format!("{:03}", bytes.len()).as_bytes());
            out.extend_from_slice(&bytes);
        }
        Ok(out)
    }

    /// The list as text, for a GBK field of a [`super::Message`] (lengths count GBK bytes).
    pub fn encode(&self) -> Result<String, TlvError> {
        // Checked above, so the bytes are strict GBK and decode back.
        let bytes = self.encode_gbk()?;
        gbk::decode(&bytes).map_err(TlvError::NotGbk)
    }

    /// Reads a list from GBK bytes. Offsets in errors are byte offsets in `bytes`.
    pub fn decode_gbk(bytes: &[u8]) -> Result<Self, TlvError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let have = bytes.len() - pos;
            if have < TAG_LEN + LEN_DIGITS {
                return Err(TlvError::Truncated {
                    offset: pos,
                    need: TAG_LEN + LEN_DIGITS,
                    have,
                });
            }
            let tag_bytes = &bytes[pos..pos + TAG_LEN];
            if !is_tag(tag_bytes) {
                return Err(TlvError::BadTag { offset: pos });
            }
            let tag: String = tag_bytes.iter().map(|&b| char::from(b)).collect();
            if entries.iter().any(|(t, _)| *t == tag) {
                return Err(TlvError::DuplicateTag { tag, offset: pos });
            }
            let len_at = pos + TAG_LEN;
            let digits = &bytes[len_at..len_at + LEN_DIGITS];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(TlvError::BadLength {
                    tag,
                    offset: len_at,
                });
            }
            let len = digits
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
            let at = len_at + LEN_DIGITS;
            let have = bytes.len() - at;
            if len > have {
                return Err(TlvError::Truncated {
                    offset: at,
                    need: len,
                    have,
                });
            }
            let raw = &bytes[at..at + len];
            if let Some(p) = raw.iter().position(|&b| b < 0x20 || b == 0x7F) {
                return Err(TlvError::BadValue {
                    tag,
                    offset: at + p,
                    problem: "a control character",
                });
            }
            let value = match gbk::decode(raw) {
                Ok(v) => v,
                Err(e) => {
                    let p = match e {
                        GbkError::Malformed { offset } => offset,
                        GbkError::Unmappable { .. } => 0,
                    };
                    return Err(TlvError::BadValue {
                        tag,
                        offset: at + p,
                        problem: "not strict GBK (or a character cut by the length)",
                    });
                }
            };
            entries.push((tag, value));
            pos = at + len;
        }
        Ok(Self { entries })
    }

    /// Reads a list from the text of a GBK field. Offsets in errors are byte offsets in its GBK form.
    pub fn decode(text: &str) -> Result<Self, TlvError> {
        let bytes = gbk::encode(text).map_err(TlvError::NotGbk)?;
        Self::decode_gbk(&bytes)
    }
}

fn is_tag(t: &[u8]) -> bool {
    t.len() == TAG_LEN && t.iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_example() -> Tlv {
        Tlv::new()
            .with("NM", "张三")
            .with("IT", "1")
            .with("ID", "22012219800101123X")
    }

    #[test]
    fn spec_example_round_trips() {
        let text = "NM004张三IT0011ID01822012219800101123X";
        assert_eq!(spec_example().encode().expect("encode"), text);
        assert_eq!(Tlv::decode(text).expect("decode"), spec_example());
        let bytes = spec_example().encode_gbk().expect("gbk");
        assert_eq!(
            &bytes[..9],
            &[b'N', b'M', b'0', b'0', b'4', 0xD5, 0xC5, 0xC8, 0xFD]
        );
        assert_eq!(Tlv::decode_gbk(&bytes).expect("decode"), spec_example());
        assert_eq!(spec_example().get("ID"), Some("22012219800101123X"));
        assert_eq!(
            spec_example().tags().collect::<Vec<_>>(),
            ["NM", "IT", "ID"]
        );
    }

    #[test]
    fn readers_accept_any_order() {
        let t = Tlv::decode("IT0011NM004张三").expect("decode");
        assert_eq!(t.get("NM"), Some("张三"));
        assert_eq!(t.tags().collect::<Vec<_>>(), ["IT", "NM"]);
        assert_eq!(Tlv::decode("").expect("empty"), Tlv::new());
        assert_eq!(
            Tlv::decode("RS000").expect("empty value").get("RS"),
            Some("")
        );
    }

    #[test]
    fn rejects_malformed_lists() {
        assert_eq!(
            Tlv::decode("NM004张三IT0011IT0012"),
            Err(TlvError::DuplicateTag {
                tag: "IT".into(),
                offset: 15
            })
        );
        assert_eq!(
            Tlv::decode("NM005张三"),
            Err(TlvError::Truncated {
                offset: 5,
                need: 5,
                have: 4
            })
        );
        assert_eq!(
            Tlv::decode("NM0"),
            Err(TlvError::Truncated {
                offset: 0,
                need: 5,
                have: 3
            })
        );
        assert_eq!(
            Tlv::decode("NM0x4张三"),
            Err(TlvError::BadLength {
                tag: "NM".into(),
                offset: 2
            })
        );
        assert_eq!(Tlv::decode("N-001x"), Err(TlvError::BadTag { offset: 0 }));
        // A length that cuts 三 in half.
        assert!(matches!(
            Tlv::decode("NM003张三"),
            Err(TlvError::BadValue { offset: 7, .. })
        ));
        assert!(matches!(
            Tlv::decode("NM002a\n"),
            Err(TlvError::BadValue { offset: 6, .. })
        ));
        assert!(matches!(
            Tlv::decode_gbk(b"NM002\xA2\xE3"),
            Err(TlvError::BadValue { offset: 5, .. })
        ));
        let err = Tlv::decode("NM004张三IT0011IT0012").expect_err("dup");
        assert!(!err.to_string().contains('张'), "{err}");
    }

    #[test]
    fn writer_checks_entries() {
        assert_eq!(
            Tlv::new().with("N", "x").encode(),
            Err(TlvError::BadTagName { index: 0 })
        );
        assert_eq!(
            Tlv::new().with("NM", "a").with("NM", "b").encode(),
            Err(TlvError::DuplicateTag {
                tag: "NM".into(),
                offset: 6
            })
        );
        assert!(matches!(
            Tlv::new().with("NM", "王𠀀明").encode(),
            Err(TlvError::BadCharacter { position: 2, .. })
        ));
        assert!(matches!(
            Tlv::new().with("RS", "a\tb").encode(),
            Err(TlvError::BadCharacter { position: 2, .. })
        ));
        assert_eq!(
            Tlv::new().with("RS", "张".repeat(500)).encode(),
            Err(TlvError::TooLong {
                tag: "RS".into(),
                len: 1000
            })
        );
        let max = Tlv::new().with("RS", "a".repeat(999));
        assert_eq!(max.encode().expect("999").len(), 1004);
    }

    #[test]
    fn debug_shows_tags_only() {
        let shown = format!("{:?}", spec_example());
        assert_eq!(shown, r#"{"NM": ***, "IT": ***, "ID": ***}"#);
    }
}

//! Fixed-width records (bank A family).
//!
//! A body is a sequence of records of `record_len` bytes, each followed by a terminator (CR LF):
//!
//! ```text
//! +---------------------- record_len bytes ---------------------+----+
//! | field | field | field ...  (widths in BYTES, GBK text)       | CRLF |
//! +-------------------------------------------------------------+----+
//! ```
//! Field kinds: `A` text, left-aligned, space-padded, strict GBK; `N` digits, right-aligned, zero-padded;
//! `C` a constant. Only fields marked `cut` (free text) may be shortened, at a character boundary;
//! any other value that does not fit is an error, never silently truncated.
use std::borrow::Cow;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::field::gbk::{self, GbkError};
use crate::field::scan::{self, Utf8Runs};

pub mod messages;

/// How a field's bytes are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldKind {
    /// Text: left-aligned, space-padded, GBK.
    #[serde(rename = "A")]
    Text,
    /// Digits: right-aligned, zero-padded.
    #[serde(rename = "N")]
    Digits,
    /// A constant (`value`).
    #[serde(rename = "C")]
    Const,
}

/// One field of a record layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Field name: the contract between the layout and the code that fills or reads it.
    pub name: String,
    /// Byte offset inside the record (checked: fields are contiguous).
    pub at: usize,
    /// Width in bytes.
    pub width: usize,
    /// Kind of field.
    pub kind: FieldKind,
    /// The constant of a `C` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Free text that may be cut at a character boundary when too long.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
}

/// A value handed to the encoder for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// Text (for `A`), or a digit string (for `N`).
    Text(Cow<'a, str>),
    /// A number (for `N`, or `A` written in decimal).
    Num(u64),
    /// Nothing: spaces for `A`, zeros for `N`.
    Blank,
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Text(Cow::Owned(s))
    }
}

impl From<u64> for Value<'_> {
    fn from(n: u64) -> Self {
        Value::Num(n)
    }
}

/// Errors in a layout definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A field does not start where the previous one ended.
    #[error("field `{field}` is at {at}, expected {expected} (fields must be contiguous)")]
    NotContiguous {
        /// Field name.
        field: String,
        /// Declared offset.
        at: usize,
        /// Offset where the previous field ended.
        expected: usize,
    },
    /// The widths do not add up to the record length.
    #[error("fields cover {covered} bytes, the record has {record_len}")]
    WrongLength {
        /// Sum of widths.
        covered: usize,
        /// Record length.
        record_len: usize,
    },
    /// A field has width 0 or a bad constant.
    #[error("field `{field}`: {problem}")]
    BadField {
        /// Field name.
        field: String,
        /// What is wrong.
        problem: String,
    },
    /// Two fields share a name.
    #[error("field `{field}` is declared twice")]
    Duplicate {
        /// Field name.
        field: String,
    },
}

/// Why a value could not be written into a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value is longer than the field and may not be cut.
    #[error("field `{field}`: {len} bytes do not fit in {width}")]
    TooLong {
        /// Field name.
        field: String,
        /// Encoded length.
        len: usize,
        /// Field width.
        width: usize,
    },
    /// Text with no strict GBK form.
    #[error("field `{field}`: {source}")]
    NotGbk {
        /// Field name.
        field: String,
        /// Where.
        source: GbkError,
    },
    /// Text with a control character (CR, LF, TAB...), which would break the record layout.
    #[error("field `{field}`: character {position} is a control character")]
    Control {
        /// Field name.
        field: String,
        /// 1-based character position.
        position: usize,
    },
    /// A digit field got something else than digits.
    #[error("field `{field}`: not digits")]
    NotDigits {
        /// Field name.
        field: String,
    },
}

/// Why bytes could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not a whole number of terminated records.
    #[error("body of {len} bytes is not a whole number of {unit}-byte records")]
    BodyLength {
        /// Body length.
        len: usize,
        /// Record length plus terminator.
        unit: usize,
    },
    /// A record is not followed by its terminator.
    #[error("record {record}: no CR LF terminator at byte {offset}")]
    Terminator {
        /// 0-based record index.
        record: usize,
        /// Byte offset in the body.
        offset: usize,
    },
    /// A record has the wrong length.
    #[error("record of {len} bytes, expected {expected}")]
    RecordLength {
        /// Actual length.
        len: usize,
        /// Expected.
        expected: usize,
    },
    /// A field's bytes are not valid for its kind.
    #[error("field `{field}` at byte {offset}: {problem}")]
    Field {
        /// Field name.
        field: String,
        /// Byte offset of the field inside the record.
        offset: usize,
        /// What is wrong (never the field's content).
        problem: &'static str,
    },
}

/// A validated record layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLayout {
    record_len: usize,
    fields: Vec<FieldSpec>,
    /// The leading constants (see [`RecordLayout::tag`]), resolved once.
    tag: Vec<u8>,
}

/// ASCII bytes (checked) as text.
#[inline]
fn ascii(bytes: &[u8]) -> &str {
    // Only checked ASCII comes here: the empty text is not reached.
    std::str::from_utf8(bytes).unwrap_or_default()
}

fn trim_end_spaces(bytes: &[u8]) -> &[u8] {
    scan::trim_end(bytes, b' ')
}

/// Where [`RecordLayout::read_into`] left a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldText<'a> {
    /// Text borrowed from the record (ASCII, trimmed of its padding), or a constant.
    Record(&'a str),
    /// GBK text beyond ASCII, decoded into the caller's buffer at this byte range.
    Decoded(Range<usize>),
}

impl<'a> FieldText<'a> {
    /// The text, `buf` being the buffer handed to [`RecordLayout::read_into`].
    #[inline]
    pub fn resolve<'s>(&self, buf: &'s str) -> &'s str
    where
        'a: 's,
    {
        match self {
            FieldText::Record(text) => text,
            FieldText::Decoded(range) => buf.get(range.clone()).unwrap_or_default(),
        }
    }
}

/// A decoded record: the field values in layout order (text trimmed of its padding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'l> {
    layout: &'l RecordLayout,
    values: Vec<String>,
}

impl<'l> Record<'l> {
    /// The value of field `name`, if the layout has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.layout.index_of(name).map(|i| self.values[i].as_str())
    }

    /// The value of a digit field `name` as a number.
    pub fn num(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(|v| v.parse().ok())
    }

    /// Values in layout order, with their specs.
    pub fn fields(&self) -> impl Iterator<Item = (&FieldSpec, &str)> {
        self.layout
            .fields
            .iter()
            .zip(self.values.iter().map(String::as_str))
    }
}

impl RecordLayout {
    /// Builds and checks a layout: contiguous fields covering exactly `record_len` bytes.
    pub fn new(record_len: usize, fields: Vec<FieldSpec>) -> Result<Self, LayoutError> {
        let mut expected = 0usize;
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].iter().any(|g| g.name == f.name) {
                return Err(LayoutError::Duplicate {
                    field: f.name.clone(),
                });
            }
            if f.at != expected {
                return Err(LayoutError::NotContiguous {
                    field: f.name.clone(),
                    at: f.at,
                    expected,
                });
            }
            if f.width == 0 {
                return Err(LayoutError::BadField {
                    field: f.name.clone(),
                    problem: "width 0".into(),
                });
            }
            match (&f.kind, &f.value) {
                (FieldKind::Const, Some(v)) if v.len() == f.width && v.is_ascii() => {}
                (FieldKind::Const, _) => {
                    return Err(LayoutError::BadField {
                        field: f.name.clone(),
                        problem: format!(
                            "a C field needs an ASCII `value` of exactly {} bytes",
                            f.width
                        ),
                    });
                }
                (_, Some(_)) => {
                    return Err(LayoutError::BadField {
                        field: f.name.clone(),
                        problem: "only C fields take a `value`".into(),
                    });
                }
                _ => {}
            }
            if f.cut && f.kind != FieldKind::Text {
                return Err(LayoutError::BadField {
                    field: f.name.clone(),
                    problem: "only A fields can be cut".into(),
                });
            }
            expected += f.width;
        }
        if expected != record_len {
            return Err(LayoutError::WrongLength {
                covered: expected,
                record_len,
            });
        }
        let mut tag = Vec::new();
        for f in &fields {
            match (&f.kind, &f.value) {
                (FieldKind::Const, Some(v)) => tag.extend_from_slice(v.as_bytes()),
                _ => break,
            }
        }
        Ok(Self {
            record_len,
            fields,
            tag,
        })
    }

    /// Record length in bytes (terminator excluded).
    pub fn record_len(&self) -> usize {
        self.record_len
    }

    /// The fields.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// The spec of field `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The position of field `name` in layout order.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The constant prefix that identifies this record kind (its leading `C` fields).
    pub fn tag(&self) -> Vec<u8> {
        self.tag.clone()
    }

    /// Whether `record` starts with this layout's constant prefix.
    pub fn matches(&self, record: &[u8]) -> bool {
        !self.tag.is_empty() && record.starts_with(&self.tag)
    }

    /// Appends one record (without terminator) to `out`, asking `value` for each non-constant field.
    /// On error, `out` is restored to its previous length.
    pub fn encode<'v>(
        &self,
        out: &mut Vec<u8>,
        mut value: impl FnMut(&str) -> Value<'v>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        out.reserve(self.record_len);
        for f in &self.fields {
            if let Err(e) = write_field(
                out,
                f,
                if f.kind == FieldKind::Const {
                    Value::Blank
                } else {
                    value(&f.name)
                },
            ) {
                out.truncate(start);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Reads one record (without terminator). Rejects trailing or missing bytes.
    pub fn decode<'l>(&'l self, record: &[u8]) -> Result<Record<'l>, DecodeError> {
        let mut buf = String::new();
        let mut pieces = Vec::with_capacity(self.fields.len());
        self.read_into(record, &mut buf, |_, v| pieces.push(v))?;
        Ok(Record {
            layout: self,
            values: pieces.iter().map(|v| v.resolve(&buf).to_owned()).collect(),
        })
    }

    /// Reads one record like [`RecordLayout::decode`] (the same checks, the same errors), handing
    /// each field's value to `each` with its index in layout order: text trimmed of its padding,
    /// borrowed from `record` unless GBK beyond ASCII had to be decoded. On an error, the fields
    /// before the bad one have been handed over already.
    pub fn read<'a>(
        &'a self,
        record: &'a [u8],
        mut each: impl FnMut(usize, Cow<'a, str>),
    ) -> Result<(), DecodeError> {
        let mut buf = String::new();
        let mut pieces = Vec::with_capacity(self.fields.len());
        let read = self.read_into(record, &mut buf, |i, v| pieces.push((i, v)));
        for (i, v) in pieces {
            each(
                i,
                match v {
                    FieldText::Record(text) => Cow::Borrowed(text),
                    decoded => Cow::Owned(decoded.resolve(&buf).to_owned()),
                },
            );
        }
        read
    }

    /// The record parser, under [`RecordLayout::decode`], [`RecordLayout::read`] and the message
    /// views: checks one record (without terminator) and hands each field's value to `each`, with
    /// its index in layout order, as soon as it is checked. ASCII text (trimmed of its padding),
    /// digits and constants are borrowed from `record`; GBK text beyond ASCII is decoded and
    /// appended to `buf` (never cleared here: a caller reading many records clears it between them
    /// and allocates nothing once it is large enough). On an error, the fields before the bad one
    /// have been handed over and `buf` holds their text.
    #[inline]
    pub fn read_into<'a>(
        &'a self,
        record: &'a [u8],
        buf: &mut String,
        mut each: impl FnMut(usize, FieldText<'a>),
    ) -> Result<(), DecodeError> {
        if record.len() != self.record_len {
            return Err(DecodeError::RecordLength {
                len: record.len(),
                expected: self.record_len,
            });
        }
        let mut runs = Utf8Runs::new(record);
        // Checked ASCII at `at` as text: sliced from a checked run of the record.
        let mut ascii_at = |at: usize, bytes: &'a [u8]| {
            FieldText::Record(
                runs.text(at, at + bytes.len())
                    .unwrap_or_else(|| ascii(bytes)),
            )
        };
        for (i, f) in self.fields.iter().enumerate() {
            let bytes = &record[f.at..f.at + f.width];
            let err = |problem| DecodeError::Field {
                field: f.name.clone(),
                offset: f.at,
                problem,
            };
            let value = match f.kind {
                FieldKind::Const => {
                    let value = f.value.as_deref().unwrap_or_default();
                    if bytes != value.as_bytes() {
                        return Err(err("not the expected constant"));
                    }
                    FieldText::Record(value)
                }
                FieldKind::Digits => {
                    if !scan::all(bytes, scan::digit) {
                        return Err(err("not digits"));
                    }
                    ascii_at(f.at, bytes)
                }
                FieldKind::Text => {
                    let text = trim_end_spaces(bytes);
                    if scan::all(text, scan::printable) {
                        ascii_at(f.at, text)
                    } else {
                        let start = buf.len();
                        if gbk::decode_text_into(text, buf) {
                            FieldText::Decoded(start..buf.len())
                        } else {
                            // What is wrong, checked in this order.
                            if text.iter().any(|&b| b < 0x20 || b == 0x7F) {
                                return Err(err("control character in text"));
                            }
                            gbk::check(text).map_err(|_| {
                                err("not GBK text (or a character split at the field boundary)")
                            })?;
                            // Not reached: text that is strict GBK without controls decodes.
                            return Err(err("not GBK text"));
                        }
                    }
                }
            };
            each(i, value);
        }
        Ok(())
    }
}

fn write_field(out: &mut Vec<u8>, f: &FieldSpec, v: Value<'_>) -> Result<(), EncodeError> {
    let too_long = |len| EncodeError::TooLong {
        field: f.name.clone(),
        len,
        width: f.width,
    };
    match f.kind {
        FieldKind::Const => {
            out.extend_from_slice(f.value.as_deref().unwrap_or_default().as_bytes())
        }
        FieldKind::Digits => {
            let digits: Cow<'_, str> = match v {
                Value::Num(n) => Cow::Owned(n.to_string()),
                Value::Text(t) => t,
                Value::Blank => Cow::Borrowed(""),
            };
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(EncodeError::NotDigits {
                    field: f.name.clone(),
                });
            }
            if digits.len() > f.width {
                return Err(too_long(digits.len()));
            }
            out.resize(out.len() + f.width - digits.len(), b'0');
            out.extend_from_slice(digits.as_bytes());
        }
        FieldKind::Text => {
            let start = out.len();
            match v {
                Value::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Value::Text(t) => {
                    if let Some(p) = t.chars().position(char::is_control) {
                        return Err(EncodeError::Control {
                            field: f.name.clone(),
                            position: p + 1,
                        });
                    }
                    gbk::encode_into(&t, out).map_err(|source| EncodeError::NotGbk {
                        field: f.name.clone(),
                        source,
                    })?
                }
                Value::Blank => {}
            }
            let len = out.len() - start;
            if len > f.width {
                if !f.cut {
                    return Err(too_long(len));
                }
                let keep = gbk::boundary_at_most(&out[start..], f.width);
                out.truncate(start + keep);
            }
            out.resize(start + f.width, b' ');
        }
    }
    Ok(())
}

/// The terminator after every record.
pub const TERMINATOR: &[u8; 2] = b"\r\n";

/// Splits a body into records, checking the terminators. Yields `(index, record)`.
pub fn records(body: &[u8], record_len: usize) -> Result<Vec<&[u8]>, DecodeError> {
    let unit = record_len + TERMINATOR.len();
    if !body.len().is_multiple_of(unit) {
        return Err(DecodeError::BodyLength {
            len: body.len(),
            unit,
        });
    }
    let mut out = Vec::with_capacity(body.len() / unit);
    for (i, chunk) in body.chunks_exact(unit).enumerate() {
        if &chunk[record_len..] != TERMINATOR {
            return Err(DecodeError::Terminator {
                record: i,
                offset: i * unit + record_len,
            });
        }
        out.push(&chunk[..record_len]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, at: usize, width: usize, kind: FieldKind) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            at,
            width,
            kind,
            value: None,
            cut: false,
        }
    }

    fn layout() -> RecordLayout {
        let mut tag = f("rec_type", 0, 1, FieldKind::Const);
        tag.value = Some("D".into());
        let mut name = f("name", 1, 6, FieldKind::Text);
        name.cut = true;
        RecordLayout::new(
            20,
            vec![
                tag,
                name,
                f("id", 7, 5, FieldKind::Text),
                f("amount", 12, 8, FieldKind::Digits),
            ],
        )
        .expect("layout")
    }

    /// The layout's record of 张三, `AB1`, 1234 fen.
    fn sample(l: &RecordLayout) -> Vec<u8> {
        let mut out = Vec::new();
        l.encode(&mut out, |n| match n {
            "name" => "张三".into(),
            "id" => "AB1".into(),
            "amount" => 1234u64.into(),
            _ => Value::Blank,
        })
        .expect("encode");
        out
    }

    #[test]
    fn encodes_pads_and_decodes() {
        let l = layout();
        let out = sample(&l);
        assert_eq!(out.len(), 20);
        assert_eq!(&out[..1], b"D");
        assert_eq!(&out[5..7], b"  ");
        assert_eq!(&out[7..20], b"AB1  00001234");
        let r = l.decode(&out).expect("decode");
        assert_eq!(r.get("name"), Some("张三"));
        assert_eq!(r.num("amount"), Some(1234));
    }

    #[test]
    fn cuts_free_text_at_character_boundary() {
        let l = layout();
        let mut out = Vec::new();
        // "a张三李" is 7 GBK bytes; the field holds 6: cut after 三 would be 5 bytes, never half of 李.
        l.encode(&mut out, |n| match n {
            "name" => "a张三李".into(),
            _ => Value::Blank,
        })
        .expect("encode");
        assert_eq!(&out[1..7], &[b'a', 0xD5, 0xC5, 0xC8, 0xFD, b' ']);
    }

    #[test]
    fn refuses_to_cut_identifiers() {
        let err = layout().encode(&mut Vec::new(), |n| match n {
            "id" => "ABCDEF".into(),
            _ => Value::Blank,
        });
        assert_eq!(
            err,
            Err(EncodeError::TooLong {
                field: "id".into(),
                len: 6,
                width: 5
            })
        );
    }

    #[test]
    fn rejects_bad_layouts() {
        assert!(matches!(
            RecordLayout::new(
                10,
                vec![f("a", 0, 4, FieldKind::Text), f("b", 5, 5, FieldKind::Text)]
            ),
            Err(LayoutError::NotContiguous { .. })
        ));
        assert!(matches!(
            RecordLayout::new(10, vec![f("a", 0, 4, FieldKind::Text)]),
            Err(LayoutError::WrongLength { .. })
        ));
    }

    #[test]
    fn decode_names_field_and_offset() {
        let l = layout();
        let mut rec = b"D      AB1  0000x234".to_vec();
        let err = l.decode(&rec).expect_err("bad digits");
        assert_eq!(
            err,
            DecodeError::Field {
                field: "amount".into(),
                offset: 12,
                problem: "not digits"
            }
        );
        rec[0] = b'X';
        assert!(matches!(
            l.decode(&rec),
            Err(DecodeError::Field { offset: 0, .. })
        ));
        // half a double-byte character at the end of the name field
        let mut rec = b"D     \xD5AB1  00001234".to_vec();
        rec.truncate(20);
        assert!(matches!(
            l.decode(&rec),
            Err(DecodeError::Field { offset: 1, .. })
        ));
    }

    #[test]
    fn read_hands_over_each_value_as_decode_does() {
        let l = layout();
        let out = sample(&l);
        let mut seen = Vec::new();
        l.read(&out, |i, v| seen.push((i, v))).expect("read");
        assert!(matches!(seen[0], (0, Cow::Borrowed("D"))));
        assert!(matches!(&seen[1], (1, Cow::Owned(t)) if t == "张三"));
        assert!(matches!(seen[2], (2, Cow::Borrowed("AB1"))));
        assert!(matches!(seen[3], (3, Cow::Borrowed("00001234"))));
        let r = l.decode(&out).expect("decode");
        let from_read: Vec<String> = seen.into_iter().map(|(_, v)| v.into_owned()).collect();
        assert_eq!(r.values, from_read);
        assert_eq!(l.index_of("amount"), Some(3));
        assert_eq!(l.index_of("nope"), None);
    }

    #[test]
    fn read_into_borrows_ascii_and_appends_gbk_to_the_buffer() {
        let l = layout();
        let out = sample(&l);
        // The buffer is appended to, never cleared: a caller reuses it from record to record.
        let mut buf = String::from("x");
        let mut seen = Vec::new();
        l.read_into(&out, &mut buf, |i, v| seen.push((i, v)))
            .expect("read");
        assert_eq!(buf, "x张三");
        assert_eq!(
            seen,
            vec![
                (0, FieldText::Record("D")),
                (1, FieldText::Decoded(1..7)),
                (2, FieldText::Record("AB1")),
                (3, FieldText::Record("00001234")),
            ]
        );
        assert_eq!(seen[1].1.resolve(&buf), "张三");
        assert!(
            out.as_ptr_range()
                .contains(&seen[2].1.resolve(&buf).as_ptr())
        );
        // Bad GBK leaves the buffer as it was; the fields before it were handed over.
        let mut buf = String::new();
        let mut n = 0;
        let err = l.read_into(b"D\xA2\xE3    AB1  00001234", &mut buf, |_, _| n += 1);
        assert!(matches!(err, Err(DecodeError::Field { offset: 1, .. })));
        assert_eq!((n, buf.as_str()), (1, ""));
    }

    #[test]
    fn read_rejects_bad_records_naming_the_field() {
        let l = layout();
        let field = |r: Result<(), DecodeError>| match r {
            Err(DecodeError::Field {
                field,
                offset,
                problem,
            }) => (field, offset, problem),
            other => panic!("{other:?}"),
        };
        // Truncated and overlong records.
        for len in [0, 1, 19, 21] {
            assert_eq!(
                l.read(&vec![b' '; len], |_, _| {}),
                Err(DecodeError::RecordLength { len, expected: 20 })
            );
        }
        // A control character is reported before the broken GBK after it.
        let rec = b"D\xD5\x01    AB1  00001234";
        assert_eq!(
            field(l.read(rec, |_, _| {})),
            ("name".into(), 1, "control character in text")
        );
        let rec = b"D\xA2\xE3    AB1  00001234";
        assert_eq!(field(l.read(rec, |_, _| {})).1, 1);
        let rec = b"D      AB\x7F  00001234";
        assert_eq!(
            field(l.read(rec, |_, _| {})),
            ("id".into(), 7, "control character in text")
        );
        let rec = b"D      AB1  0000123 ";
        assert_eq!(
            field(l.read(rec, |_, _| {})),
            ("amount".into(), 12, "not digits")
        );
        // The same errors from `decode`.
        assert_eq!(l.decode(rec).map(|_| ()), l.read(rec, |_, _| {}));
    }

    #[test]
    fn splits_records_checking_terminators() {
        let body = b"abc\r\ndef\r\n";
        assert_eq!(
            records(body, 3).expect("ok"),
            vec![&b"abc"[..], &b"def"[..]]
        );
        assert!(matches!(
            records(b"abc\r\ndefXY", 3),
            Err(DecodeError::Terminator {
                record: 1,
                offset: 8
            })
        ));
        assert!(matches!(
            records(b"abc\r\nde", 3),
            Err(DecodeError::BodyLength { .. })
        ));
    }
}

//! Messages: encode and decode against a [`MessageSpec`].
//!
//! Decoding is total: every length is checked against the bytes left and the table's maximum before it
//! is used, a bit set for a field the table does not have is an error (the rest of the message could
//! not be delimited), trailing bytes are rejected, and every error names the element (MTI, bitmap or
//! field number) and the byte offset from the start of the message, never a value.
use std::collections::BTreeMap;
use std::fmt;

use crate::field::gbk::{self, GbkError};

use super::spec::{Enc, FieldKind, FieldSpec, MessageSpec, bit};

/// Size of one bitmap.
pub const BITMAP_LEN: usize = 8;
/// Size of the MTI.
pub const MTI_LEN: usize = 4;

/// The value of one field: text for `n`, `an`, `ans` and GBK fields, bytes for `b` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// Text (without its padding once decoded: `ans`/GBK fixed fields lose their trailing spaces;
    /// `n` fixed fields keep their leading zeros, which are part of the value).
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl FieldValue {
    /// The text, for a text value.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            FieldValue::Text(s) => Some(s),
            FieldValue::Bytes(_) => None,
        }
    }

    /// The bytes, for a binary value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            FieldValue::Text(_) => None,
            FieldValue::Bytes(b) => Some(b),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Text(s.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Text(s)
    }
}

impl From<Vec<u8>> for FieldValue {
    fn from(b: Vec<u8>) -> Self {
        FieldValue::Bytes(b)
    }
}

impl<const N: usize> From<[u8; N]> for FieldValue {
    fn from(b: [u8; N]) -> Self {
        FieldValue::Bytes(b.to_vec())
    }
}

/// One message: MTI and present fields by number.
///
/// Its `Debug` masks personal data: a message from [`decode`] or [`MessageSpec::message`] masks the
/// fields its table marks `sensitive`; a message made with [`Message::new`] masks every value until
/// [`Message::mask_per`] says which are sensitive. Log messages through `Debug`, never field by field.
#[derive(Clone)]
pub struct Message {
    /// Message type indicator, four ASCII digits (`0200`).
    pub mti: String,
    /// Present fields (2..=128), written in ascending order.
    pub fields: BTreeMap<u8, FieldValue>,
    /// Fields masked by `Debug` (bit n-1 for field n).
    masked: u128,
}

impl Message {
    /// An empty message. Until [`Message::mask_per`], its `Debug` masks every value.
    pub fn new(mti: impl Into<String>) -> Self {
        Self {
            mti: mti.into(),
            fields: BTreeMap::new(),
            masked: u128::MAX,
        }
    }

    /// Masks, in `Debug`, exactly the fields `spec` marks sensitive.
    pub fn mask_per(&mut self, spec: &MessageSpec) {
        self.masked = spec.sensitive_mask();
    }

    /// Sets field `number`, builder style.
    pub fn with(mut self, number: u8, value: impl Into<FieldValue>) -> Self {
        self.fields.insert(number, value.into());
        self
    }

    /// Sets field `number`, returning its previous value.
    pub fn set(&mut self, number: u8, value: impl Into<FieldValue>) -> Option<FieldValue> {
        self.fields.insert(number, value.into())
    }

    /// Field `number`.
    pub fn get(&self, number: u8) -> Option<&FieldValue> {
        self.fields.get(&number)
    }

    /// Field `number` as text.
    pub fn text(&self, number: u8) -> Option<&str> {
        self.get(number).and_then(FieldValue::as_text)
    }

    /// Field `number` as bytes.
    pub fn bytes(&self, number: u8) -> Option<&[u8]> {
        self.get(number).and_then(FieldValue::as_bytes)
    }

    /// Whether field `number` is present.
    pub fn has(&self, number: u8) -> bool {
        self.fields.contains_key(&number)
    }
}

/// Equality of MTI and fields (how a message prints is not part of it).
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.mti == other.mti && self.fields == other.fields
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shown<'a>(&'a FieldValue, bool);
        impl fmt::Debug for Shown<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    Shown(_, true) => f.write_str("***"),
                    Shown(FieldValue::Text(s), false) => fmt::Debug::fmt(s, f),
                    Shown(FieldValue::Bytes(b), false) => {
                        f.write_str("0x")?;
                        b.iter().try_for_each(|x| write!(f, "{x:02X}"))
                    }
                }
            }
        }
        // The MTI is checked on encode and decode, but a hand-built one could hold anything.
        let mti_ok = self.mti.len() == MTI_LEN && self.mti.bytes().all(|b| b.is_ascii_digit());
        let mti: &dyn fmt::Debug = if mti_ok { &self.mti } else { &"<invalid>" };
        f.debug_struct("Message")
            .field("mti", mti)
            .field(
                "fields",
                &DebugMap(
                    self.fields
                        .iter()
                        .map(|(n, v)| (*n, Shown(v, self.masked & bit(*n) != 0))),
                ),
            )
            .finish()
    }
}

struct DebugMap<I>(I);

impl<I, V> fmt::Debug for DebugMap<I>
where
    I: Iterator<Item = (u8, V)> + Clone,
    V: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.clone()).finish()
    }
}

impl MessageSpec {
    /// An empty message whose `Debug` masks this table's sensitive fields.
    pub fn message(&self, mti: impl Into<String>) -> Message {
        let mut m = Message::new(mti);
        m.mask_per(self);
        m
    }
}

/// The part of a message an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Element {
    /// The message type indicator.
    Mti,
    /// The primary bitmap.
    PrimaryBitmap,
    /// The secondary bitmap.
    SecondaryBitmap,
    /// A field, by number.
    Field(u8),
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Mti => f.write_str("MTI"),
            Element::PrimaryBitmap => f.write_str("primary bitmap"),
            Element::SecondaryBitmap => f.write_str("secondary bitmap"),
            Element::Field(n) => write!(f, "field {n}"),
        }
    }
}

/// Why a message could not be encoded. Field numbers and positions, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The MTI is not four ASCII digits.
    #[error("the MTI is not four ASCII digits")]
    BadMti,
    /// The message has a field the table does not have.
    #[error("field {field} is not in the message table")]
    UnknownField {
        /// Field number.
        field: u8,
    },
    /// Text given for a binary field, or bytes for a text field.
    #[error("field {field} takes {expected}")]
    WrongValueType {
        /// Field number.
        field: u8,
        /// What the field takes.
        expected: &'static str,
    },
    /// A character outside the field's character set.
    #[error("field {field}: character {position} is not allowed in `{charset}`")]
    BadCharacter {
        /// Field number.
        field: u8,
        /// 1-based character position.
        position: usize,
        /// The field's character set (`n`, `an`, `ans`...).
        charset: &'static str,
    },
    /// Text with no strict GBK form.
    #[error("field {field}: {source}")]
    NotGbk {
        /// Field number.
        field: u8,
        /// Which character.
        source: GbkError,
    },
    /// The value is longer than the field allows.
    #[error("field {field}: {len} bytes, at most {max} allowed")]
    TooLong {
        /// Field number.
        field: u8,
        /// Encoded length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// A field that is not padded (`an` fixed, binary) got a value of another length.
    #[error("field {field}: {len} bytes, exactly {expected} needed")]
    WrongLength {
        /// Field number.
        field: u8,
        /// Encoded length.
        len: usize,
        /// Field length.
        expected: usize,
    },
    /// A MAC was asked for but the table has no `b8` field 128 for it.
    #[error("the message table has no binary 8-byte field 128 to carry the MAC")]
    NoMacField,
}

/// Why bytes are not a message of the table. Elements and byte offsets, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message ends inside an element.
    #[error("{element} at byte {offset}: {need} bytes needed, {have} left")]
    Truncated {
        /// What was being read.
        element: Element,
        /// Where the missing part starts (for a variable field: its length prefix or its value).
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// An MTI byte is not an ASCII digit.
    #[error("MTI byte {offset} is not an ASCII digit")]
    BadMti {
        /// Offset of the bad byte.
        offset: usize,
    },
    /// A bit is set for a field the table does not have.
    #[error("bit {field} is set (bitmap byte {offset}) but the message table has no field {field}")]
    UnknownField {
        /// The bit (field number).
        field: u8,
        /// Offset of the bitmap byte holding it.
        offset: usize,
    },
    /// A length prefix is not ASCII digits.
    #[error("field {field}: length prefix at byte {offset} is not ASCII digits")]
    BadLengthPrefix {
        /// Field number.
        field: u8,
        /// Offset of the prefix.
        offset: usize,
    },
    /// A length prefix above the field's maximum.
    #[error("field {field}: length {len} at byte {offset} exceeds the maximum of {max}")]
    TooLong {
        /// Field number.
        field: u8,
        /// Offset of the prefix.
        offset: usize,
        /// Announced length.
        len: usize,
        /// Maximum.
        max: usize,
    },
    /// A value byte outside the field's character set, or bytes that are not strict GBK.
    #[error("field {field}: byte {offset} is {problem}")]
    BadValue {
        /// Field number.
        field: u8,
        /// Offset of the first bad byte.
        offset: usize,
        /// What is wrong with it (never the content).
        problem: &'static str,
    },
    /// Bytes after the last field.
    #[error("{count} bytes after the last field, from byte {offset}")]
    TrailingBytes {
        /// Offset of the first extra byte.
        offset: usize,
        /// How many.
        count: usize,
    },
}

/// Writes `msg`: MTI, primary bitmap, secondary bitmap when a field above 64 is present (bit 1 set),
/// then the fields in ascending order.
pub fn encode(spec: &MessageSpec, msg: &Message) -> Result<Vec<u8>, EncodeError> {
    if msg.mti.len() != MTI_LEN || !msg.mti.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EncodeError::BadMti);
    }
    let mut bitmap = [0u8; 2 * BITMAP_LEN];
    let mut capacity = MTI_LEN + bitmap.len();
    let mut specs = Vec::with_capacity(msg.fields.len());
    for &n in msg.fields.keys() {
        let f = spec
            .field(n)
            .ok_or(EncodeError::UnknownField { field: n })?;
        // The table only holds 2..=128, so `n - 1` is a valid bit index.
        let i = usize::from(n - 1);
        bitmap[i / 8] |= 0x80 >> (i % 8);
        capacity += f.max_wire_len();
        specs.push(f);
    }
    let secondary = msg.fields.keys().any(|&n| n > 64);
    if secondary {
        bitmap[0] |= 0x80;
    }
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(msg.mti.as_bytes());
    out.extend_from_slice(&bitmap[..if secondary { 16 } else { 8 }]);
    for (f, value) in specs.into_iter().zip(msg.fields.values()) {
        write_field(&mut out, f, value)?;
    }
    Ok(out)
}

fn write_field(out: &mut Vec<u8>, f: &FieldSpec, value: &FieldValue) -> Result<(), EncodeError> {
    let field = f.number;
    let owned;
    let bytes: &[u8] = match (f.encoding, value) {
        (Enc::Binary, FieldValue::Bytes(b)) => b,
        (Enc::Binary, FieldValue::Text(_)) => {
            return Err(EncodeError::WrongValueType {
                field,
                expected: "bytes",
            });
        }
        (_, FieldValue::Bytes(_)) => {
            return Err(EncodeError::WrongValueType {
                field,
                expected: "text",
            });
        }
        (enc, FieldValue::Text(s)) => {
            let allowed: fn(char) -> bool = match enc {
                Enc::Numeric => |c| c.is_ascii_digit(),
                Enc::Alpha => |c| c.is_ascii_alphanumeric(),
                Enc::AlphaNumSpecial => |c| matches!(c, ' '..='~'),
                Enc::Gbk | Enc::Binary => |c| !c.is_control(),
            };
            if let Some(p) = s.chars().position(|c| !allowed(c)) {
                return Err(EncodeError::BadCharacter {
                    field,
                    position: p + 1,
                    charset: enc.iso_name(),
                });
            }
            if enc == Enc::Gbk {
                owned = gbk::encode(s).map_err(|source| EncodeError::NotGbk { field, source })?;
                &owned
            } else {
                s.as_bytes()
            }
        }
    };
    let len = bytes.len();
    match f.kind {
        FieldKind::Fixed { len: width } => {
            if len > width {
                return Err(EncodeError::TooLong {
                    field,
                    len,
                    max: width,
                });
            }
            let pad = width - len;
            match f.encoding {
                Enc::Numeric => {
                    out.resize(out.len() + pad, b'0');
                    out.extend_from_slice(bytes);
                }
                Enc::AlphaNumSpecial | Enc::Gbk => {
                    out.extend_from_slice(bytes);
                    out.resize(out.len() + pad, b' ');
                }
                // `an` has no padding character; binary fixed fields are kind `binary` (table check).
                Enc::Alpha | Enc::Binary if pad > 0 => {
                    return Err(EncodeError::WrongLength {
                        field,
                        len,
                        expected: width,
                    });
                }
                Enc::Alpha | Enc::Binary => out.extend_from_slice(bytes),
            }
        }
        FieldKind::Binary { len: width } => {
            if len != width {
                return Err(EncodeError::WrongLength {
                    field,
                    len,
                    expected: width,
                });
            }
            out.extend_from_slice(bytes);
        }
        FieldKind::LlVar { max } | FieldKind::LllVar { max } => {
            if len > max {
                return Err(EncodeError::TooLong { field, len, max });
            }
            let digits = prefix_digits(f.kind);
            out.extend_from_slice(format!("{len:0digits$}").as_bytes());
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

fn prefix_digits(kind: FieldKind) -> usize {
    match kind {
        FieldKind::LlVar { .. } => 2,
        FieldKind::LllVar { .. } => 3,
        FieldKind::Fixed { .. } | FieldKind::Binary { .. } => 0,
    }
}

/// A cursor over the message that only hands out checked slices.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, element: Element, need: usize) -> Result<&'a [u8], DecodeError> {
        let have = self.bytes.len() - self.pos;
        if need > have {
            return Err(DecodeError::Truncated {
                element,
                offset: self.pos,
                need,
                have,
            });
        }
        let s = &self.bytes[self.pos..self.pos + need];
        self.pos += need;
        Ok(s)
    }
}

/// Reads one message: exactly the bytes given, nothing left over.
pub fn decode(spec: &MessageSpec, bytes: &[u8]) -> Result<Message, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let mti = r.take(Element::Mti, MTI_LEN)?;
    if let Some(p) = mti.iter().position(|b| !b.is_ascii_digit()) {
        return Err(DecodeError::BadMti { offset: p });
    }
    let primary_at = r.pos;
    let primary = r.take(Element::PrimaryBitmap, BITMAP_LEN)?;
    let mut bitmap = [0u8; 2 * BITMAP_LEN];
    bitmap[..BITMAP_LEN].copy_from_slice(primary);
    let secondary_at = r.pos;
    if primary[0] & 0x80 != 0 {
        let secondary = r.take(Element::SecondaryBitmap, BITMAP_LEN)?;
        bitmap[BITMAP_LEN..].copy_from_slice(secondary);
    }
    let mut msg = spec.message(mti.iter().map(|&b| char::from(b)).collect::<String>());
    for n in 2..=128u8 {
        let i = usize::from(n - 1);
        if bitmap[i / 8] & (0x80 >> (i % 8)) == 0 {
            continue;
        }
        let Some(f) = spec.field(n) else {
            let offset = if n <= 64 {
                primary_at + i / 8
            } else {
                secondary_at + (i - 64) / 8
            };
            return Err(DecodeError::UnknownField { field: n, offset });
        };
        let value = read_field(&mut r, f)?;
        msg.fields.insert(n, value);
    }
    if r.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.pos,
            count: bytes.len() - r.pos,
        });
    }
    Ok(msg)
}

fn read_field(r: &mut Reader<'_>, f: &FieldSpec) -> Result<FieldValue, DecodeError> {
    let field = f.number;
    let element = Element::Field(field);
    let len = match f.kind {
        FieldKind::Fixed { len } | FieldKind::Binary { len } => len,
        FieldKind::LlVar { max } | FieldKind::LllVar { max } => {
            let offset = r.pos;
            let prefix = r.take(element, prefix_digits(f.kind))?;
            let mut len = 0usize;
            for &b in prefix {
                if !b.is_ascii_digit() {
                    return Err(DecodeError::BadLengthPrefix { field, offset });
                }
                len = len * 10 + usize::from(b - b'0');
            }
            if len > max {
                return Err(DecodeError::TooLong {
                    field,
                    offset,
                    len,
                    max,
                });
            }
            len
        }
    };
    let offset = r.pos;
    let raw = r.take(element, len)?;
    let bad = |at: usize, problem| DecodeError::BadValue {
        field,
        offset: offset + at,
        problem,
    };
    let fixed = matches!(f.kind, FieldKind::Fixed { .. });
    let check = |ok: fn(&u8) -> bool, problem| match raw.iter().position(|b| !ok(b)) {
        Some(p) => Err(bad(p, problem)),
        None => Ok(ascii_text(raw)),
    };
    let value = match f.encoding {
        Enc::Binary => return Ok(FieldValue::Bytes(raw.to_vec())),
        Enc::Numeric => check(u8::is_ascii_digit, "not an ASCII digit")?,
        Enc::Alpha => check(u8::is_ascii_alphanumeric, "not an ASCII letter or digit")?,
        Enc::AlphaNumSpecial => {
            let text = if fixed { trim_spaces(raw) } else { raw };
            match text.iter().position(|b| !matches!(b, b' '..=b'~')) {
                Some(p) => return Err(bad(p, "not printable ASCII")),
                None => ascii_text(text),
            }
        }
        Enc::Gbk => {
            // A space can never be a GBK trail byte (those are 0x40 and up): trimming is safe.
            let text = if fixed { trim_spaces(raw) } else { raw };
            // Control bytes can only be single-byte characters, for the same reason.
            if let Some(p) = text.iter().position(|&b| b < 0x20 || b == 0x7F) {
                return Err(bad(p, "a control character"));
            }
            gbk::decode(text).map_err(|e| {
                let at = match e {
                    GbkError::Malformed { offset } => offset,
                    // Decoding reports byte offsets only; a character position is no offset.
                    GbkError::Unmappable { .. } => 0,
                };
                bad(at, "not strict GBK")
            })?
        }
    };
    Ok(FieldValue::Text(value))
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != b' ').map_or(0, |p| p + 1);
    &b[..end]
}

fn ascii_text(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MessageSpec {
        MessageSpec::bank_c()
    }

    fn echo() -> Message {
        spec()
            .message("0800")
            .with(7, "0315093000")
            .with(11, "000001")
            .with(32, "12345678")
            .with(70, "301")
    }

    #[test]
    fn writes_layout() {
        let bytes = encode(&spec(), &echo()).expect("encode");
        let mut want = b"0800".to_vec();
        want.extend_from_slice(&[0x82, 0x20, 0x00, 0x01, 0, 0, 0, 0]);
        want.extend_from_slice(&[0x04, 0, 0, 0, 0, 0, 0, 0]);
        for part in ["0315093000", "000001", "08", "12345678", "301"] {
            want.extend_from_slice(part.as_bytes());
        }
        assert_eq!(bytes, want);
        assert_eq!(decode(&spec(), &bytes).expect("decode"), echo());
    }

    #[test]
    fn no_secondary_bitmap_without_high_fields() {
        let m = spec().message("0800").with(11, "000001");
        let bytes = encode(&spec(), &m).expect("encode");
        assert_eq!(&bytes[4..12], &[0x00, 0x20, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes.len(), 4 + 8 + 6);
        assert_eq!(decode(&spec(), &bytes).expect("decode"), m);
    }

    #[test]
    fn pads_fixed_fields() {
        let m = spec()
            .message("0200")
            .with(4, "100")
            .with(41, "GW01")
            .with(42, "D 1");
        let bytes = encode(&spec(), &m).expect("encode");
        assert!(bytes.ends_with(b"000000000100GW01    D 1            "));
        let back = decode(&spec(), &bytes).expect("decode");
        assert_eq!(back.text(4), Some("000000000100"));
        assert_eq!(back.text(41), Some("GW01"));
        assert_eq!(back.text(42), Some("D 1"));
    }

    #[test]
    fn refuses_values_that_do_not_fit() {
        let s = spec();
        let enc = |m: Message| encode(&s, &m).expect_err("must fail");
        assert_eq!(enc(Message::new("02x0")), EncodeError::BadMti);
        assert_eq!(
            enc(Message::new("0200").with(5, "1")),
            EncodeError::UnknownField { field: 5 }
        );
        assert_eq!(
            enc(Message::new("0200").with(1, "1")),
            EncodeError::UnknownField { field: 1 }
        );
        assert_eq!(
            enc(Message::new("0200").with(3, "4000001")),
            EncodeError::TooLong {
                field: 3,
                len: 7,
                max: 6
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(3, "40000A")),
            EncodeError::BadCharacter {
                field: 3,
                position: 6,
                charset: "n"
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(37, "ABC")),
            EncodeError::WrongLength {
                field: 37,
                len: 3,
                expected: 12
            }
        );
        assert!(matches!(
            enc(Message::new("0200").with(37, "ABCDEFGHIJ-1")),
            EncodeError::BadCharacter { field: 37, .. }
        ));
        assert!(matches!(
            enc(Message::new("0200").with(41, "GW\t1")),
            EncodeError::BadCharacter { field: 41, .. }
        ));
        assert!(matches!(
            enc(Message::new("0200").with(41, "张")),
            EncodeError::BadCharacter { field: 41, .. }
        ));
        assert!(matches!(
            enc(Message::new("0200").with(48, "NM003€")),
            EncodeError::NotGbk { field: 48, .. }
        ));
        assert!(matches!(
            enc(Message::new("0200").with(48, "a\nb")),
            EncodeError::BadCharacter { field: 48, .. }
        ));
        assert_eq!(
            enc(Message::new("0200").with(2, "1".repeat(29))),
            EncodeError::TooLong {
                field: 2,
                len: 29,
                max: 28
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(48, "张".repeat(500))),
            EncodeError::TooLong {
                field: 48,
                len: 1000,
                max: 999
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(128, [0u8; 7])),
            EncodeError::WrongLength {
                field: 128,
                len: 7,
                expected: 8
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(128, "12345678")),
            EncodeError::WrongValueType {
                field: 128,
                expected: "bytes"
            }
        );
        assert_eq!(
            enc(Message::new("0200").with(3, vec![1u8])),
            EncodeError::WrongValueType {
                field: 3,
                expected: "text"
            }
        );
    }

    #[test]
    fn decode_errors_name_element_and_offset() {
        let s = spec();
        let good = encode(&s, &echo()).expect("encode");
        let dec = |b: &[u8]| decode(&s, b).expect_err("must fail");
        assert_eq!(
            dec(b"08"),
            DecodeError::Truncated {
                element: Element::Mti,
                offset: 0,
                need: 4,
                have: 2
            }
        );
        assert_eq!(
            dec(b"08x0\0\0\0\0\0\0\0\0"),
            DecodeError::BadMti { offset: 2 }
        );
        assert_eq!(
            dec(&good[..10]),
            DecodeError::Truncated {
                element: Element::PrimaryBitmap,
                offset: 4,
                need: 8,
                have: 6
            }
        );
        assert_eq!(
            dec(&good[..14]),
            DecodeError::Truncated {
                element: Element::SecondaryBitmap,
                offset: 12,
                need: 8,
                have: 2
            }
        );
        // Cut inside F11 (at 30..36).
        assert_eq!(
            dec(&good[..33]),
            DecodeError::Truncated {
                element: Element::Field(11),
                offset: 30,
                need: 6,
                have: 3
            }
        );
        let mut extra = good.clone();
        extra.extend_from_slice(b"99");
        assert_eq!(
            dec(&extra),
            DecodeError::TrailingBytes {
                offset: good.len(),
                count: 2
            }
        );
        // Bit 5 (not in the table) set in the primary bitmap.
        let mut unknown = good.clone();
        unknown[4] |= 0x08;
        assert_eq!(
            dec(&unknown),
            DecodeError::UnknownField {
                field: 5,
                offset: 4
            }
        );
        // Bit 65 in the secondary bitmap.
        let mut unknown = good.clone();
        unknown[12] |= 0x80;
        assert_eq!(
            dec(&unknown),
            DecodeError::UnknownField {
                field: 65,
                offset: 12
            }
        );
        // F32's length prefix at 36..38.
        let mut bad_len = good.clone();
        bad_len[37] = b'x';
        assert_eq!(
            dec(&bad_len),
            DecodeError::BadLengthPrefix {
                field: 32,
                offset: 36
            }
        );
        bad_len[36] = b'1';
        bad_len[37] = b'2';
        assert_eq!(
            dec(&bad_len),
            DecodeError::TooLong {
                field: 32,
                offset: 36,
                len: 12,
                max: 11
            }
        );
        let mut bad_digit = good.clone();
        bad_digit[32] = b'A';
        assert_eq!(
            dec(&bad_digit),
            DecodeError::BadValue {
                field: 11,
                offset: 32,
                problem: "not an ASCII digit"
            }
        );
        // Messages never contain values.
        let e = dec(&bad_digit).to_string();
        assert_eq!(e, "field 11: byte 32 is not an ASCII digit");
    }

    #[test]
    fn decodes_gbk_and_rejects_broken_gbk() {
        let s = spec();
        let m = s.message("0210").with(121, "RS010账户已冻结");
        let bytes = encode(&s, &m).expect("encode");
        // MTI, two bitmaps, then F121: prefix at 20, value at 23.
        let mut want = b"015RS010".to_vec();
        want.extend_from_slice(&gbk::encode("账户已冻结").expect("gbk"));
        assert_eq!(&bytes[20..], &want[..]);
        assert_eq!(decode(&s, &bytes).expect("decode"), m);
        // Cut the last character in half, keeping the length prefix consistent: its lead byte, value
        // byte 13, is left alone.
        let mut cut = bytes[..bytes.len() - 1].to_vec();
        cut[20..23].copy_from_slice(b"014");
        assert_eq!(
            decode(&s, &cut),
            Err(DecodeError::BadValue {
                field: 121,
                offset: 23 + 13,
                problem: "not strict GBK"
            })
        );
    }

    #[test]
    fn accepts_empty_secondary_bitmap_and_ans_padding() {
        let s = spec();
        let mut bytes = b"0800".to_vec();
        bytes.extend_from_slice(&[0x80, 0x20, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(b"000042");
        let m = decode(&s, &bytes).expect("decode");
        assert_eq!(m, Message::new("0800").with(11, "000042"));
    }

    #[test]
    fn debug_masks_sensitive_fields() {
        let s = spec();
        let m = s
            .message("0200")
            .with(2, "6217000012345678")
            .with(3, "400000")
            .with(48, "NM004张三")
            .with(102, "11001234567890")
            .with(128, [0xAB; 8]);
        let shown = format!("{m:?}");
        assert!(!shown.contains("6217"), "{shown}");
        assert!(!shown.contains("张三"), "{shown}");
        assert!(!shown.contains("1100"), "{shown}");
        assert!(shown.contains("\"400000\""), "{shown}");
        assert!(shown.contains("0xABABABABABABABAB"), "{shown}");
        assert!(shown.contains("2: ***"), "{shown}");
        // Hand-built without a table: everything masked.
        let bare = Message::new("0200")
            .with(3, "400000")
            .with(2, "6217000012345678");
        let shown = format!("{bare:?}");
        assert!(
            !shown.contains("400000") && !shown.contains("6217"),
            "{shown}"
        );
        // Decoded: the table's masking.
        let bytes = encode(&s, &m).expect("encode");
        let shown = format!("{:?}", decode(&s, &bytes).expect("decode"));
        assert!(
            !shown.contains("6217") && shown.contains("400000"),
            "{shown}"
        );
        assert_eq!(
            format!("{:?}", Message::new("02\u{0}0")),
            "Message { mti: \"<invalid>\", fields: {} }"
        );
    }
}

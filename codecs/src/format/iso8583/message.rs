//! Messages: encode and decode against a [`MessageSpec`].
//!
//! Decoding is total: every length is checked against the bytes left and the table's maximum before it
//! is used, a bit set for a field the table does not have is an error (the rest of the message could
//! not be delimited), trailing bytes are rejected, and every error names the element (MTI, bitmap or
//! field number) and the byte offset from the start of the message, never a value.
use std::borrow::Cow;
use std::fmt;

use crate::field::gbk::{self, GbkError};
use crate::field::scan::{self, Utf8Runs};

use super::spec::{Enc, FieldKind, FieldOp, MessageSpec, Pad, bit};

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

/// A message's fields by number, kept in ascending order: a sorted vector (a message holds a few
/// dozen fields at most, usually set in ascending order), with the map methods of a `BTreeMap`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(u8, FieldValue)>);

type Entry = (u8, FieldValue);

/// [`Fields`]' iterator: numbers and values, ascending.
pub type FieldsIter<'a> =
    std::iter::Map<std::slice::Iter<'a, Entry>, fn(&'a Entry) -> (&'a u8, &'a FieldValue)>;

fn entry_refs(e: &Entry) -> (&u8, &FieldValue) {
    (&e.0, &e.1)
}

impl Fields {
    /// No fields.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    fn find(&self, number: u8) -> Result<usize, usize> {
        self.0.binary_search_by_key(&number, |e| e.0)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Field `number`.
    pub fn get(&self, number: &u8) -> Option<&FieldValue> {
        self.find(*number).ok().map(|i| &self.0[i].1)
    }

    /// Field `number`, to change it.
    pub fn get_mut(&mut self, number: &u8) -> Option<&mut FieldValue> {
        let i = self.find(*number).ok()?;
        Some(&mut self.0[i].1)
    }

    /// Whether field `number` is present.
    pub fn contains_key(&self, number: &u8) -> bool {
        self.find(*number).is_ok()
    }

    /// Sets field `number`, returning its previous value.
    pub fn insert(&mut self, number: u8, value: FieldValue) -> Option<FieldValue> {
        // Usually appended: fields are mostly set in ascending order.
        if self.0.last().is_none_or(|e| e.0 < number) {
            self.0.push((number, value));
            return None;
        }
        match self.find(number) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (number, value));
                None
            }
        }
    }

    /// Removes field `number`, returning its value.
    pub fn remove(&mut self, number: &u8) -> Option<FieldValue> {
        let i = self.find(*number).ok()?;
        Some(self.0.remove(i).1)
    }

    /// Numbers and values, ascending.
    pub fn iter(&self) -> FieldsIter<'_> {
        self.0.iter().map(entry_refs)
    }

    /// The field numbers, ascending.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &u8> + ExactSizeIterator + Clone {
        self.0.iter().map(|e| &e.0)
    }

    /// The values, by ascending number.
    pub fn values(
        &self,
    ) -> impl DoubleEndedIterator<Item = &FieldValue> + ExactSizeIterator + Clone {
        self.0.iter().map(|e| &e.1)
    }

    /// The lowest-numbered field.
    pub fn first_key_value(&self) -> Option<(&u8, &FieldValue)> {
        self.0.first().map(entry_refs)
    }

    /// The highest-numbered field.
    pub fn last_key_value(&self) -> Option<(&u8, &FieldValue)> {
        self.0.last().map(entry_refs)
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a u8, &'a FieldValue);
    type IntoIter = FieldsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Fields {
    type Item = (u8, FieldValue);
    type IntoIter = std::vec::IntoIter<Entry>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Like a `BTreeMap`'s: for a number given twice, the last value stays.
impl FromIterator<(u8, FieldValue)> for Fields {
    fn from_iter<I: IntoIterator<Item = (u8, FieldValue)>>(iter: I) -> Self {
        let mut fields = Self::new();
        for (n, v) in iter {
            fields.insert(n, v);
        }
        fields
    }
}

impl Extend<(u8, FieldValue)> for Fields {
    fn extend<I: IntoIterator<Item = (u8, FieldValue)>>(&mut self, iter: I) {
        for (n, v) in iter {
            self.insert(n, v);
        }
    }
}

/// Values in the clear: print a [`Message`], whose `Debug` masks personal data, not its fields.
impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
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
    pub fields: Fields,
    /// Fields masked by `Debug` (bit n-1 for field n).
    masked: u128,
}

impl Message {
    /// An empty message. Until [`Message::mask_per`], its `Debug` masks every value.
    pub fn new(mti: impl Into<String>) -> Self {
        Self {
            mti: mti.into(),
            fields: Fields::new(),
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
    let mut out = Vec::new();
    encode_into(spec, msg, &mut out)?;
    Ok(out)
}

/// [`encode`], appending to `out` (which may already hold other frames): one buffer, reserved once.
/// On error `out` is left as it was.
pub fn encode_into(
    spec: &MessageSpec,
    msg: &Message,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if msg.mti.len() != MTI_LEN || !msg.mti.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EncodeError::BadMti);
    }
    // First pass: every field is in the table (checked before any value, as errors are reported in
    // that order), the bitmap, and room for the whole message. A text's UTF-8 length bounds its GBK
    // length (a GBK character never takes more bytes than its UTF-8 form).
    let mut bitmap = 0u128;
    let mut room = MTI_LEN + 2 * BITMAP_LEN;
    for (&n, value) in &msg.fields {
        let f = spec.op(n).ok_or(EncodeError::UnknownField { field: n })?;
        bitmap |= wire_bit(n);
        let len = match value {
            FieldValue::Text(s) => s.len(),
            FieldValue::Bytes(b) => b.len(),
        };
        room += if f.prefix == 0 {
            f.width.max(len)
        } else {
            f.prefix + len
        };
    }
    let secondary = bitmap & u128::from(u64::MAX) != 0;
    if secondary {
        bitmap |= wire_bit(1);
    }
    let start = out.len();
    out.reserve(room);
    out.extend_from_slice(msg.mti.as_bytes());
    out.extend_from_slice(&bitmap.to_be_bytes()[..if secondary { 16 } else { 8 }]);
    for (&n, value) in &msg.fields {
        let written = match spec.op(n) {
            Some(f) => write_field(out, f, value),
            None => Err(EncodeError::UnknownField { field: n }),
        };
        if let Err(e) = written {
            out.truncate(start);
            return Err(e);
        }
    }
    Ok(())
}

/// Field `n`'s bit in the bitmaps read as one big-endian `u128` (field 1 is the most significant).
fn wire_bit(n: u8) -> u128 {
    match n {
        1..=128 => 1u128 << (128 - u32::from(n)),
        _ => 0,
    }
}

/// Writes one field's value (and its length prefix) straight into `out`.
fn write_field(out: &mut Vec<u8>, f: &FieldOp, value: &FieldValue) -> Result<(), EncodeError> {
    let field = f.number;
    let text = match value {
        FieldValue::Text(s) if f.encoding != Enc::Binary => s,
        FieldValue::Bytes(b) if f.encoding == Enc::Binary => return write_bytes(out, f, b),
        FieldValue::Text(_) => {
            return Err(EncodeError::WrongValueType {
                field,
                expected: "bytes",
            });
        }
        FieldValue::Bytes(_) => {
            return Err(EncodeError::WrongValueType {
                field,
                expected: "text",
            });
        }
    };
    let bytes = text.as_bytes();
    let bad = match f.encoding {
        Enc::Numeric => scan::first_not(bytes, scan::digit),
        Enc::Alpha => scan::first_not(bytes, scan::alphanumeric),
        Enc::AlphaNumSpecial => scan::first_not(bytes, scan::printable),
        Enc::Gbk | Enc::Binary => return write_gbk(out, f, text),
    };
    match bad {
        // Every byte before the first bad one is an allowed ASCII character: its 1-based byte
        // position is its character position.
        Some(at) => Err(EncodeError::BadCharacter {
            field,
            position: at + 1,
            charset: f.encoding.iso_name(),
        }),
        None => write_bytes(out, f, bytes),
    }
}

/// Writes a GBK field: encoded in place, after room for a length prefix that is filled in once the
/// length is known.
#[inline(never)]
fn write_gbk(out: &mut Vec<u8>, f: &FieldOp, text: &str) -> Result<(), EncodeError> {
    let field = f.number;
    // A control character is a byte below 0x20, DEL, or a C1 control (U+0080..=U+009F, in UTF-8
    // 0xC2 then 0x80..=0x9F): text without such bytes needs no character-wise look.
    if !scan::all(text.as_bytes(), |c| (c >= 0x20) & (c != 0x7F) & (c != 0xC2))
        && let Some(p) = text.chars().position(char::is_control)
    {
        return Err(EncodeError::BadCharacter {
            field,
            position: p + 1,
            charset: f.encoding.iso_name(),
        });
    }
    let prefix_at = out.len();
    out.resize(prefix_at + f.prefix, b'0');
    let at = out.len();
    gbk::encode_into(text, out).map_err(|source| EncodeError::NotGbk { field, source })?;
    let len = out.len() - at;
    match f.kind {
        FieldKind::Fixed { len: width } => {
            if len > width {
                return Err(EncodeError::TooLong {
                    field,
                    len,
                    max: width,
                });
            }
            out.resize(at + width, b' ');
        }
        FieldKind::LlVar { max } | FieldKind::LllVar { max } => {
            if len > max {
                return Err(EncodeError::TooLong { field, len, max });
            }
            write_digits(&mut out[prefix_at..at], len);
        }
        // The table pairs kind `binary` with encoding `binary` only.
        FieldKind::Binary { .. } => {
            return Err(EncodeError::WrongValueType {
                field,
                expected: "bytes",
            });
        }
    }
    Ok(())
}

/// Writes a value whose bytes are final (ASCII text, binary), padded or prefixed as its kind says.
#[inline]
fn write_bytes(out: &mut Vec<u8>, f: &FieldOp, bytes: &[u8]) -> Result<(), EncodeError> {
    let len = bytes.len();
    if f.prefix != 0 {
        if len > f.width {
            return Err(EncodeError::TooLong {
                field: f.number,
                len,
                max: f.width,
            });
        }
        let mut digits = [b'0'; 3];
        write_digits(&mut digits, len);
        match digits.split_last_chunk::<2>() {
            Some((_, two)) if f.prefix == 2 => out.extend_from_slice(two),
            _ => out.extend_from_slice(&digits),
        }
        out.extend_from_slice(bytes);
        return Ok(());
    }
    // A fixed or binary field whose value fills it: the common case, the same for every encoding.
    if len == f.width {
        out.extend_from_slice(bytes);
        return Ok(());
    }
    write_short_or_long(out, f, bytes)
}

/// A fixed or binary field whose value does not fill it exactly: padded, or an error.
fn write_short_or_long(out: &mut Vec<u8>, f: &FieldOp, bytes: &[u8]) -> Result<(), EncodeError> {
    let field = f.number;
    let len = bytes.len();
    let width = f.width;
    if let FieldKind::Binary { .. } = f.kind {
        return Err(EncodeError::WrongLength {
            field,
            len,
            expected: width,
        });
    }
    if len > width {
        return Err(EncodeError::TooLong {
            field,
            len,
            max: width,
        });
    }
    let pad = width - len;
    match f.pad {
        Pad::Zeros => {
            out.resize(out.len() + pad, b'0');
            out.extend_from_slice(bytes);
        }
        Pad::Spaces => {
            out.extend_from_slice(bytes);
            out.resize(out.len() + pad, b' ');
        }
        // `an` has no padding character.
        Pad::Exact => {
            return Err(EncodeError::WrongLength {
                field,
                len,
                expected: width,
            });
        }
    }
    Ok(())
}

/// `n` in decimal, right-aligned and zero-filled in `slot` (the table keeps lengths within 999, so
/// they fit their 2 or 3 digits).
fn write_digits(slot: &mut [u8], mut n: usize) {
    for d in slot.iter_mut().rev() {
        // `n % 10` is below 10.
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// A cursor over the message that only hands out checked slices.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
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

/// Reads one message: exactly the bytes given, nothing left over. The values are copied out of the
/// frame; [`decode_view`] checks the same and leaves them in it.
pub fn decode(spec: &MessageSpec, bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_view(spec, bytes).map(|view| view.to_message())
}

/// A present field's value in the frame (padding of `ans`/GBK fixed fields left out): its text when
/// that is ASCII, its bytes otherwise (binary, or GBK beyond ASCII, decoded when asked for).
#[derive(Debug, Clone, Copy, Default)]
enum Slot<'a> {
    #[default]
    Missing,
    Text(&'a str),
    Raw(&'a [u8]),
}

/// Slots kept in the view itself; a message with more fields keeps the rest in a `Vec`.
const INLINE_SLOTS: usize = 24;

/// The present fields' slots in field order (the `k`-th present field at `k`): a view stays small
/// (it is returned by value) and allocates nothing for messages of up to [`INLINE_SLOTS`] fields.
#[derive(Debug, Clone)]
struct Slots<'a> {
    inline: [Slot<'a>; INLINE_SLOTS],
    more: Vec<Slot<'a>>,
    len: usize,
}

impl<'a> Slots<'a> {
    fn new() -> Self {
        Self {
            inline: [Slot::Missing; INLINE_SLOTS],
            more: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, slot: Slot<'a>) {
        match self.inline.get_mut(self.len) {
            Some(s) => *s = slot,
            None => self.more.push(slot),
        }
        self.len += 1;
    }

    fn get(&self, k: usize) -> Slot<'a> {
        let slot = match k.checked_sub(INLINE_SLOTS) {
            None => self.inline.get(k),
            Some(k) => self.more.get(k),
        };
        slot.copied().unwrap_or_default()
    }
}

/// A checked message that borrows its values from the frame: what [`decode`] returns, without a copy
/// of each value. Text comes out as `&str` for the ASCII character sets and for GBK fields that hold
/// only ASCII; other GBK text is decoded when asked for (it was checked to be strict GBK already).
///
/// Its `Debug` masks the fields the table marks `sensitive`, like a decoded [`Message`]'s.
#[derive(Clone)]
pub struct MessageView<'a> {
    spec: &'a MessageSpec,
    frame: &'a [u8],
    /// Bit `n - 1` for each present field `n`.
    present: u128,
    /// At `[n]`, 1 + the position of field `n`'s value in `slots`; 0 when it is absent. A lookup by
    /// number is one load: counting the present fields below `n` would be a software popcount on the
    /// baseline x86-64 target, some fifty instructions per value read.
    position: [u8; 129],
    /// Their values, in field order.
    slots: Slots<'a>,
}

impl<'a> MessageView<'a> {
    /// The message type indicator (four ASCII digits).
    pub fn mti(&self) -> &'a str {
        // Checked to be ASCII digits by `decode_view`.
        std::str::from_utf8(&self.frame[..MTI_LEN]).unwrap_or_default()
    }

    /// Whether field `number` is present.
    #[inline]
    pub fn has(&self, number: u8) -> bool {
        self.present & bit(number) != 0
    }

    /// Number of fields present.
    pub fn len(&self) -> usize {
        self.present.count_ones() as usize
    }

    /// Whether the message has no fields.
    pub fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// The numbers of the present fields, ascending.
    pub fn numbers(&self) -> impl Iterator<Item = u8> + Clone + use<> {
        let mut left = self.present;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let i = left.trailing_zeros();
            left &= left - 1;
            // `i` is below 128.
            Some(i as u8 + 1)
        })
    }

    /// The bytes of field `number`'s value as on the wire, without its length prefix and without the
    /// trailing spaces of an `ans` or GBK fixed field.
    #[inline]
    pub fn raw(&self, number: u8) -> Option<&'a [u8]> {
        match self.slot(number) {
            Slot::Missing => None,
            Slot::Text(t) => Some(t.as_bytes()),
            Slot::Raw(b) => Some(b),
        }
    }

    #[inline]
    fn slot(&self, number: u8) -> Slot<'a> {
        match self.position.get(usize::from(number)) {
            Some(&k) if k > 0 => self.slots.get(usize::from(k - 1)),
            _ => Slot::Missing,
        }
    }

    /// Field `number` as text (a text field), borrowed from the frame unless GBK text had to be
    /// decoded. Equal to what [`Message::text`] gives for the decoded message.
    ///
    /// Inline, like the other accessors: out of line, the value comes back through memory, written
    /// in words and read back at once by the caller, a store-forwarding stall per value read.
    #[inline]
    pub fn text(&self, number: u8) -> Option<Cow<'a, str>> {
        let raw = match self.slot(number) {
            Slot::Missing => return None,
            Slot::Text(t) => return Some(Cow::Borrowed(t)),
            Slot::Raw(b) => b,
        };
        match self.spec.op(number)?.encoding {
            Enc::Binary => None,
            Enc::Gbk => Some(gbk_text(raw)),
            Enc::Numeric | Enc::Alpha | Enc::AlphaNumSpecial => Some(ascii_text(raw)),
        }
    }

    /// Field `number` as bytes (a binary field).
    #[inline]
    pub fn bytes(&self, number: u8) -> Option<&'a [u8]> {
        match self.spec.op(number)?.encoding {
            Enc::Binary => self.raw(number),
            _ => None,
        }
    }

    /// Field `number` as an owned value, as [`decode`] gives it.
    pub fn value(&self, number: u8) -> Option<FieldValue> {
        match self.spec.op(number)?.encoding {
            Enc::Binary => self.raw(number).map(|b| FieldValue::Bytes(b.to_vec())),
            _ => self.text(number).map(|t| FieldValue::Text(t.into_owned())),
        }
    }

    /// The owned message (equal to what [`decode`] returns for the same bytes).
    pub fn to_message(&self) -> Message {
        let fields = self
            .numbers()
            .filter_map(|n| self.value(n).map(|v| (n, v)))
            .collect();
        Message {
            mti: self.mti().to_owned(),
            fields,
            masked: self.spec.sensitive_mask(),
        }
    }
}

/// Text checked to be ASCII, as it is.
fn ascii_text(raw: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        // Not reached: `decode_view` checked the bytes.
        Err(_) => String::from_utf8_lossy(raw),
    }
}

/// Decoded GBK text: borrowed when it is ASCII. Out of line: the accessors that call it are inlined.
#[inline(never)]
fn gbk_text(raw: &[u8]) -> Cow<'_, str> {
    if raw.is_ascii() {
        return ascii_text(raw);
    }
    // Checked to be strict GBK text by `decode_view`: the one-pass decoder takes it. Should it ever
    // not, the reference decoder, and failing that the bytes as they are rather than a panic.
    if let Some(text) = gbk::decode_text(raw) {
        return Cow::Owned(text);
    }
    match gbk::decode(raw) {
        Ok(text) => Cow::Owned(text),
        Err(_) => String::from_utf8_lossy(raw),
    }
}

impl fmt::Debug for MessageView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shown<'v, 'a>(&'v MessageView<'a>, u8);
        impl fmt::Debug for Shown<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Shown(view, n) = *self;
                if view.spec.sensitive_mask() & bit(n) != 0 {
                    return f.write_str("***");
                }
                match (view.text(n), view.raw(n)) {
                    (Some(t), _) => fmt::Debug::fmt(&t, f),
                    (None, Some(b)) => {
                        f.write_str("0x")?;
                        b.iter().try_for_each(|x| write!(f, "{x:02X}"))
                    }
                    (None, None) => f.write_str("?"),
                }
            }
        }
        f.debug_struct("MessageView")
            .field("mti", &self.mti())
            .field(
                "fields",
                &DebugMap(self.numbers().map(|n| (n, Shown(self, n)))),
            )
            .finish()
    }
}

/// Reads one message like [`decode`] (the same checks, the same errors), leaving the values in
/// `bytes`: no allocation.
pub fn decode_view<'a>(
    spec: &'a MessageSpec,
    bytes: &'a [u8],
) -> Result<MessageView<'a>, DecodeError> {
    let mut r = Reader { bytes, pos: 0 };
    let mti = r.take(Element::Mti, MTI_LEN)?;
    if let Some(p) = mti.iter().position(|b| !b.is_ascii_digit()) {
        return Err(DecodeError::BadMti { offset: p });
    }
    let primary_at = r.pos;
    let mut word = [0u8; BITMAP_LEN];
    word.copy_from_slice(r.take(Element::PrimaryBitmap, BITMAP_LEN)?);
    // Field n at bit 128 - n, as in `wire_bit`.
    let mut bitmap = u128::from(u64::from_be_bytes(word)) << 64;
    let secondary_at = r.pos;
    if bitmap & wire_bit(1) != 0 {
        word.copy_from_slice(r.take(Element::SecondaryBitmap, BITMAP_LEN)?);
        bitmap |= u128::from(u64::from_be_bytes(word));
    }
    // Bit 1 announces the secondary bitmap; it is no field. Field n is at wire bit 128 - n, and at
    // bit n - 1 once the bits are reversed: the fields present, lowest number first from bit 0.
    bitmap &= !wire_bit(1);
    let present = bitmap.reverse_bits();
    let mut view = MessageView {
        spec,
        frame: bytes,
        present,
        position: [0; 129],
        slots: Slots::new(),
    };
    let mut utf8 = Utf8Runs::new(bytes);
    let mut left = present;
    while left != 0 {
        let i = left.trailing_zeros();
        left &= left - 1;
        // `i` is below 128: field numbers 2..=128.
        let n = i as u8 + 1;
        let Some(f) = spec.op(n) else {
            let i = i as usize;
            let offset = if n <= 64 {
                primary_at + i / 8
            } else {
                secondary_at + (i - 64) / 8
            };
            return Err(DecodeError::UnknownField { field: n, offset });
        };
        view.slots.push(read_field(&mut r, f, &mut utf8)?);
        // At most 127 fields: the count fits.
        if let (Some(p), Ok(k)) = (
            view.position.get_mut(usize::from(n)),
            u8::try_from(view.slots.len),
        ) {
            *p = k;
        }
    }
    if r.pos != bytes.len() {
        return Err(DecodeError::TrailingBytes {
            offset: r.pos,
            count: bytes.len() - r.pos,
        });
    }
    Ok(view)
}

fn read_field<'a>(
    r: &mut Reader<'a>,
    f: &FieldOp,
    utf8: &mut Utf8Runs<'a>,
) -> Result<Slot<'a>, DecodeError> {
    let field = f.number;
    let element = Element::Field(field);
    let len = if f.prefix == 0 {
        f.width
    } else {
        let offset = r.pos;
        let prefix = r.take(element, f.prefix)?;
        let mut len = 0usize;
        for &b in prefix {
            if !b.is_ascii_digit() {
                return Err(DecodeError::BadLengthPrefix { field, offset });
            }
            len = len * 10 + usize::from(b - b'0');
        }
        if len > f.width {
            return Err(DecodeError::TooLong {
                field,
                offset,
                len,
                max: f.width,
            });
        }
        len
    };
    let offset = r.pos;
    let raw = r.take(element, len)?;
    // A space can never be a GBK trail byte (those are 0x40 and up): trimming GBK is safe.
    let text = if f.pad == Pad::Spaces {
        trim_spaces(raw)
    } else {
        raw
    };
    let (bad, problem) = match f.encoding {
        Enc::Numeric => (scan::first_not(text, scan::digit), "not an ASCII digit"),
        Enc::Alpha => (
            scan::first_not(text, scan::alphanumeric),
            "not an ASCII letter or digit",
        ),
        Enc::AlphaNumSpecial => (
            scan::first_not(text, scan::printable),
            "not printable ASCII",
        ),
        Enc::Binary => return Ok(Slot::Raw(raw)),
        Enc::Gbk => {
            check_gbk(field, offset, text)?;
            // Text beyond ASCII is GBK, decoded when asked for.
            if !text.is_ascii() {
                return Ok(Slot::Raw(text));
            }
            (None, "")
        }
    };
    match bad {
        Some(at) => Err(DecodeError::BadValue {
            field,
            offset: offset + at,
            problem,
        }),
        // Checked ASCII: its text (the bytes, should the frame ever not be UTF-8 there).
        None => Ok(utf8
            .text(offset, offset + text.len())
            .map_or(Slot::Raw(text), Slot::Text)),
    }
}

/// Checks a GBK field's value: strict GBK text without control characters. Out of line, like
/// [`write_gbk`]: at most a field or two per message, and inlined it would crowd the field loop.
#[inline(never)]
fn check_gbk(field: u8, offset: usize, text: &[u8]) -> Result<(), DecodeError> {
    let bad = |at: usize, problem| DecodeError::BadValue {
        field,
        offset: offset + at,
        problem,
    };
    // One pass on good text; the two checks below, in their order, find what is wrong.
    if gbk::is_strict_text(text) {
        return Ok(());
    }
    // Control bytes can only be single-byte characters (a GBK trail byte is 0x40 and up).
    if let Some(p) = text.iter().position(|&b| b < 0x20 || b == 0x7F) {
        return Err(bad(p, "a control character"));
    }
    gbk::check(text).map_err(|e| {
        let at = match e {
            GbkError::Malformed { offset } => offset,
            // Decoding reports byte offsets only; a character position is no offset.
            GbkError::Unmappable { .. } => 0,
        };
        bad(at, "not strict GBK")
    })
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    scan::trim_end(b, b' ')
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

    fn payout() -> Message {
        spec()
            .message("0200")
            .with(2, "6217000012345678")
            .with(3, "400000")
            .with(4, "000000000100")
            .with(41, "GW01")
            .with(48, "NM004张三IT0011")
            .with(102, "11001234567890")
            .with(121, "RS002OK")
            .with(128, [0xAB; 8])
    }

    #[test]
    fn fields_behave_like_a_btree_map() {
        let mut f = Fields::new();
        assert!(f.is_empty());
        assert_eq!(f.insert(48, "b".into()), None);
        assert_eq!(f.insert(3, "a".into()), None);
        assert_eq!(f.insert(128, vec![1u8].into()), None);
        assert_eq!(f.insert(11, "c".into()), None);
        assert_eq!(f.insert(3, "A".into()), Some("a".into()));
        assert_eq!(f.keys().copied().collect::<Vec<_>>(), [3, 11, 48, 128]);
        assert_eq!(f.len(), 4);
        assert_eq!(f.get(&3), Some(&"A".into()));
        assert!(f.contains_key(&128) && !f.contains_key(&4));
        assert_eq!(f.remove(&11), Some("c".into()));
        assert_eq!(f.remove(&11), None);
        assert_eq!(f.first_key_value().map(|(n, _)| *n), Some(3));
        assert_eq!(f.last_key_value().map(|(n, _)| *n), Some(128));
        let pairs: Vec<(u8, FieldValue)> = vec![(7, "x".into()), (2, "y".into()), (7, "z".into())];
        let g: Fields = pairs.into_iter().collect();
        assert_eq!(g.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 7]);
        assert_eq!(g.get(&7), Some(&"z".into()), "the last value stays");
        assert_eq!(format!("{g:?}"), r#"{2: Text("y"), 7: Text("z")}"#);
        assert_eq!(g.into_iter().count(), 2);
    }

    #[test]
    fn view_borrows_values_and_equals_the_owned_decode() {
        let s = spec();
        let m = payout();
        let bytes = encode(&s, &m).expect("encode");
        let view = decode_view(&s, &bytes).expect("view");
        assert_eq!(view.to_message(), m);
        assert_eq!(decode(&s, &bytes).expect("decode"), m);
        assert_eq!(view.mti(), "0200");
        assert_eq!(
            view.numbers().collect::<Vec<_>>(),
            [2, 3, 4, 41, 48, 102, 121, 128]
        );
        assert_eq!(view.len(), 8);
        assert!(view.has(41) && !view.has(42) && !view.has(0) && !view.has(200));
        // ASCII stays in the frame; padding is left out; GBK beyond ASCII is decoded.
        assert!(matches!(view.text(3), Some(Cow::Borrowed("400000"))));
        assert!(matches!(view.text(41), Some(Cow::Borrowed("GW01"))));
        assert_eq!(view.raw(41), Some(&b"GW01"[..]));
        assert!(matches!(view.text(121), Some(Cow::Borrowed("RS002OK"))));
        assert!(matches!(view.text(48), Some(Cow::Owned(t)) if t == "NM004张三IT0011"));
        assert_eq!(view.text(4).as_deref(), Some("000000000100"));
        // Binary is bytes, not text, and the other way round.
        assert_eq!(view.bytes(128), Some(&[0xAB; 8][..]));
        assert_eq!(view.text(128), None);
        assert_eq!(view.bytes(3), None);
        assert_eq!(view.text(11), None);
        for n in view.numbers() {
            assert_eq!(view.value(n).as_ref(), m.get(n), "field {n}");
        }
        let shown = format!("{view:?}");
        assert!(!shown.contains("6217") && !shown.contains('张'), "{shown}");
        assert!(
            shown.contains("\"400000\"") && shown.contains("0xABABABABABABABAB"),
            "{shown}"
        );
    }

    #[test]
    fn view_rejects_every_truncation_and_survives_corruption() {
        let s = spec();
        let bytes = encode(&s, &payout()).expect("encode");
        for cut in 0..bytes.len() {
            let err = decode_view(&s, &bytes[..cut]).expect_err("truncated");
            assert_eq!(decode(&s, &bytes[..cut]), Err(err.clone()));
            // Errors carry positions, never values.
            let text = err.to_string();
            assert!(!text.contains("6217") && !text.contains('张'), "{text}");
        }
        for at in 0..bytes.len() {
            for b in [0x00, 0x20, b'9', b'A', 0x80, 0xA2, 0xFF] {
                let mut bad = bytes.clone();
                bad[at] = b;
                // Never a panic; whatever decodes encodes again and reads back the same (the
                // bytes may differ: padding spaces of an `ans` field are not part of its value).
                if let Ok(view) = decode_view(&s, &bad) {
                    let m = view.to_message();
                    let again = encode(&s, &m).expect("re-encode");
                    assert_eq!(decode(&s, &again), Ok(m.clone()), "byte {at} = {b:02X}");
                    assert_eq!(decode(&s, &bad), Ok(m));
                }
            }
        }
    }

    #[test]
    fn encode_into_appends_and_leaves_the_buffer_alone_on_error() {
        let s = spec();
        let mut out = b"prefix".to_vec();
        encode_into(&s, &payout(), &mut out).expect("encode");
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(&out[6..], &encode(&s, &payout()).expect("encode")[..]);
        let len = out.len();
        for bad in [
            payout().with(48, "NM003€"),
            payout().with(121, "张".repeat(500)),
            payout().with(4, "1x"),
            payout().with(5, "1"),
        ] {
            assert!(encode_into(&s, &bad, &mut out).is_err());
            assert_eq!(out.len(), len);
        }
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

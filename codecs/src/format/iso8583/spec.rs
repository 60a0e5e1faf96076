//! Field tables: which fields a message may carry and how each is written. Data, not code: a bank's
//! table is a list of [`FieldSpec`] that a profile file can hold (see `bank_c_fields.toml`), checked
//! once by [`MessageSpec::new`] (also on deserialization) so that the encoder and decoder can trust it.
use serde::{Deserialize, Serialize};

/// How a field is delimited on the wire. Lengths are in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum FieldKind {
    /// Exactly `len` bytes, padded as the encoding says (`n`: zeros on the left; `ans`, GBK: spaces on
    /// the right; `an`: no padding, the value must fill the field).
    Fixed {
        /// Field length in bytes.
        len: usize,
    },
    /// Two ASCII digits giving the value's length in bytes (at most `max`, at most 99), then the value.
    LlVar {
        /// Largest value length in bytes.
        max: usize,
    },
    /// Three ASCII digits giving the value's length in bytes (at most `max`, at most 999), then the
    /// value.
    LllVar {
        /// Largest value length in bytes.
        max: usize,
    },
    /// Exactly `len` raw bytes (encoding `binary`).
    Binary {
        /// Field length in bytes.
        len: usize,
    },
}

/// The characters a field may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enc {
    /// `n`: ASCII digits; a fixed field is right-aligned and zero-padded.
    Numeric,
    /// `an`: ASCII letters and digits.
    Alpha,
    /// `ans`: printable ASCII (0x20..=0x7E); a fixed field is space-padded on the right.
    AlphaNumSpecial,
    /// `ans` in strict GBK (see [`crate::field::gbk`]), no control characters; lengths count bytes; a
    /// fixed field is space-padded on the right.
    Gbk,
    /// `b`: raw bytes.
    Binary,
}

impl Enc {
    /// The ISO 8583 name of the character set, for messages.
    pub fn iso_name(self) -> &'static str {
        match self {
            Enc::Numeric => "n",
            Enc::Alpha => "an",
            Enc::AlphaNumSpecial => "ans",
            Enc::Gbk => "ans (GBK)",
            Enc::Binary => "b",
        }
    }
}

/// One field of a message table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Field (bit) number, 2..=128.
    pub number: u8,
    /// A short name, for people reading the table and errors.
    pub name: String,
    /// How the field is delimited.
    pub kind: FieldKind,
    /// The characters it holds.
    pub encoding: Enc,
    /// Personal data (account numbers, recipient data): masked whenever a message is printed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl FieldSpec {
    /// A field that is not sensitive.
    pub fn new(number: u8, name: &str, kind: FieldKind, encoding: Enc) -> Self {
        Self {
            number,
            name: name.to_owned(),
            kind,
            encoding,
            sensitive: false,
        }
    }

    /// The same field, marked sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Largest number of bytes the field takes on the wire, length prefix included.
    pub fn max_wire_len(&self) -> usize {
        match self.kind {
            FieldKind::Fixed { len } | FieldKind::Binary { len } => len,
            FieldKind::LlVar { max } => 2 + max,
            FieldKind::LllVar { max } => 3 + max,
        }
    }

    fn check(&self) -> Result<(), SpecError> {
        let bad = |problem: &'static str| SpecError::BadField {
            field: self.number,
            problem,
        };
        if self.name.trim().is_empty() {
            return Err(bad("empty name"));
        }
        match (self.kind, self.encoding) {
            (FieldKind::Fixed { len: 0 } | FieldKind::Binary { len: 0 }, _) => Err(bad("length 0")),
            (FieldKind::LlVar { max: 0 } | FieldKind::LllVar { max: 0 }, _) => {
                Err(bad("maximum length 0"))
            }
            (FieldKind::LlVar { max }, _) if max > 99 => {
                Err(bad("an LLVAR field holds at most 99 bytes"))
            }
            (FieldKind::LllVar { max }, _) if max > 999 => {
                Err(bad("an LLLVAR field holds at most 999 bytes"))
            }
            (FieldKind::Binary { .. }, enc) if enc != Enc::Binary => {
                Err(bad("a binary field needs encoding `binary`"))
            }
            (FieldKind::Fixed { .. }, Enc::Binary) => Err(bad(
                "a fixed field of encoding `binary` is written as kind `binary`",
            )),
            _ => Ok(()),
        }
    }
}

/// Why a field table is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A field number outside 2..=128 (bit 1 announces the secondary bitmap, it is not a field).
    #[error(
        "field number {number} is outside 2..=128 (bit 1 is reserved for the secondary bitmap)"
    )]
    NumberOutOfRange {
        /// The number.
        number: u8,
    },
    /// Two fields with one number.
    #[error("field {number} is declared twice")]
    DuplicateNumber {
        /// The number.
        number: u8,
    },
    /// Two fields with one name.
    #[error("fields {first} and {second} are both named `{name}`")]
    DuplicateName {
        /// The name.
        name: String,
        /// First field with it.
        first: u8,
        /// Second field with it.
        second: u8,
    },
    /// A field whose kind, encoding or length does not make sense.
    #[error("field {field}: {problem}")]
    BadField {
        /// Field number.
        field: u8,
        /// What is wrong.
        problem: &'static str,
    },
}

/// A checked field table.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawMessageSpec")]
pub struct MessageSpec {
    fields: Vec<FieldSpec>,
    /// What the encoder and decoder look up per field, resolved once by [`MessageSpec::new`].
    #[serde(skip)]
    plan: Plan,
}

/// What the encoder and decoder need of one field, found by number in one index (no index into
/// `fields` and then the spec, a chain of two dependent loads per field). Handed out by reference:
/// copied out, it cost a copy of the whole entry per field.
///
/// Besides kind and encoding it holds what they imply, worked out once by [`FieldOp::of`]: the
/// width, the prefix and the padding as data, so that the codec branches on the kind once, not in
/// each of its steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldOp {
    /// Field (bit) number.
    pub(crate) number: u8,
    /// How the field is delimited.
    pub(crate) kind: FieldKind,
    /// The characters it holds.
    pub(crate) encoding: Enc,
    /// Digits of the length prefix: 0 for fixed and binary fields, 2 for LLVAR, 3 for LLLVAR.
    pub(crate) prefix: usize,
    /// The length of a fixed or binary field; the largest value length of a variable one.
    pub(crate) width: usize,
    /// How a short value of a fixed field is filled up.
    pub(crate) pad: Pad,
}

/// How a fixed field shorter than its width is filled up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pad {
    /// Zeros on the left (`n`).
    Zeros,
    /// Spaces on the right (`ans`, GBK); the decoder leaves them out of the value.
    Spaces,
    /// Not at all: the value must fill the field (`an`, binary, and every variable field).
    Exact,
}

impl FieldOp {
    fn of(f: &FieldSpec) -> Self {
        let (prefix, width) = match f.kind {
            FieldKind::Fixed { len } | FieldKind::Binary { len } => (0, len),
            FieldKind::LlVar { max } => (2, max),
            FieldKind::LllVar { max } => (3, max),
        };
        let pad = match (f.kind, f.encoding) {
            (FieldKind::Fixed { .. }, Enc::Numeric) => Pad::Zeros,
            (FieldKind::Fixed { .. }, Enc::AlphaNumSpecial | Enc::Gbk) => Pad::Spaces,
            _ => Pad::Exact,
        };
        Self {
            number: f.number,
            kind: f.kind,
            encoding: f.encoding,
            prefix,
            width,
            pad,
        }
    }
}

/// The table resolved for the codec: a field's spec by number in one index, no search.
#[derive(Clone, PartialEq, Eq)]
struct Plan {
    /// Position in `fields` of field `n` at `[n]`, [`Plan::NONE`] when the table has no such field.
    index: [u8; 129],
    /// Field `n`'s kind and encoding at `[n]`.
    ops: [Option<FieldOp>; 129],
    /// Bit `n - 1` set for every sensitive field `n`.
    sensitive: u128,
}

impl Plan {
    const NONE: u8 = u8::MAX;

    fn of(fields: &[FieldSpec]) -> Self {
        let mut index = [Self::NONE; 129];
        let mut ops = [None; 129];
        let mut sensitive = 0;
        for (i, f) in fields.iter().enumerate() {
            if let Some(op) = ops.get_mut(usize::from(f.number)) {
                *op = Some(FieldOp::of(f));
            }
            // `new` has checked the numbers (2..=128, unique), so there are at most 127 fields.
            if let (Some(slot), Ok(i)) = (index.get_mut(usize::from(f.number)), u8::try_from(i)) {
                *slot = i;
            }
            if f.sensitive {
                sensitive |= bit(f.number);
            }
        }
        Self {
            index,
            ops,
            sensitive,
        }
    }
}

/// The table only: the plan is derived from it.
impl std::fmt::Debug for MessageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageSpec")
            .field("fields", &self.fields)
            .finish()
    }
}

/// The table as written in a file, before checking.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessageSpec {
    fields: Vec<FieldSpec>,
}

impl TryFrom<RawMessageSpec> for MessageSpec {
    type Error = SpecError;

    fn try_from(raw: RawMessageSpec) -> Result<Self, SpecError> {
        Self::new(raw.fields)
    }
}

impl MessageSpec {
    /// Checks a table: numbers in 2..=128 and unique, names unique, kinds and encodings consistent.
    /// The order of `fields` is kept (the wire order is always by number).
    pub fn new(fields: Vec<FieldSpec>) -> Result<Self, SpecError> {
        for (i, f) in fields.iter().enumerate() {
            if !(2..=128).contains(&f.number) {
                return Err(SpecError::NumberOutOfRange { number: f.number });
            }
            f.check()?;
            for g in &fields[..i] {
                if g.number == f.number {
                    return Err(SpecError::DuplicateNumber { number: f.number });
                }
                if g.name == f.name {
                    return Err(SpecError::DuplicateName {
                        name: f.name.clone(),
                        first: g.number,
                        second: f.number,
                    });
                }
            }
        }
        let plan = Plan::of(&fields);
        Ok(Self { fields, plan })
    }

    /// The fields, in table order.
    pub fn fields(&self) -> &[FieldSpec] {
        &self.fields
    }

    /// The spec of field `number`.
    #[inline]
    pub fn field(&self, number: u8) -> Option<&FieldSpec> {
        let i = *self.plan.index.get(usize::from(number))?;
        self.fields.get(usize::from(i))
    }

    /// Field `number`'s kind, encoding and what they imply.
    #[inline]
    pub(crate) fn op(&self, number: u8) -> Option<&FieldOp> {
        self.plan.ops.get(usize::from(number))?.as_ref()
    }

    /// Bit `n - 1` set for every sensitive field `n`.
    pub(crate) fn sensitive_mask(&self) -> u128 {
        self.plan.sensitive
    }

    /// Bank C's table (interface specification 3.0, "Message layout"). The same table ships as
    /// `bank_c_fields.toml` for the bank profile; a test keeps the two equal.
    pub fn bank_c() -> Self {
        use Enc::{Alpha, AlphaNumSpecial, Gbk, Numeric};
        use FieldKind::{Fixed, LlVar, LllVar};
        let f = FieldSpec::new;
        let fields = vec![
            f(2, "recipient_account", LlVar { max: 28 }, Numeric).sensitive(),
            f(3, "processing_code", Fixed { len: 6 }, Numeric),
            f(4, "amount", Fixed { len: 12 }, Numeric),
            f(7, "transmission_time", Fixed { len: 10 }, Numeric),
            f(11, "stan", Fixed { len: 6 }, Numeric),
            f(12, "local_time", Fixed { len: 6 }, Numeric),
            f(13, "local_date", Fixed { len: 4 }, Numeric),
            f(32, "sending_institution", LlVar { max: 11 }, Numeric),
            f(37, "item_reference", Fixed { len: 12 }, Alpha),
            f(39, "response_code", Fixed { len: 2 }, Alpha),
            f(41, "terminal", Fixed { len: 8 }, AlphaNumSpecial),
            f(42, "department", Fixed { len: 15 }, AlphaNumSpecial),
            f(48, "recipient_data", LllVar { max: 999 }, Gbk).sensitive(),
            f(49, "currency", Fixed { len: 3 }, Numeric),
            f(70, "network_code", Fixed { len: 3 }, Numeric),
            f(90, "original_data", Fixed { len: 42 }, Numeric),
            f(100, "account_bank", LlVar { max: 12 }, Numeric),
            f(102, "payer_account", LlVar { max: 32 }, AlphaNumSpecial).sensitive(),
            f(121, "result_data", LllVar { max: 999 }, Gbk).sensitive(),
            f(128, "mac", FieldKind::Binary { len: 8 }, Enc::Binary),
        ];
        match Self::new(fields) {
            Ok(spec) => spec,
            // A constant table: the unit tests check it; an empty table is safer than a panic.
            Err(_) => Self {
                plan: Plan::of(&[]),
                fields: Vec::new(),
            },
        }
    }
}

/// The mask bit of field `n` (1..=128).
pub(crate) fn bit(n: u8) -> u128 {
    match n {
        1..=128 => 1u128 << (n - 1),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_c_table_is_valid_and_complete() {
        let spec = MessageSpec::bank_c();
        assert_eq!(
            MessageSpec::new(spec.fields().to_vec()),
            Ok(spec.clone()),
            "bank_c() must pass its own checks"
        );
        let numbers: Vec<u8> = spec.fields().iter().map(|f| f.number).collect();
        assert_eq!(
            numbers,
            [
                2, 3, 4, 7, 11, 12, 13, 32, 37, 39, 41, 42, 48, 49, 70, 90, 100, 102, 121, 128
            ]
        );
        let sensitive: Vec<u8> = spec
            .fields()
            .iter()
            .filter(|f| f.sensitive)
            .map(|f| f.number)
            .collect();
        assert_eq!(sensitive, [2, 48, 102, 121]);
    }

    #[test]
    fn rejects_bad_tables() {
        let ok = |n| {
            FieldSpec::new(
                n,
                &format!("f{n}"),
                FieldKind::Fixed { len: 2 },
                Enc::Numeric,
            )
        };
        assert_eq!(
            MessageSpec::new(vec![ok(1)]),
            Err(SpecError::NumberOutOfRange { number: 1 })
        );
        assert_eq!(
            MessageSpec::new(vec![ok(129)]),
            Err(SpecError::NumberOutOfRange { number: 129 })
        );
        assert_eq!(
            MessageSpec::new(vec![ok(2), ok(3), ok(2)]),
            Err(SpecError::DuplicateNumber { number: 2 })
        );
        let mut same_name = ok(4);
        same_name.name = "f2".into();
        assert!(matches!(
            MessageSpec::new(vec![ok(2), same_name]),
            Err(SpecError::DuplicateName {
                first: 2,
                second: 4,
                ..
            })
        ));
        let bad = [
            FieldSpec::new(5, "a", FieldKind::LlVar { max: 100 }, Enc::Numeric),
            FieldSpec::new(5, "a", FieldKind::LllVar { max: 1000 }, Enc::Gbk),
            FieldSpec::new(5, "a", FieldKind::Fixed { len: 0 }, Enc::Numeric),
            FieldSpec::new(5, "a", FieldKind::LlVar { max: 0 }, Enc::Numeric),
            FieldSpec::new(5, "a", FieldKind::Binary { len: 8 }, Enc::Gbk),
            FieldSpec::new(5, "a", FieldKind::Fixed { len: 8 }, Enc::Binary),
            FieldSpec::new(5, " ", FieldKind::Fixed { len: 8 }, Enc::Alpha),
        ];
        for f in bad {
            let kind = f.kind;
            assert!(
                matches!(
                    MessageSpec::new(vec![f]),
                    Err(SpecError::BadField { field: 5, .. })
                ),
                "{kind:?}"
            );
        }
        // Binary values with an ASCII length prefix are allowed.
        assert!(
            MessageSpec::new(vec![FieldSpec::new(
                55,
                "icc",
                FieldKind::LllVar { max: 255 },
                Enc::Binary
            )])
            .is_ok()
        );
    }

    #[test]
    fn shipped_toml_equals_bank_c_and_round_trips() {
        let loaded: MessageSpec =
            toml::from_str(crate::format::iso8583::BANK_C_FIELDS_TOML).expect("toml");
        assert_eq!(loaded, MessageSpec::bank_c());
        let text = toml::to_string(&loaded).expect("serialize");
        let again: MessageSpec = toml::from_str(&text).expect("reload");
        assert_eq!(again, loaded);
        let json = serde_json::to_string(&loaded).expect("json");
        assert_eq!(
            serde_json::from_str::<MessageSpec>(&json).expect("json back"),
            loaded
        );
    }

    #[test]
    fn deserialization_checks_the_table() {
        let json = r#"{"fields":[{"number":1,"name":"x","kind":{"type":"fixed","len":2},"encoding":"numeric"}]}"#;
        let err = serde_json::from_str::<MessageSpec>(json).expect_err("bit 1");
        assert!(err.to_string().contains("reserved"), "{err}");
        let json = r#"{"fields":[{"number":2,"name":"x","kind":{"type":"fixed","len":2},"encoding":"numeric","color":"red"}]}"#;
        let err = serde_json::from_str::<MessageSpec>(json).expect_err("unknown key");
        assert!(err.to_string().contains("color"), "{err}");
        let json = r#"{"fields":[{"number":2,"name":"x","kind":{"type":"fixed","len":2,"max":3},"encoding":"numeric"}]}"#;
        assert!(serde_json::from_str::<MessageSpec>(json).is_err());
        let json = r#"{"fields":[],"extra":1}"#;
        assert!(serde_json::from_str::<MessageSpec>(json).is_err());
    }
}

//! ISO 8583-like messages (bank C family).
//!
//! ```text
//! +------+------------------+--------------------+------------------------------------+
//! | MTI  | primary bitmap   | secondary bitmap   | fields, ascending by number        |
//! | 4 n  | 8 bytes, binary  | 8 bytes, binary;   | fixed: exactly `len` bytes          |
//! |      | bit 1 = MSB of   | present when bit 1 | LLVAR: 2 ASCII digits + value       |
//! |      | byte 0           | is set (fields 65+)| LLLVAR: 3 ASCII digits + value      |
//! +------+------------------+--------------------+------------------------------------+
//! ```
//! Lengths count bytes (GBK text included). Which fields exist and how each is written is data: a
//! [`MessageSpec`] of [`FieldSpec`]s (`MessageSpec::bank_c()`, or the same table loaded from a profile,
//! see `bank_c_fields.toml`). Framing (the 2-byte length header) is [`crate::framing::U16LenCodec`]'s;
//! F128's MAC is computed by [`crate::mac`] over the bytes [`mac_input`] returns. F48/F121 hold tag lists
//! ([`Tlv`]).
pub mod mac;
pub mod message;
pub mod spec;
pub mod tlv;

pub use mac::{MAC_FIELD, MacError, encode_with_mac, mac_input, verify_mac};
pub use message::{
    DecodeError, Element, EncodeError, FieldValue, Fields, Message, MessageView, decode,
    decode_view, encode, encode_into,
};
pub use spec::{Enc, FieldKind, FieldSpec, MessageSpec, SpecError};
pub use tlv::{Tlv, TlvError};

/// Bank C's field table as its profile holds it (kept equal to [`MessageSpec::bank_c`] by a test).
pub const BANK_C_FIELDS_TOML: &str = include_str!("bank_c_fields.toml");

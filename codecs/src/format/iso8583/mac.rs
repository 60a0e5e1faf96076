//! F128: the MAC of a message.
//!
//! ```text
//! | MTI | primary bitmap | secondary bitmap | F2 ... F121 | F128 (8 bytes) |
//! |<------------------- MAC input ------------------------>|<--- MAC ----->|
//! ```
//! The input is every byte from the MTI to the last byte of the field before F128, the bitmaps with bit
//! 128 already set; the frame's length header is not part of it. F128 is the last field (the highest
//! number), so the MAC is always the last 8 bytes of the message.
use crate::mac::{self, MAC_LEN, MacAlg, MacKey};

use super::message::{BITMAP_LEN, DecodeError, EncodeError, MTI_LEN, Message, decode, encode};
use super::spec::{FieldKind, MessageSpec};

/// The MAC field.
pub const MAC_FIELD: u8 = 128;

/// Why a message's MAC was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacError {
    /// The bytes are not a message of the table.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The message has no F128.
    #[error("the message has no MAC (field 128)")]
    Missing,
    /// F128 is not the MAC of the message (or the key or algorithm differ from the bank's).
    #[error("the MAC (field 128) does not match the message")]
    Mismatch,
    /// The table has no binary 8-byte F128.
    #[error("the message table has no binary 8-byte field 128")]
    NoMacField,
}

/// The bytes a MAC covers: the whole message except its last 8 bytes when bit 128 is set (primary
/// bitmap bit 1 and secondary bitmap bit 64), the whole message otherwise. Meant for a message that
/// decodes; it does not check the fields.
pub fn mac_input(message: &[u8]) -> &[u8] {
    let secondary_last = MTI_LEN + 2 * BITMAP_LEN - 1;
    let has_secondary = message.get(MTI_LEN).is_some_and(|b| b & 0x80 != 0);
    let has_mac = has_secondary && message.get(secondary_last).is_some_and(|b| b & 0x01 != 0);
    if has_mac {
        &message[..message.len().saturating_sub(MAC_LEN)]
    } else {
        message
    }
}

fn has_mac_field(spec: &MessageSpec) -> bool {
    spec.field(MAC_FIELD)
        .is_some_and(|f| f.kind == FieldKind::Binary { len: MAC_LEN })
}

/// Encodes `msg` with F128 set to its MAC (any F128 in `msg` is replaced).
pub fn encode_with_mac(
    spec: &MessageSpec,
    msg: &Message,
    alg: MacAlg,
    key: &MacKey,
) -> Result<Vec<u8>, EncodeError> {
    if !has_mac_field(spec) {
        return Err(EncodeError::NoMacField);
    }
    let mut with_slot = msg.clone();
    with_slot.set(MAC_FIELD, [0u8; MAC_LEN]);
    let mut bytes = encode(spec, &with_slot)?;
    let split = bytes.len() - MAC_LEN;
    let code = mac::compute(alg, key, &bytes[..split]);
    bytes[split..].copy_from_slice(&code);
    Ok(bytes)
}

/// Decodes `bytes` and checks its F128 (in constant time); the message only when the MAC is right.
pub fn verify_mac(
    spec: &MessageSpec,
    bytes: &[u8],
    alg: MacAlg,
    key: &MacKey,
) -> Result<Message, MacError> {
    if !has_mac_field(spec) {
        return Err(MacError::NoMacField);
    }
    let msg = decode(spec, bytes)?;
    let Some(code) = msg.bytes(MAC_FIELD) else {
        return Err(MacError::Missing);
    };
    if mac::verify(alg, key, mac_input(bytes), code) {
        Ok(msg)
    } else {
        Err(MacError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MacKey {
        MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key")
    }

    fn reply() -> Message {
        MessageSpec::bank_c()
            .message("0210")
            .with(3, "300000")
            .with(11, "000123")
            .with(39, "00")
    }

    #[test]
    fn mac_covers_everything_before_f128() {
        let spec = MessageSpec::bank_c();
        for alg in [MacAlg::X919, MacAlg::Sm4] {
            let bytes = encode_with_mac(&spec, &reply(), alg, &key()).expect("encode");
            let n = bytes.len();
            assert_eq!(mac_input(&bytes), &bytes[..n - 8]);
            assert_eq!(bytes[19] & 0x01, 0x01, "bit 128 set");
            assert_eq!(bytes[4] & 0x80, 0x80, "bit 1 set");
            assert_eq!(
                mac::compute(alg, &key(), &bytes[..n - 8]),
                bytes[n - 8..],
                "{alg}"
            );
            let back = verify_mac(&spec, &bytes, alg, &key()).expect("verify");
            assert_eq!(back, reply().with(128, bytes[n - 8..].to_vec()));
            let other = if alg == MacAlg::X919 {
                MacAlg::Sm4
            } else {
                MacAlg::X919
            };
            assert_eq!(
                verify_mac(&spec, &bytes, other, &key()),
                Err(MacError::Mismatch)
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let spec = MessageSpec::bank_c();
        let bytes = encode_with_mac(&spec, &reply(), MacAlg::X919, &key()).expect("encode");
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify_mac(&spec, &b, MacAlg::X919, &key()).is_err(),
                "bit {bit} flipped still verifies"
            );
        }
    }

    #[test]
    fn missing_mac_is_not_a_pass() {
        let spec = MessageSpec::bank_c();
        let bytes = encode(&spec, &reply()).expect("encode");
        assert_eq!(mac_input(&bytes), &bytes[..]);
        assert_eq!(
            verify_mac(&spec, &bytes, MacAlg::Sm4, &key()),
            Err(MacError::Missing)
        );
        assert!(matches!(
            verify_mac(&spec, b"02", MacAlg::Sm4, &key()),
            Err(MacError::Decode(_))
        ));
        let no_f128 = MessageSpec::new(
            spec.fields()
                .iter()
                .filter(|f| f.number != 128)
                .cloned()
                .collect(),
        )
        .expect("spec");
        assert_eq!(
            encode_with_mac(&no_f128, &reply(), MacAlg::Sm4, &key()),
            Err(EncodeError::NoMacField)
        );
    }
}

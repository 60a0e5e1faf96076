//! Message authentication codes of the ISO 8583-like banks (bank C's F128).
//!
//! Two algorithms, chosen per deployment ([`MacAlg`]), both with a 16-byte key ([`MacKey`]) and an
//! 8-byte MAC:
//!
//! ```text
//! x919  ANSI X9.19 retail MAC, key K1||K2 (DES)
//!       data || 00.. (to a multiple of 8; none when it is one) -> DES-CBC(K1, IV 0) -> last block
//!       -> DES-decrypt(K2) -> DES-encrypt(K1) -> 8 bytes
//! sm4   SM4-CBC-MAC (ISO 9797-1 padding method 2)
//!       data || 80 || 00.. (to a multiple of 16, always at least the 80) -> SM4-CBC(K, IV 0)
//!       -> first 8 bytes of the last block
//! ```
//! Keys are secrets: [`MacKey`] wipes itself on drop, its `Debug` prints `***`, and no error here
//! carries key material or the data being authenticated.
use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub mod sm4;
pub mod x919;

/// Length of every MAC produced here.
pub const MAC_LEN: usize = 8;

/// The MAC algorithm agreed with a bank (`mac_alg` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacAlg {
    /// ANSI X9.19 retail MAC with a double-length DES key.
    X919,
    /// SM4-CBC-MAC.
    Sm4,
}

impl fmt::Display for MacAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MacAlg::X919 => "x919",
            MacAlg::Sm4 => "sm4",
        })
    }
}

/// Why a key could not be read. Positions and lengths only: never a digit of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The hex text does not have 32 digits (surrounding whitespace ignored).
    #[error("a MAC key is 32 hex digits (16 bytes), got {digits} characters")]
    WrongLength {
        /// Characters found.
        digits: usize,
    },
    /// A character is not a hex digit.
    #[error("MAC key character {position} is not a hex digit")]
    NotHex {
        /// 1-based position of the bad character (after trimming).
        position: usize,
    },
}

/// A 16-byte MAC key (x919: K1||K2; sm4: the SM4 key). Zeroized on drop; `Debug` prints `***`;
/// compared in constant time.
#[derive(Clone)]
pub struct MacKey([u8; 16]);

impl PartialEq for MacKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for MacKey {}

impl MacKey {
    /// Key length in bytes.
    pub const LEN: usize = 16;

    /// A key from its raw bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A key from 32 hex digits (either case). Whitespace around the text is ignored, so a key file
    /// ending in a newline reads as expected.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 2 * Self::LEN {
            return Err(KeyError::WrongLength {
                digits: text.chars().count(),
            });
        }
        let mut key = [0u8; 16];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]).ok_or(KeyError::NotHex {
                position: 2 * i + 1,
            });
            let lo = hex_digit(pair[1]).ok_or(KeyError::NotHex {
                position: 2 * i + 2,
            });
            match (hi, lo) {
                (Ok(hi), Ok(lo)) => key[i] = (hi << 4) | lo,
                (Err(e), _) | (_, Err(e)) => {
                    key.zeroize();
                    return Err(e);
                }
            }
        }
        Ok(Self(key))
    }

    /// The raw key, for the cipher set-up only.
    pub(crate) fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(***)")
    }
}

impl Drop for MacKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for MacKey {}

/// The 8-byte MAC of `data`.
pub fn compute(alg: MacAlg, key: &MacKey, data: &[u8]) -> [u8; MAC_LEN] {
    match alg {
        MacAlg::X919 => x919::mac(key, data),
        MacAlg::Sm4 => sm4::mac(key, data),
    }
}

/// Whether `mac` is the MAC of `data`, compared in constant time. A `mac` that is not 8 bytes long
/// never verifies.
pub fn verify(alg: MacAlg, key: &MacKey, data: &[u8], mac: &[u8]) -> bool {
    let expected = compute(alg, key, data);
    mac.len() == MAC_LEN && bool::from(expected.ct_eq(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";

    #[test]
    fn parses_hex_keys_and_never_shows_them() {
        let k = MacKey::from_hex(TEST_KEY).expect("key");
        assert_eq!(k.bytes()[0], 0x01);
        assert_eq!(k.bytes()[15], 0x10);
        assert_eq!(
            MacKey::from_hex(&format!(" {}\n", TEST_KEY.to_lowercase())).expect("key"),
            k
        );
        assert_eq!(format!("{k:?}"), "MacKey(***)");
        assert_eq!(
            MacKey::from_hex("0123"),
            Err(KeyError::WrongLength { digits: 4 })
        );
        assert_eq!(
            MacKey::from_hex("0123456789ABCDEFFEDCBA987654321G"),
            Err(KeyError::NotHex { position: 32 })
        );
        // Multi-byte characters are counted, not mistaken for hex.
        let err = MacKey::from_hex("0123456789ABCDEFFEDCBA98765432é").expect_err("not hex");
        assert!(!err.to_string().contains("0123"), "{err}");
    }

    #[test]
    fn alg_names_in_config() {
        #[derive(Deserialize, Serialize)]
        struct C {
            mac_alg: MacAlg,
        }
        let c: C = serde_json::from_str(r#"{"mac_alg":"x919"}"#).expect("x919");
        assert_eq!(c.mac_alg, MacAlg::X919);
        let c: C = serde_json::from_str(r#"{"mac_alg":"sm4"}"#).expect("sm4");
        assert_eq!(c.mac_alg, MacAlg::Sm4);
        assert_eq!(
            serde_json::to_string(&C {
                mac_alg: MacAlg::X919
            })
            .expect("ser"),
            r#"{"mac_alg":"x919"}"#
        );
        assert!(serde_json::from_str::<C>(r#"{"mac_alg":"X9.19"}"#).is_err());
        assert_eq!(MacAlg::Sm4.to_string(), "sm4");
    }

    #[test]
    fn verify_is_exact() {
        let k = MacKey::from_hex(TEST_KEY).expect("key");
        for alg in [MacAlg::X919, MacAlg::Sm4] {
            let data = b"0200ABCDEFGH";
            let mac = compute(alg, &k, data);
            assert!(verify(alg, &k, data, &mac));
            assert!(!verify(alg, &k, data, &mac[..7]));
            let mut longer = mac.to_vec();
            longer.push(0);
            assert!(!verify(alg, &k, data, &longer));
            for bit in 0..64 {
                let mut m = mac;
                m[bit / 8] ^= 1 << (bit % 8);
                assert!(!verify(alg, &k, data, &m), "{alg} mac bit {bit}");
            }
            for bit in 0..data.len() * 8 {
                let mut d = *data;
                d[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(compute(alg, &k, &d), mac, "{alg} data bit {bit}");
                assert!(!verify(alg, &k, &d, &mac), "{alg} data bit {bit}");
            }
            let other = MacKey::from_hex("FEDCBA98765432100123456789ABCDEF").expect("key");
            assert!(!verify(alg, &other, data, &mac), "{alg} other key");
        }
    }
}

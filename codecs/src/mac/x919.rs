//! ANSI X9.19 retail MAC (ISO 9797-1 MAC algorithm 3 with DES, padding method 1).
//!
//! ```text
//! key  = K1 (8 bytes) || K2 (8 bytes)
//! data = D1 || D2 || ... || Dn      zero-padded to a multiple of 8 (no padding when it already is one;
//!                                   empty data is one zero block)
//! C0 = 0, Ci = DES(K1, Di xor Ci-1)
//! MAC = DES(K1, DES^-1(K2, Cn))
//! ```
use cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::Des;

use super::{MAC_LEN, MacKey};

const BLOCK: usize = 8;

/// The X9.19 MAC of `data` under `key` (K1||K2).
pub fn mac(key: &MacKey, data: &[u8]) -> [u8; MAC_LEN] {
    let (k1, k2) = key.bytes().split_at(BLOCK);
    // The key halves are exactly 8 bytes: `new_from_slice` cannot fail. Written without `expect` so that a
    // library path has no panic; the fallback is never taken.
    let (Ok(k1), Ok(k2)) = (Des::new_from_slice(k1), Des::new_from_slice(k2)) else {
        return [0; MAC_LEN];
    };
    let mut state: Block<Des> = Block::<Des>::default();
    let mut chunks = data.chunks(BLOCK).peekable();
    if chunks.peek().is_none() {
        // Empty data: one all-zero block.
        k1.encrypt_block(&mut state);
    }
    for chunk in chunks {
        // A short last chunk is zero-padded: XOR with the missing bytes leaves the state as it is.
        for (s, d) in state.iter_mut().zip(chunk) {
            *s ^= d;
        }
        k1.encrypt_block(&mut state);
    }
    k2.decrypt_block(&mut state);
    k1.encrypt_block(&mut state);
    state.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MacKey {
        MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key")
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Every x919 vector of bank C's interface specification (MAC section).
    #[test]
    fn spec_vectors() {
        let cases: [(&[u8], &str); 4] = [
            (b"1234567890", "18418B7C9E1A1522"),
            (b"0200ABCDEFGH", "E9B4773080CDD61E"),
            (b"0123456789ABCDEF", "62599A8CA033377C"),
            (b"Now is the time for all ", "A1C72E74EA3FA9B6"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                hex(&mac(&key(), input)),
                expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn padding_is_zeros_and_only_when_needed() {
        // Zero padding is implicit: data and data with its zero padding have the same MAC.
        assert_eq!(
            mac(&key(), b"1234567890"),
            mac(&key(), b"1234567890\0\0\0\0\0\0")
        );
        // A multiple of 8 is not padded with a whole extra block.
        assert_ne!(
            mac(&key(), b"0123456789ABCDEF"),
            mac(&key(), b"0123456789ABCDEF\0\0\0\0\0\0\0\0")
        );
        assert_eq!(mac(&key(), b""), mac(&key(), &[0u8; 8]));
    }

    #[test]
    fn one_flipped_bit_changes_the_mac() {
        let data = b"Now is the time for all ";
        let good = mac(&key(), data);
        for bit in 0..data.len() * 8 {
            let mut d = *data;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(mac(&key(), &d), good, "bit {bit}");
        }
    }
}

//! SM4-CBC-MAC (ISO 9797-1 MAC algorithm 1 with SM4, padding method 2), truncated to 8 bytes.
//!
//! ```text
//! data = D1 || ... || Dn       data || 80 || 00.. to a multiple of 16 (the 80 is always added, so data
//!                              of a multiple of 16 gets a whole extra block 80 00..00)
//! C0 = 0, Ci = SM4(K, Di xor Ci-1)
//! MAC = first 8 bytes of Cn
//! ```
use cipher::{Block, BlockCipherEncrypt, KeyInit};
use sm4::Sm4;

use super::{MAC_LEN, MacKey};

const BLOCK: usize = 16;

/// The SM4-CBC-MAC of `data` under `key`.
pub fn mac(key: &MacKey, data: &[u8]) -> [u8; MAC_LEN] {
    let Ok(cipher) = Sm4::new_from_slice(key.bytes()) else {
        // The key is exactly 16 bytes: never taken; no panic on a library path.
        return [0; MAC_LEN];
    };
    let mut state: Block<Sm4> = Block::<Sm4>::default();
    let mut chunks = data.chunks_exact(BLOCK);
    for chunk in &mut chunks {
        for (s, d) in state.iter_mut().zip(chunk) {
            *s ^= d;
        }
        cipher.encrypt_block(&mut state);
    }
    // The last block: the remainder (0..=15 bytes), then 0x80, then zeros (XOR with zero is a no-op).
    let rest = chunks.remainder();
    for (s, d) in state.iter_mut().zip(rest) {
        *s ^= d;
    }
    state[rest.len()] ^= 0x80;
    cipher.encrypt_block(&mut state);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&state[..MAC_LEN]);
    out
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

    /// Every sm4 vector of bank C's interface specification (MAC section; the spec gives none for the
    /// fourth input).
    #[test]
    fn spec_vectors() {
        let cases: [(&[u8], &str); 3] = [
            (b"1234567890", "A808BDD9B1F2F6D1"),
            (b"0200ABCDEFGH", "77EEB5E40D68953D"),
            (b"0123456789ABCDEF", "C849CA2BC78D2C11"),
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
    fn padding_always_adds_0x80() {
        // Method 2 padding is unambiguous: data ending in 0x80 differs from data padded to it.
        assert_ne!(mac(&key(), b"abc"), mac(&key(), b"abc\x80"));
        assert_ne!(mac(&key(), b""), mac(&key(), &[0u8; 16]));
        assert_eq!(mac(&key(), b""), mac(&key(), b""));
    }

    #[test]
    fn one_flipped_bit_changes_the_mac() {
        let data = b"0123456789ABCDEF0123";
        let good = mac(&key(), data);
        for bit in 0..data.len() * 8 {
            let mut d = *data;
            d[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(mac(&key(), &d), good, "bit {bit}");
        }
    }
}

//! Property tests of the ISO 8583-like codec with bank C's table: random messages round-trip (GBK names
//! and maximum lengths included), and no input makes the decoders panic.
mod common;

use codecs::format::iso8583::{
    self, MessageSpec, Tlv, decode, encode, encode_with_mac, verify_mac,
};
use codecs::mac::{MacAlg, MacKey};
use proptest::collection::vec;
use proptest::prelude::*;

fn spec() -> MessageSpec {
    MessageSpec::bank_c()
}

fn key() -> MacKey {
    MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("test key")
}

#[test]
fn every_field_at_its_maximum_round_trips() {
    let s = spec();
    let m = common::message_at_max(&s);
    let bytes = encode(&s, &m).expect("encode");
    // MTI + 2 bitmaps + every field at its longest.
    let longest: usize = s.fields().iter().map(|f| f.max_wire_len()).sum();
    assert_eq!(bytes.len(), 4 + 16 + longest);
    assert!(bytes.len() <= codecs::framing::U16LenCodec::BANK_C_MAX);
    assert_eq!(decode(&s, &bytes).expect("decode"), m);
    // And one byte more in any variable field is refused.
    for f in s.fields() {
        let mut bigger = m.clone();
        let v = match bigger.fields.get(&f.number) {
            Some(iso8583::FieldValue::Text(t)) => iso8583::FieldValue::Text(format!("{t}1")),
            Some(iso8583::FieldValue::Bytes(b)) => {
                let mut b = b.clone();
                b.push(0);
                iso8583::FieldValue::Bytes(b)
            }
            None => continue,
        };
        bigger.set(f.number, v);
        assert!(encode(&s, &bigger).is_err(), "field {}", f.number);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_messages_round_trip(m in common::message(&spec())) {
        let s = spec();
        let bytes = encode(&s, &m).expect("generated messages are valid");
        let back = decode(&s, &bytes).expect("decode what we encoded");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(encode(&s, &back).expect("re-encode"), bytes);
    }

    #[test]
    fn random_messages_round_trip_with_mac(m in common::message(&spec()), sm4 in any::<bool>()) {
        let s = spec();
        let alg = if sm4 { MacAlg::Sm4 } else { MacAlg::X919 };
        let bytes = encode_with_mac(&s, &m, alg, &key()).expect("encode");
        let back = verify_mac(&s, &bytes, alg, &key()).expect("verify");
        let mut expected = m.clone();
        expected.set(128, bytes[bytes.len() - 8..].to_vec());
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn a_flipped_bit_never_verifies(m in common::message(&spec()), pick in any::<prop::sample::Index>()) {
        let s = spec();
        let bytes = encode_with_mac(&s, &m, MacAlg::X919, &key()).expect("encode");
        let bit = pick.index(bytes.len() * 8);
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(verify_mac(&s, &bad, MacAlg::X919, &key()).is_err(), "bit {}", bit);
    }

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let s = spec();
        let _ = decode(&s, &bytes);
        let _ = verify_mac(&s, &bytes, MacAlg::Sm4, &key());
        let _ = iso8583::mac_input(&bytes);
        let _ = Tlv::decode_gbk(&bytes);
    }

    #[test]
    fn random_bytes_after_a_plausible_header_never_panic(
        mti in prop::sample::select(&["0200", "0210", "0800"][..]),
        bitmaps in vec(any::<u8>(), 16),
        rest in vec(prop_oneof![4 => b'0'..=b'9', 1 => any::<u8>()], 0..1200),
    ) {
        let mut bytes = mti.as_bytes().to_vec();
        bytes.extend_from_slice(&bitmaps);
        bytes.extend_from_slice(&rest);
        let _ = decode(&spec(), &bytes);
    }

    #[test]
    fn mutated_frames_are_rejected_or_decoded_never_panic(
        m in common::message(&spec()),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let s = spec();
        let mut bytes = encode(&s, &m).expect("encode");
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let n = cut.index(bytes.len() + 1);
        for input in [&bytes[..], &bytes[..n]] {
            let Ok(back) = decode(&s, input) else { continue };
            // Whatever decodes is canonical: it encodes back to the same bytes, except that an
            // all-zero secondary bitmap is not written again.
            let again = encode(&s, &back).expect("a decoded message encodes");
            if again != input {
                let mut without = input[..4].to_vec();
                without.push(input[4] & 0x7F);
                without.extend_from_slice(&input[5..12]);
                without.extend_from_slice(&input[20..]);
                prop_assert!(input[12..20].iter().all(|&b| b == 0), "not canonical");
                prop_assert_eq!(again, without);
            }
        }
    }

    #[test]
    fn tlv_lists_round_trip(entries in vec((prop::sample::select(&["NM", "IT", "ID", "KD", "PH", "SB", "BN", "SQ"][..]), common::gbk_text(120)), 0..8)) {
        let mut t = Tlv::new();
        for (tag, v) in entries {
            if t.get(tag).is_none() {
                t.push(tag, v);
            }
        }
        let text = t.encode().expect("encode");
        prop_assert_eq!(Tlv::decode(&text).expect("decode"), t.clone());
        prop_assert_eq!(Tlv::decode_gbk(&t.encode_gbk().expect("gbk")).expect("decode"), t);
    }
}

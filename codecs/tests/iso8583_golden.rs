//! Golden frames of bank C, built by hand from the interface specification (bitmaps worked out bit by
//! bit below), decoded and re-encoded byte for byte.
//!
//! The MACs were computed outside this crate: `codecs/interop/mac_ref.py` (CBC and padding in Python,
//! single DES/SM4 blocks by the OpenSSL command line; it passes the spec's vectors with `selftest`), fed
//! the frame without its last 8 bytes:
//! `python3 codecs/interop/mac_ref.py x919 0123456789ABCDEFFEDCBA9876543210 < input.hex`.
//! The bitmaps were also checked by decoding the frames with pyiso8583 (see iso8583_interop.rs).
use bytes::BytesMut;
use codecs::format::iso8583::{
    DecodeError, MacError, Message, MessageSpec, Tlv, decode, encode, encode_with_mac, mac_input,
    verify_mac,
};
use codecs::framing::U16LenCodec;
use codecs::mac::{MacAlg, MacKey};
use tokio_util::codec::{Decoder, Encoder};

fn spec() -> MessageSpec {
    MessageSpec::bank_c()
}

fn key() -> MacKey {
    MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("the spec's test key")
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn gbk(s: &str) -> Vec<u8> {
    codecs::field::gbk::encode(s).expect("gbk")
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---- 0800 sign-on: fields 7, 11, 32, 70 --------------------------------------------------------------

fn sign_on_frame() -> Vec<u8> {
    cat(&[
        b"0800",
        // Primary: bit 1 (secondary follows) 0x80 + bit 7 0x02 = 82; bit 11 -> byte 1 0x20;
        // bit 32 -> byte 3 0x01.
        &hex("82 20 00 01 00 00 00 00"),
        // Secondary: bit 70 -> byte 0, 6th bit = 0x04.
        &hex("04 00 00 00 00 00 00 00"),
        b"0315093000", // F7  MMDDhhmmss
        b"000001",     // F11 STAN
        b"08",         // F32 LLVAR length
        b"12345678",   // F32 sending institution (the gateway)
        b"001",        // F70 sign-on
    ])
}

fn sign_on() -> Message {
    Message::new("0800")
        .with(7, "0315093000")
        .with(11, "000001")
        .with(32, "12345678")
        .with(70, "001")
}

// ---- 0810 reply: fields 7, 11, 32, 39, 70 ----------------------------------------------------------

fn sign_on_reply_frame() -> Vec<u8> {
    cat(&[
        b"0810",
        // As the 0800, plus bit 39 -> byte 4 (bits 33..40), 7th bit = 0x02.
        &hex("82 20 00 01 02 00 00 00"),
        &hex("04 00 00 00 00 00 00 00"),
        b"0315093001", // F7 the bank's time
        b"000001",
        b"08",
        b"12345678",
        b"00", // F39 approved
        b"001",
    ])
}

fn sign_on_reply() -> Message {
    sign_on()
        .with(7, "0315093001")
        .with(39, "00")
        .tap_mti("0810")
}

trait TapMti {
    fn tap_mti(self, mti: &str) -> Self;
}

impl TapMti for Message {
    fn tap_mti(mut self, mti: &str) -> Self {
        self.mti = mti.to_owned();
        self
    }
}

// ---- 0200 payout: 2 3 4 7 11 12 13 32 37 41 42 48 49 100 102 128 -------------------------------------

const PAYOUT_F48: &str = "NM004张三IT0011ID01822012219800101123XKD001SPH01113800138000\
                          SB007SUB2025BN016BATCH20250315001SQ00800000001";
/// x919 MAC of the payout, from mac_ref.py.
const PAYOUT_X919: &str = "5DF1737FBC6E049F";
/// sm4 MAC of the same bytes, from mac_ref.py.
const PAYOUT_SM4: &str = "F876F7C048F061E8";

fn payout_frame() -> Vec<u8> {
    let f48 = gbk(PAYOUT_F48);
    assert_eq!(f48.len(), 106, "张三 takes 4 bytes");
    cat(&[
        b"0200",
        // byte 0: bits 1 2 3 4 7 = 80+40+20+10+02 = F2; byte 1: bits 11 12 13 = 20+10+08 = 38;
        // byte 3: bit 32 = 01; byte 4: bit 37 = 08; byte 5: bits 41 42 48 = 80+40+01 = C1;
        // byte 6: bit 49 = 80.
        &hex("F2 38 00 01 08 C1 80 00"),
        // byte 4 (bits 97..104): bits 100 102 = 10+04 = 14; byte 7: bit 128 = 01.
        &hex("00 00 00 00 14 00 00 01"),
        b"19",
        b"6217000012345678901", // F2 recipient account, LLVAR 19
        b"400000",              // F3 payout credit
        b"000000012345",        // F4 123.45 yuan in fen
        b"0315093005",          // F7
        b"000002",              // F11
        b"093005",              // F12
        b"0315",                // F13
        b"08",
        b"12345678",        // F32
        b"PO0000000001",    // F37 item reference
        b"GW01    ",        // F41 space-padded to 8
        b"DEPT001        ", // F42 space-padded to 15
        b"106",
        &f48,   // F48 recipient data, GBK
        b"156", // F49 CNY
        b"12",
        b"403100000004", // F100 account bank
        b"17",
        b"11001234567890123", // F102 payer account
        &hex(PAYOUT_X919),    // F128
    ])
}

fn payout_unsigned() -> Message {
    Message::new("0200")
        .with(2, "6217000012345678901")
        .with(3, "400000")
        .with(4, "000000012345")
        .with(7, "0315093005")
        .with(11, "000002")
        .with(12, "093005")
        .with(13, "0315")
        .with(32, "12345678")
        .with(37, "PO0000000001")
        .with(41, "GW01")
        .with(42, "DEPT001")
        .with(48, PAYOUT_F48)
        .with(49, "156")
        .with(100, "403100000004")
        .with(102, "11001234567890123")
}

// ---- 0210 to an inquiry, final failure: 3 7 11 32 37 39 41 42 121 128 --------------------------------

const INQUIRY_F121: &str = "CT01420250316095959RS008户名不符";
const INQUIRY_X919: &str = "04AA5F610E0A89D9";

fn inquiry_reply_frame() -> Vec<u8> {
    let f121 = gbk(INQUIRY_F121);
    assert_eq!(f121.len(), 32);
    cat(&[
        b"0210",
        // byte 0: bits 1 3 7 = 80+20+02 = A2; byte 1: bit 11 = 20; byte 3: bit 32 = 01;
        // byte 4: bits 37 39 = 08+02 = 0A; byte 5: bits 41 42 = C0.
        &hex("A2 20 00 01 0A C0 00 00"),
        // byte 7 (bits 121..128): bit 121 = 80, bit 128 = 01.
        &hex("00 00 00 00 00 00 00 81"),
        b"300000",     // F3 result inquiry
        b"0316100000", // F7
        b"000003",     // F11
        b"08",
        b"12345678",
        b"PO0000000001",
        b"76", // F39 name does not match the account (final)
        b"GW01    ",
        b"DEPT001        ",
        b"032",
        &f121, // F121 CT + RS
        &hex(INQUIRY_X919),
    ])
}

fn inquiry_reply_unsigned() -> Message {
    Message::new("0210")
        .with(3, "300000")
        .with(7, "0316100000")
        .with(11, "000003")
        .with(32, "12345678")
        .with(37, "PO0000000001")
        .with(39, "76")
        .with(41, "GW01")
        .with(42, "DEPT001")
        .with(121, INQUIRY_F121)
}

// ---- tests -------------------------------------------------------------------------------------------

#[test]
fn sign_on_and_reply_decode_and_re_encode() {
    let s = spec();
    for (frame, msg) in [
        (sign_on_frame(), sign_on()),
        (sign_on_reply_frame(), sign_on_reply()),
    ] {
        assert_eq!(decode(&s, &frame).expect("decode"), msg);
        assert_eq!(encode(&s, &msg).expect("encode"), frame);
        // No MAC on network management messages.
        assert_eq!(mac_input(&frame), &frame[..]);
    }
}

#[test]
fn payout_decodes_verifies_and_re_encodes() {
    let s = spec();
    let frame = payout_frame();
    let signed = payout_unsigned().with(128, hex(PAYOUT_X919));
    assert_eq!(decode(&s, &frame).expect("decode"), signed);
    assert_eq!(encode(&s, &signed).expect("encode"), frame);
    assert_eq!(
        encode_with_mac(&s, &payout_unsigned(), MacAlg::X919, &key()).expect("encode with mac"),
        frame
    );
    assert_eq!(
        verify_mac(&s, &frame, MacAlg::X919, &key()).expect("verify"),
        signed
    );
    assert_eq!(mac_input(&frame), &frame[..frame.len() - 8]);
    // The same message under sm4.
    let sm4 = encode_with_mac(&s, &payout_unsigned(), MacAlg::Sm4, &key()).expect("sm4");
    assert_eq!(&sm4[..sm4.len() - 8], &frame[..frame.len() - 8]);
    assert_eq!(&sm4[sm4.len() - 8..], &hex(PAYOUT_SM4)[..]);
}

#[test]
fn payout_f48_reads_as_the_spec_tags_in_writer_order() {
    let m = decode(&spec(), &payout_frame()).expect("decode");
    let tlv = Tlv::decode(m.text(48).expect("F48")).expect("tlv");
    assert_eq!(
        tlv.tags().collect::<Vec<_>>(),
        ["NM", "IT", "ID", "KD", "PH", "SB", "BN", "SQ"]
    );
    assert_eq!(tlv.get("NM"), Some("张三"));
    assert_eq!(tlv.get("ID"), Some("22012219800101123X"));
    assert_eq!(tlv.get("SQ"), Some("00000001"));
    let rebuilt = Tlv::new()
        .with("NM", "张三")
        .with("IT", "1")
        .with("ID", "22012219800101123X")
        .with("KD", "S")
        .with("PH", "13800138000")
        .with("SB", "SUB2025")
        .with("BN", "BATCH20250315001")
        .with("SQ", "00000001");
    assert_eq!(rebuilt.encode().expect("encode"), PAYOUT_F48);
}

#[test]
fn inquiry_reply_decodes_verifies_and_re_encodes() {
    let s = spec();
    let frame = inquiry_reply_frame();
    let signed = inquiry_reply_unsigned().with(128, hex(INQUIRY_X919));
    assert_eq!(
        verify_mac(&s, &frame, MacAlg::X919, &key()).expect("verify"),
        signed
    );
    assert_eq!(
        encode_with_mac(&s, &inquiry_reply_unsigned(), MacAlg::X919, &key()).expect("encode"),
        frame
    );
    let result = Tlv::decode(signed.text(121).expect("F121")).expect("tlv");
    assert_eq!(result.get("CT"), Some("20250316095959"));
    assert_eq!(result.get("RS"), Some("户名不符"));
    assert_eq!(result.get("TX"), None, "no TX on a final failure");
}

#[test]
fn one_flipped_bit_fails_mac_verification() {
    let s = spec();
    for frame in [payout_frame(), inquiry_reply_frame()] {
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match verify_mac(&s, &bad, MacAlg::X919, &key()) {
                // Most flips leave a well-formed message whose MAC is wrong; the others do not decode
                // (a digit turned into a letter, a length prefix broken, a bit for an unknown field).
                Err(MacError::Mismatch | MacError::Decode(_) | MacError::Missing) => {}
                other => panic!("bit {bit}: {other:?}"),
            }
        }
    }
    // Bit 2 cleared (F2 absent): the fields no longer line up and the message does not decode.
    let mut bad = payout_frame();
    bad[4] ^= 0x40;
    assert!(matches!(
        verify_mac(&s, &bad, MacAlg::X919, &key()),
        Err(MacError::Decode(_))
    ));
    // Bit 5 set: a field the table does not have, named with its bitmap byte.
    let mut bad = payout_frame();
    bad[4] ^= 0x08;
    assert_eq!(
        verify_mac(&s, &bad, MacAlg::X919, &key()),
        Err(MacError::Decode(DecodeError::UnknownField {
            field: 5,
            offset: 4
        }))
    );
    // A flipped bit inside F4's digits ('1' -> '0') decodes fine: only the MAC catches it.
    let mut bad = payout_frame();
    let f4 = 4 + 16 + 2 + 19 + 6;
    assert_eq!(&bad[f4..f4 + 12], b"000000012345");
    bad[f4 + 7] ^= 0x01;
    assert!(decode(&s, &bad).is_ok());
    assert_eq!(
        verify_mac(&s, &bad, MacAlg::X919, &key()),
        Err(MacError::Mismatch)
    );
}

#[test]
fn golden_frames_through_the_length_header_split_anywhere() {
    let frames = [
        sign_on_frame(),
        sign_on_reply_frame(),
        payout_frame(),
        inquiry_reply_frame(),
    ];
    let mut wire = BytesMut::new();
    for f in &frames {
        U16LenCodec::default()
            .encode(&f[..], &mut wire)
            .expect("frame");
    }
    assert_eq!(&wire[..2], &[0x00, 0x31], "the 0800 is 49 bytes");
    for chunk in [1, 2, 3, 7, 64, wire.len()] {
        let mut codec = U16LenCodec::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(f) = codec.decode(&mut buf).expect("decode") {
                got.push(decode(&spec(), &f).expect("message"));
            }
        }
        let want: Vec<Message> = frames
            .iter()
            .map(|f| decode(&spec(), f).expect("message"))
            .collect();
        assert_eq!(got, want, "chunk {chunk}");
    }
}

#[test]
fn decoded_payout_prints_masked() {
    let m = decode(&spec(), &payout_frame()).expect("decode");
    let shown = format!("{m:?}");
    for secret in [
        "6217000012345678901",
        "张三",
        "22012219800101123X",
        "11001234567890123",
    ] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("\"400000\""), "{shown}");
}

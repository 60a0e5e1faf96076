//! Interop with an independent implementation: pyiso8583 (PyPI), driven by
//! `codecs/interop/pyiso8583_peer.py`, whose field table is typed in from the interface specification.
//!
//! Checked: both readings of the spec's table agree; for hand-picked and random bank C messages (GBK
//! names, maximum lengths), pyiso8583 writes exactly the bytes we write, we decode its frames and it
//! decodes ours (bitmaps included); malformed frames are refused by both. Where we are deliberately
//! stricter than pyiso8583 (digits in `n` fields, strict GBK), a test says so.
//!
//! Needs `python3` with pyiso8583 (`pip install pyiso8583`); `GW_PYTHON` names another interpreter.
//! Missing either is a FAILURE, not a skip: CI must install them.
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use codecs::format::iso8583::{
    Enc, FieldKind, FieldValue, Message, MessageSpec, decode, encode, encode_with_mac,
};
use codecs::mac::{MacAlg, MacKey};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop/pyiso8583_peer.py");

fn python() -> String {
    std::env::var("GW_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Runs the peer in `mode` with `input` on stdin; its stdout. Panics (test failure) with the
/// install hint when Python or pyiso8583 is missing.
fn peer(mode: &str, input: &[u8]) -> String {
    let py = python();
    let mut child = Command::new(&py)
        .arg(PEER)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{py}` ({e}): the interop test needs Python 3 with pyiso8583 \
                 (pip install pyiso8583)"
            )
        });
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread so that a peer answering while still reading cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("peer output");
    let written = writer.join().expect("writer thread");
    // The peer's own failure first: a peer that quit early also breaks the pipe we write to.
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) || stderr.contains("No module named 'iso8583'") {
        panic!("pyiso8583 is not installed for `{py}`: pip install pyiso8583\n{stderr}");
    }
    assert!(
        out.status.success(),
        "pyiso8583 peer `{mode}` failed ({}): {stderr}",
        out.status
    );
    written.expect("write to peer");
    String::from_utf8(out.stdout).expect("peer output is UTF-8")
}

fn spec() -> MessageSpec {
    MessageSpec::bank_c()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Our message as pyiso8583's dict: fixed fields padded as on the wire (pyiso8583 never pads), binary
/// as upper-case hex.
fn to_py(spec: &MessageSpec, m: &Message) -> Value {
    let mut d = Map::new();
    d.insert("t".into(), json!(m.mti));
    for (n, v) in &m.fields {
        let f = spec.field(*n).expect("field in table");
        let v = match (v, f.kind, f.encoding) {
            (FieldValue::Bytes(b), _, _) => hex(b),
            (FieldValue::Text(t), FieldKind::Fixed { len }, Enc::Numeric) => format!("{t:0>len$}"),
            (FieldValue::Text(t), FieldKind::Fixed { len }, Enc::Gbk) => {
                let width = codecs::field::gbk::encoded_len(t).expect("gbk");
                format!("{t}{}", " ".repeat(len - width))
            }
            (FieldValue::Text(t), FieldKind::Fixed { len }, _) => format!("{t:<len$}"),
            (FieldValue::Text(t), _, _) => t.clone(),
        };
        d.insert(n.to_string(), json!(v));
    }
    Value::Object(d)
}

/// pyiso8583's decoded dict as our message (padding of fixed `ans`/GBK fields removed, as ours does).
fn from_py(spec: &MessageSpec, d: &Map<String, Value>) -> Message {
    let mut m = Message::new(d["t"].as_str().expect("t"));
    for (k, v) in d {
        let Ok(n) = k.parse::<u8>() else { continue };
        if n == 1 {
            continue; // the secondary bitmap
        }
        let f = spec.field(n).expect("field in table");
        let v = v.as_str().expect("string value");
        let value = match (f.kind, f.encoding) {
            (_, Enc::Binary) => FieldValue::Bytes(unhex(v)),
            (FieldKind::Fixed { .. }, Enc::AlphaNumSpecial | Enc::Gbk) => {
                FieldValue::Text(v.trim_end_matches(' ').to_owned())
            }
            _ => FieldValue::Text(v.to_owned()),
        };
        m.set(n, value);
    }
    m
}

fn corpus() -> Vec<Message> {
    let s = spec();
    let key = MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key");
    let payout = s
        .message("0200")
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
        .with(
            48,
            "NM012阿依·买买提IT0011ID01822012219800101123XKD001SSB007SUB2025BN003B01SQ00800000001",
        )
        .with(49, "156")
        .with(100, "403100000004")
        .with(102, "11001234567890123");
    let signed = encode_with_mac(&s, &payout, MacAlg::X919, &key).expect("mac");
    let mut out = vec![
        s.message("0800")
            .with(7, "0315093000")
            .with(11, "000001")
            .with(32, "12345678")
            .with(70, "001"),
        s.message("0810")
            .with(7, "0315093001")
            .with(11, "000001")
            .with(32, "12345678")
            .with(39, "A7")
            .with(70, "301"),
        decode(&s, &signed).expect("signed payout"),
        s.message("0210")
            .with(3, "300000")
            .with(11, "000003")
            .with(39, "05")
            // Original MTI, STAN, F7, F32 zero-padded to 11, 11 zeros.
            .with(
                90,
                format!("0200000002031509300500012345678{}", "0".repeat(11)),
            )
            .with(121, "CT01420250316095959RS020喆昇账户已销户（补）")
            .with(128, [0x5A; 8]),
        // No field above 64: no secondary bitmap on either side.
        s.message("0200").with(3, "400000").with(48, ""),
        common::message_at_max(&s),
    ];
    let mut runner = TestRunner::deterministic();
    let strategy = common::message(&s);
    for _ in 0..300 {
        out.push(strategy.new_tree(&mut runner).expect("value").current());
    }
    out
}

#[test]
fn both_readings_of_the_field_table_agree() {
    let theirs: Map<String, Value> = serde_json::from_str(&peer("spec", b"")).expect("spec JSON");
    let ours = spec();
    let mut numbers: Vec<u8> = theirs
        .keys()
        .filter_map(|k| k.parse::<u8>().ok())
        .filter(|&n| n != 1)
        .collect();
    numbers.sort_unstable();
    let our_numbers: Vec<u8> = ours.fields().iter().map(|f| f.number).collect();
    assert_eq!(numbers, our_numbers, "the same fields");
    for f in ours.fields() {
        let t = &theirs[&f.number.to_string()];
        let (len_type, max_len) = match f.kind {
            FieldKind::Fixed { len } | FieldKind::Binary { len } => (0, len),
            FieldKind::LlVar { max } => (2, max),
            FieldKind::LllVar { max } => (3, max),
        };
        let data_enc = match f.encoding {
            Enc::Binary => "b",
            Enc::Gbk => "gbk",
            Enc::Numeric | Enc::Alpha | Enc::AlphaNumSpecial => "ascii",
        };
        assert_eq!(t["len_type"], json!(len_type), "F{} len_type", f.number);
        assert_eq!(t["max_len"], json!(max_len), "F{} max_len", f.number);
        assert_eq!(t["data_enc"], json!(data_enc), "F{} data_enc", f.number);
        assert_eq!(t["len_enc"], json!("ascii"), "F{} len_enc", f.number);
    }
    // Bitmaps are raw 8-byte fields, the MTI four ASCII characters.
    assert_eq!(theirs["p"]["data_enc"], json!("b"));
    assert_eq!(theirs["1"]["data_enc"], json!("b"));
    assert_eq!(theirs["t"]["data_enc"], json!("ascii"));
}

#[test]
fn pyiso8583_and_we_write_the_same_bytes_and_read_each_other() {
    let s = spec();
    let messages = corpus();
    // The corpus exercises what matters: GBK beyond ASCII, full-length LLLVAR fields, frames with and
    // without a secondary bitmap.
    let gbk_fields = |m: &Message| [48u8, 121].map(|n| m.text(n).unwrap_or_default().to_owned());
    let non_ascii = messages
        .iter()
        .filter(|m| gbk_fields(m).iter().any(|t| !t.is_ascii()))
        .count();
    let full = messages
        .iter()
        .filter(|m| {
            gbk_fields(m)
                .iter()
                .any(|t| codecs::field::gbk::encoded_len(t).ok() == Some(999))
        })
        .count();
    let primary_only = messages
        .iter()
        .filter(|m| m.fields.keys().all(|&n| n <= 64))
        .count();
    assert!(
        non_ascii > 50 && full > 10 && primary_only > 3,
        "corpus: {non_ascii} with hanzi, {full} at 999 bytes, {primary_only} primary-only"
    );
    let ours: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| encode(&s, m).expect("we encode the corpus"))
        .collect();

    // They encode: byte for byte what we wrote, and we decode it back to the message.
    let docs: Vec<Value> = messages.iter().map(|m| to_py(&s, m)).collect();
    let input = serde_json::to_vec(&docs).expect("json");
    let lines: Vec<String> = peer("encode", &input).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), messages.len());
    for (i, line) in lines.iter().enumerate() {
        assert!(
            !line.starts_with("ERR"),
            "message {i}: pyiso8583 refused: {line}"
        );
        let theirs = unhex(line);
        assert_eq!(
            hex(&theirs),
            hex(&ours[i]),
            "message {i}: pyiso8583 wrote other bytes"
        );
        assert_eq!(
            decode(&s, &theirs).expect("we decode pyiso8583's frame"),
            messages[i],
            "message {i}"
        );
    }

    // They decode ours: the same fields and the bitmaps we wrote.
    let hex_in: String = ours.iter().map(|b| hex(b) + "\n").collect();
    let decoded: Vec<Map<String, Value>> =
        serde_json::from_str(&peer("decode", hex_in.as_bytes())).expect("decode JSON");
    assert_eq!(decoded.len(), messages.len());
    for (i, d) in decoded.iter().enumerate() {
        assert!(
            d.get("error").is_none(),
            "message {i}: pyiso8583: {:?}",
            d["error"]
        );
        assert_eq!(from_py(&s, d), messages[i], "message {i}");
        assert_eq!(
            d["p"],
            json!(hex(&ours[i][4..12])),
            "message {i} primary bitmap"
        );
        let secondary = ours[i][4] & 0x80 != 0;
        assert_eq!(secondary, messages[i].fields.keys().any(|&n| n > 64));
        if secondary {
            assert_eq!(
                d["1"],
                json!(hex(&ours[i][12..20])),
                "message {i} secondary bitmap"
            );
        } else {
            assert!(d.get("1").is_none(), "message {i}: no secondary bitmap");
        }
    }
}

/// A valid payout frame and the offsets of a few of its parts, for corrupting.
fn payout_bytes() -> Vec<u8> {
    encode(&spec(), &corpus()[2]).expect("encode")
}

fn both_reject(cases: &[(&str, Vec<u8>)]) {
    let hex_in: String = cases.iter().map(|(_, b)| hex(b) + "\n").collect();
    let decoded: Vec<Map<String, Value>> =
        serde_json::from_str(&peer("decode", hex_in.as_bytes())).expect("decode JSON");
    assert_eq!(decoded.len(), cases.len());
    for ((what, bytes), d) in cases.iter().zip(&decoded) {
        assert!(d.get("error").is_some(), "{what}: pyiso8583 accepted it");
        assert!(decode(&spec(), bytes).is_err(), "{what}: we accepted it");
    }
}

#[test]
fn malformed_frames_are_refused_by_both() {
    let good = payout_bytes();
    // F2's length prefix sits right after MTI and bitmaps.
    let f2 = 20;
    assert_eq!(&good[f2..f2 + 2], b"19");
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    cases.push(("last byte missing", good[..good.len() - 1].to_vec()));
    let mut v = good.clone();
    v.push(b'0');
    cases.push(("a trailing byte", v));
    let mut v = good.clone();
    v[f2..f2 + 2].copy_from_slice(b"29");
    cases.push(("F2 longer than 28", v));
    let mut v = good.clone();
    v[f2 + 1] = b'x';
    cases.push(("F2 length not digits", v));
    let mut v = good.clone();
    v[4] |= 0x08;
    cases.push(("bit 5, a field the table lacks", v));
    let mut v = good.clone();
    v[12] |= 0x80;
    cases.push(("bit 65, a field the table lacks", v));
    cases.push(("bitmap cut short", good[..9].to_vec()));
    // GBK that Python's codec refuses as we do: 0x80 (the euro in WHATWG GBK), A2E3 (euro in GB 18030),
    // a lead byte whose trail was cut off by the length.
    for (what, bad) in [
        ("0x80 in F48", &b"\x80"[..]),
        ("A2E3 in F48", &b"\xA2\xE3"[..]),
        ("a lone GBK lead byte in F48", &b"a\xD5"[..]),
    ] {
        let mut m = spec().message("0200").with(48, "NM00");
        m.set(3, "400000");
        let mut v = encode(&spec(), &m).expect("encode");
        v.truncate(v.len() - 4);
        let prefix_at = v.len() - 3;
        v[prefix_at..].copy_from_slice(format!("{:03}", bad.len()).as_bytes());
        v.extend_from_slice(bad);
        cases.push((what, v));
    }
    cases.push(("MTI only", good[..4].to_vec()));
    both_reject(&cases);
}

#[test]
fn where_we_are_stricter_than_pyiso8583() {
    let s = spec();
    // pyiso8583 checks lengths and the text encoding, not character sets: a letter in an `n` field,
    // a hyphen in an `an` field and a TAB in an `ans` field pass there, not here.
    let base = s
        .message("0200")
        .with(11, "000001")
        .with(37, "PO0000000001")
        .with(41, "GW01");
    let good = encode(&s, &base).expect("encode");
    // MTI, primary bitmap, F11 at 12..18, F37 at 18..30, F41 at 30..38.
    assert_eq!(&good[12..18], b"000001");
    let mut letter = good.clone();
    letter[17] = b'A';
    let mut hyphen = good.clone();
    hyphen[20] = b'-';
    let mut tab = good.clone();
    tab[33] = b'\t';
    let cases = [letter, hyphen, tab];
    let hex_in: String = cases.iter().map(|b| hex(b) + "\n").collect();
    let decoded: Vec<Map<String, Value>> =
        serde_json::from_str(&peer("decode", hex_in.as_bytes())).expect("decode JSON");
    for (i, (bytes, d)) in cases.iter().zip(&decoded).enumerate() {
        assert!(d.get("error").is_none(), "case {i}: pyiso8583 takes it");
        assert!(decode(&s, bytes).is_err(), "case {i}: we refuse it");
    }
}

//! `gateway codec decode|encode` on the golden fixtures of banks A, B and C (`bank-profiles/fixtures/`):
//! a frame or document decodes to its `.json` with `--reveal` and to a masked copy without it (no
//! account, ID number or phone in full), the `.json` encodes to the same bytes (bank B's hand-written
//! `*_foreign` documents: decode only), and broken input fails with a message naming the field and the
//! byte offset.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BANK_A: &str = "402241000015";
const BANK_B: &str = "103241000018";
const BANK_C: &str = "403241000011";
const TEST_KEY: &str = "0123456789ABCDEFFEDCBA9876543210";

fn fixtures(bank: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bank-profiles/fixtures")
        .join(bank)
}

fn read(bank: &str, name: &str) -> Vec<u8> {
    let p = fixtures(bank).join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(bank: &str, name: &str) -> Value {
    serde_json::from_slice(&read(bank, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs `gateway codec ARGS` with `stdin` on its standard input.
fn codec(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .arg("codec")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gateway runs");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("gateway ends")
}

/// `gateway codec ARGS FILE`, which must succeed: its stdout.
fn ok(args: &[&str], file: &Path) -> Vec<u8> {
    let mut all: Vec<&str> = args.to_vec();
    let f = file.to_str().expect("utf-8 path");
    all.push(f);
    let out = codec(&all, b"");
    assert!(
        out.status.success(),
        "gateway codec {all:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `gateway codec ARGS -` with `stdin`, which must fail: its stderr.
fn fails(args: &[&str], stdin: &[u8]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    all.push("-");
    let out = codec(&all, stdin);
    assert!(
        !out.status.success(),
        "gateway codec {all:?} should have failed; stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn as_json(stdout: &[u8]) -> Value {
    serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(stdout)))
}

/// Every string under the keys that hold accounts, ID numbers and phones (and ISO 8583's sensitive
/// fields and tags), at least 5 characters long: none may appear in a masked output.
fn secrets(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let personal_tag = matches!(
                m.get("name").and_then(Value::as_str),
                Some("recipient_account" | "payer_account" | "name" | "id_no" | "phone")
            );
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("account_no" | "id_no" | "phone", Value::String(s)) if s.len() >= 5 => {
                        out.push(s.clone())
                    }
                    ("value", Value::String(s)) if personal_tag && s.len() >= 5 => {
                        out.push(s.clone())
                    }
                    _ => secrets(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| secrets(x, out)),
        _ => {}
    }
}

fn assert_masked(case: &str, masked: &[u8], revealed: &Value) {
    let text = String::from_utf8_lossy(masked);
    let mut hidden = Vec::new();
    secrets(revealed, &mut hidden);
    for s in &hidden {
        assert!(
            !text.contains(s.as_str()),
            "{case}: `{s}` shown in full:\n{text}"
        );
    }
    if !hidden.is_empty() {
        assert!(text.contains("****"), "{case}: nothing masked:\n{text}");
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codec-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn bank_a_frames_decode_mask_and_encode_byte_for_byte() {
    let cases = json(BANK_A, "cases.json");
    let cases = cases.as_array().expect("cases");
    assert!(cases.len() >= 10);
    for c in cases {
        let case = c["case"].as_str().expect("case");
        let kind = c["decoder"].as_str().expect("decoder");
        let bin = fixtures(BANK_A).join(format!("{case}.bin"));
        let want = json(BANK_A, &format!("{case}.json"));
        // The kind is told from the frame.
        let revealed = ok(&["decode", "--profile", BANK_A, "--reveal"], &bin);
        assert_eq!(as_json(&revealed), want, "{case}");
        let masked = ok(&["decode", "--profile", BANK_A], &bin);
        assert_masked(case, &masked, &want);
        let forced = ok(
            &["decode", "--profile", BANK_A, "--reveal", "--kind", kind],
            &bin,
        );
        assert_eq!(as_json(&forced), want, "{case} with --kind");

        let json_file = fixtures(BANK_A).join(format!("{case}.json"));
        let bytes = ok(&["encode", "--profile", BANK_A, "--kind", kind], &json_file);
        assert_eq!(
            bytes,
            read(BANK_A, &format!("{case}.bin")),
            "{case}: encode"
        );
        if c["input"] == true {
            let input = fixtures(BANK_A).join(format!("{case}.input.json"));
            let bytes = ok(&["encode", "--profile", BANK_A, "--kind", kind], &input);
            assert_eq!(bytes, read(BANK_A, &format!("{case}.bin")), "{case}: input");
        }
    }
}

#[test]
fn bank_b_documents_decode_and_encode() {
    // Canonical documents both ways; `foreign` ones (hand-written in other layouts) decode-direction
    // only, to the JSON of the case they name in `expect` (see the fixtures' README).
    let cases = json(BANK_B, "cases.json");
    let expected = |c: &Value| -> String {
        c["expect"]
            .as_str()
            .or(c["case"].as_str())
            .expect("case")
            .to_owned()
    };
    let pain002 = cases["pain002"].as_array().expect("pain002 cases");
    assert!(pain002.iter().any(|c| c["foreign"] == true));
    for c in pain002 {
        let case = c["case"].as_str().expect("case");
        let xml = fixtures(BANK_B).join(format!("{case}.xml"));
        let json_file = fixtures(BANK_B).join(format!("{}.json", expected(c)));
        let want = json(BANK_B, &format!("{}.json", expected(c)));
        assert_eq!(
            as_json(&ok(&["decode", "--profile", BANK_B, "--reveal"], &xml)),
            want,
            "{case}"
        );
        // A status report holds no personal data: masking changes nothing.
        assert_eq!(
            as_json(&ok(&["decode", "--profile", BANK_B], &xml)),
            want,
            "{case} masked"
        );
        let forced = ok(
            &[
                "decode",
                "--profile",
                BANK_B,
                "--reveal",
                "--kind",
                "pain002",
            ],
            &xml,
        );
        assert_eq!(as_json(&forced), want, "{case} with --kind");
        let written = ok(
            &["encode", "--profile", BANK_B, "--kind", "pain002"],
            &json_file,
        );
        if c["foreign"] == true {
            // Our writer lays the same report out its own way: it reads back to the same JSON.
            let again = temp_file(&format!("{case}.written.xml"), &written);
            assert_eq!(
                as_json(&ok(&["decode", "--profile", BANK_B, "--reveal"], &again)),
                want,
                "{case} through the writer"
            );
        } else {
            assert_eq!(
                written,
                read(BANK_B, &format!("{case}.xml")),
                "{case}: encode"
            );
        }
    }
    let pain001 = cases["pain001"].as_array().expect("pain001 cases");
    assert!(pain001.iter().any(|c| c["foreign"] == true));
    for c in pain001 {
        let case = c["case"].as_str().expect("case");
        let xml = fixtures(BANK_B).join(format!("{case}.xml"));
        let input = fixtures(BANK_B).join(format!("{}.input.json", expected(c)));
        let want = json(BANK_B, &format!("{}.input.json", expected(c)));
        // Decode gives the JSON encode takes; the kind is told from the namespace.
        let revealed = ok(&["decode", "--profile", BANK_B, "--reveal"], &xml);
        assert_eq!(as_json(&revealed), want, "{case}");
        let forced = ok(
            &[
                "decode",
                "--profile",
                BANK_B,
                "--reveal",
                "--kind",
                "pain001",
            ],
            &xml,
        );
        assert_eq!(as_json(&forced), want, "{case} with --kind");
        // Without --reveal the recipients' accounts, ID numbers, phones and names are masked, and
        // such JSON is refused by encode.
        let masked = ok(&["decode", "--profile", BANK_B], &xml);
        assert_masked(case, &masked, &want);
        let m = as_json(&masked);
        assert_eq!(
            m["header"], want["header"],
            "{case}: the header holds nothing personal"
        );
        assert_eq!(
            m["payment"], want["payment"],
            "{case}: the payer is the bureau"
        );
        assert_ne!(
            m["transactions"][0]["name"], want["transactions"][0]["name"],
            "{case}: names masked"
        );
        let err = fails(
            &["encode", "--profile", BANK_B, "--kind", "pain001"],
            &masked,
        );
        assert!(err.contains("masked value"), "{err}");
        // Encode: the canonical document's bytes exactly.
        let bytes = ok(
            &["encode", "--profile", BANK_B, "--kind", "pain001"],
            &input,
        );
        if c["foreign"] != true {
            assert_eq!(
                bytes,
                read(BANK_B, &format!("{case}.xml")),
                "{case}: encode"
            );
        }
        // Decode what encode wrote: the same JSON again.
        let again = temp_file(&format!("{case}.written.xml"), &bytes);
        assert_eq!(
            as_json(&ok(&["decode", "--profile", BANK_B, "--reveal"], &again)),
            want,
            "{case}: decode(encode(json))"
        );
        // The other kind is refused with the reason of its reader.
        let err = fails(
            &["decode", "--profile", BANK_B, "--kind", "pain002"],
            &read(BANK_B, &format!("{case}.xml")),
        );
        assert!(
            err.contains("pain.002.001.10") && err.contains("namespace"),
            "{err}"
        );
    }
}

#[test]
fn bank_c_frames_decode_mask_and_encode_byte_for_byte() {
    let cases = json(BANK_C, "cases.json");
    let cases = cases.as_array().expect("cases");
    assert!(cases.len() >= 8);
    let key = temp_file("key.hex", format!("{TEST_KEY}\n").as_bytes());
    let key = key.to_str().expect("path");
    for c in cases {
        let case = c["case"].as_str().expect("case");
        let kind = c["kind"].as_str().expect("kind");
        let bin = fixtures(BANK_C).join(format!("{case}.bin"));
        let want = json(BANK_C, &format!("{case}.json"));
        assert_eq!(want["kind"], kind, "{case}");
        let revealed = ok(&["decode", "--profile", BANK_C, "--reveal"], &bin);
        assert_eq!(as_json(&revealed), want, "{case}");
        let masked = ok(&["decode", "--profile", BANK_C], &bin);
        assert_masked(case, &masked, &want);
        // The MAC of every frame that has one verifies under the spec's test key.
        ok(
            &["decode", "--profile", BANK_C, "--mac-key-file", key],
            &bin,
        );

        let json_file = fixtures(BANK_C).join(format!("{case}.json"));
        let bytes = ok(&["encode", "--profile", BANK_C, "--kind", kind], &json_file);
        assert_eq!(
            bytes,
            read(BANK_C, &format!("{case}.bin")),
            "{case}: encode"
        );

        // Without F128 but with the key, encode computes the same MAC.
        let mut unsigned = want.clone();
        if let Some(fields) = unsigned["fields"].as_array_mut() {
            fields.retain(|f| f["number"] != 128);
        }
        let file = temp_file(
            &format!("{case}.unsigned.json"),
            unsigned.to_string().as_bytes(),
        );
        let bytes = ok(
            &[
                "encode",
                "--profile",
                BANK_C,
                "--kind",
                kind,
                "--mac-key-file",
                key,
            ],
            &file,
        );
        assert_eq!(bytes, read(BANK_C, &format!("{case}.bin")), "{case}: MAC");
    }
}

#[test]
fn broken_input_fails_naming_field_and_offset() {
    // Bank A: a letter in the first detail's `amount` (record 1, byte 120 of the record).
    let mut frame = read(BANK_A, "request_submit.bin");
    let at = 8 + 202 + 120;
    frame[at] = b'x';
    let err = fails(&["decode", "--profile", BANK_A], &frame);
    assert!(
        err.contains("record 1")
            && err.contains("`amount`")
            && err.contains(&format!("frame byte {at}")),
        "{err}"
    );
    // A frame cut short.
    let frame = read(BANK_A, "request_query.bin");
    let err = fails(&["decode", "--profile", BANK_A], &frame[..frame.len() - 1]);
    assert!(err.contains("announces 202 bytes, 201 follow"), "{err}");
    // A value that does not fit: names the field, never the value.
    let mut v = json(BANK_A, "request_submit.json");
    v["message"]["details"][0]["id_no"] = Value::String("52270119800101123X0".into());
    let err = fails(
        &["encode", "--profile", BANK_A, "--kind", "request"],
        v.to_string().as_bytes(),
    );
    assert!(
        err.contains("`id_no`") && err.contains("19 bytes do not fit in 18"),
        "{err}"
    );
    assert!(!err.contains("52270119800101123X0"), "{err}");
    // Masked JSON is refused.
    let masked = ok(
        &["decode", "--profile", BANK_A],
        &fixtures(BANK_A).join("request_submit.bin"),
    );
    let err = fails(
        &["encode", "--profile", BANK_A, "--kind", "request"],
        &masked,
    );
    assert!(err.contains("masked value"), "{err}");
    // JSON of the wrong shape: the path is named.
    let err = fails(
        &["encode", "--profile", BANK_A, "--kind", "submit_reply"],
        br#"{"batch_no":"A1","ret_code":"0000","ret_msg":"","bank_batch_id":"","accept_date":7}"#,
    );
    assert!(err.contains("accept_date"), "{err}");

    // Bank C: a letter in F4 (amount): field and byte offset of the message.
    let mut frame = read(BANK_C, "payout.bin");
    let f4 = 2 + 4 + 16 + 2 + 19 + 6;
    assert_eq!(&frame[f4..f4 + 12], b"000000012345");
    frame[f4 + 3] = b'x';
    let err = fails(&["decode", "--profile", BANK_C], &frame);
    assert!(
        err.contains("field 4") && err.contains(&format!("byte {}", f4 + 3 - 2)),
        "{err}"
    );
    // A wrong MAC.
    let mut frame = read(BANK_C, "payout.bin");
    let last = frame.len() - 1;
    frame[last] ^= 1;
    let key = temp_file("key2.hex", TEST_KEY.as_bytes());
    let err = fails(
        &[
            "decode",
            "--profile",
            BANK_C,
            "--mac-key-file",
            key.to_str().expect("path"),
        ],
        &frame,
    );
    assert!(err.contains("MAC"), "{err}");
    // The length header disagrees with the message.
    let mut frame = read(BANK_C, "sign_on.bin");
    frame.push(b'0');
    let err = fails(&["decode", "--profile", BANK_C], &frame);
    assert!(err.contains("announces 49 bytes, 50 follow"), "{err}");
    // A field too long for the table, and a message that is not of the kind asked for.
    let mut v = json(BANK_C, "payout.json");
    v["fields"][1]["value"] = Value::String("4000001".into());
    let err = fails(
        &["encode", "--profile", BANK_C, "--kind", "payout"],
        v.to_string().as_bytes(),
    );
    assert!(err.contains("field 3"), "{err}");
    let v = json(BANK_C, "payout.json");
    let err = fails(
        &["encode", "--profile", BANK_C, "--kind", "inquiry"],
        v.to_string().replace("\"kind\":\"payout\",", "").as_bytes(),
    );
    assert!(err.contains("not of kind `inquiry`"), "{err}");
    // A payout without its F48.
    let mut v = json(BANK_C, "payout.json");
    if let Some(fields) = v["fields"].as_array_mut() {
        fields.retain(|f| f["number"] != 48);
    }
    let err = fails(
        &["encode", "--profile", BANK_C, "--kind", "payout"],
        v.to_string().as_bytes(),
    );
    assert!(err.contains("field 48"), "{err}");
    // Masked values are refused.
    let masked = ok(
        &["decode", "--profile", BANK_C],
        &fixtures(BANK_C).join("payout.bin"),
    );
    let err = fails(
        &["encode", "--profile", BANK_C, "--kind", "payout"],
        &masked,
    );
    assert!(err.contains("masked value"), "{err}");

    // Bank B: a broken document names the element path.
    let xml = String::from_utf8(read(BANK_B, "pain002_part_foreign.xml")).expect("utf-8");
    let broken = xml.replacen("<ps:TxSts>RJCT</ps:TxSts>", "<ps:TxSts>RJCT</ps:TxSt>", 1);
    let err = fails(&["decode", "--profile", BANK_B], broken.as_bytes());
    assert!(
        err.contains("pain.002.001.10") && err.contains("TxSts"),
        "{err}"
    );

    // A pain.001 amount not in whole fen, one not in CNY: the element path of the transaction.
    let xml = String::from_utf8(read(BANK_B, "pain001_submit.xml")).expect("utf-8");
    let broken = xml.replacen(">32614.96<", ">32614.961<", 1);
    let err = fails(&["decode", "--profile", BANK_B], broken.as_bytes());
    assert!(
        err.contains("pain.001.001.09")
            && err.contains("CdtTrfTxInf[2]/Amt/InstdAmt")
            && err.contains("3 decimals"),
        "{err}"
    );
    let broken = xml.replacen("Ccy=\"CNY\"", "Ccy=\"USD\"", 1);
    let err = fails(&["decode", "--profile", BANK_B], broken.as_bytes());
    assert!(
        err.contains("CdtTrfTxInf[1]") && err.contains("not CNY"),
        "{err}"
    );
    // Encode checks what the writer checks: a count that does not match.
    let mut v = json(BANK_B, "pain001_submit.input.json");
    v["header"]["nb_of_txs"] = Value::from(4);
    let err = fails(
        &["encode", "--profile", BANK_B, "--kind", "pain001"],
        v.to_string().as_bytes(),
    );
    assert!(err.contains("4 declared"), "{err}");

    // No such bank.
    let err = fails(&["decode", "--profile", "999999999999"], b"");
    assert!(err.contains("no profile for bank 999999999999"), "{err}");
}

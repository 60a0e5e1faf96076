//! Golden documents of bank B (`bank-profiles/fixtures/103241000018/`, see its README): the reader's
//! output equals the JSON next to each pain.002, and the writer reproduces the hand-written pain.001
//! byte for byte from its JSON input.
use std::path::{Path, PathBuf};

use codecs::format::iso20022::pain001::{GroupHeader, PaymentInfo, Transaction, write_document};
use codecs::format::iso20022::pain002::{GroupState, TimeStyle, read_document, write_report};
use serde::Deserialize;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bank-profiles/fixtures/103241000018")
}

fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    pain001: Vec<Case>,
    pain002: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    #[allow(dead_code)]
    shows: String,
    #[serde(default)]
    group_state: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pain001Input {
    header: GroupHeader,
    payment: PaymentInfo,
    transactions: Vec<Transaction>,
}

fn cases() -> Cases {
    serde_json::from_slice(&read("cases.json")).expect("cases.json")
}

#[test]
fn writer_reproduces_pain001_byte_for_byte() {
    let cases = cases();
    assert!(!cases.pain001.is_empty());
    for c in cases.pain001 {
        let input: Pain001Input =
            serde_json::from_slice(&read(&format!("{}.input.json", c.case))).expect("input");
        let written = write_document(&input.header, &input.payment, &input.transactions)
            .unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let golden = read(&format!("{}.xml", c.case));
        if written != golden {
            let w = String::from_utf8_lossy(&written);
            let g = String::from_utf8_lossy(&golden);
            let line = w
                .lines()
                .zip(g.lines())
                .position(|(a, b)| a != b)
                .map_or(w.lines().count().min(g.lines().count()), |i| i);
            panic!(
                "{}: differs from the golden document at line {}: written {:?}, golden {:?}",
                c.case,
                line + 1,
                w.lines().nth(line),
                g.lines().nth(line)
            );
        }
    }
}

#[test]
fn reader_output_equals_expected_json() {
    let cases = cases();
    assert!(cases.pain002.len() >= 4);
    for c in cases.pain002 {
        let report = read_document(&read(&format!("{}.xml", c.case)))
            .unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let got = serde_json::to_value(&report).expect("json");
        let want: serde_json::Value =
            serde_json::from_slice(&read(&format!("{}.json", c.case))).expect("expected json");
        assert_eq!(got, want, "{}", c.case);
        let state = match report.header.state() {
            GroupState::Accepted => "accepted",
            GroupState::Pending => "pending",
            GroupState::Credited => "credited",
            GroupState::Partial => "partial",
            GroupState::Rejected => "rejected",
            _ => "unknown",
        };
        assert_eq!(Some(state), c.group_state.as_deref(), "{}", c.case);
        // What the reader got survives our own writer (the bank B simulator's path) unchanged.
        for style in [TimeStyle::Offset, TimeStyle::Local] {
            let again = write_report(&report, style).expect("write");
            assert_eq!(read_document(&again).as_ref(), Ok(&report), "{}", c.case);
        }
    }
}

#[test]
fn every_fixture_is_listed() {
    let cases = cases();
    let listed: Vec<String> = cases
        .pain001
        .iter()
        .chain(&cases.pain002)
        .map(|c| format!("{}.xml", c.case))
        .collect();
    for entry in std::fs::read_dir(dir()).expect("dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".xml") {
            assert!(listed.contains(&name), "{name} is not in cases.json");
        }
    }
}

//! Golden documents of bank B (`bank-profiles/fixtures/103241000018/`, see its README), both ways:
//!
//! - canonical documents (laid out as our writers lay them out; the pain.002 ones rendered by the
//!   folder's `make_fixtures.py`, independently of the Rust writers): the reader's output equals the
//!   expected JSON **and** the writer reproduces the document byte for byte from that JSON;
//! - foreign documents (`foreign: true` in `cases.json`: written by hand with other prefixes, layouts and
//!   elements we skip): checked **decode-direction only** — they read to the same JSON as their canonical
//!   twin (`expect`), but our writer never writes them that way, so there is no byte comparison.
use std::path::{Path, PathBuf};

use codecs::format::iso20022::pain001::{self, Document};
use codecs::format::iso20022::pain002::{
    GroupState, StatusReport, TimeStyle, read_document, write_report,
};
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
    /// Hand-written in another layout: decode-direction only.
    #[serde(default)]
    foreign: bool,
    /// The case whose JSON this document reads to (default: its own).
    #[serde(default)]
    expect: Option<String>,
}

impl Case {
    fn expected(&self) -> &str {
        self.expect.as_deref().unwrap_or(&self.case)
    }
}

fn cases() -> Cases {
    serde_json::from_slice(&read("cases.json")).expect("cases.json")
}

/// Panics at the first line where `written` and the golden document differ.
fn assert_same_bytes(case: &str, written: &[u8], golden: &[u8]) {
    if written == golden {
        return;
    }
    let w = String::from_utf8_lossy(written);
    let g = String::from_utf8_lossy(golden);
    let line = w
        .lines()
        .zip(g.lines())
        .position(|(a, b)| a != b)
        .map_or(w.lines().count().min(g.lines().count()), |i| i);
    panic!(
        "{case}: differs from the golden document at line {}: written {:?}, golden {:?}",
        line + 1,
        w.lines().nth(line),
        g.lines().nth(line)
    );
}

#[test]
fn pain001_both_directions() {
    let cases = cases();
    assert!(cases.pain001.iter().any(|c| !c.foreign));
    assert!(cases.pain001.iter().any(|c| c.foreign));
    for c in &cases.pain001 {
        let want: Document =
            serde_json::from_slice(&read(&format!("{}.input.json", c.expected()))).expect("input");
        let xml = read(&format!("{}.xml", c.case));
        // Decode: the document reads to the JSON.
        let got = pain001::read_document(&xml).unwrap_or_else(|e| panic!("{}: {e}", c.case));
        assert_eq!(got, want, "{}: decode", c.case);
        // The JSON value too, not only the Rust value (serde defaults would hide a missing key).
        let want_json: serde_json::Value =
            serde_json::from_slice(&read(&format!("{}.input.json", c.expected()))).expect("json");
        assert_eq!(
            serde_json::to_value(&got).expect("json"),
            want_json,
            "{}",
            c.case
        );
        if c.foreign {
            continue;
        }
        // Encode: the JSON writes the document's bytes.
        let written = want.write().unwrap_or_else(|e| panic!("{}: {e}", c.case));
        assert_same_bytes(&c.case, &written, &xml);
    }
}

#[test]
fn pain002_both_directions() {
    let cases = cases();
    assert!(cases.pain002.iter().filter(|c| !c.foreign).count() >= 4);
    assert!(cases.pain002.iter().any(|c| c.foreign));
    for c in cases.pain002 {
        let xml = read(&format!("{}.xml", c.case));
        let report = read_document(&xml).unwrap_or_else(|e| panic!("{}: {e}", c.case));
        let got = serde_json::to_value(&report).expect("json");
        let want_json: serde_json::Value =
            serde_json::from_slice(&read(&format!("{}.json", c.expected())))
                .expect("expected json");
        assert_eq!(got, want_json, "{}: decode", c.case);
        let state = match report.header.state() {
            GroupState::Accepted => "accepted",
            GroupState::Pending => "pending",
            GroupState::Credited => "credited",
            GroupState::Partial => "partial",
            GroupState::Rejected => "rejected",
            _ => "unknown",
        };
        assert_eq!(Some(state), c.group_state.as_deref(), "{}", c.case);
        // What the reader got survives our writer and reader unchanged, in both time styles.
        for style in [TimeStyle::Offset, TimeStyle::Local] {
            let again = write_report(&report, style).expect("write");
            assert_eq!(read_document(&again).as_ref(), Ok(&report), "{}", c.case);
        }
        if c.foreign {
            continue;
        }
        // Encode: the JSON writes the document's bytes (canonical documents carry +08:00).
        let want: StatusReport = serde_json::from_value(want_json).expect("report");
        let written = write_report(&want, TimeStyle::Offset).expect("write");
        assert_same_bytes(&c.case, &written, &xml);
    }
}

#[test]
fn every_fixture_is_listed_and_foreign_ones_are_named_so() {
    let cases = cases();
    let all: Vec<&Case> = cases.pain001.iter().chain(&cases.pain002).collect();
    for c in &all {
        assert_eq!(
            c.foreign,
            c.case.ends_with("_foreign"),
            "{}: only `*_foreign` cases are decode-only",
            c.case
        );
    }
    let listed: Vec<String> = all.iter().map(|c| format!("{}.xml", c.case)).collect();
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

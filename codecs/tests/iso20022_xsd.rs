//! Documents written by the ISO 20022 writers validate against the official schemas (xmllint).
//!
//! Needs `xmllint` (Debian: `apt-get install -y libxml2-utils`): the tests fail, never skip, without it.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use codecs::format::iso20022::BeijingTime;
use codecs::format::iso20022::pain001::{
    AccountKind, GroupHeader, MAX_AMOUNT_FEN, PaymentInfo, RecipientKind, Transaction,
    write_document,
};
use codecs::format::iso20022::pain002::{
    Reason, ReportHeader, StatusReason, StatusReport, TimeStyle, TxStatus, write_report,
};

fn xsd(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/xsd")
        .join(name)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bank-profiles/fixtures/103241000018")
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs `xmllint --noout --schema <xsd> <file>`; `Ok(())` when valid, `Err(stderr)` when not.
fn xmllint(schema: &str, doc: &[u8]) -> Result<(), String> {
    let schema = xsd(schema);
    assert!(schema.is_file(), "schema {} not found", schema.display());
    let file = std::env::temp_dir().join(format!(
        "gw-codecs-iso20022-{}-{}.xml",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, doc).expect("write temp file");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run xmllint ({e}): install it with `apt-get install -y libxml2-utils` \
             (the XSD tests fail rather than skip without it)"
        ),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assert_valid(schema: &str, doc: &[u8]) {
    if let Err(e) = xmllint(schema, doc) {
        let head: String = e.chars().take(2000).collect();
        panic!("not valid against {schema}:\n{head}");
    }
}

fn header(n: u64, sum: u64) -> GroupHeader {
    GroupHeader {
        msg_id: "GW-103-20260303-000123".into(),
        created: "2026-03-03T09:15:00".into(),
        nb_of_txs: n,
        ctrl_sum_fen: sum,
        initiating_party: "220623-NYNC".into(),
    }
}

fn payment() -> PaymentInfo {
    PaymentInfo {
        subsidy_code: "NY001".into(),
        execution_date: "2026-03-03".into(),
        payer_name: "县财政局惠民惠农代发专户".into(),
        payer_account: "0711012345678901".into(),
        payer_bank_code: "103241000018".into(),
    }
}

fn person(seq: u64, fen: u64) -> Transaction {
    Transaction {
        seq,
        end_to_end_id: format!("GW-103-20260303-000123-{seq:05}"),
        amount_fen: fen,
        account_bank_code: "102241000019".into(),
        name: "郝桂".into(),
        recipient_kind: RecipientKind::Person,
        id_no: "220203196602074567".into(),
        phone: "14597919074".into(),
        account_no: "6217995505724754105".into(),
        account_kind: AccountKind::Ssc,
        memo: "8月".into(),
    }
}

fn unit(seq: u64, fen: u64) -> Transaction {
    Transaction {
        name: "农安县彭氏种植专业合作社".into(),
        recipient_kind: RecipientKind::Unit,
        id_no: "93220623P73R84RHW4".into(),
        account_no: "947355155493498279".into(),
        account_kind: AccountKind::Corporate,
        memo: String::new(),
        ..person(seq, fen)
    }
}

fn doc(txs: &[Transaction]) -> Vec<u8> {
    let sum = txs.iter().map(|t| t.amount_fen).sum();
    write_document(&header(txs.len() as u64, sum), &payment(), txs).expect("write")
}

#[test]
fn xmllint_catches_an_invalid_document() {
    // The harness itself: a document breaking the schema must fail, or the other tests prove nothing.
    let good = String::from_utf8(doc(&[person(1, 100)])).expect("utf8");
    assert_valid("pain.001.001.09.xsd", good.as_bytes());
    let swapped = good.replace(
        "<PmtMtd>TRF</PmtMtd>\n      <BtchBookg>true</BtchBookg>",
        "<BtchBookg>true</BtchBookg>\n      <PmtMtd>TRF</PmtMtd>",
    );
    assert_ne!(swapped, good);
    assert!(xmllint("pain.001.001.09.xsd", swapped.as_bytes()).is_err());
    let long_id = good.replace("GW-103-20260303-000123-00001", &"X".repeat(36));
    assert!(xmllint("pain.001.001.09.xsd", long_id.as_bytes()).is_err());
    let bad_phone = good.replace("+86-14597919074", "+86 14597919074");
    assert!(xmllint("pain.001.001.09.xsd", bad_phone.as_bytes()).is_err());
}

#[test]
fn one_person_with_memo() {
    assert_valid("pain.001.001.09.xsd", &doc(&[person(1, 288_265)]));
}

#[test]
fn one_unit_without_memo() {
    let d = doc(&[unit(1, 3_261_496)]);
    assert!(!String::from_utf8_lossy(&d).contains("RmtInf"));
    assert_valid("pain.001.001.09.xsd", &d);
}

#[test]
fn mixed_kinds_names_and_edges() {
    let mut txs = vec![person(1, 1), unit(2, 2)];
    let mut t = person(3, MAX_AMOUNT_FEN - 10);
    // Longest values each type allows, characters outside the BMP, markup characters.
    t.name = "𠀀".repeat(70) + &"张".repeat(70);
    t.memo = "耕地地力保护补贴 & <补发> \"第2次\" 'x'".to_owned() + &"月".repeat(100);
    t.end_to_end_id = "E".repeat(35);
    t.id_no = "I".repeat(35);
    t.account_no = "9".repeat(34);
    t.phone = "(0431)-8888+1234".to_owned() + &"0".repeat(14);
    t.account_kind = AccountKind::Personal;
    txs.push(t);
    let mut u = unit(4, 0);
    u.name = "阿依古丽·买买提".into();
    u.memo = "x".into();
    txs.push(u);
    let sum: u64 = txs.iter().map(|t| t.amount_fen).sum();
    let mut h = header(4, sum);
    h.msg_id = "M".repeat(35);
    h.initiating_party = "部".repeat(140);
    let mut p = payment();
    p.payer_name = "户".repeat(140);
    p.payer_account = "0".repeat(34);
    p.subsidy_code = "S".repeat(35);
    let d = write_document(&h, &p, &txs).expect("write");
    assert_valid("pain.001.001.09.xsd", &d);
}

#[test]
fn ten_thousand_transactions() {
    let txs: Vec<Transaction> = (1..=10_000u64)
        .map(|i| {
            let mut t = if i % 3 == 0 {
                unit(i, i * 7 + 1)
            } else {
                person(i, i * 13 + 99)
            };
            if i % 5 == 0 {
                t.memo.clear();
            }
            if i % 7 == 0 {
                t.account_kind = AccountKind::Personal;
            }
            t
        })
        .collect();
    let d = doc(&txs);
    assert!(d.len() < 32 * 1024 * 1024);
    assert_valid("pain.001.001.09.xsd", &d);
}

fn time(h: u8, m: u8, s: u8) -> BeijingTime {
    BeijingTime::new(2026, 3, 4, h, m, s).expect("time")
}

fn tx_status(i: u64, status: &str, reason: Option<Reason>, info: &[&str]) -> TxStatus {
    TxStatus {
        original_instr_id: Some(i.to_string()),
        original_end_to_end_id: Some(format!("GW-103-20260303-000123-{i:05}")),
        status: Some(status.into()),
        reasons: if reason.is_some() || !info.is_empty() {
            vec![StatusReason {
                reason,
                additional_info: info.iter().map(|s| (*s).to_owned()).collect(),
            }]
        } else {
            vec![]
        },
        acceptance_time: Some(time(9, (i % 60) as u8, 0)),
        account_servicer_ref: Some(format!("B103-0304-{i:06}")),
        creditor_agent: Some("102241000019".into()),
    }
}

fn report(group: &str, txs: Vec<TxStatus>) -> StatusReport {
    let mut header = ReportHeader::about(
        "CBP202603041020300003",
        time(10, 20, 30),
        "GW-103-20260303-000123",
    );
    header.group_status = Some(group.into());
    StatusReport {
        header,
        transactions: txs,
    }
}

#[test]
fn pain002_actc_and_pdng() {
    for style in [TimeStyle::Offset, TimeStyle::Local] {
        for g in ["ACTC", "PDNG"] {
            let d = write_report(&report(g, vec![]), style).expect("write");
            assert_valid("pain.002.001.10.xsd", &d);
        }
    }
}

#[test]
fn pain002_final_with_transactions() {
    let txs = vec![
        tx_status(1, "ACCC", None, &[]),
        tx_status(2, "RJCT", Some(Reason::Code("AC01".into())), &[]),
        tx_status(3, "RJCT", Some(Reason::Code("AC04".into())), &[]),
        tx_status(
            4,
            "RJCT",
            Some(Reason::Code("AM05".into())),
            &["already paid"],
        ),
        tx_status(
            5,
            "RJCT",
            Some(Reason::Code("NARR".into())),
            &["户名与账号不符 & <x>", &"字".repeat(105)],
        ),
        tx_status(6, "RJCT", Some(Reason::Proprietary("P".repeat(35))), &[]),
        tx_status(7, "RJCT", None, &["reason without code"]),
        TxStatus::default(),
    ];
    for (g, style) in [
        ("PART", TimeStyle::Offset),
        ("RJCT", TimeStyle::Local),
        ("ACCC", TimeStyle::Offset),
    ] {
        let d = write_report(&report(g, txs.clone()), style).expect("write");
        assert_valid("pain.002.001.10.xsd", &d);
    }
    let many: Vec<TxStatus> = (1..=10_000)
        .map(|i| tx_status(i, "ACCC", None, &[]))
        .collect();
    assert_valid(
        "pain.002.001.10.xsd",
        &write_report(&report("ACCC", many), TimeStyle::Offset).expect("write"),
    );
}

#[test]
fn pain002_rejected_batch() {
    let mut r = report("RJCT", vec![]);
    r.header.reasons = vec![
        StatusReason {
            reason: Some(Reason::Proprietary("CTRLSUM".into())),
            additional_info: vec!["totals mismatch".into(), "未做任何支付".into()],
        },
        StatusReason::default(),
    ];
    assert_valid(
        "pain.002.001.10.xsd",
        &write_report(&r, TimeStyle::Offset).expect("write"),
    );
}

#[test]
fn golden_fixtures_are_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(fixtures()).expect("fixtures folder") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !name.ends_with(".xml") {
            continue;
        }
        let schema = if name.starts_with("pain001") {
            "pain.001.001.09.xsd"
        } else {
            "pain.002.001.10.xsd"
        };
        assert_valid(schema, &std::fs::read(&path).expect("read"));
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} fixtures");
}

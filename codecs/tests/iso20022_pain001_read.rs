//! The pain.001.001.09 reader: prefixes, skipped elements, streaming, errors, round trips, fuzz.
use codecs::format::iso20022::AmountError;
use codecs::format::iso20022::pain001::{
    AccountKind, Document, GroupHeader, MAX_AMOUNT_FEN, Pain001Reader, PaymentInfo, ReadError,
    RecipientKind, Transaction, read_document, write_document,
};
use proptest::prelude::*;

const NS: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";

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

fn document(txs: Vec<Transaction>) -> Document {
    let sum = txs.iter().map(|t| t.amount_fen).sum();
    Document {
        header: header(txs.len() as u64, sum),
        payment: payment(),
        transactions: txs,
    }
}

/// Two transactions: a person paid 2882.65 with a memo, a unit paid 32614.96 without.
fn two() -> Document {
    document(vec![person(1, 288_265), unit(2, 3_261_496)])
}

fn good() -> String {
    String::from_utf8(two().write().expect("write")).expect("utf-8")
}

/// `doc` with every element of the pain.001 namespace under `prefix` (the default namespace dropped).
fn prefixed(doc: &str, prefix: &str) -> String {
    doc.replace(
        &format!("<Document xmlns=\"{NS}\">"),
        &format!("<{prefix}:Document xmlns:{prefix}=\"{NS}\">"),
    )
    .replace("</", "\u{0}")
    .replace('<', &format!("<{prefix}:"))
    .replace('\u{0}', &format!("</{prefix}:"))
    .replace(&format!("<{prefix}:?xml"), "<?xml")
    .replace(&format!("<{prefix}:{prefix}:"), &format!("<{prefix}:"))
}

fn err(doc: &[u8]) -> ReadError {
    match Pain001Reader::new(doc) {
        Err(e) => e,
        Ok(r) => {
            let mut last = None;
            for item in r {
                if let Err(e) = item {
                    last = Some(e);
                }
            }
            last.unwrap_or_else(|| panic!("no error in:\n{}", String::from_utf8_lossy(doc)))
        }
    }
}

fn path_of(e: &ReadError) -> &str {
    match e {
        ReadError::Malformed { path, .. }
        | ReadError::WrongNamespace { path, .. }
        | ReadError::Missing { path, .. }
        | ReadError::Duplicate { path, .. }
        | ReadError::OutOfOrder { path, .. }
        | ReadError::MoreThanOnePaymentInfo { path, .. }
        | ReadError::Value { path, .. }
        | ReadError::Amount { path, .. }
        | ReadError::Currency { path, .. }
        | ReadError::Invalid { path, .. }
        | ReadError::CountMismatch { path, .. }
        | ReadError::SumMismatch { path, .. }
        | ReadError::TooDeep { path, .. }
        | ReadError::Truncated { path, .. } => path,
        _ => "",
    }
}

const TX2: &str = "Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf[2]";

#[test]
fn reads_any_prefix_and_the_default_namespace() {
    let want = two();
    assert_eq!(read_document(good()), Ok(want.clone()));
    for prefix in ["p", "ns0", "pain001"] {
        let doc = prefixed(&good(), prefix);
        assert!(doc.contains(&format!("<{prefix}:CdtTrfTxInf>")), "{doc}");
        assert_eq!(read_document(&doc), Ok(want.clone()), "{prefix}");
    }
    // The namespace declared on an inner element and the outer one of another namespace's prefix.
    let doc = good().replace(
        &format!("<Document xmlns=\"{NS}\">"),
        &format!("<Document xmlns=\"{NS}\" xmlns:q=\"{NS}\">"),
    );
    let doc = doc
        .replacen("<GrpHdr>", "<q:GrpHdr>", 1)
        .replacen("</GrpHdr>", "</q:GrpHdr>", 1);
    assert_eq!(read_document(doc), Ok(want));
}

#[test]
fn skips_every_element_it_does_not_use() {
    let g = good();
    let doc = g
        .replacen(
            "<InitgPty>",
            "<Authstn><Prtry>X</Prtry></Authstn><InitgPty><Id><OrgId><AnyBIC>ABCDCNBJ</AnyBIC></OrgId></Id>",
            1,
        )
        .replacen("</GrpHdr>", "<FwdgAgt><FinInstnId><ClrSysMmbId><MmbId>999999999999</MmbId></ClrSysMmbId></FinInstnId></FwdgAgt></GrpHdr>", 1)
        .replacen("<CtgyPurp>", "<SvcLvl><Cd>NURG</Cd></SvcLvl><CtgyPurp>", 1)
        .replacen("</ReqdExctnDt>", "</ReqdExctnDt><PoolgAdjstmntDt>2026-03-04</PoolgAdjstmntDt>", 1)
        .replacen("</DbtrAgt>", "</DbtrAgt><UltmtDbtr><Nm>not the payer</Nm></UltmtDbtr><ChrgBr>SLEV</ChrgBr>", 1)
        .replace("<EndToEndId>", "<x:EndToEndId xmlns:x=\"urn:other\">X</x:EndToEndId><EndToEndId>")
        .replace("</EndToEndId>", "</EndToEndId><UETR>1b4e28ba-2fa1-41d2-883f-0016d3cca427</UETR>")
        .replace("</Amt>", "</Amt><XchgRateInf><XchgRate>1</XchgRate></XchgRateInf>")
        .replace("<Nm>郝桂</Nm>", "<Nm>郝桂</Nm><PstlAdr><Ctry>CN</Ctry><Nm>not the name</Nm></PstlAdr>")
        .replace("</CdtrAcct>", "</CdtrAcct><UltmtCdtr><Nm>x</Nm><CtctDtls><MobNb>+1-555</MobNb></CtctDtls></UltmtCdtr><Purp><Cd>GOVT</Cd></Purp>")
        .replace("<Tp>", "<Tp><!-- kind --><?pi x?>")
        .replace("</PmtInf>", "</PmtInf><SplmtryData><Envlp><PmtInf><Deep><CdtTrfTxInf/></Deep></PmtInf></Envlp></SplmtryData>");
    assert_ne!(doc, g);
    assert_eq!(read_document(&doc), Ok(two()), "{doc}");
}

#[test]
fn reads_optional_parts_and_other_decimal_forms() {
    let g = good();
    // PmtInf's NbOfTxs, CtrlSum and BtchBookg are optional; amounts may have fewer decimals.
    let at = g.find("<PmtInf>").expect("PmtInf");
    let (grp, pmt) = g.split_at(at);
    let pmt = pmt
        .replacen("      <BtchBookg>true</BtchBookg>\n", "", 1)
        .replacen("      <NbOfTxs>2</NbOfTxs>\n", "", 1)
        .replacen("      <CtrlSum>35497.61</CtrlSum>\n", "", 1);
    let doc = format!("{grp}{pmt}")
        .replace(">2882.65<", "> 2882.65\n<")
        .replace(">32614.96<", ">032614.96<");
    assert!(
        !doc.contains("BtchBookg") && doc.matches("NbOfTxs").count() == 2,
        "{doc}"
    );
    assert_eq!(read_document(&doc), Ok(two()));
    // Empty elements written as such, CDATA, character references.
    let doc = g
        .replace("<Nm>郝桂</Nm>", "<Nm><![CDATA[郝]]>&#26690;</Nm>")
        .replace("</CdtrAcct>", "</CdtrAcct><InstrForDbtrAgt/>");
    assert_eq!(read_document(doc), Ok(two()));
}

#[test]
fn streams_ten_thousand_transactions() {
    let txs: Vec<Transaction> = (1..=10_000u64)
        .map(|i| {
            if i % 3 == 0 {
                unit(i, i)
            } else {
                person(i, i * 7)
            }
        })
        .collect();
    let d = document(txs.clone());
    let bytes = d.write().expect("write");
    let mut r = Pain001Reader::new(&bytes).expect("reader");
    assert_eq!(r.header().nb_of_txs, 10_000);
    assert_eq!(r.payment(), &payment());
    let mut n = 0u64;
    let mut sum = 0u64;
    for (tx, want) in (&mut r).zip(&txs) {
        let tx = tx.expect("tx");
        assert_eq!(&tx, want);
        n += 1;
        sum += tx.amount_fen;
    }
    assert_eq!((n, sum), (10_000, d.header.ctrl_sum_fen));
    assert_eq!(r.next_transaction(), Ok(None));
    assert_eq!(read_document(&bytes), Ok(d));
}

#[test]
fn refuses_what_bank_b_cannot_take() {
    let g = good();
    // An amount not in whole fen.
    let e = err(g.replace(">2882.65<", ">2882.655<").as_bytes());
    assert_eq!(
        e,
        ReadError::Amount {
            path: "Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf[1]/Amt/InstdAmt".into(),
            offset: match e {
                ReadError::Amount { offset, .. } => offset,
                _ => 0,
            },
            source: AmountError::TooManyDecimals { decimals: 3 },
        }
    );
    for bad in ["-1.00", "1e3", "", "1,00", "99999999999999999999"] {
        let e = err(g.replace(">32614.96<", &format!(">{bad}<")).as_bytes());
        assert_eq!(path_of(&e), format!("{TX2}/Amt/InstdAmt"), "{bad}: {e}");
    }
    let e = err(g.replacen(">35497.61<", ">35497.611<", 1).as_bytes());
    assert!(matches!(e, ReadError::Amount { .. }), "{e}");
    // Not CNY, or no currency at all.
    let e = err(g
        .replace("Ccy=\"CNY\">32614.96", "Ccy=\"USD\">32614.96")
        .as_bytes());
    assert!(
        matches!(&e, ReadError::Currency { path, problem, .. }
            if path == &format!("{TX2}/Amt/InstdAmt") && problem.contains("not CNY")),
        "{e}"
    );
    let e = err(g.replace(" Ccy=\"CNY\">32614.96", ">32614.96").as_bytes());
    assert!(
        matches!(&e, ReadError::Currency { problem, .. } if problem.contains("no Ccy")),
        "{e}"
    );
    // An equivalent amount instead of an instructed one.
    let e = err(g
        .replace(
            "<InstdAmt Ccy=\"CNY\">32614.96</InstdAmt>",
            "<EqvtAmt><Amt Ccy=\"CNY\">32614.96</Amt><CcyOfTrf>CNY</CcyOfTrf></EqvtAmt>",
        )
        .as_bytes());
    assert_eq!(path_of(&e), format!("{TX2}/Amt/InstdAmt"), "{e}");
    assert!(matches!(e, ReadError::Missing { .. }), "{e}");
    // A second payment block.
    let pmt =
        &g[g.find("    <PmtInf>").expect("PmtInf")..g.find("  </CstmrCdtTrfInitn>").expect("end")];
    let e = err(g.replace(pmt, &format!("{pmt}{pmt}")).as_bytes());
    assert!(
        matches!(&e, ReadError::MoreThanOnePaymentInfo { path, .. } if path == "Document/CstmrCdtTrfInitn/PmtInf"),
        "{e}"
    );
    // Totals.
    let e = err(g
        .replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>", 2)
        .as_bytes());
    assert!(
        matches!(
            e,
            ReadError::CountMismatch {
                declared: 3,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
    let e = err(g
        .replacen(
            "<CtrlSum>35497.61</CtrlSum>",
            "<CtrlSum>35497.60</CtrlSum>",
            1,
        )
        .as_bytes());
    assert!(
        matches!(&e, ReadError::SumMismatch { path, declared_fen: 3_549_760, found_fen: 3_549_761 }
            if path == "Document/CstmrCdtTrfInitn/PmtInf/CtrlSum"),
        "{e}"
    );
    // Bank B's fixed values.
    let e = err(g
        .replace("<PmtMtd>TRF</PmtMtd>", "<PmtMtd>CHK</PmtMtd>")
        .as_bytes());
    assert_eq!(
        path_of(&e),
        "Document/CstmrCdtTrfInitn/PmtInf/PmtMtd",
        "{e}"
    );
    let e = err(g
        .replace(
            "<BtchBookg>true</BtchBookg>",
            "<BtchBookg>false</BtchBookg>",
        )
        .as_bytes());
    assert_eq!(
        path_of(&e),
        "Document/CstmrCdtTrfInitn/PmtInf/BtchBookg",
        "{e}"
    );
    let e = err(g
        .replacen("<PmtInfId>GW-103-20260303-000123<", "<PmtInfId>OTHER<", 1)
        .as_bytes());
    assert_eq!(
        path_of(&e),
        "Document/CstmrCdtTrfInitn/PmtInf/PmtInfId",
        "{e}"
    );
    let e = err(g
        .replace("<Prtry>USCC</Prtry>", "<Prtry>ORG-CODE</Prtry>")
        .as_bytes());
    assert_eq!(
        path_of(&e),
        format!("{TX2}/Cdtr/Id/OrgId/Othr[SchmeNm/Prtry=USCC]"),
        "{e}"
    );
    let e = err(g.replace("+86-14597919074", "+1-5551234").as_bytes());
    assert_eq!(
        path_of(&e),
        "Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf[1]/Cdtr/CtctDtls/MobNb",
        "{e}"
    );
    let e = err(g
        .replace("<Prtry>CORP</Prtry>", "<Prtry>CACC</Prtry>")
        .as_bytes());
    assert_eq!(path_of(&e), format!("{TX2}/CdtrAcct/Tp/Prtry"), "{e}");
    let e = err(g
        .replace("<InstrId>2</InstrId>", "<InstrId>A2</InstrId>")
        .as_bytes());
    assert_eq!(path_of(&e), format!("{TX2}/PmtId/InstrId"), "{e}");
    // Values the writer would refuse: too long, not 12 digits, a bad date.
    let e = err(g
        .replace("<Nm>郝桂</Nm>", &format!("<Nm>{}</Nm>", "郝".repeat(141)))
        .as_bytes());
    assert!(
        matches!(&e, ReadError::Invalid { path, source, .. }
            if path == "Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf[1]" && source.field() == "name"),
        "{e}"
    );
    let e = err(g
        .replacen(
            "<MmbId>102241000019</MmbId>",
            "<MmbId>10224100001</MmbId>",
            1,
        )
        .as_bytes());
    assert!(
        matches!(&e, ReadError::Invalid { source, .. } if source.field() == "account_bank_code"),
        "{e}"
    );
    let e = err(g
        .replace("<Dt>2026-03-03</Dt>", "<Dt>2026-02-30</Dt>")
        .as_bytes());
    assert!(
        matches!(&e, ReadError::Invalid { path, source, .. }
            if path == "Document/CstmrCdtTrfInitn/PmtInf" && source.field() == "execution_date"),
        "{e}"
    );
    let e = err(g
        .replace(
            "<CreDtTm>2026-03-03T09:15:00<",
            "<CreDtTm>2026-03-03T09:15:00+08:00<",
        )
        .as_bytes());
    assert!(
        matches!(&e, ReadError::Invalid { source, .. } if source.field() == "created"),
        "{e}"
    );
}

#[test]
fn refuses_missing_and_repeated_elements_naming_them() {
    let g = good();
    let cases: &[(&str, &str, &str)] = &[
        (
            "<EndToEndId>GW-103-20260303-000123-00002</EndToEndId>",
            "",
            "CdtTrfTxInf[2]/PmtId/EndToEndId",
        ),
        ("<InstrId>2</InstrId>", "", "CdtTrfTxInf[2]/PmtId/InstrId"),
        ("<MsgId>GW-103-20260303-000123</MsgId>", "", "GrpHdr/MsgId"),
        (
            "<Prtry>NY001</Prtry>",
            "<Cd>NY01</Cd>",
            "PmtInf/PmtTpInf/CtgyPurp/Prtry",
        ),
        (
            "<Nm>农安县彭氏种植专业合作社</Nm>",
            "",
            "CdtTrfTxInf[2]/Cdtr/Nm",
        ),
        (
            "<MobNb>+86-14597919074</MobNb>",
            "",
            "CdtTrfTxInf[1]/Cdtr/CtctDtls/MobNb",
        ),
        (
            "<Prtry>SSC</Prtry>",
            "<Cd>CACC</Cd>",
            "CdtTrfTxInf[1]/CdtrAcct/Tp/Prtry",
        ),
        (
            "<Dt>2026-03-03</Dt>",
            "<DtTm>2026-03-03T00:00:00</DtTm>",
            "PmtInf/ReqdExctnDt/Dt",
        ),
        (
            "<InitgPty>\n        <Nm>220623-NYNC</Nm>",
            "<InitgPty>\n        <Nm>220623-NYNC</Nm><Nm>x</Nm>",
            "GrpHdr/InitgPty/Nm",
        ),
        (
            "<Ustrd>8月</Ustrd>",
            "<Ustrd>8月</Ustrd><Ustrd>second line</Ustrd>",
            "CdtTrfTxInf[1]/RmtInf/Ustrd",
        ),
        (
            "<Nm>郝桂</Nm>",
            "<Nm>郝桂</Nm><Nm>郝桂</Nm>",
            "CdtTrfTxInf[1]/Cdtr/Nm",
        ),
    ];
    for (from, to, path) in cases {
        assert!(g.contains(from), "{from}");
        let e = err(g.replacen(from, to, 1).as_bytes());
        let p = path_of(&e);
        assert!(
            p.ends_with(path) && p.starts_with("Document/CstmrCdtTrfInitn/"),
            "{from} -> {to}: `{p}` ({e})"
        );
        if to.is_empty() {
            assert!(matches!(e, ReadError::Missing { .. }), "{from}: {e}");
        }
    }
    // No transaction at all, no payment block, no header.
    let start = g.find("      <CdtTrfTxInf>").expect("tx");
    let end = g.find("    </PmtInf>").expect("end");
    let e = err(format!("{}{}", &g[..start], &g[end..]).as_bytes());
    assert_eq!(
        path_of(&e),
        "Document/CstmrCdtTrfInitn/PmtInf/CdtTrfTxInf",
        "{e}"
    );
    let e = err(format!(
        "<Document xmlns=\"{NS}\"><CstmrCdtTrfInitn><PmtInf/></CstmrCdtTrfInitn></Document>"
    )
    .as_bytes());
    assert_eq!(path_of(&e), "Document/CstmrCdtTrfInitn/GrpHdr", "{e}");
    // A payment block element after the transactions.
    let e = err(g
        .replace(
            "    </PmtInf>",
            "<ChrgBr>SLEV</ChrgBr><PmtMtd>TRF</PmtMtd></PmtInf>",
        )
        .as_bytes());
    assert!(
        matches!(&e, ReadError::OutOfOrder { path, .. } if path == "Document/CstmrCdtTrfInitn/PmtInf/PmtMtd"),
        "{e}"
    );
}

#[test]
fn refuses_wrong_roots_namespaces_encodings_and_malformed_xml() {
    let g = good();
    let pain002 = g.replace(NS, "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10");
    assert!(matches!(
        err(pain002.as_bytes()),
        ReadError::WrongNamespace { .. }
    ));
    let no_ns = g.replace(&format!(" xmlns=\"{NS}\""), "");
    assert!(matches!(
        err(no_ns.as_bytes()),
        ReadError::WrongNamespace { .. }
    ));
    let other_root = g.replace("CstmrCdtTrfInitn", "CstmrPmtStsRpt");
    assert!(matches!(
        err(other_root.as_bytes()),
        ReadError::WrongRoot { .. }
    ));
    assert!(matches!(
        err(b"<Other/>"),
        ReadError::WrongRoot { ref found, .. } if found == "Other"
    ));
    assert!(matches!(err(b""), ReadError::Missing { .. }));
    // Encodings.
    let mut latin = g.clone().into_bytes();
    latin.extend_from_slice(b"<!-- \xff -->");
    assert!(matches!(err(&latin), ReadError::NotUtf8 { .. }));
    let gbk = g.replacen("encoding=\"UTF-8\"", "encoding=\"GBK\"", 1);
    assert!(matches!(err(gbk.as_bytes()), ReadError::Encoding { .. }));
    let bom = format!("\u{FEFF}{g}");
    assert_eq!(read_document(&bom), Ok(two()));
    // Markup.
    let doctype = g.replacen(
        "<Document",
        "<!DOCTYPE Document [<!ENTITY x \"y\">]><Document",
        1,
    );
    assert!(matches!(
        err(doctype.as_bytes()),
        ReadError::Malformed { .. }
    ));
    let e = err(g.replacen("</EndToEndId>", "</EndToEnd>", 1).as_bytes());
    assert!(matches!(e, ReadError::Malformed { .. }), "{e}");
    assert!(path_of(&e).contains("CdtTrfTxInf[1]/PmtId"), "{e}");
    let e = err(g
        .replace("&amp;", "&nbsp;")
        .replace("郝桂", "郝&nbsp;桂")
        .as_bytes());
    assert!(matches!(e, ReadError::Malformed { .. }), "{e}");
    let e = err(format!("{g}<more/>").as_bytes());
    assert!(matches!(e, ReadError::Trailing { .. }), "{e}");
    assert_eq!(read_document(format!("{g}<!-- fine -->\n")), Ok(two()));
    let cut = &g[..g.len() - 40];
    let e = err(cut.as_bytes());
    assert!(
        matches!(e, ReadError::Truncated { .. } | ReadError::Malformed { .. }),
        "{e}"
    );
    let undeclared = g.replacen("<GrpHdr>", "<z:GrpHdr>", 1);
    assert!(matches!(
        err(undeclared.as_bytes()),
        ReadError::Malformed { .. }
    ));
    let e = err(format!("{}{}", "<a>".repeat(300), "</a>".repeat(300)).as_bytes());
    assert!(matches!(e, ReadError::WrongRoot { .. }), "{e}");
    let deep = g.replacen(
        "<GrpHdr>",
        &format!("<GrpHdr><X>{}{}</X>", "<Y>".repeat(300), "</Y>".repeat(300)),
        1,
    );
    assert!(matches!(err(deep.as_bytes()), ReadError::TooDeep { .. }));
    let big = vec![b' '; codecs::format::iso20022::MAX_BODY_BYTES + 1];
    assert!(matches!(err(&big), ReadError::TooLarge { .. }));
}

#[test]
fn errors_never_quote_the_content() {
    let g = good();
    for doc in [
        g.replace("<Nm>郝桂</Nm>", &format!("<Nm>{}</Nm>", "郝".repeat(141))),
        g.replace("220203196602074567", &"2".repeat(36)),
        g.replace("6217995505724754105", "6217995505724754105\u{1}"),
        g.replace("+86-14597919074", "+86-1459791907x"),
        g.replace(">2882.65<", ">2882.6512345<"),
    ] {
        let e = err(doc.as_bytes()).to_string();
        for secret in [
            "郝",
            "2222222222",
            "6217995505724754105",
            "1459791907",
            "2882",
        ] {
            assert!(!e.contains(secret), "{e}");
        }
    }
}

#[test]
fn after_an_error_the_reader_stays_failed() {
    let g = good().replace(">32614.96<", ">x<");
    let mut r = Pain001Reader::new(g.as_bytes()).expect("header reads");
    assert_eq!(r.next_transaction().map(|t| t.map(|t| t.seq)), Ok(Some(1)));
    let e = r.next_transaction().expect_err("bad amount");
    assert_eq!(r.next_transaction(), Err(e));
    assert!(r.next().is_some_and(|x| x.is_err()));
    assert!(r.next().is_none());
}

// ---- properties -----------------------------------------------------------------------------------

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[a-zA-Z0-9 &<>\"'/.:;=#张三李·户名𠀀\\-]{{1,{max}}}"
    ))
    .expect("regex")
}

fn digits(n: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9]{{{n}}}")).expect("regex")
}

fn datetime() -> impl Strategy<Value = String> {
    (
        2000u16..=2099,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"))
}

fn tx_strategy(max_fen: u64) -> impl Strategy<Value = Transaction> {
    (
        any::<u64>(),
        text(35),
        prop_oneof![Just(0), Just(max_fen), 0..=max_fen],
        digits(12),
        text(140),
        prop_oneof![Just(RecipientKind::Person), Just(RecipientKind::Unit)],
        text(35),
        proptest::string::string_regex("[0-9()+\\-]{1,30}").expect("regex"),
        text(34),
        prop_oneof![
            Just(AccountKind::Ssc),
            Just(AccountKind::Corporate),
            Just(AccountKind::Personal)
        ],
        prop_oneof![Just(String::new()), text(140)],
    )
        .prop_map(
            |(seq, e2e, fen, bank, name, kind, id, phone, account, akind, memo)| Transaction {
                seq,
                end_to_end_id: e2e,
                amount_fen: fen,
                account_bank_code: bank,
                name,
                recipient_kind: kind,
                id_no: id,
                phone,
                account_no: account,
                account_kind: akind,
                memo,
            },
        )
}

fn document_strategy() -> impl Strategy<Value = Document> {
    (
        text(35),
        datetime(),
        text(140),
        text(35),
        datetime(),
        text(140),
        text(34),
        digits(12),
        proptest::collection::vec(tx_strategy(MAX_AMOUNT_FEN / 8), 1..8),
    )
        .prop_map(
            |(msg_id, created, party, subsidy, day, payer, account, bank, txs)| Document {
                header: GroupHeader {
                    msg_id,
                    created,
                    nb_of_txs: txs.len() as u64,
                    ctrl_sum_fen: txs.iter().map(|t| t.amount_fen).sum(),
                    initiating_party: party,
                },
                payment: PaymentInfo {
                    subsidy_code: subsidy,
                    execution_date: day[..10].to_owned(),
                    payer_name: payer,
                    payer_account: account,
                    payer_bank_code: bank,
                },
                transactions: txs,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writer_then_reader_round_trips(d in document_strategy(), prefix in any::<bool>()) {
        let bytes = write_document(&d.header, &d.payment, &d.transactions).expect("valid values write");
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        prop_assert_eq!(read_document(&bytes), Ok(d.clone()));
        if prefix {
            prop_assert_eq!(read_document(prefixed(&text, "p")), Ok(d.clone()));
        }
        // And back: what the reader returned writes the same bytes.
        let again = read_document(&bytes).expect("read");
        prop_assert_eq!(again.write().expect("write"), bytes);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_document(&bytes);
    }

    #[test]
    fn damaged_documents_never_panic(
        cut in 0usize..6000,
        flips in proptest::collection::vec((0usize..6000, any::<u8>()), 0..8),
    ) {
        let mut doc = good().into_bytes();
        for (at, b) in flips {
            let n = doc.len();
            doc[at % n] = b;
        }
        doc.truncate(cut.max(1).min(doc.len()));
        let _ = read_document(&doc);
        if let Ok(s) = std::str::from_utf8(&doc) {
            let _ = read_document(prefixed(s, "p"));
        }
    }
}

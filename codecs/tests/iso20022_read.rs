//! The pain.002.001.10 reader: prefixes, skipped elements, times, states, errors, round trips, fuzz.
use codecs::format::iso20022::pain002::{
    GroupState, MAX_DEPTH, Pain002Reader, ReadError, Reason, ReportHeader, StatusReason,
    StatusReport, TimeStyle, TxState, TxStatus, read_document, write_report,
};
use codecs::format::iso20022::{BeijingTime, DateTimeError};
use proptest::prelude::*;

const NS: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10";

/// A final report with two transactions; `P` is replaced by the prefix (`p:` or nothing), `XMLNS` by
/// the namespace declaration, `@T1@`/`@T2@` by the two acceptance times.
const FINAL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<PDocument XMLNS>
 <PCstmrPmtStsRpt>
  <PGrpHdr><PMsgId>B-0001</PMsgId><PCreDtTm>2026-03-04T10:20:30+08:00</PCreDtTm></PGrpHdr>
  <POrgnlGrpInfAndSts>
   <POrgnlMsgId>GW-1</POrgnlMsgId><POrgnlMsgNmId>pain.001.001.09</POrgnlMsgNmId><PGrpSts>PART</PGrpSts>
  </POrgnlGrpInfAndSts>
  <POrgnlPmtInfAndSts>
   <POrgnlPmtInfId>GW-1</POrgnlPmtInfId>
   <PTxInfAndSts>
    <POrgnlInstrId>1</POrgnlInstrId><POrgnlEndToEndId>GW-1-1</POrgnlEndToEndId><PTxSts>ACCC</PTxSts>
    <PAccptncDtTm>@T1@</PAccptncDtTm><PAcctSvcrRef>R1</PAcctSvcrRef>
    <POrgnlTxRef><PCdtrAgt><PFinInstnId><PClrSysMmbId><PMmbId>102241000019</PMmbId></PClrSysMmbId></PFinInstnId></PCdtrAgt></POrgnlTxRef>
   </PTxInfAndSts>
   <PTxInfAndSts>
    <POrgnlInstrId>2</POrgnlInstrId><POrgnlEndToEndId>GW-1-2</POrgnlEndToEndId><PTxSts>RJCT</PTxSts>
    <PStsRsnInf><PRsn><PCd>AC01</PCd></PRsn></PStsRsnInf>
    <PAccptncDtTm>@T2@</PAccptncDtTm><PAcctSvcrRef>R2</PAcctSvcrRef>
   </PTxInfAndSts>
  </POrgnlPmtInfAndSts>
 </PCstmrPmtStsRpt>
</PDocument>
"#;

fn final_doc(prefix: &str, t1: &str, t2: &str) -> String {
    let xmlns = if prefix.is_empty() {
        format!("xmlns=\"{NS}\"")
    } else {
        format!("xmlns:{}=\"{NS}\"", prefix.trim_end_matches(':'))
    };
    FINAL
        .replace("XMLNS", &xmlns)
        .replace("<P", &format!("<{prefix}"))
        .replace("</P", &format!("</{prefix}"))
        .replace("@T1@", t1)
        .replace("@T2@", t2)
}

fn t(text: &str) -> BeijingTime {
    BeijingTime::parse_iso(text).expect("time")
}

fn expected_final() -> StatusReport {
    StatusReport {
        header: ReportHeader {
            msg_id: "B-0001".into(),
            created: t("2026-03-04T10:20:30"),
            original_msg_id: "GW-1".into(),
            original_msg_name: "pain.001.001.09".into(),
            group_status: Some("PART".into()),
            reasons: vec![],
        },
        transactions: vec![
            TxStatus {
                original_instr_id: Some("1".into()),
                original_end_to_end_id: Some("GW-1-1".into()),
                status: Some("ACCC".into()),
                reasons: vec![],
                acceptance_time: Some(t("2026-03-04T09:01:02")),
                account_servicer_ref: Some("R1".into()),
                creditor_agent: Some("102241000019".into()),
            },
            TxStatus {
                original_instr_id: Some("2".into()),
                original_end_to_end_id: Some("GW-1-2".into()),
                status: Some("RJCT".into()),
                reasons: vec![StatusReason {
                    reason: Some(Reason::Code("AC01".into())),
                    additional_info: vec![],
                }],
                acceptance_time: Some(t("2026-03-04T09:05:10")),
                account_servicer_ref: Some("R2".into()),
                creditor_agent: None,
            },
        ],
    }
}

#[test]
fn reads_any_prefix_and_the_default_namespace() {
    for prefix in ["p:", "", "ns2:", "Doc:"] {
        let doc = final_doc(prefix, "2026-03-04T09:01:02+08:00", "2026-03-04T09:05:10");
        assert_eq!(
            read_document(doc.as_bytes()),
            Ok(expected_final()),
            "prefix {prefix:?}"
        );
    }
}

#[test]
fn reads_times_with_and_without_offset() {
    for (t1, t2) in [
        ("2026-03-04T09:01:02+08:00", "2026-03-04T09:05:10+08:00"),
        ("2026-03-04T09:01:02", "2026-03-04T09:05:10"),
        ("2026-03-04T01:01:02Z", "2026-03-04T09:05:10.123456"),
        (" 2026-03-04T09:01:02+08:00\n", "2026-03-04T04:05:10+03:00"),
    ] {
        let doc = final_doc("p:", t1, t2);
        let r = read_document(doc.as_bytes()).expect("read");
        assert_eq!(r, expected_final(), "{t1} {t2}");
        assert_eq!(
            r.transactions[0].acceptance_time.map(|t| t.parts()),
            Some((2026, 3, 4, 9, 1, 2))
        );
    }
}

#[test]
fn skips_every_optional_element_it_does_not_use() {
    let extra = format!(
        r#"<Document xmlns="{NS}" xmlns:x="urn:example:other">
<x:Before/>
<CstmrPmtStsRpt>
 <GrpHdr><MsgId>B-0001</MsgId><CreDtTm>2026-03-04T10:20:30+08:00</CreDtTm>
  <InitgPty><Nm>Bank B</Nm><Id><OrgId><Othr><Id>X</Id></Othr></OrgId></Id></InitgPty>
  <DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>999999999999</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>
 </GrpHdr>
 <OrgnlGrpInfAndSts>
  <OrgnlMsgId>GW-1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>
  <OrgnlCreDtTm>2026-03-03T09:15:00</OrgnlCreDtTm><OrgnlNbOfTxs>2</OrgnlNbOfTxs><OrgnlCtrlSum>12.345</OrgnlCtrlSum>
  <GrpSts>PART</GrpSts>
  <NbOfTxsPerSts><DtldNbOfTxs>1</DtldNbOfTxs><DtldSts>ACCC</DtldSts></NbOfTxsPerSts>
 </OrgnlGrpInfAndSts>
 <OrgnlPmtInfAndSts>
  <OrgnlPmtInfId>GW-1</OrgnlPmtInfId><OrgnlNbOfTxs>2</OrgnlNbOfTxs><PmtInfSts>PART</PmtInfSts>
  <StsRsnInf><Rsn><Cd>XXXX</Cd></Rsn></StsRsnInf>
  <NbOfTxsPerSts><DtldNbOfTxs>1</DtldNbOfTxs><DtldSts>RJCT</DtldSts></NbOfTxsPerSts>
  <TxInfAndSts>
   <StsId>S1</StsId><OrgnlInstrId>1</OrgnlInstrId><OrgnlEndToEndId>GW-1-1</OrgnlEndToEndId>
   <OrgnlUETR>1b4e28ba-2fa1-41d2-883f-0016d3cca427</OrgnlUETR><TxSts>ACCC</TxSts>
   <ChrgsInf><Amt Ccy="CNY">1.00</Amt><Agt><FinInstnId><ClrSysMmbId><MmbId>111111111111</MmbId></ClrSysMmbId></FinInstnId></Agt></ChrgsInf>
   <TrckrData><ConfdDt><Dt>2026-03-04</Dt></ConfdDt><ConfdAmt Ccy="CNY">1.00</ConfdAmt>
    <TrckrRcrd><Agt><FinInstnId><ClrSysMmbId><MmbId>222222222222</MmbId></ClrSysMmbId></FinInstnId></Agt></TrckrRcrd></TrckrData>
   <AccptncDtTm>2026-03-04T09:01:02+08:00</AccptncDtTm><AcctSvcrRef>R1</AcctSvcrRef><ClrSysRef>C1</ClrSysRef>
   <OrgnlTxRef>
    <Amt><InstdAmt Ccy="CNY">1000.00</InstdAmt></Amt>
    <ReqdExctnDt><Dt>2026-03-03</Dt></ReqdExctnDt>
    <Dbtr><Agt><FinInstnId><ClrSysMmbId><MmbId>333333333333</MmbId></ClrSysMmbId></FinInstnId></Agt></Dbtr>
    <DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>444444444444</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>
    <CdtrAgt><FinInstnId><BICFI>ABCDCNBJ</BICFI><ClrSysMmbId><ClrSysId><Cd>CNAPS</Cd></ClrSysId><MmbId>102241000019</MmbId></ClrSysMmbId><Nm>支行</Nm></FinInstnId><BrnchId><Id>7</Id></BrnchId></CdtrAgt>
    <CdtrAgtAcct><Id><Othr><Id>1</Id></Othr></Id></CdtrAgtAcct>
    <Cdtr><Pty><Nm>郝桂</Nm></Pty></Cdtr>
   </OrgnlTxRef>
   <SplmtryData><Envlp><x:TxSts>RJCT</x:TxSts><TxSts xmlns="urn:example:other">RJCT</TxSts></Envlp></SplmtryData>
  </TxInfAndSts>
  <TxInfAndSts>
   <OrgnlInstrId>2</OrgnlInstrId><OrgnlEndToEndId>GW-1-2</OrgnlEndToEndId><TxSts>RJCT</TxSts>
   <StsRsnInf><Orgtr><Nm>开户行</Nm></Orgtr><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf>
   <AccptncDtTm>2026-03-04T09:05:10</AccptncDtTm><AcctSvcrRef>R2</AcctSvcrRef>
  </TxInfAndSts>
 </OrgnlPmtInfAndSts>
 <SplmtryData><PlcAndNm>x</PlcAndNm><Envlp><a:b xmlns:a="urn:a"><a:c/></a:b></Envlp></SplmtryData>
</CstmrPmtStsRpt>
<!-- trailing comment -->
</Document>
<!-- after the root --> <?pi ok?>
"#
    );
    let extra = extra.replacen("<x:Before/>\n", "", 1);
    assert_eq!(read_document(extra.as_bytes()), Ok(expected_final()));
}

#[test]
fn pending_has_no_transactions() {
    let doc = format!(
        "<p:Document xmlns:p=\"{NS}\"><p:CstmrPmtStsRpt><p:GrpHdr><p:MsgId>B</p:MsgId>\
         <p:CreDtTm>2026-03-04T10:00:00</p:CreDtTm></p:GrpHdr><p:OrgnlGrpInfAndSts>\
         <p:OrgnlMsgId>GW-1</p:OrgnlMsgId><p:OrgnlMsgNmId>pain.001.001.09</p:OrgnlMsgNmId>\
         <p:GrpSts>PDNG</p:GrpSts></p:OrgnlGrpInfAndSts></p:CstmrPmtStsRpt></p:Document>"
    );
    let mut r = Pain002Reader::new(doc.as_bytes()).expect("read");
    assert_eq!(r.header().state(), GroupState::Pending);
    assert_eq!(r.header().group_status.as_deref(), Some("PDNG"));
    assert_eq!(r.next_transaction(), Ok(None));
}

#[test]
fn reads_several_payment_blocks_and_empty_ones() {
    let g = good();
    let split = g.replacen(
        "</p:TxInfAndSts>",
        "</p:TxInfAndSts></p:OrgnlPmtInfAndSts><p:OrgnlPmtInfAndSts><p:OrgnlPmtInfId>X</p:OrgnlPmtInfId>",
        1,
    );
    assert_eq!(read_document(split.as_bytes()), read_document(g.as_bytes()));
    let empty = g.replace(
        "</p:OrgnlPmtInfAndSts>",
        "</p:OrgnlPmtInfAndSts><p:OrgnlPmtInfAndSts><p:OrgnlPmtInfId>Y</p:OrgnlPmtInfId></p:OrgnlPmtInfAndSts>",
    );
    let r = read_document(empty.as_bytes()).expect("read");
    assert_eq!(r.transactions.len(), 2);
    let mut reader = Pain002Reader::new(split.as_bytes()).expect("read");
    assert!(reader.next_transaction().expect("ok").is_some());
    let second = g.replacen("<p:TxSts>RJCT</p:TxSts>", "<p:TxSts/>", 1);
    let mut r2 = Pain002Reader::new(second.as_bytes()).expect("read");
    assert!(r2.next_transaction().expect("ok").is_some());
    assert!(matches!(
        r2.next_transaction(),
        Err(ReadError::Value { ref path, .. }) if path.ends_with("TxInfAndSts[2]/TxSts")
    ));
}

#[test]
fn states_as_bank_b_reads_them() {
    let doc = final_doc("", "2026-03-04T09:01:02", "2026-03-04T09:05:10")
        .replace(">ACCC<", ">ACSC<")
        .replace(">PART<", ">ACSC<");
    let r = read_document(doc.as_bytes()).expect("read");
    assert_eq!(r.header.state(), GroupState::Credited);
    assert_eq!(r.transactions[0].state(), TxState::Credited);
    assert_eq!(r.transactions[0].status.as_deref(), Some("ACSC"));
    assert_eq!(r.transactions[1].state(), TxState::Rejected);
    assert_eq!(r.transactions[1].reason_code(), Some("AC01"));
    let odd = doc.replace(">RJCT<", ">ACWC<");
    let r = read_document(odd.as_bytes()).expect("read");
    assert_eq!(r.transactions[1].state(), TxState::Unknown);
    for (g, s) in [
        ("ACTC", GroupState::Accepted),
        ("ACCC", GroupState::Credited),
        ("RJCT", GroupState::Rejected),
        ("XXXX", GroupState::Unknown),
    ] {
        let d = doc.replacen(">ACSC</GrpSts>", &format!(">{g}</GrpSts>"), 1);
        assert_eq!(read_document(d.as_bytes()).expect("read").header.state(), s);
    }
}

#[test]
fn reads_escapes_cdata_and_references() {
    let doc = final_doc("", "2026-03-04T09:01:02", "2026-03-04T09:05:10").replace(
        "<Cd>AC01</Cd></Rsn>",
        "<Cd>NARR</Cd></Rsn><AddtlInf>户名&amp;账号 &lt;不符&gt; &#x5F20;&#24352; <![CDATA[<raw> & ]]>end</AddtlInf>",
    );
    let r = read_document(doc.as_bytes()).expect("read");
    assert_eq!(
        r.transactions[1].reasons[0].additional_info,
        vec!["户名&账号 <不符> 张张 <raw> & end".to_owned()]
    );
}

#[test]
fn streams_ten_thousand_transactions() {
    let txs: Vec<TxStatus> = (1..=10_000u32)
        .map(|i| TxStatus {
            original_instr_id: Some(i.to_string()),
            original_end_to_end_id: Some(format!("GW-1-{i}")),
            status: Some(if i % 10 == 0 { "RJCT" } else { "ACCC" }.into()),
            ..TxStatus::default()
        })
        .collect();
    let mut header = ReportHeader::about("B", t("2026-03-04T10:00:00"), "GW-1");
    header.group_status = Some("PART".into());
    let doc = write_report(
        &StatusReport {
            header,
            transactions: txs,
        },
        TimeStyle::Offset,
    )
    .expect("write");
    let r = Pain002Reader::new(&doc).expect("read");
    let mut n = 0u32;
    let mut rejected = 0;
    for tx in r {
        let tx = tx.expect("tx");
        n += 1;
        assert_eq!(tx.original_instr_id, Some(n.to_string()));
        if tx.state() == TxState::Rejected {
            rejected += 1;
        }
    }
    assert_eq!((n, rejected), (10_000, 1_000));
}

// ---- errors ---------------------------------------------------------------------------------------

fn err(doc: &[u8]) -> ReadError {
    match Pain002Reader::new(doc) {
        Err(e) => e,
        Ok(mut r) => loop {
            match r.next_transaction() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("read without error"),
                Err(e) => break e,
            }
        },
    }
}

fn good() -> String {
    final_doc("p:", "2026-03-04T09:01:02", "2026-03-04T09:05:10")
}

#[test]
fn refuses_wrong_roots_and_namespaces() {
    let pain001 = r#"<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"><CstmrCdtTrfInitn/></Document>"#;
    assert!(matches!(
        err(pain001.as_bytes()),
        ReadError::WrongNamespace { ref path, ref found, .. }
            if path == "Document" && found == "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
    ));
    let older = good().replace("pain.002.001.10", "pain.002.001.03");
    assert!(matches!(
        err(older.as_bytes()),
        ReadError::WrongNamespace { .. }
    ));
    let no_ns = "<Document><CstmrPmtStsRpt/></Document>";
    assert!(matches!(
        err(no_ns.as_bytes()),
        ReadError::WrongNamespace { ref found, .. } if found.is_empty()
    ));
    let other_root = format!("<p:Foo xmlns:p=\"{NS}\"/>");
    assert!(matches!(
        err(other_root.as_bytes()),
        ReadError::WrongRoot { ref found, .. } if found == "Foo"
    ));
    let other_child = format!("<Document xmlns=\"{NS}\"><CstmrCdtTrfInitn/></Document>");
    assert!(matches!(
        err(other_child.as_bytes()),
        ReadError::WrongRoot { ref found, .. } if found == "Document/CstmrCdtTrfInitn"
    ));
    let child_ns = format!("<Document xmlns=\"{NS}\"><CstmrPmtStsRpt xmlns=\"urn:x\"/></Document>");
    assert!(matches!(
        err(child_ns.as_bytes()),
        ReadError::WrongNamespace { ref path, .. } if path == "Document/CstmrPmtStsRpt"
    ));
    let e = err(pain001.as_bytes()).to_string();
    assert!(e.contains("pain.002.001.10"), "{e}");
}

#[test]
fn refuses_malformed_xml_with_a_clear_error() {
    let g = good();
    let cases: Vec<(String, &str)> = vec![
        (g.replace("</p:TxSts>", "</p:TxStsX>"), "mismatched end tag"),
        (g[..g.len() / 2].to_owned(), "truncated"),
        (g.replace("</p:Document>", ""), "no end of root"),
        ("".to_owned(), "empty"),
        ("not xml at all".to_owned(), "text"),
        (
            g.replace("<p:MsgId>B-0001", "<p:MsgId>B&nbsp;0001"),
            "undeclared entity",
        ),
        (
            g.replace("<p:MsgId>B-0001", "<p:MsgId>B & 0001"),
            "dangling &",
        ),
        (
            g.replace("<p:MsgId>B-0001", "<p:MsgId>B&#0;0001"),
            "char ref 0",
        ),
        (
            g.replace("<p:MsgId>B-0001", "<p:MsgId>B&#1;0001"),
            "control char ref",
        ),
        (
            g.replacen(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"b\">]>",
                1,
            ),
            "doctype",
        ),
        (
            g.replace("<p:GrpHdr>", "<q:GrpHdr>")
                .replace("</p:GrpHdr>", "</q:GrpHdr>"),
            "unbound prefix",
        ),
        (g.clone() + "<p:Document/>", "second root"),
        (g.clone() + "trailing text", "trailing text"),
        (
            g.replace("<p:CstmrPmtStsRpt>", "<p:CstmrPmtStsRpt a=\"1\" a=\"2\">"),
            "duplicate attribute",
        ),
        (
            g.replace("<p:CstmrPmtStsRpt>", "<p:CstmrPmtStsRpt a=1>"),
            "unquoted attribute",
        ),
        (
            g.replace("<p:MsgId>B-0001</p:MsgId>", "<p:MsgId><![CDATA[x</p:MsgId>"),
            "unclosed cdata",
        ),
        (
            g.replace(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
                "<!-- c -->\n<?xml version=\"1.0\"?>",
            ),
            "late declaration",
        ),
    ];
    let second_root = format!("{g}<Document xmlns=\"{NS}\"/>");
    assert!(matches!(
        err(second_root.as_bytes()),
        ReadError::Trailing { .. }
    ));
    for (doc, what) in cases {
        let e = err(doc.as_bytes());
        assert!(
            matches!(
                e,
                ReadError::Malformed { .. }
                    | ReadError::Truncated { .. }
                    | ReadError::Trailing { .. }
                    | ReadError::Missing { .. }
                    | ReadError::Value { .. }
            ),
            "{what}: {e:?}"
        );
    }
}

#[test]
fn refuses_bodies_that_are_not_utf8() {
    let g = good();
    let gbk = g.replace("B-0001", "B-0001\u{5F20}");
    let (bytes, _, _) = encoding_rs::GBK.encode(&gbk);
    let offset = gbk.find('\u{5F20}').expect("found");
    assert_eq!(err(&bytes), ReadError::NotUtf8 { offset });
    let declared = g.replace("encoding=\"UTF-8\"", "encoding=\"GBK\"");
    assert!(matches!(
        err(declared.as_bytes()),
        ReadError::Encoding { .. }
    ));
    let bom = format!("\u{FEFF}{g}");
    assert!(read_document(bom.as_bytes()).is_ok());
    let bad = g.replace("<p:MsgId>B-0001", "<p:MsgId>B&x;0001");
    let (
        ReadError::Malformed { offset: plain, .. },
        ReadError::Malformed {
            offset: with_bom, ..
        },
    ) = (
        err(bad.as_bytes()),
        err(format!("\u{FEFF}{bad}").as_bytes()),
    )
    else {
        panic!("malformed expected");
    };
    assert_eq!(with_bom, plain + 3);
    let lower = g.replace("encoding=\"UTF-8\"", "encoding=\"utf-8\"");
    assert!(read_document(lower.as_bytes()).is_ok());
}

#[test]
fn errors_name_the_element_path() {
    let g = good();
    let no_hdr = g.replace(
        "<p:GrpHdr><p:MsgId>B-0001</p:MsgId><p:CreDtTm>2026-03-04T10:20:30+08:00</p:CreDtTm></p:GrpHdr>",
        "",
    );
    assert!(matches!(
        err(no_hdr.as_bytes()),
        ReadError::Missing { ref path, .. } if path == "Document/CstmrPmtStsRpt/GrpHdr"
    ));
    let no_orig = g.replace("<p:OrgnlMsgId>GW-1</p:OrgnlMsgId>", "");
    assert!(matches!(
        err(no_orig.as_bytes()),
        ReadError::Missing { ref path, .. } if path == "Document/CstmrPmtStsRpt/OrgnlGrpInfAndSts/OrgnlMsgId"
    ));
    let dup = g.replace(
        "<p:TxSts>RJCT</p:TxSts>",
        "<p:TxSts>RJCT</p:TxSts><p:TxSts>ACCC</p:TxSts>",
    );
    assert!(matches!(
        err(dup.as_bytes()),
        ReadError::Duplicate { ref path, .. }
            if path == "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts[2]/TxSts"
    ));
    let bad_time = g.replace("2026-03-04T09:05:10", "2026-03-04T09:05");
    assert!(matches!(
        err(bad_time.as_bytes()),
        ReadError::DateTime { ref path, source: DateTimeError::Shape { .. }, .. }
            if path == "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts[2]/AccptncDtTm"
    ));
    let empty = g.replace("<p:TxSts>ACCC</p:TxSts>", "<p:TxSts/>");
    assert!(matches!(
        err(empty.as_bytes()),
        ReadError::Value { ref path, problem: "empty", .. }
            if path == "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts[1]/TxSts"
    ));
    let nested = g.replace(
        "<p:TxSts>ACCC</p:TxSts>",
        "<p:TxSts><p:Cd>A</p:Cd></p:TxSts>",
    );
    assert!(matches!(err(nested.as_bytes()), ReadError::Value { .. }));
    let both = g.replace("<p:Cd>AC01</p:Cd>", "<p:Cd>AC01</p:Cd><p:Prtry>X</p:Prtry>");
    assert!(matches!(
        err(both.as_bytes()),
        ReadError::Duplicate { ref path, .. } if path.ends_with("TxInfAndSts[2]/StsRsnInf/Rsn/Prtry")
    ));
    let late_hdr = g.replace(
        "</p:OrgnlPmtInfAndSts>",
        "</p:OrgnlPmtInfAndSts><p:GrpHdr><p:MsgId>X</p:MsgId></p:GrpHdr>",
    );
    assert!(matches!(
        err(late_hdr.as_bytes()),
        ReadError::OutOfOrder { ref path, .. } if path == "Document/CstmrPmtStsRpt/GrpHdr"
    ));
    let long = g.replace(
        "<p:AcctSvcrRef>R1",
        &format!("<p:AcctSvcrRef>{}", "x".repeat(5000)),
    );
    assert!(matches!(err(long.as_bytes()), ReadError::Value { .. }));
}

#[test]
fn errors_never_quote_the_content() {
    let secret = "郝桂220203196602074567";
    let g = good();
    for doc in [
        g.replace(
            "<p:AcctSvcrRef>R1</p:AcctSvcrRef>",
            &format!(
                "<p:AcctSvcrRef>{secret}</p:AcctSvcrRef><p:AcctSvcrRef>{secret}</p:AcctSvcrRef>"
            ),
        ),
        g.replace("2026-03-04T09:05:10", secret),
        g.replace("<p:MsgId>B-0001", &format!("<p:MsgId>{secret}&bad;")),
        g.replace("</p:TxSts>", &format!("</p:{secret}>")),
    ] {
        let e = err(doc.as_bytes());
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("郝桂") && !shown.contains("220203"),
            "{shown}"
        );
    }
}

#[test]
fn deep_nesting_is_bounded() {
    let g = good();
    let bomb = g.replace(
        "<p:OrgnlPmtInfId>GW-1</p:OrgnlPmtInfId>",
        &format!(
            "{}{}",
            "<p:X>".repeat(MAX_DEPTH + 10),
            "</p:X>".repeat(MAX_DEPTH + 10)
        ),
    );
    assert!(matches!(
        err(bomb.as_bytes()),
        ReadError::TooDeep {
            limit: MAX_DEPTH,
            ..
        }
    ));
    let ok = g.replace(
        "<p:OrgnlPmtInfId>GW-1</p:OrgnlPmtInfId>",
        &format!("{}{}", "<p:X>".repeat(100), "</p:X>".repeat(100)),
    );
    assert!(read_document(ok.as_bytes()).is_ok());
}

#[test]
fn after_an_error_the_reader_stays_failed() {
    let g = good().replace("<p:TxSts>ACCC</p:TxSts>", "<p:TxSts/>");
    let mut r = Pain002Reader::new(g.as_bytes()).expect("header reads");
    let e = r.next_transaction().expect_err("bad tx");
    assert_eq!(r.next_transaction(), Err(e));
}

// ---- properties -----------------------------------------------------------------------------------

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!(
        "[a-zA-Z0-9 &<>\"'/.:;=#张三李·户名𠀀\\-]{{1,{max}}}"
    ))
    .expect("regex")
}

fn opt_text(max: usize) -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text(max))
}

fn time_strategy() -> impl Strategy<Value = BeijingTime> {
    (
        2000u16..=2099,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| {
            BeijingTime::new(y, mo, d, h, mi, s).unwrap_or_else(|| unreachable!("valid parts"))
        })
}

fn reason_strategy() -> impl Strategy<Value = StatusReason> {
    (
        proptest::option::of(prop_oneof![
            text(4).prop_map(Reason::Code),
            text(35).prop_map(Reason::Proprietary),
        ]),
        proptest::collection::vec(text(105), 0..3),
    )
        .prop_map(|(reason, additional_info)| StatusReason {
            reason,
            additional_info,
        })
}

fn tx_strategy() -> impl Strategy<Value = TxStatus> {
    (
        opt_text(35),
        opt_text(35),
        opt_text(4),
        proptest::collection::vec(reason_strategy(), 0..3),
        proptest::option::of(time_strategy()),
        opt_text(35),
        opt_text(35),
    )
        .prop_map(|(i, e, s, reasons, at, r, agent)| TxStatus {
            original_instr_id: i,
            original_end_to_end_id: e,
            status: s,
            reasons,
            acceptance_time: at,
            account_servicer_ref: r,
            creditor_agent: agent,
        })
}

fn report_strategy() -> impl Strategy<Value = StatusReport> {
    (
        text(35),
        time_strategy(),
        text(35),
        text(35),
        opt_text(4),
        proptest::collection::vec(reason_strategy(), 0..3),
        proptest::collection::vec(tx_strategy(), 0..8),
    )
        .prop_map(
            |(msg_id, created, orig, name, sts, reasons, transactions)| StatusReport {
                header: ReportHeader {
                    msg_id,
                    created,
                    original_msg_id: orig,
                    original_msg_name: name,
                    group_status: sts,
                    reasons,
                },
                transactions,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn writer_then_reader_round_trips(report in report_strategy(), local in any::<bool>()) {
        let style = if local { TimeStyle::Local } else { TimeStyle::Offset };
        let doc = write_report(&report, style).expect("valid values write");
        prop_assert_eq!(read_document(&doc), Ok(report));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_document(&bytes);
    }

    #[test]
    fn damaged_documents_never_panic(
        cut in 0usize..2000,
        flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8),
    ) {
        let mut doc = good().into_bytes();
        for (at, b) in flips {
            let n = doc.len();
            doc[at % n] = b;
        }
        doc.truncate(cut.max(1).min(doc.len()));
        let _ = read_document(&doc);
        if let Ok(s) = std::str::from_utf8(&doc) {
            let _ = read_document(s.replace("p:", "").as_bytes());
        }
    }
}

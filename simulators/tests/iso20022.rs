//! Bank B simulator over real loopback HTTPS with mutual TLS, driven with reqwest and the gateway's own
//! codecs (pain.001 writer, pain.002 reader).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bank_profiles::Profile;
use codecs::format::iso20022::pain001::{
    AccountKind, Document, GroupHeader, PaymentInfo, RecipientKind, Transaction,
};
use codecs::format::iso20022::pain002::{GroupState, Reason, StatusReport, TxState, read_document};
use simulators::faults::Faults;
use simulators::{Iso20022Sim, Iso20022SimConfig, Iso20022SimHandle, TestPki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BANK_B: &str = "103241000018";

fn profile() -> Profile {
    bank_profiles::builtin()
        .expect("builtin profiles")
        .remove(BANK_B)
        .expect("bank B")
}

fn xsd() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/xsd/pain.001.001.09.xsd")
}

fn config() -> Iso20022SimConfig {
    let mut cfg = Iso20022SimConfig::new(profile());
    cfg.processing = Duration::from_millis(300);
    cfg.fail_permille = 0;
    cfg
}

async fn start(cfg: Iso20022SimConfig) -> Iso20022SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Iso20022Sim::start(cfg, listener).await.expect("start")
}

fn client_with(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http1_only()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn client(sim: &Iso20022SimHandle) -> reqwest::Client {
    client_with(sim.pki.client_config().expect("client tls"))
}

fn tx(seq: u64, e2e: &str, fen: u64) -> Transaction {
    Transaction {
        seq,
        end_to_end_id: e2e.to_owned(),
        amount_fen: fen,
        account_bank_code: "102241000019".into(),
        name: "郝桂".into(),
        recipient_kind: RecipientKind::Person,
        id_no: format!("22020319660207{seq:04}"),
        phone: "14597919074".into(),
        account_no: format!("62179955057247{seq:05}"),
        account_kind: AccountKind::Ssc,
        memo: "8月".into(),
    }
}

fn document(msg_id: &str, txs: Vec<Transaction>) -> Document {
    Document {
        header: GroupHeader {
            msg_id: msg_id.to_owned(),
            created: "2026-03-03T09:15:00".into(),
            nb_of_txs: txs.len() as u64,
            ctrl_sum_fen: txs.iter().map(|t| t.amount_fen).sum(),
            initiating_party: "220623-NYNC".into(),
        },
        payment: PaymentInfo {
            subsidy_code: "NY001".into(),
            execution_date: "2026-03-03".into(),
            payer_name: "县财政局惠民惠农代发专户".into(),
            payer_account: "0711012345678901".into(),
            payer_bank_code: BANK_B.into(),
        },
        transactions: txs,
    }
}

/// A document of `n` transactions, `EndToEndId`s `<msg_id>-<seq>`.
fn batch(msg_id: &str, n: u64) -> Vec<u8> {
    let txs = (1..=n)
        .map(|i| tx(i, &format!("{msg_id}-{i:05}"), 10_000 + i))
        .collect();
    document(msg_id, txs).write().expect("write")
}

struct Reply {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn report(&self) -> StatusReport {
        read_document(&self.body).unwrap_or_else(|e| {
            panic!(
                "{e}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(400)])
            )
        })
    }

    /// The group reason's `AddtlInf` lines, joined.
    fn why(&self) -> String {
        let r = self.report();
        assert_eq!(r.header.group_status.as_deref(), Some("RJCT"));
        r.header
            .reasons
            .iter()
            .flat_map(|x| x.additional_info.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

async fn reply(r: reqwest::Result<reqwest::Response>) -> Reply {
    let resp = r.expect("an answer");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.bytes().await.expect("a whole body").to_vec();
    Reply {
        status,
        retry_after,
        body,
    }
}

async fn submit(c: &reqwest::Client, sim: &Iso20022SimHandle, body: Vec<u8>) -> Reply {
    reply(
        c.post(format!("{}/cbp/v1/payments", sim.base_url()))
            .header("content-type", "application/xml; charset=utf-8")
            .body(body)
            .send()
            .await,
    )
    .await
}

async fn status(c: &reqwest::Client, sim: &Iso20022SimHandle, msg_id: &str) -> Reply {
    reply(
        c.get(format!(
            "{}/cbp/v1/payments/{msg_id}/status?query_id=Q-1",
            sim.base_url()
        ))
        .send()
        .await,
    )
    .await
}

/// Asks the status until it is final.
async fn final_status(c: &reqwest::Client, sim: &Iso20022SimHandle, msg_id: &str) -> StatusReport {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = status(c, sim, msg_id).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let report = r.report();
        if report.header.state() != GroupState::Pending {
            return report;
        }
        assert!(Instant::now() < until, "still PDNG");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn submit_repeat_status_and_am05() {
    let sim = start(config()).await;
    let c = client(&sim);
    // Submit: 202 + ACTC.
    let first = submit(&c, &sim, batch("GW-B-1", 3)).await;
    assert_eq!(first.status, 202);
    let ack = first.report();
    assert_eq!(ack.header.state(), GroupState::Accepted);
    assert_eq!(ack.header.original_msg_id, "GW-B-1");
    assert!(ack.transactions.is_empty());
    // The same MsgId again, whatever the body: 200 and the first answer byte for byte.
    let again = submit(&c, &sim, batch("GW-B-1", 3)).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    let mut other_body = batch("GW-B-1", 1);
    other_body.truncate(other_body.len() - 20);
    let again = submit(&c, &sim, other_body).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    // Status: PDNG, without OrgnlPmtInfAndSts, until the processing time has passed.
    let pending = status(&c, &sim, "GW-B-1").await;
    assert_eq!(pending.status, 200);
    assert!(
        !String::from_utf8_lossy(&pending.body).contains("OrgnlPmtInfAndSts"),
        "PDNG with transactions"
    );
    assert_eq!(pending.report().header.state(), GroupState::Pending);
    let done = final_status(&c, &sim, "GW-B-1").await;
    assert_eq!(done.header.state(), GroupState::Credited);
    assert_eq!(done.transactions.len(), 3);
    for (i, t) in done.transactions.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(
            t.original_instr_id.as_deref(),
            Some(seq.to_string().as_str())
        );
        assert_eq!(
            t.original_end_to_end_id.as_deref(),
            Some(format!("GW-B-1-{seq:05}").as_str())
        );
        assert_eq!(t.state(), TxState::Credited);
        assert!(t.acceptance_time.is_some());
        assert!(
            t.account_servicer_ref
                .as_deref()
                .is_some_and(|r| r.len() <= 35)
        );
        assert_eq!(t.creditor_agent.as_deref(), Some("102241000019"));
    }
    let refs: std::collections::HashSet<_> = done
        .transactions
        .iter()
        .map(|t| t.account_servicer_ref.clone())
        .collect();
    assert_eq!(refs.len(), 3, "bank references are unique");
    // An EndToEndId already paid, under a new MsgId: not paid again, RJCT AM05.
    let txs = vec![tx(1, "GW-B-1-00002", 10_002), tx(2, "GW-B-2-00002", 500)];
    let second = submit(&c, &sim, document("GW-B-2", txs).write().expect("write")).await;
    assert_eq!(second.status, 202);
    let done = final_status(&c, &sim, "GW-B-2").await;
    assert_eq!(done.header.state(), GroupState::Partial);
    let dup = &done.transactions[0];
    assert_eq!(dup.state(), TxState::Rejected);
    assert_eq!(dup.reason_code(), Some("AM05"));
    assert!(
        dup.reasons[0].additional_info[0].contains("GW-B-1"),
        "{dup:?}"
    );
    assert_eq!(done.transactions[1].state(), TxState::Credited);
    // The books: nobody paid twice.
    assert_eq!(sim.ledger.accepted_batches(), 2);
    assert_eq!(sim.ledger.duplicate_submits(), 2);
    assert_eq!(sim.ledger.credited(), 4);
    assert_eq!(sim.ledger.max_payments_per_id(), 1);
    assert_eq!(sim.max_credits_per_end_to_end_id(), 1);
    assert_eq!(sim.stats.am05(), 1);
    assert_eq!((sim.stats.accepted(), sim.stats.repeats()), (2, 2));
    // Unknown MsgId: 404.
    assert_eq!(status(&c, &sim, "GW-NOPE").await.status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn failures_use_the_spec_codes_and_replay_with_the_seed() {
    let mut cfg = config();
    cfg.fail_permille = 1000;
    cfg.processing = Duration::from_millis(50);
    let sim = start(cfg.clone()).await;
    let c = client(&sim);
    assert_eq!(submit(&c, &sim, batch("GW-F-1", 40)).await.status, 202);
    let done = final_status(&c, &sim, "GW-F-1").await;
    assert_eq!(done.header.state(), GroupState::Rejected);
    let mut codes = std::collections::BTreeSet::new();
    for t in &done.transactions {
        assert_eq!(t.state(), TxState::Rejected);
        let code = t.reason_code().expect("a code").to_owned();
        assert!(
            ["AC01", "AC04", "AC06", "BE01", "AC14", "NARR"].contains(&code.as_str()),
            "{code}"
        );
        assert!(matches!(t.reasons[0].reason, Some(Reason::Code(_))));
        if code == "NARR" {
            assert!(!t.reasons[0].additional_info.is_empty());
        }
        codes.insert(code);
    }
    assert!(codes.len() >= 4, "{codes:?}");
    let results = sim.results("GW-F-1").expect("results");
    sim.shutdown().await;
    // Same seed, same results; another seed, others.
    let sim = start(cfg.clone()).await;
    let c = client(&sim);
    assert_eq!(submit(&c, &sim, batch("GW-F-1", 40)).await.status, 202);
    assert_eq!(sim.results("GW-F-1"), Some(results.clone()));
    sim.shutdown().await;
    cfg.seed = 77;
    let sim = start(cfg).await;
    let c = client(&sim);
    assert_eq!(submit(&c, &sim, batch("GW-F-1", 40)).await.status, 202);
    assert_ne!(sim.results("GW-F-1"), Some(results));
    sim.shutdown().await;
}

#[tokio::test]
async fn broken_documents_are_refused_with_400_saying_why() {
    let mut cfg = config();
    cfg.payer_accounts = ["0711012345678901".to_owned()].into_iter().collect();
    let sim = start(cfg).await;
    let c = client(&sim);
    let good = String::from_utf8(batch("GW-X-1", 2)).expect("utf-8");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "totals",
            good.replacen("<CtrlSum>200.03</CtrlSum>", "<CtrlSum>200.04</CtrlSum>", 2)
                .into_bytes(),
            "totals mismatch",
        ),
        (
            "count",
            good.replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>", 2)
                .into_bytes(),
            "totals mismatch",
        ),
        (
            "payer",
            good.replace("0711012345678901", "0711012345678999")
                .into_bytes(),
            "unknown payer account",
        ),
        (
            "fen",
            good.replacen(">100.01<", ">100.015<", 1).into_bytes(),
            "whole fen",
        ),
        (
            "currency",
            good.replacen("Ccy=\"CNY\"", "Ccy=\"USD\"", 1).into_bytes(),
            "not in CNY",
        ),
        (
            "two PmtInf",
            {
                let start = good.find("    <PmtInf>").expect("PmtInf");
                let end = good.find("  </CstmrCdtTrfInitn>").expect("end");
                let p = &good[start..end];
                good.replace(p, &format!("{p}{p}")).into_bytes()
            },
            "more than one PmtInf",
        ),
        (
            "too many",
            good.replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>10001</NbOfTxs>", 2)
                .into_bytes(),
            "10000",
        ),
        (
            "not UTF-8",
            {
                let mut b = good.clone().into_bytes();
                let at = good.find("郝桂").expect("name");
                b[at] = 0xFF;
                b
            },
            "not UTF-8",
        ),
        (
            "schema",
            good.replacen("</EndToEndId>", "</EndToEnd>", 1)
                .into_bytes(),
            "schema error",
        ),
        ("empty", Vec::new(), "schema error"),
    ];
    for (name, body, why) in cases {
        let r = submit(&c, &sim, body).await;
        assert_eq!(
            r.status,
            400,
            "{name}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let text = r.why();
        assert!(text.contains(why), "{name}: {text}");
        // The reasons never quote personal data.
        assert!(
            !text.contains("郝桂") && !text.contains("6217995505724"),
            "{name}: {text}"
        );
    }
    // A refused MsgId was never received: 404, and it can be sent again.
    assert_eq!(status(&c, &sim, "GW-X-1").await.status, 404);
    assert_eq!(submit(&c, &sim, good.into_bytes()).await.status, 202);
    assert_eq!(sim.ledger.accepted_batches(), 1);
    assert_eq!(sim.stats.rejected(), 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn xsd_check_refuses_what_the_schema_refuses() {
    // `.ci/run` installs libxml2-utils: without xmllint this test fails rather than skips.
    let xmllint = std::process::Command::new("xmllint")
        .arg("--version")
        .output();
    assert!(
        xmllint.is_ok_and(|o| o.status.success()),
        "xmllint is needed (apt-get install -y libxml2-utils)"
    );
    let good = String::from_utf8(batch("GW-S-1", 2)).expect("utf-8");
    // Readable by the structural checks, but out of the schema's order.
    let swapped = good.replace(
        "<PmtMtd>TRF</PmtMtd>\n      <BtchBookg>true</BtchBookg>",
        "<BtchBookg>true</BtchBookg>\n      <PmtMtd>TRF</PmtMtd>",
    );
    assert_ne!(swapped, good);
    let mut cfg = config();
    cfg.xsd = Some(xsd());
    let sim = start(cfg).await;
    let c = client(&sim);
    let r = submit(&c, &sim, swapped.clone().into_bytes()).await;
    assert_eq!(r.status, 400);
    let why = r.why();
    assert!(
        why.contains("schema error") && why.contains("line"),
        "{why}"
    );
    assert_eq!(sim.stats.xsd_invalid(), 1);
    assert_eq!(
        submit(&c, &sim, good.clone().into_bytes()).await.status,
        202
    );
    sim.shutdown().await;
    // Without the XSD check the structural checks alone let it through.
    let sim = start(config()).await;
    let c = client(&sim);
    assert_eq!(submit(&c, &sim, swapped.into_bytes()).await.status, 202);
    sim.shutdown().await;
    // A missing schema file is refused at start.
    let mut cfg = config();
    cfg.xsd = Some(PathBuf::from("/nonexistent/pain.001.001.09.xsd"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    assert!(Iso20022Sim::start(cfg, listener).await.is_err());
}

#[tokio::test]
async fn more_than_eight_in_flight_are_answered_503() {
    let mut cfg = config();
    cfg.faults.reply_delay = Duration::from_millis(800);
    let sim = start(cfg).await;
    let c = client(&sim);
    let mut tasks = Vec::new();
    for i in 0..14 {
        let c = c.clone();
        let url = format!(
            "{}/cbp/v1/payments/GW-C-{i}/status?query_id=Q",
            sim.base_url()
        );
        tasks.push(tokio::spawn(
            async move { reply(c.get(url).send().await).await },
        ));
    }
    let mut busy = 0;
    let mut answered = 0;
    for t in tasks {
        let r = t.await.expect("task");
        match r.status {
            503 => {
                busy += 1;
                assert_eq!(r.retry_after.as_deref(), Some("1"));
            }
            404 => answered += 1,
            other => panic!("status {other}"),
        }
    }
    assert!(answered <= 8, "{answered} answered at once");
    assert!(busy >= 6, "{busy} busy");
    // Counted as over the limit, not as the busy fault.
    assert_eq!(
        (sim.ledger.overloaded_replies(), sim.ledger.busy_replies()),
        (busy, 0)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_busy_drop_garble_duplicate_delay_and_late_results() {
    // Busy: 503 + Retry-After, nothing booked.
    let mut cfg = config();
    cfg.faults = Faults {
        busy_submit_permille: 1000,
        ..Faults::default()
    };
    cfg.retry_after = Duration::from_secs(3);
    let sim = start(cfg).await;
    let c = client(&sim);
    let r = submit(&c, &sim, batch("GW-Z-1", 1)).await;
    assert_eq!((r.status, r.retry_after.as_deref()), (503, Some("3")));
    assert_eq!(sim.ledger.accepted_batches(), 0);
    sim.shutdown().await;

    // Drop: processed (accepted and paid), then the connection is closed without an answer; the
    // repeat of the same MsgId is answered 200.
    let mut cfg = config();
    cfg.faults.drop_before_reply_permille = 1000;
    let sim = start(cfg).await;
    let c = client(&sim);
    let sent = c
        .post(format!("{}/cbp/v1/payments", sim.base_url()))
        .body(batch("GW-Z-2", 2))
        .send()
        .await;
    assert!(sent.is_err(), "a dropped answer must not arrive");
    assert_eq!(sim.ledger.dropped_replies(), 1);
    assert_eq!(sim.ledger.accepted_batches(), 1);
    sim.shutdown().await;

    // Cut: the head and half the body, then the connection closes.
    let mut cfg = config();
    cfg.faults.cut_reply_permille = 1000;
    let sim = start(cfg).await;
    let c = client(&sim);
    let sent = c
        .post(format!("{}/cbp/v1/payments", sim.base_url()))
        .body(batch("GW-Z-6", 2))
        .send()
        .await;
    let resp = sent.expect("the head arrives");
    assert_eq!(resp.status().as_u16(), 202);
    assert!(
        resp.bytes().await.is_err(),
        "a cut answer must not read as whole"
    );
    assert_eq!(sim.ledger.accepted_batches(), 1);
    sim.shutdown().await;

    // Garble: the body is not a pain.002.
    let mut cfg = config();
    cfg.faults.garble_reply_permille = 1000;
    let sim = start(cfg).await;
    let c = client(&sim);
    let r = submit(&c, &sim, batch("GW-Z-3", 1)).await;
    assert_eq!(r.status, 202);
    assert!(read_document(&r.body).is_err());
    assert_eq!(sim.ledger.garbled_replies(), 1);
    sim.shutdown().await;

    // Duplicate: the first answer comes as a repeat's (200, same body); delay before every answer.
    let mut cfg = config();
    cfg.faults.duplicate_reply_permille = 1000;
    cfg.faults.reply_delay = Duration::from_millis(300);
    let sim = start(cfg).await;
    let c = client(&sim);
    let t0 = Instant::now();
    let first = submit(&c, &sim, batch("GW-Z-4", 1)).await;
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(first.status, 200);
    assert_eq!(first.report().header.state(), GroupState::Accepted);
    let again = submit(&c, &sim, batch("GW-Z-4", 1)).await;
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(sim.ledger.accepted_batches(), 1);
    assert_eq!(sim.ledger.duplicated_replies(), 1);
    sim.shutdown().await;

    // Late results: still PDNG after the processing time.
    let mut cfg = config();
    cfg.processing = Duration::from_millis(50);
    cfg.late_result = Duration::from_millis(700);
    let sim = start(cfg).await;
    let c = client(&sim);
    assert_eq!(submit(&c, &sim, batch("GW-Z-5", 1)).await.status, 202);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        status(&c, &sim, "GW-Z-5").await.report().header.state(),
        GroupState::Pending
    );
    let done = final_status(&c, &sim, "GW-Z-5").await;
    assert_eq!(done.header.state(), GroupState::Credited);
    sim.shutdown().await;
}

#[tokio::test]
async fn bodies_over_32_mib_are_refused_with_413() {
    let sim = start(config()).await;
    let c = client(&sim);
    let big = vec![b' '; 32 * 1024 * 1024 + 1];
    let sent = c
        .post(format!("{}/cbp/v1/payments", sim.base_url()))
        .body(big)
        .send()
        .await;
    // The bank answers before reading the body and closes: the client sees the 413 or a reset.
    if let Ok(resp) = sent {
        assert_eq!(resp.status().as_u16(), 413);
    }
    assert_eq!(sim.stats.too_large(), 1);
    assert_eq!(sim.ledger.accepted_batches(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn only_clients_of_the_ca_get_in() {
    let sim = start(config()).await;
    let url = format!(
        "{}/cbp/v1/payments/GW-T-1/status?query_id=Q",
        sim.base_url()
    );
    // The right client works (404: unknown MsgId).
    assert_eq!(reply(client(&sim).get(&url).send().await).await.status, 404);
    let other = TestPki::generate("unrelated CA").expect("other pki");
    // No client certificate.
    let anonymous = client_with(sim.pki.client_config_without_certificate().expect("tls"));
    assert!(anonymous.get(&url).send().await.is_err());
    // A client certificate of another CA.
    let stranger = client_with(
        sim.pki
            .client_config_with_certificate_of(&other)
            .expect("tls"),
    );
    assert!(stranger.get(&url).send().await.is_err());
    // A client that trusts another CA does not accept the bank's server certificate.
    let wrong_roots = client_with(other.client_config().expect("tls"));
    assert!(wrong_roots.get(&url).send().await.is_err());
    // Plain HTTP is refused.
    let plain = reqwest::Client::builder()
        .use_preconfigured_tls(sim.pki.client_config().expect("tls"))
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let http_url = format!(
        "http://{}/cbp/v1/payments/GW-T-1/status?query_id=Q",
        sim.addr
    );
    assert!(plain.get(&http_url).send().await.is_err());
    let mut raw = TcpStream::connect(sim.addr).await.expect("connect");
    raw.write_all(b"GET /cbp/v1/payments/GW-T-1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut buf)).await;
    assert!(!buf.starts_with(b"HTTP/"), "answered plain HTTP");
    assert!(
        sim.stats.handshake_failures() >= 3,
        "{}",
        sim.stats.handshake_failures()
    );
    // The PKI as files, for a gateway configuration.
    let dir = std::env::temp_dir().join(format!("sim-b-pki-{}", std::process::id()));
    let files = sim.pki.write_to(&dir).expect("write pki");
    assert!(
        std::fs::read_to_string(&files.ca)
            .expect("ca")
            .contains("BEGIN CERTIFICATE")
    );
    let loaded = TestPki::load(&dir).expect("load");
    let again = client_with(loaded.client_config().expect("tls"));
    assert_eq!(reply(again.get(&url).send().await).await.status, 404);
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_given_pki_and_the_profile_paths_are_used() {
    let pki = TestPki::generate("given CA").expect("pki");
    let mut cfg = config();
    cfg.pki = Some(pki.clone());
    let sim = start(cfg).await;
    assert_eq!(sim.pki.ca_pem(), pki.ca_pem());
    let c = client_with(pki.client_config().expect("tls"));
    // Paths other than the profile's, and wrong methods.
    let base = sim.base_url();
    assert_eq!(
        reply(c.get(format!("{base}/other")).send().await)
            .await
            .status,
        404
    );
    assert_eq!(
        reply(c.get(format!("{base}/cbp/v1/payments")).send().await)
            .await
            .status,
        405
    );
    assert_eq!(
        reply(
            c.post(format!("{base}/cbp/v1/payments/X/status"))
                .send()
                .await
        )
        .await
        .status,
        405
    );
    let shared = Arc::clone(&sim.ledger);
    sim.shutdown().await;
    assert_eq!(shared.accepted_batches(), 0);
}

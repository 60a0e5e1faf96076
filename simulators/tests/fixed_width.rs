//! Bank A simulator over real loopback sockets, driven with the gateway's own codecs.
use std::collections::HashSet;
use std::time::Duration;

use bank_profiles::{DurationText, Profile};
use bytes::{Bytes, BytesMut};
use codecs::format::fixed_width::messages::{
    Layouts, Query, QueryReply, Submit, SubmitDetail, SubmitHeader, SubmitReply, Trailer,
};
use codecs::framing::AsciiLenCodec;
use futures::{SinkExt, StreamExt};
use simulators::faults::Faults;
use simulators::ledger::ItemOutcome;
use simulators::{FixedWidthSim, FixedWidthSimConfig, SimHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

type Conn = Framed<TcpStream, AsciiLenCodec>;

const WAIT: Duration = Duration::from_secs(5);

fn profile() -> Profile {
    bank_profiles::builtin()
        .expect("builtin profiles")
        .remove("402241000015")
        .expect("bank A")
}

fn layouts() -> Layouts {
    profile()
        .fixed_width
        .expect("fixed width")
        .messages()
        .expect("layouts")
}

fn config() -> FixedWidthSimConfig {
    let mut cfg = FixedWidthSimConfig::new(profile());
    cfg.processing = Duration::from_millis(300);
    cfg
}

async fn start(cfg: FixedWidthSimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    FixedWidthSim::start(cfg, listener).expect("start")
}

async fn connect(sim: &SimHandle) -> Conn {
    let stream = TcpStream::connect(sim.addr).await.expect("connect");
    Framed::new(stream, AsciiLenCodec::new(8, 16 * 1024 * 1024))
}

/// Sends `body` and reads one reply; `None` when the bank closed the connection without one.
async fn call(conn: &mut Conn, body: Vec<u8>) -> Option<BytesMut> {
    // The bank may already have closed: a failed send then shows as a closed connection.
    if conn.send(Bytes::from(body)).await.is_err() {
        return None;
    }
    read(conn).await
}

async fn read(conn: &mut Conn) -> Option<BytesMut> {
    match tokio::time::timeout(WAIT, conn.next())
        .await
        .expect("the bank neither replied nor closed")
    {
        Some(Ok(frame)) => Some(frame),
        Some(Err(_)) | None => None,
    }
}

fn submit(batch_no: &str, n: u64) -> Submit {
    let details: Vec<SubmitDetail> = (1..=n)
        .map(|seq| SubmitDetail {
            seq: seq * 10,
            account_no: format!("6217000010{seq:08}"),
            account_name: "张三".into(),
            id_type: "1".into(),
            id_no: format!("11010119900101{seq:04}"),
            amount: 1000 + seq,
            account_kind: "S".into(),
            account_bank_code: "402241000015".into(),
            phone: "13800000000".into(),
            memo: "耕地地力保护补贴".into(),
        })
        .collect();
    let total: u64 = details.iter().map(|d| d.amount).sum();
    Submit {
        header: SubmitHeader {
            batch_no: batch_no.into(),
            payer_account: "402241000015000001".into(),
            payer_name: "某县财政局".into(),
            subsidy_code: "GDBT".into(),
            item_count: n,
            total_amount: total,
            submit_date: "20250101".into(),
            submit_time: "090000".into(),
            region_code: "220100".into(),
        },
        details,
        trailer: Trailer {
            item_count: n,
            total_amount: total,
        },
    }
}

async fn send_submit(conn: &mut Conn, s: &Submit) -> SubmitReply {
    let body = layouts().encode_submit(s).expect("encode submit");
    let reply = call(conn, body).await.expect("a submit reply");
    layouts()
        .decode_submit_reply(&reply)
        .expect("decode submit reply")
}

async fn send_query(conn: &mut Conn, batch_no: &str) -> QueryReply {
    let q = Query {
        batch_no: batch_no.into(),
        query_id: "Q-1".into(),
        query_date: "20250101".into(),
        query_time: "090500".into(),
    };
    let reply = call(conn, layouts().encode_query(&q).expect("encode query"))
        .await
        .expect("a query reply");
    layouts()
        .decode_query_reply(&reply, "F")
        .expect("decode query reply")
}

async fn query_until_final(conn: &mut Conn, batch_no: &str) -> QueryReply {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = send_query(conn, batch_no).await;
        if r.header.state == "F" {
            return r;
        }
        assert_eq!(r.header.state, "P");
        assert!(
            tokio::time::Instant::now() < deadline,
            "results never became final"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn submit_then_query_until_final() {
    let mut cfg = config();
    cfg.fail_permille = 300;
    let sim = start(cfg.clone()).await;
    let mut conn = connect(&sim).await;
    let s = submit("B20250101000001", 40);

    let r = send_submit(&mut conn, &s).await;
    assert_eq!(
        (r.ret_code.as_str(), r.batch_no.as_str()),
        ("0000", "B20250101000001")
    );
    assert!(
        !r.bank_batch_id.is_empty() && r.bank_batch_id.len() <= 20,
        "{}",
        r.bank_batch_id
    );
    assert!(
        r.accept_date.len() == 8
            && r.accept_date.bytes().all(|b| b.is_ascii_digit())
            && r.accept_date != "00000000"
    );

    let p = send_query(&mut conn, "B20250101000001").await;
    assert_eq!(
        (p.header.ret_code.as_str(), p.header.state.as_str()),
        ("0000", "P")
    );
    assert_eq!(
        (
            p.header.success_count,
            p.header.fail_count,
            p.header.success_amount
        ),
        (0, 0, 0)
    );
    assert_eq!(p.header.query_id, "Q-1");
    assert!(p.details.is_empty() && p.trailer.is_none());

    let f = query_until_final(&mut conn, "B20250101000001").await;
    assert_eq!(f.details.len(), 40);
    let total: u64 = s.details.iter().map(|d| d.amount).sum();
    assert_eq!(
        f.trailer,
        Some(Trailer {
            item_count: 40,
            total_amount: total
        })
    );
    let h = &f.header;
    assert_eq!(h.success_count + h.fail_count, 40);
    assert_eq!(h.success_amount + h.fail_amount, total);
    assert!(h.fail_count > 0 && h.success_count > 0, "{h:?}");
    let mut txns = HashSet::new();
    for (d, sent) in f.details.iter().zip(&s.details) {
        assert_eq!(
            (d.seq, d.amount, d.account_no.as_str()),
            (sent.seq, sent.amount, sent.account_no.as_str())
        );
        assert_eq!(d.account_bank_code, sent.account_bank_code);
        assert_eq!((d.confirm_date.len(), d.confirm_time.len()), (8, 6));
        assert!(txns.insert(d.bank_txn_no.clone()), "bank_txn_no repeated");
        match d.result.as_str() {
            "S" => assert!(d.fail_code.is_empty() && d.fail_reason.is_empty()),
            "F" => {
                assert!(cfg.fail_codes.contains(&d.fail_code), "{}", d.fail_code);
                assert!(!d.fail_reason.is_empty());
            }
            other => panic!("result {other}"),
        }
    }
    // The books agree with the reply.
    let b = sim.ledger.batch("B20250101000001").expect("booked");
    assert_eq!(
        (b.items, b.credited as u64, b.failed as u64),
        (40, h.success_count, h.fail_count)
    );
    assert_eq!(
        (b.credited_amount, b.failed_amount, b.bank_batch_id.as_str()),
        (h.success_amount, h.fail_amount, r.bank_batch_id.as_str())
    );
    assert_eq!(
        (sim.ledger.items_paid(), sim.ledger.max_payments_per_id()),
        (40, 1)
    );

    // Another bank with the same seed decides the same results for the same batch.
    let again = start(cfg).await;
    let mut conn2 = connect(&again).await;
    assert_eq!(send_submit(&mut conn2, &s).await.ret_code, "0000");
    let f2 = query_until_final(&mut conn2, "B20250101000001").await;
    let outcome = |q: &QueryReply| {
        q.details
            .iter()
            .map(|d| (d.result.clone(), d.fail_code.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&f), outcome(&f2));
    sim.shutdown().await;
    again.shutdown().await;
}

#[tokio::test]
async fn late_result_keeps_the_batch_processing() {
    let mut cfg = config();
    cfg.processing = Duration::from_millis(50);
    cfg.late_result = Duration::from_millis(600);
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    assert_eq!(
        send_submit(&mut conn, &submit("LATE1", 3)).await.ret_code,
        "0000"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(send_query(&mut conn, "LATE1").await.header.state, "P");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(send_query(&mut conn, "LATE1").await.header.state, "F");
    sim.shutdown().await;
}

#[tokio::test]
async fn duplicate_batch_no_repeats_the_original_and_pays_nothing() {
    let sim = start(config()).await;
    let mut conn = connect(&sim).await;
    let s = submit("DUP1", 5);
    let first = send_submit(&mut conn, &s).await;
    assert_eq!(first.ret_code, "0000");

    let again = send_submit(&mut conn, &s).await;
    assert_eq!(again.ret_code, "1003");
    assert_eq!(
        (again.bank_batch_id.as_str(), again.accept_date.as_str()),
        (first.bank_batch_id.as_str(), first.accept_date.as_str())
    );

    // 1003 is checked before 1002: a resubmission with other totals is still a duplicate.
    let mut other = s.clone();
    other.trailer.total_amount += 1;
    let mut conn2 = connect(&sim).await;
    assert_eq!(send_submit(&mut conn2, &other).await.ret_code, "1003");

    let l = &sim.ledger;
    assert_eq!(
        (
            l.accepted_batches(),
            l.duplicate_submits(),
            l.submits_seen()
        ),
        (1, 2, 3)
    );
    assert_eq!((l.items_paid(), l.max_payments_per_id()), (5, 1));
    assert_eq!(l.paid_ids().len(), 5);

    // The same people paid again under a new batch_no are visible in the books.
    assert_eq!(
        send_submit(&mut conn, &submit("DUP2", 5)).await.ret_code,
        "0000"
    );
    assert_eq!(l.max_items_per_id(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn totals_mismatch_is_1002_and_books_nothing() {
    let sim = start(config()).await;
    let mut conn = connect(&sim).await;
    let good = submit("TOT1", 4);

    let mut bad_header_amount = good.clone();
    bad_header_amount.header.total_amount += 1;
    let mut bad_trailer_count = good.clone();
    bad_trailer_count.trailer.item_count = 5;
    // The header announcing more details than sent is a totals mismatch, not a format error.
    let mut bad_header_count = good.clone();
    bad_header_count.header.item_count = 3;
    for s in [bad_header_amount, bad_trailer_count, bad_header_count] {
        let r = send_submit(&mut conn, &s).await;
        assert_eq!(r.ret_code, "1002");
        assert_eq!(
            (r.bank_batch_id.as_str(), r.accept_date.as_str()),
            ("", "00000000")
        );
    }
    assert_eq!(sim.ledger.accepted_batches(), 0);
    // Never accepted, so the corrected batch is not a duplicate.
    assert_eq!(send_submit(&mut conn, &good).await.ret_code, "0000");
    sim.shutdown().await;
}

#[tokio::test]
async fn format_errors_are_1001_and_payer_errors_1004() {
    let sim = start(config()).await;
    let mut conn = connect(&sim).await;
    let l = layouts();
    let unit = l.unit();

    let mut zero = submit("FMT1", 3);
    zero.details[1].amount = 0;
    zero.header.total_amount -= 1002;
    zero.trailer.total_amount -= 1002;
    assert_eq!(send_submit(&mut conn, &zero).await.ret_code, "1001");

    let mut not_rising = submit("FMT2", 3);
    not_rising.details[2].seq = not_rising.details[1].seq;
    assert_eq!(send_submit(&mut conn, &not_rising).await.ret_code, "1001");

    // A non-digit in the first detail's amount (offset 120).
    let mut body = l.encode_submit(&submit("FMT3", 2)).expect("encode");
    body[unit + 125] = b'x';
    let r = l
        .decode_submit_reply(&call(&mut conn, body).await.expect("reply"))
        .expect("decode");
    assert_eq!((r.ret_code.as_str(), r.batch_no.as_str()), ("1001", "FMT3"));

    // Half a double-byte character at the end of account_name (bytes 41..101).
    let mut body = l.encode_submit(&submit("FMT4", 2)).expect("encode");
    body[unit + 100] = 0xD5;
    let r = l
        .decode_submit_reply(&call(&mut conn, body).await.expect("reply"))
        .expect("decode");
    assert_eq!(r.ret_code, "1001");

    // Not GBK in the header's own batch_no: still answered, the batch_no echoed as far as it reads.
    let mut body = l.encode_submit(&submit("FMT5", 2)).expect("encode");
    body[5 + 4] = 0x80;
    let r = l
        .decode_submit_reply(&call(&mut conn, body).await.expect("reply"))
        .expect("decode");
    assert_eq!((r.ret_code.as_str(), r.batch_no.as_str()), ("1001", ""));

    let mut no_payer = submit("PAY1", 2);
    no_payer.header.payer_account = String::new();
    let r = send_submit(&mut conn, &no_payer).await;
    assert_eq!(
        (r.ret_code.as_str(), r.bank_batch_id.as_str()),
        ("1004", "")
    );

    // 1001 comes before 1003: a malformed resubmission of an accepted batch is a format error.
    assert_eq!(
        send_submit(&mut conn, &submit("OK1", 2)).await.ret_code,
        "0000"
    );
    let mut bad_again = submit("OK1", 2);
    bad_again.details[0].seq = 99;
    assert_eq!(send_submit(&mut conn, &bad_again).await.ret_code, "1001");
    assert_eq!(
        (
            sim.ledger.accepted_batches(),
            sim.ledger.duplicate_submits()
        ),
        (1, 0)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_batch_query_is_2001_with_blank_state() {
    let sim = start(config()).await;
    let mut conn = connect(&sim).await;
    let r = send_query(&mut conn, "NOPE").await;
    assert_eq!(
        (
            r.header.ret_code.as_str(),
            r.header.state.as_str(),
            r.header.batch_no.as_str()
        ),
        ("2001", "", "NOPE")
    );
    assert_eq!((r.header.success_count, r.header.fail_count), (0, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn echo_is_answered_and_keeps_the_connection() {
    let sim = start(config()).await;
    let mut conn = connect(&sim).await;
    let l = layouts();
    for _ in 0..3 {
        let reply = call(&mut conn, l.encode_echo("9001").expect("echo"))
            .await
            .expect("echo reply");
        assert_eq!(l.decode_echo(&reply).expect("decode"), "9002");
    }
    // The bank never takes a 9002.
    assert!(
        call(&mut conn, l.encode_echo("9002").expect("echo"))
            .await
            .is_none()
    );
    assert_eq!(sim.ledger.echoes_seen(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn fifth_connection_is_refused() {
    let sim = start(config()).await;
    let l = layouts();
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut c = connect(&sim).await;
        assert!(
            call(&mut c, l.encode_echo("9001").expect("echo"))
                .await
                .is_some()
        );
        open.push(c);
    }
    let mut fifth = connect(&sim).await;
    assert!(
        call(&mut fifth, l.encode_echo("9001").expect("echo"))
            .await
            .is_none()
    );
    assert_eq!(sim.ledger.refused_connections(), 1);
    // Closing one makes room again.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut c = connect(&sim).await;
        if call(&mut c, l.encode_echo("9001").expect("echo"))
            .await
            .is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no room after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unreadable_bodies_close_without_reply() {
    let sim = start(config()).await;
    let l = layouts();
    let echo = l.encode_echo("9001").expect("echo");
    let mut no_crlf = echo.clone();
    no_crlf[200] = b' ';
    let mut unknown_type = echo.clone();
    unknown_type[0] = b'X';
    let mut query_bad_date = l
        .encode_query(&Query {
            batch_no: "B".into(),
            query_id: "q".into(),
            query_date: "20250101".into(),
            query_time: "000000".into(),
        })
        .expect("query");
    query_bad_date[46] = b'-';
    let mut submit_without_trailer = l.encode_submit(&submit("NT1", 2)).expect("submit");
    submit_without_trailer.truncate(3 * l.unit());
    let bodies: Vec<Vec<u8>> = vec![
        b"garbage".to_vec(),
        Vec::new(),
        echo[..200].to_vec(),
        no_crlf,
        unknown_type,
        query_bad_date,
        submit_without_trailer,
        [echo.clone(), echo.clone()].concat(),
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let mut conn = connect(&sim).await;
        assert!(
            call(&mut conn, body).await.is_none(),
            "body {i} was answered"
        );
    }
    // A length header that is not digits.
    let mut raw = TcpStream::connect(sim.addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut raw, b"0000x202")
        .await
        .expect("write");
    let mut conn = Framed::new(raw, AsciiLenCodec::new(8, 16 * 1024 * 1024));
    assert!(read(&mut conn).await.is_none());
    assert_eq!(sim.ledger.accepted_batches(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn busy_faults_follow_the_seed() {
    async fn codes(seed: u64) -> (Vec<String>, usize) {
        let mut cfg = config();
        cfg.seed = seed;
        cfg.faults = Faults {
            busy_submit_permille: 500,
            busy_query_permille: 500,
            ..Faults::default()
        };
        let sim = start(cfg).await;
        let mut conn = connect(&sim).await;
        let mut out = Vec::new();
        for i in 0..16 {
            out.push(
                send_submit(&mut conn, &submit(&format!("BUSY{i}"), 2))
                    .await
                    .ret_code,
            );
        }
        for i in 0..8 {
            out.push(
                send_query(&mut conn, &format!("BUSY{i}"))
                    .await
                    .header
                    .ret_code,
            );
        }
        let accepted = sim.ledger.accepted_batches();
        sim.shutdown().await;
        (out, accepted)
    }
    let (a, accepted) = codes(42).await;
    let (b, _) = codes(42).await;
    assert_eq!(a, b, "the same seed must give the same answers");
    assert!(
        a.iter().any(|c| c == "9999") && a.iter().any(|c| c == "0000"),
        "{a:?}"
    );
    assert_eq!(accepted, a[..16].iter().filter(|c| *c == "0000").count());
    let (c, _) = codes(43).await;
    assert_ne!(a, c);

    // Always busy: nothing is accepted, every submit is seen, a busy reply carries no id.
    let mut cfg = config();
    cfg.faults.busy_submit_permille = 1000;
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    for _ in 0..3 {
        let r = send_submit(&mut conn, &submit("ALWAYS", 1)).await;
        assert_eq!(
            (
                r.ret_code.as_str(),
                r.bank_batch_id.as_str(),
                r.accept_date.as_str()
            ),
            ("9999", "", "00000000")
        );
    }
    assert_eq!(
        (
            sim.ledger.submits_seen(),
            sim.ledger.busy_replies(),
            sim.ledger.accepted_batches()
        ),
        (3, 3, 0)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_reply_still_pays_once_and_the_retry_is_a_duplicate() {
    let mut cfg = config();
    cfg.faults.drop_before_reply_permille = 1000;
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    let s = submit("DROP1", 3);
    assert!(
        call(&mut conn, layouts().encode_submit(&s).expect("encode"))
            .await
            .is_none()
    );
    assert!(
        call(
            &mut connect(&sim).await,
            layouts().encode_submit(&s).expect("encode")
        )
        .await
        .is_none()
    );
    assert_eq!(
        (
            sim.ledger.accepted_batches(),
            sim.ledger.duplicate_submits(),
            sim.ledger.items_paid()
        ),
        (1, 1, 3)
    );
    assert_eq!(sim.ledger.dropped_replies(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn garbled_split_duplicated_and_delayed_replies() {
    let l = layouts();
    // Garbled: the reply never reads as a valid echo.
    let mut cfg = config();
    cfg.faults.garble_reply_permille = 1000;
    let sim = start(cfg).await;
    for _ in 0..6 {
        let mut conn = connect(&sim).await;
        if let Some(reply) = call(&mut conn, l.encode_echo("9001").expect("echo")).await {
            assert!(l.decode_echo(&reply).is_err(), "a garbled reply decoded");
        }
    }
    assert_eq!(sim.ledger.garbled_replies(), 6);
    sim.shutdown().await;

    // Split, duplicated and delayed: the frames still read, twice each, after the delay.
    let mut cfg = config();
    cfg.faults = Faults {
        split_writes: true,
        duplicate_reply_permille: 1000,
        reply_delay: Duration::from_millis(100),
        ..Faults::default()
    };
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    let started = tokio::time::Instant::now();
    let first = call(
        &mut conn,
        l.encode_submit(&submit("SPLIT1", 30)).expect("encode"),
    )
    .await
    .expect("reply");
    assert!(started.elapsed() >= Duration::from_millis(100));
    let second = read(&mut conn).await.expect("the duplicate");
    assert_eq!(first, second);
    assert_eq!(
        l.decode_submit_reply(&first).expect("decode").ret_code,
        "0000"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let mut cfg = config();
    let mut p = profile();
    p.timers.idle_timeout = DurationText(Duration::from_millis(200));
    cfg.profile = p;
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    assert!(
        call(&mut conn, layouts().encode_echo("9001").expect("echo"))
            .await
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(read(&mut conn).await.is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_listening() {
    let sim = start(config()).await;
    let addr = sim.addr;
    let mut conn = connect(&sim).await;
    assert!(
        call(&mut conn, layouts().encode_echo("9001").expect("echo"))
            .await
            .is_some()
    );
    sim.shutdown().await;
    assert!(read(&mut conn).await.is_none());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn ledger_items_match_the_results() {
    let mut cfg = config();
    cfg.fail_permille = 500;
    cfg.processing = Duration::ZERO;
    let sim = start(cfg).await;
    let mut conn = connect(&sim).await;
    assert_eq!(
        send_submit(&mut conn, &submit("LED1", 10)).await.ret_code,
        "0000"
    );
    let f = query_until_final(&mut conn, "LED1").await;
    let booked = sim.ledger.items("LED1").expect("items");
    for (d, b) in f.details.iter().zip(&booked) {
        assert_eq!(d.seq, b.seq);
        match &b.outcome {
            ItemOutcome::Credited => assert_eq!(d.result, "S"),
            ItemOutcome::Failed { code, .. } => assert_eq!(
                (d.result.as_str(), d.fail_code.as_str()),
                ("F", code.as_str())
            ),
        }
    }
    sim.shutdown().await;
}

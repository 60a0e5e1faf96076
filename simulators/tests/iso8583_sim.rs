//! Bank C simulator over real loopback sockets, driven by a tiny client built on the gateway's own
//! codecs: sign-on, pipelined payouts whose replies come back in any order and are matched by STAN, and
//! the MAC of every `0210` checked.
#![allow(clippy::unwrap_used)]
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use bank_profiles::iso8583::MessageKind;
use bank_profiles::{DurationText, Profile};
use bytes::{Bytes, BytesMut};
use codecs::format::iso8583::{
    MacError, Message, MessageSpec, Tlv, decode, encode, encode_with_mac, mac_input, verify_mac,
};
use codecs::framing::{FramingError, U16LenCodec};
use codecs::mac::{self, MacAlg, MacKey};
use futures::{SinkExt, StreamExt};
use simulators::ledger::ItemOutcome;
use simulators::{Iso8583Sim, Iso8583SimConfig, SimHandle};
use time::{OffsetDateTime, UtcOffset};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(5);
const BANK_C: &str = "403241000011";
const BEIJING: UtcOffset = time::macros::offset!(+8);
const FAIL_CODES: [&str; 6] = ["14", "62", "78", "76", "77", "05"];

fn profile() -> Profile {
    bank_profiles::builtin()
        .expect("builtin profiles")
        .remove(BANK_C)
        .expect("bank C")
}

fn spec() -> MessageSpec {
    profile()
        .iso8583
        .expect("iso8583")
        .message_spec()
        .expect("spec")
}

fn test_key() -> MacKey {
    MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key")
}

fn config() -> Iso8583SimConfig {
    let mut cfg = Iso8583SimConfig::new(profile());
    cfg.processing = Duration::from_millis(300);
    cfg
}

async fn start(cfg: Iso8583SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    Iso8583Sim::start(cfg, listener).expect("start")
}

/// What reading one frame gave.
#[derive(Debug)]
enum Recv {
    Frame(BytesMut),
    Closed,
    Broken(FramingError),
}

/// The test client: one connection, its own STAN counter, the MAC of every `0210` checked.
struct Client {
    conn: Framed<TcpStream, U16LenCodec>,
    spec: MessageSpec,
    alg: MacAlg,
    key: MacKey,
    stan: u32,
}

impl Client {
    async fn connect(sim: &SimHandle) -> Self {
        let stream = TcpStream::connect(sim.addr).await.expect("connect");
        Self {
            conn: Framed::new(stream, U16LenCodec::default()),
            spec: spec(),
            alg: MacAlg::X919,
            key: test_key(),
            stan: 0,
        }
    }

    fn next_stan(&mut self) -> String {
        self.stan += 1;
        format!("{:06}", self.stan)
    }

    /// The wire form: `0200`s with their MAC, `0800`s without.
    fn body(&self, msg: &Message) -> Vec<u8> {
        if msg.mti == "0200" {
            encode_with_mac(&self.spec, msg, self.alg, &self.key).expect("encode with MAC")
        } else {
            encode(&self.spec, msg).expect("encode")
        }
    }

    async fn send_body(&mut self, body: Vec<u8>) {
        self.conn.send(Bytes::from(body)).await.expect("send");
    }

    async fn send(&mut self, msg: &Message) {
        let body = self.body(msg);
        self.send_body(body).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).await.expect("write");
    }

    async fn recv_frame(&mut self) -> Recv {
        match tokio::time::timeout(WAIT, self.conn.next())
            .await
            .expect("the bank neither replied nor closed")
        {
            Some(Ok(frame)) => Recv::Frame(frame),
            None => Recv::Closed,
            Some(Err(FramingError::Io(_))) => Recv::Closed,
            Some(Err(e)) => Recv::Broken(e),
        }
    }

    /// One reply, decoded; a `0210` must carry the right MAC.
    async fn recv(&mut self) -> Option<Message> {
        match self.recv_frame().await {
            Recv::Frame(frame) => Some(self.check(&frame)),
            Recv::Closed | Recv::Broken(_) => None,
        }
    }

    fn check(&self, frame: &[u8]) -> Message {
        let msg = decode(&self.spec, frame).expect("a reply that decodes");
        if msg.mti == "0210" {
            verify_mac(&self.spec, frame, self.alg, &self.key).expect("the reply's MAC verifies")
        } else {
            assert_eq!(msg.mti, "0810");
            assert!(!msg.has(128), "0810 carries no MAC");
            msg
        }
    }

    /// Sends `msg` and reads its reply, which must answer its STAN.
    async fn call(&mut self, msg: &Message) -> Message {
        self.send(msg).await;
        let reply = self.recv().await.expect("a reply");
        assert_eq!(reply.text(11), msg.text(11), "reply to another STAN");
        reply
    }

    /// `n` replies, in the order they came.
    async fn replies(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.recv().await.expect("a reply"));
        }
        out
    }

    fn network(&mut self, code: &str) -> Message {
        let stan = self.next_stan();
        self.spec
            .message("0800")
            .with(7, "0315093000")
            .with(11, stan)
            .with(32, "12345678")
            .with(70, code)
    }

    async fn sign_on(&mut self) {
        let m = self.network("001");
        let r = self.call(&m).await;
        assert_eq!((r.mti.as_str(), r.text(39)), ("0810", Some("00")));
    }

    fn payout(&mut self, item_ref: &str, amount: u64) -> Message {
        let stan = self.next_stan();
        payout(
            &self.spec,
            &stan,
            item_ref,
            amount,
            "BATCH20250315001",
            self.stan,
        )
    }

    fn inquiry(&mut self, item_ref: &str) -> Message {
        let stan = self.next_stan();
        inquiry(&self.spec, &stan, item_ref)
    }
}

fn recipient(batch: &str, seq: u32) -> String {
    Tlv::new()
        .with("NM", "张三")
        .with("IT", "1")
        .with("ID", format!("22012219800101{:04}", seq % 10_000))
        .with("KD", "S")
        .with("PH", "13800138000")
        .with("SB", "SUB2025")
        .with("BN", batch)
        .with("SQ", format!("{seq:08}"))
        .encode()
        .expect("F48")
}

fn payout(
    spec: &MessageSpec,
    stan: &str,
    item_ref: &str,
    amount: u64,
    batch: &str,
    seq: u32,
) -> Message {
    spec.message("0200")
        .with(2, format!("62170000{seq:011}"))
        .with(3, "400000")
        .with(4, format!("{amount:012}"))
        .with(7, "0315093005")
        .with(11, stan)
        .with(12, "093005")
        .with(13, "0315")
        .with(32, "12345678")
        .with(37, item_ref)
        .with(41, "GW01")
        .with(42, "DEPT001")
        .with(48, recipient(batch, seq))
        .with(49, "156")
        .with(100, "403100000004")
        .with(102, "11001234567890123")
}

fn inquiry(spec: &MessageSpec, stan: &str, item_ref: &str) -> Message {
    spec.message("0200")
        .with(3, "300000")
        .with(7, "0316100000")
        .with(11, stan)
        .with(12, "100000")
        .with(13, "0316")
        .with(32, "12345678")
        .with(37, item_ref)
        .with(41, "GW01")
        .with(42, "DEPT001")
        .with(90, "020000000203150930050001234567800000000000")
}

fn item_ref(i: usize) -> String {
    format!("PO{i:010}")
}

/// Recomputes the MAC of an encoded `0200` after its bytes were changed.
fn remac(body: &mut [u8], alg: MacAlg) {
    let code = mac::compute(alg, &test_key(), mac_input(body));
    let n = body.len();
    body[n - 8..].copy_from_slice(&code);
}

/// The reply's fields are exactly those its kind allows.
fn assert_layout(kind: MessageKind, msg: &Message) {
    profile()
        .iso8583
        .expect("iso8583")
        .check_fields(kind, msg.fields.keys().copied())
        .expect("reply fields as the layout says");
}

/// F7 is the bank's time now, Beijing (within a few seconds).
fn assert_bank_time(msg: &Message) {
    let f7 = msg.text(7).expect("F7");
    let now = OffsetDateTime::now_utc().to_offset(BEIJING);
    let near = (-5..=5).any(|s| {
        let t = now + time::Duration::seconds(s);
        let want = format!(
            "{:02}{:02}{:02}{:02}{:02}",
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        want == f7
    });
    assert!(near, "F7 {f7} is not the bank's time now");
}

fn fixture(case: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../bank-profiles/fixtures")
        .join(BANK_C)
        .join(format!("{case}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Two messages agree except in F7 (each bank's own time) and F128 (over F7 too).
fn assert_same_but_time(got: &Message, want: &Message) {
    let strip = |m: &Message| {
        let mut m = m.clone();
        m.fields.remove(&7);
        m.fields.remove(&128);
        m
    };
    assert_eq!(strip(got), strip(want));
    assert_eq!(got.has(7), want.has(7));
    assert_eq!(got.has(128), want.has(128));
}

#[tokio::test]
async fn pipelined_payouts_come_back_out_of_order_matched_by_stan() {
    let mut cfg = config();
    cfg.reply_jitter = Duration::from_millis(60);
    cfg.fail_permille = 300;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;

    let mut sent = Vec::new();
    let mut by_stan = HashMap::new();
    let mut total = 0u64;
    for i in 0..30 {
        let amount = 1000 + i as u64;
        total += amount;
        let m = c.payout(&item_ref(i), amount);
        by_stan.insert(m.text(11).expect("stan").to_owned(), m.clone());
        sent.push(m.text(11).expect("stan").to_owned());
        c.send(&m).await;
    }
    let replies = c.replies(30).await;
    let order: Vec<String> = replies
        .iter()
        .map(|r| r.text(11).expect("stan").to_owned())
        .collect();
    assert_ne!(order, sent, "replies came back in the order sent");
    assert_eq!(
        order.iter().collect::<HashSet<_>>().len(),
        30,
        "one reply per STAN"
    );
    for r in &replies {
        let req = &by_stan[r.text(11).expect("stan")];
        assert_eq!(r.mti, "0210");
        assert_eq!(r.text(39), Some("00"));
        for n in [2, 3, 4, 32, 37, 41, 42] {
            assert_eq!(r.get(n), req.get(n), "F{n} echoed");
        }
        assert_layout(MessageKind::PayoutReply, r);
        assert_bank_time(r);
    }
    let l = &sim.ledger;
    assert_eq!(
        (l.items_paid(), l.submits_seen(), l.sign_ons()),
        (30, 30, 1)
    );
    assert_eq!(l.credited() + l.failed(), 30);
    assert_eq!(l.credited_amount() + l.failed_amount(), total);
    assert!(l.failed() > 0 && l.credited() > 0);
    assert_eq!(l.max_payments_per_id(), 1);
    assert_eq!(l.accepted_batches(), 1);
    assert_eq!(l.batch_nos(), ["BATCH20250315001"]);
    let b = l.batch("BATCH20250315001").expect("batch");
    assert_eq!((b.items, b.total_amount), (30, total));
    let items = l.items("BATCH20250315001").expect("items");
    assert!(items.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(l.item_refs().len(), 30);
    assert!(!format!("{l:?}").contains("6217"));
    sim.shutdown().await;
}

#[tokio::test]
async fn a7_before_sign_on_and_echo_is_answered_anyway() {
    let sim = start(config()).await;
    let mut c = Client::connect(&sim).await;
    let p = c.payout(&item_ref(1), 100);
    let r = c.call(&p).await;
    assert_eq!(r.text(39), Some("A7"));
    assert_layout(MessageKind::PayoutReply, &r);
    let q = c.inquiry(&item_ref(1));
    let r = c.call(&q).await;
    assert_eq!(r.text(39), Some("A7"));
    // A7 comes before A0.
    let p = c.payout(&item_ref(2), 100);
    let mut body = c.body(&p);
    *body.last_mut().expect("mac") ^= 0xFF;
    c.send_body(body).await;
    assert_eq!(c.recv().await.expect("reply").text(39), Some("A7"));

    let echo = c.network("301");
    let r = c.call(&echo).await;
    assert_eq!((r.text(39), r.text(70)), (Some("00"), Some("301")));
    assert_layout(MessageKind::NetworkReply, &r);
    assert_bank_time(&r);

    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    let off = c.network("002");
    assert_eq!(c.call(&off).await.text(39), Some("00"));
    let p = c.payout(&item_ref(3), 100);
    assert_eq!(c.call(&p).await.text(39), Some("A7"));
    // Sign-on is per connection.
    let mut other = Client::connect(&sim).await;
    let p = other.payout(&item_ref(4), 100);
    assert_eq!(other.call(&p).await.text(39), Some("A7"));

    let l = &sim.ledger;
    assert_eq!(
        (
            l.not_signed_on_replies(),
            l.sign_ons(),
            l.sign_offs(),
            l.echoes_seen()
        ),
        (5, 1, 1, 1)
    );
    assert_eq!((l.items_paid(), l.mac_rejections()), (1, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_repeated_f37_is_94_and_paid_once_for_ever() {
    let sim = start(config()).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout("DUP000000001", 500);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    let again = c.payout("DUP000000001", 500);
    let r = c.call(&again).await;
    assert_eq!((r.text(39), r.text(37)), (Some("94"), Some("DUP000000001")));
    // From another connection, with another amount: still the same F37.
    let mut other = Client::connect(&sim).await;
    other.sign_on().await;
    let other_amount = other.payout("DUP000000001", 999);
    assert_eq!(other.call(&other_amount).await.text(39), Some("94"));
    let l = &sim.ledger;
    assert_eq!((l.items_paid(), l.duplicate_submits()), (1, 2));
    assert_eq!(l.item_refs(), ["DUP000000001"]);
    assert_eq!(l.item("DUP000000001").expect("item").amount, 500);
    assert!(l.max_payments_per_id() <= 1 && l.max_items_per_id() == 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn inquiries_say_unknown_processing_then_final() {
    let mut cfg = config();
    cfg.fail_permille = 500;
    cfg.seed = 7;
    // No reply jitter: the 09s below must all come before processing is over.
    cfg.reply_jitter = Duration::ZERO;
    cfg.processing = Duration::from_millis(500);
    let sim = start(cfg.clone()).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let q = c.inquiry("NOSUCH000001");
    let r = c.call(&q).await;
    assert_eq!(r.text(39), Some("25"));
    assert!(!r.has(121));
    assert_layout(MessageKind::InquiryReply, &r);

    let refs: Vec<String> = (0..16).map(item_ref).collect();
    for (i, f37) in refs.iter().enumerate() {
        let p = c.payout(f37, 100 + i as u64);
        assert_eq!(c.call(&p).await.text(39), Some("00"));
    }
    for f37 in &refs {
        let q = c.inquiry(f37);
        let r = c.call(&q).await;
        assert_eq!((r.text(39), r.has(121)), (Some("09"), false));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut codes = Vec::new();
    for f37 in &refs {
        let q = c.inquiry(f37);
        let r = c.call(&q).await;
        assert_layout(MessageKind::InquiryReply, &r);
        assert_eq!(r.text(37), Some(f37.as_str()));
        let code = r.text(39).expect("F39").to_owned();
        let data = Tlv::decode(r.text(121).expect("F121 on a final answer")).expect("tags");
        let booked = sim.ledger.item(f37).expect("booked").outcome;
        if code == "00" {
            assert_eq!(booked, ItemOutcome::Credited);
            let ct = data.get("CT").expect("CT");
            assert!(
                ct.len() == 14 && ct.bytes().all(|b| b.is_ascii_digit()),
                "{ct}"
            );
            let tx = data.get("TX").expect("TX");
            assert!(!tx.is_empty() && tx.len() <= 20, "{tx}");
            assert!(data.get("RS").is_none());
        } else {
            assert!(FAIL_CODES.contains(&code.as_str()), "{code}");
            let ItemOutcome::Failed {
                code: booked_code,
                reason,
            } = booked
            else {
                panic!("{f37} failed on the wire, credited in the books");
            };
            assert_eq!(booked_code, code);
            assert_eq!(data.get("RS"), Some(reason.as_str()));
            assert_eq!(data.get("CT").is_some(), code != "05");
            assert!(data.get("TX").is_none());
        }
        codes.push(code);
    }
    assert!(codes.iter().any(|c| c == "00") && codes.iter().any(|c| c != "00"));
    // Final answers stay final, and ask as often as you like: nothing is paid again.
    let q = c.inquiry(&refs[0]);
    assert_eq!(c.call(&q).await.text(39), Some(codes[0].as_str()));
    assert_eq!(sim.ledger.items_paid(), 16);
    assert_eq!(sim.ledger.queries_seen(), 34);
    sim.shutdown().await;

    // Results are a function of (seed, F37): another simulator with the same seed agrees.
    cfg.processing = Duration::ZERO;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    for (f37, code) in refs.iter().zip(&codes) {
        let p = c.payout(f37, 1);
        assert_eq!(c.call(&p).await.text(39), Some("00"));
        let q = c.inquiry(f37);
        assert_eq!(c.call(&q).await.text(39), Some(code.as_str()));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_mac_is_a0_before_any_format_check() {
    let sim = start(config()).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    let mut body = c.body(&p);
    *body.last_mut().expect("mac") ^= 0x01;
    c.send_body(body).await;
    let r = c.recv().await.expect("reply");
    assert_eq!((r.text(39), r.text(11)), (Some("A0"), p.text(11)));
    assert_layout(MessageKind::PayoutReply, &r);
    // Malformed F48 and a wrong MAC: A0 wins.
    let mut p = c.payout(&item_ref(2), 100);
    p.set(48, "NM00");
    let mut body = c.body(&p);
    body[40] ^= 0x01;
    c.send_body(body).await;
    assert_eq!(c.recv().await.expect("reply").text(39), Some("A0"));
    // No F128 at all.
    let p = c.payout(&item_ref(3), 100);
    c.send_body(encode(&spec(), &p).expect("encode")).await;
    assert_eq!(c.recv().await.expect("reply").text(39), Some("A0"));
    // The MAC of another algorithm.
    c.alg = MacAlg::Sm4;
    let p = c.payout(&item_ref(4), 100);
    c.send(&p).await;
    c.alg = MacAlg::X919;
    assert_eq!(c.recv().await.expect("reply").text(39), Some("A0"));
    assert_eq!(
        (sim.ledger.mac_rejections(), sim.ledger.items_paid()),
        (4, 0)
    );
    sim.shutdown().await;

    // A deployment that agreed SM4.
    let mut cfg = config();
    cfg.mac_alg = MacAlg::Sm4;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.alg = MacAlg::Sm4;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    sim.shutdown().await;
}

#[tokio::test]
async fn format_errors_are_30_with_a_mac() {
    let sim = start(config()).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let spec = spec();
    let good = |c: &mut Client, i: usize| c.payout(&item_ref(i), 100);
    let mut cases: Vec<(&str, Message)> = Vec::new();
    let mut m = good(&mut c, 1);
    m.set(48, "NM004张三IT0011ID00");
    cases.push(("truncated F48", m));
    let mut m = good(&mut c, 2);
    m.set(
        48,
        Tlv::new()
            .with("NM", "张三")
            .with("IT", "1")
            .with("ID", "22012219800101123X")
            .with("KD", "S")
            .with("SB", "SUB2025")
            .with("BN", "B1")
            .encode()
            .expect("tlv"),
    );
    cases.push(("no SQ", m));
    let mut m = good(&mut c, 3);
    m.set(48, recipient("B1", 3).replace("IT0011", "IT0019"));
    cases.push(("IT not in the table", m));
    let mut m = good(&mut c, 4);
    m.set(48, format!("{}ZZ001x", recipient("B1", 4)));
    cases.push(("unknown tag", m));
    let mut m = good(&mut c, 5);
    m.set(48, recipient(&"B".repeat(21), 5));
    cases.push(("BN over 20", m));
    let mut m = good(&mut c, 6);
    m.fields.remove(&100);
    cases.push(("no F100", m));
    let mut m = good(&mut c, 7);
    m.set(49, "840");
    cases.push(("another currency", m));
    let mut m = good(&mut c, 8);
    m.set(4, "000000000000");
    cases.push(("amount 0", m));
    let mut m = good(&mut c, 9);
    m.set(3, "999999");
    cases.push(("unknown F3", m));
    let mut m = good(&mut c, 10);
    m.set(7, "1315093005");
    cases.push(("month 13", m));
    let mut m = c.inquiry(&item_ref(11));
    m.set(90, "021000000203150930050001234567800000000000");
    cases.push(("F90 of another MTI", m));
    let mut m = c.inquiry(&item_ref(12));
    m.set(48, recipient("B1", 12));
    cases.push(("an inquiry with F48", m));
    let n = cases.len();
    for (what, m) in &cases {
        let r = c.call(m).await;
        assert_eq!(r.text(39), Some("30"), "{what}");
        assert_eq!(r.text(37), m.text(37), "{what}");
    }
    // F48 bytes that are not GBK: the table refuses the value, the bank still answers with the STAN.
    let m = good(&mut c, 13);
    let mut body = c.body(&m);
    let at = body
        .windows(2)
        .position(|w| w == [0xD5, 0xC5])
        .expect("张 in GBK");
    body[at] = 0xFF;
    remac(&mut body, MacAlg::X919);
    assert!(decode(&spec, &body).is_err());
    c.send_body(body).await;
    let r = c.recv().await.expect("reply");
    assert_eq!((r.text(39), r.text(11)), (Some("30"), m.text(11)));
    let l = &sim.ledger;
    assert_eq!((l.format_errors(), l.items_paid()), (n + 1, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_outstanding_stan_is_30_and_freed_after_the_reply() {
    let mut cfg = config();
    cfg.faults.reply_delay = Duration::from_millis(200);
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let spec = spec();
    let a = payout(&spec, "000100", "STANA0000001", 100, "B1", 1);
    let b = payout(&spec, "000100", "STANB0000001", 100, "B1", 2);
    c.send(&a).await;
    c.send(&b).await;
    let mut replies = c.replies(2).await;
    replies.sort_by_key(|r| r.text(37).map(str::to_owned));
    assert_eq!(
        replies
            .iter()
            .map(|r| (r.text(11), r.text(37), r.text(39)))
            .collect::<Vec<_>>(),
        [
            (Some("000100"), Some("STANA0000001"), Some("00")),
            (Some("000100"), Some("STANB0000001"), Some("30")),
        ]
    );
    // Answered: the STAN is free again.
    assert_eq!(c.call(&b).await.text(39), Some("00"));
    let l = &sim.ledger;
    assert_eq!(
        (l.duplicate_stans(), l.format_errors(), l.items_paid()),
        (1, 1, 2)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_33rd_outstanding_request_is_answered_96() {
    let mut cfg = config();
    cfg.faults.reply_delay = Duration::from_millis(300);
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let mut stans = Vec::new();
    for i in 0..33 {
        let p = c.payout(&item_ref(i), 100);
        stans.push(p.text(11).expect("stan").to_owned());
        c.send(&p).await;
    }
    let replies = c.replies(33).await;
    let busy: Vec<&Message> = replies
        .iter()
        .filter(|r| r.text(39) == Some("96"))
        .collect();
    assert_eq!(busy.len(), 1, "exactly one 96");
    assert_eq!(busy[0].text(11), Some(stans[32].as_str()));
    assert_eq!(
        replies.iter().filter(|r| r.text(39) == Some("00")).count(),
        32
    );
    assert_eq!(
        (sim.ledger.overloaded_replies(), sim.ledger.busy_replies()),
        (1, 0)
    );
    assert_eq!(sim.ledger.items_paid(), 32);
    // Retried with the same F37 once there is room: accepted.
    let p = c.payout(&item_ref(32), 100);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    assert_eq!(sim.ledger.items_paid(), 33);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_fifth_connection_is_closed_at_once() {
    let sim = start(config()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(&sim).await;
        c.sign_on().await;
        clients.push(c);
    }
    let mut fifth = Client::connect(&sim).await;
    assert!(matches!(fifth.recv_frame().await, Recv::Closed));
    assert_eq!(sim.ledger.refused_connections(), 1);
    // The four still work; one closing makes room.
    for c in &mut clients {
        let p = c.network("301");
        assert_eq!(c.call(&p).await.text(39), Some("00"));
    }
    drop(clients.pop());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut c = Client::connect(&sim).await;
        let m = c.network("001");
        c.send(&m).await;
        if c.recv().await.is_some() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no room made");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_oversized_undelimitable_and_unknown_messages() {
    let mut cfg = config();
    let mut p = profile();
    p.timers.idle_timeout = DurationText(Duration::from_millis(300));
    cfg.profile = p;
    let sim = start(cfg).await;

    // Echoes keep a connection alive; silence closes it.
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let e = c.network("301");
        assert_eq!(c.call(&e).await.text(39), Some("00"));
    }
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(c.recv().await.is_none());
    assert_eq!(sim.ledger.idle_closes(), 1);

    // A frame over 4,096 bytes.
    let mut c = Client::connect(&sim).await;
    let mut big = vec![0x10, 0x01];
    big.extend_from_slice(&[b'0'; 4097]);
    c.send_raw(&big).await;
    assert!(c.recv().await.is_none());
    assert_eq!(sim.ledger.oversized_frames(), 1);

    // An unknown MTI is not answered; the connection goes on.
    let mut c = Client::connect(&sim).await;
    let m = spec().message("0400").with(11, "000001");
    c.send_body(encode(&spec(), &m).expect("encode")).await;
    let e = c.network("301");
    c.send(&e).await;
    let r = c.recv().await.expect("reply");
    assert_eq!((r.mti.as_str(), r.text(11)), ("0810", e.text(11)));
    assert_eq!(sim.ledger.unknown_mtis(), 1);

    // A 0200 whose fields cannot be delimited: closed without a reply.
    let p = c.payout(&item_ref(1), 100);
    let body = c.body(&p);
    c.send_body(body[..body.len() - 20].to_vec()).await;
    assert!(c.recv().await.is_none());
    assert_eq!(sim.ledger.unparsable_requests(), 1);
    sim.shutdown().await;
}

/// Connects and signs on, reconnecting until a sign-on reply arrives intact (faults hit 0810s too).
async fn signed_on(sim: &SimHandle) -> Client {
    for _ in 0..50 {
        let mut c = Client::connect(sim).await;
        let m = c.network("001");
        c.send(&m).await;
        if let Recv::Frame(f) = c.recv_frame().await
            && let Ok(r) = decode(&spec(), &f)
            && r.text(39) == Some("00")
            && r.text(11) == m.text(11)
        {
            return c;
        }
    }
    panic!("could not sign on");
}

/// Sends payouts of fresh F37s until `seen` says a reply showed the fault; the number sent.
async fn until_fault(
    sim: &SimHandle,
    tag: &str,
    mut seen: impl FnMut(&Client, Recv) -> bool,
) -> usize {
    let mut c = signed_on(sim).await;
    for i in 0..100 {
        let p = c.payout(&format!("{tag:X<6}{i:06}"), 100);
        c.send(&p).await;
        let got = c.recv_frame().await;
        let closed = !matches!(got, Recv::Frame(_));
        if seen(&c, got) {
            return i + 1;
        }
        if closed {
            c = signed_on(sim).await;
        }
    }
    panic!("fault {tag} never seen");
}

#[tokio::test]
async fn busy_delay_and_bad_mac_faults() {
    // Busy: 96 to payouts and inquiries, nothing booked.
    let mut cfg = config();
    cfg.faults.busy_submit_permille = 1000;
    cfg.faults.busy_query_permille = 1000;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    assert_eq!(c.call(&p).await.text(39), Some("96"));
    let q = c.inquiry(&item_ref(1));
    assert_eq!(c.call(&q).await.text(39), Some("96"));
    assert_eq!((sim.ledger.busy_replies(), sim.ledger.items_paid()), (2, 0));
    sim.shutdown().await;

    // Delay.
    let mut cfg = config();
    cfg.faults.reply_delay = Duration::from_millis(250);
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    let started = tokio::time::Instant::now();
    c.sign_on().await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(sim.ledger.delayed_replies(), 1);
    sim.shutdown().await;

    // A wrong MAC on every 0210 (0810s carry none).
    let mut cfg = config();
    cfg.faults.bad_mac_reply_permille = 1000;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    c.send(&p).await;
    let Recv::Frame(frame) = c.recv_frame().await else {
        panic!("no reply");
    };
    let r = decode(&spec(), &frame).expect("decodes");
    assert_eq!((r.text(11), r.text(39)), (p.text(11), Some("00")));
    assert_eq!(
        verify_mac(&spec(), &frame, MacAlg::X919, &test_key()),
        Err(MacError::Mismatch)
    );
    assert_eq!(
        (sim.ledger.bad_mac_replies(), sim.ledger.items_paid()),
        (1, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dropped_cut_garbled_duplicated_and_split_replies() {
    // Dropped: closed without a reply, the payout booked all the same.
    let mut cfg = config();
    cfg.faults.drop_before_reply_permille = 500;
    let sim = start(cfg).await;
    let sent = until_fault(&sim, "DROP", |_, r| matches!(r, Recv::Closed)).await;
    assert!(sim.ledger.dropped_replies() >= 1);
    assert_eq!(sim.ledger.items_paid(), sent);
    sim.shutdown().await;

    // Cut: part of a frame, then closed.
    let mut cfg = config();
    cfg.faults.cut_reply_permille = 500;
    let sim = start(cfg).await;
    until_fault(&sim, "CUT", |_, r| {
        matches!(r, Recv::Broken(FramingError::Truncated { .. }))
    })
    .await;
    assert!(sim.ledger.cut_replies() >= 1);
    sim.shutdown().await;

    // Garbled: a frame no careful reader takes.
    let mut cfg = config();
    cfg.faults.garble_reply_permille = 500;
    let sim = start(cfg).await;
    for garbled in 0..3 {
        until_fault(&sim, &format!("GARB{garbled}"), |c, r| match r {
            Recv::Frame(f) => decode(&c.spec, &f).is_err(),
            Recv::Broken(FramingError::TooLong { .. }) => true,
            _ => false,
        })
        .await;
    }
    assert!(sim.ledger.garbled_replies() >= 3);
    sim.shutdown().await;

    // Duplicated and split: every frame twice, in small pieces, and still readable.
    let mut cfg = config();
    cfg.faults.duplicate_reply_permille = 1000;
    cfg.faults.split_writes = true;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    let on = c.network("001");
    c.send(&on).await;
    let (Recv::Frame(a), Recv::Frame(b)) = (c.recv_frame().await, c.recv_frame().await) else {
        panic!("two sign-on replies");
    };
    assert_eq!(a, b);
    let p = c.payout(&item_ref(1), 100);
    c.send(&p).await;
    let (Recv::Frame(a), Recv::Frame(b)) = (c.recv_frame().await, c.recv_frame().await) else {
        panic!("two payout replies");
    };
    assert_eq!(a, b);
    assert_eq!(c.check(&a).text(39), Some("00"));
    assert_eq!(sim.ledger.duplicated_replies(), 2);
    assert_eq!(sim.ledger.items_paid(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn late_results_and_chosen_failures() {
    // Late: final only after processing + late_result.
    let mut cfg = config();
    cfg.processing = Duration::from_millis(100);
    cfg.late_result = Duration::from_millis(500);
    cfg.faults.late_result_permille = 1000;
    cfg.fail_permille = 0;
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 100);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let q = c.inquiry(&item_ref(1));
    assert_eq!(c.call(&q).await.text(39), Some("09"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    let q = c.inquiry(&item_ref(1));
    assert_eq!(c.call(&q).await.text(39), Some("00"));
    assert_eq!(sim.ledger.late_results(), 1);
    sim.shutdown().await;

    // Every item fails with 77.
    let mut cfg = config();
    cfg.processing = Duration::ZERO;
    cfg.fail_permille = 1000;
    cfg.fail_codes = vec!["77".into()];
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    c.sign_on().await;
    let p = c.payout(&item_ref(1), 4321);
    assert_eq!(c.call(&p).await.text(39), Some("00"));
    let q = c.inquiry(&item_ref(1));
    let r = c.call(&q).await;
    assert_eq!(r.text(39), Some("77"));
    let data = Tlv::decode(r.text(121).expect("F121")).expect("tags");
    assert!(data.get("CT").is_some() && data.get("TX").is_none());
    assert_eq!(
        data.get("RS"),
        Some("非社保卡账户 not a social security card account")
    );
    let l = &sim.ledger;
    assert_eq!(
        (
            l.credited(),
            l.failed(),
            l.failed_amount(),
            l.late_results()
        ),
        (0, 1, 4321, 0)
    );
    assert_eq!(l.max_payments_per_id(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_follow_the_seed() {
    async fn codes(seed: u64) -> Vec<String> {
        let mut cfg = config();
        cfg.seed = seed;
        cfg.faults.busy_submit_permille = 500;
        let sim = start(cfg).await;
        let mut c = Client::connect(&sim).await;
        c.sign_on().await;
        let mut out = Vec::new();
        for i in 0..24 {
            let p = c.payout(&item_ref(i), 100);
            out.push(c.call(&p).await.text(39).expect("F39").to_owned());
        }
        sim.shutdown().await;
        out
    }
    let a = codes(42).await;
    assert_eq!(a, codes(42).await);
    assert_ne!(a, codes(43).await);
    assert!(a.iter().any(|c| c == "96") && a.iter().any(|c| c == "00"));
}

#[tokio::test]
async fn golden_requests_are_accepted() {
    let mut cfg = config();
    cfg.processing = Duration::from_secs(60);
    let sim = start(cfg).await;
    let mut c = Client::connect(&sim).await;
    let golden = |case: &str| {
        let f = fixture(case);
        decode(&spec(), &f[2..]).expect("golden frame decodes")
    };
    // Before sign-on: A7, as the golden reply (but for the bank's time).
    c.send_raw(&fixture("payout")).await;
    let r = c.recv().await.expect("reply");
    assert_same_but_time(&r, &golden("payout_reply_a7"));

    c.send_raw(&fixture("sign_on")).await;
    let r = c.recv().await.expect("reply");
    assert_same_but_time(&r, &golden("sign_on_reply"));
    assert_bank_time(&r);

    c.send_raw(&fixture("echo")).await;
    let r = c.recv().await.expect("reply");
    assert_eq!(
        (r.text(11), r.text(39), r.text(70)),
        (Some("000007"), Some("00"), Some("301"))
    );

    c.send_raw(&fixture("payout")).await;
    let r = c.recv().await.expect("reply");
    assert_same_but_time(&r, &golden("payout_reply_00"));
    // The golden duplicate answers a later attempt (STAN 000009) of the same F37.
    let mut again = golden("payout");
    again.set(11, "000009");
    c.send(&again).await;
    let r = c.recv().await.expect("reply");
    assert_same_but_time(&r, &golden("payout_reply_94"));

    c.send_raw(&fixture("payout_unit")).await;
    let r = c.recv().await.expect("reply");
    assert_eq!((r.text(37), r.text(39)), (Some("PO0000000005"), Some("00")));

    c.send_raw(&fixture("inquiry")).await;
    let r = c.recv().await.expect("reply");
    assert_same_but_time(&r, &golden("inquiry_reply_09"));

    let l = &sim.ledger;
    assert_eq!((l.items_paid(), l.duplicate_submits()), (2, 1));
    assert_eq!(l.batch("BATCH20250315001").expect("batch").items, 2);
    assert_eq!(l.item("PO0000000001").expect("item").amount, 12345);
    assert_eq!(l.item("PO0000000005").expect("item").amount, 3261496);
    sim.shutdown().await;
}

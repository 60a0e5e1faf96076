//! The SMS centre simulator against a bare SMPP client written here from the shared codecs: binds and
//! their limits, the window, the per-second limit, receipts (one per part, sent again until answered),
//! `enquire_link` both ways, field checks and the seeded faults.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use codecs::format::smpp::pdu::{self, SubmitFields, command_id, status, tag};
use codecs::format::smpp::rusmpp::Command;
use codecs::format::smpp::text;
use codecs::format::smpp::{Inbound, ReceiptText, SmppCodec, Stat};
use futures::{SinkExt, StreamExt};
use simulators::smsc::{SmscFaults, SmscHandle, SmscSim, SmscSimConfig};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{FramedRead, FramedWrite};

const WAIT: Duration = Duration::from_secs(5);

struct Client {
    r: FramedRead<OwnedReadHalf, SmppCodec>,
    w: FramedWrite<OwnedWriteHalf, SmppCodec>,
    seq: u32,
}

impl Client {
    async fn connect(sim: &SmscHandle) -> Client {
        let (r, w) = TcpStream::connect(sim.addr).await.unwrap().into_split();
        Client {
            r: FramedRead::new(r, SmppCodec::default()),
            w: FramedWrite::new(w, SmppCodec::default()),
            seq: 0,
        }
    }

    fn seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    async fn send(&mut self, cmd: Command) {
        self.w.send(cmd).await.unwrap();
    }

    /// The next PDU, or `None` when the centre closed the connection.
    async fn next(&mut self) -> Option<Command> {
        match tokio::time::timeout(WAIT, self.r.next())
            .await
            .expect("a PDU in time")
        {
            Some(Ok(Inbound::Pdu(c))) => Some(*c),
            Some(Ok(Inbound::Malformed { error, .. })) => panic!("malformed: {error}"),
            Some(Err(_)) | None => None,
        }
    }

    /// The next PDU that is not an `enquire_link` (answered on the way).
    async fn next_answer(&mut self) -> Option<Command> {
        loop {
            let c = self.next().await?;
            if pdu::id_of(&c) == command_id::ENQUIRE_LINK {
                let r = pdu::bodiless(
                    command_id::response_of(command_id::ENQUIRE_LINK),
                    status::ROK,
                    c.sequence_number,
                );
                self.send(r).await;
                continue;
            }
            return Some(c);
        }
    }

    async fn bind(&mut self, system_id: &str, password: &str) -> u32 {
        let seq = self.seq();
        self.send(pdu::bind_transceiver(seq, system_id, password).unwrap())
            .await;
        let r = self.next_answer().await.expect("bind_transceiver_resp");
        assert_eq!(
            pdu::id_of(&r),
            command_id::response_of(command_id::BIND_TRANSCEIVER)
        );
        assert_eq!(r.sequence_number, seq);
        pdu::status_of(&r)
    }

    async fn submit(&mut self, dest: &str, text_: &str, key: Option<&str>) -> Vec<u32> {
        let fields = SubmitFields {
            service_number: "10690001".into(),
            destination: dest.into(),
            registered_delivery: 1,
            key_tlv: key.map(|k| (tag::VENDOR_FIRST, k.to_owned())),
        };
        let mut seqs = Vec::new();
        for p in text::split(text_, 42).unwrap() {
            let seq = self.seq();
            self.send(pdu::submit_sm(seq, &fields, &p).unwrap()).await;
            seqs.push(seq);
        }
        seqs
    }

    /// Reads `n` submit_sm_resps: (seq, status, message id).
    async fn resps(&mut self, n: usize) -> Vec<(u32, u32, Option<String>)> {
        let mut out = Vec::new();
        while out.len() < n {
            let r = self.next_answer().await.expect("submit_sm_resp");
            if pdu::id_of(&r) == command_id::response_of(command_id::SUBMIT_SM) {
                out.push((
                    r.sequence_number,
                    pdu::status_of(&r),
                    pdu::read_submit_sm_resp(&r),
                ));
            }
        }
        out
    }
}

fn cfg() -> SmscSimConfig {
    let mut c = SmscSimConfig::new("gw", "secret");
    c.receipt_delay = Duration::from_millis(10);
    c.receipt_jitter = Duration::from_millis(20);
    c
}

async fn start(c: SmscSimConfig) -> SmscHandle {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    SmscSim::start(c, l).unwrap()
}

#[tokio::test]
async fn binds_check_credentials_and_allow_two_per_client() {
    let sim = start(cfg()).await;
    let mut a = Client::connect(&sim).await;
    assert_eq!(a.bind("gw", "wrong").await, status::RINVPASWD);
    assert_eq!(a.bind("other", "secret").await, status::RINVSYSID);
    assert_eq!(a.bind("gw", "secret").await, status::ROK);
    assert_eq!(a.bind("gw", "secret").await, status::RALYBND);
    let mut b = Client::connect(&sim).await;
    assert_eq!(b.bind("gw", "secret").await, status::ROK);
    let mut c = Client::connect(&sim).await;
    assert_eq!(c.bind("gw", "secret").await, status::RBINDFAIL);
    assert_eq!(sim.binds_open(), 2);
    // Unbinding frees a bind.
    let seq = a.seq();
    a.send(pdu::bodiless(command_id::UNBIND, status::ROK, seq))
        .await;
    let r = a.next_answer().await.unwrap();
    assert_eq!(pdu::id_of(&r), command_id::response_of(command_id::UNBIND));
    assert!(a.next().await.is_none(), "closed after unbind");
    let mut d = Client::connect(&sim).await;
    assert_eq!(d.bind("gw", "secret").await, status::ROK);
    assert_eq!(sim.ledger.binds(), 3);
    assert_eq!(sim.ledger.binds_refused(), 4);
    // Not bound: refused.
    let mut e = Client::connect(&sim).await;
    e.submit("8613912345678", "hi", None).await;
    assert_eq!(e.resps(1).await[0].1, status::RINVBNDSTS);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_eleventh_outstanding_submit_is_throttled() {
    let mut c = cfg();
    c.resp_delay = Duration::from_millis(300);
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    for i in 0..11 {
        cl.submit(&format!("86139000000{i:02}"), "您好", None).await;
    }
    let resps = cl.resps(11).await;
    // The 11th comes back first, refused; the 10 others after the delay, accepted.
    assert_eq!(resps[0].1, status::RTHROTTLED);
    assert_eq!(resps[0].0, 12);
    assert!(
        resps[1..]
            .iter()
            .all(|r| r.1 == status::ROK && r.2.is_some())
    );
    assert_eq!(sim.ledger.throttled_window(), 1);
    assert_eq!(sim.ledger.accepted(), 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_per_second_limit_counts_every_part() {
    let mut c = cfg();
    c.rate_per_second = 5;
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    // 3 parts + 3 singles in well under a second: 5 accepted, the last throttled.
    let long = "补".repeat(150);
    cl.submit("8613900000001", &long, None).await;
    for i in 2..5 {
        cl.submit(&format!("86139000000{i:02}"), "您好", None).await;
    }
    let resps = cl.resps(6).await;
    let ok = resps.iter().filter(|r| r.1 == status::ROK).count();
    assert_eq!(ok, 5);
    assert_eq!(resps[5].1, status::RTHROTTLED);
    assert_eq!(sim.ledger.throttled_rate(), 1);
    assert!(sim.ledger.max_parts_in_any_second("gw") <= 5);
    // A second later there is room again.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    cl.submit("8613900000009", "again", None).await;
    assert_eq!(cl.resps(1).await[0].1, status::ROK);
    sim.shutdown().await;
}

#[tokio::test]
async fn receipts_come_per_part_and_again_until_answered() {
    let mut c = cfg();
    c.receipt_resend_after = Duration::from_millis(200);
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    let t = format!("{}😀尾", "惠".repeat(80));
    cl.submit("8613912345678", &t, Some("batch-1/7")).await;
    let ids: Vec<String> = cl
        .resps(2)
        .await
        .into_iter()
        .map(|r| r.2.unwrap())
        .collect();
    // The books: both parts, reassembled, under the key.
    let m = sim.ledger.messages();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].text, t);
    assert!(m[0].complete());
    assert_eq!(m[0].notice_key.as_deref(), Some("batch-1/7"));
    assert_eq!(sim.ledger.parts_per_key().get("batch-1/7"), Some(&2));
    // Two receipts; the first left unanswered comes again.
    let mut seen = Vec::new();
    let mut first_ignored = false;
    while seen.len() < 2 {
        let d = cl.next_answer().await.unwrap();
        assert_eq!(pdu::id_of(&d), command_id::DELIVER_SM);
        let sm = pdu::read_deliver_sm(&d).unwrap();
        assert_eq!(sm.esm_class, 0x04);
        assert_eq!(sm.source.addr, "8613912345678");
        assert_eq!(sm.destination.addr, "10690001");
        let r = ReceiptText::parse(&sm.short_message).unwrap();
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(
            sm.tlv_c_string(tag::RECEIPTED_MESSAGE_ID).as_deref(),
            Some(r.id.as_str())
        );
        assert!(r.done_date.is_some() && r.submit_date.is_some());
        if !first_ignored {
            first_ignored = true;
            continue;
        }
        cl.send(pdu::deliver_sm_resp(d.sequence_number, status::ROK))
            .await;
        if !seen.contains(&r.id) {
            seen.push(r.id);
        }
    }
    seen.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(seen, want);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sim.ledger.receipts_acked(), 2);
    assert!(sim.ledger.receipts_sent() >= 3);
    assert_eq!(sim.receipts_pending(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn unanswered_receipts_go_to_the_next_bind() {
    let mut c = cfg();
    c.receipt_delay = Duration::from_millis(300);
    c.receipt_jitter = Duration::ZERO;
    let sim = start(c).await;
    let mut a = Client::connect(&sim).await;
    assert_eq!(a.bind("gw", "secret").await, status::ROK);
    a.submit("8613912345678", "hello", None).await;
    let id = a.resps(1).await[0].2.clone().unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut b = Client::connect(&sim).await;
    assert_eq!(b.bind("gw", "secret").await, status::ROK);
    let d = b.next_answer().await.unwrap();
    let sm = pdu::read_deliver_sm(&d).unwrap();
    assert_eq!(
        sm.tlv_c_string(tag::RECEIPTED_MESSAGE_ID).as_deref(),
        Some(id.as_str())
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn enquire_link_both_ways() {
    let mut c = cfg();
    c.enquire_link_interval = Some(Duration::from_millis(30));
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    let el = cl.next().await.unwrap();
    assert_eq!(pdu::id_of(&el), command_id::ENQUIRE_LINK);
    cl.send(pdu::bodiless(
        command_id::response_of(command_id::ENQUIRE_LINK),
        status::ROK,
        el.sequence_number,
    ))
    .await;
    let seq = cl.seq();
    cl.send(pdu::bodiless(command_id::ENQUIRE_LINK, status::ROK, seq))
        .await;
    let r = cl.next_answer().await.unwrap();
    assert_eq!(
        (pdu::id_of(&r), r.sequence_number),
        (command_id::response_of(command_id::ENQUIRE_LINK), seq)
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(sim.ledger.enquire_links_received(), 1);
    assert!(sim.ledger.enquire_link_resps_received() >= 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn fields_outside_the_interface_are_refused() {
    let sim = start(cfg()).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    // 11 digits without 86.
    cl.submit("13912345678", "hi", None).await;
    assert_eq!(cl.resps(1).await[0].1, status::RINVDSTADR);
    // An unknown command gets generic_nack.
    let seq = cl.seq();
    cl.send(pdu::bodiless(0x0000_0103, status::ROK, seq)).await;
    let r = cl.next_answer().await.unwrap();
    assert_eq!(
        (pdu::id_of(&r), pdu::status_of(&r)),
        (command_id::GENERIC_NACK, status::RINVCMDID)
    );
    assert_eq!(sim.ledger.rejected(), 1);
    assert_eq!(sim.ledger.accepted(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_queue_full_drop_and_lost_response() {
    // Queue full always.
    let mut c = cfg();
    c.faults = SmscFaults {
        queue_full_permille: 1000,
        ..SmscFaults::default()
    };
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    cl.submit("8613912345678", "hi", None).await;
    assert_eq!(cl.resps(1).await[0].1, status::RMSGQFUL);
    assert_eq!(sim.ledger.queue_full(), 1);
    sim.shutdown().await;

    // Dropped connection: earlier answers arrive, the submit that triggered it is not accepted.
    let mut c = cfg();
    c.faults = SmscFaults {
        drop_connection_permille: 1000,
        max_connection_faults: 1,
        ..SmscFaults::default()
    };
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    cl.submit("8613912345678", "hi", None).await;
    assert!(cl.next().await.is_none(), "closed without an answer");
    assert_eq!(sim.ledger.accepted(), 0);
    assert_eq!(sim.ledger.dropped_connections(), 1);
    // The fault budget is spent: the next connection works.
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    cl.submit("8613912345678", "hi", None).await;
    assert_eq!(cl.resps(1).await[0].1, status::ROK);
    sim.shutdown().await;

    // Lost response: booked, then closed.
    let mut c = cfg();
    c.faults = SmscFaults {
        lose_resp_permille: 1000,
        ..SmscFaults::default()
    };
    let sim = start(c).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    cl.submit("8613912345678", "hi", None).await;
    assert!(cl.next().await.is_none());
    assert_eq!(sim.ledger.accepted(), 1);
    assert_eq!(sim.ledger.lost_resps(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn undelivered_share_and_withheld_receipts_follow_the_seed() {
    async fn run(seed: u64) -> (usize, usize, Vec<String>) {
        let mut c = cfg();
        c.seed = seed;
        c.rate_per_second = 0;
        c.faults = SmscFaults {
            undelivered_permille: 300,
            receipt_never_permille: 200,
            ..SmscFaults::default()
        };
        let sim = start(c).await;
        let mut cl = Client::connect(&sim).await;
        assert_eq!(cl.bind("gw", "secret").await, status::ROK);
        for i in 0..40 {
            cl.submit(&format!("86139000000{i:02}"), "您好", None).await;
        }
        cl.resps(40).await;
        let withheld = sim.ledger.receipts_withheld();
        let mut undelivered = Vec::new();
        for _ in 0..(40 - withheld) {
            let d = cl.next_answer().await.unwrap();
            let sm = pdu::read_deliver_sm(&d).unwrap();
            let r = ReceiptText::parse(&sm.short_message).unwrap();
            if r.stat == Stat::Undeliverable {
                assert_eq!(sm.tlv(tag::MESSAGE_STATE), Some(&[5u8][..]));
                undelivered.push(sm.source.addr);
            }
            cl.send(pdu::deliver_sm_resp(d.sequence_number, status::ROK))
                .await;
        }
        undelivered.sort();
        sim.shutdown().await;
        (withheld, undelivered.len(), undelivered)
    }
    let a = run(11).await;
    let b = run(11).await;
    assert_eq!(a, b, "same seed, same outcome");
    assert!(a.0 > 0 && a.0 < 20, "{a:?}");
    assert!(a.1 > 0 && a.1 < 25, "{a:?}");
}

#[tokio::test]
async fn drop_connections_and_silence_are_controllable() {
    let sim = start(cfg()).await;
    let mut cl = Client::connect(&sim).await;
    assert_eq!(cl.bind("gw", "secret").await, status::ROK);
    sim.set_silent(true);
    let seq = cl.seq();
    cl.send(pdu::bodiless(command_id::ENQUIRE_LINK, status::ROK, seq))
        .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), cl.r.next())
            .await
            .is_err(),
        "silent: no answer"
    );
    sim.set_silent(false);
    let r = cl.next_answer().await.unwrap();
    assert_eq!(r.sequence_number, seq);
    sim.drop_connections();
    assert!(cl.next().await.is_none());
    assert_eq!(sim.ledger.dropped_connections(), 1);
    sim.shutdown().await;
}

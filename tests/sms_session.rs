//! The SMPP client (`gateway::sms`) against the SMS centre simulator on loopback. What is asserted is
//! what the centre booked (its ledger: parts, messages reassembled, per key and per destination), not
//! wall-clock timing, except one generous floor on throughput that catches a client backing off into
//! a crawl.
//!
//! Scenarios: 1,000 notices (a fifth of them long, some with characters outside the BMP) each arrive
//! once and reassemble; 500 notices at a centre limited to 100/s; connections dropped mid-window in the
//! three ways the at-most-once / at-least-once choice plays out; receipts (parsed, undelivered share,
//! sent again when not acknowledged); a silent centre replaced; a refused bind reported; unbind on
//! shutdown.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use codecs::format::smpp::Stat;
use codecs::format::smpp::pdu::status;
use gateway::domain::pii::Phone;
use gateway::sms::{
    LinkState, PartOutcome, Receipts, SendError, Sent, SmppClient, SmppConfig, SmppHandle,
    SmscPassword, Unconfirmed,
};
use simulators::smsc::{SmscFaults, SmscHandle, SmscSim, SmscSimConfig};

const KEY_TLV: u16 = 0x1400;

async fn centre(cfg: SmscSimConfig) -> SmscHandle {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    SmscSim::start(cfg, l).unwrap()
}

fn centre_cfg() -> SmscSimConfig {
    let mut c = SmscSimConfig::new("gw-test", "secret08");
    c.receipt_delay = Duration::from_millis(20);
    c.receipt_jitter = Duration::from_millis(50);
    c
}

fn client_cfg(sim: &SmscHandle) -> SmppConfig {
    let mut c = SmppConfig::new(
        sim.addr.to_string(),
        "gw-test",
        SmscPassword::new("secret08"),
        "10690001",
    );
    c.key_tlv = Some(KEY_TLV);
    c.reconnect_min = Duration::from_millis(20);
    c.reconnect_max = Duration::from_millis(200);
    c.throttle_min = Duration::from_millis(20);
    c.throttle_max = Duration::from_millis(500);
    c.response_timeout = Duration::from_secs(5);
    c
}

fn phone(i: usize) -> String {
    format!("139{i:08}")
}

/// The i-th notice: the spec's template, every fifth one long (about 200 characters), every seventh
/// with characters outside the BMP.
fn notice(i: usize) -> String {
    let mut t = format!(
        "【惠民惠农】您的耕地地力保护补贴{},{:03}.{:02}元已于3月{}日发放至您尾号{:04}的社保卡，请注意查收。",
        1 + i % 9,
        i % 1000,
        i % 100,
        1 + i % 28,
        i % 10_000
    );
    if i.is_multiple_of(5) {
        while t.chars().count() < 200 {
            t.push_str("如有疑问请咨询当地财政部门或拨打12345热线。");
        }
    }
    if i.is_multiple_of(7) {
        t.push_str("😀𠀀");
    }
    t
}

fn key(i: usize) -> String {
    format!("notice:{i}")
}

/// Sends notices `range` concurrently; outcomes by index.
async fn send_all(
    h: &SmppHandle,
    range: std::ops::Range<usize>,
) -> BTreeMap<usize, Result<Sent, SendError>> {
    let futs = range.map(|i| {
        let h = h.clone();
        async move {
            let r = h.send(&key(i), &Phone::new(phone(i)), &notice(i)).await;
            (i, r)
        }
    });
    futures::future::join_all(futs).await.into_iter().collect()
}

/// Reads receipts until `n` distinct message ids were seen (acknowledging each); by message id.
async fn receipts(rx: &mut Receipts, n: usize) -> HashMap<String, gateway::sms::Receipt> {
    let mut out = HashMap::new();
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("receipts in time")
            .expect("client running");
        let rec = r.receipt.clone();
        r.ack();
        out.insert(rec.message_id.clone(), rec);
    }
    out
}

/// Every key sent exactly once: one complete message with the original text, its parts booked once.
fn assert_each_once(sim: &SmscHandle, range: std::ops::Range<usize>) {
    let messages = sim.ledger.messages();
    let mut by_key: HashMap<String, Vec<_>> = HashMap::new();
    for m in &messages {
        by_key
            .entry(m.notice_key.clone().expect("key booked"))
            .or_default()
            .push(m);
    }
    assert_eq!(by_key.len(), range.len(), "one message per key");
    let parts_per_key = sim.ledger.parts_per_key();
    for i in range {
        let k = key(i);
        let ms = by_key.get(&k).unwrap_or_else(|| panic!("{k} missing"));
        assert_eq!(ms.len(), 1, "{k} arrived {} times", ms.len());
        assert!(ms[0].complete(), "{k} incomplete");
        assert_eq!(ms[0].text, notice(i), "{k} text");
        assert_eq!(ms[0].destination, format!("86{}", phone(i)));
        assert_eq!(parts_per_key[&k], ms[0].total, "{k}: a part booked twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_notices_arrive_once_and_reassemble() {
    let mut sc = centre_cfg();
    sc.rate_per_second = 0;
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.max_rate_per_second = None;
    let (h, mut rx) = SmppClient::start(cc);
    let results = send_all(&h, 0..1000).await;
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut long = 0;
    for (i, r) in &results {
        let sent = r.as_ref().unwrap_or_else(|e| panic!("notice {i}: {e}"));
        if sent.message_ids.len() > 1 {
            long += 1;
        }
        for id in &sent.message_ids {
            assert!(ids.insert(id.clone(), *i).is_none(), "message id twice");
        }
    }
    assert_eq!(long, 200);
    assert_each_once(&sim, 0..1000);
    // The ids the client returned are exactly the centre's.
    let booked: HashSet<String> = sim
        .ledger
        .parts()
        .into_iter()
        .map(|p| p.message_id)
        .collect();
    assert_eq!(booked, ids.keys().cloned().collect::<HashSet<_>>());
    // Per destination: 1,000 destinations.
    assert_eq!(sim.ledger.parts_per_destination().len(), 1000);
    // A receipt per part, parsed.
    let got = receipts(&mut rx, ids.len()).await;
    for (id, r) in &got {
        let i = ids[id];
        assert_eq!(r.stat, Stat::Delivered);
        assert_eq!(r.recipient.expose(), format!("86{}", phone(i)));
        assert!(r.done_at.is_some() && r.submitted_at.is_some());
    }
    h.shutdown().await;
    assert_eq!(sim.ledger.unbinds(), 1);
    assert_eq!(*h.link().borrow(), LinkState::Closed);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_at_100_per_second_nothing_lost_or_doubled() {
    let sim = centre(centre_cfg()).await; // 100 parts/s, window 10
    let mut cc = client_cfg(&sim);
    // Misconfigured above the centre's limit, so that the throttling path is what holds the rate.
    cc.max_rate_per_second = Some(150);
    let (h, _rx) = SmppClient::start(cc);
    let singles: Vec<usize> = (0..700).filter(|i| i % 5 != 0).take(500).collect();
    assert_eq!(singles.len(), 500);
    let futs = singles.iter().map(|&i| {
        let h = h.clone();
        async move { (i, h.send(&key(i), &Phone::new(phone(i)), &notice(i)).await) }
    });
    for (i, r) in futures::future::join_all(futs).await {
        assert!(r.is_ok(), "notice {i}: {r:?}");
    }
    let l = &sim.ledger;
    assert_eq!(l.accepted(), 500, "no loss, no duplicate");
    let per_key = l.parts_per_key();
    assert_eq!(per_key.len(), 500);
    assert!(per_key.values().all(|n| *n == 1));
    assert!(l.throttled_rate() > 0, "the limit was reached");
    assert!(l.max_parts_in_any_second("gw-test") <= 100);
    let span = l.accept_span().as_secs_f64();
    let rate = 499.0 / span;
    eprintln!(
        "500 accepted in {span:.2} s ({rate:.0}/s), {} throttled answers",
        l.throttled_rate()
    );
    // Settles near the limit: a generous floor (the centre caps it at 100).
    assert!(rate > 40.0, "{rate:.0}/s");
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_at_the_limit_the_client_is_rarely_throttled() {
    let sim = centre(centre_cfg()).await;
    let (h, _rx) = SmppClient::start(client_cfg(&sim)); // paces itself at 100/s
    let results = send_all(&h, 1..201).await;
    assert!(results.values().all(Result::is_ok));
    assert_each_once(&sim, 1..201);
    // Throttling may still happen at the edges of the sliding second; it is not the rule.
    let parts = sim.ledger.accepted();
    assert!(
        sim.ledger.throttled_rate() < parts / 4,
        "{} throttled for {parts} parts",
        sim.ledger.throttled_rate()
    );
    h.shutdown().await;
    sim.shutdown().await;
}

/// Drops before processing (what a lost connection does to submits in flight): at most once reports
/// the unanswered parts; the caller resends them and every notice arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_mid_window_reported_then_resent_by_the_caller() {
    let mut sc = centre_cfg();
    sc.rate_per_second = 0;
    sc.seed = 3;
    sc.faults = SmscFaults {
        drop_connection_permille: 30,
        max_connection_faults: 6,
        ..SmscFaults::default()
    };
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.max_rate_per_second = None;
    let (h, _rx) = SmppClient::start(cc);
    let results = send_all(&h, 0..300).await;
    let mut unsettled = 0;
    let mut ambiguous = 0;
    for (i, r) in results {
        match r {
            Ok(_) => {}
            Err(SendError::Unsettled(u)) => {
                unsettled += 1;
                ambiguous += u.ambiguous();
                assert_eq!(u.key(), key(i));
                // The caller decides to resend (here it knows the centre dropped before processing).
                h.retry(*u).await.unwrap();
            }
            Err(e) => panic!("notice {i}: {e}"),
        }
    }
    assert!(sim.ledger.dropped_connections() >= 1);
    assert!(
        unsettled >= 1 && ambiguous >= 1,
        "the drops hit parts in flight"
    );
    assert!(sim.ledger.binds() >= 2, "reconnected");
    assert_each_once(&sim, 0..300);
    h.shutdown().await;
    sim.shutdown().await;
}

/// Responses lost after the centre booked the part: the client does not resend (at most once), so
/// nothing is doubled; the ambiguous parts' receipts later name ids the caller never got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_are_not_resent_and_receipts_name_them() {
    let mut sc = centre_cfg();
    sc.rate_per_second = 0;
    sc.seed = 5;
    sc.faults = SmscFaults {
        lose_resp_permille: 20,
        max_connection_faults: 4,
        ..SmscFaults::default()
    };
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.max_rate_per_second = None;
    let (h, mut rx) = SmppClient::start(cc);
    let results = send_all(&h, 0..300).await;
    let mut known: HashSet<String> = HashSet::new();
    let mut ambiguous = 0;
    for r in results.values() {
        match r {
            Ok(s) => known.extend(s.message_ids.iter().cloned()),
            Err(SendError::Unsettled(u)) => {
                ambiguous += u.ambiguous();
                known.extend(u.accepted().into_iter().map(|(_, id)| id));
                assert!(
                    u.outcomes
                        .iter()
                        .all(|o| !matches!(o, PartOutcome::Rejected(_)))
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    let lost = sim.ledger.lost_resps();
    assert!(lost >= 1);
    assert!(ambiguous >= lost, "{ambiguous} ambiguous, {lost} lost");
    // Nothing doubled: no key has more parts than its message.
    for m in sim.ledger.messages() {
        assert!(m.received <= m.total);
    }
    let per_key = sim.ledger.parts_per_key();
    for (i, n) in per_key.iter().map(|(k, n)| (k.clone(), *n)) {
        let idx: usize = i.trim_start_matches("notice:").parse().unwrap();
        let parts = gateway_parts(&notice(idx));
        assert!(n <= parts, "{i}: {n} parts booked for {parts}");
    }
    // The booked parts whose ids the client never got: their receipts come anyway.
    let unknown: HashSet<String> = sim
        .ledger
        .parts()
        .into_iter()
        .map(|p| p.message_id)
        .filter(|id| !known.contains(id))
        .collect();
    assert_eq!(unknown.len(), lost);
    let got = receipts(&mut rx, sim.ledger.accepted()).await;
    assert!(unknown.iter().all(|id| got.contains_key(id)));
    h.shutdown().await;
    sim.shutdown().await;
}

fn gateway_parts(text: &str) -> usize {
    codecs::format::smpp::text::split(text, 0).unwrap().len()
}

/// At least once: the client resends parts whose answer was lost with the connection. With drops
/// before processing (nothing booked unanswered) that is exactly once, with no caller action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_resends_by_itself() {
    let mut sc = centre_cfg();
    sc.rate_per_second = 0;
    sc.seed = 9;
    sc.faults = SmscFaults {
        drop_connection_permille: 30,
        max_connection_faults: 6,
        ..SmscFaults::default()
    };
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.max_rate_per_second = None;
    cc.unconfirmed = Unconfirmed::Resend;
    let (h, _rx) = SmppClient::start(cc);
    let results = send_all(&h, 0..300).await;
    assert!(results.values().all(Result::is_ok));
    assert!(sim.ledger.dropped_connections() >= 1);
    assert_each_once(&sim, 0..300);
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_connections_while_the_window_is_full() {
    let mut sc = centre_cfg();
    sc.rate_per_second = 0;
    // Slow answers keep the window full; the drop loses booked-but-unanswered parts.
    sc.resp_delay = Duration::from_millis(100);
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.max_rate_per_second = None;
    let (h, _rx) = SmppClient::start(cc);
    let sending = tokio::spawn({
        let h = h.clone();
        async move { send_all(&h, 0..60).await }
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    sim.drop_connections();
    let results = sending.await.unwrap();
    let ambiguous: usize = results
        .values()
        .filter_map(|r| match r {
            Err(SendError::Unsettled(u)) => Some(u.ambiguous()),
            _ => None,
        })
        .sum();
    assert!(
        (1..=10).contains(&ambiguous),
        "{ambiguous}: at most a window"
    );
    // Booked but unanswered when the line went: ambiguous, and not sent again.
    let lost = sim.ledger.lost_resps();
    assert!(
        lost >= 1 && ambiguous >= lost,
        "{lost} lost, {ambiguous} ambiguous"
    );
    assert!(sim.ledger.binds() >= 2);
    for m in sim.ledger.messages() {
        assert!(m.received <= m.total, "nothing doubled");
    }
    // Everything not ambiguous was accepted exactly once.
    let per_key = sim.ledger.parts_per_key();
    for (i, r) in &results {
        if let Ok(s) = r {
            assert_eq!(per_key[&key(*i)], s.message_ids.len());
        }
    }
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_parsed_and_sent_again_until_acknowledged() {
    let mut sc = centre_cfg();
    sc.faults = SmscFaults {
        undelivered_permille: 250,
        ..SmscFaults::default()
    };
    let sim = centre(sc).await;
    let (h, mut rx) = SmppClient::start(client_cfg(&sim));
    let results = send_all(&h, 0..40).await;
    let ids: HashMap<String, usize> = results
        .iter()
        .flat_map(|(i, r)| {
            r.as_ref()
                .unwrap()
                .message_ids
                .iter()
                .map(|id| (id.clone(), *i))
        })
        .collect();
    // The first receipt is dropped without ack: the centre is told to send it again.
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let again_id = first.receipt.message_id.clone();
    drop(first);
    let got = receipts(&mut rx, ids.len()).await;
    assert!(got.contains_key(&again_id));
    assert!(sim.ledger.receipts_nacked() >= 1);
    let undelivered = got
        .values()
        .filter(|r| r.stat == Stat::Undeliverable)
        .count();
    assert!(undelivered > 0 && undelivered < ids.len(), "{undelivered}");
    for (id, r) in &got {
        assert_eq!(r.recipient.expose(), format!("86{}", phone(ids[id])));
        assert!(r.done_at_beijing().is_some());
        assert_eq!(
            r.err.as_deref(),
            Some(if r.stat == Stat::Delivered {
                "000"
            } else {
                "001"
            })
        );
    }
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_centre_is_replaced_and_links_are_enquired_both_ways() {
    let mut sc = centre_cfg();
    sc.enquire_link_interval = Some(Duration::from_millis(50));
    let sim = centre(sc).await;
    let mut cc = client_cfg(&sim);
    cc.enquire_link_interval = Duration::from_millis(50);
    cc.dead_after = Duration::from_millis(400);
    let (h, _rx) = SmppClient::start(cc);
    let mut link = h.link();
    link.wait_for(|s| *s == LinkState::Bound).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sim.ledger.enquire_links_received() >= 1, "ours");
    assert!(
        sim.ledger.enquire_link_resps_received() >= 1,
        "theirs answered"
    );
    sim.set_silent(true);
    tokio::time::timeout(
        Duration::from_secs(5),
        link.wait_for(|s| matches!(s, LinkState::Connecting { .. })),
    )
    .await
    .expect("silence noticed")
    .unwrap();
    // The silent session still holds one of the two binds; the new one takes the other once the
    // centre speaks again.
    sim.set_silent(false);
    tokio::time::timeout(
        Duration::from_secs(5),
        link.wait_for(|s| *s == LinkState::Bound),
    )
    .await
    .expect("bound again")
    .unwrap();
    assert!(sim.ledger.binds() >= 2);
    let r = h
        .send("after", &Phone::new("13900000001"), "您好")
        .await
        .unwrap();
    assert_eq!(r.message_ids.len(), 1);
    h.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_bind_is_reported_and_bad_input_refused_before_sending() {
    let sim = centre(centre_cfg()).await;
    let mut cc = client_cfg(&sim);
    cc.password = SmscPassword::new("wrong");
    let (h, _rx) = SmppClient::start(cc);
    let mut link = h.link();
    let s = tokio::time::timeout(
        Duration::from_secs(5),
        link.wait_for(|s| matches!(s, LinkState::BindRefused { .. })),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert_eq!(
        s,
        LinkState::BindRefused {
            status: status::RINVPASWD
        }
    );
    assert!(matches!(
        h.send("k", &Phone::new("12345"), "hi").await,
        Err(SendError::InvalidDestination)
    ));
    assert!(matches!(
        h.send("k", &Phone::new("13912345678"), "").await,
        Err(SendError::Text(_))
    ));
    h.shutdown().await;
    // Shut down while never bound: nothing was sent.
    assert!(matches!(
        h.send("k", &Phone::new("13912345678"), "hi").await,
        Err(SendError::Closed)
    ));
    assert_eq!(sim.ledger.accepted(), 0);
    sim.shutdown().await;
}

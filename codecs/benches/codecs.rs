//! Codec microbenchmarks (issue 9): encode and decode throughput of every family, in items/s and
//! bytes/s (`Throughput::ElementsAndBytes`), on 1,000 items per iteration.
//!
//! ```text
//! cargo bench -p gw-codecs --bench codecs                 # everything (about 2 minutes)
//! cargo bench -p gw-codecs --bench codecs -- fixed_width  # one group
//! GW_BENCH_CLOCK=cpu cargo bench -p gw-codecs --bench codecs  # on-CPU time, groups `cpu-...`
//! python3 tools/bench/codec_medians.py --runs 3           # N runs, medians (docs/performance.md)
//! ```
//! `cargo test --all-targets` (or `--benches`) runs each benchmark once, as a smoke test.
//!
//! | group          | one element                                       | input                          |
//! |----------------|---------------------------------------------------|--------------------------------|
//! | `fixed_width`  | a bank A submit detail / result detail (202 B)     | layouts from bank A's profile  |
//! |                | (`_decode`: views, every value read; `_owned`)     |                                |
//! | `iso8583`      | a bank C payout `0200` (F128 as 8 fixed bytes)     | `MessageSpec::bank_c()`        |
//! | `mac`          | the MAC of one payout (x919, sm4), apart          | the payout's MAC input         |
//! | `pain001`      | a `CdtTrfTxInf` written (header once per 1,000)   | the writer into a `Vec`        |
//! | `pain002`      | a `TxInfAndSts` read (header once per 1,000)      | the streaming reader           |
//! | `smpp`         | a `submit_sm` PDU (UCS-2 notice, 1 or 2 parts)    | `SmppCodec`, `pdu::submit_sm`  |
//!
//! Bank A's layouts are read from `bank-profiles/profiles/402241000015.toml` with `toml` and this
//! crate's own `FieldSpec` serde, not through the `bank-profiles` crate: `bank-profiles` depends on
//! `codecs`, and a dev-dependency back to it would be a cycle (cargo allows it for dev-dependencies,
//! but it builds `codecs` twice and muddles which copy a type comes from). The profile file is the same
//! data; `bank-profiles`' own tests check that file loads and validates.
//!
//! The ISO 8583 ratio to pyiso8583 is `benches/iso8583_ratio.rs` (same messages, one run).
mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use codecs::format::fixed_width::messages::{
    QueryReply, QueryReplyHeader, Request, ResultDetail, ResultDetailView, Submit, SubmitDetail,
    SubmitDetailView, SubmitHeader, Trailer,
};
use codecs::format::iso8583::{self, MessageSpec, mac_input};
use codecs::format::iso20022::BeijingTime;
use codecs::format::iso20022::pain001::{
    AccountKind, GroupHeader, PaymentInfo, RecipientKind, Transaction, write_document,
};
use codecs::format::iso20022::pain002::{
    Pain002Reader, Reason, ReportHeader, StatusReason, StatusReport, TimeStyle, TxStatus,
    write_report,
};
use codecs::format::smpp::pdu::{self, SubmitFields};
use codecs::format::smpp::text::{self, decode_ucs2, read_udh};
use codecs::format::smpp::{Inbound, SmppCodec};
use codecs::mac::{self, MacAlg, MacKey};
use common::{BATCH, Rng};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use tokio_util::codec::{Decoder, Encoder};

/// This thread's on-CPU time instead of the wall clock (`GW_BENCH_CLOCK=cpu`): on a machine shared
/// with other work, time spent waiting for a core is left out (caches shared with the other work still
/// count). Read from `/proc/thread-self/schedstat` (no `unsafe`, no extra crate), whose figure moves at
/// scheduler ticks and switches, every 4 ms here: [`group`] makes every sample long enough.
struct CpuTime {
    wall: WallTime,
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        common::thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(common::thread_cpu_ns().saturating_sub(start))
    }
    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

/// A benchmark group. Under on-CPU time (`clock` = `cpu-`): 20 samples of equal size (flat sampling,
/// about 250 ms each), so that the 4 ms steps of the CPU clock stay within 2% of a sample; criterion's
/// default linear sampling starts with samples of a millisecond, which that clock may see as zero.
fn group<'a, M: Measurement>(
    c: &'a mut Criterion<M>,
    clock: &str,
    name: &str,
) -> BenchmarkGroup<'a, M> {
    let mut g = c.benchmark_group(format!("{clock}{name}"));
    if !clock.is_empty() {
        g.sampling_mode(SamplingMode::Flat).sample_size(20);
    }
    g
}

fn throughput<M: Measurement>(g: &mut BenchmarkGroup<'_, M>, elements: usize, bytes: usize) {
    g.throughput(Throughput::ElementsAndBytes {
        elements: elements as u64,
        bytes: bytes as u64,
    });
}

fn fixed_width<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let layouts = common::bank_a_layouts();
    let details = common::submit_details(BATCH);
    let unit = layouts.unit();
    let mut g = group(c, clock, "fixed_width");

    // What the gateway does per item when it builds a part: one detail appended to the part's buffer.
    throughput(&mut g, BATCH, BATCH * unit);
    let mut out = Vec::with_capacity(BATCH * unit);
    g.bench_function("submit_detail_encode", |b| {
        b.iter(|| {
            out.clear();
            for d in &details {
                layouts
                    .encode_submit_detail(&mut out, black_box(d))
                    .expect("encode");
            }
            black_box(&out);
        })
    });

    // What bank A's side (the simulator) does: a whole submit body read back into details.
    let total: u64 = details.iter().map(|d| d.amount).sum();
    let submit = Submit {
        header: SubmitHeader {
            batch_no: "GW2026030400010001".into(),
            payer_account: "0711012345678901".into(),
            payer_name: "县财政局惠民惠农代发专户".into(),
            subsidy_code: "NY001".into(),
            item_count: BATCH as u64,
            total_amount: total,
            submit_date: "20260304".into(),
            submit_time: "101500".into(),
            region_code: "220623".into(),
        },
        details: details.clone(),
        trailer: Trailer {
            item_count: BATCH as u64,
            total_amount: total,
        },
    };
    let body = layouts.encode_submit(&submit).expect("submit body");
    assert_eq!(
        layouts.decode_request(&body).expect("decode"),
        Request::Submit(submit)
    );
    throughput(&mut g, BATCH, body.len());
    // Every value read out of each checked view (`read_submit`): what the bank needs of a detail.
    let mut views = Vec::with_capacity(BATCH);
    layouts
        .read_submit(&body, |d| views.push(SubmitDetail::from(d)))
        .expect("read");
    assert_eq!(views, details);
    g.bench_function("submit_detail_decode", |b| {
        b.iter(|| {
            let mut n = 0;
            let (header, trailer) = layouts
                .read_submit(black_box(&body), |d| n += read_submit_detail(&d))
                .expect("read");
            black_box((n, header, trailer))
        })
    });
    // The owned `Submit` (seven `String`s per detail), as `decode_request` returns it.
    g.bench_function("submit_detail_decode_owned", |b| {
        b.iter(|| black_box(layouts.decode_request(black_box(&body)).expect("decode")))
    });

    // What the gateway reads: a final query reply with a result detail per item.
    let results = common::result_details(BATCH);
    let reply = QueryReply {
        header: QueryReplyHeader {
            batch_no: "GW2026030400010001".into(),
            query_id: "Q000001".into(),
            ret_code: "0000".into(),
            state: "F".into(),
            success_count: results.iter().filter(|d| d.result == "S").count() as u64,
            success_amount: 0,
            fail_count: 0,
            fail_amount: 0,
            reply_date: "20260304".into(),
            reply_time: "101600".into(),
        },
        details: results,
        trailer: Some(Trailer {
            item_count: BATCH as u64,
            total_amount: 0,
        }),
    };
    let body = layouts.encode_query_reply(&reply).expect("reply body");
    assert_eq!(
        layouts.decode_query_reply(&body, "F").expect("decode"),
        reply
    );
    let mut views = Vec::with_capacity(BATCH);
    layouts
        .read_query_reply(&body, "F", |d| views.push(ResultDetail::from(d)))
        .expect("read");
    assert_eq!(views, reply.details);
    throughput(&mut g, BATCH, body.len());
    // Every value read out of each checked view (`read_query_reply`).
    g.bench_function("result_detail_decode", |b| {
        b.iter(|| {
            let mut n = 0;
            let (header, trailer) = layouts
                .read_query_reply(black_box(&body), "F", |d| n += read_result_detail(&d))
                .expect("read");
            black_box((n, header, trailer))
        })
    });
    // The owned `QueryReply`, as `decode_query_reply` returns it (what the gateway takes today).
    g.bench_function("result_detail_decode_owned", |b| {
        b.iter(|| {
            black_box(
                layouts
                    .decode_query_reply(black_box(&body), "F")
                    .expect("decode"),
            )
        })
    });
    g.finish();
}

/// Every value of a submit detail view read out.
fn read_submit_detail(d: &SubmitDetailView<'_>) -> usize {
    let SubmitDetailView {
        seq,
        account_no,
        account_name,
        id_type,
        id_no,
        amount,
        account_kind,
        account_bank_code,
        phone,
        memo,
    } = *black_box(d);
    black_box(seq);
    black_box(amount);
    [
        account_no,
        account_name,
        id_type,
        id_no,
        account_kind,
        account_bank_code,
        phone,
        memo,
    ]
    .iter()
    .map(|t| black_box(t).len())
    .sum()
}

/// Every value of a result detail view read out.
fn read_result_detail(d: &ResultDetailView<'_>) -> usize {
    let ResultDetailView {
        seq,
        account_no,
        amount,
        result,
        fail_code,
        fail_reason,
        account_bank_code,
        confirm_date,
        confirm_time,
        bank_txn_no,
    } = *black_box(d);
    black_box(seq);
    black_box(amount);
    [
        account_no,
        result,
        fail_code,
        fail_reason,
        account_bank_code,
        confirm_date,
        confirm_time,
        bank_txn_no,
    ]
    .iter()
    .map(|t| black_box(t).len())
    .sum()
}

/// Every field of a decoded view read out as its value (text as `&str`, GBK decoded when not ASCII,
/// binary as bytes).
fn read_all(view: &iso8583::MessageView<'_>) -> usize {
    let mut n = 0;
    for f in view.numbers() {
        match view.text(f) {
            Some(t) => n += black_box(t).len(),
            None => n += black_box(view.bytes(f)).map_or(0, <[u8]>::len),
        }
    }
    n
}

fn iso8583<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let spec = MessageSpec::bank_c();
    let msgs = common::payouts(BATCH);
    let frames: Vec<Vec<u8>> = msgs
        .iter()
        .map(|m| iso8583::encode(&spec, m).expect("encode"))
        .collect();
    for (m, f) in msgs.iter().zip(&frames) {
        assert_eq!(&iso8583::decode(&spec, f).expect("decode"), m);
        let view = iso8583::decode_view(&spec, f).expect("decode_view");
        assert_eq!(&view.to_message(), m);
    }
    let bytes: usize = frames.iter().map(Vec::len).sum();
    let mut g = group(c, clock, "iso8583");
    throughput(&mut g, BATCH, bytes);
    g.bench_function("payout_encode", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(iso8583::encode(&spec, black_box(m)).expect("encode"));
            }
        })
    });
    // Every value read out of a checked view (`decode_view`): what pyiso8583's decode hands back.
    g.bench_function("payout_decode", |b| {
        b.iter(|| {
            for f in &frames {
                let view = iso8583::decode_view(&spec, black_box(f)).expect("decode");
                black_box(read_all(&view));
            }
        })
    });
    // The owned `Message` (a copy of every value in a `BTreeMap`), as the gateway's callers take it.
    g.bench_function("payout_decode_owned", |b| {
        b.iter(|| {
            for f in &frames {
                black_box(iso8583::decode(&spec, black_box(f)).expect("decode"));
            }
        })
    });
    // The figure compared with pyiso8583 (benches/iso8583_ratio.rs does the comparison).
    g.bench_function("payout_encode_decode", |b| {
        b.iter(|| {
            for m in &msgs {
                let f = iso8583::encode(&spec, black_box(m)).expect("encode");
                let view = iso8583::decode_view(&spec, &f).expect("decode");
                black_box(read_all(&view));
            }
        })
    });
    g.bench_function("payout_encode_decode_owned", |b| {
        b.iter(|| {
            for m in &msgs {
                let f = iso8583::encode(&spec, black_box(m)).expect("encode");
                black_box(iso8583::decode(&spec, &f).expect("decode"));
            }
        })
    });
    g.finish();

    // The MAC apart: what F128 adds to a payout (signing one; verifying costs the same).
    let key = MacKey::from_hex("0123456789ABCDEFFEDCBA9876543210").expect("key");
    let inputs: Vec<&[u8]> = frames.iter().map(|f| mac_input(f)).collect();
    let mac_bytes: usize = inputs.iter().map(|i| i.len()).sum();
    let mut g = group(c, clock, "mac");
    throughput(&mut g, BATCH, mac_bytes);
    for alg in [MacAlg::X919, MacAlg::Sm4] {
        g.bench_function(format!("payout_{alg}"), |b| {
            b.iter(|| {
                for i in &inputs {
                    black_box(mac::compute(alg, &key, black_box(i)));
                }
            })
        });
    }
    g.finish();
}

fn transactions(n: usize) -> Vec<Transaction> {
    let mut r = Rng::new(4);
    (1..=n as u64)
        .map(|seq| Transaction {
            seq,
            end_to_end_id: format!("GW-20260303-0001-{seq:06}"),
            amount_fen: r.amount(),
            account_bank_code: "102241000019".into(),
            name: r.name(),
            recipient_kind: RecipientKind::Person,
            id_no: r.id_no(),
            phone: r.phone(),
            account_no: format!("6217{}", r.digits(15)),
            account_kind: AccountKind::Ssc,
            memo: r.memo().into(),
        })
        .collect()
}

fn iso20022<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    let txs = transactions(BATCH);
    let header = GroupHeader {
        msg_id: "GW-20260303-0001".into(),
        created: "2026-03-03T09:15:00".into(),
        nb_of_txs: BATCH as u64,
        ctrl_sum_fen: txs.iter().map(|t| t.amount_fen).sum(),
        initiating_party: "220623-NYNC".into(),
    };
    let payment = PaymentInfo {
        subsidy_code: "NY001".into(),
        execution_date: "2026-03-03".into(),
        payer_name: "县财政局惠民惠农代发专户".into(),
        payer_account: "0711012345678901".into(),
        payer_bank_code: "103241000018".into(),
    };
    let doc = write_document(&header, &payment, &txs).expect("pain.001");
    let mut g = group(c, clock, "pain001");
    throughput(&mut g, BATCH, doc.len());
    // Validation of every value against its XSD type included, as the gateway writes.
    g.bench_function("write_transaction", |b| {
        b.iter(|| black_box(write_document(&header, &payment, black_box(&txs)).expect("write")))
    });
    g.finish();

    let created = BeijingTime::new(2026, 3, 4, 10, 20, 30).expect("time");
    let mut report_header = ReportHeader::about("B-20260304-0001", created, "GW-20260303-0001");
    report_header.group_status = Some("PART".into());
    let statuses: Vec<TxStatus> = txs
        .iter()
        .map(|t| {
            let failed = t.seq % 10 == 0;
            TxStatus {
                original_instr_id: Some(t.seq.to_string()),
                original_end_to_end_id: Some(t.end_to_end_id.clone()),
                status: Some(if failed { "RJCT" } else { "ACCC" }.into()),
                reasons: if failed {
                    vec![StatusReason {
                        reason: Some(Reason::Code("AC06".into())),
                        additional_info: vec!["账户已冻结".into()],
                    }]
                } else {
                    Vec::new()
                },
                acceptance_time: Some(created),
                account_servicer_ref: Some(format!("BK{:016}", t.seq)),
                creditor_agent: Some(t.account_bank_code.clone()),
            }
        })
        .collect();
    let report = StatusReport {
        header: report_header,
        transactions: statuses,
    };
    let body = write_report(&report, TimeStyle::Offset).expect("pain.002");
    let read = |body: &[u8]| {
        let mut r = Pain002Reader::new(body).expect("header");
        let mut n = 0usize;
        while let Some(tx) = r.next_transaction().expect("transaction") {
            black_box(tx);
            n += 1;
        }
        n
    };
    assert_eq!(read(&body), BATCH);
    let mut g = group(c, clock, "pain002");
    throughput(&mut g, BATCH, body.len());
    g.bench_function("read_transaction", |b| {
        b.iter(|| black_box(read(black_box(&body))))
    });
    g.finish();
}

fn smpp<M: Measurement>(c: &mut Criterion<M>, clock: &str) {
    const SUBSIDIES: &[&str] = &[
        "耕地地力保护补贴",
        "农机购置与应用补贴",
        "城乡居民基本养老保险待遇及丧葬补助金、高龄津贴、困难群众基本生活救助资金",
    ];
    let mut r = Rng::new(5);
    let notices: Vec<String> = (0..BATCH)
        .map(|_| {
            let fen = r.amount();
            format!(
                "【惠民惠农】您的{}{}.{:02}元已于3月7日发放至您尾号{}的社保卡，请注意查收。",
                SUBSIDIES[r.below(SUBSIDIES.len())],
                fen / 100,
                fen % 100,
                r.digits(4),
            )
        })
        .collect();
    let fields = SubmitFields {
        service_number: "106575261234".into(),
        destination: String::new(),
        registered_delivery: 1,
        key_tlv: None,
    };
    let phones: Vec<String> = (0..BATCH).map(|_| format!("86{}", r.phone())).collect();
    let encode_all = |out: &mut BytesMut| {
        let mut codec = SmppCodec::default();
        let mut pdus = 0usize;
        let mut fields = fields.clone();
        for (i, (text, phone)) in notices.iter().zip(&phones).enumerate() {
            fields.destination.clone_from(phone);
            for part in text::split(text, i as u8).expect("split") {
                pdus += 1;
                let cmd = pdu::submit_sm(pdus as u32, &fields, &part).expect("submit_sm");
                codec.encode(&cmd, out).expect("encode");
            }
        }
        pdus
    };
    let mut stream = BytesMut::new();
    let pdus = encode_all(&mut stream);
    let stream = stream.freeze();
    let mut g = group(c, clock, "smpp");
    throughput(&mut g, pdus, stream.len());
    let mut out = BytesMut::with_capacity(stream.len());
    // Text to UCS-2 parts, the PDU built, and its octets: what the notice sender does per part.
    g.bench_function("submit_sm_encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(encode_all(&mut out));
        })
    });
    // The centre's side: PDUs cut from the stream, read, their text decoded.
    g.bench_function("submit_sm_decode", |b| {
        b.iter(|| {
            let mut codec = SmppCodec::default();
            let mut buf = BytesMut::from(&stream[..]);
            let mut n = 0usize;
            while let Some(frame) = codec.decode(&mut buf).expect("frame") {
                let Inbound::Pdu(cmd) = frame else {
                    panic!("malformed PDU")
                };
                let sm = pdu::read_submit_sm(&cmd).expect("submit_sm");
                let (_concat, ucs2) = read_udh(sm.esm_class, &sm.short_message).expect("udh");
                black_box(decode_ucs2(ucs2).expect("ucs2"));
                n += 1;
            }
            assert_eq!(n, pdus);
        })
    });
    g.finish();
}

fn all<M: Measurement>(mut c: Criterion<M>, clock: &str) {
    fixed_width(&mut c, clock);
    iso8583(&mut c, clock);
    iso20022(&mut c, clock);
    smpp(&mut c, clock);
    c.final_summary();
}

fn main() {
    let c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    match std::env::var("GW_BENCH_CLOCK").as_deref() {
        // Its own group names (`cpu-fixed_width`...): criterion compares a run with the last one of
        // the same name, and on-CPU and wall-clock figures must not be compared.
        Ok("cpu") => all(
            c.with_measurement(CpuTime { wall: WallTime })
                .configure_from_args(),
            "cpu-",
        ),
        Ok("wall") | Err(_) => all(c.configure_from_args(), ""),
        Ok(other) => panic!("GW_BENCH_CLOCK is `wall` (default) or `cpu`, not `{other}`"),
    }
}

//! Bank A's detail views (`read_submit`, `read_query_reply`) against the owned decoders
//! (`decode_request`, `decode_query_reply`): the same values on good messages, the same error on bad
//! ones (truncated, wrong record tag, bad digits, bad GBK, control characters, broken terminators), and
//! ASCII values borrowed from the body rather than copied. The layouts are bank A's profile, read as
//! the benchmarks read it.
#[path = "../benches/common/mod.rs"]
mod inputs;

use codecs::field::gbk;
use codecs::format::fixed_width::DecodeError;
use codecs::format::fixed_width::messages::{
    Layouts, MessageError, QueryReply, QueryReplyHeader, Request, ResultDetail, Submit,
    SubmitDetail, SubmitHeader, Trailer,
};

const UNIT: usize = 202;
const FINAL: &str = "F";
/// Offsets inside a submit detail record (bank A's profile).
const SEQ: usize = 1;
const ACCOUNT_NAME: usize = 41;
const AMOUNT: usize = 120;
const MEMO: usize = 159;
/// Offsets inside a result detail record.
const RESULT_AMOUNT: usize = 41;
const FAIL_REASON: usize = 61;

fn submit(n: usize) -> Submit {
    let details = inputs::submit_details(n);
    let total = details.iter().map(|d| d.amount).sum();
    Submit {
        header: SubmitHeader {
            batch_no: "GW2026030400010001".into(),
            payer_account: "0711012345678901".into(),
            payer_name: "县财政局惠民惠农代发专户".into(),
            subsidy_code: "NY001".into(),
            item_count: n as u64,
            total_amount: total,
            submit_date: "20260304".into(),
            submit_time: "101500".into(),
            region_code: "220623".into(),
        },
        details,
        trailer: Trailer {
            item_count: n as u64,
            total_amount: total,
        },
    }
}

fn query_reply(n: usize) -> QueryReply {
    let details = inputs::result_details(n);
    QueryReply {
        header: QueryReplyHeader {
            batch_no: "GW2026030400010001".into(),
            query_id: "Q000001".into(),
            ret_code: "0000".into(),
            state: FINAL.into(),
            success_count: details.iter().filter(|d| d.result == "S").count() as u64,
            reply_date: "20260304".into(),
            reply_time: "101600".into(),
            ..QueryReplyHeader::default()
        },
        details,
        trailer: Some(Trailer {
            item_count: n as u64,
            total_amount: 0,
        }),
    }
}

/// The submit read through the views, every view made owned.
fn read_submit(l: &Layouts, body: &[u8]) -> Result<Submit, MessageError> {
    let mut details = Vec::new();
    let (header, trailer) = l.read_submit(body, |d| details.push(SubmitDetail::from(d)))?;
    Ok(Submit {
        header,
        details,
        trailer,
    })
}

fn read_query_reply(l: &Layouts, body: &[u8]) -> Result<QueryReply, MessageError> {
    let mut details = Vec::new();
    let (header, trailer) =
        l.read_query_reply(body, FINAL, |d| details.push(ResultDetail::from(d)))?;
    Ok(QueryReply {
        header,
        details,
        trailer,
    })
}

/// Both submit readers on `body`: equal, and the error (when there is one) returned.
fn submit_agree(l: &Layouts, body: &[u8]) -> Option<MessageError> {
    let owned = l.decode_request(body).map(|r| match r {
        Request::Submit(s) => s,
        other => panic!("not a submit: {other:?}"),
    });
    assert_eq!(read_submit(l, body), owned);
    owned.err()
}

fn query_reply_agree(l: &Layouts, body: &[u8]) -> Option<MessageError> {
    let owned = l.decode_query_reply(body, FINAL);
    assert_eq!(read_query_reply(l, body), owned);
    owned.err()
}

fn field_error(record: usize, field: &str, offset: usize, problem: &'static str) -> MessageError {
    MessageError::Record {
        record,
        source: DecodeError::Field {
            field: field.into(),
            offset,
            problem,
        },
    }
}

#[test]
fn views_give_the_values_of_the_owned_decode() {
    let l = inputs::bank_a_layouts();
    let s = submit(1_000);
    let body = l.encode_submit(&s).expect("encode");
    assert_eq!(submit_agree(&l, &body), None);
    assert_eq!(read_submit(&l, &body), Ok(s.clone()));

    // Each view against the generic record reader (values looked up by field name).
    let mut i = 0;
    l.read_submit(&body, |d| {
        i += 1;
        let rec = &body[i * UNIT..i * UNIT + UNIT - 2];
        let r = l.submit_detail.decode(rec).expect("record");
        assert_eq!(Some(d.seq), r.num("seq"));
        assert_eq!(Some(d.account_no), r.get("account_no"));
        assert_eq!(Some(d.account_name), r.get("account_name"));
        assert_eq!(Some(d.id_type), r.get("id_type"));
        assert_eq!(Some(d.id_no), r.get("id_no"));
        assert_eq!(Some(d.amount), r.num("amount"));
        assert_eq!(Some(d.account_kind), r.get("account_kind"));
        assert_eq!(Some(d.account_bank_code), r.get("account_bank_code"));
        assert_eq!(Some(d.phone), r.get("phone"));
        assert_eq!(Some(d.memo), r.get("memo"));
        // ASCII values are the body's own bytes, not copies.
        let inside = |t: &str| body.as_ptr_range().contains(&t.as_ptr());
        assert!(inside(d.account_no) && inside(d.id_no) && inside(d.phone));
        assert!(!inside(d.account_name), "a GBK name is decoded");
    })
    .expect("read");
    assert_eq!(i, 1_000);

    let r = query_reply(1_000);
    let body = l.encode_query_reply(&r).expect("encode");
    assert_eq!(query_reply_agree(&l, &body), None);
    assert_eq!(read_query_reply(&l, &body), Ok(r));
}

#[test]
fn views_and_owned_decode_refuse_bad_submits_alike() {
    let l = inputs::bank_a_layouts();
    let good = l.encode_submit(&submit(3)).expect("encode");
    let with = |at: usize, bytes: &[u8]| {
        let mut body = good.clone();
        body[at..at + bytes.len()].copy_from_slice(bytes);
        body
    };
    // Detail 2 is record 2, at 2 * UNIT.
    let d2 = 2 * UNIT;
    let cases: Vec<(&str, Vec<u8>, MessageError)> = vec![
        (
            "truncated by a byte",
            good[..good.len() - 1].to_vec(),
            MessageError::Body(DecodeError::BodyLength {
                len: good.len() - 1,
                unit: UNIT,
            }),
        ),
        (
            "truncated by a record (no trailer)",
            good[..good.len() - UNIT].to_vec(),
            MessageError::Structure {
                record: 3,
                problem: "submit does not end with a trailer",
            },
        ),
        (
            "header and trailer only",
            [&good[..UNIT], &good[good.len() - UNIT..]].concat(),
            MessageError::Structure {
                record: 1,
                problem: "a submit has at least one detail",
            },
        ),
        (
            "wrong detail tag",
            with(d2, b"X"),
            MessageError::Structure {
                record: 2,
                problem: "expected a submit detail",
            },
        ),
        (
            "a trailer among the details",
            with(d2, b"T"),
            MessageError::Structure {
                record: 2,
                problem: "expected a submit detail",
            },
        ),
        (
            "broken terminator",
            with(d2 + UNIT - 2, b"\n\r"),
            MessageError::Body(DecodeError::Terminator {
                record: 2,
                offset: d2 + UNIT - 2,
            }),
        ),
        (
            "bad digit in seq",
            with(d2 + SEQ + 3, b"x"),
            field_error(2, "seq", SEQ, "not digits"),
        ),
        (
            "space in amount",
            with(d2 + AMOUNT + 14, b" "),
            field_error(2, "amount", AMOUNT, "not digits"),
        ),
        (
            "A2E3 (a euro sign in WHATWG GBK, not in the banks' code page) in the name",
            with(d2 + ACCOUNT_NAME, b"\xA2\xE3"),
            field_error(
                2,
                "account_name",
                ACCOUNT_NAME,
                "not GBK text (or a character split at the field boundary)",
            ),
        ),
        (
            "half a character at the end of the memo",
            with(MEMO + d2 + 39, b"\xD5"),
            field_error(
                2,
                "memo",
                MEMO,
                "not GBK text (or a character split at the field boundary)",
            ),
        ),
        (
            "control character in the name",
            with(d2 + ACCOUNT_NAME + 4, b"\x09"),
            field_error(2, "account_name", ACCOUNT_NAME, "control character in text"),
        ),
        (
            "bad digit in the trailer's count",
            with(4 * UNIT + 3, b"?"),
            field_error(4, "item_count", 1, "not digits"),
        ),
    ];
    for (what, body, want) in cases {
        assert_eq!(submit_agree(&l, &body), Some(want), "{what}");
    }

    // The first bad record is the one reported, whichever reader: a detail before the trailer.
    let mut body = with(d2 + AMOUNT, b"x");
    body[4 * UNIT + 3] = b'?';
    assert_eq!(
        submit_agree(&l, &body),
        Some(field_error(2, "amount", AMOUNT, "not digits"))
    );
    // The details before a bad one were handed over; the caller learns of the error on return.
    let mut handed = 0;
    assert!(l.read_submit(&body, |_| handed += 1).is_err());
    assert_eq!(handed, 1);

    // Not a submit at all: the view reader says so, where `decode_request` reads another request.
    let query = l
        .encode_query(&codecs::format::fixed_width::messages::Query {
            batch_no: "GW2026030400010001".into(),
            query_id: "Q000001".into(),
            query_date: "20260304".into(),
            query_time: "101600".into(),
        })
        .expect("query");
    assert_eq!(
        l.read_submit(&query, |_| {}),
        Err(MessageError::Structure {
            record: 0,
            problem: "not a submit",
        })
    );
    assert_eq!(
        l.read_submit(b"", |_| {}),
        Err(MessageError::Structure {
            record: 0,
            problem: "not a submit",
        })
    );
}

#[test]
fn views_and_owned_decode_refuse_bad_query_replies_alike() {
    let l = inputs::bank_a_layouts();
    let good = l.encode_query_reply(&query_reply(3)).expect("encode");
    let with = |at: usize, bytes: &[u8]| {
        let mut body = good.clone();
        body[at..at + bytes.len()].copy_from_slice(bytes);
        body
    };
    let d1 = UNIT;
    let cases: Vec<(&str, Vec<u8>, MessageError)> = vec![
        (
            "truncated by a byte",
            good[..good.len() - 1].to_vec(),
            MessageError::Body(DecodeError::BodyLength {
                len: good.len() - 1,
                unit: UNIT,
            }),
        ),
        (
            "truncated by a record (no trailer)",
            good[..good.len() - UNIT].to_vec(),
            MessageError::Structure {
                record: 3,
                problem: "results do not end with a trailer",
            },
        ),
        (
            "the header alone, final",
            good[..UNIT].to_vec(),
            MessageError::Structure {
                record: 0,
                problem: "a final reply without its results",
            },
        ),
        (
            "wrong detail tag",
            with(d1, b"Q"),
            MessageError::Structure {
                record: 1,
                problem: "expected a result detail",
            },
        ),
        (
            "bad digit in the amount",
            with(d1 + RESULT_AMOUNT + 2, b"-"),
            field_error(1, "amount", RESULT_AMOUNT, "not digits"),
        ),
        (
            "A2E3 in the failure text",
            with(d1 + FAIL_REASON, b"\xA2\xE3"),
            field_error(
                1,
                "fail_reason",
                FAIL_REASON,
                "not GBK text (or a character split at the field boundary)",
            ),
        ),
        (
            "DEL in the failure text",
            with(d1 + FAIL_REASON, b"\x7F"),
            field_error(1, "fail_reason", FAIL_REASON, "control character in text"),
        ),
    ];
    for (what, body, want) in cases {
        assert_eq!(query_reply_agree(&l, &body), Some(want), "{what}");
    }
}

/// Every byte value at every offset of one detail record: both readers agree on every one.
#[test]
fn every_byte_everywhere_in_a_detail() {
    let l = inputs::bank_a_layouts();
    let mut s = submit(2);
    // A name and memo mixing ASCII and GBK, so that bytes land in both kinds of text.
    s.details[0].account_name = "阿依古丽·买买提 A".into();
    s.details[0].memo = "8月 第2批".into();
    let good = l.encode_submit(&s).expect("encode");
    let r = query_reply(2);
    let good_reply = l.encode_query_reply(&r).expect("encode");
    let mut refused = 0;
    for at in UNIT..2 * UNIT - 2 {
        for b in [
            0x00, 0x09, b' ', b'0', b'9', b'A', 0x7F, 0x80, 0x81, 0xA2, 0xE3, 0xFF,
        ] {
            let mut body = good.clone();
            body[at] = b;
            refused += usize::from(submit_agree(&l, &body).is_some());
            let mut body = good_reply.clone();
            body[at] = b;
            query_reply_agree(&l, &body);
        }
    }
    assert!(refused > 0);
    // GBK decoding of the names themselves is the shared strict decoder's.
    assert_eq!(
        gbk::decode(&good[UNIT + ACCOUNT_NAME..UNIT + ACCOUNT_NAME + 18]).expect("gbk"),
        "阿依古丽·买买提 A"
    );
}

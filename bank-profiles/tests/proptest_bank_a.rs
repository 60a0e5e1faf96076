//! Property tests of bank A's messages over the builtin profile's layouts: generated submits and query
//! replies survive encode -> decode (free text cut at a character boundary when it does not fit), no
//! input bytes make a decoder panic, and the detail views agree with the owned decoders on all of them.
use std::sync::LazyLock;

use codecs::field::gbk;
use codecs::format::fixed_width::messages::{
    Layouts, MessageError, QueryReply, QueryReplyHeader, Request, ResultDetail, Submit,
    SubmitDetail, SubmitHeader, SubmitReply, Trailer,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

const BANK: &str = "402241000015";
const FINAL: &str = "F";
const UNIT: usize = 202;
/// `account_name` / `payer_name` / `fail_reason` width, and `memo` width, in bytes.
const NAME_WIDTH: usize = 60;
const MEMO_WIDTH: usize = 40;
/// Where `account_name` sits in a submit detail record.
const ACCOUNT_NAME: std::ops::Range<usize> = 41..101;

static LAYOUTS: LazyLock<Layouts> = LazyLock::new(|| {
    let profiles = bank_profiles::builtin().expect("builtin profiles load");
    let fw = profiles
        .get(BANK)
        .and_then(|p| p.fixed_width.as_ref())
        .expect("bank A has a fixed-width table");
    fw.messages().expect("bank A's layouts are complete")
});

/// Common hanzi of names and memos (all two bytes in GBK), and the middle dot of transcribed names.
const HANZI: &str = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡\
余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万\
钱严覃武戴莫孔向汤明华建国军平文英秀兰芳玉红霞丽敏静燕娟艳合作社农业专补贴耕地保护机购置财政局县市镇村\
阿依买提·";

fn hanzi() -> impl Strategy<Value = char> {
    select(HANZI.chars().collect::<Vec<_>>())
}

fn ascii() -> impl Strategy<Value = char> {
    select(
        ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain("-()".chars())
            .collect::<Vec<_>>(),
    )
}

fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![ascii(), hanzi()]
}

/// GBK length of the generated text: ASCII one byte, every other character two.
fn gbk_len(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// What the bank reads back: the longest character prefix that fits `width` bytes.
fn cut(s: &str, width: usize) -> String {
    let mut used = 0;
    s.chars()
        .take_while(|c| {
            used += gbk_len(c.encode_utf8(&mut [0; 4]));
            used <= width
        })
        .collect()
}

/// Free text: short or long mixes, exactly `width` bytes, `width + 1` bytes ending in a hanzi (cut
/// mid-character unless the cut is right), and well over `width`.
fn free_text(width: usize) -> BoxedStrategy<String> {
    let exact = (0..=width / 2)
        .prop_flat_map(move |n| (vec(hanzi(), n), vec(ascii(), width - 2 * n)))
        .prop_map(|(mut h, a)| {
            h.extend(a);
            h
        })
        .prop_shuffle()
        .prop_map(|v| v.into_iter().collect::<String>());
    let odd_over = (0..width / 2).prop_flat_map(move |n| {
        (
            vec(hanzi(), n),
            vec(ascii(), width + 1 - 2 * (n + 1)),
            hanzi(),
        )
            .prop_map(|(h, a, last)| {
                h.into_iter()
                    .chain(a)
                    .chain(std::iter::once(last))
                    .collect::<String>()
            })
    });
    prop_oneof![
        4 => vec(text_char(), 0..=width / 2).prop_map(|v| v.into_iter().collect::<String>()),
        2 => vec(text_char(), width / 2..=width + 10).prop_map(|v| v.into_iter().collect::<String>()),
        2 => exact,
        2 => odd_over,
        1 => Just(format!("a{}", "张".repeat(width / 2))),
    ]
    .boxed()
}

/// Exactly `n` digits (dates, times, codes).
fn digits(n: usize) -> impl Strategy<Value = String> {
    vec(b'0'..=b'9', n).prop_map(|d| d.into_iter().map(char::from).collect())
}

fn header_strategy() -> impl Strategy<Value = SubmitHeader> {
    (
        "[0-9A-Za-z]{1,20}",
        "[0-9]{1,32}",
        free_text(NAME_WIDTH),
        "[0-9A-Z]{0,10}",
        digits(8),
        digits(6),
        digits(6),
    )
        .prop_map(
            |(
                batch_no,
                payer_account,
                payer_name,
                subsidy_code,
                submit_date,
                submit_time,
                region_code,
            )| {
                SubmitHeader {
                    batch_no,
                    payer_account,
                    payer_name,
                    subsidy_code,
                    item_count: 0,
                    total_amount: 0,
                    submit_date,
                    submit_time,
                    region_code,
                }
            },
        )
}

fn detail_strategy() -> impl Strategy<Value = SubmitDetail> {
    (
        "[0-9]{1,32}",
        free_text(NAME_WIDTH),
        select(vec!["1", "2"]),
        "[0-9A-Za-z]{0,18}",
        1..=999_999_999_999_999u64,
        select(vec!["S", "C", "P"]),
        digits(12),
        "(1[3-9][0-9]{9})?",
        free_text(MEMO_WIDTH),
    )
        .prop_map(
            |(account_no, account_name, id_type, id_no, amount, kind, bank, phone, memo)| {
                SubmitDetail {
                    seq: 0,
                    account_no,
                    account_name,
                    id_type: id_type.to_owned(),
                    id_no,
                    amount,
                    account_kind: kind.to_owned(),
                    account_bank_code: bank,
                    phone,
                    memo,
                }
            },
        )
}

/// A submit with 1..=8 details, `seq` strictly rising (with gaps), totals that add up.
fn submit_strategy() -> impl Strategy<Value = Submit> {
    (
        header_strategy(),
        vec((detail_strategy(), 1..=1000u64), 1..=8),
        0..99_000_000u64,
    )
        .prop_map(|(mut header, items, start)| {
            let mut seq = start;
            let details: Vec<SubmitDetail> = items
                .into_iter()
                .map(|(mut d, gap)| {
                    seq += gap;
                    d.seq = seq;
                    d
                })
                .collect();
            let trailer = Trailer {
                item_count: details.len() as u64,
                total_amount: details.iter().map(|d| d.amount).sum(),
            };
            header.item_count = trailer.item_count;
            header.total_amount = trailer.total_amount;
            Submit {
                header,
                details,
                trailer,
            }
        })
}

/// The submit as the bank reads it: free text cut to its field.
fn as_read(s: &Submit) -> Submit {
    let mut s = s.clone();
    s.header.payer_name = cut(&s.header.payer_name, NAME_WIDTH);
    for d in &mut s.details {
        d.account_name = cut(&d.account_name, NAME_WIDTH);
        d.memo = cut(&d.memo, MEMO_WIDTH);
    }
    s
}

fn result_strategy() -> impl Strategy<Value = ResultDetail> {
    (
        (1..=99_999_999u64, "[0-9]{1,32}", 1..=999_999_999_999_999u64),
        prop_oneof![
            Just(("S".to_owned(), String::new())),
            "A00[1-59]".prop_map(|c| ("F".to_owned(), c)),
        ],
        free_text(NAME_WIDTH),
        (digits(12), digits(8), digits(6), "[0-9A-Za-z]{0,32}"),
    )
        .prop_map(
            |(
                (seq, account_no, amount),
                (result, fail_code),
                fail_reason,
                (bank, date, time, txn),
            )| {
                ResultDetail {
                    seq,
                    account_no,
                    amount,
                    result,
                    fail_code,
                    fail_reason,
                    account_bank_code: bank,
                    confirm_date: date,
                    confirm_time: time,
                    bank_txn_no: txn,
                }
            },
        )
}

/// Processing (header only), final (details and trailer), or not answered (state blank).
fn query_reply_strategy() -> impl Strategy<Value = QueryReply> {
    let header = (
        "[0-9A-Za-z]{1,20}",
        "[0-9A-Za-z]{0,20}",
        (0..=99_999_999u64, 0..=999_999_999_999_999_999u64),
        (0..=99_999_999u64, 0..=999_999_999_999_999_999u64),
        digits(8),
        digits(6),
    )
        .prop_map(
            |(batch_no, query_id, (sc, sa), (fc, fa), reply_date, reply_time)| QueryReplyHeader {
                batch_no,
                query_id,
                ret_code: "0000".into(),
                state: String::new(),
                success_count: sc,
                success_amount: sa,
                fail_count: fc,
                fail_amount: fa,
                reply_date,
                reply_time,
            },
        );
    let shape = prop_oneof![
        Just(("0000", "P", None)),
        vec(result_strategy(), 0..=6).prop_map(|d| ("0000", FINAL, Some(d))),
        select(vec!["2001", "9999"]).prop_map(|code| (code, "", None)),
    ];
    (
        header,
        shape,
        (0..=99_999_999u64, 0..=999_999_999_999_999_999u64),
    )
        .prop_map(
            |(mut header, (code, state, details), (item_count, total_amount))| {
                header.ret_code = code.to_owned();
                header.state = state.to_owned();
                let trailer = details.as_ref().map(|_| Trailer {
                    item_count,
                    total_amount,
                });
                QueryReply {
                    header,
                    details: details.unwrap_or_default(),
                    trailer,
                }
            },
        )
}

/// Bytes that reach deep into the decoders: records of the right length and terminator, starting with
/// a known tag, filled with digits, spaces, GBK lead/trail bytes and bytes GBK never uses.
fn record_like() -> impl Strategy<Value = Vec<u8>> {
    let tag = select(vec![
        &b"H1001"[..],
        b"H2002",
        b"D",
        b"T",
        b"R1002",
        b"Q2001",
        b"E9001",
        b"E9002",
        b"E",
        b"X",
        b"",
    ]);
    let byte = prop_oneof![
        4 => Just(b' '),
        4 => b'0'..=b'9',
        2 => 0x81u8..=0xFE,
        2 => 0x40u8..=0x7E,
        1 => select(vec![0x80u8, 0xFF, 0x30, b'\r', b'\n', 0]),
        1 => any::<u8>(),
    ];
    let record = (tag, vec(byte, 200), prop::bool::weighted(0.95)).prop_map(|(tag, fill, crlf)| {
        let mut r = tag.to_vec();
        r.extend_from_slice(&fill);
        r.truncate(200);
        r.extend_from_slice(if crlf { b"\r\n" } else { b"\n\r" });
        r
    });
    vec(record, 0..=5).prop_map(|rs| rs.concat())
}

/// Runs every decoder on `body`; none may panic.
fn decode_all(body: &[u8]) {
    let l = &*LAYOUTS;
    let _ = l.decode_request(body);
    let _ = l.decode_query_reply(body, FINAL);
    let _ = l.decode_submit_reply(body);
    let _ = l.decode_echo(body);
}

/// The detail views (`read_submit`, `read_query_reply`) and the owned decoders agree on `body`: the
/// same values when it is accepted, the same error when it is not.
fn views_agree(body: &[u8]) -> Result<(), TestCaseError> {
    let l = &*LAYOUTS;
    let mut seen = Vec::new();
    let read = l.read_submit(body, |d| seen.push(SubmitDetail::from(d)));
    let first_is_submit = body
        .get(..UNIT - 2)
        .is_some_and(|r| l.submit_header.matches(r));
    match l.decode_request(body) {
        Ok(Request::Submit(s)) => {
            prop_assert_eq!(read, Ok((s.header, s.trailer)));
            prop_assert_eq!(seen, s.details);
        }
        Err(e) if first_is_submit || matches!(e, MessageError::Body(_)) => {
            prop_assert_eq!(read, Err(e));
        }
        // Another request, or not one: the view reader reads submits only.
        _ => prop_assert_eq!(
            read,
            Err(MessageError::Structure {
                record: 0,
                problem: "not a submit"
            })
        ),
    }
    let mut seen = Vec::new();
    let read = l.read_query_reply(body, FINAL, |d| seen.push(ResultDetail::from(d)));
    match l.decode_query_reply(body, FINAL) {
        Ok(r) => {
            prop_assert_eq!(read, Ok((r.header, r.trailer)));
            prop_assert_eq!(seen, r.details);
        }
        Err(e) => prop_assert_eq!(read, Err(e)),
    }
    Ok(())
}

/// Whatever a decoder accepts, the encoder writes again and it reads back the same (reserved fields
/// are not kept, so the bytes themselves may differ).
fn accepted_reencodes(body: &[u8]) -> Result<(), TestCaseError> {
    let l = &*LAYOUTS;
    if let Ok(r) = l.decode_request(body) {
        let again = match &r {
            Request::Submit(s) => l.encode_submit(s),
            Request::Query(q) => l.encode_query(q),
            Request::Echo(code) => l.encode_echo(code),
        };
        let again = again
            .map_err(|e| TestCaseError::fail(format!("request accepted, not re-encodable: {e}")))?;
        prop_assert_eq!(l.decode_request(&again).ok(), Some(r));
    }
    if let Ok(r) = l.decode_query_reply(body, FINAL) {
        let again = l.encode_query_reply(&r).map_err(|e| {
            TestCaseError::fail(format!("query reply accepted, not re-encodable: {e}"))
        })?;
        prop_assert_eq!(l.decode_query_reply(&again, FINAL).ok(), Some(r));
    }
    if let Ok(r) = l.decode_submit_reply(body) {
        let again = l.encode_submit_reply(&r).map_err(|e| {
            TestCaseError::fail(format!("submit reply accepted, not re-encodable: {e}"))
        })?;
        prop_assert_eq!(l.decode_submit_reply(&again).ok(), Some(r));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn submit_round_trips(s in submit_strategy()) {
        let l = &*LAYOUTS;
        let body = l.encode_submit(&s).expect("a generated submit fits bank A's fields");
        prop_assert_eq!(body.len(), l.submit_body_len(s.details.len()));
        let Request::Submit(got) = l.decode_request(&body).expect("decodes") else {
            return Err(TestCaseError::fail("not read back as a submit"));
        };
        let want = as_read(&s);
        prop_assert_eq!(&got, &want);

        for (i, (d, orig)) in got.details.iter().zip(&s.details).enumerate() {
            if gbk_len(&orig.account_name) <= NAME_WIDTH {
                prop_assert_eq!(&d.account_name, &orig.account_name, "a name that fits is kept whole");
            } else {
                // Cut: a character prefix, at most one byte short of the field (never half a character).
                prop_assert!(orig.account_name.starts_with(&d.account_name));
                let len = gbk_len(&d.account_name);
                prop_assert!(len == NAME_WIDTH || len == NAME_WIDTH - 1, "cut to {} bytes", len);
            }
            // The field's bytes are exactly the GBK of the name read back, then spaces.
            let rec = &body[(i + 1) * UNIT..(i + 2) * UNIT];
            let field = &rec[ACCOUNT_NAME];
            let name = gbk::encode(&d.account_name).expect("gbk");
            prop_assert_eq!(&field[..name.len()], &name[..]);
            prop_assert!(field[name.len()..].iter().all(|&b| b == b' '));
            prop_assert!(gbk::check_structure(&field[..name.len()]).is_ok());
        }
        prop_assert!(got.details.windows(2).all(|w| w[0].seq < w[1].seq));

        // What was read back encodes to the same bytes.
        views_agree(&body)?;
        prop_assert_eq!(l.encode_submit(&got).expect("re-encodes"), body);
    }

    #[test]
    fn query_reply_round_trips(r in query_reply_strategy()) {
        let l = &*LAYOUTS;
        let body = l.encode_query_reply(&r).expect("a generated reply fits bank A's fields");
        let got = l.decode_query_reply(&body, FINAL).expect("decodes");
        let mut want = r.clone();
        for d in &mut want.details {
            d.fail_reason = cut(&d.fail_reason, NAME_WIDTH);
        }
        prop_assert_eq!(&got, &want);
        views_agree(&body)?;
        prop_assert_eq!(l.encode_query_reply(&got).expect("re-encodes"), body);
    }

    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..=1024)) {
        decode_all(&body);
        views_agree(&body)?;
    }

    #[test]
    fn record_shaped_bytes_never_panic(body in record_like()) {
        decode_all(&body);
        views_agree(&body)?;
    }

    #[test]
    fn damaged_frames_never_panic(
        s in submit_strategy(),
        r in query_reply_strategy(),
        hits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..=4),
        keep in any::<prop::sample::Index>(),
    ) {
        let l = &*LAYOUTS;
        for mut body in [
            l.encode_submit(&s).expect("encodes"),
            l.encode_query_reply(&r).expect("encodes"),
        ] {
            for (at, b) in &hits {
                let i = at.index(body.len());
                body[i] = *b;
            }
            decode_all(&body);
            views_agree(&body)?;
            body.truncate(keep.index(body.len() + 1));
            decode_all(&body);
            views_agree(&body)?;
        }
    }

    #[test]
    fn what_is_accepted_reencodes(
        body in record_like(),
        s in submit_strategy(),
        r in query_reply_strategy(),
        patches in vec((any::<prop::sample::Index>(), 0x81u8..=0xFE, 0x40u8..=0xFE), 1..=3),
    ) {
        accepted_reencodes(&body)?;
        let l = &*LAYOUTS;
        for mut body in [
            l.encode_submit(&s).expect("encodes"),
            l.encode_query_reply(&r).expect("encodes"),
        ] {
            // Double-byte characters written over the frame: where they land in text, the frame may
            // still be accepted, and must then survive a second trip.
            for (at, lead, trail) in &patches {
                let i = at.index(body.len() - 1);
                body[i] = *lead;
                body[i + 1] = *trail;
            }
            accepted_reencodes(&body)?;
            views_agree(&body)?;
        }
    }
}

/// Every double-byte sequence the reader accepts in a text field, the writer must be able to write
/// again: otherwise a reply the gateway has read cannot be stored, logged or replayed as it was.
#[test]
fn every_accepted_double_byte_character_reencodes() {
    let l = &*LAYOUTS;
    let base = l
        .encode_submit_reply(&SubmitReply {
            batch_no: "A1".into(),
            ret_code: "0000".into(),
            accept_date: "20250318".into(),
            ..Default::default()
        })
        .expect("encodes");
    let ret_msg = 29;
    let mut refused = Vec::new();
    for lead in 0x81u8..=0xFE {
        for trail in (0x40u8..=0x7E).chain(0x80..=0xFE) {
            let mut body = base.clone();
            body[ret_msg] = lead;
            body[ret_msg + 1] = trail;
            if let Ok(r) = l.decode_submit_reply(&body)
                && l.encode_submit_reply(&r).is_err()
            {
                refused.push(format!("{lead:02X}{trail:02X}"));
            }
        }
    }
    assert!(refused.is_empty(), "read but not writable: {refused:?}");
}

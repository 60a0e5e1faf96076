//! Results: reconcile a bank's answer with what was sent, then apply item outcomes (with their events,
//! in the same transactions). An answer that does not reconcile is never applied: the part goes to
//! review and an alert is raised.
use std::collections::HashMap;

use bank_profiles::{Codes, ItemOutcome};
use codecs::format::fixed_width::messages::QueryReply;
use serde_json::json;

use crate::clock::{SHANGHAI, to_ms};
use crate::domain::ItemStatus;
use crate::intake::rules::{Violation, codes};
use crate::store::{EventRow, FinalInfo, ItemResult, SentItem};

/// Why an answer does not reconcile with what was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// `YYYYMMDD` + `HHMMSS` (Beijing) as Unix ms; `None` when blank or not a time.
pub fn beijing_ms(date: &str, time_of_day: &str) -> Option<i64> {
    if date.len() != 8 || time_of_day.len() != 6 || date == "00000000" {
        return None;
    }
    let n = |s: &str| s.parse::<u32>().ok();
    let y = i32::try_from(n(&date[0..4])?).ok()?;
    let m = time::Month::try_from(u8::try_from(n(&date[4..6])?).ok()?).ok()?;
    let d = time::Date::from_calendar_date(y, m, u8::try_from(n(&date[6..8])?).ok()?).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(n(&time_of_day[0..2])?).ok()?,
        u8::try_from(n(&time_of_day[2..4])?).ok()?,
        u8::try_from(n(&time_of_day[4..6])?).ok()?,
    )
    .ok()?;
    Some(to_ms(
        time::PrimitiveDateTime::new(d, t).assume_offset(SHANGHAI),
    ))
}

/// Reconciles a final fixed-width query reply with the part's items: every sent item has exactly one
/// result with the same account and amount, nothing else; the trailer and header totals add up.
pub fn reconcile_fixed_width(
    sent: &[SentItem],
    reply: &QueryReply,
    item_codes: &Codes,
    credited: &str,
) -> Result<Vec<ItemResult>, Mismatch> {
    let by_seq: HashMap<i64, &SentItem> = sent.iter().map(|i| (i.seq, i)).collect();
    let mut seen = HashMap::with_capacity(sent.len());
    let (mut success, mut success_amt, mut fail, mut fail_amt, mut sum) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut out = Vec::with_capacity(reply.details.len());
    for d in &reply.details {
        let seq = i64::try_from(d.seq)
            .map_err(|_| Mismatch(format!("result seq {} out of range", d.seq)))?;
        let Some(item) = by_seq.get(&seq) else {
            return Err(Mismatch(format!(
                "result for seq {seq}, which this part did not send"
            )));
        };
        if seen.insert(seq, ()).is_some() {
            return Err(Mismatch(format!("two results for seq {seq}")));
        }
        if i64::try_from(d.amount).ok() != Some(item.amount_fen) {
            return Err(Mismatch(format!(
                "seq {seq}: result amount {} fen, sent {} fen",
                d.amount, item.amount_fen
            )));
        }
        if d.account_no != item.account_no.expose() {
            return Err(Mismatch(format!(
                "seq {seq}: result for another account than the one sent"
            )));
        }
        sum = sum.saturating_add(d.amount);
        let key = if d.result == credited || d.fail_code.is_empty() {
            d.result.as_str()
        } else {
            d.fail_code.as_str()
        };
        let (outcome, reason) = item_codes.item_outcome(key);
        let status = match outcome {
            ItemOutcome::Succeeded => ItemStatus::Succeeded,
            ItemOutcome::Failed => ItemStatus::Failed,
            ItemOutcome::Review => ItemStatus::Review,
        };
        if d.result == credited {
            success += 1;
            success_amt = success_amt.saturating_add(d.amount);
        } else {
            fail += 1;
            fail_amt = fail_amt.saturating_add(d.amount);
        }
        let fail_reason = if d.fail_reason.is_empty() {
            reason.to_owned()
        } else {
            d.fail_reason.clone()
        };
        out.push(ItemResult {
            seq,
            status,
            result_code: key.to_owned(),
            fail_code: (status != ItemStatus::Succeeded).then(|| key.to_owned()),
            fail_reason: (status != ItemStatus::Succeeded).then_some(fail_reason),
            result_bank_code: d.account_bank_code.clone(),
            confirmed_at: beijing_ms(&d.confirm_date, &d.confirm_time),
            bank_txn_no: (!d.bank_txn_no.is_empty()).then(|| d.bank_txn_no.clone()),
        });
    }
    if out.len() != sent.len() {
        return Err(Mismatch(format!(
            "{} results for {} items sent",
            out.len(),
            sent.len()
        )));
    }
    let t = reply
        .trailer
        .ok_or_else(|| Mismatch("final reply without trailer".into()))?;
    if t.item_count != out.len() as u64 || t.total_amount != sum {
        return Err(Mismatch(format!(
            "trailer says {} results, {} fen; the details are {}, {} fen",
            t.item_count,
            t.total_amount,
            out.len(),
            sum
        )));
    }
    let h = &reply.header;
    if h.success_count != success
        || h.success_amount != success_amt
        || h.fail_count != fail
        || h.fail_amount != fail_amt
    {
        return Err(Mismatch(
            "header counts and amounts do not match the details".into(),
        ));
    }
    Ok(out)
}

/// The events an item result causes.
pub fn item_events(now: i64, batch_id: &str, bank: &str, r: &ItemResult) -> Vec<EventRow> {
    let ev = |kind: &str, code: Option<&str>, data: serde_json::Value| {
        let e = EventRow::new(kind, now, bank, data)
            .batch(batch_id)
            .item(Some(r.seq));
        match code {
            Some(c) => e.code(c),
            None => e,
        }
    };
    match r.status {
        ItemStatus::Failed => vec![ev(
            "item.failed",
            None,
            json!({"fail_code": r.fail_code, "fail_reason": r.fail_reason, "account_bank_code": r.result_bank_code}),
        )],
        ItemStatus::Review => {
            let w = Violation::item(
                codes::W_RESULT_REVIEW,
                r.seq,
                format!("bank answered `{}`, which needs an operator", r.result_code),
            );
            vec![
                ev(
                    "item.review",
                    None,
                    json!({"result_code": r.result_code, "fail_reason": r.fail_reason}),
                ),
                ev("warning", Some(w.code), json!({"message": w.message})),
            ]
        }
        _ => Vec::new(),
    }
}

/// The events of a batch that became final.
pub fn final_events(bank: &str, f: &FinalInfo) -> Vec<EventRow> {
    vec![
        EventRow::new(
            "batch.final",
            f.final_at,
            bank,
            json!({"query_due_at": f.query_due_at.map(crate::clock::rfc3339), "late": f.late}),
        )
        .batch(&f.batch_id),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Pii;
    use codecs::format::fixed_width::messages::{QueryReplyHeader, ResultDetail, Trailer};

    fn sent(seq: i64, amount: i64) -> SentItem {
        SentItem {
            seq,
            amount_fen: amount,
            account_no: Pii::new(format!("62179955057247541{seq:02}")),
            account_bank_code: "102241000019".into(),
        }
    }

    fn detail(seq: u64, amount: u64, result: &str, code: &str) -> ResultDetail {
        ResultDetail {
            seq,
            account_no: format!("62179955057247541{seq:02}"),
            amount,
            result: result.into(),
            fail_code: code.into(),
            fail_reason: String::new(),
            account_bank_code: "102241000019".into(),
            confirm_date: "20261126".into(),
            confirm_time: "101010".into(),
            bank_txn_no: format!("T{seq}"),
        }
    }

    fn reply(details: Vec<ResultDetail>) -> QueryReply {
        let (mut sc, mut sa, mut fc, mut fa) = (0, 0, 0, 0);
        for d in &details {
            if d.result == "S" {
                sc += 1;
                sa += d.amount;
            } else {
                fc += 1;
                fa += d.amount;
            }
        }
        let total = details.iter().map(|d| d.amount).sum();
        QueryReply {
            header: QueryReplyHeader {
                ret_code: "0000".into(),
                state: "F".into(),
                success_count: sc,
                success_amount: sa,
                fail_count: fc,
                fail_amount: fa,
                ..Default::default()
            },
            trailer: Some(Trailer {
                item_count: details.len() as u64,
                total_amount: total,
            }),
            details,
        }
    }

    fn codes() -> Codes {
        bank_profiles::builtin().expect("profiles")["402241000015"]
            .codes
            .clone()
    }

    #[test]
    fn maps_outcomes_and_sends_unknown_codes_to_review() {
        let items = vec![sent(1, 100), sent(2, 200), sent(3, 300)];
        let r = reply(vec![
            detail(1, 100, "S", ""),
            detail(2, 200, "F", "A002"),
            detail(3, 300, "F", "Z999"),
        ]);
        let out = reconcile_fixed_width(&items, &r, &codes(), "S").expect("reconciles");
        let statuses: Vec<_> = out.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            vec![
                ItemStatus::Succeeded,
                ItemStatus::Failed,
                ItemStatus::Review
            ]
        );
        assert_eq!(out[1].fail_reason.as_deref(), Some("account closed"));
        assert!(out[0].confirmed_at.is_some());
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let items = vec![sent(1, 100), sent(2, 200)];
        let unknown = reply(vec![detail(1, 100, "S", ""), detail(7, 200, "S", "")]);
        assert!(
            reconcile_fixed_width(&items, &unknown, &codes(), "S")
                .expect_err("unknown seq")
                .0
                .contains("seq 7")
        );
        let amount = reply(vec![detail(1, 100, "S", ""), detail(2, 201, "S", "")]);
        assert!(
            reconcile_fixed_width(&items, &amount, &codes(), "S")
                .expect_err("amount")
                .0
                .contains("amount")
        );
        let missing = reply(vec![detail(1, 100, "S", "")]);
        assert!(reconcile_fixed_width(&items, &missing, &codes(), "S").is_err());
        let mut trailer = reply(vec![detail(1, 100, "S", ""), detail(2, 200, "S", "")]);
        trailer.trailer = Some(Trailer {
            item_count: 2,
            total_amount: 301,
        });
        assert!(
            reconcile_fixed_width(&items, &trailer, &codes(), "S")
                .expect_err("trailer")
                .0
                .contains("trailer")
        );
        let mut header = reply(vec![detail(1, 100, "S", ""), detail(2, 200, "S", "")]);
        header.header.success_count = 1;
        assert!(reconcile_fixed_width(&items, &header, &codes(), "S").is_err());
        let dup = reply(vec![detail(1, 100, "S", ""), detail(1, 100, "S", "")]);
        assert!(reconcile_fixed_width(&items, &dup, &codes(), "S").is_err());
        let mut other_account = reply(vec![detail(1, 100, "S", ""), detail(2, 200, "S", "")]);
        other_account.details[1].account_no = "6217000000000000".into();
        assert!(reconcile_fixed_width(&items, &other_account, &codes(), "S").is_err());
    }

    #[test]
    fn reads_beijing_times() {
        let ms = beijing_ms("20260303", "101500").expect("time");
        assert_eq!(crate::clock::rfc3339(ms), "2026-03-03T10:15:00+08:00");
        assert_eq!(beijing_ms("00000000", "000000"), None);
        assert_eq!(beijing_ms("20261301", "000000"), None);
    }
}

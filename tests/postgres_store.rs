//! The store on PostgreSQL (a throwaway cluster, `common::pg`):
//!
//! - every store query, run the same way on SQLite and on PostgreSQL, gives the same answers;
//! - bank A end to end: a 20,000-item roster paid exactly once, bad input refused with the store
//!   unchanged, a failed item corrected and paid, the assessments, the dashboard and the metrics read;
//! - several instances on one database: two stores (two pools, as two gateways would have) claiming
//!   the same due parts at once never hold one part together, and an expired lease is taken over
//!   (parts, and the notices of a sender that died);
//!   two whole gateways share the work of several rosters and pay each item once.
//!
//! The tests fail, never skip, when the PostgreSQL binaries are missing.
mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg::{self, Pg};
use common::*;
use gateway::domain::{AccountKind, ItemStatus, Pii, RecipientKind};
use gateway::keys::{ClaimKey, LookupKey};
use gateway::store::*;
use serde_json::{Value, json};

const BANK: &str = BANK_A;

fn new_batch(batch_id: &str, created_at: i64) -> NewBatch {
    NewBatch {
        batch_id: batch_id.into(),
        batch_no: format!("NO-{batch_id}"),
        body_hash: String::new(),
        parent_batch_id: None,
        department_code: "220623-NYNC".into(),
        region_code: "220623".into(),
        subsidy_code: "NY001".into(),
        subsidy_name: "耕地地力保护补贴".into(),
        budget_year: 2026,
        period: "2026".into(),
        indicator_no: "IND-1".into(),
        payout_bank: BANK.into(),
        payer_account_no: "22050166000100000001".into(),
        payer_account_name: "财政零余额账户".into(),
        funds_arrived_on: "2026-11-26".into(),
        total_count: 0,
        total_amount_fen: 0,
        created_at,
        start_late: false,
    }
}

/// A claim key of the development look-up key.
fn claim(who: &str) -> ClaimKey {
    LookupKey::development().claim(who, "S1", "2026")
}

fn new_item(seq: i64, amount_fen: i64, status: ItemStatus, part_id: Option<&str>) -> NewItem {
    NewItem {
        seq,
        recipient_kind: RecipientKind::Person,
        name: Pii::new("张三"),
        id_no: Pii::new(format!("22062319800101{seq:04}")),
        account_no: Pii::new(format!("6217{seq:015}")),
        account_kind: AccountKind::Ssc,
        account_bank_code: if seq % 2 == 0 {
            "105241000012".into()
        } else {
            "102241000019".into()
        },
        amount_fen,
        phone: Pii::new("13800000000"),
        ssc_exempt: false,
        memo: String::new(),
        status,
        reject_code: (status == ItemStatus::Rejected).then(|| "E-ITEM-AMOUNT".into()),
        reject_message: (status == ItemStatus::Rejected).then(|| "item: amount".into()),
        part_id: part_id.map(str::to_owned),
        claim_key: (status != ItemStatus::Rejected).then(|| claim(&format!("{part_id:?}-{seq}"))),
        replaces: None,
    }
}

/// A batch of `parts` parts (no items) of bank A, due at once.
async fn batch_of_parts(store: &Store, batch_id: &str, parts: usize) -> Vec<String> {
    let mut tx = store
        .begin_intake(&new_batch(batch_id, 1))
        .await
        .expect("intake");
    let new: Vec<NewPart> = (0..parts)
        .map(|i| NewPart {
            part_id: format!("{batch_id}-p{i}"),
            bank_ref: format!("{batch_id}-r{i}"),
            part_no: i as i64 + 1,
            item_count: 0,
            amount_fen: 0,
        })
        .collect();
    tx.insert_parts(BANK, 0, &new).await.expect("parts");
    tx.finish((0, 0), 0, "{}", &[]).await.expect("finish");
    new.into_iter().map(|p| p.part_id).collect()
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms")
}

/// The audit record a change is written with.
fn rec(at: i64) -> NewAudit {
    NewAudit::new(at, "admin", "admin", "change", "b1", "{}")
}

// ---------------------------------------------------------------------------------------------------
// Every store query on both backends.

/// Runs the store's queries in the order a batch lives through them and checks the answers, which do
/// not depend on the backend.
async fn exercise(store: &Store) {
    assert!(store.ping().await);
    const T: i64 = 1_795_000_000_000;
    // Intake: 4 items, one rejected, one part.
    let mut tx = store
        .begin_intake(&new_batch("b1", T))
        .await
        .expect("intake");
    assert!(
        tx.claimed(&[claim("nobody")])
            .await
            .expect("claimed")
            .is_empty()
    );
    let items = vec![
        new_item(1, 100, ItemStatus::Pending, Some("p1")),
        new_item(2, 250, ItemStatus::Pending, Some("p1")),
        new_item(3, 650, ItemStatus::Pending, Some("p1")),
        new_item(4, 0, ItemStatus::Rejected, None),
    ];
    tx.insert_items(&items).await.expect("items");
    let key = items[0].claim_key.expect("key");
    assert_eq!(
        tx.claimed(&[key, claim("other")]).await.expect("claimed"),
        [key].into_iter().collect()
    );
    tx.insert_parts(
        BANK,
        T,
        &[NewPart {
            part_id: "p1".into(),
            bank_ref: "R000001".into(),
            part_no: 1,
            item_count: 3,
            amount_fen: 1000,
        }],
    )
    .await
    .expect("parts");
    tx.set_hash("hash-1").await.expect("hash");
    let accepted_ev = EventRow::new("batch.accepted", T, BANK, json!({"n": 3})).batch("b1");
    tx.finish(
        (3, 1000),
        1,
        "{\"answer\":1}",
        std::slice::from_ref(&accepted_ev),
    )
    .await
    .expect("finish");
    // The roster's claims were written with it: the next roster sees them; one roster cannot hold
    // a claim twice.
    let mut next = store
        .begin_intake(&new_batch("b0", T))
        .await
        .expect("intake");
    assert_eq!(
        next.claimed(&[key, claim("other")]).await.expect("claimed"),
        [key].into_iter().collect()
    );
    let mut first = new_item(1, 100, ItemStatus::Pending, Some("px"));
    first.claim_key = Some(claim("twice"));
    let mut second = first.clone();
    second.seq = 2;
    next.insert_items(&[first]).await.expect("first");
    assert!(matches!(
        next.insert_items(&[second]).await,
        Err(StoreError::Refused(_))
    ));
    next.abort().await.expect("abort");

    let b = store
        .find_batch_by_no("NO-b1")
        .await
        .expect("find")
        .expect("batch");
    assert_eq!(
        (
            b.body_hash.as_str(),
            b.accepted_count,
            b.accepted_amount_fen,
            b.rejected_count
        ),
        ("hash-1", 3, 1000, 1)
    );
    assert!(store.get_batch("nope").await.expect("get").is_none());
    let c = store.batch_counts("b1").await.expect("counts");
    assert_eq!(c.by_status.get("pending"), Some(&3));
    assert_eq!(c.by_status.get("rejected"), Some(&1));
    let page = store.list_items("b1", None, 1, 2).await.expect("items");
    assert_eq!(page.iter().map(|i| i.seq).collect::<Vec<_>>(), [2, 3]);
    let rejected = store
        .list_items("b1", Some(ItemStatus::Rejected), 0, 10)
        .await
        .expect("items");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].reject_code.as_deref(), Some("E-ITEM-AMOUNT"));
    assert!(rejected[0].bank_ref.is_none());
    assert_eq!(store.open_parts(BANK).await.expect("open"), 1);
    let flying = store.in_flight(10).await.expect("in flight");
    assert_eq!((flying.len(), flying[0].items, flying[0].done), (1, 3, 0));

    // Not before the funds day (not_before = T).
    let none = store
        .claim_parts(Claim::Send, BANK, T - 1, "n1", T + 1000, 5)
        .await
        .expect("claim");
    assert!(none.is_empty());
    let parts = store
        .claim_parts(Claim::Send, BANK, T, "n1", T + 1000, 5)
        .await
        .expect("claim");
    assert_eq!(parts.len(), 1);
    let part = parts[0].clone();
    assert_eq!((part.state.as_str(), part.attempts), ("sending", 1));
    assert!(
        store
            .renew_lease("p1", "n1", T + 2000)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_lease("p1", "n2", T + 2000)
            .await
            .expect("renew")
    );
    assert_eq!(store.part_items("p1").await.expect("items").len(), 3);
    let page = store.part_items_page("p1", 1, 1).await.expect("page");
    assert_eq!((page.len(), page[0].seq), (1, 2));
    assert_eq!(page[0].bank_ref.as_deref(), Some("R000001"));
    // What an encoder reads: the same items, their personal fields opened.
    let all = store.part_items("p1").await.expect("items");
    let out = store
        .part_outgoing_page("p1", 0, 10)
        .await
        .expect("outgoing");
    assert_eq!(out.len(), all.len());
    for (o, i) in out.iter().zip(&all) {
        assert_eq!(
            (
                o.seq,
                o.name.expose(),
                o.id_no.expose(),
                o.account_no.expose()
            ),
            (
                i.seq,
                i.name.expose(),
                i.id_no.expose(),
                i.account_no.expose()
            )
        );
        assert_eq!(
            (
                o.phone.expose(),
                o.amount_fen,
                &o.account_bank_code,
                &o.memo
            ),
            (
                i.phone.expose(),
                i.amount_fen,
                &i.account_bank_code,
                &i.memo
            )
        );
        assert_eq!(
            (o.recipient_kind, o.account_kind),
            (i.recipient_kind, i.account_kind)
        );
    }
    let out = store
        .part_outgoing_page("p1", 2, 1)
        .await
        .expect("outgoing");
    assert_eq!(out.iter().map(|o| o.seq).collect::<Vec<_>>(), [3]);

    // Accepted; the click; results.
    let seqs_of = |items: Vec<ItemRow>| -> Vec<(i64, ItemStatus)> {
        items.into_iter().map(|i| (i.seq, i.status)).collect()
    };
    let pending = store
        .list_items("b1", Some(ItemStatus::Pending), 0, 10)
        .await
        .expect("pending");
    assert_eq!(
        seqs_of(pending),
        [1, 2, 3].map(|s| (s, ItemStatus::Pending))
    );
    let mut evs = vec![EventRow::new("batch.sent", T + 10, BANK, json!({})).batch("b1")];
    store
        .part_accepted(&part, Some("BK1"), T + 10, T + 20, &mut evs)
        .await
        .expect("accepted");
    // The part's items are `sent` from its acceptance on, in every read (their status is derived
    // from the part's, not written per item).
    let counts = store.batch_counts("b1").await.expect("counts");
    assert_eq!(
        counts.by_status.clone().into_iter().collect::<Vec<_>>(),
        [("rejected".to_string(), 1), ("sent".to_string(), 3)]
    );
    assert!(
        store
            .list_items("b1", Some(ItemStatus::Pending), 0, 10)
            .await
            .expect("pending")
            .is_empty()
    );
    let sent = store
        .list_items("b1", Some(ItemStatus::Sent), 0, 10)
        .await
        .expect("sent");
    assert_eq!(seqs_of(sent), [1, 2, 3].map(|s| (s, ItemStatus::Sent)));
    let all = store.list_items("b1", None, 0, 10).await.expect("all");
    assert_eq!(
        seqs_of(all),
        [
            (1, ItemStatus::Sent),
            (2, ItemStatus::Sent),
            (3, ItemStatus::Sent),
            (4, ItemStatus::Rejected)
        ]
    );
    let totals: HashMap<ItemStatus, i64> = store
        .item_status_totals()
        .await
        .expect("totals")
        .into_iter()
        .collect();
    assert_eq!(
        (
            totals.get(&ItemStatus::Sent),
            totals.get(&ItemStatus::Pending)
        ),
        (Some(&3), None)
    );
    assert_eq!(evs.len(), 1, "the batch was sent with its only part");
    assert_eq!(
        store
            .get_batch("b1")
            .await
            .expect("get")
            .expect("b")
            .sent_at,
        Some(T + 10)
    );
    let q = store
        .click(
            &QueryRow {
                query_id: "q1".into(),
                batch_id: "b1".into(),
                clicked_at: T + 11,
                due_at: T + 100,
                status: "running".into(),
                fed_back_at: None,
                late: false,
            },
            None,
        )
        .await
        .expect("click");
    let again = store
        .click(
            &QueryRow {
                query_id: "q2".into(),
                clicked_at: T + 12,
                ..q.clone()
            },
            None,
        )
        .await
        .expect("click again");
    assert_eq!(again.query_id, "q1", "the first click stays");
    assert!(
        store
            .queries_past_due(T + 50)
            .await
            .expect("due")
            .is_empty()
    );
    assert_eq!(store.queries_past_due(T + 101).await.expect("due").len(), 1);

    let polled = store
        .claim_parts(Claim::Poll, BANK, T + 20, "n1", T + 1000, 5)
        .await
        .expect("poll");
    assert_eq!((polled.len(), polled[0].polls), (1, 1));
    let result = |seq: i64, ok: bool, confirmed: Option<i64>| ItemResult {
        seq,
        status: if ok {
            ItemStatus::Succeeded
        } else {
            ItemStatus::Failed
        },
        result_code: if ok { "0000" } else { "A001" }.into(),
        fail_code: (!ok).then(|| "A001".into()),
        fail_reason: (!ok).then(|| "账户不存在".into()),
        result_bank_code: if seq == 1 {
            "105241000012".into()
        } else {
            "102241000019".into()
        },
        confirmed_at: confirmed,
        bank_txn_no: Some(format!("TX{seq}")),
    };
    let results = vec![
        result(1, true, Some(T + 30)),
        result(2, false, Some(T + 200)),
        result(3, true, None),
    ];
    let fin = store
        .apply_results(
            &polled[0],
            &results,
            T + 40,
            |r| {
                vec![
                    EventRow::new("item.result", T + 40, BANK, json!({}))
                        .batch("b1")
                        .item(Some(r.seq)),
                ]
            },
            |fi| vec![EventRow::new("batch.final", fi.final_at, BANK, json!({})).batch("b1")],
        )
        .await
        .expect("results")
        .expect("final");
    assert_eq!(
        (fin.final_at, fin.query_due_at, fin.late),
        (T + 40, Some(T + 100), false)
    );
    // Applying the same results again changes nothing.
    store
        .apply_results(&polled[0], &results, T + 41, |_| vec![], |_| vec![])
        .await
        .expect("again");
    let c = store.batch_counts("b1").await.expect("counts");
    assert_eq!(
        (
            c.by_status.get("succeeded"),
            c.by_status.get("failed"),
            c.succeeded_fen,
            c.failed_fen
        ),
        (Some(&2), Some(&1), 750, 250)
    );
    assert_eq!(
        (c.by_status.get("sent"), c.by_status.get("pending")),
        (None, None),
        "no item is left sent once its result is in"
    );
    let q = store.get_query("b1").await.expect("q").expect("q");
    assert_eq!(
        (q.status.as_str(), q.fed_back_at, q.late),
        ("final", Some(T + 40), false)
    );
    assert!(store.in_flight(10).await.expect("in flight").is_empty());
    assert_eq!(store.open_parts(BANK).await.expect("open"), 0);
    let totals: HashMap<ItemStatus, i64> = store
        .item_status_totals()
        .await
        .expect("totals")
        .into_iter()
        .collect();
    assert_eq!(totals.get(&ItemStatus::Succeeded), Some(&2));
    assert_eq!(
        store.payouts(false).await.expect("payouts"),
        [(BANK.to_owned(), 2, 750)]
    );
    assert_eq!(
        store.payouts(true).await.expect("payouts"),
        [("耕地地力保护补贴".to_owned(), 2, 750)]
    );
    let fb = store
        .account_feedback("b1", T + 100)
        .await
        .expect("feedback");
    let fb: Vec<_> = fb
        .iter()
        .map(|f| {
            (
                f.bank_code.as_str(),
                f.items,
                f.on_time,
                f.unconfirmed,
                f.last_confirmed_at,
            )
        })
        .collect();
    assert_eq!(
        fb,
        [
            ("102241000019", 2, 0, 1, Some(T + 200)),
            ("105241000012", 1, 1, 0, Some(T + 30))
        ]
    );

    // The SLA: strikes once per bank and query, counts, voids, ratings, disqualifications.
    let judge = store.queries_to_judge_accounts().await.expect("judge");
    assert_eq!(judge.len(), 1);
    assert_eq!(judge[0].bank_code, BANK);
    let strike = |id: &str, bank: &str| NewStrike {
        strike_id: id.into(),
        bank_code: bank.into(),
        department_code: "220623-NYNC".into(),
        batch_id: "b1".into(),
        query_id: "q1".into(),
        roles: vec!["account"],
        due_at: T + 100,
        fed_back_at: Some(T + 200),
        year: 2026,
        evidence: json!({"late": 1}),
    };
    let mut counts = Vec::new();
    let n = store
        .record_evaluation(
            "q1",
            EvaluationPhase::Accounts,
            &[strike("s1", "102241000019"), strike("s2", "102241000019")],
            T + 300,
            |s, n| {
                counts.push((s.strike_id.clone(), n));
                vec![EventRow::new("strike", T + 300, &s.bank_code, json!({}))]
            },
        )
        .await
        .expect("evaluation");
    assert_eq!(n, 1, "one strike per bank per query");
    assert_eq!(counts, [("s1".to_owned(), 1)]);
    assert!(
        store
            .queries_to_judge_accounts()
            .await
            .expect("judge")
            .is_empty()
    );
    assert!(store.has_strike("102241000019", "q1").await.expect("has"));
    assert!(!store.has_strike(BANK, "q1").await.expect("has"));
    let s = store
        .strikes_of("102241000019", 2026)
        .await
        .expect("strikes");
    assert_eq!((s.len(), s[0].roles.as_str()), (1, "[\"account\"]"));
    let figures = store
        .agreement_figures(2026, T, T + 1000)
        .await
        .expect("figures");
    let f = &figures[&(BANK.to_owned(), "220623-NYNC".to_owned())];
    assert_eq!((f.queries, f.struck_queries, f.strikes), (1, 0, 0));
    let f = &figures[&("102241000019".to_owned(), "220623-NYNC".to_owned())];
    assert_eq!(f.strikes, 1);
    assert!(
        !store
            .unqualified_in("102241000019", "220623-NYNC", 2026)
            .await
            .expect("unqualified")
    );
    assert_eq!(
        store
            .void_strike(
                "102241000019",
                "s1",
                "s1v",
                "wrong",
                T + 400,
                &[],
                &rec(T + 400)
            )
            .await
            .expect("void"),
        Some(true)
    );
    assert_eq!(
        store
            .void_strike(
                "102241000019",
                "s1",
                "s1w",
                "again",
                T + 401,
                &[],
                &rec(T + 401)
            )
            .await
            .expect("void"),
        Some(false)
    );
    assert_eq!(
        store
            .void_strike(
                BANK,
                "s1",
                "s1x",
                "not this bank's",
                T + 401,
                &[],
                &rec(T + 401)
            )
            .await
            .expect("void"),
        None
    );
    assert!(
        store
            .strikes_of("102241000019", 2026)
            .await
            .expect("strikes")
            .is_empty()
    );
    for rating in ["qualified", "unqualified"] {
        store
            .put_past_rating(
                BANK,
                "220623-NYNC",
                2025,
                rating,
                "taken over",
                "admin",
                T,
                &[],
                &rec(T),
            )
            .await
            .expect("rating");
    }
    assert_eq!(
        store
            .past_ratings(2025)
            .await
            .expect("ratings")
            .into_iter()
            .collect::<Vec<_>>(),
        [(
            (BANK.to_owned(), "220623-NYNC".to_owned()),
            "unqualified".to_owned()
        )]
    );
    assert!(
        store
            .unqualified_in(BANK, "220623-NYNC", 2025)
            .await
            .expect("u")
    );
    assert!(
        store
            .disqualify(BANK, "220623-NYNC", "two years", "admin", T, &[], &rec(T))
            .await
            .expect("d")
    );
    assert!(
        !store
            .disqualify(BANK, "220623-NYNC", "again", "admin", T, &[], &rec(T))
            .await
            .expect("d")
    );
    assert!(
        store
            .is_disqualified(BANK, "220623-NYNC")
            .await
            .expect("is")
    );
    assert!(
        !store
            .is_disqualified(BANK, "220122-NYNC")
            .await
            .expect("is")
    );
    assert_eq!(
        store.disqualified_for(BANK).await.expect("for"),
        ["220623-NYNC"]
    );
    assert_eq!(store.disqualifications().await.expect("all").len(), 1);

    // Warnings: failed items not handled, late starts.
    assert_eq!(
        store.failed_awaiting().await.expect("awaiting"),
        [("NO-b1".to_owned(), BANK.to_owned(), 1, T + 40)]
    );
    let unwarned = store.failed_unwarned(T + 41).await.expect("unwarned");
    assert_eq!(unwarned, [("b1".to_owned(), 2, BANK.to_owned(), T + 40)]);
    let warn = EventRow::new("warning", T + 500, BANK, json!({})).batch("b1");
    store
        .mark_failed_warned("b1", 2, &warn)
        .await
        .expect("warn");
    store
        .mark_failed_warned("b1", 2, &warn)
        .await
        .expect("warn twice");
    assert!(
        store
            .failed_unwarned(T + 41)
            .await
            .expect("unwarned")
            .is_empty()
    );
    let unchecked = store.start_unchecked().await.expect("start");
    assert_eq!(unchecked.len(), 1);
    assert_eq!(unchecked[0].3, Some(T + 10));
    store.mark_start_checked("b1", None).await.expect("checked");
    assert!(store.start_unchecked().await.expect("start").is_empty());

    // Handling: re-issue the failed item as a one-item sub-batch; its item references and attempts.
    let mut sub = new_batch("b2", T + 600);
    sub.parent_batch_id = Some("b1".into());
    sub.indicator_no = store.batch_indicator("b1").await.expect("indicator");
    sub.total_count = 1;
    sub.total_amount_fen = 250;
    let mut item = new_item(1, 250, ItemStatus::Pending, Some("p2"));
    item.claim_key = None;
    item.replaces = Some(("b1".into(), 2));
    let p2 = NewPart {
        part_id: "p2".into(),
        bank_ref: "R000002".into(),
        part_no: 0,
        item_count: 1,
        amount_fen: 250,
    };
    assert!(
        store
            .reissue(("b1", 2), &sub, &item, &p2, BANK, "{}", &[], &rec(T + 600))
            .await
            .expect("reissue")
    );
    assert!(
        !store
            .reissue(("b1", 2), &sub, &item, &p2, BANK, "{}", &[], &rec(T + 600))
            .await
            .expect("reissue twice")
    );
    assert_eq!(
        store
            .get_item("b1", 2)
            .await
            .expect("item")
            .expect("item")
            .status,
        ItemStatus::Corrected
    );
    assert!(
        !store
            .settle_item(
                "b1",
                2,
                ItemStatus::Failed,
                ItemStatus::Returned,
                "x",
                T,
                &[],
                &rec(T)
            )
            .await
            .expect("settle")
    );
    assert_eq!(store.assign_item_refs("p2").await.expect("refs"), 1);
    assert_eq!(store.assign_item_refs("p2").await.expect("refs"), 0);
    let unaccepted = store.unaccepted_items("p2").await.expect("unaccepted");
    assert_eq!(unaccepted.len(), 1);
    let item_ref = unaccepted[0].item_ref.clone();
    assert_eq!(item_ref.len(), 12);
    assert!(unaccepted[0].last_attempt.is_none());
    for stan in ["000001", "000002"] {
        store
            .record_attempts(
                BANK,
                &[Attempt {
                    item_ref: item_ref.clone(),
                    stan: stan.into(),
                    sent_time: "1126093000".into(),
                }],
                T + 700,
            )
            .await
            .expect("attempt");
    }
    store
        .record_answers(
            &[(item_ref.clone(), "000002".into(), "00".into())],
            std::slice::from_ref(&item_ref),
        )
        .await
        .expect("answers");
    let attempts = store.item_attempts(&item_ref).await.expect("attempts");
    assert_eq!(
        attempts,
        [
            (1, "000001".to_owned(), "1126093000".to_owned(), None),
            (
                2,
                "000002".to_owned(),
                "1126093000".to_owned(),
                Some("00".to_owned())
            )
        ]
    );
    assert!(store.unaccepted_items("p2").await.expect("u").is_empty());
    assert!(
        store
            .awaiting_items("p2")
            .await
            .expect("awaiting")
            .is_empty()
    );
    let p2row = store.batch_parts("b2").await.expect("parts");
    assert_eq!(p2row.len(), 1);
    store
        .items_review(&p2row[0], &[(1, "unknown code".into())], T + 800, &[])
        .await
        .expect("review");
    let reviewed = store.get_item("b2", 1).await.expect("item").expect("item");
    assert_eq!(reviewed.status, ItemStatus::Review);
    assert!(
        store
            .settle_item(
                "b2",
                1,
                ItemStatus::Review,
                ItemStatus::Succeeded,
                "bank says paid",
                T,
                &[],
                &rec(T)
            )
            .await
            .expect("settle")
    );

    // Part states and restart recovery.
    let sending = store
        .claim_parts(Claim::Send, BANK, T + 900, "n1", T + 1900, 5)
        .await
        .expect("claim");
    assert_eq!(sending.len(), 1);
    assert_eq!(store.recover_leases("n1").await.expect("recover"), 1);
    let resolve = store
        .claim_parts(Claim::Resolve, BANK, T + 900, "n2", T + 1900, 5)
        .await
        .expect("resolve");
    assert_eq!((resolve.len(), resolve[0].state.as_str()), (1, "unknown"));
    store
        .part_retry("p2", gateway::domain::PartState::Pending, T + 950, "again")
        .await
        .expect("retry");
    store
        .poll_again("p1", T + 960, Some("note"))
        .await
        .expect("poll again");
    store
        .part_review("p2", "look at it", &[])
        .await
        .expect("review");
    let states: Vec<_> = store
        .batch_parts("b2")
        .await
        .expect("parts")
        .into_iter()
        .map(|p| (p.state.as_str(), p.last_error))
        .collect();
    assert_eq!(states, [("review", Some("look at it".to_owned()))]);

    // Events (the outbox), in order, with delivery bookkeeping.
    store
        .add_events(&[EventRow::new("extra", T + 999, BANK, json!({"x": 1})).code("W-X")])
        .await
        .expect("events");
    let all = store
        .list_events(None, 1000)
        .await
        .expect("list")
        .expect("some");
    assert!(all.len() >= 6, "{}", all.len());
    assert_eq!(all[0].event_id, accepted_ev.event_id);
    assert_eq!(all.last().map(|e| e.code.as_deref()), Some(Some("W-X")));
    let after = store
        .list_events(Some(&all[0].event_id), 2)
        .await
        .expect("list")
        .expect("some");
    assert_eq!(after[0].event_id, all[1].event_id);
    assert!(
        store
            .list_events(Some("e_unknown"), 2)
            .await
            .expect("list")
            .is_none()
    );
    let due = store.undelivered_events(T, 3).await.expect("due");
    assert_eq!((due.len(), due[0].1), (3, 0));
    store
        .event_failed(&all[0].event_id, T + 5000)
        .await
        .expect("failed");
    assert!(
        store
            .undelivered_events(T, 3)
            .await
            .expect("due")
            .is_empty(),
        "in order"
    );
    store
        .event_delivered(&all[0].event_id, T + 6000)
        .await
        .expect("delivered");
    let due = store.undelivered_events(T, 3).await.expect("due");
    assert_eq!(due[0].0.event_id, all[1].event_id);

    // Audit, blacklist.
    for i in 0..3 {
        store
            .audit(T + i, "admin", "admin", "read", "b1", "{}")
            .await
            .expect("audit");
    }
    let audit = store.list_audit(0, 20).await.expect("audit");
    // The six changes above wrote their records with them, then the three reads.
    assert_eq!(audit.len(), 6 + 3);
    let later = store
        .list_audit(audit[0].audit_no, 20)
        .await
        .expect("audit");
    assert_eq!(later.len(), 8);
    let entry = BlacklistRow {
        entry_id: "bl1".into(),
        kind: "id_no".into(),
        value: "220623198001010001".into(),
        reason: "冒领".into(),
        added_by: "admin".into(),
        added_at: T,
    };
    assert_eq!(
        store
            .add_blacklist(&entry, "h1", &rec(T))
            .await
            .expect("add"),
        Some("bl1".to_owned())
    );
    let twice = BlacklistRow {
        entry_id: "bl2".into(),
        ..entry.clone()
    };
    assert_eq!(
        store
            .add_blacklist(&twice, "h1", &rec(T))
            .await
            .expect("add"),
        None
    );
    assert_eq!(store.list_blacklist().await.expect("list").len(), 1);
    assert!(
        store
            .blacklist_hashes()
            .await
            .expect("hashes")
            .contains("id_no:h1")
    );
    assert!(
        store
            .delete_blacklist("bl1", &rec(T))
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_blacklist("bl1", &rec(T))
            .await
            .expect("delete")
    );

    // Named leases.
    assert!(
        store
            .hold_lease("job", "n1", T, T + 100)
            .await
            .expect("hold")
    );
    assert!(
        !store
            .hold_lease("job", "n2", T + 50, T + 150)
            .await
            .expect("hold")
    );
    assert!(
        store
            .hold_lease("job", "n1", T + 60, T + 160)
            .await
            .expect("renew")
    );
    assert!(
        !store
            .hold_lease("job", "n2", T + 150, T + 250)
            .await
            .expect("hold")
    );
    assert!(
        store
            .hold_lease("job", "n2", T + 161, T + 261)
            .await
            .expect("take over")
    );
    assert!(
        !store
            .hold_lease("job", "n1", T + 170, T + 270)
            .await
            .expect("lost")
    );
    store.release_lease("job", "n2").await.expect("release");
    assert!(
        store
            .hold_lease("job", "n1", T + 171, T + 271)
            .await
            .expect("hold")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_store_query_answers_alike_on_sqlite_and_postgres() {
    let dir = TempDir::new("pg-store-sqlite");
    let sqlite = Store::open(&format!("sqlite://{}", dir.0.join("gw.db").display()))
        .await
        .expect("sqlite store");
    exercise(&sqlite).await;
    sqlite.close().await;

    let pg = Pg::start();
    let store = Store::open(&pg.url()).await.expect("postgres store");
    assert_eq!(store.backend(), Backend::Postgres);
    exercise(&store).await;
    store.close().await;
    // Opening again migrates nothing twice.
    let again = Store::open(&pg.url()).await.expect("reopen");
    assert_eq!(pg::count_rows(&pg.url(), "batches").await, 2);
    again.close().await;
}

// ---------------------------------------------------------------------------------------------------
// Several instances on one database: part leases.

/// Claims as they happened, to find any part held by two claimers at once.
#[derive(Default)]
struct Holders {
    /// Part -> the claimer holding it now.
    now: HashMap<String, usize>,
    /// Claims per claimer.
    claims: HashMap<usize, usize>,
    /// Parts claimed while another claimer held them.
    overlaps: Vec<(String, usize, usize)>,
}

/// Claims every part of the batch into `accepted` state: sent by whoever claimed it.
async fn accept_all(a: &Store, b: &Store, parts: usize) -> (usize, usize) {
    let claimed: Arc<Mutex<Vec<(usize, PartRow)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for claimer in 0..6 {
        let store = if claimer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let claimed = claimed.clone();
        tasks.spawn(async move {
            let owner = if claimer % 2 == 0 { "GW-A" } else { "GW-B" };
            loop {
                let now = now_ms();
                let got = store
                    .claim_parts(Claim::Send, BANK, now, owner, now + 60_000, 4)
                    .await
                    .expect("claim");
                assert!(
                    got.len() <= 4,
                    "a claim takes at most its limit: {}",
                    got.len()
                );
                if got.is_empty() {
                    break;
                }
                for p in got {
                    store
                        .part_accepted(&p, None, now, 0, &mut Vec::new())
                        .await
                        .expect("accepted");
                    claimed.lock().expect("lock").push((claimer, p));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("claimer");
    }
    let claimed = claimed.lock().expect("lock");
    let ids: BTreeSet<&str> = claimed.iter().map(|(_, p)| p.part_id.as_str()).collect();
    assert_eq!(claimed.len(), parts, "each part sent once");
    assert_eq!(ids.len(), parts, "no part sent twice");
    assert!(claimed.iter().all(|(_, p)| p.attempts == 1));
    let by_a = claimed.iter().filter(|(c, _)| c % 2 == 0).count();
    (by_a, parts - by_a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_database_never_hold_one_part_at_once() {
    let pg = Pg::start();
    let url = pg.url();
    // Two pools: what two gateway instances have.
    let a = Store::open(&url).await.expect("store a");
    let b = Store::open(&url).await.expect("store b");
    const PARTS: usize = 60;
    batch_of_parts(&a, "race", PARTS).await;
    let (by_a, by_b) = accept_all(&a, &b, PARTS).await;
    assert!(by_a > 0 && by_b > 0, "both instances sent: {by_a} / {by_b}");

    // Every part is due for a poll at once, all the time: each claimer takes a few, holds them a
    // moment (the poll), and gives them back due again. The lease alone keeps the others off.
    let holders: Arc<Mutex<Holders>> = Arc::default();
    let until = Instant::now() + Duration::from_secs(4);
    let mut tasks = tokio::task::JoinSet::new();
    for claimer in 0..6 {
        let store = if claimer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let holders = holders.clone();
        tasks.spawn(async move {
            let owner = if claimer % 2 == 0 { "GW-A" } else { "GW-B" };
            let mut turn = 0u64;
            while Instant::now() < until {
                turn += 1;
                let now = now_ms();
                let got = store
                    .claim_parts(Claim::Poll, BANK, now, owner, now + 60_000, 3)
                    .await
                    .expect("claim");
                assert!(
                    got.len() <= 3,
                    "a claim takes at most its limit: {}",
                    got.len()
                );
                {
                    let mut h = holders.lock().expect("lock");
                    for p in &got {
                        if let Some(other) = h.now.insert(p.part_id.clone(), claimer) {
                            h.overlaps.push((p.part_id.clone(), other, claimer));
                        }
                        *h.claims.entry(claimer).or_default() += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1 + turn % 4)).await;
                for p in &got {
                    // Let go in memory before the store does: the next holder may come at once.
                    holders.lock().expect("lock").now.remove(&p.part_id);
                    store
                        .poll_again(&p.part_id, 0, None)
                        .await
                        .expect("poll again");
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("claimer");
    }
    let h = std::mem::take(&mut *holders.lock().expect("lock"));
    assert!(
        h.overlaps.is_empty(),
        "parts claimed while another claimer held them: {:?}",
        &h.overlaps[..h.overlaps.len().min(10)]
    );
    let total: usize = h.claims.values().sum();
    let (on_a, on_b): (usize, usize) =
        h.claims.iter().fold(
            (0, 0),
            |(x, y), (c, n)| {
                if c % 2 == 0 { (x + n, y) } else { (x, y + n) }
            },
        );
    assert!(
        total > 3 * PARTS,
        "parts went round several times: {total} claims"
    );
    assert!(
        on_a > 0 && on_b > 0,
        "both instances polled: {on_a} / {on_b}"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_by_the_other_instance() {
    let pg = Pg::start();
    let url = pg.url();
    let a = Store::open(&url).await.expect("store a");
    let b = Store::open(&url).await.expect("store b");
    let parts = batch_of_parts(&a, "takeover", 3).await;
    // Times are given, not read: lease lengths are exact.
    const T: i64 = 2_000_000_000_000;

    // A starts sending and dies with its lease running.
    let sent = a
        .claim_parts(Claim::Send, BANK, T, "GW-A", T + 1_000, 10)
        .await
        .expect("claim");
    assert_eq!(sent.len(), 3);
    for claim in [Claim::Send, Claim::Resolve, Claim::Poll] {
        let got = b
            .claim_parts(claim, BANK, T + 999, "GW-B", T + 2_000, 10)
            .await
            .expect("claim");
        assert!(got.is_empty(), "{claim:?} while A's lease runs: {got:?}");
    }
    // Its lease over, B takes the sends over as unknown (asked about, never sent blind), both
    // instances trying at once.
    let (x, y) = tokio::join!(
        b.claim_parts(Claim::Resolve, BANK, T + 1_001, "GW-B", T + 2_000, 10),
        a.claim_parts(Claim::Resolve, BANK, T + 1_001, "GW-A2", T + 2_000, 10),
    );
    let (x, y) = (x.expect("b"), y.expect("a"));
    let mut ids: Vec<&str> = x.iter().chain(&y).map(|p| p.part_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        parts.iter().map(String::as_str).collect::<Vec<_>>(),
        "each taken once"
    );
    assert!(x.iter().chain(&y).all(|p| p.state.as_str() == "unknown"));
    assert!(
        !a.renew_lease(&parts[0], "GW-A", T + 5_000)
            .await
            .expect("renew"),
        "the dead holder's lease is gone"
    );

    // Accepted; B polls and dies; A takes the polls over once B's lease has run out.
    for p in x.iter().chain(&y) {
        b.part_accepted(p, None, T + 1_100, T + 1_100, &mut Vec::new())
            .await
            .expect("accepted");
    }
    let polled = b
        .claim_parts(Claim::Poll, BANK, T + 1_200, "GW-B", T + 3_000, 10)
        .await
        .expect("poll");
    assert_eq!(polled.len(), 3);
    assert!(
        a.claim_parts(Claim::Poll, BANK, T + 2_999, "GW-A", T + 4_000, 10)
            .await
            .expect("poll")
            .is_empty()
    );
    assert!(
        b.renew_lease(&parts[0], "GW-B", T + 3_500)
            .await
            .expect("renew")
    );
    let taken = a
        .claim_parts(Claim::Poll, BANK, T + 3_001, "GW-A", T + 4_000, 10)
        .await
        .expect("poll");
    let mut taken: Vec<&str> = taken.iter().map(|p| p.part_id.as_str()).collect();
    taken.sort_unstable();
    assert_eq!(
        taken,
        [parts[1].as_str(), parts[2].as_str()],
        "the renewed part stays with B"
    );
    assert!(
        !b.renew_lease(&parts[1], "GW-B", T + 5_000)
            .await
            .expect("renew")
    );
    assert!(
        a.renew_lease(&parts[1], "GW-A", T + 5_000)
            .await
            .expect("renew")
    );

    // Named leases (the outbox, the SLA evaluator): one holder per round, both asking at once.
    for round in 0..20 {
        let t = T + 10_000 + round * 11;
        let (x, y) = tokio::join!(
            a.hold_lease("job", "GW-A", t, t + 10),
            b.hold_lease("job", "GW-B", t, t + 10)
        );
        let (x, y) = (x.expect("a"), y.expect("b"));
        assert!(x != y, "round {round}: exactly one holder ({x}, {y})");
    }
    a.close().await;
    b.close().await;
}

/// Notices of an instance that died while sending them (`sending`, leased) are settled by a living
/// sender once their lease has run out, not before, and not while their sender renews the lease; the
/// sweep is what every sender runs every few seconds (`sms::sender`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_of_a_dead_sender_are_recovered_once_their_lease_runs_out() {
    let pg = Pg::start();
    let url = pg.url();
    let a = Store::open(&url).await.expect("store a");
    let b = Store::open(&url).await.expect("store b");
    const T: i64 = 2_000_000_000_000;
    let mut tx = a.begin_intake(&new_batch("nb", T)).await.expect("intake");
    tx.insert_items(
        &(1..=4)
            .map(|s| new_item(s, 100, ItemStatus::Succeeded, None))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("items");
    tx.finish((4, 400), 0, "{}", &[]).await.expect("finish");
    for seq in 1..=4 {
        sqlx::query(
            "insert into notices (batch_id, seq, state, created_at, next_at) values ('nb', $1, 'pending', $2, $2)",
        )
        .bind(seq)
        .bind(T)
        .execute(a.pool())
        .await
        .expect("notice");
    }
    let states = |s: &Store| {
        let pool = s.pool().clone();
        async move {
            use sqlx::Row;
            sqlx::query("select state, lease_owner from notices order by seq")
                .fetch_all(&pool)
                .await
                .expect("states")
                .iter()
                .map(|r| {
                    (
                        r.try_get::<String, _>("state").expect("state"),
                        r.try_get::<Option<String>, _>("lease_owner")
                            .expect("owner"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };

    // A claims all four (lease to T + 1,000), marks two `sending` and dies; B claims nothing meanwhile.
    let jobs = a
        .claim_notices(T, "GW-A", T + 1_000, 10)
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 4);
    let sending = [("nb".to_owned(), 1, 1), ("nb".to_owned(), 2, 1)];
    a.notices_sending(&sending, T).await.expect("sending");
    assert!(
        b.claim_notices(T + 999, "GW-B", T + 2_000, 10)
            .await
            .expect("claim")
            .is_empty()
    );
    // While the lease runs, B's sweep leaves them to A.
    assert_eq!(
        b.recover_expired_notices(T + 999, T + 5_000)
            .await
            .expect("sweep"),
        0
    );
    // A renews notice 1 only (notice 2 it lost track of), to T + 3,000.
    let renewed = a
        .renew_notice_leases("GW-A", &[("nb".to_owned(), 1)], T + 3_000)
        .await
        .expect("renew");
    assert_eq!(renewed, 1);

    // A's first lease over: notice 2 becomes `unknown` (its grace until T + 5,000), notice 1 stays
    // A's; the two pending ones are claimed again by B, as always.
    assert_eq!(
        b.recover_expired_notices(T + 1_001, T + 5_000)
            .await
            .expect("sweep"),
        1
    );
    let taken = b
        .claim_notices(T + 1_001, "GW-B", T + 2_000, 10)
        .await
        .expect("claim");
    assert_eq!(taken.iter().map(|j| j.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(
        states(&b).await,
        [
            ("sending".to_owned(), Some("GW-A".to_owned())),
            ("unknown".to_owned(), None),
            ("pending".to_owned(), Some("GW-B".to_owned())),
            ("pending".to_owned(), Some("GW-B".to_owned())),
        ]
    );
    // The renewed lease over too: notice 1 is settled; A's renewal finds nothing of its own left.
    assert_eq!(
        b.recover_expired_notices(T + 2_999, T + 5_000)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(
        b.recover_expired_notices(T + 3_001, T + 5_000)
            .await
            .expect("sweep"),
        1
    );
    assert_eq!(
        a.renew_notice_leases(
            "GW-A",
            &[("nb".to_owned(), 1), ("nb".to_owned(), 2)],
            T + 9_000
        )
        .await
        .expect("renew"),
        0
    );
    // Nothing sent twice blindly: the unknown ones wait for a receipt or their grace.
    assert_eq!(
        b.release_unknown_notices(T + 4_999).await.expect("release"),
        0
    );
    assert_eq!(
        b.release_unknown_notices(T + 5_000).await.expect("release"),
        2
    );
    a.close().await;
    b.close().await;
}

// ---------------------------------------------------------------------------------------------------
// The gateway on PostgreSQL, end to end.

/// The platform's callback: event ids in the order they came (refusing nothing).
async fn platform() -> (String, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g2 = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |body: axum::Json<Value>| {
            let g = g2.clone();
            async move {
                let id = body.0["event_id"].as_str().unwrap_or("").to_owned();
                g.lock().expect("lock").push(id);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/events"), got)
}

/// A gateway config on the PostgreSQL database `url`.
fn pg_config(url: &str, bank_addr: &str, node: &str) -> gateway::config::Config {
    let mut cfg = config(std::path::Path::new("unused.db"), bank_addr);
    cfg.store.url = url.to_owned();
    cfg.gateway.node_id = node.to_owned();
    cfg
}

/// Every event of the outbox, oldest first, paging with `after`.
async fn all_events(api: &Api) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let after = out
            .last()
            .map(|e| format!("&after={}", e["event_id"].as_str().unwrap_or("")))
            .unwrap_or_default();
        let (s, v) = api
            .get(AUDITOR, &format!("/v1/events?limit=1000{after}"))
            .await;
        assert_eq!(s, 200, "{v}");
        let page = v["events"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// Waits until the callback received every event of the outbox, in order, each once.
async fn wait_delivered(api: &Api, got: &Mutex<Vec<String>>) {
    let started = Instant::now();
    loop {
        let ids: Vec<String> = all_events(api)
            .await
            .iter()
            .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
            .collect();
        let received = got.lock().expect("lock").clone();
        if received.len() >= ids.len() {
            assert_eq!(received, ids, "each event delivered once, in order");
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} of {} events delivered",
            received.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_a_roster_of_20k_on_postgres_paid_exactly_once() {
    let pg = Pg::start();
    let roster = gen_roster(&[
        "--items",
        "20000",
        "--bad",
        "20",
        "--seed",
        "11",
        "--payout-bank",
        BANK_A,
    ]);
    let sim = bank_a(|c| c.fail_permille = 30).await;
    let (callback, delivered) = platform().await;
    let mut cfg = pg_config(&pg.url(), &sim.addr.to_string(), "GW01");
    cfg.events.callback_url = Some(callback);
    let gw = gateway(cfg).await;
    let api = Api::new(gw.addr);

    let (status, answer) = api.submit_json(SUBMITTER, roster.clone()).await;
    assert_eq!(status, 202, "{answer}");
    let accepted = answer["accepted_count"].as_u64().expect("accepted_count");
    let rejected = answer["rejected_count"].as_u64().expect("rejected_count");
    assert_eq!(accepted + rejected, 20_000);
    assert!((15..=20).contains(&rejected), "{rejected}");
    let batch_id = answer["batch_id"].as_str().expect("batch_id").to_owned();
    let (again, answer2) = api.submit_json(SUBMITTER, roster).await;
    assert_eq!(
        (again, &answer2),
        (200, &answer),
        "the stored answer replayed"
    );
    let (click, q) = api
        .post(SUBMITTER, &format!("/v1/batches/{batch_id}/query"), None)
        .await;
    assert!(click == 202 || click == 200, "{q}");

    let batch = api.wait_final(&batch_id, Duration::from_secs(600)).await;
    let ledger = &sim.ledger;
    assert_eq!(ledger.accepted_batches(), 1, "{batch}");
    assert_eq!(
        ledger.items_paid() as u64,
        accepted,
        "each accepted item paid"
    );
    assert_eq!(ledger.max_payments_per_id(), 1, "nobody paid twice");
    let c = &batch["counts"];
    assert_eq!(c["succeeded"].as_u64(), Some(ledger.credited() as u64));
    assert_eq!(c["failed"].as_u64(), Some(ledger.failed() as u64));
    assert_eq!(c["pending"].as_u64(), Some(0));
    assert_eq!(c["sent"].as_u64(), Some(0));
    assert_eq!(
        batch["amounts_fen"]["succeeded"].as_u64(),
        Some(ledger.credited_amount())
    );
    assert_eq!(batch["query"]["late"], false);
    let failed = api.all_items(&batch_id, Some("failed")).await;
    assert_eq!(failed.len() as u64, ledger.failed() as u64);
    assert!(failed.len() >= 2, "the simulator fails 3%");
    for it in &failed {
        assert!(
            it["fail_code"].as_str().is_some_and(|c| c.starts_with('A')),
            "{it}"
        );
        assert!(it["confirmed_at"].is_string(), "{it}");
        assert!(it["bank_ref"].is_string(), "{it}");
    }

    // A failed item corrected (re-issued and paid), another returned. The correction pays a personal
    // (ssc) account, so it corrects a person's item: a unit's would be refused (E-ACCT-UNIT-PERSONAL),
    // and which items fail depends on the simulator's draw.
    let persons: Vec<&serde_json::Value> = failed
        .iter()
        .filter(|i| i["recipient_kind"] == "person")
        .collect();
    let seq = persons.first().expect("a failed person")["seq"]
        .as_i64()
        .expect("seq");
    let (s, c) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items/{seq}/correction"),
            Some(
                json!({"account_no": gateway::roster::luhn_complete("621700555566667"),
                "account_kind": "ssc", "account_bank_code": "102241000019", "name": "张三"}),
            ),
        )
        .await;
    assert_eq!(s, 202, "{c}");
    let reissue = c["reissue_batch_id"].as_str().expect("reissue").to_owned();
    let seq2 = failed
        .iter()
        .map(|i| i["seq"].as_i64().expect("seq"))
        .find(|s| *s != seq)
        .expect("a second failed item");
    let (s, v) = api
        .post(
            SUBMITTER,
            &format!("/v1/batches/{batch_id}/items/{seq2}/return"),
            Some(json!({"reason": "退回国库"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rb = api.wait_final(&reissue, Duration::from_secs(60)).await;
    assert_eq!(rb["counts"]["accepted"], 1);
    assert_eq!(sim.ledger.accepted_batches(), 2);
    assert_eq!(sim.ledger.max_payments_per_id(), 1);

    // The reads built on aggregates: assessments, strikes, the dashboard, metrics, audit.
    let (s, v) = api.get(AUDITOR, "/v1/assessments?year=2026").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .get(AUDITOR, "/v1/assessments?year=2026&format=csv")
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .get(
            AUDITOR,
            &format!("/v1/assessments/{BANK_A}/strikes?year=2026"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api.get(AUDITOR, "/dashboard").await;
    assert_eq!(s, 200);
    assert!(v.as_str().is_some_and(|h| h.contains(BANK_A)), "{v}");
    let (s, v) = api.get(AUDITOR, "/metrics").await;
    assert_eq!(s, 200);
    assert!(v.as_str().is_some_and(|m| m.contains("succeeded")), "{v}");
    let (s, _) = api.get(AUDITOR, "/readyz").await;
    assert_eq!(s, 200);
    let (_, page) = api
        .get(ADMIN, &format!("/v1/batches/{batch_id}/items?limit=1"))
        .await;
    assert!(page["items"][0]["id_no"].is_string());
    let (s, audit) = api.get(AUDITOR, "/v1/audit").await;
    assert_eq!(s, 200, "{audit}");
    assert!(
        audit["records"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["action"] == "read-personal-data"),
        "{audit}"
    );

    // The outbox: every event reached the callback, in order, once.
    wait_delivered(&api, &delivered).await;
    assert_eq!(pg::count_rows(&pg.url(), "items").await, 20_001);
    gw.shutdown().await;
    sim.shutdown().await;
}

/// Rows a refused request must not touch.
async fn snapshot(url: &str) -> [i64; 4] {
    [
        pg::count_rows(url, "batches").await,
        pg::count_rows(url, "items").await,
        pg::count_rows(url, "parts").await,
        pg::count_rows(url, "blacklist").await,
    ]
}

fn small_roster(items: usize, seed: u32, batch_no: &str) -> Value {
    let out = gen_roster(&[
        "--items",
        &items.to_string(),
        "--seed",
        &seed.to_string(),
        "--batch-no",
        batch_no,
        "--payout-bank",
        BANK_A,
        "--unit-ratio",
        "0",
    ]);
    serde_json::from_slice(&out).expect("roster json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_postgres_is_refused_with_the_store_unchanged() {
    let pg = Pg::start();
    let url = pg.url();
    let sim = bank_a(|_| {}).await;
    let gw = gateway(pg_config(&url, &sim.addr.to_string(), "GW01")).await;
    let api = Api::new(gw.addr);
    let base = small_roster(6, 31, "PG-BAD-1");
    let refuse = async |body: Value, status: u16, code: &str| {
        let before = snapshot(&url).await;
        let (s, v) = api
            .submit_json(SUBMITTER, serde_json::to_vec(&body).expect("json"))
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{v}"
        );
        assert_eq!(
            snapshot(&url).await,
            before,
            "the store changed after a refusal"
        );
        v
    };

    let mut r = base.clone();
    r["items"][1]["amount_fen"] = json!("12");
    let v = refuse(r, 400, "E-REQUEST-INVALID").await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("items[1].amount_fen")
    );
    let mut r = base.clone();
    r["payout_bank"] = json!("999241000019");
    refuse(r, 422, "E-BANK-NOT-ELIGIBLE").await;
    let mut r = base.clone();
    r["total_count"] = json!(7);
    refuse(r, 422, "E-BATCH-TOTALS").await;
    let mut r = base.clone();
    for it in r["items"].as_array_mut().expect("items") {
        it["amount_fen"] = json!(0);
    }
    r["total_amount_fen"] = json!(0);
    refuse(r, 422, "E-BATCH-EMPTY").await;

    // Blacklist (admin), then a roster with a blacklisted id: that item alone is rejected.
    let black = base["items"][0]["id_no"].as_str().expect("id").to_owned();
    let entry = json!({"kind": "id_no", "value": black, "reason": "冒领"});
    let (s, v) = api.post(ADMIN, "/v1/blacklist", Some(entry.clone())).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = api.post(ADMIN, "/v1/blacklist", Some(entry)).await;
    assert!(s == 200 || s == 409, "listed once: {s} {v}");
    let (_, list) = api.get(ADMIN, "/v1/blacklist").await;
    assert_eq!(list["entries"].as_array().map(Vec::len), Some(1), "{list}");

    let (s, v) = api
        .submit_json(SUBMITTER, serde_json::to_vec(&base).expect("json"))
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["rejected"][0]["code"], "E-ITEM-BLACKLISTED", "{v}");
    assert_eq!(v["accepted_count"], 5);
    // Same batch_no, another body: 409; the same body again: 200 with the stored answer.
    let mut other = base.clone();
    other["items"][2]["memo"] = json!("changed");
    refuse(other, 409, "E-BATCH-CONFLICT").await;
    let (s, again) = api
        .submit_json(SUBMITTER, serde_json::to_vec_pretty(&base).expect("json"))
        .await;
    assert_eq!((s, &again), (200, &v));
    // The accepted claims block the same recipient in another roster.
    let mut r2 = small_roster(2, 32, "PG-BAD-2");
    r2["items"][0]["id_no"] = base["items"][3]["id_no"].clone();
    let (s, v2) = api
        .submit_json(SUBMITTER, serde_json::to_vec(&r2).expect("json"))
        .await;
    assert_eq!(s, 202, "{v2}");
    assert_eq!(v2["rejected"][0]["code"], "E-ITEM-DUPLICATE", "{v2}");
    assert_eq!(v2["accepted_count"], 1);
    let (s, items) = api
        .get(
            SUBMITTER,
            &format!(
                "/v1/batches/{}/items?status=rejected",
                v2["batch_id"].as_str().unwrap_or("")
            ),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(items["items"].as_array().map(Vec::len), Some(1), "{items}");
    gw.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_database_share_the_work_and_pay_each_item_once() {
    let pg = Pg::start();
    let url = pg.url();
    let sim = bank_a(|c| c.processing = Duration::from_millis(300)).await;
    let (callback, delivered) = platform().await;
    let mut gws = Vec::new();
    for node in ["GW01", "GW02"] {
        let mut cfg = pg_config(&url, &sim.addr.to_string(), node);
        cfg.events.callback_url = Some(callback.clone());
        gws.push(gateway(cfg).await);
    }
    let apis: Vec<Api> = gws.iter().map(|g| Api::new(g.addr)).collect();
    // Rosters submitted to either instance, at the same time.
    let mut submits = tokio::task::JoinSet::new();
    for i in 0..8u32 {
        let api = apis[i as usize % 2].clone();
        submits.spawn(async move {
            let r = small_roster(400, 40 + i, &format!("PG-TWO-{i}"));
            let (s, v) = api
                .submit_json(SUBMITTER, serde_json::to_vec(&r).expect("json"))
                .await;
            assert_eq!(s, 202, "{v}");
            (
                v["batch_id"].as_str().expect("id").to_owned(),
                v["accepted_count"].as_u64().expect("accepted"),
            )
        });
    }
    let mut batches = Vec::new();
    while let Some(r) = submits.join_next().await {
        batches.push(r.expect("submit"));
    }
    let mut accepted = 0;
    for (i, (id, n)) in batches.iter().enumerate() {
        // Read through the other instance than the one that may have taken it in.
        let b = apis[(i + 1) % 2]
            .wait_final(id, Duration::from_secs(120))
            .await;
        assert_eq!(b["counts"]["pending"], 0, "{b}");
        accepted += n;
    }
    assert_eq!(sim.ledger.accepted_batches(), 8, "each part sent once");
    assert_eq!(sim.ledger.items_paid() as u64, accepted);
    assert_eq!(sim.ledger.max_payments_per_id(), 1, "nobody paid twice");
    // One deliverer at a time: every event once, in outbox order.
    wait_delivered(&apis[0], &delivered).await;
    for g in gws {
        g.shutdown().await;
    }
    sim.shutdown().await;
}

/// A store as the version before the claims table left it, with two of its items.
async fn migrate_before(url: &str, backend: &str, before: &str, dir: &std::path::Path) {
    let pool = store_migrated_before(url, backend, before, dir).await;
    // Two items of an earlier version: one holding a claim (hex key, as it was), one rejected.
    let key = LookupKey::development().hash(&["claim", "a", "S1", "2026"]);
    for (seq, claim) in [(1i64, Some(key)), (2, None)] {
        sqlx::query(
            "insert into items (batch_id, seq, recipient_kind, name, id_no, account_no, account_kind, \
             account_bank_code, amount_fen, phone, ssc_exempt, memo, status, claim_key, handled_reason, \
             bank_item_ref) values ('b-old', $1, 'person', 'n', 'i', 'a', 'ssc', '105', 100, 'p', 0, 'm', \
             'pending', $2, 'why', $3)",
        )
        .bind(seq)
        .bind(claim)
        .bind(format!("{seq:012}"))
        .execute(&pool)
        .await
        .expect("old item");
    }
    pool.close().await;
}

/// An earlier version's items keep every column through the upgrades that move claims, then the
/// personal fields, out of them, and their claims still count.
async fn claims_move_out_of_items(url: &str, backend: &str, dir: &std::path::Path) {
    migrate_before(url, backend, "20261126160000", dir).await;
    let store = Store::open(url).await.expect("upgraded");
    let items = store.list_items("b-old", None, 0, 10).await.expect("items");
    assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [1, 2]);
    // The personal fields moved to `items_pii` (20261208000000) with their rows.
    for i in &items {
        assert_eq!(
            (
                i.name.expose(),
                i.id_no.expose(),
                i.account_no.expose(),
                i.phone.expose()
            ),
            ("n", "i", "a", "p"),
            "item {}",
            i.seq
        );
    }
    let mut tx = store
        .begin_intake(&new_batch("b-new", 1_795_000_000_000))
        .await
        .expect("intake");
    let claimed = tx
        .claimed(&[
            LookupKey::development().claim("a", "S1", "2026"),
            claim("b"),
        ])
        .await
        .expect("claimed");
    assert_eq!(
        claimed,
        [LookupKey::development().claim("a", "S1", "2026")]
            .into_iter()
            .collect()
    );
    tx.abort().await.expect("abort");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("db");
    let (reason, item_ref): (String, String) =
        sqlx::query_as("select handled_reason, bank_item_ref from items where seq = 1")
            .fetch_one(&pool)
            .await
            .expect("kept columns");
    assert_eq!(
        (reason.as_str(), item_ref.as_str()),
        ("why", "000000000001")
    );
    pool.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_move_out_of_items_on_sqlite() {
    let dir = TempDir::new("claims-upgrade");
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("gw.db").display());
    claims_move_out_of_items(&url, "sqlite", &dir.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_move_out_of_items_on_postgres() {
    let pg = Pg::start();
    let dir = TempDir::new("claims-upgrade-pg");
    claims_move_out_of_items(&pg.fresh_database(), "postgres", &dir.0).await;
}

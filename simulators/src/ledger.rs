//! The simulated bank's books: every accepted batch and every item it paid, plus counters of what it
//! saw, so end-to-end tests can assert "nothing was paid twice" from the bank's side.
//!
//! A bank pays at acceptance (bank A: `0000` to a batch; bank C: `00` to one item's `0200`): the item
//! outcomes are decided then and never change. Bank C takes one item per message, referenced by its F37;
//! the books file each such item under a batch named by its F48 `BN` (whatever connection it came on),
//! so batch, item and payment counts read the same for both banks. The books hold personal data (account and id numbers) because a double payment can only be seen by them; they
//! never print it — `Debug` shows counters only.
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;

/// What the bank did with an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Credited to the account.
    Credited,
    /// Failed with the bank's code and reason.
    Failed {
        /// Failure code, e.g. `A001`.
        code: String,
        /// Short reason text.
        reason: String,
    },
}

/// One item of an accepted batch as the bank booked it (without personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookedItem {
    /// The item's `seq` in its batch.
    pub seq: u64,
    /// Amount in fen.
    pub amount: u64,
    /// What the bank did.
    pub outcome: ItemOutcome,
}

/// Totals of one accepted batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSummary {
    /// The bank's id of the batch.
    pub bank_batch_id: String,
    /// `YYYYMMDD`, Beijing date of acceptance.
    pub accept_date: String,
    /// Items in the batch.
    pub items: usize,
    /// Sum of all amounts in fen.
    pub total_amount: u64,
    /// Items credited.
    pub credited: usize,
    /// Amount credited.
    pub credited_amount: u64,
    /// Items failed.
    pub failed: usize,
    /// Amount failed.
    pub failed_amount: u64,
}

/// An item as the simulator hands it to the books and later reports it.
#[derive(Clone)]
pub(crate) struct BankItem {
    pub(crate) seq: u64,
    pub(crate) account_no: String,
    pub(crate) id_no: String,
    pub(crate) amount: u64,
    pub(crate) account_bank_code: String,
    pub(crate) outcome: ItemOutcome,
}

/// An accepted batch.
#[derive(Clone)]
pub(crate) struct BankBatch {
    pub(crate) bank_batch_id: String,
    pub(crate) accept_date: String,
    /// When results become final (acceptance + processing + late result).
    pub(crate) final_at: Instant,
    /// Beijing date and time at `final_at`.
    pub(crate) confirm_date: String,
    pub(crate) confirm_time: String,
    pub(crate) items: Vec<BankItem>,
}

/// One item of a bank that takes one payment per message (bank C), booked under its reference (F37).
pub(crate) struct RefItem {
    /// The batch it is filed under (F48 `BN`).
    pub(crate) batch_no: String,
    /// The item; its outcome is decided at acceptance.
    pub(crate) item: BankItem,
    /// `YYYYMMDD`, Beijing date of acceptance.
    pub(crate) accept_date: String,
    /// When the result becomes final.
    pub(crate) final_at: Instant,
    /// Beijing date and time at `final_at`, `YYYYMMDDhhmmss`.
    pub(crate) confirmed_at: String,
    /// The bank's transaction reference.
    pub(crate) bank_ref: String,
    /// Whether its result was made late on purpose (fault `late_result_permille`).
    pub(crate) late: bool,
}

/// How the books settled a one-item payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettledItem {
    /// Booked (and paid) now.
    Accepted,
    /// This reference was accepted before: nothing booked.
    Duplicate,
}

/// How the books settled a submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Accepted now under a new id.
    Accepted {
        bank_batch_id: String,
        accept_date: String,
    },
    /// Accepted before: the original id and date.
    Duplicate {
        bank_batch_id: String,
        accept_date: String,
    },
    /// Not a duplicate and refused by the caller's check: nothing booked.
    Refused,
}

/// Events the simulator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Submit,
    Query,
    Echo,
    Busy,
    Dropped,
    Garbled,
    Duplicated,
    ConnectionRefused,
    Unparsable,
    SignOn,
    SignOff,
    NotSignedOn,
    MacRejected,
    FormatError,
    DuplicateStan,
    Overloaded,
    Cut,
    BadMac,
    UnknownMti,
    Oversized,
    IdleClosed,
    Delayed,
}

/// Payments of one item identity.
#[derive(Debug, Clone, Copy, Default)]
struct Payments {
    credited: usize,
    booked: usize,
}

#[derive(Default)]
struct Books {
    batches: HashMap<String, Arc<BankBatch>>,
    /// Bank C: items by reference (F37).
    by_ref: HashMap<String, Arc<RefItem>>,
    /// (id_no, account_no, amount) -> payments.
    by_identity: HashMap<(String, String, u64), Payments>,
    next_serial: u64,
    submits_seen: usize,
    queries_seen: usize,
    echoes_seen: usize,
    duplicate_submits: usize,
    busy_replies: usize,
    dropped_replies: usize,
    garbled_replies: usize,
    duplicated_replies: usize,
    refused_connections: usize,
    unparsable_requests: usize,
    sign_ons: usize,
    sign_offs: usize,
    not_signed_on_replies: usize,
    mac_rejections: usize,
    format_errors: usize,
    duplicate_stans: usize,
    overloaded_replies: usize,
    cut_replies: usize,
    bad_mac_replies: usize,
    unknown_mtis: usize,
    oversized_frames: usize,
    idle_closes: usize,
    delayed_replies: usize,
    late_results: usize,
    items_booked: usize,
    credited: usize,
    credited_amount: u64,
    failed: usize,
    failed_amount: u64,
}

/// The simulated bank's books. Shared (`Arc<Ledger>`) between the server and the test that reads it.
pub struct Ledger {
    books: Mutex<Books>,
}

impl Books {
    /// Books the payment of one accepted item.
    fn pay(&mut self, item: &BankItem) {
        let key = (item.id_no.clone(), item.account_no.clone(), item.amount);
        let p = self.by_identity.entry(key).or_default();
        p.booked += 1;
        if item.outcome == ItemOutcome::Credited {
            p.credited += 1;
        }
        self.items_booked += 1;
        match item.outcome {
            ItemOutcome::Credited => {
                self.credited += 1;
                self.credited_amount = self.credited_amount.saturating_add(item.amount);
            }
            ItemOutcome::Failed { .. } => {
                self.failed += 1;
                self.failed_amount = self.failed_amount.saturating_add(item.amount);
            }
        }
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.lock();
        f.debug_struct("Ledger")
            .field("accepted_batches", &b.batches.len())
            .field("items_paid", &b.items_booked)
            .field("credited", &b.credited)
            .field("failed", &b.failed)
            .field("submits_seen", &b.submits_seen)
            .field("duplicate_submits", &b.duplicate_submits)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Empty books; bank batch serials start at `first_serial`.
    pub(crate) fn new(first_serial: u64) -> Self {
        Self {
            books: Mutex::new(Books {
                next_serial: first_serial,
                ..Books::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Books> {
        // The books stay consistent under a panic elsewhere: every update is a few plain assignments.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an event.
    pub(crate) fn note(&self, event: Event) {
        let mut b = self.lock();
        let counter = match event {
            Event::Submit => &mut b.submits_seen,
            Event::Query => &mut b.queries_seen,
            Event::Echo => &mut b.echoes_seen,
            Event::Busy => &mut b.busy_replies,
            Event::Dropped => &mut b.dropped_replies,
            Event::Garbled => &mut b.garbled_replies,
            Event::Duplicated => &mut b.duplicated_replies,
            Event::ConnectionRefused => &mut b.refused_connections,
            Event::Unparsable => &mut b.unparsable_requests,
            Event::SignOn => &mut b.sign_ons,
            Event::SignOff => &mut b.sign_offs,
            Event::NotSignedOn => &mut b.not_signed_on_replies,
            Event::MacRejected => &mut b.mac_rejections,
            Event::FormatError => &mut b.format_errors,
            Event::DuplicateStan => &mut b.duplicate_stans,
            Event::Overloaded => &mut b.overloaded_replies,
            Event::Cut => &mut b.cut_replies,
            Event::BadMac => &mut b.bad_mac_replies,
            Event::UnknownMti => &mut b.unknown_mtis,
            Event::Oversized => &mut b.oversized_frames,
            Event::IdleClosed => &mut b.idle_closes,
            Event::Delayed => &mut b.delayed_replies,
        };
        *counter += 1;
    }

    /// Settles a well-formed submit atomically: a known `batch_no` is a duplicate (whatever `refuse`
    /// says, as the bank checks `1003` before `1002`/`1004`); otherwise `refuse` refuses it; otherwise
    /// `book(serial)` builds the batch, which is booked and paid.
    pub(crate) fn settle_submit(
        &self,
        batch_no: &str,
        refuse: bool,
        book: impl FnOnce(u64) -> BankBatch,
    ) -> Settled {
        let mut b = self.lock();
        if let Some(old) = b.batches.get(batch_no) {
            let settled = Settled::Duplicate {
                bank_batch_id: old.bank_batch_id.clone(),
                accept_date: old.accept_date.clone(),
            };
            b.duplicate_submits += 1;
            return settled;
        }
        if refuse {
            return Settled::Refused;
        }
        let serial = b.next_serial;
        b.next_serial = serial.wrapping_add(1);
        let batch = book(serial);
        for item in &batch.items {
            b.pay(item);
        }
        let settled = Settled::Accepted {
            bank_batch_id: batch.bank_batch_id.clone(),
            accept_date: batch.accept_date.clone(),
        };
        b.batches.insert(batch_no.to_owned(), Arc::new(batch));
        settled
    }

    /// Settles a well-formed one-item payment (bank C) atomically: a known `item_ref` is a duplicate,
    /// for ever; otherwise `book(serial)` builds the item, which is booked, paid and filed under its
    /// batch (created with the first item filed under it).
    pub(crate) fn settle_item(
        &self,
        item_ref: &str,
        book: impl FnOnce(u64) -> RefItem,
    ) -> SettledItem {
        let mut b = self.lock();
        if b.by_ref.contains_key(item_ref) {
            b.duplicate_submits += 1;
            return SettledItem::Duplicate;
        }
        let serial = b.next_serial;
        b.next_serial = serial.wrapping_add(1);
        let booked = book(serial);
        b.pay(&booked.item);
        if booked.late {
            b.late_results += 1;
        }
        let confirm_date = booked.confirmed_at.get(..8).unwrap_or_default().to_owned();
        let confirm_time = booked.confirmed_at.get(8..).unwrap_or_default().to_owned();
        let batch = b.batches.entry(booked.batch_no.clone()).or_insert_with(|| {
            Arc::new(BankBatch {
                // Bank C has no batch of its own: the gateway's reference names it.
                bank_batch_id: booked.batch_no.clone(),
                accept_date: booked.accept_date.clone(),
                final_at: booked.final_at,
                confirm_date: confirm_date.clone(),
                confirm_time: confirm_time.clone(),
                items: Vec::new(),
            })
        });
        // Readers holding the old batch keep their snapshot; the books move on to a new one.
        let batch = Arc::make_mut(batch);
        if booked.final_at > batch.final_at {
            batch.final_at = booked.final_at;
            batch.confirm_date = confirm_date;
            batch.confirm_time = confirm_time;
        }
        batch.items.push(booked.item.clone());
        b.by_ref.insert(item_ref.to_owned(), Arc::new(booked));
        SettledItem::Accepted
    }

    /// The one-item payment `item_ref` (bank C).
    pub(crate) fn ref_item(&self, item_ref: &str) -> Option<Arc<RefItem>> {
        self.lock().by_ref.get(item_ref).cloned()
    }

    /// The accepted batch `batch_no`.
    pub(crate) fn bank_batch(&self, batch_no: &str) -> Option<Arc<BankBatch>> {
        self.lock().batches.get(batch_no).cloned()
    }

    /// Batches accepted (`0000`); bank C: distinct F48 `BN`s of accepted items.
    pub fn accepted_batches(&self) -> usize {
        self.lock().batches.len()
    }

    /// Submits answered `1003` (duplicate `batch_no`); bank C: payouts answered `94` (F37 accepted
    /// before).
    pub fn duplicate_submits(&self) -> usize {
        self.lock().duplicate_submits
    }

    /// Submit requests read, refused ones included (busy, format errors, totals, duplicates, and bodies
    /// that start like a submit but could not be read); bank C: payout `0200`s read, whatever the answer.
    pub fn submits_seen(&self) -> usize {
        self.lock().submits_seen
    }

    /// Query requests read (bank C: inquiry `0200`s).
    pub fn queries_seen(&self) -> usize {
        self.lock().queries_seen
    }

    /// Echo requests read.
    pub fn echoes_seen(&self) -> usize {
        self.lock().echoes_seen
    }

    /// Replies `9999` (bank C: `96`) sent to submits and queries by the busy fault.
    pub fn busy_replies(&self) -> usize {
        self.lock().busy_replies
    }

    /// Replies lost on purpose (fault `drop_before_reply_permille`).
    pub fn dropped_replies(&self) -> usize {
        self.lock().dropped_replies
    }

    /// Replies garbled on purpose (fault `garble_reply_permille`).
    pub fn garbled_replies(&self) -> usize {
        self.lock().garbled_replies
    }

    /// Replies sent twice on purpose (fault `duplicate_reply_permille`).
    pub fn duplicated_replies(&self) -> usize {
        self.lock().duplicated_replies
    }

    /// Connections closed at once because `max_connections` were open.
    pub fn refused_connections(&self) -> usize {
        self.lock().refused_connections
    }

    /// Requests that could not be read (connection closed without a reply).
    pub fn unparsable_requests(&self) -> usize {
        self.lock().unparsable_requests
    }

    /// Bank C: sign-ons answered `00`.
    pub fn sign_ons(&self) -> usize {
        self.lock().sign_ons
    }

    /// Bank C: sign-offs answered `00`.
    pub fn sign_offs(&self) -> usize {
        self.lock().sign_offs
    }

    /// Bank C: replies `A7` (not signed on).
    pub fn not_signed_on_replies(&self) -> usize {
        self.lock().not_signed_on_replies
    }

    /// Bank C: replies `A0` (the request's MAC was wrong or missing).
    pub fn mac_rejections(&self) -> usize {
        self.lock().mac_rejections
    }

    /// Bank C: replies `30` (format errors, duplicate STANs included).
    pub fn format_errors(&self) -> usize {
        self.lock().format_errors
    }

    /// Bank C: requests whose STAN was already outstanding on their connection (answered `30`).
    pub fn duplicate_stans(&self) -> usize {
        self.lock().duplicate_stans
    }

    /// Replies refusing a request over the client's limit: bank C's `96` when more than 32 requests
    /// were outstanding on the connection, bank B's `503` when more than 8 were in flight (not counted
    /// in [`Ledger::busy_replies`], which counts the busy fault).
    pub fn overloaded_replies(&self) -> usize {
        self.lock().overloaded_replies
    }

    /// Replies cut short on purpose (fault `cut_reply_permille`).
    pub fn cut_replies(&self) -> usize {
        self.lock().cut_replies
    }

    /// Replies sent with a wrong MAC on purpose (fault `bad_mac_reply_permille`).
    pub fn bad_mac_replies(&self) -> usize {
        self.lock().bad_mac_replies
    }

    /// Bank C: messages of an unknown MTI (not answered).
    pub fn unknown_mtis(&self) -> usize {
        self.lock().unknown_mtis
    }

    /// Frames over the maximum length (the connection was closed).
    pub fn oversized_frames(&self) -> usize {
        self.lock().oversized_frames
    }

    /// Connections closed for being idle.
    pub fn idle_closes(&self) -> usize {
        self.lock().idle_closes
    }

    /// Bank C: replies held back on purpose (fault `reply_delay`; the seeded reply jitter that
    /// reorders pipelined replies is normal behaviour and not counted).
    pub fn delayed_replies(&self) -> usize {
        self.lock().delayed_replies
    }

    /// Bank C: items whose result was made late on purpose (fault `late_result_permille`).
    pub fn late_results(&self) -> usize {
        self.lock().late_results
    }

    /// Bank C: the item references (F37) accepted, sorted.
    pub fn item_refs(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lock().by_ref.keys().cloned().collect();
        out.sort();
        out
    }

    /// Bank C: the item accepted under reference `item_ref` (F37), without personal data.
    pub fn item(&self, item_ref: &str) -> Option<BookedItem> {
        let r = self.ref_item(item_ref)?;
        Some(BookedItem {
            seq: r.item.seq,
            amount: r.item.amount,
            outcome: r.item.outcome.clone(),
        })
    }

    /// Items the bank processed at acceptance, credited or failed (`credited() + failed()`).
    pub fn items_paid(&self) -> usize {
        self.lock().items_booked
    }

    /// Items credited.
    pub fn credited(&self) -> usize {
        self.lock().credited
    }

    /// Amount credited in fen, over all batches.
    pub fn credited_amount(&self) -> u64 {
        self.lock().credited_amount
    }

    /// Items failed.
    pub fn failed(&self) -> usize {
        self.lock().failed
    }

    /// Amount failed in fen, over all batches.
    pub fn failed_amount(&self) -> u64 {
        self.lock().failed_amount
    }

    /// The most times one item identity (`id_no` + `account_no` + `amount`) was **credited**, over all
    /// batches; `1` or `0` when nobody was paid twice. A failed item resubmitted after correction and
    /// then credited counts once.
    pub fn max_payments_per_id(&self) -> usize {
        self.lock()
            .by_identity
            .values()
            .map(|p| p.credited)
            .max()
            .unwrap_or(0)
    }

    /// The most times one item identity was booked at all (credited or failed), over all batches.
    pub fn max_items_per_id(&self) -> usize {
        self.lock()
            .by_identity
            .values()
            .map(|p| p.booked)
            .max()
            .unwrap_or(0)
    }

    /// Credits per item identity, as `("<id_no>|<account_no>|<amount>", times credited)`, sorted; only
    /// identities credited at least once. Personal data: for test assertions, never for logs.
    pub fn paid_ids(&self) -> Vec<(String, usize)> {
        let mut out: Vec<(String, usize)> = self
            .lock()
            .by_identity
            .iter()
            .filter(|(_, p)| p.credited > 0)
            .map(|((id, account, amount), p)| (format!("{id}|{account}|{amount}"), p.credited))
            .collect();
        out.sort();
        out
    }

    /// The `batch_no`s accepted, sorted.
    pub fn batch_nos(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lock().batches.keys().cloned().collect();
        out.sort();
        out
    }

    /// Totals of the accepted batch `batch_no`.
    pub fn batch(&self, batch_no: &str) -> Option<BatchSummary> {
        let batch = self.bank_batch(batch_no)?;
        let mut s = BatchSummary {
            bank_batch_id: batch.bank_batch_id.clone(),
            accept_date: batch.accept_date.clone(),
            items: batch.items.len(),
            total_amount: 0,
            credited: 0,
            credited_amount: 0,
            failed: 0,
            failed_amount: 0,
        };
        for item in &batch.items {
            s.total_amount = s.total_amount.saturating_add(item.amount);
            match item.outcome {
                ItemOutcome::Credited => {
                    s.credited += 1;
                    s.credited_amount = s.credited_amount.saturating_add(item.amount);
                }
                ItemOutcome::Failed { .. } => {
                    s.failed += 1;
                    s.failed_amount = s.failed_amount.saturating_add(item.amount);
                }
            }
        }
        Some(s)
    }

    /// The items of the accepted batch `batch_no` in `seq` order, without personal data.
    pub fn items(&self, batch_no: &str) -> Option<Vec<BookedItem>> {
        let batch = self.bank_batch(batch_no)?;
        let mut items: Vec<BookedItem> = batch
            .items
            .iter()
            .map(|i| BookedItem {
                seq: i.seq,
                amount: i.amount,
                outcome: i.outcome.clone(),
            })
            .collect();
        // Bank C files items in the order they arrive.
        items.sort_by_key(|i| i.seq);
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(seq: u64, id: &str, amount: u64, outcome: ItemOutcome) -> BankItem {
        BankItem {
            seq,
            account_no: format!("acct-{id}"),
            id_no: id.into(),
            amount,
            account_bank_code: "402241000015".into(),
            outcome,
        }
    }

    fn batch(id: &str, items: Vec<BankItem>) -> BankBatch {
        BankBatch {
            bank_batch_id: id.into(),
            accept_date: "20250101".into(),
            final_at: Instant::now(),
            confirm_date: "20250101".into(),
            confirm_time: "120000".into(),
            items,
        }
    }

    #[test]
    fn books_once_per_batch_no_and_counts_credits_per_identity() {
        let l = Ledger::new(1);
        let failed = ItemOutcome::Failed {
            code: "A003".into(),
            reason: "frozen".into(),
        };
        let s = l.settle_submit("B1", false, |n| {
            assert_eq!(n, 1);
            batch(
                "X1",
                vec![
                    item(1, "p1", 100, ItemOutcome::Credited),
                    item(2, "p2", 200, failed.clone()),
                ],
            )
        });
        assert_eq!(
            s,
            Settled::Accepted {
                bank_batch_id: "X1".into(),
                accept_date: "20250101".into()
            }
        );
        // Same batch_no again, even with a refusal pending: duplicate, nothing booked.
        let s = l.settle_submit("B1", true, |_| unreachable!("must not book a duplicate"));
        assert!(matches!(s, Settled::Duplicate { ref bank_batch_id, .. } if bank_batch_id == "X1"));
        assert_eq!(
            l.settle_submit("B2", true, |_| unreachable!("refused")),
            Settled::Refused
        );
        // The failed item resubmitted and credited, the credited one paid again by mistake.
        l.settle_submit("B3", false, |_| {
            batch(
                "X3",
                vec![
                    item(1, "p2", 200, ItemOutcome::Credited),
                    item(2, "p1", 100, ItemOutcome::Credited),
                ],
            )
        });
        assert_eq!(l.accepted_batches(), 2);
        assert_eq!(l.duplicate_submits(), 1);
        assert_eq!((l.items_paid(), l.credited(), l.failed()), (4, 3, 1));
        assert_eq!(l.max_payments_per_id(), 2);
        assert_eq!(l.max_items_per_id(), 2);
        assert_eq!(
            l.paid_ids(),
            vec![
                ("p1|acct-p1|100".to_owned(), 2),
                ("p2|acct-p2|200".to_owned(), 1)
            ]
        );
        let s = l.batch("B1").expect("B1");
        assert_eq!(
            (s.items, s.total_amount, s.credited, s.failed_amount),
            (2, 300, 1, 200)
        );
        assert!(l.batch("B2").is_none());
        assert_eq!(l.items("B1").expect("items")[1].outcome, failed);
        assert!(!format!("{l:?}").contains("acct"));
    }

    fn ref_item(batch: &str, seq: u64, id: &str, amount: u64, outcome: ItemOutcome) -> RefItem {
        RefItem {
            batch_no: batch.into(),
            item: item(seq, id, amount, outcome),
            accept_date: "20250315".into(),
            final_at: Instant::now(),
            confirmed_at: format!("202503150930{seq:02}"),
            bank_ref: format!("C20250315{seq:011}"),
            late: seq == 2,
        }
    }

    #[test]
    fn one_item_payments_are_booked_once_per_reference_and_filed_by_batch() {
        let l = Ledger::new(10);
        let failed = ItemOutcome::Failed {
            code: "76".into(),
            reason: "name".into(),
        };
        // Arriving out of seq order, under one batch.
        let s = l.settle_item("PO0000000002", |n| {
            assert_eq!(n, 10);
            ref_item("BN1", 2, "p2", 200, failed.clone())
        });
        assert_eq!(s, SettledItem::Accepted);
        let snapshot = l.bank_batch("BN1").expect("BN1");
        l.settle_item("PO0000000001", |_| {
            ref_item("BN1", 1, "p1", 100, ItemOutcome::Credited)
        });
        // Same reference again, whatever it carries now: a duplicate, nothing booked.
        assert_eq!(
            l.settle_item("PO0000000001", |_| unreachable!(
                "must not book a duplicate"
            )),
            SettledItem::Duplicate
        );
        // Another batch, the same person paid again under a new reference.
        l.settle_item("PO0000000009", |_| {
            ref_item("BN2", 1, "p1", 100, ItemOutcome::Credited)
        });
        assert_eq!(snapshot.items.len(), 1, "readers keep their snapshot");
        assert_eq!(l.accepted_batches(), 2);
        assert_eq!(l.batch_nos(), ["BN1", "BN2"]);
        assert_eq!((l.items_paid(), l.credited(), l.failed()), (3, 2, 1));
        assert_eq!((l.credited_amount(), l.failed_amount()), (200, 200));
        assert_eq!(l.duplicate_submits(), 1);
        assert_eq!(l.max_payments_per_id(), 2);
        assert_eq!(l.late_results(), 1);
        let items = l.items("BN1").expect("BN1");
        assert_eq!(
            items.iter().map(|i| i.seq).collect::<Vec<_>>(),
            [1, 2],
            "in seq order"
        );
        let s = l.batch("BN1").expect("BN1");
        assert_eq!(
            (s.bank_batch_id.as_str(), s.items, s.total_amount, s.failed),
            ("BN1", 2, 300, 1)
        );
        assert_eq!(
            l.item_refs(),
            ["PO0000000001", "PO0000000002", "PO0000000009"]
        );
        assert_eq!(l.item("PO0000000002").expect("item").outcome, failed);
        assert!(l.item("PO0000000003").is_none());
        assert_eq!(
            l.ref_item("PO0000000001").expect("ref").bank_ref,
            "C2025031500000000001"
        );
    }
}

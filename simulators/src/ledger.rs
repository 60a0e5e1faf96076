//! The simulated bank's books: every accepted batch and every item it paid, plus counters of what it
//! saw, so end-to-end tests can assert "nothing was paid twice" from the bank's side.
//!
//! A bank pays at acceptance (`0000`): the item outcomes are decided then and never change. The books
//! hold personal data (account and id numbers) because a double payment can only be seen by them; they
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
            let key = (item.id_no.clone(), item.account_no.clone(), item.amount);
            let p = b.by_identity.entry(key).or_default();
            p.booked += 1;
            if item.outcome == ItemOutcome::Credited {
                p.credited += 1;
            }
            b.items_booked += 1;
            match item.outcome {
                ItemOutcome::Credited => {
                    b.credited += 1;
                    b.credited_amount = b.credited_amount.saturating_add(item.amount);
                }
                ItemOutcome::Failed { .. } => {
                    b.failed += 1;
                    b.failed_amount = b.failed_amount.saturating_add(item.amount);
                }
            }
        }
        let settled = Settled::Accepted {
            bank_batch_id: batch.bank_batch_id.clone(),
            accept_date: batch.accept_date.clone(),
        };
        b.batches.insert(batch_no.to_owned(), Arc::new(batch));
        settled
    }

    /// The accepted batch `batch_no`.
    pub(crate) fn bank_batch(&self, batch_no: &str) -> Option<Arc<BankBatch>> {
        self.lock().batches.get(batch_no).cloned()
    }

    /// Batches accepted (`0000`).
    pub fn accepted_batches(&self) -> usize {
        self.lock().batches.len()
    }

    /// Submits answered `1003` (duplicate `batch_no`).
    pub fn duplicate_submits(&self) -> usize {
        self.lock().duplicate_submits
    }

    /// Submit requests read, refused ones included (busy, format errors, totals, duplicates, and bodies
    /// that start like a submit but could not be read).
    pub fn submits_seen(&self) -> usize {
        self.lock().submits_seen
    }

    /// Query requests read.
    pub fn queries_seen(&self) -> usize {
        self.lock().queries_seen
    }

    /// Echo requests read.
    pub fn echoes_seen(&self) -> usize {
        self.lock().echoes_seen
    }

    /// Replies `9999` (busy) sent to submits and queries.
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
        Some(
            batch
                .items
                .iter()
                .map(|i| BookedItem {
                    seq: i.seq,
                    amount: i.amount,
                    outcome: i.outcome.clone(),
                })
                .collect(),
        )
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
}

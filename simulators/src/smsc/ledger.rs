//! The simulated centre's books: every `submit_sm` it accepted (destination, decoded text, UDH
//! reference/total/part, the notice key the client sent), and counters of everything else it saw and
//! did, so a test can reassemble concatenated messages and count messages per destination and per key
//! from the centre's side ("each notice arrived once").
//!
//! The books hold personal data (phone numbers, message texts) because duplicates and garbling can only
//! be seen there; `Debug` prints counters only.
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use codecs::format::smpp::Concat;
use tokio::time::Instant;

/// One accepted `submit_sm`.
#[derive(Clone, PartialEq, Eq)]
pub struct AcceptedPart {
    /// The id the centre gave it.
    pub message_id: String,
    /// The client's `system_id`.
    pub system_id: String,
    /// `destination_addr` (`86` + 11 digits).
    pub destination: String,
    /// `source_addr` (the service number).
    pub source: String,
    /// The part's text (UCS-2 decoded, UDH removed).
    pub text: String,
    /// Its UDH concatenation element, if any.
    pub concat: Option<Concat>,
    /// The notice key from the key TLV, if the client sent one.
    pub notice_key: Option<String>,
    /// When it was accepted.
    pub at: Instant,
    /// Which connection (1-based, in accept order) carried it.
    pub connection: u64,
}

impl fmt::Debug for AcceptedPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptedPart")
            .field("message_id", &self.message_id)
            .field("concat", &self.concat)
            .field("notice_key", &self.notice_key)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

/// A message as the recipient's handset would assemble it from accepted parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledMessage {
    /// Destination.
    pub destination: String,
    /// The notice key of its parts (when the client sent one).
    pub notice_key: Option<String>,
    /// The text, parts in order.
    pub text: String,
    /// Parts expected (`total`, 1 for a single message).
    pub total: usize,
    /// Parts received.
    pub received: usize,
    /// Message ids of its parts, in part order.
    pub message_ids: Vec<String>,
}

impl AssembledMessage {
    /// Whether every part arrived.
    pub fn complete(&self) -> bool {
        self.received == self.total
    }
}

/// What the centre counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Count {
    SubmitSeen,
    ThrottledWindow,
    ThrottledRate,
    QueueFull,
    Rejected,
    DroppedConnection,
    LostResp,
    BindOk,
    BindRefused,
    Unbind,
    EnquireLinkReceived,
    EnquireLinkSent,
    EnquireLinkRespReceived,
    ReceiptSent,
    ReceiptAcked,
    ReceiptNacked,
    ReceiptWithheld,
    Malformed,
    Connection,
}

#[derive(Default)]
struct Book {
    parts: Vec<AcceptedPart>,
    counts: HashMap<&'static str, usize>,
}

/// The centre's books, shared between the server and the test.
pub struct SmscLedger {
    book: Mutex<Book>,
}

impl fmt::Debug for SmscLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.lock();
        let mut counts: Vec<_> = b.counts.iter().collect();
        counts.sort();
        f.debug_struct("SmscLedger")
            .field("accepted_parts", &b.parts.len())
            .field("counts", &counts)
            .finish()
    }
}

impl Count {
    fn name(self) -> &'static str {
        match self {
            Count::SubmitSeen => "submit_seen",
            Count::ThrottledWindow => "throttled_window",
            Count::ThrottledRate => "throttled_rate",
            Count::QueueFull => "queue_full",
            Count::Rejected => "rejected",
            Count::DroppedConnection => "dropped_connection",
            Count::LostResp => "lost_resp",
            Count::BindOk => "bind_ok",
            Count::BindRefused => "bind_refused",
            Count::Unbind => "unbind",
            Count::EnquireLinkReceived => "enquire_link_received",
            Count::EnquireLinkSent => "enquire_link_sent",
            Count::EnquireLinkRespReceived => "enquire_link_resp_received",
            Count::ReceiptSent => "receipt_sent",
            Count::ReceiptAcked => "receipt_acked",
            Count::ReceiptNacked => "receipt_nacked",
            Count::ReceiptWithheld => "receipt_withheld",
            Count::Malformed => "malformed",
            Count::Connection => "connection",
        }
    }
}

impl SmscLedger {
    pub(crate) fn new() -> Self {
        Self {
            book: Mutex::new(Book::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        // Every update is a push or an increment: consistent even after a panic elsewhere.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count(&self, c: Count) {
        *self.lock().counts.entry(c.name()).or_default() += 1;
    }

    pub(crate) fn accept(&self, part: AcceptedPart) {
        self.lock().parts.push(part);
    }

    fn get(&self, c: Count) -> usize {
        self.lock().counts.get(c.name()).copied().unwrap_or(0)
    }

    /// Every accepted part, in accept order. Personal data: for assertions, never for logs.
    pub fn parts(&self) -> Vec<AcceptedPart> {
        self.lock().parts.clone()
    }

    /// Parts accepted.
    pub fn accepted(&self) -> usize {
        self.lock().parts.len()
    }

    /// `submit_sm`s read (answered or not).
    pub fn submits_seen(&self) -> usize {
        self.get(Count::SubmitSeen)
    }

    /// `ESME_RTHROTTLED` answers because the window was full.
    pub fn throttled_window(&self) -> usize {
        self.get(Count::ThrottledWindow)
    }

    /// `ESME_RTHROTTLED` answers because of the per-second limit.
    pub fn throttled_rate(&self) -> usize {
        self.get(Count::ThrottledRate)
    }

    /// `ESME_RMSGQFUL` answers (fault).
    pub fn queue_full(&self) -> usize {
        self.get(Count::QueueFull)
    }

    /// `submit_sm`s refused for a field error (address, coding, UDH, not bound).
    pub fn rejected(&self) -> usize {
        self.get(Count::Rejected)
    }

    /// Connections closed on purpose before a `submit_sm` was processed (fault or
    /// [`crate::smsc::SmscHandle::drop_connections`]).
    pub fn dropped_connections(&self) -> usize {
        self.get(Count::DroppedConnection)
    }

    /// `submit_sm`s accepted whose response was never sent (connection closed instead).
    pub fn lost_resps(&self) -> usize {
        self.get(Count::LostResp)
    }

    /// Successful binds.
    pub fn binds(&self) -> usize {
        self.get(Count::BindOk)
    }

    /// Refused binds (credentials, too many binds, already bound).
    pub fn binds_refused(&self) -> usize {
        self.get(Count::BindRefused)
    }

    /// `unbind`s received.
    pub fn unbinds(&self) -> usize {
        self.get(Count::Unbind)
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.get(Count::Connection)
    }

    /// `enquire_link`s received from clients.
    pub fn enquire_links_received(&self) -> usize {
        self.get(Count::EnquireLinkReceived)
    }

    /// `enquire_link`s the centre sent.
    pub fn enquire_links_sent(&self) -> usize {
        self.get(Count::EnquireLinkSent)
    }

    /// `enquire_link_resp`s received for them.
    pub fn enquire_link_resps_received(&self) -> usize {
        self.get(Count::EnquireLinkRespReceived)
    }

    /// Receipts (`deliver_sm`) sent, resends included.
    pub fn receipts_sent(&self) -> usize {
        self.get(Count::ReceiptSent)
    }

    /// Receipts answered `deliver_sm_resp` OK.
    pub fn receipts_acked(&self) -> usize {
        self.get(Count::ReceiptAcked)
    }

    /// Receipts answered with an error status.
    pub fn receipts_nacked(&self) -> usize {
        self.get(Count::ReceiptNacked)
    }

    /// Receipts never sent (fault).
    pub fn receipts_withheld(&self) -> usize {
        self.get(Count::ReceiptWithheld)
    }

    /// PDUs that could not be read.
    pub fn malformed(&self) -> usize {
        self.get(Count::Malformed)
    }

    /// Accepted parts per destination.
    pub fn parts_per_destination(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in &self.lock().parts {
            *out.entry(p.destination.clone()).or_default() += 1;
        }
        out
    }

    /// Accepted parts per notice key (parts without a key are left out).
    pub fn parts_per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in &self.lock().parts {
            if let Some(k) = &p.notice_key {
                *out.entry(k.clone()).or_default() += 1;
            }
        }
        out
    }

    /// Messages as handsets assemble them: a single part is a message; parts of a concatenated one are
    /// grouped by (system, destination, key, reference, total) in accept order, and a part number seen
    /// again opens a new message (that is a duplicate).
    pub fn messages(&self) -> Vec<AssembledMessage> {
        type GroupKey = (String, String, Option<String>, u8, u8);
        struct Open {
            parts: BTreeMap<u8, (String, String)>,
            first: usize,
        }
        let book = self.lock();
        let mut done: Vec<(usize, AssembledMessage)> = Vec::new();
        let mut open: HashMap<GroupKey, Open> = HashMap::new();
        let finish = |key: &GroupKey, o: Open| -> (usize, AssembledMessage) {
            let text = o.parts.values().map(|(t, _)| t.as_str()).collect();
            let message_ids = o.parts.values().map(|(_, id)| id.clone()).collect();
            (
                o.first,
                AssembledMessage {
                    destination: key.1.clone(),
                    notice_key: key.2.clone(),
                    text,
                    total: usize::from(key.4),
                    received: o.parts.len(),
                    message_ids,
                },
            )
        };
        for (i, p) in book.parts.iter().enumerate() {
            let Some(c) = p.concat else {
                done.push((
                    i,
                    AssembledMessage {
                        destination: p.destination.clone(),
                        notice_key: p.notice_key.clone(),
                        text: p.text.clone(),
                        total: 1,
                        received: 1,
                        message_ids: vec![p.message_id.clone()],
                    },
                ));
                continue;
            };
            let key: GroupKey = (
                p.system_id.clone(),
                p.destination.clone(),
                p.notice_key.clone(),
                c.reference,
                c.total,
            );
            if open.get(&key).is_some_and(|o| o.parts.contains_key(&c.seq))
                && let Some(o) = open.remove(&key)
            {
                done.push(finish(&key, o));
            }
            let o = open.entry(key.clone()).or_insert_with(|| Open {
                parts: BTreeMap::new(),
                first: i,
            });
            o.parts
                .insert(c.seq, (p.text.clone(), p.message_id.clone()));
            if o.parts.len() == usize::from(c.total)
                && let Some(o) = open.remove(&key)
            {
                done.push(finish(&key, o));
            }
        }
        for (key, o) in open {
            done.push(finish(&key, o));
        }
        done.sort_by_key(|(first, _)| *first);
        done.into_iter().map(|(_, m)| m).collect()
    }

    /// The most parts accepted from `system_id` within any one second (sliding).
    pub fn max_parts_in_any_second(&self, system_id: &str) -> usize {
        let times: Vec<Instant> = self
            .lock()
            .parts
            .iter()
            .filter(|p| p.system_id == system_id)
            .map(|p| p.at)
            .collect();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi].duration_since(times[lo]) >= Duration::from_secs(1) {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    /// Time from the first to the last accepted part.
    pub fn accept_span(&self) -> Duration {
        let b = self.lock();
        match (b.parts.first(), b.parts.last()) {
            (Some(f), Some(l)) => l.at.duration_since(f.at),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(
        dest: &str,
        key: &str,
        text: &str,
        concat: Option<(u8, u8, u8)>,
        id: &str,
    ) -> AcceptedPart {
        AcceptedPart {
            message_id: id.into(),
            system_id: "gw".into(),
            destination: dest.into(),
            source: "1069".into(),
            text: text.into(),
            concat: concat.map(|(reference, total, seq)| Concat {
                reference,
                total,
                seq,
            }),
            notice_key: Some(key.into()),
            at: Instant::now(),
            connection: 1,
        }
    }

    #[test]
    fn assembles_out_of_order_parts_and_splits_duplicates() {
        let l = SmscLedger::new();
        l.accept(part("86a", "k1", "world", Some((7, 2, 2)), "2"));
        l.accept(part("86b", "k2", "single", None, "3"));
        l.accept(part("86a", "k1", "hello ", Some((7, 2, 1)), "1"));
        // The same part again: a duplicate opens a new message.
        l.accept(part("86a", "k1", "world", Some((7, 2, 2)), "4"));
        let m = l.messages();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].text, "hello world");
        assert!(m[0].complete());
        assert_eq!(m[0].message_ids, vec!["1".to_owned(), "2".to_owned()]);
        assert_eq!(m[1].text, "single");
        assert!(!m[2].complete());
        assert_eq!(l.parts_per_key().get("k1"), Some(&3));
        assert_eq!(l.parts_per_destination().get("86b"), Some(&1));
        assert_eq!(l.max_parts_in_any_second("gw"), 4);
        assert!(!format!("{l:?}").contains("hello"));
    }
}

//! The messages of the fixed-width family (bank A), built on named record layouts.
//!
//! ```text
//! submit (1001):  header H1001 | detail D<seq> x 1..n | trailer T      -> reply R1002 (one record)
//! query  (2001):  Q2001 (one record)                                   -> H2002 [| D x n | T when state = final]
//! echo   (9001):  E9001 (one record)                                   -> E9002
//! ```
//! Every record is `record_len` bytes plus CR LF. The layouts come from the bank's profile; this module
//! only knows the record and field *names*, so another bank of the family may move or resize fields.
//!
//! Details are read in place: [`Layouts::read_submit`] and [`Layouts::read_query_reply`] hand each one
//! over as a view ([`SubmitDetailView`], [`ResultDetailView`]) borrowing its text from the body, GBK
//! beyond ASCII decoded into one buffer reused from detail to detail. The owned decoders
//! ([`Layouts::decode_request`], [`Layouts::decode_query_reply`]) are those views copied, so both
//! accept the same bytes and refuse the same bytes with the same error.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    DecodeError, EncodeError, FieldText, Record, RecordLayout, TERMINATOR, Value, records,
};

/// The layouts of one bank of the family, by role.
#[derive(Debug, Clone)]
pub struct Layouts {
    /// `submit_header`.
    pub submit_header: RecordLayout,
    /// `submit_detail`.
    pub submit_detail: RecordLayout,
    /// `trailer` (after submit details and after result details).
    pub trailer: RecordLayout,
    /// `submit_reply`.
    pub submit_reply: RecordLayout,
    /// `query`.
    pub query: RecordLayout,
    /// `query_reply_header`.
    pub query_reply_header: RecordLayout,
    /// `result_detail`.
    pub result_detail: RecordLayout,
    /// `echo`.
    pub echo: RecordLayout,
}

impl Layouts {
    /// Picks the layouts by name from a map; `Err(name)` names a missing one.
    pub fn from_map(map: &BTreeMap<String, RecordLayout>) -> Result<Self, String> {
        let get = |n: &str| map.get(n).cloned().ok_or_else(|| n.to_owned());
        Ok(Self {
            submit_header: get("submit_header")?,
            submit_detail: get("submit_detail")?,
            trailer: get("trailer")?,
            submit_reply: get("submit_reply")?,
            query: get("query")?,
            query_reply_header: get("query_reply_header")?,
            result_detail: get("result_detail")?,
            echo: get("echo")?,
        })
    }

    /// Record length plus terminator.
    pub fn unit(&self) -> usize {
        self.submit_header.record_len() + TERMINATOR.len()
    }

    /// Body length of a submit with `n` details.
    pub fn submit_body_len(&self, n: usize) -> usize {
        (n + 2) * self.unit()
    }
}

/// Submit header (`H1001`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitHeader {
    /// Our reference of the bank batch.
    pub batch_no: String,
    /// Payout account.
    pub payer_account: String,
    /// Payout account name (free text).
    pub payer_name: String,
    /// Subsidy code.
    pub subsidy_code: String,
    /// Details that follow.
    pub item_count: u64,
    /// Sum of the details' amounts in fen.
    pub total_amount: u64,
    /// `YYYYMMDD`.
    pub submit_date: String,
    /// `HHMMSS`.
    pub submit_time: String,
    /// 6-digit region.
    pub region_code: String,
}

/// Submit detail (`D`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitDetail {
    /// Item sequence number.
    pub seq: u64,
    /// Recipient account.
    pub account_no: String,
    /// Recipient name (free text).
    pub account_name: String,
    /// Id type code.
    pub id_type: String,
    /// Id number.
    pub id_no: String,
    /// Amount in fen.
    pub amount: u64,
    /// Account kind code.
    pub account_kind: String,
    /// Account bank code (12 digits).
    pub account_bank_code: String,
    /// Phone.
    pub phone: String,
    /// Memo (free text).
    pub memo: String,
}

/// A submit detail read in place ([`Layouts::read_submit`]): text borrowed from the record, or from
/// the reader's buffer where GBK beyond ASCII was decoded (reused from detail to detail: reading
/// allocates nothing per detail). Checked exactly as a [`SubmitDetail`] is: that one is made from
/// this (`From`).
///
/// Its `Debug` masks the personal fields (account, name, id, phone).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SubmitDetailView<'a> {
    /// Item sequence number.
    pub seq: u64,
    /// Recipient account.
    pub account_no: &'a str,
    /// Recipient name (free text).
    pub account_name: &'a str,
    /// Id type code.
    pub id_type: &'a str,
    /// Id number.
    pub id_no: &'a str,
    /// Amount in fen.
    pub amount: u64,
    /// Account kind code.
    pub account_kind: &'a str,
    /// Account bank code (12 digits).
    pub account_bank_code: &'a str,
    /// Phone.
    pub phone: &'a str,
    /// Memo (free text).
    pub memo: &'a str,
}

impl From<SubmitDetailView<'_>> for SubmitDetail {
    fn from(d: SubmitDetailView<'_>) -> Self {
        Self {
            seq: d.seq,
            account_no: d.account_no.to_owned(),
            account_name: d.account_name.to_owned(),
            id_type: d.id_type.to_owned(),
            id_no: d.id_no.to_owned(),
            amount: d.amount,
            account_kind: d.account_kind.to_owned(),
            account_bank_code: d.account_bank_code.to_owned(),
            phone: d.phone.to_owned(),
            memo: d.memo.to_owned(),
        }
    }
}

impl fmt::Debug for SubmitDetailView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitDetailView")
            .field("seq", &self.seq)
            .field("account_no", &Masked)
            .field("account_name", &Masked)
            .field("id_type", &self.id_type)
            .field("id_no", &Masked)
            .field("amount", &self.amount)
            .field("account_kind", &self.account_kind)
            .field("account_bank_code", &self.account_bank_code)
            .field("phone", &Masked)
            .field("memo", &self.memo)
            .finish()
    }
}

/// A personal field in a view's `Debug`.
struct Masked;

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Trailer (`T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trailer {
    /// Number of details.
    pub item_count: u64,
    /// Sum of the details' amounts.
    pub total_amount: u64,
}

/// Submit reply (`R1002`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitReply {
    /// Echo of the batch reference.
    pub batch_no: String,
    /// Return code.
    pub ret_code: String,
    /// Return message.
    pub ret_msg: String,
    /// The bank's id of the batch.
    pub bank_batch_id: String,
    /// `YYYYMMDD` or zeros.
    pub accept_date: String,
}

/// Result query (`Q2001`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Batch reference.
    pub batch_no: String,
    /// Our reference of this query.
    pub query_id: String,
    /// `YYYYMMDD`.
    pub query_date: String,
    /// `HHMMSS`.
    pub query_time: String,
}

/// Query reply header (`H2002`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryReplyHeader {
    /// Batch reference.
    pub batch_no: String,
    /// Query reference.
    pub query_id: String,
    /// Return code.
    pub ret_code: String,
    /// State code (processing / final), or blank.
    pub state: String,
    /// Credited details.
    pub success_count: u64,
    /// Credited amount.
    pub success_amount: u64,
    /// Failed details.
    pub fail_count: u64,
    /// Failed amount.
    pub fail_amount: u64,
    /// `YYYYMMDD`.
    pub reply_date: String,
    /// `HHMMSS`.
    pub reply_time: String,
}

/// Result detail (`D`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultDetail {
    /// Item sequence number.
    pub seq: u64,
    /// Account paid.
    pub account_no: String,
    /// Amount in fen.
    pub amount: u64,
    /// Result code.
    pub result: String,
    /// Failure code, blank on success.
    pub fail_code: String,
    /// Failure text.
    pub fail_reason: String,
    /// Bank holding the account.
    pub account_bank_code: String,
    /// `YYYYMMDD`.
    pub confirm_date: String,
    /// `HHMMSS`.
    pub confirm_time: String,
    /// Bank transaction reference.
    pub bank_txn_no: String,
}

/// A result detail read in place ([`Layouts::read_query_reply`]), as [`SubmitDetailView`] is: checked
/// exactly as a [`ResultDetail`] is, which is made from this (`From`). Its `Debug` masks the account.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ResultDetailView<'a> {
    /// Item sequence number.
    pub seq: u64,
    /// Account paid.
    pub account_no: &'a str,
    /// Amount in fen.
    pub amount: u64,
    /// Result code.
    pub result: &'a str,
    /// Failure code, blank on success.
    pub fail_code: &'a str,
    /// Failure text.
    pub fail_reason: &'a str,
    /// Bank holding the account.
    pub account_bank_code: &'a str,
    /// `YYYYMMDD`.
    pub confirm_date: &'a str,
    /// `HHMMSS`.
    pub confirm_time: &'a str,
    /// Bank transaction reference.
    pub bank_txn_no: &'a str,
}

impl From<ResultDetailView<'_>> for ResultDetail {
    fn from(d: ResultDetailView<'_>) -> Self {
        Self {
            seq: d.seq,
            account_no: d.account_no.to_owned(),
            amount: d.amount,
            result: d.result.to_owned(),
            fail_code: d.fail_code.to_owned(),
            fail_reason: d.fail_reason.to_owned(),
            account_bank_code: d.account_bank_code.to_owned(),
            confirm_date: d.confirm_date.to_owned(),
            confirm_time: d.confirm_time.to_owned(),
            bank_txn_no: d.bank_txn_no.to_owned(),
        }
    }
}

impl fmt::Debug for ResultDetailView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultDetailView")
            .field("seq", &self.seq)
            .field("account_no", &Masked)
            .field("amount", &self.amount)
            .field("result", &self.result)
            .field("fail_code", &self.fail_code)
            .field("fail_reason", &self.fail_reason)
            .field("account_bank_code", &self.account_bank_code)
            .field("confirm_date", &self.confirm_date)
            .field("confirm_time", &self.confirm_time)
            .field("bank_txn_no", &self.bank_txn_no)
            .finish()
    }
}

/// A query reply: the header, and when final the details and trailer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryReply {
    /// Header.
    pub header: QueryReplyHeader,
    /// Result details (empty unless final).
    pub details: Vec<ResultDetail>,
    /// Trailer (present when details follow).
    pub trailer: Option<Trailer>,
}

/// A whole submit message.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submit {
    /// Header.
    pub header: SubmitHeader,
    /// Details.
    pub details: Vec<SubmitDetail>,
    /// Trailer.
    pub trailer: Trailer,
}

/// A request as the bank reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Request {
    /// `1001`.
    Submit(Submit),
    /// `2001`.
    Query(Query),
    /// An echo with its `txn_code`.
    Echo(String),
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// Record-level problem.
    #[error("record {record}: {source}")]
    Record {
        /// 0-based record index.
        record: usize,
        /// The problem.
        source: DecodeError,
    },
    /// Records in the wrong order or of an unexpected kind.
    #[error("record {record}: {problem}")]
    Structure {
        /// 0-based record index.
        record: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// Splitting into records failed.
    #[error("{0}")]
    Body(DecodeError),
}

fn text(r: &Record<'_>, name: &str) -> String {
    r.get(name).unwrap_or_default().to_owned()
}

fn num(r: &Record<'_>, name: &str) -> u64 {
    r.num(name).unwrap_or_default()
}

/// For each field of `layout` (layout order), the position of its name in `names` (`usize::MAX` for
/// a field not asked for): resolved once per message, so that reading a record looks up no names.
fn slots(layout: &RecordLayout, names: &[&str]) -> Vec<usize> {
    layout
        .fields()
        .iter()
        .map(|f| {
            names
                .iter()
                .position(|n| *n == f.name)
                .unwrap_or(usize::MAX)
        })
        .collect()
}

/// A number as [`Record::num`] reads it (`v.parse().unwrap_or_default()`: 0 when it is none or does
/// not fit), checked digits taken without `parse`'s sign and radix handling.
#[inline]
fn number(v: &str) -> u64 {
    let mut n = 0u64;
    for b in v.bytes() {
        if !b.is_ascii_digit() {
            return v.parse().unwrap_or_default();
        }
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(m) => n = m,
            None => return 0,
        }
    }
    n
}

/// The field names of a submit detail, in [`SubmitDetailView`]'s order (its slots).
const SUBMIT_DETAIL: [&str; 10] = [
    "seq",
    "account_no",
    "account_name",
    "id_type",
    "id_no",
    "amount",
    "account_kind",
    "account_bank_code",
    "phone",
    "memo",
];

/// The field names of a result detail, in [`ResultDetailView`]'s order.
const RESULT_DETAIL: [&str; 10] = [
    "seq",
    "account_no",
    "amount",
    "result",
    "fail_code",
    "fail_reason",
    "account_bank_code",
    "confirm_date",
    "confirm_time",
    "bank_txn_no",
];

/// Reads `record` with `layout` (one parser: [`RecordLayout::read_into`]), the value of each field
/// named in `names` resolved into its slot (`""` for a name the layout lacks). `buf` is cleared and
/// holds the decoded GBK text the slots borrow.
#[inline]
fn read_slots<'a, const N: usize>(
    layout: &'a RecordLayout,
    slots: &[usize],
    record: &'a [u8],
    buf: &'a mut String,
) -> Result<[&'a str; N], DecodeError> {
    buf.clear();
    let mut pieces: [FieldText<'a>; N] = std::array::from_fn(|_| FieldText::Record(""));
    layout.read_into(record, buf, |f, v| {
        if let Some(piece) = slots.get(f).and_then(|&slot| pieces.get_mut(slot)) {
            *piece = v;
        }
    })?;
    let buf: &'a str = buf;
    Ok(pieces.map(|p| p.resolve(buf)))
}

fn at(record: usize) -> impl Fn(DecodeError) -> MessageError {
    move |source| MessageError::Record { record, source }
}

impl Layouts {
    fn push<'v>(
        out: &mut Vec<u8>,
        layout: &RecordLayout,
        f: impl FnMut(&str) -> Value<'v>,
    ) -> Result<(), EncodeError> {
        layout.encode(out, f)?;
        out.extend_from_slice(TERMINATOR);
        Ok(())
    }

    /// Appends a submit header record.
    pub fn encode_submit_header(
        &self,
        out: &mut Vec<u8>,
        h: &SubmitHeader,
    ) -> Result<(), EncodeError> {
        Self::push(out, &self.submit_header, |n| match n {
            "batch_no" => h.batch_no.as_str().into(),
            "payer_account" => h.payer_account.as_str().into(),
            "payer_name" => h.payer_name.as_str().into(),
            "subsidy_code" => h.subsidy_code.as_str().into(),
            "item_count" => h.item_count.into(),
            "total_amount" => h.total_amount.into(),
            "submit_date" => h.submit_date.as_str().into(),
            "submit_time" => h.submit_time.as_str().into(),
            "region_code" => h.region_code.as_str().into(),
            _ => Value::Blank,
        })
    }

    /// Appends a submit detail record.
    pub fn encode_submit_detail(
        &self,
        out: &mut Vec<u8>,
        d: &SubmitDetail,
    ) -> Result<(), EncodeError> {
        Self::push(out, &self.submit_detail, |n| match n {
            "seq" => d.seq.into(),
            "account_no" => d.account_no.as_str().into(),
            "account_name" => d.account_name.as_str().into(),
            "id_type" => d.id_type.as_str().into(),
            "id_no" => d.id_no.as_str().into(),
            "amount" => d.amount.into(),
            "account_kind" => d.account_kind.as_str().into(),
            "account_bank_code" => d.account_bank_code.as_str().into(),
            "phone" => d.phone.as_str().into(),
            "memo" => d.memo.as_str().into(),
            _ => Value::Blank,
        })
    }

    /// Appends a trailer record.
    pub fn encode_trailer(&self, out: &mut Vec<u8>, t: &Trailer) -> Result<(), EncodeError> {
        Self::push(out, &self.trailer, |n| match n {
            "item_count" => t.item_count.into(),
            "total_amount" => t.total_amount.into(),
            _ => Value::Blank,
        })
    }

    /// A whole submit body.
    pub fn encode_submit(&self, s: &Submit) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.submit_body_len(s.details.len()));
        self.encode_submit_header(&mut out, &s.header)?;
        for d in &s.details {
            self.encode_submit_detail(&mut out, d)?;
        }
        self.encode_trailer(&mut out, &s.trailer)?;
        Ok(out)
    }

    /// A submit reply body.
    pub fn encode_submit_reply(&self, r: &SubmitReply) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.unit());
        Self::push(&mut out, &self.submit_reply, |n| match n {
            "batch_no" => r.batch_no.as_str().into(),
            "ret_code" => r.ret_code.as_str().into(),
            "ret_msg" => r.ret_msg.as_str().into(),
            "bank_batch_id" => r.bank_batch_id.as_str().into(),
            "accept_date" => r.accept_date.as_str().into(),
            _ => Value::Blank,
        })?;
        Ok(out)
    }

    /// A query body.
    pub fn encode_query(&self, q: &Query) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.unit());
        Self::push(&mut out, &self.query, |n| match n {
            "batch_no" => q.batch_no.as_str().into(),
            "query_id" => q.query_id.as_str().into(),
            "query_date" => q.query_date.as_str().into(),
            "query_time" => q.query_time.as_str().into(),
            _ => Value::Blank,
        })?;
        Ok(out)
    }

    /// A query reply body.
    pub fn encode_query_reply(&self, r: &QueryReply) -> Result<Vec<u8>, EncodeError> {
        let h = &r.header;
        let mut out = Vec::with_capacity(self.unit() * (r.details.len() + 2));
        Self::push(&mut out, &self.query_reply_header, |n| match n {
            "batch_no" => h.batch_no.as_str().into(),
            "query_id" => h.query_id.as_str().into(),
            "ret_code" => h.ret_code.as_str().into(),
            "state" => h.state.as_str().into(),
            "success_count" => h.success_count.into(),
            "success_amount" => h.success_amount.into(),
            "fail_count" => h.fail_count.into(),
            "fail_amount" => h.fail_amount.into(),
            "reply_date" => h.reply_date.as_str().into(),
            "reply_time" => h.reply_time.as_str().into(),
            _ => Value::Blank,
        })?;
        for d in &r.details {
            Self::push(&mut out, &self.result_detail, |n| match n {
                "seq" => d.seq.into(),
                "account_no" => d.account_no.as_str().into(),
                "amount" => d.amount.into(),
                "result" => d.result.as_str().into(),
                "fail_code" => d.fail_code.as_str().into(),
                "fail_reason" => d.fail_reason.as_str().into(),
                "account_bank_code" => d.account_bank_code.as_str().into(),
                "confirm_date" => d.confirm_date.as_str().into(),
                "confirm_time" => d.confirm_time.as_str().into(),
                "bank_txn_no" => d.bank_txn_no.as_str().into(),
                _ => Value::Blank,
            })?;
        }
        if let Some(t) = &r.trailer {
            self.encode_trailer(&mut out, t)?;
        }
        Ok(out)
    }

    /// An echo body with `txn_code`.
    pub fn encode_echo(&self, txn_code: &str) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.unit());
        Self::push(&mut out, &self.echo, |n| {
            if n == "txn_code" {
                txn_code.into()
            } else {
                Value::Blank
            }
        })?;
        Ok(out)
    }

    fn split<'b>(&self, body: &'b [u8]) -> Result<Vec<&'b [u8]>, MessageError> {
        records(body, self.submit_header.record_len()).map_err(MessageError::Body)
    }

    fn decode_trailer(&self, i: usize, rec: &[u8]) -> Result<Trailer, MessageError> {
        let r = self.trailer.decode(rec).map_err(at(i))?;
        Ok(Trailer {
            item_count: num(&r, "item_count"),
            total_amount: num(&r, "total_amount"),
        })
    }

    /// Reads a request (what the bank receives). The first record's tag selects the message.
    pub fn decode_request(&self, body: &[u8]) -> Result<Request, MessageError> {
        let recs = self.split(body)?;
        let first = *recs.first().ok_or(MessageError::Structure {
            record: 0,
            problem: "empty body",
        })?;
        if self.submit_header.matches(first) {
            let mut details = Vec::with_capacity(recs.len().saturating_sub(2));
            let (header, trailer) =
                self.submit_records(&recs, |d| details.push(SubmitDetail::from(d)))?;
            return Ok(Request::Submit(Submit {
                header,
                details,
                trailer,
            }));
        }
        if recs.len() != 1 {
            return Err(MessageError::Structure {
                record: 1,
                problem: "unexpected record after a one-record request",
            });
        }
        if self.query.matches(first) {
            let q = self.query.decode(first).map_err(at(0))?;
            return Ok(Request::Query(Query {
                batch_no: text(&q, "batch_no"),
                query_id: text(&q, "query_id"),
                query_date: text(&q, "query_date"),
                query_time: text(&q, "query_time"),
            }));
        }
        if self.echo.matches(first) {
            let e = self.echo.decode(first).map_err(at(0))?;
            return Ok(Request::Echo(text(&e, "txn_code")));
        }
        Err(MessageError::Structure {
            record: 0,
            problem: "unknown record type or transaction code",
        })
    }

    /// Reads a submit in place: checks it exactly as [`Layouts::decode_request`] does (in the same
    /// order, with the same errors) and hands each detail to `each` as a view borrowed from `body`,
    /// instead of building a [`SubmitDetail`] of seven `String`s per detail. Returns the header and the
    /// trailer. On an error, the details before the bad record have been handed over already: a
    /// caller acts on what it was given only once this returns `Ok`.
    pub fn read_submit(
        &self,
        body: &[u8],
        each: impl FnMut(SubmitDetailView<'_>),
    ) -> Result<(SubmitHeader, Trailer), MessageError> {
        let recs = self.split(body)?;
        match recs.first() {
            Some(first) if self.submit_header.matches(first) => self.submit_records(&recs, each),
            _ => Err(MessageError::Structure {
                record: 0,
                problem: "not a submit",
            }),
        }
    }

    /// A submit's records (the first one a submit header), read.
    fn submit_records(
        &self,
        recs: &[&[u8]],
        mut each: impl FnMut(SubmitDetailView<'_>),
    ) -> Result<(SubmitHeader, Trailer), MessageError> {
        let Some(&first) = recs.first() else {
            return Err(MessageError::Structure {
                record: 0,
                problem: "empty body",
            });
        };
        let h = self.submit_header.decode(first).map_err(at(0))?;
        let header = SubmitHeader {
            batch_no: text(&h, "batch_no"),
            payer_account: text(&h, "payer_account"),
            payer_name: text(&h, "payer_name"),
            subsidy_code: text(&h, "subsidy_code"),
            item_count: num(&h, "item_count"),
            total_amount: num(&h, "total_amount"),
            submit_date: text(&h, "submit_date"),
            submit_time: text(&h, "submit_time"),
            region_code: text(&h, "region_code"),
        };
        let last = recs.len() - 1;
        if last < 2 {
            return Err(MessageError::Structure {
                record: last,
                problem: "a submit has at least one detail",
            });
        }
        if !self.trailer.matches(recs[last]) {
            return Err(MessageError::Structure {
                record: last,
                problem: "submit does not end with a trailer",
            });
        }
        let slots = slots(&self.submit_detail, &SUBMIT_DETAIL);
        let mut buf = String::new();
        for (i, rec) in recs.iter().enumerate().take(last).skip(1) {
            if !self.submit_detail.matches(rec) {
                return Err(MessageError::Structure {
                    record: i,
                    problem: "expected a submit detail",
                });
            }
            let [
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
            ] = read_slots(&self.submit_detail, &slots, rec, &mut buf).map_err(at(i))?;
            each(SubmitDetailView {
                seq: number(seq),
                account_no,
                account_name,
                id_type,
                id_no,
                amount: number(amount),
                account_kind,
                account_bank_code,
                phone,
                memo,
            });
        }
        let trailer = self.decode_trailer(last, recs[last])?;
        Ok((header, trailer))
    }

    /// Reads a submit reply.
    pub fn decode_submit_reply(&self, body: &[u8]) -> Result<SubmitReply, MessageError> {
        let recs = self.split(body)?;
        if recs.len() != 1 {
            return Err(MessageError::Structure {
                record: recs.len().min(1),
                problem: "a submit reply is one record",
            });
        }
        let r = self.submit_reply.decode(recs[0]).map_err(at(0))?;
        Ok(SubmitReply {
            batch_no: text(&r, "batch_no"),
            ret_code: text(&r, "ret_code"),
            ret_msg: text(&r, "ret_msg"),
            bank_batch_id: text(&r, "bank_batch_id"),
            accept_date: text(&r, "accept_date"),
        })
    }

    /// Reads an echo reply's `txn_code`.
    pub fn decode_echo(&self, body: &[u8]) -> Result<String, MessageError> {
        let recs = self.split(body)?;
        if recs.len() != 1 {
            return Err(MessageError::Structure {
                record: recs.len().min(1),
                problem: "an echo is one record",
            });
        }
        let e = self.echo.decode(recs[0]).map_err(at(0))?;
        Ok(text(&e, "txn_code"))
    }

    /// Reads a query reply. `final_state` is the profile's code of the final state: only then may result
    /// details and a trailer follow.
    pub fn decode_query_reply(
        &self,
        body: &[u8],
        final_state: &str,
    ) -> Result<QueryReply, MessageError> {
        let mut details = Vec::with_capacity((body.len() / self.unit()).saturating_sub(2));
        let (header, trailer) = self.read_query_reply(body, final_state, |d| {
            details.push(ResultDetail::from(d));
        })?;
        Ok(QueryReply {
            header,
            details,
            trailer,
        })
    }

    /// Reads a query reply in place: checks it exactly as [`Layouts::decode_query_reply`] does (in
    /// the same order, with the same errors) and hands each result detail to `each` as a view
    /// borrowed from `body`. Returns the header and the trailer (present when details follow). On an
    /// error, the details before the bad record have been handed over already: a caller acts on what
    /// it was given only once this returns `Ok`.
    pub fn read_query_reply(
        &self,
        body: &[u8],
        final_state: &str,
        mut each: impl FnMut(ResultDetailView<'_>),
    ) -> Result<(QueryReplyHeader, Option<Trailer>), MessageError> {
        let recs = self.split(body)?;
        let first = *recs.first().ok_or(MessageError::Structure {
            record: 0,
            problem: "empty body",
        })?;
        let h = self.query_reply_header.decode(first).map_err(at(0))?;
        let header = QueryReplyHeader {
            batch_no: text(&h, "batch_no"),
            query_id: text(&h, "query_id"),
            ret_code: text(&h, "ret_code"),
            state: text(&h, "state"),
            success_count: num(&h, "success_count"),
            success_amount: num(&h, "success_amount"),
            fail_count: num(&h, "fail_count"),
            fail_amount: num(&h, "fail_amount"),
            reply_date: text(&h, "reply_date"),
            reply_time: text(&h, "reply_time"),
        };
        if recs.len() == 1 {
            if header.state == final_state {
                return Err(MessageError::Structure {
                    record: 0,
                    problem: "a final reply without its results",
                });
            }
            return Ok((header, None));
        }
        if header.state != final_state {
            return Err(MessageError::Structure {
                record: 1,
                problem: "details after a reply that is not final",
            });
        }
        let last = recs.len() - 1;
        if !self.trailer.matches(recs[last]) {
            return Err(MessageError::Structure {
                record: last,
                problem: "results do not end with a trailer",
            });
        }
        let slots = slots(&self.result_detail, &RESULT_DETAIL);
        let mut buf = String::new();
        for (i, rec) in recs.iter().enumerate().take(last).skip(1) {
            if !self.result_detail.matches(rec) {
                return Err(MessageError::Structure {
                    record: i,
                    problem: "expected a result detail",
                });
            }
            let [
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
            ] = read_slots(&self.result_detail, &slots, rec, &mut buf).map_err(at(i))?;
            each(ResultDetailView {
                seq: number(seq),
                account_no,
                amount: number(amount),
                result,
                fail_code,
                fail_reason,
                account_bank_code,
                confirm_date,
                confirm_time,
                bank_txn_no,
            });
        }
        let trailer = self.decode_trailer(last, recs[last])?;
        Ok((header, Some(trailer)))
    }
}

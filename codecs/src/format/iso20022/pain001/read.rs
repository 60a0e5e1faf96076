//! The streaming reader of `pain.001.001.09` (bank B's side of the submit; see the parent module for
//! the layout).
//!
//! ```text
//! Document (pain.001.001.09 namespace, any prefix or the default namespace)
//! └─ CstmrCdtTrfInitn
//!    ├─ GrpHdr       MsgId CreDtTm NbOfTxs CtrlSum InitgPty/Nm               -> GroupHeader
//!    ├─ PmtInf       exactly one; PmtInfId (= MsgId) PmtMtd (TRF) BtchBookg? (true) NbOfTxs? CtrlSum?
//!    │  │            (= the header's) PmtTpInf/CtgyPurp/Prtry ReqdExctnDt/Dt Dbtr/Nm
//!    │  │            DbtrAcct/Id/Othr/Id DbtrAgt/FinInstnId/ClrSysMmbId/MmbId  -> PaymentInfo
//!    │  └─ CdtTrfTxInf x 1..n                                                 -> Transaction, one at a time
//!    │        PmtId/InstrId (digits) PmtId/EndToEndId  Amt/InstdAmt Ccy="CNY" (whole fen)
//!    │        CdtrAgt/FinInstnId/ClrSysMmbId/MmbId
//!    │        Cdtr/Nm  Cdtr/Id/PrvtId/Othr (SchmeNm/Prtry RESIDENT-ID) | Cdtr/Id/OrgId/Othr (USCC)
//!    │        Cdtr/CtctDtls/MobNb ("+86-" + phone)  CdtrAcct/Id/Othr/Id  CdtrAcct/Tp/Prtry
//!    │        RmtInf/Ustrd? (one line)
//!    └─ SplmtryData* skipped
//! ```
//! [`Pain001Reader`] works over a body already in memory without building a tree: creating it reads the
//! group header and the payment block up to the first `CdtTrfTxInf`; each `next_transaction` reads one
//! more, so a 10,000-transaction document is never held as 10,000 values unless the caller collects
//! them ([`read_document`] does). Elements are matched by namespace and local name, so any prefix works;
//! every element the gateway does not use (`UltmtDbtr`, `ChrgBr`, `Purp`, `RgltryRptg`, `SplmtryData`,
//! other namespaces...) is skipped wherever it appears.
//!
//! What it returns is what [`Pain001Writer`](super::Pain001Writer) takes: each value is checked with the
//! same `validate` methods the writer uses, so a document that reads can be written again. On top of
//! well-formedness it refuses, naming the element path and byte offset (never the content): a missing
//! or repeated element the gateway needs, an amount that is not whole fen (`1.005`) or not `CNY`, a
//! second `PmtInf`, counts or sums that disagree (group header, payment block, transactions), a
//! `PmtInfId` other than the `MsgId`, a method other than `TRF`, a scheme other than bank B's. It is
//! total: bounded (body size, nesting depth, text length), no panics; a body that is not UTF-8 or
//! declares another encoding is refused, and so is a DOCTYPE (no entity expansion).
use std::borrow::Cow;
use std::fmt;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{
    AccountKind, Document, GroupHeader, MAX_AMOUNT_FEN, PaymentInfo, RecipientKind, Transaction,
};
use crate::format::iso20022::amount::{AmountError, parse_with_max};
use crate::format::iso20022::text::InvalidValue;
use crate::format::iso20022::{MAX_BODY_BYTES, PAIN001_NS};

/// Deepest element nesting the reader follows (the schema needs about 12; `xs:any` content more).
pub const MAX_DEPTH: usize = 256;
/// Longest text of one element the reader keeps, in bytes (the longest kept type is `Max140Text`).
pub const MAX_TEXT_BYTES: usize = 4096;

/// Why a body is not a `pain.001.001.09` bank B can take. Never holds element content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The body is larger than bank B takes.
    #[error("body of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Body length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// The body is not UTF-8.
    #[error("body is not UTF-8 (invalid byte at {offset})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The XML declaration names an encoding other than UTF-8.
    #[error("the XML declaration at byte {offset} names an encoding other than UTF-8")]
    Encoding {
        /// Byte offset.
        offset: u64,
    },
    /// Not well-formed XML (or a DOCTYPE, or an undeclared prefix).
    #[error("malformed XML at byte {offset} in `{path}`: {problem}")]
    Malformed {
        /// Element path where it happened.
        path: String,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The root is not `Document/CstmrCdtTrfInitn`.
    #[error("root is `{found}`, expected `Document/CstmrCdtTrfInitn` (pain.001.001.09)")]
    WrongRoot {
        /// The elements found (local names, cut at 64 characters).
        found: String,
        /// Byte offset.
        offset: u64,
    },
    /// `Document` (or its child) is not in the pain.001.001.09 namespace.
    #[error("`{path}` is in namespace `{found}`, expected `{PAIN001_NS}`")]
    WrongNamespace {
        /// Element path.
        path: String,
        /// The namespace found (empty: none), cut at 128 characters.
        found: String,
        /// Byte offset.
        offset: u64,
    },
    /// An element the gateway's types need is missing.
    #[error("`{path}` is missing (before byte {offset})")]
    Missing {
        /// Path of the missing element.
        path: String,
        /// Byte offset where its parent ends.
        offset: u64,
    },
    /// An element that may appear once appears again.
    #[error("`{path}` appears more than once (byte {offset})")]
    Duplicate {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
    },
    /// A payment block element after the transactions began, or a group header after the payment
    /// block.
    #[error("`{path}` at byte {offset} is out of the schema's order")]
    OutOfOrder {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
    },
    /// A second `PmtInf`: bank B takes one payment block per document.
    #[error("`{path}` at byte {offset}: more than one PmtInf (bank B takes exactly one)")]
    MoreThanOnePaymentInfo {
        /// Element path of the second block.
        path: String,
        /// Byte offset.
        offset: u64,
    },
    /// An element's text is not usable.
    #[error("`{path}` at byte {offset}: {problem}")]
    Value {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// An amount that is not a plain decimal of whole fen (`1.005`, `-1`, `1e3`) or is too large.
    #[error("`{path}` at byte {offset}: {source}")]
    Amount {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
        /// What is wrong ([`AmountError::TooManyDecimals`]: not whole fen).
        source: AmountError,
    },
    /// `InstdAmt` without `Ccy="CNY"`: bank B pays in yuan only.
    #[error("`{path}` at byte {offset}: {problem}")]
    Currency {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
        /// What is wrong (no `Ccy`, or not `CNY`).
        problem: &'static str,
    },
    /// A value the gateway's types (the writer's checks) refuse: too long, bad characters, not 12
    /// digits, not a date...
    #[error("`{path}` (before byte {offset}): {source}")]
    Invalid {
        /// Path of the element holding it (the header, the payment block or the transaction).
        path: String,
        /// Byte offset where that element ends.
        offset: u64,
        /// What is wrong, with the field and its element.
        source: InvalidValue,
    },
    /// The number of transactions disagrees with a declared `NbOfTxs`.
    #[error("`{path}`: {declared} transactions declared, {found} found")]
    CountMismatch {
        /// Path of the element that declares or holds them.
        path: String,
        /// `GrpHdr/NbOfTxs`.
        declared: u64,
        /// Counted (`PmtInf/NbOfTxs`, or the transactions read: the reader stops at the first one
        /// over the declared number).
        found: u64,
    },
    /// The amounts disagree with a declared `CtrlSum`.
    #[error("`{path}`: control sum of {declared_fen} fen declared, {found_fen} fen found")]
    SumMismatch {
        /// Path of the element that declares or holds them.
        path: String,
        /// `GrpHdr/CtrlSum`, in fen.
        declared_fen: u64,
        /// `PmtInf/CtrlSum`, or the sum of the amounts read (saturating), in fen.
        found_fen: u64,
    },
    /// Elements nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {limit} in `{path}` at byte {offset}")]
    TooDeep {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// Something other than comments or whitespace after the root element.
    #[error("content after the root element at byte {offset}")]
    Trailing {
        /// Byte offset.
        offset: u64,
    },
    /// The body ends inside an element.
    #[error("body ends inside `{path}` (byte {offset})")]
    Truncated {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
    },
}

/// The element names the reader knows (in the pain.001.001.09 namespace); everything else is skipped.
macro_rules! elements {
    ($($name:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum El {
            $($name,)*
            /// In the pain.001 namespace, not used.
            Other,
            /// In another namespace, or none.
            Foreign,
        }

        impl El {
            fn from_local(name: &str) -> Self {
                $(if name == stringify!($name) {
                    return Self::$name;
                })*
                Self::Other
            }

            fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                    Self::Other | Self::Foreign => "*",
                }
            }
        }
    };
}

elements! {
    Document, CstmrCdtTrfInitn, GrpHdr, MsgId, CreDtTm, NbOfTxs, CtrlSum, InitgPty, Nm,
    PmtInf, PmtInfId, PmtMtd, BtchBookg, PmtTpInf, CtgyPurp, Prtry, ReqdExctnDt, Dt, Dbtr, DbtrAcct,
    Id, Othr, DbtrAgt, FinInstnId, ClrSysMmbId, MmbId,
    CdtTrfTxInf, PmtId, InstrId, EndToEndId, Amt, InstdAmt, CdtrAgt, Cdtr, PrvtId, OrgId, SchmeNm,
    CtctDtls, MobNb, CdtrAcct, Tp, RmtInf, Ustrd,
}

/// `PmtInf` children that come before the transactions in the schema's sequence.
const PAYMENT_HEADER: &[El] = &[
    El::PmtInfId,
    El::PmtMtd,
    El::BtchBookg,
    El::NbOfTxs,
    El::CtrlSum,
    El::PmtTpInf,
    El::ReqdExctnDt,
    El::Dbtr,
    El::DbtrAcct,
    El::DbtrAgt,
];

const PHONE_PREFIX: &str = "+86-";

/// One step of the document, namespaces resolved, references expanded.
enum Ev<'a> {
    Start(El),
    End,
    Text(Cow<'a, str>),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside `PmtInf`, before a `CdtTrfTxInf` or its end.
    InPmtInf,
    /// Inside `CstmrCdtTrfInitn`, after the payment block.
    InInitiation,
    /// The document was read to its end (or failed).
    Done,
}

/// Streaming reader of one `pain.001.001.09` body.
///
/// ```text
/// let mut r = Pain001Reader::new(body)?;     // reads GrpHdr + PmtInf up to the first CdtTrfTxInf
/// r.header(), r.payment()                    // -> &GroupHeader, &PaymentInfo
/// while let Some(tx) = r.next_transaction()? { ... }   // one CdtTrfTxInf at a time
/// ```
/// `next_transaction` returns `Ok(None)` only once the whole body was read and found complete (count
/// and sum as declared, root closed, nothing but comments and whitespace after it). After an error it
/// returns that error again. It is also an `Iterator` of `Result<Transaction, ReadError>` (fused after
/// the first error).
pub struct Pain001Reader<'a> {
    xml: NsReader<&'a [u8]>,
    /// Bytes before what `xml` reads (a UTF-8 BOM), so offsets count from the start of the body.
    base: u64,
    header: GroupHeader,
    payment: PaymentInfo,
    state: State,
    /// The start tag of the first `CdtTrfTxInf` was read by `new`.
    pending_tx: bool,
    depth: usize,
    path: Vec<El>,
    tx_index: u64,
    sum_fen: u128,
    /// `Ccy` of the last `InstdAmt` start tag.
    ccy: Option<String>,
    seen_event: bool,
    failed: Option<ReadError>,
    reported: bool,
}

impl fmt::Debug for Pain001Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pain001Reader")
            .field("msg_id", &self.header.msg_id)
            .field("state", &self.state)
            .field("tx_index", &self.tx_index)
            .finish_non_exhaustive()
    }
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A fixed description of a quick-xml error (its own message may quote document text).
fn xml_problem(e: &quick_xml::Error) -> &'static str {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    match e {
        quick_xml::Error::Syntax(s) => match s {
            SyntaxError::InvalidBangMarkup => "unknown `<!` markup",
            SyntaxError::UnclosedPI | SyntaxError::UnclosedXmlDecl => {
                "unclosed processing instruction"
            }
            SyntaxError::UnclosedComment => "unclosed comment",
            SyntaxError::UnclosedDoctype => "unclosed DOCTYPE",
            SyntaxError::UnclosedCData => "unclosed CDATA section",
            SyntaxError::UnclosedTag => "unclosed tag",
            _ => "syntax error",
        },
        quick_xml::Error::IllFormed(i) => match i {
            IllFormedError::MismatchedEndTag { .. } => "end tag does not match its start tag",
            IllFormedError::UnmatchedEndTag(_) => "end tag without a start tag",
            IllFormedError::MissingEndTag(_) => "missing end tag",
            IllFormedError::UnclosedReference => "`&` without `;`",
            IllFormedError::DoubleHyphenInComment => "`--` in a comment",
            _ => "ill-formed XML declaration or markup",
        },
        quick_xml::Error::InvalidAttr(_) => "malformed or duplicate attribute",
        quick_xml::Error::Escape(_) => "bad character or entity reference",
        quick_xml::Error::Namespace(_) => "bad namespace declaration",
        quick_xml::Error::Encoding(_) => "bad encoding",
        _ => "unreadable XML",
    }
}

/// `GrpHdr` as read, before the checks.
#[derive(Default)]
struct RawHeader {
    msg_id: Option<String>,
    created: Option<String>,
    nb_of_txs: Option<u64>,
    ctrl_sum_fen: Option<u64>,
    initiating_party: Option<String>,
}

/// `PmtInf` up to its transactions, as read, before the checks.
#[derive(Default)]
struct RawPayment {
    pmt_inf_id: Option<String>,
    method: Option<String>,
    batch_booking: Option<String>,
    nb_of_txs: Option<u64>,
    ctrl_sum_fen: Option<u64>,
    subsidy_code: Option<String>,
    execution_date: Option<String>,
    payer_name: Option<String>,
    payer_account: Option<String>,
    payer_bank_code: Option<String>,
}

/// One `Othr` of `Cdtr/Id/PrvtId` or `Cdtr/Id/OrgId`.
struct OtherId {
    id: Option<String>,
    scheme: Option<String>,
}

impl<'a> Pain001Reader<'a> {
    /// Checks the body (size, UTF-8, root, namespace) and reads the group header and the payment
    /// block up to its first transaction.
    pub fn new(body: &'a [u8]) -> Result<Self, ReadError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(ReadError::TooLarge {
                len: body.len(),
                max: MAX_BODY_BYTES,
            });
        }
        let text = std::str::from_utf8(body).map_err(|e| ReadError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        let (text, base) = match text.strip_prefix('\u{FEFF}') {
            Some(rest) => (rest, 3),
            None => (text, 0),
        };
        let mut xml = NsReader::from_str(text);
        let config = xml.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.check_comments = true;
        config.trim_text(false);
        let mut r = Self {
            xml,
            base,
            header: GroupHeader {
                msg_id: String::new(),
                created: String::new(),
                nb_of_txs: 0,
                ctrl_sum_fen: 0,
                initiating_party: String::new(),
            },
            payment: PaymentInfo {
                subsidy_code: String::new(),
                execution_date: String::new(),
                payer_name: String::new(),
                payer_account: String::new(),
                payer_bank_code: String::new(),
            },
            state: State::Done,
            pending_tx: false,
            depth: 0,
            path: Vec::new(),
            tx_index: 0,
            sum_fen: 0,
            ccy: None,
            seen_event: false,
            failed: None,
            reported: false,
        };
        r.read_prelude()?;
        Ok(r)
    }

    /// `GrpHdr`.
    pub fn header(&self) -> &GroupHeader {
        &self.header
    }

    /// `PmtInf` up to its transactions.
    pub fn payment(&self) -> &PaymentInfo {
        &self.payment
    }

    /// Transactions handed out so far.
    pub fn transactions_read(&self) -> u64 {
        self.tx_index
    }

    /// The next `CdtTrfTxInf`, `Ok(None)` at the (verified) end of the document.
    pub fn next_transaction(&mut self) -> Result<Option<Transaction>, ReadError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(t) => Ok(t),
            Err(e) => {
                self.state = State::Done;
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    // --- events --------------------------------------------------------------------------------

    fn offset(&self) -> u64 {
        self.base + self.xml.buffer_position()
    }

    fn path_string(&self) -> String {
        if self.path.is_empty() {
            return "(top level)".to_owned();
        }
        let mut s = String::new();
        for (i, el) in self.path.iter().enumerate() {
            if i > 0 {
                s.push('/');
            }
            s.push_str(el.name());
            if *el == El::CdtTrfTxInf && self.tx_index > 0 {
                s.push_str(&format!("[{}]", self.tx_index));
            }
        }
        s
    }

    fn path_with(&self, child: &str) -> String {
        if self.path.is_empty() {
            return child.to_owned();
        }
        let mut s = self.path_string();
        s.push('/');
        s.push_str(child);
        s
    }

    fn malformed(&self, problem: &'static str) -> ReadError {
        ReadError::Malformed {
            path: self.path_string(),
            offset: self.offset(),
            problem,
        }
    }

    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            path: self.path_string(),
            offset: self.offset(),
        }
    }

    /// A problem with the element at the end of `path`.
    fn value_error(&self, problem: &'static str) -> ReadError {
        ReadError::Value {
            path: self.path_string(),
            offset: self.offset(),
            problem,
        }
    }

    /// A problem with the child `el` of the element at the end of `path`.
    fn child_error(&self, el: El, problem: &'static str) -> ReadError {
        ReadError::Value {
            path: self.path_with(el.name()),
            offset: self.offset(),
            problem,
        }
    }

    fn missing(&self, child: &str) -> ReadError {
        ReadError::Missing {
            path: self.path_with(child),
            offset: self.offset(),
        }
    }

    fn duplicate(&self, child: El) -> ReadError {
        ReadError::Duplicate {
            path: self.path_with(child.name()),
            offset: self.offset(),
        }
    }

    fn invalid(&self, source: InvalidValue) -> ReadError {
        ReadError::Invalid {
            path: self.path_string(),
            offset: self.offset(),
            source,
        }
    }

    /// The next event. For a start tag at the top two levels, `root` receives its local name and
    /// namespace (for the root errors).
    fn next_ev(&mut self, root: Option<&mut (String, String)>) -> Result<Ev<'a>, ReadError> {
        loop {
            let event = self.xml.read_resolved_event();
            let (resolved, event) = match event {
                Ok(x) => x,
                Err(e) => {
                    let problem = xml_problem(&e);
                    return Err(ReadError::Malformed {
                        path: self.path_string(),
                        offset: self.base + self.xml.error_position(),
                        problem,
                    });
                }
            };
            let first = !self.seen_event;
            self.seen_event = true;
            match event {
                Event::Start(e) => {
                    let ours = match &resolved {
                        ResolveResult::Bound(ns) => ns.0 == PAIN001_NS,
                        ResolveResult::Unbound => false,
                        ResolveResult::Unknown(_) => {
                            return Err(self.malformed("undeclared namespace prefix"));
                        }
                    };
                    if let Some(root) = root {
                        let ns = match &resolved {
                            ResolveResult::Bound(ns) => cut(ns.0, 128),
                            _ => String::new(),
                        };
                        *root = (cut(e.local_name().as_ref(), 64), ns);
                    }
                    let el = if ours {
                        El::from_local(e.local_name().as_ref())
                    } else {
                        El::Foreign
                    };
                    let mut ccy = None;
                    for a in e.attributes() {
                        let Ok(a) = a else {
                            return Err(ReadError::Malformed {
                                path: self.path_with(el.name()),
                                offset: self.offset(),
                                problem: "malformed or duplicate attribute",
                            });
                        };
                        // `Ccy` is an unqualified attribute of `ActiveOrHistoricCurrencyAndAmount`.
                        if el == El::InstdAmt && a.key.as_ref() == "Ccy" {
                            match a.normalized_value(XmlVersion::Implicit1_0) {
                                Ok(v) => ccy = Some(v.into_owned()),
                                Err(_) => {
                                    return Err(ReadError::Malformed {
                                        path: self.path_with(el.name()),
                                        offset: self.offset(),
                                        problem: "bad character or entity reference",
                                    });
                                }
                            }
                        }
                    }
                    if el == El::InstdAmt {
                        self.ccy = ccy;
                    }
                    self.depth += 1;
                    if self.depth > MAX_DEPTH {
                        return Err(ReadError::TooDeep {
                            path: self.path_string(),
                            offset: self.offset(),
                            limit: MAX_DEPTH,
                        });
                    }
                    return Ok(Ev::Start(el));
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Ev::End);
                }
                Event::Empty(_) => {
                    // Never produced with `expand_empty_elements`.
                    return Err(self.malformed("unexpected empty element"));
                }
                Event::Text(t) => {
                    if self.depth == 0 {
                        if t.chars().all(is_xml_space) {
                            continue;
                        }
                        return Err(self.malformed("text outside the root element"));
                    }
                    return Ok(Ev::Text(t.xml10_content()));
                }
                Event::CData(c) => {
                    if self.depth == 0 {
                        return Err(self.malformed("CDATA outside the root element"));
                    }
                    return Ok(Ev::Text(c.xml10_content()));
                }
                Event::GeneralRef(r) => {
                    if self.depth == 0 {
                        return Err(self.malformed("reference outside the root element"));
                    }
                    let c = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => match r.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            _ => return Err(self.malformed("undeclared entity")),
                        },
                        Err(_) => return Err(self.malformed("bad character reference")),
                    };
                    return Ok(Ev::Text(Cow::Owned(c.to_string())));
                }
                Event::Decl(d) => {
                    if !first {
                        return Err(self.malformed("XML declaration not at the start"));
                    }
                    match d.encoding() {
                        None => {}
                        Some(Ok(enc))
                            if enc.eq_ignore_ascii_case("utf-8")
                                || enc.eq_ignore_ascii_case("utf8") => {}
                        Some(_) => {
                            return Err(ReadError::Encoding {
                                offset: self.offset(),
                            });
                        }
                    }
                }
                Event::DocType(_) => return Err(self.malformed("DOCTYPE is not allowed")),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Ok(Ev::Eof),
            }
        }
    }

    fn ev(&mut self) -> Result<Ev<'a>, ReadError> {
        self.next_ev(None)
    }

    /// After a start tag: consumes everything up to its end tag.
    fn skip(&mut self) -> Result<(), ReadError> {
        let target = self.depth.saturating_sub(1);
        loop {
            match self.ev()? {
                Ev::End if self.depth == target => return Ok(()),
                Ev::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    /// After the start tag of a text element (already on `path`): its text.
    fn text(&mut self) -> Result<String, ReadError> {
        let mut s = String::new();
        loop {
            match self.ev()? {
                Ev::Text(t) => {
                    if s.len() + t.len() > MAX_TEXT_BYTES {
                        return Err(self.value_error("text longer than 4096 bytes"));
                    }
                    s.push_str(&t);
                }
                Ev::Start(_) => return Err(self.value_error("element inside a text element")),
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        if s.is_empty() {
            return Err(self.value_error("empty"));
        }
        if s.chars()
            .any(|c| (c.is_control() && !is_xml_space(c)) || c == '\u{FFFE}' || c == '\u{FFFF}')
        {
            return Err(self.value_error("character not allowed in XML"));
        }
        Ok(s)
    }

    /// Reads the text element `el` (whose start tag was just read) into an empty `slot`.
    fn text_once(&mut self, el: El, slot: &mut Option<String>) -> Result<(), ReadError> {
        if slot.is_some() {
            return Err(self.duplicate(el));
        }
        self.path.push(el);
        *slot = Some(self.text()?);
        self.path.pop();
        Ok(())
    }

    /// Reads the text element `el` and turns it with `parse` (errors name `el`).
    fn parsed_once<T>(
        &mut self,
        el: El,
        slot: &mut Option<T>,
        parse: impl FnOnce(&Self, &str) -> Result<T, ReadError>,
    ) -> Result<(), ReadError> {
        if slot.is_some() {
            return Err(self.duplicate(el));
        }
        self.path.push(el);
        let text = self.text()?;
        let v = parse(self, &text)?;
        self.path.pop();
        *slot = Some(v);
        Ok(())
    }

    /// Inside an element: follows `chain` (each once at most) down to a text element, skipping the rest.
    fn read_chain(&mut self, chain: &[El], slot: &mut Option<String>) -> Result<(), ReadError> {
        let Some((&first, rest)) = chain.split_first() else {
            return self.skip();
        };
        let mut seen = false;
        loop {
            match self.ev()? {
                Ev::Start(el) if el == first => {
                    if seen {
                        return Err(self.duplicate(el));
                    }
                    seen = true;
                    if rest.is_empty() {
                        self.text_once(el, slot)?;
                    } else {
                        self.path.push(el);
                        self.read_chain(rest, slot)?;
                        self.path.pop();
                    }
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => return Ok(()),
                Ev::Eof => return Err(self.truncated()),
            }
        }
    }

    /// Reads the element `el` (just started) with `chain` below it, once.
    fn chain_once(
        &mut self,
        el: El,
        seen: &mut bool,
        chain: &[El],
        slot: &mut Option<String>,
    ) -> Result<(), ReadError> {
        if *seen {
            return Err(self.duplicate(el));
        }
        *seen = true;
        self.path.push(el);
        self.read_chain(chain, slot)?;
        self.path.pop();
        Ok(())
    }

    // --- values --------------------------------------------------------------------------------

    /// `Max15NumericText`: 1 to 15 digits.
    fn count(&self, text: &str) -> Result<u64, ReadError> {
        if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.value_error("not 1 to 15 digits"));
        }
        text.parse()
            .map_err(|_| self.value_error("not 1 to 15 digits"))
    }

    /// A decimal amount in yuan (whitespace collapsed, as `xs:decimal` does) into whole fen.
    fn fen(&self, text: &str) -> Result<u64, ReadError> {
        parse_with_max(text.trim_matches(is_xml_space), MAX_AMOUNT_FEN).map_err(|source| {
            ReadError::Amount {
                path: self.path_string(),
                offset: self.offset(),
                source,
            }
        })
    }

    /// The item's seq: digits only, as the gateway writes it.
    fn seq(&self, text: &str) -> Result<u64, ReadError> {
        const PROBLEM: &str = "not a whole number of digits up to 18446744073709551615 (the seq)";
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.value_error(PROBLEM));
        }
        text.parse().map_err(|_| self.value_error(PROBLEM))
    }

    // --- structure -----------------------------------------------------------------------------

    fn read_prelude(&mut self) -> Result<(), ReadError> {
        // Root element.
        let mut root = (String::new(), String::new());
        loop {
            match self.next_ev(Some(&mut root))? {
                Ev::Start(El::Document) => break,
                Ev::Start(el) => {
                    let offset = self.offset();
                    if root.0 == "Document" && el == El::Foreign {
                        return Err(ReadError::WrongNamespace {
                            path: "Document".into(),
                            found: root.1,
                            offset,
                        });
                    }
                    return Err(ReadError::WrongRoot {
                        found: root.0,
                        offset,
                    });
                }
                Ev::Text(_) | Ev::End => {}
                Ev::Eof => {
                    return Err(ReadError::Missing {
                        path: "Document".into(),
                        offset: self.offset(),
                    });
                }
            }
        }
        self.path.push(El::Document);
        // Its one child.
        loop {
            let mut child = (String::new(), String::new());
            match self.next_ev(Some(&mut child))? {
                Ev::Start(El::CstmrCdtTrfInitn) => break,
                Ev::Start(El::Foreign) if child.0 == "CstmrCdtTrfInitn" => {
                    return Err(ReadError::WrongNamespace {
                        path: "Document/CstmrCdtTrfInitn".into(),
                        found: child.1,
                        offset: self.offset(),
                    });
                }
                Ev::Start(_) => {
                    return Err(ReadError::WrongRoot {
                        found: format!("Document/{}", child.0),
                        offset: self.offset(),
                    });
                }
                Ev::Text(_) => {}
                Ev::End => return Err(self.missing("CstmrCdtTrfInitn")),
                Ev::Eof => return Err(self.truncated()),
            }
        }
        self.path.push(El::CstmrCdtTrfInitn);
        let mut header: Option<GroupHeader> = None;
        loop {
            match self.ev()? {
                Ev::Start(El::GrpHdr) => {
                    if header.is_some() {
                        return Err(self.duplicate(El::GrpHdr));
                    }
                    self.path.push(El::GrpHdr);
                    header = Some(self.read_grp_hdr()?);
                    self.path.pop();
                }
                Ev::Start(El::PmtInf) => break,
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => {
                    return Err(self.missing(if header.is_none() { "GrpHdr" } else { "PmtInf" }));
                }
                Ev::Eof => return Err(self.truncated()),
            }
        }
        // The schema puts GrpHdr first.
        let Some(header) = header else {
            return Err(self.missing("GrpHdr"));
        };
        self.header = header;
        self.path.push(El::PmtInf);
        self.payment = self.read_payment_header()?;
        self.pending_tx = true;
        self.state = State::InPmtInf;
        Ok(())
    }

    /// After `<GrpHdr>` (on `path`).
    fn read_grp_hdr(&mut self) -> Result<GroupHeader, ReadError> {
        let mut h = RawHeader::default();
        let mut seen_party = false;
        loop {
            match self.ev()? {
                Ev::Start(El::MsgId) => self.text_once(El::MsgId, &mut h.msg_id)?,
                Ev::Start(El::CreDtTm) => {
                    // `xs:dateTime` collapses whitespace; the form itself is checked by `validate`.
                    self.parsed_once(El::CreDtTm, &mut h.created, |_, t| {
                        Ok(t.trim_matches(is_xml_space).to_owned())
                    })?
                }
                Ev::Start(El::NbOfTxs) => {
                    self.parsed_once(El::NbOfTxs, &mut h.nb_of_txs, Self::count)?
                }
                Ev::Start(El::CtrlSum) => {
                    self.parsed_once(El::CtrlSum, &mut h.ctrl_sum_fen, Self::fen)?
                }
                Ev::Start(El::InitgPty) => self.chain_once(
                    El::InitgPty,
                    &mut seen_party,
                    &[El::Nm],
                    &mut h.initiating_party,
                )?,
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        let header = GroupHeader {
            msg_id: h.msg_id.ok_or_else(|| self.missing("MsgId"))?,
            created: h.created.ok_or_else(|| self.missing("CreDtTm"))?,
            nb_of_txs: h.nb_of_txs.ok_or_else(|| self.missing("NbOfTxs"))?,
            ctrl_sum_fen: h.ctrl_sum_fen.ok_or_else(|| self.missing("CtrlSum"))?,
            initiating_party: h
                .initiating_party
                .ok_or_else(|| self.missing("InitgPty/Nm"))?,
        };
        header.validate().map_err(|e| self.invalid(e))?;
        Ok(header)
    }

    /// After `<PmtInf>` (on `path`): its children up to and including the first `<CdtTrfTxInf>`.
    fn read_payment_header(&mut self) -> Result<PaymentInfo, ReadError> {
        let mut p = RawPayment::default();
        let mut seen = [false; 5];
        loop {
            match self.ev()? {
                Ev::Start(El::PmtInfId) => self.text_once(El::PmtInfId, &mut p.pmt_inf_id)?,
                Ev::Start(El::PmtMtd) => self.text_once(El::PmtMtd, &mut p.method)?,
                Ev::Start(El::BtchBookg) => {
                    self.parsed_once(El::BtchBookg, &mut p.batch_booking, |_, t| {
                        Ok(t.trim_matches(is_xml_space).to_owned())
                    })?
                }
                Ev::Start(El::NbOfTxs) => {
                    self.parsed_once(El::NbOfTxs, &mut p.nb_of_txs, Self::count)?
                }
                Ev::Start(El::CtrlSum) => {
                    self.parsed_once(El::CtrlSum, &mut p.ctrl_sum_fen, Self::fen)?
                }
                Ev::Start(El::PmtTpInf) => self.chain_once(
                    El::PmtTpInf,
                    &mut seen[0],
                    &[El::CtgyPurp, El::Prtry],
                    &mut p.subsidy_code,
                )?,
                Ev::Start(El::ReqdExctnDt) => self.chain_once(
                    El::ReqdExctnDt,
                    &mut seen[1],
                    &[El::Dt],
                    &mut p.execution_date,
                )?,
                Ev::Start(El::Dbtr) => {
                    self.chain_once(El::Dbtr, &mut seen[2], &[El::Nm], &mut p.payer_name)?
                }
                Ev::Start(El::DbtrAcct) => self.chain_once(
                    El::DbtrAcct,
                    &mut seen[3],
                    &[El::Id, El::Othr, El::Id],
                    &mut p.payer_account,
                )?,
                Ev::Start(El::DbtrAgt) => self.chain_once(
                    El::DbtrAgt,
                    &mut seen[4],
                    &[El::FinInstnId, El::ClrSysMmbId, El::MmbId],
                    &mut p.payer_bank_code,
                )?,
                Ev::Start(El::CdtTrfTxInf) => break,
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => return Err(self.missing("CdtTrfTxInf")),
                Ev::Eof => return Err(self.truncated()),
            }
        }
        let pmt_inf_id = p.pmt_inf_id.ok_or_else(|| self.missing("PmtInfId"))?;
        if pmt_inf_id != self.header.msg_id {
            return Err(
                self.child_error(El::PmtInfId, "differs from GrpHdr/MsgId (bank B: the same)")
            );
        }
        if p.method.ok_or_else(|| self.missing("PmtMtd"))? != "TRF" {
            return Err(
                self.child_error(El::PmtMtd, "not TRF (bank B takes credit transfers only)")
            );
        }
        if let Some(b) = p.batch_booking
            && b != "true"
            && b != "1"
        {
            return Err(self.child_error(El::BtchBookg, "not true (bank B books the batch as one)"));
        }
        if let Some(n) = p.nb_of_txs
            && n != self.header.nb_of_txs
        {
            return Err(ReadError::CountMismatch {
                path: self.path_with("NbOfTxs"),
                declared: self.header.nb_of_txs,
                found: n,
            });
        }
        if let Some(s) = p.ctrl_sum_fen
            && s != self.header.ctrl_sum_fen
        {
            return Err(ReadError::SumMismatch {
                path: self.path_with("CtrlSum"),
                declared_fen: self.header.ctrl_sum_fen,
                found_fen: s,
            });
        }
        let payment = PaymentInfo {
            subsidy_code: p
                .subsidy_code
                .ok_or_else(|| self.missing("PmtTpInf/CtgyPurp/Prtry"))?,
            execution_date: p
                .execution_date
                .map(|d| d.trim_matches(is_xml_space).to_owned())
                .ok_or_else(|| self.missing("ReqdExctnDt/Dt"))?,
            payer_name: p.payer_name.ok_or_else(|| self.missing("Dbtr/Nm"))?,
            payer_account: p
                .payer_account
                .ok_or_else(|| self.missing("DbtrAcct/Id/Othr/Id"))?,
            payer_bank_code: p
                .payer_bank_code
                .ok_or_else(|| self.missing("DbtrAgt/FinInstnId/ClrSysMmbId/MmbId"))?,
        };
        payment.validate().map_err(|e| self.invalid(e))?;
        Ok(payment)
    }

    /// After `<CdtTrfTxInf>` (on `path`).
    fn read_tx(&mut self) -> Result<Transaction, ReadError> {
        let (mut seq, mut e2e, mut amount) = (None, None, None);
        let (mut bank, mut name, mut id, mut phone) = (None, None, None, None);
        let (mut account, mut kind, mut memo) = (None, None, None);
        let mut seen = [false; 6];
        loop {
            match self.ev()? {
                Ev::Start(El::PmtId) => {
                    if std::mem::replace(&mut seen[0], true) {
                        return Err(self.duplicate(El::PmtId));
                    }
                    self.path.push(El::PmtId);
                    loop {
                        match self.ev()? {
                            Ev::Start(El::InstrId) => {
                                self.parsed_once(El::InstrId, &mut seq, Self::seq)?
                            }
                            Ev::Start(El::EndToEndId) => {
                                self.text_once(El::EndToEndId, &mut e2e)?
                            }
                            Ev::Start(_) => self.skip()?,
                            Ev::Text(_) => {}
                            Ev::End => break,
                            Ev::Eof => return Err(self.truncated()),
                        }
                    }
                    if seq.is_none() {
                        return Err(self.missing("InstrId"));
                    }
                    if e2e.is_none() {
                        return Err(self.missing("EndToEndId"));
                    }
                    self.path.pop();
                }
                Ev::Start(El::Amt) => {
                    if std::mem::replace(&mut seen[1], true) {
                        return Err(self.duplicate(El::Amt));
                    }
                    self.path.push(El::Amt);
                    loop {
                        match self.ev()? {
                            Ev::Start(El::InstdAmt) => {
                                let ccy = self.ccy.take();
                                self.parsed_once(El::InstdAmt, &mut amount, |r, t| {
                                    let fen = r.fen(t)?;
                                    match ccy.as_deref() {
                                        Some("CNY") => Ok(fen),
                                        Some(_) => Err(ReadError::Currency {
                                            path: r.path_string(),
                                            offset: r.offset(),
                                            problem: "Ccy is not CNY (bank B pays in yuan only)",
                                        }),
                                        None => Err(ReadError::Currency {
                                            path: r.path_string(),
                                            offset: r.offset(),
                                            problem: "no Ccy attribute",
                                        }),
                                    }
                                })?
                            }
                            Ev::Start(_) => self.skip()?,
                            Ev::Text(_) => {}
                            Ev::End => break,
                            Ev::Eof => return Err(self.truncated()),
                        }
                    }
                    if amount.is_none() {
                        return Err(self.missing("InstdAmt"));
                    }
                    self.path.pop();
                }
                Ev::Start(El::CdtrAgt) => self.chain_once(
                    El::CdtrAgt,
                    &mut seen[2],
                    &[El::FinInstnId, El::ClrSysMmbId, El::MmbId],
                    &mut bank,
                )?,
                Ev::Start(El::Cdtr) => {
                    if std::mem::replace(&mut seen[3], true) {
                        return Err(self.duplicate(El::Cdtr));
                    }
                    self.path.push(El::Cdtr);
                    let mut seen_ctct = false;
                    loop {
                        match self.ev()? {
                            Ev::Start(El::Nm) => self.text_once(El::Nm, &mut name)?,
                            Ev::Start(El::Id) => {
                                if id.is_some() {
                                    return Err(self.duplicate(El::Id));
                                }
                                self.path.push(El::Id);
                                id = Some(self.read_party_id()?);
                                self.path.pop();
                            }
                            Ev::Start(El::CtctDtls) => self.chain_once(
                                El::CtctDtls,
                                &mut seen_ctct,
                                &[El::MobNb],
                                &mut phone,
                            )?,
                            Ev::Start(_) => self.skip()?,
                            Ev::Text(_) => {}
                            Ev::End => break,
                            Ev::Eof => return Err(self.truncated()),
                        }
                    }
                    if name.is_none() {
                        return Err(self.missing("Nm"));
                    }
                    if id.is_none() {
                        return Err(self.missing("Id"));
                    }
                    let Some(p) = &phone else {
                        return Err(self.missing("CtctDtls/MobNb"));
                    };
                    if !p.starts_with(PHONE_PREFIX) {
                        return Err(ReadError::Value {
                            path: self.path_with("CtctDtls/MobNb"),
                            offset: self.offset(),
                            problem: "does not start with +86- (bank B: mainland numbers)",
                        });
                    }
                    self.path.pop();
                }
                Ev::Start(El::CdtrAcct) => {
                    if std::mem::replace(&mut seen[4], true) {
                        return Err(self.duplicate(El::CdtrAcct));
                    }
                    self.path.push(El::CdtrAcct);
                    let (mut seen_id, mut seen_tp) = (false, false);
                    loop {
                        match self.ev()? {
                            Ev::Start(El::Id) => self.chain_once(
                                El::Id,
                                &mut seen_id,
                                &[El::Othr, El::Id],
                                &mut account,
                            )?,
                            Ev::Start(El::Tp) => {
                                self.chain_once(El::Tp, &mut seen_tp, &[El::Prtry], &mut kind)?
                            }
                            Ev::Start(_) => self.skip()?,
                            Ev::Text(_) => {}
                            Ev::End => break,
                            Ev::Eof => return Err(self.truncated()),
                        }
                    }
                    if account.is_none() {
                        return Err(self.missing("Id/Othr/Id"));
                    }
                    if kind.is_none() {
                        return Err(self.missing("Tp/Prtry"));
                    }
                    self.path.pop();
                }
                Ev::Start(El::RmtInf) => {
                    // `Ustrd` may repeat in the schema; the gateway's memo is one line.
                    self.chain_once(El::RmtInf, &mut seen[5], &[El::Ustrd], &mut memo)?
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        let Some(account_kind) = kind else {
            return Err(self.missing("CdtrAcct"));
        };
        let account_kind = match account_kind.as_str() {
            "SSC" => AccountKind::Ssc,
            "CORP" => AccountKind::Corporate,
            "PERS" => AccountKind::Personal,
            _ => {
                return Err(ReadError::Value {
                    path: self.path_with("CdtrAcct/Tp/Prtry"),
                    offset: self.offset(),
                    problem: "not SSC, CORP or PERS",
                });
            }
        };
        let Some((recipient_kind, id_no)) = id else {
            return Err(self.missing("Cdtr"));
        };
        let tx = Transaction {
            seq: seq.ok_or_else(|| self.missing("PmtId"))?,
            end_to_end_id: e2e.ok_or_else(|| self.missing("PmtId"))?,
            amount_fen: amount.ok_or_else(|| self.missing("Amt"))?,
            account_bank_code: bank
                .ok_or_else(|| self.missing("CdtrAgt/FinInstnId/ClrSysMmbId/MmbId"))?,
            name: name.ok_or_else(|| self.missing("Cdtr"))?,
            recipient_kind,
            id_no,
            phone: phone
                .and_then(|p| p.strip_prefix(PHONE_PREFIX).map(str::to_owned))
                .ok_or_else(|| self.missing("Cdtr"))?,
            account_no: account.ok_or_else(|| self.missing("CdtrAcct"))?,
            account_kind,
            memo: memo.unwrap_or_default(),
        };
        tx.validate().map_err(|e| self.invalid(e))?;
        Ok(tx)
    }

    /// After `<Cdtr><Id>` (on `path`): `PrvtId` or `OrgId`, and the `Othr` of bank B's scheme in it.
    fn read_party_id(&mut self) -> Result<(RecipientKind, String), ReadError> {
        let mut found: Option<(RecipientKind, String)> = None;
        loop {
            match self.ev()? {
                Ev::Start(el @ (El::PrvtId | El::OrgId)) => {
                    if found.is_some() {
                        return Err(self.child_error(el, "a second PrvtId or OrgId"));
                    }
                    let (kind, scheme) = if el == El::PrvtId {
                        (RecipientKind::Person, "RESIDENT-ID")
                    } else {
                        (RecipientKind::Unit, "USCC")
                    };
                    self.path.push(el);
                    let mut id = None;
                    loop {
                        match self.ev()? {
                            Ev::Start(El::Othr) => {
                                self.path.push(El::Othr);
                                let other = self.read_other_id()?;
                                self.path.pop();
                                if other.scheme.as_deref() == Some(scheme) {
                                    if id.is_some() {
                                        return Err(self.child_error(
                                            El::Othr,
                                            "a second Othr of bank B's scheme",
                                        ));
                                    }
                                    id = other.id;
                                    if id.is_none() {
                                        return Err(self.missing("Othr/Id"));
                                    }
                                }
                            }
                            Ev::Start(_) => self.skip()?,
                            Ev::Text(_) => {}
                            Ev::End => break,
                            Ev::Eof => return Err(self.truncated()),
                        }
                    }
                    let Some(id) = id else {
                        return Err(ReadError::Missing {
                            path: self.path_with(if kind == RecipientKind::Person {
                                "Othr[SchmeNm/Prtry=RESIDENT-ID]"
                            } else {
                                "Othr[SchmeNm/Prtry=USCC]"
                            }),
                            offset: self.offset(),
                        });
                    };
                    self.path.pop();
                    found = Some((kind, id));
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        found.ok_or_else(|| self.missing("PrvtId|OrgId"))
    }

    /// After `<Othr>` (on `path`): `Id` and `SchmeNm/Prtry`.
    fn read_other_id(&mut self) -> Result<OtherId, ReadError> {
        let mut o = OtherId {
            id: None,
            scheme: None,
        };
        let mut seen_scheme = false;
        loop {
            match self.ev()? {
                Ev::Start(El::Id) => self.text_once(El::Id, &mut o.id)?,
                Ev::Start(El::SchmeNm) => {
                    self.chain_once(El::SchmeNm, &mut seen_scheme, &[El::Prtry], &mut o.scheme)?
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        Ok(o)
    }

    /// One step of the transaction loop.
    fn step(&mut self) -> Result<Option<Transaction>, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::InPmtInf => {
                    let start_tx = if self.pending_tx {
                        self.pending_tx = false;
                        true
                    } else {
                        match self.ev()? {
                            Ev::Start(El::CdtTrfTxInf) => true,
                            Ev::Start(el) if PAYMENT_HEADER.contains(&el) => {
                                return Err(ReadError::OutOfOrder {
                                    path: self.path_with(el.name()),
                                    offset: self.offset(),
                                });
                            }
                            Ev::Start(_) => {
                                self.skip()?;
                                false
                            }
                            Ev::Text(_) => false,
                            Ev::End => {
                                self.end_of_payment()?;
                                false
                            }
                            Ev::Eof => return Err(self.truncated()),
                        }
                    };
                    if start_tx {
                        self.tx_index += 1;
                        if self.tx_index > self.header.nb_of_txs {
                            return Err(ReadError::CountMismatch {
                                path: self.path_string(),
                                declared: self.header.nb_of_txs,
                                found: self.tx_index,
                            });
                        }
                        self.path.push(El::CdtTrfTxInf);
                        let tx = self.read_tx()?;
                        self.path.pop();
                        self.sum_fen = self.sum_fen.saturating_add(u128::from(tx.amount_fen));
                        return Ok(Some(tx));
                    }
                }
                State::InInitiation => match self.ev()? {
                    Ev::Start(El::PmtInf) => {
                        return Err(ReadError::MoreThanOnePaymentInfo {
                            path: self.path_with("PmtInf"),
                            offset: self.offset(),
                        });
                    }
                    Ev::Start(El::GrpHdr) => {
                        return Err(ReadError::OutOfOrder {
                            path: self.path_with("GrpHdr"),
                            offset: self.offset(),
                        });
                    }
                    Ev::Start(_) => self.skip()?,
                    Ev::Text(_) => {}
                    Ev::End => {
                        self.path.pop();
                        self.finish_document()?;
                        self.state = State::Done;
                    }
                    Ev::Eof => return Err(self.truncated()),
                },
            }
        }
    }

    /// At `</PmtInf>`: count and sum as declared.
    fn end_of_payment(&mut self) -> Result<(), ReadError> {
        if self.tx_index != self.header.nb_of_txs {
            return Err(ReadError::CountMismatch {
                path: self.path_string(),
                declared: self.header.nb_of_txs,
                found: self.tx_index,
            });
        }
        if self.sum_fen != u128::from(self.header.ctrl_sum_fen) {
            return Err(ReadError::SumMismatch {
                path: self.path_string(),
                declared_fen: self.header.ctrl_sum_fen,
                found_fen: u64::try_from(self.sum_fen).unwrap_or(u64::MAX),
            });
        }
        self.path.pop();
        self.state = State::InInitiation;
        Ok(())
    }

    /// After `</CstmrCdtTrfInitn>`: `</Document>`, then nothing but comments and whitespace.
    fn finish_document(&mut self) -> Result<(), ReadError> {
        loop {
            match self.ev()? {
                Ev::Text(_) => {}
                Ev::Start(_) => {
                    return Err(self.value_error("more than one child element"));
                }
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        self.path.clear();
        match self.ev()? {
            Ev::Eof => Ok(()),
            _ => Err(ReadError::Trailing {
                offset: self.offset(),
            }),
        }
    }
}

impl Iterator for Pain001Reader<'_> {
    type Item = Result<Transaction, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reported {
            return None;
        }
        match self.next_transaction() {
            Ok(Some(tx)) => Some(Ok(tx)),
            Ok(None) => None,
            Err(e) => {
                self.reported = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole body (`&str`, `&[u8]`, `Vec<u8>`...) into a [`Document`].
pub fn read_document(body: impl AsRef<[u8]>) -> Result<Document, ReadError> {
    let mut r = Pain001Reader::new(body.as_ref())?;
    // The header says how many follow; trust it only as far as the body could hold them.
    let hint = usize::try_from(r.header.nb_of_txs.min(10_000)).unwrap_or(0);
    let mut transactions = Vec::with_capacity(hint);
    while let Some(tx) = r.next_transaction()? {
        transactions.push(tx);
    }
    Ok(Document {
        header: r.header,
        payment: r.payment,
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_data::*;
    use super::super::write_document;
    use super::*;

    fn doc(n: u64) -> String {
        let txs: Vec<Transaction> = (1..=n).map(|i| tx(i, i * 100)).collect();
        let sum = txs.iter().map(|t| t.amount_fen).sum();
        String::from_utf8(write_document(&header(n, sum), &payment(), &txs).expect("write"))
            .expect("utf8")
    }

    #[test]
    fn reads_what_the_writer_wrote() {
        let d = read_document(doc(3)).expect("read");
        assert_eq!(d.header, header(3, 600));
        assert_eq!(d.payment, payment());
        assert_eq!(d.transactions, vec![tx(1, 100), tx(2, 200), tx(3, 300)]);
    }

    #[test]
    fn streams_one_transaction_at_a_time() {
        let s = doc(2);
        let mut r = Pain001Reader::new(s.as_bytes()).expect("reader");
        assert_eq!(r.header().nb_of_txs, 2);
        assert_eq!(r.transactions_read(), 0);
        assert_eq!(r.next_transaction(), Ok(Some(tx(1, 100))));
        assert_eq!(r.next(), Some(Ok(tx(2, 200))));
        assert_eq!(r.next_transaction(), Ok(None));
        assert_eq!(r.next(), None);
        assert_eq!(r.transactions_read(), 2);
    }

    #[test]
    fn counts_and_sums_are_checked() {
        let s = doc(2);
        let e =
            read_document(s.replace("<InstdAmt Ccy=\"CNY\">2.00<", "<InstdAmt Ccy=\"CNY\">2.01<"))
                .expect_err("sum");
        assert!(
            matches!(
                e,
                ReadError::SumMismatch {
                    declared_fen: 300,
                    found_fen: 301,
                    ..
                }
            ),
            "{e}"
        );
        let e = read_document(s.replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>1</NbOfTxs>", 1))
            .expect_err("count");
        assert!(
            matches!(
                e,
                ReadError::CountMismatch {
                    declared: 1,
                    found: 2,
                    ..
                }
            ),
            "{e}"
        );
    }
}

//! The streaming reader of `pain.002.001.10` (see the parent module for the layout).
use std::borrow::Cow;
use std::fmt;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{Reason, ReportHeader, StatusReason, StatusReport, TxStatus};
use crate::format::iso20022::datetime::{BeijingTime, DateTimeError};
use crate::format::iso20022::{MAX_BODY_BYTES, PAIN002_NS};

/// Deepest element nesting the reader follows (the schema needs about 15; `xs:any` content more).
pub const MAX_DEPTH: usize = 256;
/// Longest text of one element the reader keeps, in bytes (the longest kept type is `Max105Text`).
pub const MAX_TEXT_BYTES: usize = 4096;

/// Why a body is not a `pain.002.001.10` the gateway can read. Never holds element content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The body is larger than bank B sends.
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
    /// The root is not `Document/CstmrPmtStsRpt`.
    #[error("root is `{found}`, expected `Document/CstmrPmtStsRpt` (pain.002.001.10)")]
    WrongRoot {
        /// The elements found (local names, cut at 64 characters).
        found: String,
        /// Byte offset.
        offset: u64,
    },
    /// `Document` (or its child) is not in the pain.002.001.10 namespace.
    #[error("`{path}` is in namespace `{found}`, expected `{PAIN002_NS}`")]
    WrongNamespace {
        /// Element path.
        path: String,
        /// The namespace found (empty: none), cut at 128 characters.
        found: String,
        /// Byte offset.
        offset: u64,
    },
    /// A mandatory element is missing.
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
    /// A header element after the transactions began.
    #[error("`{path}` at byte {offset} comes after `OrgnlPmtInfAndSts`")]
    OutOfOrder {
        /// Element path.
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
    /// A date and time that is not an `xs:dateTime`.
    #[error("`{path}` at byte {offset}: {source}")]
    DateTime {
        /// Element path.
        path: String,
        /// Byte offset.
        offset: u64,
        /// What is wrong.
        source: DateTimeError,
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

/// Element names the reader knows; everything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    Document,
    CstmrPmtStsRpt,
    GrpHdr,
    MsgId,
    CreDtTm,
    OrgnlGrpInfAndSts,
    OrgnlMsgId,
    OrgnlMsgNmId,
    GrpSts,
    StsRsnInf,
    Rsn,
    Cd,
    Prtry,
    AddtlInf,
    OrgnlPmtInfAndSts,
    TxInfAndSts,
    OrgnlInstrId,
    OrgnlEndToEndId,
    TxSts,
    AccptncDtTm,
    AcctSvcrRef,
    OrgnlTxRef,
    CdtrAgt,
    FinInstnId,
    ClrSysMmbId,
    MmbId,
    /// In the pain.002 namespace, not used.
    Other,
    /// In another namespace, or none.
    Foreign,
}

impl El {
    fn from_local(name: &str) -> Self {
        match name {
            "Document" => Self::Document,
            "CstmrPmtStsRpt" => Self::CstmrPmtStsRpt,
            "GrpHdr" => Self::GrpHdr,
            "MsgId" => Self::MsgId,
            "CreDtTm" => Self::CreDtTm,
            "OrgnlGrpInfAndSts" => Self::OrgnlGrpInfAndSts,
            "OrgnlMsgId" => Self::OrgnlMsgId,
            "OrgnlMsgNmId" => Self::OrgnlMsgNmId,
            "GrpSts" => Self::GrpSts,
            "StsRsnInf" => Self::StsRsnInf,
            "Rsn" => Self::Rsn,
            "Cd" => Self::Cd,
            "Prtry" => Self::Prtry,
            "AddtlInf" => Self::AddtlInf,
            "OrgnlPmtInfAndSts" => Self::OrgnlPmtInfAndSts,
            "TxInfAndSts" => Self::TxInfAndSts,
            "OrgnlInstrId" => Self::OrgnlInstrId,
            "OrgnlEndToEndId" => Self::OrgnlEndToEndId,
            "TxSts" => Self::TxSts,
            "AccptncDtTm" => Self::AccptncDtTm,
            "AcctSvcrRef" => Self::AcctSvcrRef,
            "OrgnlTxRef" => Self::OrgnlTxRef,
            "CdtrAgt" => Self::CdtrAgt,
            "FinInstnId" => Self::FinInstnId,
            "ClrSysMmbId" => Self::ClrSysMmbId,
            "MmbId" => Self::MmbId,
            _ => Self::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Document => "Document",
            Self::CstmrPmtStsRpt => "CstmrPmtStsRpt",
            Self::GrpHdr => "GrpHdr",
            Self::MsgId => "MsgId",
            Self::CreDtTm => "CreDtTm",
            Self::OrgnlGrpInfAndSts => "OrgnlGrpInfAndSts",
            Self::OrgnlMsgId => "OrgnlMsgId",
            Self::OrgnlMsgNmId => "OrgnlMsgNmId",
            Self::GrpSts => "GrpSts",
            Self::StsRsnInf => "StsRsnInf",
            Self::Rsn => "Rsn",
            Self::Cd => "Cd",
            Self::Prtry => "Prtry",
            Self::AddtlInf => "AddtlInf",
            Self::OrgnlPmtInfAndSts => "OrgnlPmtInfAndSts",
            Self::TxInfAndSts => "TxInfAndSts",
            Self::OrgnlInstrId => "OrgnlInstrId",
            Self::OrgnlEndToEndId => "OrgnlEndToEndId",
            Self::TxSts => "TxSts",
            Self::AccptncDtTm => "AccptncDtTm",
            Self::AcctSvcrRef => "AcctSvcrRef",
            Self::OrgnlTxRef => "OrgnlTxRef",
            Self::CdtrAgt => "CdtrAgt",
            Self::FinInstnId => "FinInstnId",
            Self::ClrSysMmbId => "ClrSysMmbId",
            Self::MmbId => "MmbId",
            Self::Other | Self::Foreign => "*",
        }
    }
}

/// One step of the document, namespaces resolved, references expanded.
enum Ev<'a> {
    Start(El),
    End,
    Text(Cow<'a, str>),
    Eof,
}

/// `OrgnlGrpInfAndSts` as read.
struct OrgnlGrp {
    id: String,
    name: String,
    status: Option<String>,
    reasons: Vec<StatusReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside `OrgnlPmtInfAndSts`, before a `TxInfAndSts` or its end.
    InPmtInf,
    /// Inside `CstmrPmtStsRpt`, after the header part.
    InReport,
    /// The document was read to its end (or failed).
    Done,
}

/// Streaming reader of one `pain.002.001.10` body.
///
/// ```text
/// let mut r = Pain002Reader::new(body)?;     // reads GrpHdr + OrgnlGrpInfAndSts
/// r.header()                                 // -> &ReportHeader
/// while let Some(tx) = r.next_transaction()? { ... }   // one TxInfAndSts at a time
/// ```
/// `next_transaction` returns `Ok(None)` only once the whole body was read and found complete (root
/// closed, nothing but comments and whitespace after it). After an error it returns that error again.
/// It is also an `Iterator` of `Result<TxStatus, ReadError>` (fused after the first error).
pub struct Pain002Reader<'a> {
    xml: NsReader<&'a [u8]>,
    /// Bytes before what `xml` reads (a UTF-8 BOM), so offsets count from the start of the body.
    base: u64,
    header: ReportHeader,
    state: State,
    depth: usize,
    path: Vec<El>,
    tx_index: u64,
    seen_event: bool,
    failed: Option<ReadError>,
    reported: bool,
}

impl fmt::Debug for Pain002Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pain002Reader")
            .field("header", &self.header)
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

impl<'a> Pain002Reader<'a> {
    /// Checks the body (size, UTF-8, root, namespace) and reads the header part.
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
            header: ReportHeader {
                msg_id: String::new(),
                created: BeijingTime::PLACEHOLDER,
                original_msg_id: String::new(),
                original_msg_name: String::new(),
                group_status: None,
                reasons: Vec::new(),
            },
            state: State::Done,
            depth: 0,
            path: Vec::new(),
            tx_index: 0,
            seen_event: false,
            failed: None,
            reported: false,
        };
        r.read_prelude()?;
        Ok(r)
    }

    /// `GrpHdr` and `OrgnlGrpInfAndSts`.
    pub fn header(&self) -> &ReportHeader {
        &self.header
    }

    /// Transactions handed out so far.
    pub fn transactions_read(&self) -> u64 {
        self.tx_index
    }

    /// The next `TxInfAndSts`, `Ok(None)` at the (verified) end of the document.
    pub fn next_transaction(&mut self) -> Result<Option<TxStatus>, ReadError> {
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
            if *el == El::TxInfAndSts && self.tx_index > 0 {
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

    fn value_error(&self, problem: &'static str) -> ReadError {
        ReadError::Value {
            path: self.path_string(),
            offset: self.offset(),
            problem,
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
                        ResolveResult::Bound(ns) => ns.0 == PAIN002_NS,
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
                    if e.attributes().any(|a| a.is_err()) {
                        return Err(ReadError::Malformed {
                            path: self.path_with(el.name()),
                            offset: self.offset(),
                            problem: "malformed or duplicate attribute",
                        });
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
        self.path.push(el);
        if slot.is_some() {
            return Err(ReadError::Duplicate {
                path: self.path_string(),
                offset: self.offset(),
            });
        }
        *slot = Some(self.text()?);
        self.path.pop();
        Ok(())
    }

    fn datetime_once(&mut self, el: El, slot: &mut Option<BeijingTime>) -> Result<(), ReadError> {
        if slot.is_some() {
            self.path.push(el);
            return Err(ReadError::Duplicate {
                path: self.path_string(),
                offset: self.offset(),
            });
        }
        let mut text = None;
        self.text_once(el, &mut text)?;
        let text = text.unwrap_or_default();
        // `xs:dateTime` collapses whitespace.
        match BeijingTime::parse_iso(text.trim_matches(is_xml_space)) {
            Ok(t) => {
                *slot = Some(t);
                Ok(())
            }
            Err(source) => Err(ReadError::DateTime {
                path: self.path_with(el.name()),
                offset: self.offset(),
                source,
            }),
        }
    }

    fn missing(&self, child: &str) -> ReadError {
        ReadError::Missing {
            path: self.path_with(child),
            offset: self.offset(),
        }
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
                Ev::Start(El::CstmrPmtStsRpt) => break,
                Ev::Start(El::Foreign) if child.0 == "CstmrPmtStsRpt" => {
                    return Err(ReadError::WrongNamespace {
                        path: "Document/CstmrPmtStsRpt".into(),
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
                Ev::End => return Err(self.missing("CstmrPmtStsRpt")),
                Ev::Eof => return Err(self.truncated()),
            }
        }
        self.path.push(El::CstmrPmtStsRpt);
        let mut grp_hdr: Option<(String, BeijingTime)> = None;
        let mut orgnl: Option<OrgnlGrp> = None;
        let next_state = loop {
            match self.ev()? {
                Ev::Start(El::GrpHdr) => {
                    self.path.push(El::GrpHdr);
                    if grp_hdr.is_some() {
                        return Err(ReadError::Duplicate {
                            path: self.path_string(),
                            offset: self.offset(),
                        });
                    }
                    grp_hdr = Some(self.read_grp_hdr()?);
                    self.path.pop();
                }
                Ev::Start(El::OrgnlGrpInfAndSts) => {
                    self.path.push(El::OrgnlGrpInfAndSts);
                    if orgnl.is_some() {
                        return Err(ReadError::Duplicate {
                            path: self.path_string(),
                            offset: self.offset(),
                        });
                    }
                    orgnl = Some(self.read_orgnl_grp()?);
                    self.path.pop();
                }
                Ev::Start(El::OrgnlPmtInfAndSts) => break State::InPmtInf,
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break State::Done,
                Ev::Eof => return Err(self.truncated()),
            }
        };
        let Some((msg_id, created)) = grp_hdr else {
            return Err(self.missing("GrpHdr"));
        };
        let Some(orgnl) = orgnl else {
            return Err(self.missing("OrgnlGrpInfAndSts"));
        };
        self.header = ReportHeader {
            msg_id,
            created,
            original_msg_id: orgnl.id,
            original_msg_name: orgnl.name,
            group_status: orgnl.status,
            reasons: orgnl.reasons,
        };
        if next_state == State::InPmtInf {
            self.path.push(El::OrgnlPmtInfAndSts);
            self.state = State::InPmtInf;
        } else {
            self.path.pop();
            self.finish_document()?;
            self.state = State::Done;
        }
        Ok(())
    }

    fn read_grp_hdr(&mut self) -> Result<(String, BeijingTime), ReadError> {
        let (mut msg_id, mut created) = (None, None);
        loop {
            match self.ev()? {
                Ev::Start(El::MsgId) => self.text_once(El::MsgId, &mut msg_id)?,
                Ev::Start(El::CreDtTm) => self.datetime_once(El::CreDtTm, &mut created)?,
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        let msg_id = msg_id.ok_or_else(|| self.missing("MsgId"))?;
        let created = created.ok_or_else(|| self.missing("CreDtTm"))?;
        Ok((msg_id, created))
    }

    fn read_orgnl_grp(&mut self) -> Result<OrgnlGrp, ReadError> {
        let (mut id, mut name, mut sts, mut reasons) = (None, None, None, Vec::new());
        loop {
            match self.ev()? {
                Ev::Start(El::OrgnlMsgId) => self.text_once(El::OrgnlMsgId, &mut id)?,
                Ev::Start(El::OrgnlMsgNmId) => self.text_once(El::OrgnlMsgNmId, &mut name)?,
                Ev::Start(El::GrpSts) => self.text_once(El::GrpSts, &mut sts)?,
                Ev::Start(El::StsRsnInf) => reasons.push(self.read_reason()?),
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        Ok(OrgnlGrp {
            id: id.ok_or_else(|| self.missing("OrgnlMsgId"))?,
            name: name.ok_or_else(|| self.missing("OrgnlMsgNmId"))?,
            status: sts,
            reasons,
        })
    }

    /// After `<StsRsnInf>`.
    fn read_reason(&mut self) -> Result<StatusReason, ReadError> {
        self.path.push(El::StsRsnInf);
        let mut r = StatusReason::default();
        let mut seen_rsn = false;
        loop {
            match self.ev()? {
                Ev::Start(El::Rsn) => {
                    self.path.push(El::Rsn);
                    if seen_rsn {
                        return Err(ReadError::Duplicate {
                            path: self.path_string(),
                            offset: self.offset(),
                        });
                    }
                    seen_rsn = true;
                    r.reason = Some(self.read_rsn()?);
                    self.path.pop();
                }
                Ev::Start(El::AddtlInf) => {
                    let mut line = None;
                    self.text_once(El::AddtlInf, &mut line)?;
                    r.additional_info.extend(line);
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        self.path.pop();
        Ok(r)
    }

    /// After `<Rsn>`: the choice of `Cd` or `Prtry`.
    fn read_rsn(&mut self) -> Result<Reason, ReadError> {
        let mut reason: Option<Reason> = None;
        loop {
            match self.ev()? {
                Ev::Start(el @ (El::Cd | El::Prtry)) => {
                    let mut v = None;
                    if reason.is_some() {
                        self.path.push(el);
                        return Err(ReadError::Duplicate {
                            path: self.path_string(),
                            offset: self.offset(),
                        });
                    }
                    self.text_once(el, &mut v)?;
                    let v = v.unwrap_or_default();
                    reason = Some(if el == El::Cd {
                        Reason::Code(v)
                    } else {
                        Reason::Proprietary(v)
                    });
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        reason.ok_or_else(|| self.missing("Cd|Prtry"))
    }

    /// After `<TxInfAndSts>` (on `path`).
    fn read_tx(&mut self) -> Result<TxStatus, ReadError> {
        let mut tx = TxStatus::default();
        let mut seen_ref = false;
        loop {
            match self.ev()? {
                Ev::Start(El::OrgnlInstrId) => {
                    self.text_once(El::OrgnlInstrId, &mut tx.original_instr_id)?
                }
                Ev::Start(El::OrgnlEndToEndId) => {
                    self.text_once(El::OrgnlEndToEndId, &mut tx.original_end_to_end_id)?
                }
                Ev::Start(El::TxSts) => self.text_once(El::TxSts, &mut tx.status)?,
                Ev::Start(El::StsRsnInf) => tx.reasons.push(self.read_reason()?),
                Ev::Start(El::AccptncDtTm) => {
                    self.datetime_once(El::AccptncDtTm, &mut tx.acceptance_time)?
                }
                Ev::Start(El::AcctSvcrRef) => {
                    self.text_once(El::AcctSvcrRef, &mut tx.account_servicer_ref)?
                }
                Ev::Start(El::OrgnlTxRef) => {
                    self.path.push(El::OrgnlTxRef);
                    if seen_ref {
                        return Err(ReadError::Duplicate {
                            path: self.path_string(),
                            offset: self.offset(),
                        });
                    }
                    seen_ref = true;
                    self.read_chain(
                        &[El::CdtrAgt, El::FinInstnId, El::ClrSysMmbId, El::MmbId],
                        &mut tx.creditor_agent,
                    )?;
                    self.path.pop();
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => break,
                Ev::Eof => return Err(self.truncated()),
            }
        }
        Ok(tx)
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
                    if rest.is_empty() {
                        self.text_once(el, slot)?;
                    } else {
                        self.path.push(el);
                        if seen {
                            return Err(ReadError::Duplicate {
                                path: self.path_string(),
                                offset: self.offset(),
                            });
                        }
                        self.read_chain(rest, slot)?;
                        self.path.pop();
                    }
                    seen = true;
                }
                Ev::Start(_) => self.skip()?,
                Ev::Text(_) => {}
                Ev::End => return Ok(()),
                Ev::Eof => return Err(self.truncated()),
            }
        }
    }

    /// One step of the transaction loop.
    fn step(&mut self) -> Result<Option<TxStatus>, ReadError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::InPmtInf => match self.ev()? {
                    Ev::Start(El::TxInfAndSts) => {
                        self.tx_index += 1;
                        self.path.push(El::TxInfAndSts);
                        let tx = self.read_tx()?;
                        self.path.pop();
                        return Ok(Some(tx));
                    }
                    Ev::Start(_) => self.skip()?,
                    Ev::Text(_) => {}
                    Ev::End => {
                        self.path.pop();
                        self.state = State::InReport;
                    }
                    Ev::Eof => return Err(self.truncated()),
                },
                State::InReport => match self.ev()? {
                    Ev::Start(El::OrgnlPmtInfAndSts) => {
                        self.path.push(El::OrgnlPmtInfAndSts);
                        self.state = State::InPmtInf;
                    }
                    Ev::Start(el @ (El::GrpHdr | El::OrgnlGrpInfAndSts)) => {
                        return Err(ReadError::OutOfOrder {
                            path: self.path_with(el.name()),
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

    /// After `</CstmrPmtStsRpt>`: `</Document>`, then nothing but comments and whitespace.
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

impl Iterator for Pain002Reader<'_> {
    type Item = Result<TxStatus, ReadError>;

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

/// Reads a whole body into a [`StatusReport`].
pub fn read_document(body: &[u8]) -> Result<StatusReport, ReadError> {
    let mut r = Pain002Reader::new(body)?;
    let mut transactions = Vec::new();
    while let Some(tx) = r.next_transaction()? {
        transactions.push(tx);
    }
    Ok(StatusReport {
        header: r.header,
        transactions,
    })
}

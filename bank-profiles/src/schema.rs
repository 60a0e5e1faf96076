//! The profile schema. Every table refuses unknown keys.
use std::collections::BTreeMap;

use codecs::format::fixed_width::messages::Layouts;
use codecs::format::fixed_width::{FieldSpec, RecordLayout};
use serde::{Deserialize, Serialize};

use crate::DurationText;
use crate::iso8583::Iso8583;
use crate::iso20022::Iso20022;

/// One payout bank's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// 12-digit bank code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Codec family.
    pub family: Family,
    /// How to reach the bank.
    pub transport: Transport,
    /// Sizes and concurrency.
    pub limits: Limits,
    /// Timers.
    pub timers: Timers,
    /// The bank's codes mapped to our outcomes.
    pub codes: Codes,
    /// Layout of the fixed-width family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_width: Option<FixedWidth>,
    /// Documents and paths of the ISO 20022 family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso20022: Option<Iso20022>,
    /// Field table, messages and tags of the ISO 8583 family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iso8583: Option<Iso8583>,
}

/// Codec families the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Fixed-width GBK records over a length-framed stream (bank A).
    FixedWidth,
    /// ISO 20022 pain.001/pain.002 over HTTPS (bank B).
    Iso20022,
    /// ISO 8583-like frames with MACs (bank C).
    Iso8583,
}

/// Transport settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// `tcp`, `tls` (mutual TLS over TCP) or `https`.
    pub kind: TransportKind,
    /// Framing of messages on the stream.
    pub framing: Framing,
    /// Connections the bank accepts at once from one client.
    pub max_connections: u32,
    /// Time allowed to connect.
    pub connect_timeout: DurationText,
    /// Time allowed for one request and its reply.
    pub request_timeout: DurationText,
}

/// Transport kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP with client certificates.
    Tls,
    /// HTTPS with client certificates.
    Https,
}

/// Message framing on a stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Framing {
    /// `digits` ASCII decimal digits giving the body length.
    AsciiLength {
        /// Header digits.
        digits: usize,
        /// Largest body.
        max_body: usize,
    },
    /// HTTP carries its own framing.
    Http {
        /// Largest body.
        max_body: usize,
    },
    /// A 2-byte unsigned big-endian length, then the message (`codecs::framing::U16LenCodec`).
    U16Length {
        /// Largest message (at most 65,535).
        max_body: usize,
    },
}

impl Framing {
    /// The largest body or message the framing carries.
    pub fn max_body(&self) -> usize {
        match *self {
            Framing::AsciiLength { max_body, .. }
            | Framing::Http { max_body }
            | Framing::U16Length { max_body } => max_body,
        }
    }
}

/// Sizes and concurrency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Items in one bank batch (part).
    pub items_per_part: u32,
    /// Requests outstanding on one connection.
    pub max_in_flight: u32,
}

/// Timers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timers {
    /// How often an accepted part's results are asked for.
    pub poll_interval: DurationText,
    /// Echo on an idle connection this often.
    pub echo_interval: DurationText,
    /// The bank closes connections idle this long.
    pub idle_timeout: DurationText,
    /// First retry delay after a busy answer or a transport error.
    pub retry_min: DurationText,
    /// Longest retry delay.
    pub retry_max: DurationText,
    /// Retries in one attempt before the work is put back for later.
    pub retry_times: u32,
}

/// What a submit answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmitOutcome {
    /// Accepted now.
    Accepted,
    /// Accepted before under the same reference; nothing is paid again.
    Duplicate,
    /// Busy: retry later with the same reference.
    Busy,
    /// Refused: an operator must look.
    Rejected,
}

/// What a query answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryOutcome {
    /// Answered (processing or final).
    Answered,
    /// The bank does not know the reference.
    Unknown,
    /// Busy: retry.
    Busy,
}

/// An item's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemOutcome {
    /// Credited.
    Succeeded,
    /// Failed: correct or return.
    Failed,
    /// Needs an operator.
    Review,
}

/// One item code of the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemCode {
    /// What it means for the item.
    pub outcome: ItemOutcome,
    /// Readable reason.
    pub reason: String,
}

/// What a status answer says about the state of what was asked: a whole bank batch (ISO 20022
/// `GrpSts`) or one item (ISO 8583 F39 of an inquiry reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusOutcome {
    /// Accepted; the results come through status calls.
    Accepted,
    /// Still processing: ask again later.
    Processing,
    /// Final: the item codes say how each item ended.
    Final,
}

/// Answers about the session rather than the request (ISO 8583 `A7`, `A0`, `30`): the bank did nothing
/// with the request, whatever it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionOutcome {
    /// Not signed on: sign on again, then send the same message (same reference) again.
    SignOn,
    /// The bank could not verify the request's MAC (garbled on the way, or keys out of step): send the
    /// same message again, at most `timers.retry_times` times, then put the work in review and alert.
    Resend,
    /// The bank cannot read the request (format error): sending it again cannot help; an operator
    /// must look.
    Refused,
}

/// The bank's codes. Anything not listed is unknown: for items it means `review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Codes {
    /// Answers to a submit (fixed-width: `ret_code`; ISO 20022: the HTTP status of the `POST`; ISO 8583:
    /// F39 of the reply to a payout).
    pub submit: BTreeMap<String, SubmitOutcome>,
    /// Answers to a query (fixed-width: `ret_code`; ISO 20022: the HTTP status of the status call;
    /// ISO 8583: F39 of the reply to an inquiry).
    pub query: BTreeMap<String, QueryOutcome>,
    /// Per-item result codes (fixed-width: `result`, or `fail_code` when not credited; ISO 20022:
    /// `TxSts` when credited, else the `StsRsnInf/Rsn` code; ISO 8583: F39 of a final inquiry reply).
    pub item: BTreeMap<String, ItemCode>,
    /// State of what a status answer is about (ISO 20022 `GrpSts`; ISO 8583 inquiry F39). Unknown
    /// states need review.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub status: BTreeMap<String, StatusOutcome>,
    /// Answers about the session, looked up before `submit` and `query` (ISO 8583).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub session: BTreeMap<String, SessionOutcome>,
}

impl Codes {
    /// The outcome of an item code; unknown codes need review, never a guess.
    pub fn item_outcome(&self, code: &str) -> (ItemOutcome, &str) {
        match self.item.get(code) {
            Some(c) => (c.outcome, c.reason.as_str()),
            None => (ItemOutcome::Review, "unknown result code"),
        }
    }

    /// The state a status answer reports; `None` for a code the profile does not list (review).
    pub fn status_outcome(&self, code: &str) -> Option<StatusOutcome> {
        self.status.get(code).copied()
    }

    /// What a session-level answer asks for; `None` when `code` is not one (then look in `submit` or
    /// `query`).
    pub fn session_outcome(&self, code: &str) -> Option<SessionOutcome> {
        self.session.get(code).copied()
    }
}

/// Text encodings of the fixed-width family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextEncoding {
    /// Strict GBK (see `codecs::field::gbk`).
    Gbk,
}

/// The fixed-width family's layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedWidth {
    /// Record length in bytes, without CR LF.
    pub record_len: usize,
    /// Text encoding.
    pub encoding: TextEncoding,
    /// `txn_code` of an echo request.
    pub echo_request: String,
    /// `txn_code` of an echo reply.
    pub echo_reply: String,
    /// Value tables: e.g. `id_type.person = "1"`.
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Record layouts by name.
    pub layouts: BTreeMap<String, Vec<FieldSpec>>,
}

/// The record layouts the fixed-width link uses, and the fields each must have.
pub const FIXED_WIDTH_REQUIRED: &[(&str, &[&str])] = &[
    (
        "submit_header",
        &[
            "batch_no",
            "payer_account",
            "payer_name",
            "subsidy_code",
            "item_count",
            "total_amount",
            "submit_date",
            "submit_time",
            "region_code",
        ],
    ),
    (
        "submit_detail",
        &[
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
        ],
    ),
    ("trailer", &["item_count", "total_amount"]),
    (
        "submit_reply",
        &[
            "batch_no",
            "ret_code",
            "ret_msg",
            "bank_batch_id",
            "accept_date",
        ],
    ),
    (
        "query",
        &["batch_no", "query_id", "query_date", "query_time"],
    ),
    (
        "query_reply_header",
        &[
            "batch_no",
            "query_id",
            "ret_code",
            "state",
            "success_count",
            "success_amount",
            "fail_count",
            "fail_amount",
            "reply_date",
            "reply_time",
        ],
    ),
    (
        "result_detail",
        &[
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
        ],
    ),
    ("echo", &["txn_code"]),
];

/// Value tables the fixed-width link looks up, and their keys.
pub const FIXED_WIDTH_VALUES: &[(&str, &[&str])] = &[
    ("id_type", &["person", "unit"]),
    ("account_kind", &["ssc", "corporate", "personal"]),
    ("state", &["processing", "final"]),
];

impl FixedWidth {
    /// The checked layout `name`.
    pub fn layout(&self, name: &str) -> Result<RecordLayout, String> {
        let fields = self
            .layouts
            .get(name)
            .ok_or_else(|| format!("no layout `{name}`"))?;
        RecordLayout::new(self.record_len, fields.clone()).map_err(|e| e.to_string())
    }

    /// All the layouts, checked, by role.
    pub fn messages(&self) -> Result<Layouts, String> {
        let mut map = BTreeMap::new();
        for (name, _) in FIXED_WIDTH_REQUIRED {
            map.insert((*name).to_owned(), self.layout(name)?);
        }
        Layouts::from_map(&map).map_err(|n| format!("no layout `{n}`"))
    }

    /// The value of `table.key`, e.g. `value("id_type", "person")`.
    pub fn value(&self, table: &str, key: &str) -> Option<&str> {
        self.values
            .get(table)
            .and_then(|t| t.get(key))
            .map(String::as_str)
    }
}

/// A validation failure: the dotted key and what is wrong with it.
pub(crate) type Invalid = (String, String);

/// `Err((key, problem))`.
pub(crate) fn bad<T>(key: impl Into<String>, problem: impl Into<String>) -> Result<T, Invalid> {
    Err((key.into(), problem.into()))
}

impl Profile {
    /// Checks what serde cannot: `Err((key, problem))`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.code.len() != 12 || !self.code.bytes().all(|b| b.is_ascii_digit()) {
            return bad(
                "code",
                format!("`{}` is not a 12-digit bank code", self.code),
            );
        }
        if self.name.trim().is_empty() {
            return bad("name", "empty");
        }
        if self.transport.max_connections == 0 {
            return bad("transport.max_connections", "must be at least 1");
        }
        if self.transport.framing.max_body() == 0 {
            return bad("transport.framing.max_body", "must be at least 1");
        }
        match self.transport.framing {
            Framing::AsciiLength { digits, max_body } => {
                if !(1..=18).contains(&digits) {
                    return bad("transport.framing.digits", "must be 1 to 18");
                }
                let expressible = 10usize.saturating_pow(digits as u32).saturating_sub(1);
                if max_body > expressible {
                    return bad(
                        "transport.framing.max_body",
                        format!("{digits} digits cannot announce {max_body} bytes"),
                    );
                }
            }
            Framing::U16Length { max_body } if max_body > usize::from(u16::MAX) => {
                return bad(
                    "transport.framing.max_body",
                    format!("a 2-byte length cannot announce {max_body} bytes (at most 65535)"),
                );
            }
            Framing::U16Length { .. } | Framing::Http { .. } => {}
        }
        if self.limits.items_per_part == 0 {
            return bad("limits.items_per_part", "must be at least 1");
        }
        if self.limits.max_in_flight == 0 {
            return bad("limits.max_in_flight", "must be at least 1");
        }
        self.validate_timers()?;
        if !self
            .codes
            .item
            .values()
            .any(|c| c.outcome == ItemOutcome::Succeeded)
        {
            return bad("codes.item", "no code means `succeeded`");
        }
        for (code, c) in &self.codes.item {
            if c.reason.trim().is_empty() {
                return bad(format!("codes.item.{code}.reason"), "empty");
            }
        }
        self.validate_family()
    }

    fn validate_timers(&self) -> Result<(), Invalid> {
        let t = &self.timers;
        if t.poll_interval.0.is_zero() {
            return bad("timers.poll_interval", "must be more than 0");
        }
        if t.retry_min.0 > t.retry_max.0 {
            return bad(
                "timers.retry_min",
                format!("{} is more than retry_max {}", t.retry_min, t.retry_max),
            );
        }
        if !t.echo_interval.0.is_zero()
            && !t.idle_timeout.0.is_zero()
            && t.echo_interval.0 >= t.idle_timeout.0
        {
            return bad(
                "timers.echo_interval",
                format!(
                    "{} is not shorter than idle_timeout {}: the bank would close idle connections first",
                    t.echo_interval, t.idle_timeout
                ),
            );
        }
        Ok(())
    }

    /// The family's own table must be there, and no other family's.
    fn validate_family(&self) -> Result<(), Invalid> {
        let present = [
            (
                "fixed_width",
                self.fixed_width.is_some(),
                Family::FixedWidth,
            ),
            ("iso20022", self.iso20022.is_some(), Family::Iso20022),
            ("iso8583", self.iso8583.is_some(), Family::Iso8583),
        ];
        for (key, there, family) in present {
            if there && family != self.family {
                return bad(key, format!("only for the {} family", family.as_str()));
            }
            if !there && family == self.family {
                return bad(
                    key,
                    format!("the {} family needs this table", family.as_str()),
                );
            }
        }
        if let Some(fw) = &self.fixed_width {
            self.validate_fixed_width(fw)?;
        }
        if let Some(x) = &self.iso20022 {
            x.validate(self)?;
        }
        if let Some(x) = &self.iso8583 {
            x.validate(self)?;
        }
        Ok(())
    }

    fn validate_fixed_width(&self, fw: &FixedWidth) -> Result<(), Invalid> {
        for (name, fields) in FIXED_WIDTH_REQUIRED {
            let key = format!("fixed_width.layouts.{name}");
            let layout = match fw.layout(name) {
                Ok(l) => l,
                Err(e) => return bad(key, e),
            };
            for f in *fields {
                if layout.field(f).is_none() {
                    return bad(key, format!("has no field `{f}`"));
                }
            }
        }
        for (table, keys) in FIXED_WIDTH_VALUES {
            for k in *keys {
                if fw.value(table, k).is_none() {
                    return bad(
                        format!("fixed_width.values.{table}"),
                        format!("has no `{k}`"),
                    );
                }
            }
        }
        match self.transport.framing {
            Framing::AsciiLength { .. } => Ok(()),
            Framing::Http { .. } | Framing::U16Length { .. } => bad(
                "transport.framing",
                "the fixed-width family needs `method = \"ascii-length\"`",
            ),
        }
    }
}

impl Family {
    /// The name as profiles write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::FixedWidth => "fixed-width",
            Family::Iso20022 => "iso20022",
            Family::Iso8583 => "iso8583",
        }
    }
}

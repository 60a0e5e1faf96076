//! `pain.002.001.10` (CustomerPaymentStatusReportV10): bank B's answers, read and written.
//!
//! ```text
//! Document (pain.002.001.10 namespace, any prefix or the default namespace)
//! └─ CstmrPmtStsRpt
//!    ├─ GrpHdr              MsgId, CreDtTm                                      -> ReportHeader
//!    ├─ OrgnlGrpInfAndSts   OrgnlMsgId, OrgnlMsgNmId, GrpSts?, StsRsnInf*       -> ReportHeader
//!    ├─ OrgnlPmtInfAndSts*  (absent while PDNG, and in ACTC / 400 RJCT answers)
//!    │  └─ TxInfAndSts*     OrgnlInstrId, OrgnlEndToEndId, TxSts, StsRsnInf*,   -> TxStatus, one at a time
//!    │                      AccptncDtTm, AcctSvcrRef,
//!    │                      OrgnlTxRef/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId
//!    └─ SplmtryData*        skipped
//! StsRsnInf: Rsn/Cd | Rsn/Prtry, AddtlInf*                                       -> StatusReason
//! ```
//! [`Pain002Reader`] streams over a body already in memory: it reads the header part when created, then
//! hands out one [`TxStatus`] per `TxInfAndSts` without building a tree, so 10,000 transactions cost one
//! transaction's memory at a time. Elements are matched by namespace and local name, so any prefix
//! works; every element it does not use (other namespaces included, `SplmtryData/Envlp`'s `xs:any`
//! content, `OrgnlTxRef/Amt`, `ChrgsInf`, `NbOfTxsPerSts`, ...) is skipped wherever it appears. It is
//! total: bounded (body size, nesting depth, text length), no panics, and errors name the element path
//! (`Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts[3]/AccptncDtTm`) and byte offset, never the
//! content. Bank B sends UTF-8 only: a body that is not UTF-8, or that declares another encoding, is
//! refused; a DOCTYPE is refused (no entity expansion).
//!
//! [`Pain002Writer`] writes the same documents (bank B's simulator: `ACTC`, `PDNG`, final
//! `ACCC`/`PART`/`RJCT` with transactions, the 400 `RJCT`), valid against `pain.002.001.10.xsd`, with
//! `OrgnlPmtInfId` = `OrgnlMsgId` (bank B's `PmtInfId` = `MsgId`).
use serde::{Deserialize, Serialize};

use super::datetime::BeijingTime;

mod read;
mod write;

pub use read::{MAX_DEPTH, MAX_TEXT_BYTES, Pain002Reader, ReadError, read_document};
pub use write::{Pain002Writer, TimeStyle, write_report};

/// `StsRsnInf/Rsn`: a code of the external list, or a proprietary one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// `Rsn/Cd` (`AC01`, `AC04`, `AM05`, `NARR`...), 1..=4 characters.
    Code(String),
    /// `Rsn/Prtry`, 1..=35 characters.
    Proprietary(String),
}

impl Reason {
    /// The code, whichever kind.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Code(c) | Self::Proprietary(c) => c,
        }
    }
}

/// One `StsRsnInf`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReason {
    /// `Rsn`, if any.
    #[serde(default)]
    pub reason: Option<Reason>,
    /// `AddtlInf` lines (each 1..=105 characters), in document order.
    #[serde(default)]
    pub additional_info: Vec<String>,
}

/// `GrpHdr` and `OrgnlGrpInfAndSts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportHeader {
    /// `GrpHdr/MsgId`: the bank's id of this report.
    pub msg_id: String,
    /// `GrpHdr/CreDtTm`, Beijing time.
    pub created: BeijingTime,
    /// `OrgnlGrpInfAndSts/OrgnlMsgId`: the gateway's `MsgId` this report is about.
    pub original_msg_id: String,
    /// `OrgnlGrpInfAndSts/OrgnlMsgNmId` (`pain.001.001.09`).
    pub original_msg_name: String,
    /// `OrgnlGrpInfAndSts/GrpSts` (`ACTC`, `PDNG`, `ACCC`, `PART`, `RJCT`...).
    #[serde(default)]
    pub group_status: Option<String>,
    /// `OrgnlGrpInfAndSts/StsRsnInf` (why a whole batch was refused).
    #[serde(default)]
    pub reasons: Vec<StatusReason>,
}

/// One `OrgnlPmtInfAndSts/TxInfAndSts`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxStatus {
    /// `OrgnlInstrId`: the item's seq as sent.
    #[serde(default)]
    pub original_instr_id: Option<String>,
    /// `OrgnlEndToEndId`: the item's reference as sent.
    #[serde(default)]
    pub original_end_to_end_id: Option<String>,
    /// `TxSts` (`ACCC`, `ACSC`, `RJCT`...).
    #[serde(default)]
    pub status: Option<String>,
    /// `StsRsnInf` (`AC01`, `AC04`, `AC06`, `BE01`, `AC14`, `NARR` + text, `AM05`).
    #[serde(default)]
    pub reasons: Vec<StatusReason>,
    /// `AccptncDtTm`: when the account bank confirmed the credit or the refusal, Beijing time.
    #[serde(default)]
    pub acceptance_time: Option<BeijingTime>,
    /// `AcctSvcrRef`: the bank's reference of the transaction.
    #[serde(default)]
    pub account_servicer_ref: Option<String>,
    /// `OrgnlTxRef/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId`: the account bank.
    #[serde(default)]
    pub creditor_agent: Option<String>,
}

/// A whole report, for documents small enough to hold at once (tests, the simulator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// Header part.
    pub header: ReportHeader,
    /// Every `TxInfAndSts`, in document order.
    #[serde(default)]
    pub transactions: Vec<TxStatus>,
}

/// What `GrpSts` says, as bank B's spec reads it. Anything else is `Unknown`: the caller maps it
/// through the bank's profile and puts what it cannot map in review, never success or failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupState {
    /// `ACTC`: accepted after technical validation; results come through the status call.
    Accepted,
    /// `PDNG`: still processing.
    Pending,
    /// `ACCC` (or `ACSC`): all credited.
    Credited,
    /// `PART`: some failed.
    Partial,
    /// `RJCT`: all failed (status call) or the batch refused (submit answer).
    Rejected,
    /// No `GrpSts`, or a code bank B's spec does not name.
    Unknown,
}

/// What `TxSts` says, as bank B's spec reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TxState {
    /// `ACCC`, or `ACSC` (some banks send it): credited.
    Credited,
    /// `RJCT`: failed — look at the reason (`AM05` is a duplicate, not a failure).
    Rejected,
    /// No `TxSts`, or a code bank B's spec does not name.
    Unknown,
}

impl ReportHeader {
    /// `GrpSts` read as bank B's spec says.
    pub fn state(&self) -> GroupState {
        match self.group_status.as_deref() {
            Some("ACTC") => GroupState::Accepted,
            Some("PDNG") => GroupState::Pending,
            Some("ACCC" | "ACSC") => GroupState::Credited,
            Some("PART") => GroupState::Partial,
            Some("RJCT") => GroupState::Rejected,
            _ => GroupState::Unknown,
        }
    }
}

impl TxStatus {
    /// `TxSts` read as bank B's spec says.
    pub fn state(&self) -> TxState {
        match self.status.as_deref() {
            Some("ACCC" | "ACSC") => TxState::Credited,
            Some("RJCT") => TxState::Rejected,
            _ => TxState::Unknown,
        }
    }

    /// The first `StsRsnInf/Rsn` code (`Cd` or `Prtry`).
    pub fn reason_code(&self) -> Option<&str> {
        self.reasons
            .iter()
            .find_map(|r| r.reason.as_ref().map(Reason::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::iso20022::{DateTimeError, InvalidValue, WriteError};

    fn created() -> BeijingTime {
        BeijingTime::new(2026, 3, 4, 10, 20, 30).expect("time")
    }

    fn report() -> StatusReport {
        let mut header = ReportHeader::about("B-1", created(), "GW-1");
        header.group_status = Some("PART".into());
        StatusReport {
            header,
            transactions: vec![
                TxStatus {
                    original_instr_id: Some("1".into()),
                    original_end_to_end_id: Some("GW-1-000001".into()),
                    status: Some("ACCC".into()),
                    reasons: vec![],
                    acceptance_time: Some(created()),
                    account_servicer_ref: Some("R1".into()),
                    creditor_agent: Some("102241000019".into()),
                },
                TxStatus {
                    original_instr_id: Some("2".into()),
                    original_end_to_end_id: Some("GW-1-000002".into()),
                    status: Some("RJCT".into()),
                    reasons: vec![StatusReason {
                        reason: Some(Reason::Code("NARR".into())),
                        additional_info: vec!["户名 & 账号不符".into()],
                    }],
                    acceptance_time: None,
                    account_servicer_ref: None,
                    creditor_agent: None,
                },
            ],
        }
    }

    #[test]
    fn round_trips_both_time_styles() {
        for style in [TimeStyle::Offset, TimeStyle::Local] {
            let doc = write_report(&report(), style).expect("write");
            assert_eq!(read_document(&doc).expect("read"), report());
        }
    }

    #[test]
    fn streams_transactions() {
        let doc = write_report(&report(), TimeStyle::Offset).expect("write");
        let mut r = Pain002Reader::new(&doc).expect("reader");
        assert_eq!(r.header().state(), GroupState::Partial);
        let first = r.next_transaction().expect("ok").expect("tx");
        assert_eq!(first.state(), TxState::Credited);
        let second = r.next_transaction().expect("ok").expect("tx");
        assert_eq!(second.state(), TxState::Rejected);
        assert_eq!(second.reason_code(), Some("NARR"));
        assert_eq!(r.next_transaction(), Ok(None));
        assert_eq!(r.next_transaction(), Ok(None));
        assert_eq!(r.transactions_read(), 2);
    }

    #[test]
    fn no_transactions_no_pmt_inf() {
        let mut header = ReportHeader::about("B-1", created(), "GW-1");
        header.group_status = Some("PDNG".into());
        let doc = write_report(
            &StatusReport {
                header,
                transactions: vec![],
            },
            TimeStyle::Local,
        )
        .expect("write");
        let s = String::from_utf8(doc.clone()).expect("utf8");
        assert!(!s.contains("OrgnlPmtInfAndSts"));
        let r = read_document(&doc).expect("read");
        assert_eq!(r.header.state(), GroupState::Pending);
        assert!(r.transactions.is_empty());
    }

    #[test]
    fn error_names_path_of_transaction() {
        let doc = write_report(&report(), TimeStyle::Offset).expect("write");
        let s = String::from_utf8(doc).expect("utf8");
        let bad = s.replacen(
            "<AccptncDtTm>2026-03-04T10:20:30",
            "<AccptncDtTm>2026-03-04T10:20:61",
            1,
        );
        let mut r = Pain002Reader::new(bad.as_bytes()).expect("reader");
        let err = r.next_transaction().expect_err("bad time");
        assert_eq!(
            err,
            ReadError::DateTime {
                path: "Document/CstmrPmtStsRpt/OrgnlPmtInfAndSts/TxInfAndSts[1]/AccptncDtTm".into(),
                offset: match &err {
                    ReadError::DateTime { offset, .. } => *offset,
                    _ => 0,
                },
                source: DateTimeError::Range { part: "second" },
            }
        );
        assert_eq!(r.next_transaction(), Err(err.clone()));
        let mut it = Pain002Reader::new(bad.as_bytes()).expect("reader");
        assert!(matches!(it.next(), Some(Err(_))));
        assert!(it.next().is_none());
    }

    #[test]
    fn writer_refuses_what_the_schema_refuses() {
        let mut r = report();
        r.transactions[1].reasons[0].reason = Some(Reason::Code("TOOLONG".into()));
        assert!(matches!(
            write_report(&r, TimeStyle::Offset),
            Err(WriteError::Transaction {
                index: 2,
                source: InvalidValue::TooLong {
                    element: "TxInfAndSts/StsRsnInf/Rsn/Cd",
                    ..
                }
            })
        ));
        let mut r = report();
        r.header.group_status = Some(String::new());
        assert!(matches!(
            write_report(&r, TimeStyle::Offset),
            Err(WriteError::Invalid(InvalidValue::Empty {
                field: "group_status",
                ..
            }))
        ));
    }
}

//! ISO 20022 XML (bank B family): `pain.001.001.09` out, `pain.002.001.10` back.
//!
//! Bank B's interface spec (`../shared/specs/bank-b-iso20022.md`) maps the gateway's batch onto the
//! official schemas (copies in `../shared/data/xsd/`). The documents are UTF-8, namespace-qualified:
//!
//! ```text
//! pain.001.001.09  (gateway -> bank, written by pain001::Pain001Writer, read by pain001::Pain001Reader
//!                   (bank B's simulator, `gateway codec decode`), both streaming)
//! Document xmlns=urn:iso:std:iso:20022:tech:xsd:pain.001.001.09
//! └─ CstmrCdtTrfInitn
//!    ├─ GrpHdr    MsgId CreDtTm NbOfTxs CtrlSum InitgPty/Nm
//!    └─ PmtInf    PmtInfId PmtMtd BtchBookg NbOfTxs CtrlSum PmtTpInf/CtgyPurp/Prtry ReqdExctnDt/Dt
//!       │         Dbtr/Nm DbtrAcct/Id/Othr/Id DbtrAgt/FinInstnId/ClrSysMmbId/MmbId
//!       └─ CdtTrfTxInf x 1..n   PmtId Amt CdtrAgt Cdtr CdtrAcct RmtInf?
//!
//! pain.002.001.10  (bank -> gateway, read by pain002::Pain002Reader, streaming; written by
//! Document xmlns[:p]=urn:iso:std:iso:20022:tech:xsd:pain.002.001.10      pain002::Pain002Writer)
//! └─ CstmrPmtStsRpt
//!    ├─ GrpHdr              MsgId CreDtTm
//!    ├─ OrgnlGrpInfAndSts   OrgnlMsgId OrgnlMsgNmId GrpSts? StsRsnInf*
//!    └─ OrgnlPmtInfAndSts*  (none while PDNG / ACTC)
//!       └─ TxInfAndSts*     OrgnlInstrId OrgnlEndToEndId TxSts StsRsnInf* AccptncDtTm AcctSvcrRef
//!                           OrgnlTxRef/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId
//! ```
//! Element order follows the XSD sequences exactly; every written value is checked against its XSD
//! type first ([`text::InvalidValue`] names the field and element that cannot be carried). Amounts are
//! integer fen written as yuan with two decimals ([`amount`]); times are Beijing time ([`datetime`]).
//! Golden documents, checked both ways: `bank-profiles/fixtures/103241000018/`.
use std::io;

pub mod amount;
pub mod datetime;
pub mod pain001;
pub mod pain002;
pub mod text;

pub use amount::{AmountError, Yuan};
pub use datetime::{BeijingTime, DateTimeError};
pub use text::InvalidValue;

/// Namespace of `pain.001.001.09` (CustomerCreditTransferInitiationV09).
pub const PAIN001_NS: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09";
/// Namespace of `pain.002.001.10` (CustomerPaymentStatusReportV10).
pub const PAIN002_NS: &str = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10";
/// Message name of `pain.001.001.09`, as `OrgnlMsgNmId` repeats it.
pub const PAIN001_NAME: &str = "pain.001.001.09";
/// Largest body bank B takes or sends (32 MiB); the reader refuses anything larger.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A header value cannot be carried (nothing was written).
    #[error("{0}")]
    Invalid(#[from] InvalidValue),
    /// A transaction's value cannot be carried (nothing of this transaction was written).
    #[error("transaction {index}: {source}")]
    Transaction {
        /// 1-based position of the transaction in the document.
        index: u64,
        /// What does not fit.
        source: InvalidValue,
    },
    /// More transactions than the header declared.
    #[error("more transactions than the {declared} declared in the header")]
    TooMany {
        /// `NbOfTxs` of the header.
        declared: u64,
    },
    /// `finish` with fewer transactions than declared.
    #[error("{written} transactions written, {declared} declared in the header")]
    CountMismatch {
        /// `NbOfTxs` of the header.
        declared: u64,
        /// Transactions written.
        written: u64,
    },
    /// The transactions' amounts do not add up to the header's control sum.
    #[error("transactions add up to {written_fen} fen, {declared_fen} declared in the header")]
    SumMismatch {
        /// `CtrlSum` of the header, in fen.
        declared_fen: u64,
        /// Sum of the amounts written, in fen (saturating).
        written_fen: u64,
    },
    /// The output failed; what was written is incomplete and must be thrown away.
    #[error("output failed: {0}")]
    Io(#[from] io::Error),
}

//! The streaming writer of `pain.002.001.10` (bank B's side; see the parent module for the layout).
use std::fmt;
use std::io::Write;

use super::{Reason, ReportHeader, StatusReason, StatusReport, TxStatus};
use crate::format::iso20022::datetime::BeijingTime;
use crate::format::iso20022::text::{InvalidValue, Out, check_text};
use crate::format::iso20022::{PAIN001_NAME, PAIN002_NS, WriteError};

/// How the writer puts times: bank B sends both forms, the reader reads both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeStyle {
    /// `2026-03-04T10:20:30+08:00`.
    #[default]
    Offset,
    /// `2026-03-04T10:20:30` (Beijing time implied).
    Local,
}

/// Element paths of one `StsRsnInf` context, for [`InvalidValue`].
struct ReasonPaths {
    field: &'static str,
    cd: &'static str,
    prtry: &'static str,
    addtl: &'static str,
}

const GROUP_REASON: ReasonPaths = ReasonPaths {
    field: "reasons",
    cd: "OrgnlGrpInfAndSts/StsRsnInf/Rsn/Cd",
    prtry: "OrgnlGrpInfAndSts/StsRsnInf/Rsn/Prtry",
    addtl: "OrgnlGrpInfAndSts/StsRsnInf/AddtlInf",
};

const TX_REASON: ReasonPaths = ReasonPaths {
    field: "reasons",
    cd: "TxInfAndSts/StsRsnInf/Rsn/Cd",
    prtry: "TxInfAndSts/StsRsnInf/Rsn/Prtry",
    addtl: "TxInfAndSts/StsRsnInf/AddtlInf",
};

fn check_reasons(reasons: &[StatusReason], p: &ReasonPaths) -> Result<(), InvalidValue> {
    for r in reasons {
        match &r.reason {
            Some(Reason::Code(c)) => check_text(c, 4, p.field, p.cd)?,
            Some(Reason::Proprietary(c)) => check_text(c, 35, p.field, p.prtry)?,
            None => {}
        }
        for line in &r.additional_info {
            check_text(line, 105, p.field, p.addtl)?;
        }
    }
    Ok(())
}

fn check_opt(
    v: &Option<String>,
    max: usize,
    field: &'static str,
    element: &'static str,
) -> Result<(), InvalidValue> {
    v.as_deref()
        .map_or(Ok(()), |v| check_text(v, max, field, element))
}

impl ReportHeader {
    /// Checks every value against its element's XSD type.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_text(&self.msg_id, 35, "msg_id", "GrpHdr/MsgId")?;
        check_text(
            &self.original_msg_id,
            35,
            "original_msg_id",
            "OrgnlGrpInfAndSts/OrgnlMsgId",
        )?;
        check_text(
            &self.original_msg_name,
            35,
            "original_msg_name",
            "OrgnlGrpInfAndSts/OrgnlMsgNmId",
        )?;
        check_opt(
            &self.group_status,
            4,
            "group_status",
            "OrgnlGrpInfAndSts/GrpSts",
        )?;
        check_reasons(&self.reasons, &GROUP_REASON)
    }
}

impl TxStatus {
    /// Checks every value against its element's XSD type.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_opt(
            &self.original_instr_id,
            35,
            "original_instr_id",
            "TxInfAndSts/OrgnlInstrId",
        )?;
        check_opt(
            &self.original_end_to_end_id,
            35,
            "original_end_to_end_id",
            "TxInfAndSts/OrgnlEndToEndId",
        )?;
        check_opt(&self.status, 4, "status", "TxInfAndSts/TxSts")?;
        check_reasons(&self.reasons, &TX_REASON)?;
        check_opt(
            &self.account_servicer_ref,
            35,
            "account_servicer_ref",
            "TxInfAndSts/AcctSvcrRef",
        )?;
        check_opt(
            &self.creditor_agent,
            35,
            "creditor_agent",
            "TxInfAndSts/OrgnlTxRef/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId",
        )
    }
}

fn time_text(t: BeijingTime, style: TimeStyle) -> String {
    match style {
        TimeStyle::Offset => format!("{t}+08:00"),
        TimeStyle::Local => t.to_string(),
    }
}

fn write_reasons(o: &mut Out<'_>, depth: usize, reasons: &[StatusReason]) {
    for r in reasons {
        o.open(depth, "StsRsnInf");
        if let Some(reason) = &r.reason {
            o.open(depth + 1, "Rsn");
            match reason {
                Reason::Code(c) => o.leaf(depth + 2, "Cd", c),
                Reason::Proprietary(c) => o.leaf(depth + 2, "Prtry", c),
            }
            o.close(depth + 1, "Rsn");
        }
        for line in &r.additional_info {
            o.leaf(depth + 1, "AddtlInf", line);
        }
        o.close(depth, "StsRsnInf");
    }
}

/// Streaming writer of one `pain.002.001.10` document (bank B's side).
///
/// ```text
/// Pain002Writer::new(out, &header, TimeStyle::Offset)?   GrpHdr, OrgnlGrpInfAndSts
///     .transaction(&tx)?  x n                           OrgnlPmtInfAndSts opened at the first one
///     .finish()?                                        closing tags, returns `out`
/// ```
/// No transaction: no `OrgnlPmtInfAndSts` at all (`ACTC`, `PDNG`, the 400 `RJCT`).
pub struct Pain002Writer<W: Write> {
    out: W,
    buf: String,
    original_msg_id: String,
    style: TimeStyle,
    written: u64,
}

impl<W: Write> fmt::Debug for Pain002Writer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pain002Writer")
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Pain002Writer<W> {
    /// Checks the header and writes everything up to the transactions.
    pub fn new(mut out: W, header: &ReportHeader, style: TimeStyle) -> Result<Self, WriteError> {
        header.validate()?;
        let mut buf = String::with_capacity(2048);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"");
        buf.push_str(PAIN002_NS);
        buf.push_str("\">\n");
        let mut o = Out { buf: &mut buf };
        o.open(1, "CstmrPmtStsRpt");
        o.open(2, "GrpHdr");
        o.leaf(3, "MsgId", &header.msg_id);
        o.leaf(3, "CreDtTm", &time_text(header.created, style));
        o.close(2, "GrpHdr");
        o.open(2, "OrgnlGrpInfAndSts");
        o.leaf(3, "OrgnlMsgId", &header.original_msg_id);
        o.leaf(3, "OrgnlMsgNmId", &header.original_msg_name);
        if let Some(s) = &header.group_status {
            o.leaf(3, "GrpSts", s);
        }
        write_reasons(&mut o, 3, &header.reasons);
        o.close(2, "OrgnlGrpInfAndSts");
        out.write_all(buf.as_bytes())?;
        buf.clear();
        Ok(Self {
            out,
            buf,
            original_msg_id: header.original_msg_id.clone(),
            style,
            written: 0,
        })
    }

    /// Checks and writes one `TxInfAndSts`.
    pub fn transaction(&mut self, tx: &TxStatus) -> Result<(), WriteError> {
        let index = self.written + 1;
        tx.validate()
            .map_err(|source| WriteError::Transaction { index, source })?;
        self.buf.clear();
        let mut o = Out { buf: &mut self.buf };
        if self.written == 0 {
            o.open(2, "OrgnlPmtInfAndSts");
            o.leaf(3, "OrgnlPmtInfId", &self.original_msg_id);
        }
        o.open(3, "TxInfAndSts");
        if let Some(v) = &tx.original_instr_id {
            o.leaf(4, "OrgnlInstrId", v);
        }
        if let Some(v) = &tx.original_end_to_end_id {
            o.leaf(4, "OrgnlEndToEndId", v);
        }
        if let Some(v) = &tx.status {
            o.leaf(4, "TxSts", v);
        }
        write_reasons(&mut o, 4, &tx.reasons);
        if let Some(t) = tx.acceptance_time {
            o.leaf(4, "AccptncDtTm", &time_text(t, self.style));
        }
        if let Some(v) = &tx.account_servicer_ref {
            o.leaf(4, "AcctSvcrRef", v);
        }
        if let Some(v) = &tx.creditor_agent {
            o.open(4, "OrgnlTxRef");
            o.open(5, "CdtrAgt");
            o.open(6, "FinInstnId");
            o.open(7, "ClrSysMmbId");
            o.leaf(8, "MmbId", v);
            o.close(7, "ClrSysMmbId");
            o.close(6, "FinInstnId");
            o.close(5, "CdtrAgt");
            o.close(4, "OrgnlTxRef");
        }
        o.close(3, "TxInfAndSts");
        self.out.write_all(self.buf.as_bytes())?;
        self.written = index;
        Ok(())
    }

    /// Closes the document, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        if self.written > 0 {
            self.out.write_all(b"    </OrgnlPmtInfAndSts>\n")?;
        }
        self.out.write_all(b"  </CstmrPmtStsRpt>\n</Document>\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes a whole report into memory.
pub fn write_report(report: &StatusReport, style: TimeStyle) -> Result<Vec<u8>, WriteError> {
    let mut w = Pain002Writer::new(
        Vec::with_capacity(1024 + report.transactions.len() * 700),
        &report.header,
        style,
    )?;
    for tx in &report.transactions {
        w.transaction(tx)?;
    }
    w.finish()
}

/// A header for a report about `original_msg_id` (a pain.001.001.09), with no status yet.
impl ReportHeader {
    /// A header with `OrgnlMsgNmId` = `pain.001.001.09`, no `GrpSts`, no reasons.
    pub fn about(msg_id: &str, created: BeijingTime, original_msg_id: &str) -> Self {
        Self {
            msg_id: msg_id.to_owned(),
            created,
            original_msg_id: original_msg_id.to_owned(),
            original_msg_name: PAIN001_NAME.to_owned(),
            group_status: None,
            reasons: Vec::new(),
        }
    }
}

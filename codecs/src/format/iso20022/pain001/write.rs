//! The streaming writer of `pain.001.001.09` (see the parent module for the layout).
use std::fmt::{self, Write as _};
use std::io::Write;

use super::{GroupHeader, PaymentInfo, RecipientKind, Transaction};
use crate::format::iso20022::amount::Yuan;
use crate::format::iso20022::text::{Out, escape_into};
use crate::format::iso20022::{PAIN001_NS, WriteError};

/// Streaming writer of one `pain.001.001.09` document.
///
/// ```text
/// Pain001Writer::new(out, &header, &payment)?   declaration, GrpHdr, PmtInf up to the first transaction
///     .transaction(&tx)?  x nb_of_txs           one CdtTrfTxInf each
///     .finish()?                                closing tags, checks count and sum, returns `out`
/// ```
/// Each call writes whole elements with one `write_all`; after an error the output is incomplete and
/// must be thrown away.
pub struct Pain001Writer<W: Write> {
    out: W,
    buf: String,
    declared: u64,
    ctrl_sum_fen: u64,
    written: u64,
    sum_fen: u64,
}

impl<W: Write> fmt::Debug for Pain001Writer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pain001Writer")
            .field("declared", &self.declared)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Pain001Writer<W> {
    /// Checks the header and payment info and writes everything before the first transaction.
    pub fn new(
        mut out: W,
        header: &GroupHeader,
        payment: &PaymentInfo,
    ) -> Result<Self, WriteError> {
        header.validate()?;
        payment.validate()?;
        let mut buf = String::with_capacity(4096);
        buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"");
        buf.push_str(PAIN001_NS);
        buf.push_str("\">\n");
        let mut o = Out { buf: &mut buf };
        o.open(1, "CstmrCdtTrfInitn");
        o.open(2, "GrpHdr");
        o.leaf(3, "MsgId", &header.msg_id);
        o.leaf(3, "CreDtTm", &header.created);
        let count = header.nb_of_txs.to_string();
        let sum = Yuan(header.ctrl_sum_fen).to_string();
        o.leaf(3, "NbOfTxs", &count);
        o.leaf(3, "CtrlSum", &sum);
        o.open(3, "InitgPty");
        o.leaf(4, "Nm", &header.initiating_party);
        o.close(3, "InitgPty");
        o.close(2, "GrpHdr");
        o.open(2, "PmtInf");
        o.leaf(3, "PmtInfId", &header.msg_id);
        o.leaf(3, "PmtMtd", "TRF");
        o.leaf(3, "BtchBookg", "true");
        o.leaf(3, "NbOfTxs", &count);
        o.leaf(3, "CtrlSum", &sum);
        o.open(3, "PmtTpInf");
        o.open(4, "CtgyPurp");
        o.leaf(5, "Prtry", &payment.subsidy_code);
        o.close(4, "CtgyPurp");
        o.close(3, "PmtTpInf");
        o.open(3, "ReqdExctnDt");
        o.leaf(4, "Dt", &payment.execution_date);
        o.close(3, "ReqdExctnDt");
        o.open(3, "Dbtr");
        o.leaf(4, "Nm", &payment.payer_name);
        o.close(3, "Dbtr");
        o.open(3, "DbtrAcct");
        other_id(&mut o, 4, &payment.payer_account);
        o.close(3, "DbtrAcct");
        o.open(3, "DbtrAgt");
        member_id(&mut o, 4, &payment.payer_bank_code);
        o.close(3, "DbtrAgt");
        out.write_all(buf.as_bytes())?;
        buf.clear();
        Ok(Self {
            out,
            buf,
            declared: header.nb_of_txs,
            ctrl_sum_fen: header.ctrl_sum_fen,
            written: 0,
            sum_fen: 0,
        })
    }

    /// Checks and writes one `CdtTrfTxInf`.
    pub fn transaction(&mut self, tx: &Transaction) -> Result<(), WriteError> {
        let index = self.written + 1;
        tx.validate()
            .map_err(|source| WriteError::Transaction { index, source })?;
        if self.written >= self.declared {
            return Err(WriteError::TooMany {
                declared: self.declared,
            });
        }
        let sum = self.sum_fen.saturating_add(tx.amount_fen);
        if sum > self.ctrl_sum_fen {
            return Err(WriteError::SumMismatch {
                declared_fen: self.ctrl_sum_fen,
                written_fen: sum,
            });
        }
        self.buf.clear();
        write_transaction(&mut Out { buf: &mut self.buf }, tx);
        self.out.write_all(self.buf.as_bytes())?;
        self.written = index;
        self.sum_fen = sum;
        Ok(())
    }

    /// Transactions written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Checks count and sum against the header, closes the document, flushes and returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        if self.written != self.declared {
            return Err(WriteError::CountMismatch {
                declared: self.declared,
                written: self.written,
            });
        }
        if self.sum_fen != self.ctrl_sum_fen {
            return Err(WriteError::SumMismatch {
                declared_fen: self.ctrl_sum_fen,
                written_fen: self.sum_fen,
            });
        }
        self.out
            .write_all(b"    </PmtInf>\n  </CstmrCdtTrfInitn>\n</Document>\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes a whole document into memory (the transactions' count and sum must match the header).
pub fn write_document(
    header: &GroupHeader,
    payment: &PaymentInfo,
    transactions: &[Transaction],
) -> Result<Vec<u8>, WriteError> {
    let mut w = Pain001Writer::new(
        Vec::with_capacity(2048 + transactions.len() * 1200),
        header,
        payment,
    )?;
    for tx in transactions {
        w.transaction(tx)?;
    }
    w.finish()
}

/// `Id/Othr/Id` of a `CashAccount38`.
fn other_id(o: &mut Out<'_>, depth: usize, id: &str) {
    o.open(depth, "Id");
    o.open(depth + 1, "Othr");
    o.leaf(depth + 2, "Id", id);
    o.close(depth + 1, "Othr");
    o.close(depth, "Id");
}

/// `FinInstnId/ClrSysMmbId/MmbId` of a `BranchAndFinancialInstitutionIdentification6`.
fn member_id(o: &mut Out<'_>, depth: usize, code: &str) {
    o.open(depth, "FinInstnId");
    o.open(depth + 1, "ClrSysMmbId");
    o.leaf(depth + 2, "MmbId", code);
    o.close(depth + 1, "ClrSysMmbId");
    o.close(depth, "FinInstnId");
}

fn write_transaction(o: &mut Out<'_>, tx: &Transaction) {
    o.open(3, "CdtTrfTxInf");
    o.open(4, "PmtId");
    o.leaf_with(5, "InstrId", "", |b| {
        let _ = write!(b, "{}", tx.seq);
    });
    o.leaf(5, "EndToEndId", &tx.end_to_end_id);
    o.close(4, "PmtId");
    o.open(4, "Amt");
    o.leaf_with(5, "InstdAmt", " Ccy=\"CNY\"", |b| {
        let _ = write!(b, "{}", Yuan(tx.amount_fen));
    });
    o.close(4, "Amt");
    o.open(4, "CdtrAgt");
    member_id(o, 5, &tx.account_bank_code);
    o.close(4, "CdtrAgt");
    o.open(4, "Cdtr");
    o.leaf(5, "Nm", &tx.name);
    o.open(5, "Id");
    let (kind, scheme) = match tx.recipient_kind {
        RecipientKind::Person => ("PrvtId", "RESIDENT-ID"),
        RecipientKind::Unit => ("OrgId", "USCC"),
    };
    o.open(6, kind);
    o.open(7, "Othr");
    o.leaf(8, "Id", &tx.id_no);
    o.open(8, "SchmeNm");
    o.leaf(9, "Prtry", scheme);
    o.close(8, "SchmeNm");
    o.close(7, "Othr");
    o.close(6, kind);
    o.close(5, "Id");
    o.open(5, "CtctDtls");
    o.leaf_with(6, "MobNb", "", |b| {
        b.push_str("+86-");
        escape_into(b, &tx.phone);
    });
    o.close(5, "CtctDtls");
    o.close(4, "Cdtr");
    o.open(4, "CdtrAcct");
    other_id(o, 5, &tx.account_no);
    o.open(5, "Tp");
    o.leaf(6, "Prtry", tx.account_kind.code());
    o.close(5, "Tp");
    o.close(4, "CdtrAcct");
    if !tx.memo.is_empty() {
        o.open(4, "RmtInf");
        o.leaf(5, "Ustrd", &tx.memo);
        o.close(4, "RmtInf");
    }
    o.close(3, "CdtTrfTxInf");
}

#[cfg(test)]
mod tests {
    use super::super::test_data::*;
    use super::*;
    use crate::format::iso20022::InvalidValue;
    #[test]
    fn writes_header_and_transactions_in_order() {
        let doc =
            write_document(&header(2, 300), &payment(), &[tx(1, 100), tx(2, 200)]).expect("write");
        let s = String::from_utf8(doc).expect("utf8");
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.001.001.09\">\n"));
        assert!(s.contains("<CtrlSum>3.00</CtrlSum>"));
        assert!(s.contains("<InstdAmt Ccy=\"CNY\">1.00</InstdAmt>"));
        assert!(s.contains("<MobNb>+86-14597919074</MobNb>"));
        let order = [
            "<PmtId>",
            "<Amt>",
            "<CdtrAgt>",
            "<Cdtr>",
            "<CdtrAcct>",
            "<RmtInf>",
        ];
        let at: Vec<usize> = order.iter().map(|t| s.find(t).expect(t)).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{at:?}");
        assert!(s.ends_with("</Document>\n"));
    }

    #[test]
    fn escapes_and_leaves_out_empty_memo() {
        let mut t = tx(1, 1);
        t.name = "A&B <Co>".into();
        t.memo.clear();
        let s = String::from_utf8(write_document(&header(1, 1), &payment(), &[t]).expect("write"))
            .expect("utf8");
        assert!(s.contains("<Nm>A&amp;B &lt;Co&gt;</Nm>"));
        assert!(!s.contains("RmtInf"));
    }

    #[test]
    fn checks_counts_and_sums() {
        let mut w = Pain001Writer::new(Vec::new(), &header(2, 300), &payment()).expect("new");
        w.transaction(&tx(1, 100)).expect("tx");
        assert!(matches!(
            w.finish(),
            Err(WriteError::CountMismatch {
                declared: 2,
                written: 1
            })
        ));
        let mut w = Pain001Writer::new(Vec::new(), &header(1, 300), &payment()).expect("new");
        w.transaction(&tx(1, 300)).expect("tx");
        assert!(matches!(
            w.transaction(&tx(2, 0)),
            Err(WriteError::TooMany { declared: 1 })
        ));
        let mut w = Pain001Writer::new(Vec::new(), &header(2, 300), &payment()).expect("new");
        assert!(matches!(
            w.transaction(&tx(1, 301)),
            Err(WriteError::SumMismatch {
                declared_fen: 300,
                written_fen: 301
            })
        ));
        let mut w = Pain001Writer::new(Vec::new(), &header(2, 300), &payment()).expect("new");
        w.transaction(&tx(1, 100)).expect("tx");
        w.transaction(&tx(2, 100)).expect("tx");
        assert!(matches!(w.finish(), Err(WriteError::SumMismatch { .. })));
        let mut bad = tx(1, 1);
        bad.name = "a\nb".into();
        let mut w = Pain001Writer::new(Vec::new(), &header(1, 1), &payment()).expect("new");
        assert!(matches!(
            w.transaction(&bad),
            Err(WriteError::Transaction {
                index: 1,
                source: InvalidValue::Character { position: 2, .. }
            })
        ));
    }
}

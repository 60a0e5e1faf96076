//! `pain.001.001.09` (CustomerCreditTransferInitiationV09): the batch the gateway sends to bank B,
//! written by the gateway ([`Pain001Writer`]) and read by bank B's simulator and `gateway codec decode`
//! ([`Pain001Reader`]).
//!
//! One `PmtInf` holding N `CdtTrfTxInf`, elements in the XSD's sequence order, two-space indentation,
//! LF line ends, UTF-8 with an XML declaration:
//!
//! ```text
//! <?xml version="1.0" encoding="UTF-8"?>
//! <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">
//!   <CstmrCdtTrfInitn>
//!     <GrpHdr>      MsgId, CreDtTm, NbOfTxs, CtrlSum, InitgPty/Nm (department code)
//!     <PmtInf>      PmtInfId (= MsgId), PmtMtd TRF, BtchBookg true, NbOfTxs, CtrlSum,
//!                   PmtTpInf/CtgyPurp/Prtry (subsidy code), ReqdExctnDt/Dt, Dbtr/Nm,
//!                   DbtrAcct/Id/Othr/Id, DbtrAgt/FinInstnId/ClrSysMmbId/MmbId
//!       <CdtTrfTxInf> x N
//!         PmtId/InstrId (seq), PmtId/EndToEndId
//!         Amt/InstdAmt Ccy="CNY" (yuan, 2 decimals)
//!         CdtrAgt/FinInstnId/ClrSysMmbId/MmbId (account bank)
//!         Cdtr: Nm, Id/PrvtId/Othr (Id + SchmeNm/Prtry RESIDENT-ID)     person
//!                   Id/OrgId/Othr  (Id + SchmeNm/Prtry USCC)            unit
//!               CtctDtls/MobNb "+86-" phone
//!         CdtrAcct: Id/Othr/Id, Tp/Prtry SSC | CORP | PERS
//!         RmtInf/Ustrd memo (left out when empty)
//! ```
//! [`Pain001Writer`] streams: the header counts are given up front (the gateway knows them from its
//! store), each transaction is checked and written as it comes, `finish` checks count and sum. Values
//! are checked against their XSD types (and bank B's 12-digit bank codes) before anything is written:
//! call the `validate` methods at intake to refuse an item the document could not carry.
//!
//! [`Pain001Reader`] is the other direction, streaming too: it reads the header part when created and
//! then hands out one [`Transaction`] at a time, into the same types the writer takes (amounts in fen),
//! so whatever it returns the writer can write again. See [`read`] for what it accepts and refuses.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::amount::AmountError;
use super::datetime::{BeijingTime, check_date};
use super::text::{InvalidValue, check_ascii, check_text};

pub mod read;
mod write;

pub use read::{Pain001Reader, ReadError, read_document};
pub use write::{Pain001Writer, write_document};

/// Largest amount the schema's decimal types hold with two decimals (`totalDigits 18`), in fen.
pub const MAX_AMOUNT_FEN: u64 = 999_999_999_999_999_999;
/// Largest `NbOfTxs` (`Max15NumericText`).
pub const MAX_NB_OF_TXS: u64 = 999_999_999_999_999;

/// `GrpHdr`: what the whole document carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupHeader {
    /// `GrpHdr/MsgId` and `PmtInf/PmtInfId`: the gateway's reference of the bank batch (max 35).
    pub msg_id: String,
    /// `GrpHdr/CreDtTm`: `YYYY-MM-DDThh:mm:ss`, Beijing time, no fraction, no offset.
    pub created: String,
    /// `GrpHdr/NbOfTxs` and `PmtInf/NbOfTxs`: how many transactions follow (at least one).
    pub nb_of_txs: u64,
    /// `GrpHdr/CtrlSum` and `PmtInf/CtrlSum`: their sum, in fen.
    pub ctrl_sum_fen: u64,
    /// `GrpHdr/InitgPty/Nm`: the department code.
    pub initiating_party: String,
}

/// `PmtInf`: the payer side, shared by all transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInfo {
    /// `PmtTpInf/CtgyPurp/Prtry`: the subsidy code.
    pub subsidy_code: String,
    /// `ReqdExctnDt/Dt`: `YYYY-MM-DD`, the day of sending.
    pub execution_date: String,
    /// `Dbtr/Nm`: payer account name.
    pub payer_name: String,
    /// `DbtrAcct/Id/Othr/Id`: payer account.
    pub payer_account: String,
    /// `DbtrAgt/FinInstnId/ClrSysMmbId/MmbId`: the payout bank's code (12 digits).
    pub payer_bank_code: String,
}

/// Whether the recipient is a person or a unit (decides the kind of `Cdtr/Id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    /// `Cdtr/Id/PrvtId/Othr`, scheme `RESIDENT-ID`.
    Person,
    /// `Cdtr/Id/OrgId/Othr`, scheme `USCC` (unified social credit code).
    Unit,
}

/// The recipient account's kind, `CdtrAcct/Tp/Prtry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// `SSC`: social security card account.
    Ssc,
    /// `CORP`: corporate account.
    Corporate,
    /// `PERS`: other personal account.
    Personal,
}

impl AccountKind {
    /// The `Prtry` code bank B expects.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ssc => "SSC",
            Self::Corporate => "CORP",
            Self::Personal => "PERS",
        }
    }
}

/// One `CdtTrfTxInf`. Field names follow the gateway's item; `Debug` masks the personal fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// `PmtId/InstrId`: the item's seq.
    pub seq: u64,
    /// `PmtId/EndToEndId`: the item's reference at the bank (max 35), paid at most once.
    pub end_to_end_id: String,
    /// `Amt/InstdAmt` (`Ccy="CNY"`), in fen.
    pub amount_fen: u64,
    /// `CdtrAgt/FinInstnId/ClrSysMmbId/MmbId`: the account bank's code (12 digits).
    pub account_bank_code: String,
    /// `Cdtr/Nm`: recipient name.
    pub name: String,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// `Cdtr/Id/PrvtId/Othr/Id` (resident ID) or `Cdtr/Id/OrgId/Othr/Id` (USCC).
    pub id_no: String,
    /// `Cdtr/CtctDtls/MobNb`, written as `+86-` and this.
    pub phone: String,
    /// `CdtrAcct/Id/Othr/Id`: recipient account.
    pub account_no: String,
    /// `CdtrAcct/Tp/Prtry`.
    pub account_kind: AccountKind,
    /// `RmtInf/Ustrd`; left out when empty.
    #[serde(default)]
    pub memo: String,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MASKED: &str = "***";
        f.debug_struct("Transaction")
            .field("seq", &self.seq)
            .field("end_to_end_id", &self.end_to_end_id)
            .field("amount_fen", &self.amount_fen)
            .field("account_bank_code", &self.account_bank_code)
            .field("name", &MASKED)
            .field("recipient_kind", &self.recipient_kind)
            .field("id_no", &MASKED)
            .field("phone", &MASKED)
            .field("account_no", &MASKED)
            .field("account_kind", &self.account_kind)
            .field("memo", &MASKED)
            .finish()
    }
}

const PHONE_EXPECTED: &str = "1 to 30 of 0-9 ( ) + - (PhoneNumber after `+86-`)";
const BANK_CODE_EXPECTED: &str = "12 digits";
const DATETIME_EXPECTED: &str = "a date and time YYYY-MM-DDThh:mm:ss (no fraction, no offset)";
const DATE_EXPECTED: &str = "a date YYYY-MM-DD";

fn check_bank_code(
    v: &str,
    field: &'static str,
    element: &'static str,
) -> Result<(), InvalidValue> {
    if v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        if v.is_empty() {
            return Err(InvalidValue::Empty { field, element });
        }
        return Err(InvalidValue::Format {
            field,
            element,
            expected: BANK_CODE_EXPECTED,
        });
    }
    Ok(())
}

fn check_amount(fen: u64, field: &'static str, element: &'static str) -> Result<(), InvalidValue> {
    if fen > MAX_AMOUNT_FEN {
        return Err(InvalidValue::Amount {
            field,
            element,
            source: AmountError::Overflow {
                max_fen: MAX_AMOUNT_FEN,
            },
        });
    }
    Ok(())
}

impl GroupHeader {
    /// Checks every value against its element's XSD type.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_text(&self.msg_id, 35, "msg_id", "GrpHdr/MsgId")?;
        if BeijingTime::parse_local(&self.created).is_err() {
            return Err(InvalidValue::Format {
                field: "created",
                element: "GrpHdr/CreDtTm",
                expected: DATETIME_EXPECTED,
            });
        }
        if self.nb_of_txs == 0 || self.nb_of_txs > MAX_NB_OF_TXS {
            return Err(InvalidValue::Format {
                field: "nb_of_txs",
                element: "GrpHdr/NbOfTxs",
                expected: "1 to 999999999999999 transactions",
            });
        }
        check_amount(self.ctrl_sum_fen, "ctrl_sum_fen", "GrpHdr/CtrlSum")?;
        check_text(
            &self.initiating_party,
            140,
            "initiating_party",
            "GrpHdr/InitgPty/Nm",
        )
    }
}

impl PaymentInfo {
    /// Checks every value against its element's XSD type (and bank B's 12-digit bank code).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_text(
            &self.subsidy_code,
            35,
            "subsidy_code",
            "PmtInf/PmtTpInf/CtgyPurp/Prtry",
        )?;
        if check_date(&self.execution_date).is_err() {
            return Err(InvalidValue::Format {
                field: "execution_date",
                element: "PmtInf/ReqdExctnDt/Dt",
                expected: DATE_EXPECTED,
            });
        }
        check_text(&self.payer_name, 140, "payer_name", "PmtInf/Dbtr/Nm")?;
        check_text(
            &self.payer_account,
            34,
            "payer_account",
            "PmtInf/DbtrAcct/Id/Othr/Id",
        )?;
        check_bank_code(
            &self.payer_bank_code,
            "payer_bank_code",
            "PmtInf/DbtrAgt/FinInstnId/ClrSysMmbId/MmbId",
        )
    }
}

impl Transaction {
    /// Checks every value against its element's XSD type (and bank B's 12-digit bank code): an item
    /// that fails here cannot be sent to bank B (`E-ITEM-UNENCODABLE`, naming [`InvalidValue::field`]).
    pub fn validate(&self) -> Result<(), InvalidValue> {
        check_text(
            &self.end_to_end_id,
            35,
            "end_to_end_id",
            "CdtTrfTxInf/PmtId/EndToEndId",
        )?;
        check_amount(self.amount_fen, "amount_fen", "CdtTrfTxInf/Amt/InstdAmt")?;
        check_bank_code(
            &self.account_bank_code,
            "account_bank_code",
            "CdtTrfTxInf/CdtrAgt/FinInstnId/ClrSysMmbId/MmbId",
        )?;
        check_text(&self.name, 140, "name", "CdtTrfTxInf/Cdtr/Nm")?;
        let id_element = match self.recipient_kind {
            RecipientKind::Person => "CdtTrfTxInf/Cdtr/Id/PrvtId/Othr/Id",
            RecipientKind::Unit => "CdtTrfTxInf/Cdtr/Id/OrgId/Othr/Id",
        };
        check_text(&self.id_no, 35, "id_no", id_element)?;
        check_ascii(
            &self.phone,
            30,
            |b| b.is_ascii_digit() || b"()+-".contains(&b),
            "phone",
            "CdtTrfTxInf/Cdtr/CtctDtls/MobNb",
            PHONE_EXPECTED,
        )?;
        check_text(
            &self.account_no,
            34,
            "account_no",
            "CdtTrfTxInf/CdtrAcct/Id/Othr/Id",
        )?;
        if !self.memo.is_empty() {
            check_text(&self.memo, 140, "memo", "CdtTrfTxInf/RmtInf/Ustrd")?;
        }
        Ok(())
    }
}

/// A whole document: what [`write_document`] takes and [`read_document`] returns, in the shape of the
/// golden fixtures' `.input.json` and of `gateway codec encode|decode --kind pain001`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// `GrpHdr`.
    pub header: GroupHeader,
    /// `PmtInf` up to its transactions.
    pub payment: PaymentInfo,
    /// Every `CdtTrfTxInf`, in document order.
    pub transactions: Vec<Transaction>,
}

impl Document {
    /// The document's bytes, as [`write_document`] writes them.
    pub fn write(&self) -> Result<Vec<u8>, super::WriteError> {
        write_document(&self.header, &self.payment, &self.transactions)
    }
}

#[cfg(test)]
pub(crate) mod test_data {
    //! Values shared by the writer's and the reader's unit tests.
    use super::*;

    pub(crate) fn header(n: u64, sum: u64) -> GroupHeader {
        GroupHeader {
            msg_id: "GW-20260303-0001".into(),
            created: "2026-03-03T09:15:00".into(),
            nb_of_txs: n,
            ctrl_sum_fen: sum,
            initiating_party: "220623-NYNC".into(),
        }
    }

    pub(crate) fn payment() -> PaymentInfo {
        PaymentInfo {
            subsidy_code: "NY001".into(),
            execution_date: "2026-03-03".into(),
            payer_name: "县财政局惠民惠农代发专户".into(),
            payer_account: "0711012345678901".into(),
            payer_bank_code: "103241000018".into(),
        }
    }

    pub(crate) fn tx(seq: u64, fen: u64) -> Transaction {
        Transaction {
            seq,
            end_to_end_id: format!("GW-20260303-0001-{seq:06}"),
            amount_fen: fen,
            account_bank_code: "102241000019".into(),
            name: "郝桂".into(),
            recipient_kind: RecipientKind::Person,
            id_no: "220203196602074567".into(),
            phone: "14597919074".into(),
            account_no: "6217995505724754105".into(),
            account_kind: AccountKind::Ssc,
            memo: "8月".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::*;
    use super::*;
    #[test]
    fn validation_names_field_and_element() {
        let mut t = tx(1, 1);
        t.end_to_end_id = "X".repeat(36);
        assert_eq!(
            t.validate(),
            Err(InvalidValue::TooLong {
                field: "end_to_end_id",
                element: "CdtTrfTxInf/PmtId/EndToEndId",
                len: 36,
                max: 35
            })
        );
        let mut t = tx(1, 1);
        t.phone = "139 1234 5678".into();
        assert!(matches!(
            t.validate(),
            Err(InvalidValue::Format { field: "phone", .. })
        ));
        let mut t = tx(1, 1);
        t.recipient_kind = RecipientKind::Unit;
        t.id_no.clear();
        assert_eq!(
            t.validate(),
            Err(InvalidValue::Empty {
                field: "id_no",
                element: "CdtTrfTxInf/Cdtr/Id/OrgId/Othr/Id"
            })
        );
        let mut t = tx(1, 1);
        t.account_bank_code = "10224100001".into();
        assert!(matches!(
            t.validate(),
            Err(InvalidValue::Format {
                field: "account_bank_code",
                ..
            })
        ));
        let mut t = tx(1, MAX_AMOUNT_FEN + 1);
        assert!(matches!(
            t.validate(),
            Err(InvalidValue::Amount {
                field: "amount_fen",
                ..
            })
        ));
        t.amount_fen = MAX_AMOUNT_FEN;
        assert_eq!(t.validate(), Ok(()));
        let mut h = header(1, 1);
        h.created = "2026-03-03T09:15:00+08:00".into();
        assert!(matches!(
            h.validate(),
            Err(InvalidValue::Format {
                field: "created",
                ..
            })
        ));
        h = header(0, 0);
        assert!(matches!(
            h.validate(),
            Err(InvalidValue::Format {
                field: "nb_of_txs",
                ..
            })
        ));
        let mut p = payment();
        p.execution_date = "2026-02-30".into();
        assert!(matches!(
            p.validate(),
            Err(InvalidValue::Format {
                field: "execution_date",
                ..
            })
        ));
    }

    #[test]
    fn debug_masks_personal_fields() {
        let s = format!("{:?}", tx(1, 1));
        for secret in [
            "郝桂",
            "220203196602074567",
            "14597919074",
            "6217995505724754105",
        ] {
            assert!(!s.contains(secret), "{s}");
        }
    }
}

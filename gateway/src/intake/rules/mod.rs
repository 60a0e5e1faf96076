//! The rules of rules.md, one module per family. Each item rule returns the first failing code in the
//! order of rules.md's code table; duplicate claims need the store and are applied by the intake.
pub mod batch;
pub mod identity;

use crate::domain::{AccountKind, RecipientKind};
use crate::intake::parse::ItemIn;

/// A rule failure: a stable `E-*` code and a readable message (never the personal data itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `E-*` code.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

impl Violation {
    /// A violation of item `seq`.
    pub fn item(code: &'static str, seq: i64, what: impl AsRef<str>) -> Self {
        Self {
            code,
            message: format!("item {seq}: {}", what.as_ref()),
        }
    }
}

/// Codes, in the order rules.md gives them (the first failing one is reported).
pub mod codes {
    /// Blacklisted id or account.
    pub const BLACKLISTED: &str = "E-ITEM-BLACKLISTED";
    /// Bad id.
    pub const ID_INVALID: &str = "E-ITEM-ID-INVALID";
    /// Bad account.
    pub const ACCOUNT_INVALID: &str = "E-ITEM-ACCOUNT-INVALID";
    /// Bad amount.
    pub const AMOUNT: &str = "E-ITEM-AMOUNT";
    /// Unit on a personal account.
    pub const UNIT_PERSONAL: &str = "E-ACCT-UNIT-PERSONAL";
    /// Duplicate claim.
    pub const DUPLICATE: &str = "E-ITEM-DUPLICATE";
    /// Not carried by the bank's interface.
    pub const UNENCODABLE: &str = "E-ITEM-UNENCODABLE";
    /// Payout bank not eligible.
    pub const BANK_NOT_ELIGIBLE: &str = "E-BANK-NOT-ELIGIBLE";
    /// Prior-year roster.
    pub const PRIOR_YEAR: &str = "E-BATCH-PRIOR-YEAR";
    /// Indicator or supervised flag.
    pub const INDICATOR: &str = "E-BATCH-INDICATOR";
    /// Header totals.
    pub const TOTALS: &str = "E-BATCH-TOTALS";
    /// Every item rejected.
    pub const EMPTY: &str = "E-BATCH-EMPTY";
    /// Same batch_no, other body.
    pub const CONFLICT: &str = "E-BATCH-CONFLICT";
    /// Unreadable request.
    pub const REQUEST_INVALID: &str = "E-REQUEST-INVALID";
    /// Body too large.
    pub const TOO_LARGE: &str = "E-REQUEST-TOO-LARGE";
    /// Person not on a social security card.
    pub const W_ACCT_NOT_SSC: &str = "W-ACCT-NOT-SSC";
    /// Batch not started on its funds day.
    pub const W_START_LATE: &str = "W-START-LATE";
    /// Failed item neither corrected nor returned in 2 working days.
    pub const W_FAILED_NOT_HANDLED: &str = "W-FAILED-NOT-HANDLED";
    /// Result needs an operator.
    pub const W_RESULT_REVIEW: &str = "W-RESULT-REVIEW";
}

/// The item rules that need nothing but the item and the blacklist, in code-table order (blacklist,
/// id, account, amount, unit on personal account). The id number is normalised first (`x` -> `X`).
pub fn check_item(
    it: &mut ItemIn,
    blacklisted: impl Fn(&str, &str) -> bool,
) -> Result<Vec<Violation>, Violation> {
    if it.recipient_kind == RecipientKind::Person {
        it.id_no = identity::normalise_resident_id(&it.id_no);
    }
    if blacklisted("id_no", &it.id_no) {
        return Err(Violation::item(
            codes::BLACKLISTED,
            it.seq,
            "id_no is on the blacklist",
        ));
    }
    if blacklisted("account_no", &it.account_no) {
        return Err(Violation::item(
            codes::BLACKLISTED,
            it.seq,
            "account_no is on the blacklist",
        ));
    }
    let id = match it.recipient_kind {
        RecipientKind::Person => identity::check_resident_id(&it.id_no),
        RecipientKind::Unit => identity::check_uscc(&it.id_no),
    };
    id.map_err(|m| Violation::item(codes::ID_INVALID, it.seq, m))?;
    let acct = match it.account_kind {
        AccountKind::Ssc | AccountKind::Personal => identity::check_card_account(&it.account_no),
        AccountKind::Corporate => identity::check_corporate_account(&it.account_no),
    };
    acct.map_err(|m| Violation::item(codes::ACCOUNT_INVALID, it.seq, m))?;
    if it.amount_fen <= 0 {
        return Err(Violation::item(
            codes::AMOUNT,
            it.seq,
            "amount_fen must be a positive integer of fen",
        ));
    }
    if it.recipient_kind == RecipientKind::Unit && it.account_kind != AccountKind::Corporate {
        return Err(Violation::item(
            codes::UNIT_PERSONAL,
            it.seq,
            format!(
                "a unit must be paid to a corporate account, not `{}`",
                it.account_kind.as_str()
            ),
        ));
    }
    let mut warnings = Vec::new();
    if it.recipient_kind == RecipientKind::Person
        && it.account_kind != AccountKind::Ssc
        && !it.ssc_exempt
    {
        warnings.push(Violation::item(
            codes::W_ACCT_NOT_SSC,
            it.seq,
            format!(
                "a person paid to a `{}` account, not a social security card",
                it.account_kind.as_str()
            ),
        ));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> ItemIn {
        ItemIn {
            seq: 7,
            recipient_kind: RecipientKind::Person,
            name: "郝桂".into(),
            id_no: "220203196602074567".into(),
            account_no: "6217995505724754105".into(),
            account_kind: AccountKind::Ssc,
            account_bank_code: "102241000019".into(),
            amount_fen: 100,
            phone: "14597919074".into(),
            ssc_exempt: false,
            memo: String::new(),
        }
    }

    fn none(_: &str, _: &str) -> bool {
        false
    }

    #[test]
    fn first_failing_code_wins() {
        let mut it = item();
        it.id_no = "220203196602074568".into();
        it.amount_fen = 0;
        assert_eq!(
            check_item(&mut it, none).expect_err("bad").code,
            codes::ID_INVALID
        );
        let mut it = item();
        it.amount_fen = 0;
        it.account_no = "6217995505724754106".into();
        assert_eq!(
            check_item(&mut it, none).expect_err("bad").code,
            codes::ACCOUNT_INVALID
        );
        let mut it = item();
        it.amount_fen = -5;
        assert_eq!(
            check_item(&mut it, |k, _| k == "account_no")
                .expect_err("bad")
                .code,
            codes::BLACKLISTED
        );
    }

    #[test]
    fn unit_on_personal_account_and_non_ssc_warning() {
        let mut it = item();
        it.recipient_kind = RecipientKind::Unit;
        it.id_no = "93220623P73R84RHW4".into();
        assert_eq!(
            check_item(&mut it, none).expect_err("unit").code,
            codes::UNIT_PERSONAL
        );
        let mut it = item();
        it.account_kind = AccountKind::Personal;
        assert_eq!(
            check_item(&mut it, none).expect("ok")[0].code,
            codes::W_ACCT_NOT_SSC
        );
        it.ssc_exempt = true;
        assert!(check_item(&mut it, none).expect("ok").is_empty());
    }

    #[test]
    fn lowercase_x_is_stored_upper() {
        let mut it = item();
        it.id_no = "11010519491231002x".into();
        check_item(&mut it, none).expect("ok");
        assert_eq!(it.id_no, "11010519491231002X");
    }
}

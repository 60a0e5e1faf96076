//! Rows as the store hands them over. Personal fields are `Pii` types.
use crate::domain::{
    AccountKind, AccountNo, IdNo, ItemStatus, Name, PartState, Phone, RecipientKind,
};

/// A new batch row.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// Our id.
    pub batch_id: String,
    /// The platform's id.
    pub batch_no: String,
    /// Canonical body hash.
    pub body_hash: String,
    /// Re-issue: the batch corrected.
    pub parent_batch_id: Option<String>,
    /// Line department.
    pub department_code: String,
    /// Region.
    pub region_code: String,
    /// Subsidy code.
    pub subsidy_code: String,
    /// Subsidy name.
    pub subsidy_name: String,
    /// Budget year.
    pub budget_year: i64,
    /// Period.
    pub period: String,
    /// Indicator number.
    pub indicator_no: String,
    /// Payout bank code.
    pub payout_bank: String,
    /// Payout account.
    pub payer_account_no: String,
    /// Payout account name.
    pub payer_account_name: String,
    /// `YYYY-MM-DD`.
    pub funds_arrived_on: String,
    /// Header count.
    pub total_count: i64,
    /// Header amount.
    pub total_amount_fen: i64,
    /// Creation time.
    pub created_at: i64,
    /// Submitted after the funds day.
    pub start_late: bool,
}

/// A batch as stored.
#[derive(Debug, Clone)]
pub struct BatchRow {
    /// Our id.
    pub batch_id: String,
    /// The platform's id.
    pub batch_no: String,
    /// Canonical body hash.
    pub body_hash: String,
    /// Re-issue parent.
    pub parent_batch_id: Option<String>,
    /// Line department.
    pub department_code: String,
    /// Region.
    pub region_code: String,
    /// Subsidy code.
    pub subsidy_code: String,
    /// Subsidy name.
    pub subsidy_name: String,
    /// Budget year.
    pub budget_year: i64,
    /// Period.
    pub period: String,
    /// Payout bank.
    pub payout_bank: String,
    /// Payout account.
    pub payer_account_no: String,
    /// Payout account name.
    pub payer_account_name: String,
    /// Funds day.
    pub funds_arrived_on: String,
    /// Accepted items.
    pub accepted_count: i64,
    /// Accepted amount.
    pub accepted_amount_fen: i64,
    /// Rejected items.
    pub rejected_count: i64,
    /// Original answer (JSON text).
    pub answer: String,
    /// Created.
    pub created_at: i64,
    /// All parts accepted.
    pub sent_at: Option<i64>,
    /// All items final.
    pub final_at: Option<i64>,
}

/// A new item row.
#[derive(Debug, Clone)]
pub struct NewItem {
    /// Sequence number.
    pub seq: i64,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// Name.
    pub name: Name,
    /// Id number (normalised).
    pub id_no: IdNo,
    /// Account number.
    pub account_no: AccountNo,
    /// Account kind.
    pub account_kind: AccountKind,
    /// Account bank.
    pub account_bank_code: String,
    /// Amount.
    pub amount_fen: i64,
    /// Phone.
    pub phone: Phone,
    /// SSC exemption.
    pub ssc_exempt: bool,
    /// Memo.
    pub memo: String,
    /// `pending` or `rejected`.
    pub status: ItemStatus,
    /// Rejection code.
    pub reject_code: Option<String>,
    /// Rejection message.
    pub reject_message: Option<String>,
    /// Part.
    pub part_id: Option<String>,
    /// The claim an accepted item holds (a person paid once per subsidy and period).
    pub claim_key: Option<crate::keys::ClaimKey>,
    /// Re-issue: the item replaced.
    pub replaces: Option<(String, i64)>,
}

/// What a bank's request carries of an item, read to encode it: a part's items stream through this
/// (no status, results or batch columns; about a third of an [`ItemRow`]).
#[derive(Debug, Clone)]
pub struct OutgoingItem {
    /// Sequence number.
    pub seq: i64,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// Name.
    pub name: Name,
    /// Id number.
    pub id_no: IdNo,
    /// Account number.
    pub account_no: AccountNo,
    /// Account kind.
    pub account_kind: AccountKind,
    /// Account bank (submitted).
    pub account_bank_code: String,
    /// Amount.
    pub amount_fen: i64,
    /// Phone.
    pub phone: Phone,
    /// Memo.
    pub memo: String,
}

/// What reconciling a bank's answer needs of an item it was sent: only the account is opened.
#[derive(Debug, Clone)]
pub struct SentItem {
    /// Sequence number.
    pub seq: i64,
    /// Amount.
    pub amount_fen: i64,
    /// Account number.
    pub account_no: AccountNo,
    /// Account bank.
    pub account_bank_code: String,
}

/// An item as stored.
#[derive(Debug, Clone)]
pub struct ItemRow {
    /// Batch.
    pub batch_id: String,
    /// Sequence number.
    pub seq: i64,
    /// Person or unit.
    pub recipient_kind: RecipientKind,
    /// Name.
    pub name: Name,
    /// Id number.
    pub id_no: IdNo,
    /// Account number.
    pub account_no: AccountNo,
    /// Account kind.
    pub account_kind: AccountKind,
    /// Account bank (submitted).
    pub account_bank_code: String,
    /// Amount.
    pub amount_fen: i64,
    /// Phone.
    pub phone: Phone,
    /// SSC exemption.
    pub ssc_exempt: bool,
    /// Memo.
    pub memo: String,
    /// Status.
    pub status: ItemStatus,
    /// Rejection code.
    pub reject_code: Option<String>,
    /// Rejection message.
    pub reject_message: Option<String>,
    /// Part.
    pub part_id: Option<String>,
    /// Bank's item code.
    pub result_code: Option<String>,
    /// Failure code.
    pub fail_code: Option<String>,
    /// Failure text.
    pub fail_reason: Option<String>,
    /// Account bank as reported.
    pub result_bank_code: Option<String>,
    /// Confirmation time.
    pub confirmed_at: Option<i64>,
    /// Bank transaction reference.
    pub bank_txn_no: Option<String>,
    /// When the final result arrived.
    pub final_at: Option<i64>,
    /// The bank reference of its part.
    pub bank_ref: Option<String>,
}

/// A new part.
#[derive(Debug, Clone)]
pub struct NewPart {
    /// Id.
    pub part_id: String,
    /// Bank reference.
    pub bank_ref: String,
    /// 0-based number in the batch.
    pub part_no: i64,
    /// Items.
    pub item_count: i64,
    /// Amount.
    pub amount_fen: i64,
}

/// A part as stored.
#[derive(Debug, Clone)]
pub struct PartRow {
    /// Id.
    pub part_id: String,
    /// Batch.
    pub batch_id: String,
    /// Payout bank.
    pub bank_code: String,
    /// Bank reference.
    pub bank_ref: String,
    /// Number in the batch.
    pub part_no: i64,
    /// Items.
    pub item_count: i64,
    /// Amount.
    pub amount_fen: i64,
    /// State.
    pub state: PartState,
    /// Send attempts.
    pub attempts: i64,
    /// Polls made.
    pub polls: i64,
    /// Bank's batch id.
    pub bank_batch_id: Option<String>,
    /// Accepted at.
    pub accepted_at: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
}

/// The click.
#[derive(Debug, Clone)]
pub struct QueryRow {
    /// Id.
    pub query_id: String,
    /// Batch.
    pub batch_id: String,
    /// Clicked.
    pub clicked_at: i64,
    /// Deadline.
    pub due_at: i64,
    /// `running` or `final`.
    pub status: String,
    /// Fed back.
    pub fed_back_at: Option<i64>,
    /// Late.
    pub late: bool,
}

/// One item's final result, reconciled.
#[derive(Debug, Clone)]
pub struct ItemResult {
    /// Sequence number.
    pub seq: i64,
    /// New status (`succeeded`, `failed` or `review`).
    pub status: ItemStatus,
    /// The bank's item code.
    pub result_code: String,
    /// Failure code (failed/review).
    pub fail_code: Option<String>,
    /// Failure text.
    pub fail_reason: Option<String>,
    /// Account bank.
    pub result_bank_code: String,
    /// Confirmation time.
    pub confirmed_at: Option<i64>,
    /// Bank transaction reference.
    pub bank_txn_no: Option<String>,
}

/// A platform event.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Unique id.
    pub event_id: String,
    /// Type.
    pub kind: String,
    /// When.
    pub at: i64,
    /// Batch.
    pub batch_id: Option<String>,
    /// Item.
    pub seq: Option<i64>,
    /// Bank.
    pub bank_code: Option<String>,
    /// `W-*` code.
    pub code: Option<String>,
    /// Data (JSON text).
    pub data: String,
}

impl EventRow {
    /// A new event of `kind` at `at` about `bank`, with a fresh unique id.
    pub fn new(kind: &str, at: i64, bank: &str, data: serde_json::Value) -> Self {
        Self {
            event_id: crate::domain::ids::new_id("e"),
            kind: kind.into(),
            at,
            batch_id: None,
            seq: None,
            bank_code: Some(bank.to_owned()),
            code: None,
            data: data.to_string(),
        }
    }

    /// About this batch.
    pub fn batch(mut self, batch_id: &str) -> Self {
        self.batch_id = Some(batch_id.to_owned());
        self
    }

    /// About this item of the batch.
    pub fn item(mut self, seq: Option<i64>) -> Self {
        self.seq = seq;
        self
    }

    /// With a `W-*` code.
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }
}

/// A blacklist entry.
#[derive(Debug, Clone)]
pub struct BlacklistRow {
    /// Id.
    pub entry_id: String,
    /// `id_no` or `account_no`.
    pub kind: String,
    /// The value.
    pub value: String,
    /// Why.
    pub reason: String,
    /// Who.
    pub added_by: String,
    /// When.
    pub added_at: i64,
}

/// An audit record.
#[derive(Debug, Clone)]
pub struct AuditRow {
    /// Number.
    pub audit_no: i64,
    /// When.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// Role.
    pub role: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Detail (JSON text).
    pub detail: String,
    /// Hash of the record before it in the chain (`None` before the chain started).
    pub prev_hash: Option<String>,
    /// This record's hash (`None` before the chain started).
    pub hash: Option<String>,
}

/// Item counts of a batch by status, and amounts.
#[derive(Debug, Clone, Default)]
pub struct BatchCounts {
    /// By status.
    pub by_status: std::collections::BTreeMap<String, i64>,
    /// Succeeded amount.
    pub succeeded_fen: i64,
    /// Failed amount.
    pub failed_fen: i64,
}

//! Failed and review items: `.../correction` (re-issue), `.../return` (to the treasury), `.../resolve`
//! (an operator settles a review item).
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::clock::date_str;
use crate::config::Role;
use crate::domain::{AccountKind, ItemStatus, Pii, ids};
use crate::intake::parse::ItemIn;
use crate::intake::rules::{self, codes};
use crate::store::{EventRow, NewAudit, NewBatch, NewItem, NewPart};

fn body<T>(b: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    b.map(|Json(t)| t)
        .map_err(|r| ApiError::invalid(r.body_text()))
}

fn event(
    now: i64,
    kind: &str,
    batch_id: &str,
    seq: Option<i64>,
    bank: &str,
    data: Value,
) -> EventRow {
    EventRow::new(kind, now, bank, data)
        .batch(batch_id)
        .item(seq)
}

/// The batch and one of its items, or 404.
async fn load_item(
    app: &crate::app::App,
    batch_id: &str,
    seq: i64,
) -> ApiResult<(crate::store::BatchRow, crate::store::ItemRow)> {
    let batch = app
        .store
        .get_batch(batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id}")))?;
    let item = app
        .store
        .get_item(batch_id, seq)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no item {seq} in batch {batch_id}")))?;
    Ok((batch, item))
}

/// A correction of a failed item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    account_no: String,
    account_kind: AccountKind,
    account_bank_code: String,
    name: String,
}

/// `POST /v1/batches/{batch_id}/items/{seq}/correction` (submitter, admin).
pub async fn correct(
    State(st): State<ApiState>,
    caller: Caller,
    Path((batch_id, seq)): Path<(String, i64)>,
    b: Result<Json<Correction>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Admin])?;
    let c = body(b)?;
    let app = &st.app;
    let (batch, item) = load_item(app, &batch_id, seq).await?;
    if item.status != ItemStatus::Failed {
        return Err(ApiError::conflict(
            "E-ITEM-STATE",
            format!("item {seq} is {}, not failed", item.status),
        ));
    }
    if c.account_bank_code.len() != 12 || !c.account_bank_code.bytes().all(|x| x.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "account_bank_code: must be a 12-digit bank code",
        ));
    }
    if c.name.trim().is_empty() {
        return Err(ApiError::invalid("name: must not be empty"));
    }
    let mut corrected = ItemIn {
        seq,
        recipient_kind: item.recipient_kind,
        name: c.name.clone(),
        id_no: item.id_no.expose().to_owned(),
        account_no: c.account_no.clone(),
        account_kind: c.account_kind,
        account_bank_code: c.account_bank_code.clone(),
        amount_fen: item.amount_fen,
        phone: item.phone.expose().to_owned(),
        ssc_exempt: item.ssc_exempt,
        memo: item.memo.clone(),
    };
    let blacklist = app.store.blacklist_hashes().await?;
    let refuse = |v: rules::Violation| ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: v.code,
        message: v.message,
        details: Vec::new(),
    };
    let warnings = rules::check_item(&mut corrected, |kind, value| {
        !blacklist.is_empty()
            && blacklist.contains(&format!("{kind}:{}", app.lookup.hash(&[kind, value])))
    })
    .map_err(refuse)?;
    let bank = app.banks.get(&batch.payout_bank).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::BANK_NOT_ELIGIBLE,
            "the payout bank is no longer configured",
        )
    })?;
    if let Err((field, problem)) = bank.link.check_item(&corrected) {
        return Err(refuse(rules::Violation::item(
            codes::UNENCODABLE,
            seq,
            format!("{field}: {problem}"),
        )));
    }
    let now = app.clock.now_ms();
    let reissue_id = ids::new_id("b");
    let new_batch = NewBatch {
        batch_id: reissue_id.clone(),
        batch_no: format!("{}#R{seq}#{}", batch.batch_no, &reissue_id[2..]),
        body_hash: String::new(),
        parent_batch_id: Some(batch_id.clone()),
        department_code: batch.department_code.clone(),
        region_code: batch.region_code.clone(),
        subsidy_code: batch.subsidy_code.clone(),
        subsidy_name: batch.subsidy_name.clone(),
        budget_year: batch.budget_year,
        period: batch.period.clone(),
        indicator_no: app.store.batch_indicator(&batch_id).await?,
        payout_bank: batch.payout_bank.clone(),
        payer_account_no: batch.payer_account_no.clone(),
        payer_account_name: batch.payer_account_name.clone(),
        funds_arrived_on: date_str(app.clock.today()),
        total_count: 1,
        total_amount_fen: item.amount_fen,
        created_at: now,
        start_late: false,
    };
    let part = NewPart {
        part_id: ids::new_id("p"),
        bank_ref: ids::new_bank_ref(),
        part_no: 0,
        item_count: 1,
        amount_fen: item.amount_fen,
    };
    let new_item = NewItem {
        seq,
        recipient_kind: item.recipient_kind,
        name: Pii::new(corrected.name.clone()),
        id_no: item.id_no.clone(),
        account_no: Pii::new(corrected.account_no.clone()),
        account_kind: corrected.account_kind,
        account_bank_code: corrected.account_bank_code.clone(),
        amount_fen: item.amount_fen,
        phone: item.phone.clone(),
        ssc_exempt: item.ssc_exempt,
        memo: item.memo.clone(),
        status: ItemStatus::Pending,
        reject_code: None,
        reject_message: None,
        part_id: Some(part.part_id.clone()),
        claim_key: None,
        replaces: Some((batch_id.clone(), seq)),
    };
    let item_ref = format!("{reissue_id}/{seq}");
    let answer = json!({"item_ref": item_ref, "reissue_batch_id": reissue_id, "status": "pending",
        "warnings": warnings.iter().map(|w| json!({"seq": seq, "code": w.code, "message": w.message})).collect::<Vec<_>>()});
    let events = vec![
        event(
            now,
            "item.corrected",
            &batch_id,
            Some(seq),
            &bank.code,
            json!({"reissue_batch_id": reissue_id}),
        ),
        event(
            now,
            "batch.accepted",
            &reissue_id,
            None,
            &bank.code,
            json!({"parent_batch_id": batch_id, "accepted_count": 1, "reissue_of_seq": seq}),
        ),
    ];
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "item-correct",
        format!("{batch_id}/{seq}"),
        json!({"reissue_batch_id": reissue_id, "account_no": Pii::<crate::domain::pii::AccountKindMask>::new(c.account_no).masked()}).to_string(),
    );
    if !app
        .store
        .reissue(
            (&batch_id, seq),
            &new_batch,
            &new_item,
            &part,
            &bank.code,
            &answer.to_string(),
            &events,
            &audit,
        )
        .await?
    {
        return Err(ApiError::conflict(
            "E-ITEM-STATE",
            format!("item {seq} is no longer failed"),
        ));
    }
    app.work.notify_waiters();
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// A return to the treasury.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Return {
    reason: String,
}

/// `POST /v1/batches/{batch_id}/items/{seq}/return` (submitter, admin).
pub async fn give_back(
    State(st): State<ApiState>,
    caller: Caller,
    Path((batch_id, seq)): Path<(String, i64)>,
    b: Result<Json<Return>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Admin])?;
    let r = body(b)?;
    if r.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason: must not be empty"));
    }
    let app = &st.app;
    let (batch, item) = load_item(app, &batch_id, seq).await?;
    let now = app.clock.now_ms();
    let ev = event(
        now,
        "item.returned",
        &batch_id,
        Some(seq),
        &batch.payout_bank,
        json!({"reason": r.reason, "amount_fen": item.amount_fen}),
    );
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "item-return",
        format!("{batch_id}/{seq}"),
        json!({"reason": r.reason}).to_string(),
    );
    if !app
        .store
        .settle_item(
            &batch_id,
            seq,
            ItemStatus::Failed,
            ItemStatus::Returned,
            &r.reason,
            now,
            &[ev],
            &audit,
        )
        .await?
    {
        return Err(ApiError::conflict(
            "E-ITEM-STATE",
            format!("item {seq} is {}, not failed", item.status),
        ));
    }
    Ok((
        StatusCode::OK,
        Json(json!({"batch_id": batch_id, "seq": seq, "status": "returned"})),
    )
        .into_response())
}

/// An operator's resolution of a review item.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    status: String,
    reason: String,
}

/// `POST /v1/batches/{batch_id}/items/{seq}/resolve` (admin).
pub async fn resolve(
    State(st): State<ApiState>,
    caller: Caller,
    Path((batch_id, seq)): Path<(String, i64)>,
    b: Result<Json<Resolve>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let r = body(b)?;
    let to = match r.status.as_str() {
        "succeeded" => ItemStatus::Succeeded,
        "failed" => ItemStatus::Failed,
        other => {
            return Err(ApiError::invalid(format!(
                "status: unknown value `{other}` (succeeded or failed)"
            )));
        }
    };
    if r.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason: must not be empty"));
    }
    let app = &st.app;
    let (batch, item) = load_item(app, &batch_id, seq).await?;
    let now = app.clock.now_ms();
    let mut events = vec![event(
        now,
        "item.resolved",
        &batch_id,
        Some(seq),
        &batch.payout_bank,
        json!({"status": to.as_str(), "reason": r.reason}),
    )];
    if to == ItemStatus::Failed {
        events.push(event(
            now,
            "item.failed",
            &batch_id,
            Some(seq),
            &batch.payout_bank,
            json!({"fail_code": item.fail_code, "resolved_by": caller.actor}),
        ));
    }
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "item-resolve",
        format!("{batch_id}/{seq}"),
        json!({"status": to.as_str(), "reason": r.reason}).to_string(),
    );
    if !app
        .store
        .settle_item(
            &batch_id,
            seq,
            ItemStatus::Review,
            to,
            &r.reason,
            now,
            &events,
            &audit,
        )
        .await?
    {
        return Err(ApiError::conflict(
            "E-ITEM-STATE",
            format!("item {seq} is {}, not review", item.status),
        ));
    }
    Ok((
        StatusCode::OK,
        Json(json!({"batch_id": batch_id, "seq": seq, "status": to.as_str()})),
    )
        .into_response())
}

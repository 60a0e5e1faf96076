//! `/v1/batches`: submit, read, items, query (the click).
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::io::StreamReader;

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::clock::rfc3339;
use crate::config::Role;
use crate::domain::{BatchStatus, ItemStatus, PartState, ids};
use crate::intake::{self, IntakeError, rules::codes};
use crate::store::{BatchRow, ItemRow, QueryRow};

fn intake_error(e: IntakeError) -> ApiError {
    match e {
        IntakeError::Invalid(s) => ApiError::invalid(s.to_string()),
        IntakeError::Refused {
            status,
            code,
            message,
            details,
        } => ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            code,
            message,
            details,
        },
        IntakeError::TooLarge(limit) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            format!("body larger than {limit} bytes"),
        ),
        IntakeError::Io(e) => ApiError::invalid(format!("the body could not be read: {e}")),
        IntakeError::Store(e) => ApiError::internal(e),
    }
}

/// `POST /v1/batches` (submitter, admin): JSON or NDJSON.
pub async fn submit(
    State(st): State<ApiState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Admin])?;
    let ctype = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let cfg = &st.app.config.server;
    let accepted = match ctype.as_str() {
        "application/json" => {
            let limited = http_body_util::Limited::new(body, cfg.max_json_bytes);
            let bytes = match limited.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(intake_error(IntakeError::TooLarge(cfg.max_json_bytes)));
                }
                Err(e) => {
                    return Err(ApiError::invalid(format!(
                        "the body could not be read: {e}"
                    )));
                }
            };
            intake::take_in(&st.app, intake::Body::Json(&bytes), cfg.max_ndjson_bytes).await
        }
        "application/x-ndjson" | "application/ndjson" => {
            let stream = TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other);
            let reader = tokio::io::BufReader::with_capacity(256 * 1024, StreamReader::new(stream));
            intake::take_in(
                &st.app,
                intake::Body::Ndjson(Box::new(reader)),
                cfg.max_ndjson_bytes,
            )
            .await
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::REQUEST_INVALID,
                format!("Content-Type `{other}`: send application/json or application/x-ndjson"),
            ));
        }
    }
    .map_err(intake_error)?;
    let status = StatusCode::from_u16(accepted.status).unwrap_or(StatusCode::ACCEPTED);
    Ok((status, Json(accepted.body)).into_response())
}

fn batch_status(b: &BatchRow, parts: &[crate::store::PartRow]) -> BatchStatus {
    if b.final_at.is_some() {
        BatchStatus::Final
    } else if b.sent_at.is_some() {
        BatchStatus::Sent
    } else if parts.iter().any(|p| p.state != PartState::Pending) {
        BatchStatus::Sending
    } else {
        BatchStatus::Accepted
    }
}

fn query_json(q: &QueryRow) -> Value {
    json!({
        "query_id": q.query_id,
        "clicked_at": rfc3339(q.clicked_at),
        "due_at": rfc3339(q.due_at),
        "fed_back_at": q.fed_back_at.map(rfc3339),
        "late": q.late,
    })
}

async fn load(st: &ApiState, batch_id: &str) -> ApiResult<BatchRow> {
    st.app
        .store
        .get_batch(batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id}")))
}

/// `GET /v1/batches/{batch_id}`.
pub async fn read(
    State(st): State<ApiState>,
    caller: Caller,
    Path(batch_id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let b = load(&st, &batch_id).await?;
    let parts = st.app.store.batch_parts(&batch_id).await?;
    let counts = st.app.store.batch_counts(&batch_id).await?;
    let query = st.app.store.get_query(&batch_id).await?;
    let n = |s: &str| counts.by_status.get(s).copied().unwrap_or(0);
    Ok(Json(json!({
        "batch_id": b.batch_id,
        "batch_no": b.batch_no,
        "department_code": b.department_code,
        "payout_bank": b.payout_bank,
        "status": batch_status(&b, &parts).as_str(),
        "counts": {
            "accepted": b.accepted_count, "rejected": n("rejected"), "pending": n("pending"), "sent": n("sent"),
            "succeeded": n("succeeded"), "failed": n("failed"), "review": n("review"), "corrected": n("corrected"),
            "returned": n("returned"),
        },
        "amounts_fen": {"accepted": b.accepted_amount_fen, "succeeded": counts.succeeded_fen, "failed": counts.failed_fen},
        "parts": parts.iter().map(|p| json!({
            "bank_ref": p.bank_ref, "items": p.item_count, "state": p.state.api_str(),
        })).collect::<Vec<_>>(),
        "query": query.as_ref().map(query_json),
        "funds_arrived_on": b.funds_arrived_on,
        "created_at": rfc3339(b.created_at),
        "sent_at": b.sent_at.map(rfc3339),
        "final_at": b.final_at.map(rfc3339),
    })))
}

/// Query string of the items listing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemsQuery {
    status: Option<String>,
    after_seq: Option<i64>,
    limit: Option<i64>,
}

fn item_json(i: &ItemRow, reveal: bool) -> Value {
    let pii = |exposed: &str, masked: String| if reveal { exposed.to_owned() } else { masked };
    let final_ = matches!(
        i.status,
        ItemStatus::Succeeded
            | ItemStatus::Failed
            | ItemStatus::Review
            | ItemStatus::Corrected
            | ItemStatus::Returned
    ) && i.final_at.is_some();
    let mut v = json!({
        "seq": i.seq,
        "recipient_kind": i.recipient_kind.as_str(),
        "name": pii(i.name.expose(), i.name.masked()),
        "id_no": pii(i.id_no.expose(), i.id_no.masked()),
        "account_no": pii(i.account_no.expose(), i.account_no.masked()),
        "account_kind": i.account_kind.as_str(),
        "account_bank_code": if final_ { i.result_bank_code.clone().unwrap_or_else(|| i.account_bank_code.clone()) } else { i.account_bank_code.clone() },
        "amount_fen": i.amount_fen,
        "phone": pii(i.phone.expose(), i.phone.masked()),
        "ssc_exempt": i.ssc_exempt,
        "memo": i.memo,
        "status": i.status.as_str(),
    });
    if let Some(obj) = v.as_object_mut() {
        if final_ {
            obj.insert("confirmed_at".into(), json!(i.confirmed_at.map(rfc3339)));
            obj.insert("bank_ref".into(), json!(i.bank_ref));
            obj.insert("bank_txn_no".into(), json!(i.bank_txn_no));
        }
        if matches!(i.status, ItemStatus::Failed | ItemStatus::Review)
            || (final_ && i.fail_code.is_some())
        {
            obj.insert("fail_code".into(), json!(i.fail_code));
            obj.insert("fail_reason".into(), json!(i.fail_reason));
        }
        if i.status == ItemStatus::Rejected {
            obj.insert("reject_code".into(), json!(i.reject_code));
            obj.insert("reject_message".into(), json!(i.reject_message));
        }
    }
    v
}

/// `GET /v1/batches/{batch_id}/items?status=&after_seq=&limit=`.
pub async fn items(
    State(st): State<ApiState>,
    caller: Caller,
    Path(batch_id): Path<String>,
    q: Result<Query<ItemsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            ItemStatus::parse(s)
                .ok_or_else(|| ApiError::invalid(format!("status: unknown value `{s}`")))?,
        ),
    };
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit: must be 1 to 10000"));
    }
    let after = q.after_seq.unwrap_or(0);
    load(&st, &batch_id).await?;
    let rows = st
        .app
        .store
        .list_items(&batch_id, status, after, limit)
        .await?;
    let reveal = caller.sees_pii();
    // A read in full is recorded, and the record committed, before the answer is built: if the
    // record cannot be written, the caller gets the error and not the data.
    if reveal && !rows.is_empty() {
        st.app
            .store
            .audit(
                st.app.clock.now_ms(),
                &caller.actor,
                caller.role.as_str(),
                "read-personal-data",
                &format!("batch {batch_id} items"),
                &json!({"after_seq": after, "limit": limit, "items": rows.len()}).to_string(),
            )
            .await?;
    }
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(json!({
        "items": rows.iter().map(|r| item_json(r, reveal)).collect::<Vec<_>>(),
        "next_after_seq": next,
    })))
}

/// `POST /v1/batches/{batch_id}/query`: the department's click; starts the SLA clock once.
pub async fn query(
    State(st): State<ApiState>,
    caller: Caller,
    Path(batch_id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Admin])?;
    let b = load(&st, &batch_id).await?;
    let q = match st.app.store.get_query(&batch_id).await? {
        Some(q) => q,
        None => {
            let now = st.app.clock.now_ms();
            let fresh = QueryRow {
                query_id: ids::new_id("q"),
                batch_id: batch_id.clone(),
                clicked_at: now,
                due_at: st.app.deadline.due_ms(now, &st.app.calendar),
                status: "running".into(),
                fed_back_at: None,
                late: false,
            };
            st.app.store.click(&fresh, b.final_at).await?
        }
    };
    let mut body = query_json(&q);
    let final_ = q.status == "final";
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "status".into(),
            json!(if final_ { "final" } else { "running" }),
        );
    }
    let status = if final_ {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(body)).into_response())
}

//! `GET /v1/batches/{batch_id}/notices`: the SMS notices of a batch and their states (an extension of
//! the platform API; see `docs/sms.md`). Notices carry no personal data: the item's seq names them.
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::{ApiError, ApiResult, ApiState};
use crate::clock::rfc3339;
use crate::config::Role;

/// Paging.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesQuery {
    after_seq: Option<i64>,
    limit: Option<i64>,
}

/// The notices of a batch, in seq order, with counts by state.
pub async fn list(
    State(st): State<ApiState>,
    caller: Caller,
    Path(batch_id): Path<String>,
    q: Result<Query<NoticesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("limit: must be 1 to 10000"));
    }
    let after = q.after_seq.unwrap_or(0);
    st.app
        .store
        .get_batch(&batch_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no batch {batch_id}")))?;
    let rows = st.app.store.batch_notices(&batch_id, after, limit).await?;
    let counts: serde_json::Map<String, Value> = st
        .app
        .store
        .notice_counts(Some(&batch_id))
        .await?
        .into_iter()
        .map(|(s, n)| (s, json!(n)))
        .collect();
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(json!({
        "counts": counts,
        "notices": rows.iter().map(|n| json!({
            "seq": n.seq,
            "state": n.state,
            "parts": n.parts,
            "message_ids": n.message_ids.as_deref().map(|m| m.split(' ').collect::<Vec<_>>()),
            "submitted_at": n.submitted_at.map(rfc3339),
            "receipts": n.receipts,
            "final_stat": n.final_stat,
            "final_at": n.final_at.map(rfc3339),
            "attempts": n.attempts,
            "last_error": n.last_error,
        })).collect::<Vec<_>>(),
        "next_after_seq": next,
    })))
}

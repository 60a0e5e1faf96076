//! `/v1/events` (the outbox, oldest first) and `/v1/audit`.
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::clock::rfc3339;
use crate::config::Role;

/// Paging of events.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/events?after=<event_id>&limit=500`.
pub async fn list(
    State(st): State<ApiState>,
    caller: Caller,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(500);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::invalid("limit: must be 1 to 5000"));
    }
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let rows = st
        .app
        .store
        .list_events(after, limit)
        .await?
        .ok_or_else(|| ApiError::invalid("after: no such event_id"))?;
    let next = rows
        .last()
        .map(|e| e.event_id.clone())
        .or_else(|| after.map(str::to_owned));
    Ok(Json(json!({
        "events": rows.iter().map(crate::events::event_json).collect::<Vec<_>>(),
        "next_after": next,
    })))
}

/// Paging of the audit log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/audit?after=<audit_no>` (auditor, admin).
pub async fn audit(
    State(st): State<ApiState>,
    caller: Caller,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let rows = st.app.store.list_audit(q.after.unwrap_or(0), limit).await?;
    Ok(Json(json!({
        "records": rows.iter().map(|r| json!({
            "audit_no": r.audit_no, "at": rfc3339(r.at), "actor": r.actor, "role": r.role, "action": r.action,
            "target": r.target, "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            "prev_hash": r.prev_hash, "hash": r.hash,
        })).collect::<Vec<_>>(),
        "next_after": rows.last().map(|r| r.audit_no),
    })))
}

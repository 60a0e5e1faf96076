//! `/v1/blacklist` (admin): ids and accounts never to be paid, with who added each and why.
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::clock::rfc3339;
use crate::config::Role;
use crate::domain::{AccountNo, IdNo, ids};
use crate::store::{BlacklistRow, NewAudit};

/// A new entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    kind: String,
    value: String,
    reason: String,
}

fn masked(kind: &str, value: &str) -> String {
    match kind {
        "id_no" => IdNo::new(value).masked(),
        _ => AccountNo::new(value).masked(),
    }
}

/// `GET /v1/blacklist`: the values in full, so a read of full personal data, recorded (and committed)
/// before the answer leaves.
pub async fn list(State(st): State<ApiState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Admin])?;
    let rows = st.app.store.list_blacklist().await?;
    if !rows.is_empty() {
        st.app
            .store
            .audit(
                st.app.clock.now_ms(),
                &caller.actor,
                caller.role.as_str(),
                "read-personal-data",
                "blacklist",
                &json!({"entries": rows.len()}).to_string(),
            )
            .await?;
    }
    Ok(Json(json!({
        "entries": rows.iter().map(|r| json!({
            "entry_id": r.entry_id, "kind": r.kind, "value": r.value, "reason": r.reason,
            "added_by": r.added_by, "added_at": rfc3339(r.added_at),
        })).collect::<Vec<_>>()
    })))
}

/// `POST /v1/blacklist`.
pub async fn add(
    State(st): State<ApiState>,
    caller: Caller,
    body: Result<Json<NewEntry>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let Json(e) = body.map_err(|r| ApiError::invalid(r.body_text()))?;
    let value = match e.kind.as_str() {
        "id_no" => crate::intake::rules::identity::normalise_resident_id(e.value.trim()),
        "account_no" => e.value.trim().to_owned(),
        other => {
            return Err(ApiError::invalid(format!(
                "kind: unknown value `{other}` (id_no or account_no)"
            )));
        }
    };
    if value.is_empty() || value.chars().count() > 64 {
        return Err(ApiError::invalid("value: must be 1 to 64 characters"));
    }
    if e.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason: must not be empty"));
    }
    let now = st.app.clock.now_ms();
    let row = BlacklistRow {
        entry_id: ids::new_id("bl"),
        kind: e.kind.clone(),
        value: value.clone(),
        reason: e.reason.clone(),
        added_by: caller.actor.clone(),
        added_at: now,
    };
    let hash = st.app.lookup.hash(&[&e.kind, &value]);
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "blacklist-add",
        &row.entry_id,
        json!({"kind": e.kind, "value": masked(&e.kind, &value), "reason": e.reason}).to_string(),
    );
    match st.app.store.add_blacklist(&row, &hash, &audit).await? {
        Some(id) => Ok((StatusCode::CREATED, Json(json!({"entry_id": id}))).into_response()),
        None => Err(ApiError::conflict(
            "E-BLACKLIST-EXISTS",
            format!("this {} is already on the blacklist", e.kind),
        )),
    }
}

/// `DELETE /v1/blacklist/{entry_id}`.
pub async fn remove(
    State(st): State<ApiState>,
    caller: Caller,
    Path(entry_id): Path<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let audit = NewAudit::new(
        st.app.clock.now_ms(),
        &caller.actor,
        caller.role.as_str(),
        "blacklist-delete",
        &entry_id,
        "{}",
    );
    if !st.app.store.delete_blacklist(&entry_id, &audit).await? {
        return Err(ApiError::not_found(format!(
            "no blacklist entry {entry_id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

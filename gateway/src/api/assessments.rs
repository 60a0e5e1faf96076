//! `/v1/assessments` (bank punctuality per year, JSON or CSV), the strikes behind them, past ratings,
//! and `/v1/banks/{code}/disqualify`.
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, ApiState, Caller};
use crate::clock::rfc3339;
use crate::config::Role;
use crate::domain::ids;
use crate::sla::assessment;
use crate::store::{EventRow, NewAudit};

/// Query string of the assessment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssessQuery {
    year: Option<i32>,
    department_code: Option<String>,
    format: Option<String>,
}

fn year_ok(y: i32) -> ApiResult<i32> {
    if (2000..=2100).contains(&y) {
        Ok(y)
    } else {
        Err(ApiError::invalid("year: must be 2000 to 2100"))
    }
}

/// `GET /v1/assessments?year=2026[&department_code=...][&format=csv]`.
pub async fn list(
    State(st): State<ApiState>,
    caller: Caller,
    q: Result<Query<AssessQuery>, QueryRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let year = year_ok(q.year.unwrap_or_else(|| st.app.clock.today().year()))?;
    let banks: Vec<String> = st.app.banks.all().map(|b| b.code.clone()).collect();
    let rows =
        assessment::assess(&st.app.store, &banks, year, q.department_code.as_deref()).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!({"year": year, "rows": rows})).into_response()),
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"assessment.csv\"",
                ),
            ],
            assessment::to_csv(&rows),
        )
            .into_response()),
        Some(other) => Err(ApiError::invalid(format!(
            "format: unknown value `{other}` (json or csv)"
        ))),
    }
}

/// Query string of the strikes list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YearQuery {
    year: Option<i32>,
}

/// `GET /v1/assessments/{bank_code}/strikes?year=2026`.
pub async fn strikes(
    State(st): State<ApiState>,
    caller: Caller,
    Path(bank): Path<String>,
    q: Result<Query<YearQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))?;
    let year = year_ok(q.year.unwrap_or_else(|| st.app.clock.today().year()))?;
    let rows = st.app.store.strikes_of(&bank, year).await?;
    Ok(Json(json!({
        "bank_code": bank,
        "year": year,
        "strikes": rows.iter().map(|s| json!({
            "strike_id": s.strike_id, "batch_id": s.batch_id, "query_id": s.query_id, "department_code": s.department_code,
            "roles": serde_json::from_str::<Value>(&s.roles).unwrap_or(Value::Null),
            "due_at": rfc3339(s.due_at), "fed_back_at": s.fed_back_at.map(rfc3339), "recorded_at": rfc3339(s.recorded_at),
            "evidence": serde_json::from_str::<Value>(&s.evidence).unwrap_or(Value::Null),
        })).collect::<Vec<_>>(),
    })))
}

/// A past year's rating.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PastRating {
    department_code: String,
    rating: String,
    reason: String,
}

fn event(now: i64, kind: &str, bank: &str, data: Value) -> EventRow {
    EventRow::new(kind, now, bank, data)
}

/// `PUT /v1/assessments/{bank_code}/{year}` (admin): a rating of a year before the gateway ran.
pub async fn put_rating(
    State(st): State<ApiState>,
    caller: Caller,
    Path((bank, year)): Path<(String, i32)>,
    b: Result<Json<PastRating>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let Json(r) = b.map_err(|e| ApiError::invalid(e.body_text()))?;
    if st.app.banks.get(&bank).is_none() {
        return Err(ApiError::not_found(format!(
            "bank {bank} is not shortlisted"
        )));
    }
    let current = st.app.clock.today().year();
    let year = year_ok(year)?;
    if year >= current {
        return Err(ApiError::conflict(
            "E-RATING-YEAR",
            format!("{year} is not a past year: the gateway assesses it from strikes"),
        ));
    }
    if r.rating != "qualified" && r.rating != "unqualified" {
        return Err(ApiError::invalid(format!(
            "rating: unknown value `{}` (qualified or unqualified)",
            r.rating
        )));
    }
    if r.department_code.trim().is_empty()
        || r.department_code.chars().count() > 15
        || r.reason.trim().is_empty()
    {
        return Err(ApiError::invalid(
            "department_code (1-15 characters) and reason are required",
        ));
    }
    let now = st.app.clock.now_ms();
    let mut events = vec![event(
        now,
        "rating",
        &bank,
        json!({"department_code": r.department_code, "year": year, "rating": r.rating, "recorded": true}),
    )];
    // Recording last year's rating can make this year's unqualified rating a second one in a row.
    if r.rating == "unqualified"
        && year == current - 1
        && st
            .app
            .store
            .unqualified_in(&bank, &r.department_code, current)
            .await?
    {
        events.push(event(
            now,
            "disqualification.due",
            &bank,
            json!({"department_code": r.department_code, "years": [year, current]}),
        ));
    }
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "rating-record",
        format!("{bank}/{year}"),
        json!({"department_code": r.department_code, "rating": r.rating, "reason": r.reason})
            .to_string(),
    );
    st.app
        .store
        .put_past_rating(
            &bank,
            &r.department_code,
            year,
            &r.rating,
            &r.reason,
            &caller.actor,
            now,
            &events,
            &audit,
        )
        .await?;
    Ok((StatusCode::OK, Json(json!({"bank_code": bank, "year": year, "department_code": r.department_code, "rating": r.rating})))
        .into_response())
}

/// A disqualification confirmation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disqualify {
    department_code: String,
    reason: String,
}

/// `POST /v1/banks/{bank_code}/disqualify` (admin): confirms a due disqualification; 409 if not due.
pub async fn disqualify(
    State(st): State<ApiState>,
    caller: Caller,
    Path(bank): Path<String>,
    b: Result<Json<Disqualify>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let Json(d) = b.map_err(|e| ApiError::invalid(e.body_text()))?;
    if st.app.banks.get(&bank).is_none() {
        return Err(ApiError::not_found(format!(
            "bank {bank} is not shortlisted"
        )));
    }
    if d.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason: must not be empty"));
    }
    let year = st.app.clock.today().year();
    if !assessment::disqualification_due(&st.app.store, &bank, &d.department_code, year).await? {
        return Err(ApiError::conflict(
            "E-NOT-DUE",
            format!(
                "disqualification of {bank} for {} is not due",
                d.department_code
            ),
        ));
    }
    let now = st.app.clock.now_ms();
    let ev = event(
        now,
        "disqualification.confirmed",
        &bank,
        json!({"department_code": d.department_code, "reason": d.reason, "by": caller.actor}),
    );
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "disqualify",
        &bank,
        json!({"department_code": d.department_code, "reason": d.reason}).to_string(),
    );
    if !st
        .app
        .store
        .disqualify(
            &bank,
            &d.department_code,
            &d.reason,
            &caller.actor,
            now,
            &[ev],
            &audit,
        )
        .await?
    {
        return Err(ApiError::conflict("E-NOT-DUE", "already disqualified"));
    }
    Ok((
        StatusCode::OK,
        Json(
            json!({"bank_code": bank, "department_code": d.department_code, "disqualified": true}),
        ),
    )
        .into_response())
}

/// Why a strike is voided.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Void {
    reason: String,
}

/// `POST /v1/assessments/{bank_code}/strikes/{strike_id}/void` (admin): a correction record that voids a
/// strike and says why (e.g. the delay was the gateway's). The strike itself is never changed.
pub async fn void_strike(
    State(st): State<ApiState>,
    caller: Caller,
    Path((bank, strike_id)): Path<(String, String)>,
    b: Result<Json<Void>, JsonRejection>,
) -> ApiResult<Response> {
    caller.require(&[Role::Admin])?;
    let Json(v) = b.map_err(|e| ApiError::invalid(e.body_text()))?;
    if v.reason.trim().is_empty() {
        return Err(ApiError::invalid("reason: must not be empty"));
    }
    let now = st.app.clock.now_ms();
    let new_id = ids::new_id("s");
    let ev = event(
        now,
        "strike.voided",
        &bank,
        json!({"strike_id": strike_id, "correction_id": new_id, "reason": v.reason}),
    );
    let audit = NewAudit::new(
        now,
        &caller.actor,
        caller.role.as_str(),
        "strike-void",
        &strike_id,
        json!({"reason": v.reason}).to_string(),
    );
    match st
        .app
        .store
        .void_strike(&bank, &strike_id, &new_id, &v.reason, now, &[ev], &audit)
        .await?
    {
        None => Err(ApiError::not_found(format!(
            "no strike {strike_id} of bank {bank}"
        ))),
        Some(false) => Err(ApiError::conflict(
            "E-STRIKE-VOIDED",
            format!("strike {strike_id} was voided before"),
        )),
        Some(true) => Ok((
            StatusCode::OK,
            Json(json!({"correction_id": new_id, "supersedes": strike_id})),
        )
            .into_response()),
    }
}

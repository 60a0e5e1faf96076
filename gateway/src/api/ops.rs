//! Operations endpoints: health, readiness, metrics, OpenAPI, the banks list and the dashboard.
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiResult, ApiState, Caller};
use crate::config::Role;

/// The OpenAPI document of this API (kept beside the code; a test checks every route is in it).
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /healthz`: the process runs.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers and every bank link can be reached.
pub async fn readyz(State(st): State<ApiState>) -> Response {
    let store = st.app.store.ping().await;
    let mut banks = serde_json::Map::new();
    let mut all = store;
    for b in st.app.banks.all() {
        let ok = tokio::time::timeout(std::time::Duration::from_secs(5), b.link.reachable())
            .await
            .unwrap_or(false);
        all &= ok;
        banks.insert(b.code.clone(), json!(ok));
    }
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"store": store, "banks": banks, "ready": all})),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(st): State<ApiState>) -> Response {
    if let Ok(totals) = st.app.store.item_status_totals().await {
        for (status, n) in totals {
            crate::ops::metrics::items_by_status(status.as_str(), n);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// `GET /v1/banks`.
pub async fn banks(State(st): State<ApiState>, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Submitter, Role::Auditor, Role::Admin])?;
    let mut out = Vec::new();
    for b in st.app.banks.all() {
        out.push(json!({
            "bank_code": b.code,
            "name": b.profile.name,
            "profile": format!("{:?}", b.profile.family).to_lowercase(),
            "disqualified_for": st.app.store.disqualified_for(&b.code).await?,
        }));
    }
    Ok(Json(json!({"banks": out})))
}

//! The platform API (axum): one file per resource, auth and roles here, errors mapped to the stable
//! `E-*` codes in one place ([`ApiError`]).
pub mod assessments;
pub mod auth;
pub mod batches;
pub mod blacklist;
pub mod dashboard;
pub mod events;
pub mod handling;
pub mod notices;
pub mod ops;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::App;
use crate::intake::rules::codes;

pub use auth::{Caller, Tokens};

/// State of the API handlers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The gateway.
    pub app: Arc<App>,
    /// Configured tokens.
    pub tokens: Arc<Tokens>,
    /// Metrics renderer.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

/// An API error: status, `E-*` code, readable message, details.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message (never personal data).
    pub message: String,
    /// Details (e.g. rejected items).
    pub details: Vec<Value>,
}

impl ApiError {
    /// An error without details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// 400 `E-REQUEST-INVALID`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::REQUEST_INVALID, message)
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "E-NOT-FOUND", what)
    }

    /// 409 for a state that does not allow the change.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 500 for a store failure (the detail is logged, not shown).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E-INTERNAL",
            "internal error; see the gateway log",
        )
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::ops::metrics::api_error(self.code);
        let body =
            json!({"error": {"code": self.code, "message": self.message, "details": self.details}});
        (self.status, Json(body)).into_response()
    }
}

/// API result.
pub type ApiResult<T> = Result<T, ApiError>;

/// The whole router.
pub fn router(state: ApiState) -> Router {
    let json_limit = state.app.config.server.max_json_bytes;
    Router::new()
        .route("/v1/batches", post(batches::submit))
        .route("/v1/batches/{batch_id}", get(batches::read))
        .route("/v1/batches/{batch_id}/items", get(batches::items))
        .route("/v1/batches/{batch_id}/query", post(batches::query))
        .route("/v1/batches/{batch_id}/notices", get(notices::list))
        .route(
            "/v1/batches/{batch_id}/items/{seq}/correction",
            post(handling::correct),
        )
        .route(
            "/v1/batches/{batch_id}/items/{seq}/return",
            post(handling::give_back),
        )
        .route(
            "/v1/batches/{batch_id}/items/{seq}/resolve",
            post(handling::resolve),
        )
        .route("/v1/banks", get(ops::banks))
        .route(
            "/v1/banks/{bank_code}/disqualify",
            post(assessments::disqualify),
        )
        .route("/v1/assessments", get(assessments::list))
        .route(
            "/v1/assessments/{bank_code}/strikes/{strike_id}/void",
            post(assessments::void_strike),
        )
        .route(
            "/v1/assessments/{bank_code}/strikes",
            get(assessments::strikes),
        )
        .route(
            "/v1/assessments/{bank_code}/{year}",
            put(assessments::put_rating),
        )
        .route("/v1/blacklist", get(blacklist::list).post(blacklist::add))
        .route("/v1/blacklist/{entry_id}", delete(blacklist::remove))
        .route("/v1/events", get(events::list))
        .route("/v1/audit", get(events::audit))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/dashboard", get(dashboard::page))
        .fallback(|| async { ApiError::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::REQUEST_INVALID,
                "method not allowed on this resource",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(json_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "E-INTERNAL",
                "internal error; see the gateway log",
            )
            .into_response()
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

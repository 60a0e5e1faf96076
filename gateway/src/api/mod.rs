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

use axum::extract::State;
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

/// The answer to a request that was not answered within `server.request_timeout`: 503
/// `E-TIMEOUT` (an addition to the codes of rules.md, see docs/spec-readings.md).
pub const TIMEOUT: &str = "E-TIMEOUT";

/// Middleware: the request is answered within `deadline`, or gets 503 `E-TIMEOUT`.
///
/// The handler is not stopped when the deadline passes: it runs on to its end in its own task. A
/// store statement already handed to the database is not stopped by dropping its future (SQLite's
/// worker thread runs it anyway), so stopping a handler half-way could leave a change made without
/// the rest of its work, such as its audit record. The caller is told to read before it repeats.
async fn answer_within(
    State(deadline): State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let mut handler = tokio::spawn(next.run(req));
    match tokio::time::timeout(deadline, &mut handler).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => match e.try_into_panic() {
            Ok(payload) => panicked(payload),
            Err(e) => ApiError::internal(e).into_response(),
        },
        Err(_) => {
            tracing::warn!(%path, ?deadline, "request not answered in time; it goes on in the background");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                TIMEOUT,
                format!(
                    "not answered within {} ms; it may still take effect: read the resource before \
                     repeating a change",
                    deadline.as_millis()
                ),
            )
            .into_response()
        }
    }
}

/// The answer to a handler that panicked: the error body, never the panic's text or a backtrace
/// (those go to the log only).
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %text, "a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "E-INTERNAL",
        "internal error; see the gateway log",
    )
    .into_response()
}

/// Middleware: an error answer that does not come from an [`ApiError`] (axum's own rejections, e.g.
/// a path segment that is not a number, or a percent-encoding that is not UTF-8) gets the API's error
/// body too, with the code of its status. The original text is not passed on: it can quote what the
/// caller sent, and error messages never carry personal data.
async fn error_body(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ("E-AUTH", "not allowed"),
        StatusCode::NOT_FOUND => ("E-NOT-FOUND", "no such resource"),
        StatusCode::PAYLOAD_TOO_LARGE => (codes::TOO_LARGE, "request body too large"),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => {
            (TIMEOUT, "not answered in time")
        }
        s if s.is_server_error() => ("E-INTERNAL", "internal error; see the gateway log"),
        _ => (
            codes::REQUEST_INVALID,
            "the request's path, query string, headers or body could not be read",
        ),
    };
    let mut out = ApiError::new(status, code, message).into_response();
    for (name, value) in resp.headers() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            out.headers_mut()
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
    }
    out
}

/// The whole router.
pub fn router(state: ApiState) -> Router {
    let json_limit = state.app.config.server.max_json_bytes;
    let deadline = state.app.config.server.request_timeout.0;
    // A roster may take long to send and to take in (a million items: about a minute): it gets no
    // deadline, but its body may not stall for longer than one.
    let submit = Router::new()
        .route("/v1/batches", post(batches::submit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(deadline));
    let rest = Router::new()
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
        .layer(axum::middleware::from_fn_with_state(
            deadline,
            answer_within,
        ));
    Router::new()
        .merge(submit)
        .merge(rest)
        .fallback(|| async { ApiError::not_found("no such resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                codes::REQUEST_INVALID,
                "method not allowed on this resource",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(json_limit))
        .layer(axum::middleware::map_response(error_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::rate_limit,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(resp: Response) -> Value {
        use http_body_util::BodyExt;
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("JSON body")
    }

    /// axum's plain-text rejections get the error body, without their text; our own errors and
    /// answers that are not errors pass unchanged.
    #[tokio::test]
    async fn rejections_get_the_error_body() {
        let plain = (
            StatusCode::BAD_REQUEST,
            "Invalid URL: Cannot parse `220203196602074567` to a `i64`",
        )
            .into_response();
        let resp = error_body(plain).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body = body_of(resp).await;
        assert_eq!(body["error"]["code"], "E-REQUEST-INVALID");
        assert!(!body.to_string().contains("2202"), "{body}");

        let ours = error_body(ApiError::not_found("no batch b_1").into_response()).await;
        assert_eq!(body_of(ours).await["error"]["message"], "no batch b_1");
        let ok = error_body((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }

    /// A panic's text (which may say anything) never reaches the caller: the error body does.
    #[tokio::test]
    async fn a_panic_answers_the_error_body_only() {
        for payload in [
            Box::new("index out of bounds: secret 6217995505724754105")
                as Box<dyn std::any::Any + Send>,
            Box::new(String::from("called `Option::unwrap()` on a `None` value")),
            Box::new(42u8),
        ] {
            let resp = panicked(payload);
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = body_of(resp).await;
            assert_eq!(body["error"]["code"], "E-INTERNAL");
            let text = body.to_string();
            assert!(!text.contains("6217") && !text.contains("unwrap"), "{text}");
        }
    }
}

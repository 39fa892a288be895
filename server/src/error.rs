//! HTTP errors: one JSON shape `{error, detail}` (plus `index`/`line` for a bad
//! event), and the one mapping from platform errors to status codes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use custos_eventlog::LogError;
use custos_platform::PlatformError;
use serde::Serialize;
use thiserror::Error;

/// Errors of the server itself (startup, TLS, binding).
#[derive(Debug, Error)]
pub enum ServerError {
    /// Opening the store or its keys failed.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// Bad TLS certificate or key file.
    #[error("TLS: {0}")]
    Tls(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(String),
}

/// An error response.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    /// HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// Short machine-readable code (`bad_event`, `unauthorized`, ...).
    pub error: &'static str,
    /// What was wrong and what to do.
    pub detail: String,
    /// 0-based index of the bad event in a JSON array body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// 1-based line of the bad event in an NDJSON body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl ApiError {
    /// An error with no position.
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        Self { status, error, detail: detail.into(), index: None, line: None }
    }

    /// 400 for a bad query parameter or path.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 422 for a bad event body.
    pub fn bad_event(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_event", detail)
    }

    /// 500 for what is not the client's fault. The detail is logged, not sent,
    /// because storage errors may name paths.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error; see the server log")
    }

    /// 503 while shutting down or when the writer is gone.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// Maps a platform error. Denials are 403 here; the auth layer turns
    /// authentication failures into 401 before this is reached.
    pub fn from_platform(e: PlatformError) -> Self {
        match e {
            PlatformError::Input(d) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_input", d),
            PlatformError::BadLine { line, detail } => Self { line: Some(line), ..Self::bad_event(detail) },
            PlatformError::NotFound(d) => Self::new(StatusCode::NOT_FOUND, "not_found", d),
            PlatformError::Denied(d) => Self::new(StatusCode::FORBIDDEN, "forbidden", format!("access denied: {d}")),
            PlatformError::Conflict(d) => Self::new(StatusCode::CONFLICT, "conflict", d),
            PlatformError::Held(d) => Self::new(StatusCode::CONFLICT, "legal_hold", d),
            PlatformError::Budget(d) => Self::new(StatusCode::PAYMENT_REQUIRED, "budget_exceeded", d),
            PlatformError::Integrity(d) => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "integrity", d),
            PlatformError::Io(d) => Self::internal(d),
            PlatformError::Log(e) => Self::from_log(e),
        }
    }

    /// Maps a log error met while appending one request.
    pub fn from_log(e: LogError) -> Self {
        match e {
            LogError::TenantDeleted(_) | LogError::Conflict(_) => Self::bad_event(e.to_string()),
            LogError::Integrity { .. } => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "integrity", e.to_string()),
            e => Self::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

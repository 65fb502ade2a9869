//! Errors of the HTTP API: a status and a JSON body `{"error": {"code", "message"}}`, the
//! message worded as the command line words the same error. Bad input is a 4xx naming what was
//! wrong; a 5xx means the host itself failed.

use agentos_runtime::service::ServiceError;
use agentos_runtime::world::WorldError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after: Option<u32>,
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable name of the error (`unknown_world`, `bad_event`, ...).
    pub code: String,
    /// What was wrong, in the words the command line uses.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Say when to try again.
    pub fn retry_after(self, seconds: u32) -> ApiError {
        ApiError {
            retry_after: Some(seconds),
            ..self
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// The host failed (storage, a thread gone): logged, answered 500.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        eprintln!("serve: internal error: {error}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string())
    }
}

/// An error and its causes, as `error: …` on the command line prints them.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> ApiError {
        let message = chain(&error);
        match error {
            ServiceError::World(world) => match *world {
                WorldError::UnknownAgent { .. } | WorldError::UnknownPlan(_) => {
                    ApiError::not_found("unknown_agent", message)
                }
                WorldError::AgentEvent { .. }
                | WorldError::PlanEvent { .. }
                | WorldError::PlanEventNotWave { .. }
                | WorldError::NotEventTriggered { .. } => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_event", message)
                }
                _ => ApiError::internal(message),
            },
            ServiceError::Key(_) => ApiError::bad_request("bad_idempotency_key", message),
            ServiceError::KeyReused { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused", message)
            }
            ServiceError::Stopping | ServiceError::Gone => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", message)
            }
        }
    }
}

impl From<agentos_runtime::journal::JournalError> for ApiError {
    fn from(error: agentos_runtime::journal::JournalError) -> ApiError {
        ApiError::internal(chain(&error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

//! Extractors whose rejections are the API's JSON errors: a body that is not JSON, a query or
//! path that does not parse, all named as 4xx with what was wrong.

use super::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        ApiError::new(rejection.status(), "bad_body", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(rejection.status(), "bad_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(rejection.status(), "bad_path", rejection.body_text())
    }
}

/// An entry number (or a count of them) from a request: the document declares them int64, as
/// JSON tools hold integers, so a larger one is refused rather than read past every entry.
pub fn entry_number(name: &str, value: Option<u64>) -> Result<Option<u64>, ApiError> {
    match value {
        Some(n) if n > i64::MAX as u64 => Err(ApiError::bad_request(
            "bad_query",
            format!("`{name}` is {n}, past any entry number (at most {})", i64::MAX),
        )),
        value => Ok(value),
    }
}

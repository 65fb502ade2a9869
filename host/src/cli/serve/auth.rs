//! Who may call what: with a token file, every request but the OpenAPI document and the
//! console's assets carries `Authorization: Bearer <token>`, and the token's scopes must hold the
//! scope of the endpoint; without one (allowed on a loopback address only) every caller may do
//! everything.

use super::error::ApiError;
use super::tokens::{Caller, Scope, Tokens};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Let the request through if its token holds `scope`; the caller goes into its extensions.
pub async fn require(tokens: Option<Arc<Tokens>>, scope: Scope, mut request: Request, next: Next) -> Response {
    let caller = match tokens {
        None => Caller {
            name: "local".into(),
            scopes: vec![Scope::Read, Scope::Send, Scope::Operate],
        },
        Some(tokens) => match bearer(&request) {
            None => return unauthorized("this server needs a bearer token: send `Authorization: Bearer <token>`"),
            Some(token) => match tokens.caller(token) {
                None => return unauthorized("the bearer token is not one this server knows"),
                Some(caller) => caller,
            },
        },
    };
    if !caller.scopes.contains(&scope) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("token `{}` lacks the `{}` scope this needs", caller.name, scope.label()),
        )
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

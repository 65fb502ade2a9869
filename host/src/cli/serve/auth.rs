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

/// What a browser on another site could make a user's browser send: with no token file, any
/// request whose `Host` is not a loopback name (a page whose name was rebound to 127.0.0.1),
/// and always, a state-changing request whose `Origin` is not this server.
pub async fn same_origin(tokens_required: bool, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !tokens_required && !is_loopback_host(&host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!(
                "this server has no tokens and answers only requests addressed to a loopback host \
                 (localhost, 127.0.0.1, [::1]), not `{host}`"
            ),
        )
        .into_response();
    }
    let reads = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if let Some(origin) = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !reads
    {
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        if origin_host != host {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                format!("a request from the page of {origin} may not change this server's worlds"),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// `localhost`, `127.0.0.1` (any of 127/8) or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost" || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for host in [
            "localhost",
            "localhost:8470",
            "127.0.0.1:1",
            "127.9.9.9",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(super::is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8470",
            "127.0.0.1.evil.example",
            "localhost.evil",
            "[::2]:80",
        ] {
            assert!(!super::is_loopback_host(host), "{host}");
        }
    }
}

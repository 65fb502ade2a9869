//! The `http` interface and its adapter: a real HTTP client (ureq over rustls).
//!
//! The adapter follows no redirects (a redirect target may lie outside the grant; the guest gets
//! the 3xx response), uses no proxy, and enforces the grant's timeout and maximum body size.

use super::{EffectFailure, EffectGate, EffectOutcome, EffectRequest, EffectResponse};
use crate::receipts::Usage;
use crate::runtime::bindings::agentos::core::http::{Host, Request, Response};
use crate::runtime::bindings::agentos::core::types::{EffectError, Field};
use agentos_air::HttpCap;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Largest request body a guest may send.
pub const REQUEST_BODY_MAX_BYTES: usize = 16 * 1024 * 1024;

impl Host for EffectGate {
    fn send(&mut self, request: Request) -> wasmtime::Result<Result<Response, EffectError>> {
        let body_len = request.body.as_ref().map_or(0, Vec::len);
        if body_len > REQUEST_BODY_MAX_BYTES {
            wasmtime::bail!(
                "http request body of {body_len} bytes exceeds the limit of {REQUEST_BODY_MAX_BYTES} bytes"
            );
        }
        let outcome = self.call(EffectRequest::Http {
            method: request.method,
            url: request.url,
            headers: request.headers.into_iter().map(|f| (f.name, f.value)).collect(),
            body: request.body,
        })?;
        Ok(match outcome {
            Ok(EffectResponse::Http { status, headers, body }) => Ok(Response {
                status,
                headers: headers.into_iter().map(|(name, value)| Field { name, value }).collect(),
                body,
            }),
            Ok(other) => wasmtime::bail!("journal holds a non-http outcome for an http call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}

/// The HTTP client for a time limit: no redirects followed (the 3xx goes back to the caller, as
/// its target may lie outside the grant), no proxy, statuses as responses. One per time limit
/// per process, so connections are pooled across calls and steps.
pub fn client(timeout_ms: u64) -> ureq::Agent {
    static CLIENTS: OnceLock<Mutex<HashMap<u64, ureq::Agent>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .expect("http client cache lock");
    clients
        .entry(timeout_ms)
        .or_insert_with(|| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .max_redirects_will_error(false)
                .proxy(None)
                .timeout_global(Some(Duration::from_millis(timeout_ms)))
                .build()
                .new_agent()
        })
        .clone()
}

/// Perform the request under `cap`.
pub fn execute(
    cap: &HttpCap,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> (EffectOutcome, Usage) {
    let agent = client(cap.timeout_ms);
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let sent = body.map_or(0, <[u8]>::len) as u64;
    let request = match builder.body(body.map(<[u8]>::to_vec).unwrap_or_default()) {
        Ok(request) => request,
        Err(e) => {
            return (
                Err(EffectFailure::Failed(format!("malformed request: {e}"))),
                Usage::default(),
            );
        }
    };
    let mut response = match agent.run(request) {
        Ok(response) => response,
        Err(error) => {
            return (
                Err(failure(error, cap)),
                Usage {
                    bytes_sent: sent,
                    ..Usage::default()
                },
            );
        }
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    match response
        .body_mut()
        .with_config()
        .limit(cap.max_body_bytes)
        .read_to_vec()
    {
        Ok(body) => {
            let usage = Usage {
                bytes_sent: sent,
                bytes_received: body.len() as u64,
                ..Usage::default()
            };
            (Ok(EffectResponse::Http { status, headers, body }), usage)
        }
        Err(error) => (
            Err(failure(error, cap)),
            Usage {
                bytes_sent: sent,
                ..Usage::default()
            },
        ),
    }
}

fn failure(error: ureq::Error, cap: &HttpCap) -> EffectFailure {
    match error {
        ureq::Error::Timeout(_) => EffectFailure::Timeout(format!("no complete response within {} ms", cap.timeout_ms)),
        ureq::Error::BodyExceedsLimit(limit) => {
            EffectFailure::Failed(format!("response body exceeds the grant's max_body_bytes of {limit}"))
        }
        other => EffectFailure::Failed(other.to_string()),
    }
}

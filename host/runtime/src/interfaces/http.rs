//! The guest's side of `http`: one HTTP request.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::http`.

use crate::bindings::agentos::core::http::{Host, Request, Response};
use crate::bindings::agentos::core::types::{EffectError, Field};
use agentos_effects::http::REQUEST_BODY_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

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

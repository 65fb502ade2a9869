//! The guest's side of `blob`: put and get bytes in the world's blob store.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::blob`.

use crate::bindings::agentos::core::blob::Host;
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::blob::BLOB_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

impl Host for EffectGate {
    fn put(&mut self, contents: Vec<u8>) -> wasmtime::Result<Result<String, EffectError>> {
        if contents.len() > BLOB_MAX_BYTES {
            wasmtime::bail!(
                "blob put of {} bytes exceeds the host limit of {BLOB_MAX_BYTES} bytes",
                contents.len()
            );
        }
        Ok(match self.call(EffectRequest::BlobPut { contents })? {
            Ok(EffectResponse::Digest(digest)) => Ok(digest),
            Ok(other) => wasmtime::bail!("journal holds a non-digest outcome for a blob put: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }

    fn get(&mut self, digest: String) -> wasmtime::Result<Result<Vec<u8>, EffectError>> {
        Ok(match self.call(EffectRequest::BlobGet { digest })? {
            Ok(EffectResponse::Bytes(bytes)) => Ok(bytes),
            Ok(other) => wasmtime::bail!("journal holds a non-bytes outcome for a blob get: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}

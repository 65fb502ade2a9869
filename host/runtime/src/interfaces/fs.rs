//! The guest's side of `fs`: read and write files under granted mounts.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::fs`.

use crate::bindings::agentos::core::fs::Host;
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::fs::FILE_MAX_BYTES;
use agentos_effects::{EffectGate, EffectOutcome, EffectRequest, EffectResponse};

impl Host for EffectGate {
    fn read(&mut self, path: String) -> wasmtime::Result<Result<Vec<u8>, EffectError>> {
        let outcome = self.call(EffectRequest::FsRead { path })?;
        unpack(outcome, |r| {
            if let EffectResponse::Bytes(b) = r {
                Some(b)
            } else {
                None
            }
        })
    }

    fn write(&mut self, path: String, contents: Vec<u8>) -> wasmtime::Result<Result<(), EffectError>> {
        if contents.len() as u64 > FILE_MAX_BYTES {
            wasmtime::bail!(
                "fs write of {} bytes exceeds the limit of {FILE_MAX_BYTES} bytes",
                contents.len()
            );
        }
        let outcome = self.call(EffectRequest::FsWrite { path, contents })?;
        unpack(outcome, |r| matches!(r, EffectResponse::Unit).then_some(()))
    }

    fn list_dir(&mut self, path: String) -> wasmtime::Result<Result<Vec<String>, EffectError>> {
        let outcome = self.call(EffectRequest::FsListDir { path })?;
        unpack(outcome, |r| {
            if let EffectResponse::Names(n) = r {
                Some(n)
            } else {
                None
            }
        })
    }
}

fn unpack<T>(
    outcome: EffectOutcome,
    pick: impl FnOnce(EffectResponse) -> Option<T>,
) -> wasmtime::Result<Result<T, EffectError>> {
    match outcome {
        Ok(response) => match pick(response) {
            Some(value) => Ok(Ok(value)),
            None => wasmtime::bail!("journal holds an outcome of the wrong shape for an fs call"),
        },
        Err(failure) => Ok(Err(failure.into())),
    }
}

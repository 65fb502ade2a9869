//! The guest's side of `emit`: send an event to another agent or a plan.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::emit`.

use crate::bindings::agentos::core::emit::Host;
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::emit::EVENT_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse};

impl Host for EffectGate {
    fn send(&mut self, target: String, event: String) -> wasmtime::Result<Result<(), EffectError>> {
        if event.len() > EVENT_MAX_BYTES {
            wasmtime::bail!(
                "emitted event of {} bytes exceeds the limit of {EVENT_MAX_BYTES} bytes",
                event.len()
            );
        }
        Ok(match self.call(EffectRequest::Emit { target, event })? {
            Ok(EffectResponse::Emitted { .. }) => Ok(()),
            Ok(other) => wasmtime::bail!("journal holds a non-emit outcome for an emit: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}

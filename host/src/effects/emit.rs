//! The `emit` interface and its adapter: events to other agents of the same world.
//!
//! The adapter checks the event against the target's event type and answers with its canonical
//! form; the stepper journals it as the target's ingress only if the sending step commits, so a
//! failed step sends nothing. Delivery is one FIFO in journal order.

use super::{EffectFailure, EffectGate, EffectOutcome, EffectRequest, EffectResponse};
use crate::runtime::bindings::agentos::core::emit::Host;
use crate::runtime::bindings::agentos::core::types::EffectError;
use std::collections::HashMap;
use wasmtime::component::Type;

/// Longest event text a guest may emit.
pub const EVENT_MAX_BYTES: usize = 64 * 1024;

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

/// Validate `event` against `target`'s event type.
pub fn execute(event_types: &HashMap<String, Type>, target: &str, event: &str) -> EffectOutcome {
    let Some(ty) = event_types.get(target) else {
        return Err(EffectFailure::Failed(format!("no agent `{target}` in the world")));
    };
    match crate::values::parse_wave(ty, event) {
        Ok(value) => Ok(EffectResponse::Emitted {
            target: target.to_string(),
            event: crate::values::to_wave(&value),
        }),
        Err(e) => Err(EffectFailure::Failed(format!(
            "event `{event}` does not match agent `{target}`'s event type {}: {e}",
            crate::values::describe(ty)
        ))),
    }
}

//! The guest's side of `timer`: schedule and cancel an agent's own timers.
//!
//! Turns the WIT call into an [`EffectRequest`] for the gate and the outcome back into WIT
//! types; the adapter and its limits are `agentos_effects::timer`.

use crate::bindings::agentos::core::timer::{Host, When};
use crate::bindings::agentos::core::types::EffectError;
use agentos_effects::emit::EVENT_MAX_BYTES;
use agentos_effects::{EffectGate, EffectRequest, EffectResponse, TimerWhen};

impl Host for EffectGate {
    fn schedule(&mut self, when: When, event: String) -> wasmtime::Result<Result<u64, EffectError>> {
        if event.len() > EVENT_MAX_BYTES {
            wasmtime::bail!(
                "timer event of {} bytes exceeds the limit of {} bytes",
                event.len(),
                EVENT_MAX_BYTES
            );
        }
        let when = match when {
            When::AfterMs(ms) => TimerWhen::AfterMs(ms),
            When::AtMs(ms) => TimerWhen::AtMs(ms),
        };
        Ok(match self.call(EffectRequest::TimerSchedule { when, event })? {
            Ok(EffectResponse::TimerScheduled { id, .. }) => Ok(id),
            Ok(other) => wasmtime::bail!("journal holds a non-timer outcome for a timer call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }

    fn cancel(&mut self, id: u64) -> wasmtime::Result<Result<(), EffectError>> {
        Ok(match self.call(EffectRequest::TimerCancel { id })? {
            Ok(EffectResponse::TimerCancelled { .. }) => Ok(()),
            Ok(other) => wasmtime::bail!("journal holds a non-timer outcome for a timer call: {other:?}"),
            Err(failure) => Err(failure.into()),
        })
    }
}

//! The `timer` interface and its adapter: the agent's own events, delivered later.
//!
//! Scheduling checks the grant's limits and the event against the agent's own event type, and
//! answers with the timer's id and due time; the stepper journals `timer-scheduled` (or
//! `timer-cancelled`) only if the step commits. A due timer fires as an ingress entry whose
//! logical time is the due time and whose source is `timer:<id>`.

use super::{EffectFailure, EffectGate, EffectOutcome, EffectRequest, EffectResponse, TimerWhen};
use crate::bindings::agentos::core::timer::{Host, When};
use crate::bindings::agentos::core::types::EffectError;
pub use agentos_journal::stepper::{PendingTimer, TimerTable};

impl Host for EffectGate {
    fn schedule(&mut self, when: When, event: String) -> wasmtime::Result<Result<u64, EffectError>> {
        if event.len() > super::emit::EVENT_MAX_BYTES {
            wasmtime::bail!(
                "timer event of {} bytes exceeds the limit of {} bytes",
                event.len(),
                super::emit::EVENT_MAX_BYTES
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

/// A timer's id: unique and the same in every replay (step and call number).
pub fn timer_id(ingress: u64, effect_index: u32) -> u64 {
    (ingress << 10) | u64::from(effect_index)
}

/// Due time and delay of a timer scheduled at logical time `at_ms`.
pub fn due(when: TimerWhen, at_ms: u64) -> Result<(u64, u64), EffectFailure> {
    match when {
        TimerWhen::AfterMs(delay) => Ok((at_ms.saturating_add(delay), delay)),
        TimerWhen::AtMs(due) if due >= at_ms => Ok((due, due - at_ms)),
        TimerWhen::AtMs(due) => Err(EffectFailure::Failed(format!(
            "timer at t={due} ms is in the past (the scheduling event's time is t={at_ms} ms)"
        ))),
    }
}

/// Validate the event against the agent's own type and answer with the scheduled timer.
pub fn schedule(event_type: Option<&wasmtime::component::Type>, id: u64, due_ms: u64, event: &str) -> EffectOutcome {
    let Some(ty) = event_type else {
        return Err(EffectFailure::Failed("the scheduling agent has no event type".into()));
    };
    match crate::values::parse_wave(ty, event) {
        Ok(value) => Ok(EffectResponse::TimerScheduled {
            id,
            due_ms,
            event: crate::values::to_wave(&value),
        }),
        Err(e) => Err(EffectFailure::Failed(format!(
            "timer event `{event}` does not match the agent's event type {}: {e}",
            crate::values::describe(ty)
        ))),
    }
}

//! The `timer` effect's adapter: the agent's own events, delivered later.
//!
//! Scheduling checks the grant's limits and the event against the agent's own event type, and
//! answers with the timer's id and due time; the stepper journals `timer-scheduled` (or
//! `timer-cancelled`) only if the step commits. A due timer fires as an ingress entry whose
//! logical time is the due time and whose source is `timer:<id>`.

use super::{EffectFailure, EffectOutcome, EffectResponse, TimerWhen};
pub use agentos_journal::stepper::{PendingTimer, TimerTable};

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

//! The `emit` effect's adapter: events to other agents of the same world.
//!
//! The adapter checks the event against the target's event type and answers with its canonical
//! form; the stepper journals it as the target's ingress only if the sending step commits, so a
//! failed step sends nothing. Delivery is one FIFO in journal order.

use super::{EffectFailure, EffectOutcome, EffectResponse};
use std::collections::HashMap;
use wasmtime::component::Type;

/// Longest event text a guest may emit.
pub const EVENT_MAX_BYTES: usize = 64 * 1024;

/// What each emit target accepts.
#[derive(Debug, Clone, Default)]
pub struct EventTypes {
    /// Each agent's event type (its component's).
    pub agents: HashMap<String, Type>,
    /// Each plan's replies and trigger event, by plan name.
    pub plans: HashMap<String, Vec<crate::plan_values::Typed>>,
}

/// Validate `event` against `target`'s event type (an agent's, or one a plan accepts).
pub fn execute(event_types: &EventTypes, target: &str, event: &str) -> EffectOutcome {
    if let Some(plan) = crate::journal::entry::plan::addressed(target) {
        let Some(accepted) = event_types.plans.get(plan) else {
            return Err(EffectFailure::Failed(format!("no plan `{plan}` in the world")));
        };
        return match accepted.iter().find_map(|typed| typed.parse(event).ok()) {
            Some((_, canonical)) => Ok(EffectResponse::Emitted {
                target: target.to_string(),
                event: canonical,
            }),
            None => {
                let schemas: Vec<&str> = accepted.iter().map(|t| t.schema.as_str()).collect();
                Err(EffectFailure::Failed(format!(
                    "event `{event}` is none of the events plan `{plan}` accepts (schemas: {})",
                    crate::text::listed(&schemas, ", ")
                )))
            }
        };
    }
    let Some(ty) = event_types.agents.get(target) else {
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

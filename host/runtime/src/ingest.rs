//! Events from outside into a world: each checked against the type of the agent it is for (or
//! the schema of the plan it triggers), then journaled as an ingress and queued for the stepper.
//! Nothing invalid is journaled; the error names what was wrong and what would be accepted.

use crate::error::WorldError;
use crate::journal::entry::{EntryBody, Ingress};
use crate::kernel::Kernel;
use crate::plans::PlanSlot;
use std::collections::HashMap;
use std::path::Path;

/// An event as the user wrote it.
#[derive(Debug, Clone, Copy)]
pub enum EventInput<'a> {
    Wave(&'a str),
    Json(&'a serde_json::Value),
}

/// The plan named `plan`, or an error listing the world's plans.
pub fn plan<'k>(kernel: &'k Kernel, plan: &str) -> Result<&'k PlanSlot, WorldError> {
    kernel
        .plans()
        .get(plan)
        .ok_or_else(|| WorldError::UnknownPlan(crate::plans::unknown(plan, kernel.plans().keys())))
}

/// Journal `event` (already checked and in canonical form) for `target` and queue it. Returns
/// its seq; it becomes durable with the journal's next commit.
pub fn journal_ingress(kernel: &mut Kernel, target: &str, event: String, source: &str) -> u64 {
    let ingress = Ingress {
        agent: target.to_string(),
        event,
        at_ms: kernel.next_time_ms(),
        source: source.to_string(),
    };
    let seq = kernel.journal().append(EntryBody::Ingress(ingress.clone()));
    kernel.enqueue(seq, ingress, HashMap::new());
    seq
}

/// Validate and journal an event for `agent` (WAVE text or JSON), or for a plan addressed
/// `plan:<name>` (WAVE: an event of the schema that triggers it). Returns its seq. `manifest`
/// is named in the error for an agent the world does not have.
pub fn ingest(
    kernel: &mut Kernel,
    manifest: &Path,
    agent: &str,
    event: EventInput<'_>,
    source: &str,
) -> Result<u64, WorldError> {
    let canonical = check(kernel, manifest, agent, event)?;
    Ok(journal_ingress(kernel, agent, canonical, source))
}

/// Check an event for `agent` (or `plan:<name>`) as [`ingest`] does, journaling nothing;
/// returns it in the canonical WAVE text its ingress would hold.
pub fn check(kernel: &Kernel, manifest: &Path, agent: &str, event: EventInput<'_>) -> Result<String, WorldError> {
    if let Some(name) = crate::plans::addressed(agent) {
        let slot = plan(kernel, name)?;
        let agentos_air::Trigger::Event(schema) = &slot.def.trigger else {
            return Err(WorldError::NotEventTriggered { plan: name.to_string() });
        };
        let EventInput::Wave(text) = event else {
            return Err(WorldError::PlanEventNotWave {
                plan: name.to_string(),
                schema: schema.clone(),
            });
        };
        let typed = slot
            .accepted(schema)
            .expect("a plan accepts the event that triggers it");
        let (_, canonical) = typed.parse(text).map_err(|reason| WorldError::PlanEvent {
            plan: name.to_string(),
            schema: schema.clone(),
            reason,
        })?;
        return Ok(canonical);
    }
    let Some(slot) = kernel.agents().get(agent) else {
        return Err(WorldError::UnknownAgent {
            agent: agent.to_string(),
            manifest: manifest.to_path_buf(),
            known: kernel.agents().keys().cloned().collect(),
        });
    };
    let ty = &slot.component.event_type;
    let value = match event {
        EventInput::Wave(text) => crate::values::parse_wave(ty, text),
        EventInput::Json(json) => crate::values::parse_json(ty, json),
    }
    .map_err(|reason| WorldError::AgentEvent {
        agent: agent.to_string(),
        reason,
        expected: crate::values::describe(ty),
    })?;
    Ok(crate::values::to_wave(&value))
}
